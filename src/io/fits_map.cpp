// map_fits and map_or_read_fits: an image's data unit mapped read-only (io/fits.hpp).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include "fits_direct.hpp"
#include "psfphot/io/fits.hpp"

namespace psfphot::io {

MappedFits::MappedFits(MappedFits&& o) noexcept
    : info_(std::move(o.info_)),
      pixels_(std::exchange(o.pixels_, EncodedImageView())),
      map_(std::exchange(o.map_, nullptr)),
      map_bytes_(std::exchange(o.map_bytes_, 0)) {}

MappedFits& MappedFits::operator=(MappedFits&& o) noexcept {
  if (this != &o) {
    if (map_) ::munmap(map_, map_bytes_);
    info_ = std::move(o.info_);
    pixels_ = std::exchange(o.pixels_, EncodedImageView());
    map_ = std::exchange(o.map_, nullptr);
    map_bytes_ = std::exchange(o.map_bytes_, 0);
  }
  return *this;
}

MappedFits::~MappedFits() {
  if (map_) ::munmap(map_, map_bytes_);
}

namespace {

struct Mapping {
  void* map;
  std::size_t bytes;
  const unsigned char* first_pixel;
};

Mapping map_data(const std::string& spec, const FitsImage& info, const detail::DirectData& d) {
  const int fd = ::open(d.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FitsError(spec, std::string("cannot open: ") + std::strerror(errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  // The size again, of the file now open (cfitsio's check was of the file it opened): a page
  // of the mapping beyond the end of the file would be a SIGBUS on first access, not an error.
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    throw FitsError(spec, std::string("cannot stat: ") + std::strerror(errno));
  const std::size_t file_bytes = static_cast<std::size_t>(st.st_size);
  if (d.offset + d.bytes > file_bytes) {
    throw FitsError(spec, "file truncated: the header declares " + std::to_string(info.width) +
                              "x" + std::to_string(info.height) + " pixels of BITPIX " +
                              std::to_string(info.bitpix) + " (" + std::to_string(d.bytes) +
                              " bytes) but only " +
                              std::to_string(file_bytes > d.offset ? file_bytes - d.offset : 0) +
                              " bytes follow the header");
  }
  // mmap's offset must be a multiple of the page size; the header's 2880-byte blocks are not.
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t start = d.offset / page * page;
  const std::size_t len = d.offset + d.bytes - start;
  void* p = ::mmap(nullptr, len, PROT_READ, MAP_PRIVATE, fd, static_cast<off_t>(start));
  if (p == MAP_FAILED) throw FitsError(spec, std::string("cannot map: ") + std::strerror(errno));
  return {p, len, static_cast<const unsigned char*>(p) + (d.offset - start)};
}

// The whole pages inside [bytes, bytes + n) leave the mapping (MADV_DONTNEED on a read-only
// file mapping: the page cache keeps them; a later read maps them again). Pages shared with
// rows not yet done stay.
void release_pages(const unsigned char* bytes, std::size_t n) {
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto a = reinterpret_cast<std::uintptr_t>(bytes), b = a + n;
  const std::uintptr_t first = (a + page - 1) / page * page, last = b / page * page;
  if (last > first)
    ::madvise(reinterpret_cast<void*>(first), static_cast<std::size_t>(last - first),
              MADV_DONTNEED);
}

EncodedImageView view_of(const Mapping& m, const FitsImage& info, const detail::DirectData& d) {
  EncodedImageView v(m.first_pixel, info.width, info.height, d.encoding, info.bscale, info.bzero);
  v.set_release(&release_pages);
  return v;
}

}  // namespace

std::optional<MappedFits> map_fits(const std::string& spec) {
  FitsImage info;
  std::optional<detail::DirectData> d;
  {
    detail::FitsPtr f = detail::open_image(spec, info);
    detail::check_data_size(f.get(), spec, info);
    d = detail::direct_data(f.get(), spec, info,
                            static_cast<std::size_t>(info.width) * info.height);
  }
  if (!d) return std::nullopt;
  const Mapping m = map_data(spec, info, *d);
  const EncodedImageView v = view_of(m, info, *d);
  return MappedFits(std::move(info), v, m.map, m.bytes);
}

MappedOrRead map_or_read_fits(const std::string& spec) {
  MappedOrRead out;
  FitsImage info;
  detail::FitsPtr f = detail::open_image(spec, info);
  detail::check_data_size(f.get(), spec, info);
  const auto d =
      detail::direct_data(f.get(), spec, info, static_cast<std::size_t>(info.width) * info.height);
  if (d) {
    f.reset();
    const Mapping m = map_data(spec, info, *d);
    const EncodedImageView v = view_of(m, info, *d);
    out.mapped = MappedFits(std::move(info), v, m.map, m.bytes);
  } else {
    detail::read_pixels_cfitsio(f.get(), spec, info);
    out.read = std::move(info);
  }
  return out;
}

}  // namespace psfphot::io
