#pragma once
// Private to src/io: the catalogue writer's exclusive lock, an flock on "<catalogue>.lock".
//
// Refuses a second writer: HDF5 drops its own file lock once SWMR writing starts, and
// clearing the "open for writing" mark on resume would otherwise let two runs append to
// one catalogue. The kernel releases the lock when the process dies (kill -9 included).
#include <string>

namespace psfphot::io::detail {

class LockFile {
 public:
  LockFile() = default;
  // Throws CatalogueError naming `catalogue`: unwritable folder, lock held elsewhere.
  explicit LockFile(const std::string& catalogue);
  ~LockFile() { release(); }
  LockFile(const LockFile&) = delete;
  LockFile& operator=(const LockFile&) = delete;
  LockFile(LockFile&& o) noexcept;
  LockFile& operator=(LockFile&& o) noexcept;
  // Removes the lock file (while still holding it) and unlocks.
  void release();

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace psfphot::io::detail
