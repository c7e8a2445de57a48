#include "lock_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "psfphot/io/catalogue.hpp"

namespace psfphot::io::detail {

LockFile::LockFile(const std::string& catalogue) : path_(catalogue + ".lock") {
  // The file is removed on release, so after locking check that it is still the file
  // under that name (its holder may have removed it meanwhile) and retry if not.
  for (int attempt = 0; attempt < 100; ++attempt) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      int e = errno;
      std::string dir = std::filesystem::absolute(catalogue).parent_path().string();
      if (e == EACCES || e == EROFS || e == EPERM)
        throw CatalogueError(catalogue,
                             "folder " + dir + " is not writable (" + std::strerror(e) + ")");
      throw CatalogueError(catalogue, "cannot create " + path_ + ": " + std::strerror(e));
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      int e = errno;
      ::close(fd_);
      fd_ = -1;
      if (e == EWOULDBLOCK)
        throw CatalogueError(catalogue, "is being written by another process (" + path_ +
                                            " is locked); wait for it or stop it first");
      throw CatalogueError(catalogue, "cannot lock " + path_ + ": " + std::strerror(e));
    }
    struct stat held {
    }, named{};
    if (::fstat(fd_, &held) == 0 && ::stat(path_.c_str(), &named) == 0 &&
        held.st_ino == named.st_ino && held.st_dev == named.st_dev)
      return;
    ::close(fd_);
    fd_ = -1;
  }
  throw CatalogueError(catalogue, "cannot take the lock " + path_);
}

LockFile::LockFile(LockFile&& o) noexcept
    : path_(std::move(o.path_)), fd_(std::exchange(o.fd_, -1)) {}

LockFile& LockFile::operator=(LockFile&& o) noexcept {
  if (this != &o) {
    release();
    path_ = std::move(o.path_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

void LockFile::release() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // while still holding it: see the constructor
  ::close(fd_);             // drops the flock
  fd_ = -1;
}

}  // namespace psfphot::io::detail
