#include "fits_direct.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <vector>

#include "fits_pixels.hpp"
#include "psfphot/core/float_plane.hpp"

namespace psfphot::io::detail {

// Where an uncompressed image's pixel data starts in its file, when psfphot may read it
// there itself (see read_pixels_direct below for the cases that must go through cfitsio).
// Pixel data of an uncompressed image read straight from the file and converted here,
// instead of through cfitsio's conversion of its own buffers: for the BITPIX 16 raw frame
// and the BITPIX -32 masters of `psfphot frame` cfitsio's path (copy into its buffer, byte
// swap, a second conversion loop, after the image was zero-filled) cost ~10% of the frame's
// time at 4096^2, and 5-7x a memory copy for BITPIX 32 and -64. The values are cfitsio's,
// bit for bit (tests/unit/io/fits_test.cpp compares them with fits_read_pix): integers
// (BITPIX 8, 16, 32) as (float)(v * BSCALE + BZERO) in double, or (float)v when unscaled;
// floats (BITPIX -32, -64) with cfitsio's null check when the caller passes NaN for nulls:
// exponent all ones (NaN, +-Inf) -> NaN, exponent zero (+-0, subnormals) -> +0, doubles
// rounded to float. Returns false, having read nothing, where another case applies
// (compressed, a BLANK keyword, scaled floats, a file cfitsio did not open in place).
std::optional<std::int64_t> direct_data_start(fitsfile* f, const std::string& spec,
                                              const FitsImage& img, std::size_t n) {
  if (img.compressed || (img.bitpix != 8 && img.bitpix != 16 && img.bitpix != 32 &&
                         img.bitpix != -32 && img.bitpix != -64))
    return std::nullopt;
  if (img.bitpix < 0 && (img.bscale != 1.0 || img.bzero != 0.0)) return std::nullopt;
  if (img.bitpix > 0) {
    int st = 0;
    long blank = 0;
    if (fits_read_key(f, TLONG, "BLANK", &blank, nullptr, &st) != KEY_NO_EXIST) return std::nullopt;
  }
  // Only a plain file opened in place: an HDU chosen by number or name is, an image section,
  // filter or a gzipped file becomes a copy in memory (of another size than the file).
  const std::size_t open_br = spec.find('[');
  const std::string base = spec.substr(0, open_br);
  if (open_br != std::string::npos) {
    const std::size_t close_br = spec.find(']', open_br);
    if (close_br + 1 != spec.size()) return std::nullopt;
    for (std::size_t i = open_br + 1; i < close_br; ++i) {
      const unsigned char ch = static_cast<unsigned char>(spec[i]);
      if (!std::isalnum(ch) && ch != '_' && ch != '-') return std::nullopt;
    }
  }
  std::error_code ec;
  const auto disk_bytes = std::filesystem::file_size(base, ec);
  if (ec || static_cast<LONGLONG>(disk_bytes) != f->Fptr->filesize) return std::nullopt;
  LONGLONG head = 0, data_start = 0, data_end = 0;
  int status = 0;
  if (fits_get_hduaddrll(f, &head, &data_start, &data_end, &status)) return std::nullopt;
  const std::size_t bpp = static_cast<std::size_t>(std::abs(img.bitpix) / 8);
  if (static_cast<std::size_t>(data_end - data_start) < n * bpp) return std::nullopt;
  return static_cast<std::int64_t>(data_start);
}

bool read_pixels_direct(fitsfile* f, const std::string& spec, const FitsImage& img, float* dst,
                        std::size_t n) {
  const std::optional<std::int64_t> start = direct_data_start(f, spec, img, n);
  if (!start) return false;
  const LONGLONG data_start = *start;
  const std::size_t bpp = static_cast<std::size_t>(std::abs(img.bitpix) / 8);
  const std::string base = spec.substr(0, spec.find('['));
  const int fd = ::open(base.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  // Chunks small enough to stay in cache between the kernel's copy and the conversion, read
  // and converted by the OpenMP threads side by side (pread has no shared file offset): the
  // copy, the conversion and the first touch of the new image's pages are then no longer a
  // serial part of a multi-threaded frame. Each chunk's values do not depend on who reads it.
  constexpr std::size_t kChunkBytes = std::size_t(256) << 10;
  const std::size_t per_chunk = kChunkBytes / bpp;
  const auto n_chunks = static_cast<std::ptrdiff_t>((n + per_chunk - 1) / per_chunk);
  bool failed = false;
#pragma omp parallel if (n_chunks > 1)
  {
    std::vector<unsigned char> buf(kChunkBytes);
#pragma omp for schedule(static)
    for (std::ptrdiff_t c = 0; c < n_chunks; ++c) {
      const std::size_t done = static_cast<std::size_t>(c) * per_chunk;
      const std::size_t m = std::min(per_chunk, n - done);
      const std::size_t bytes = m * bpp;
      std::size_t got = 0;
      while (got < bytes) {
        const ssize_t r = ::pread(fd, buf.data() + got, bytes - got,
                                  static_cast<off_t>(data_start + done * bpp + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += static_cast<std::size_t>(r);
      }
      if (got < bytes) {
        // Exceptions may not leave an OpenMP region: reported after it.
#pragma omp atomic write
        failed = true;
        continue;
      }
      switch (img.bitpix) {
        case 8: detail::be_uint8_to_float(buf.data(), m, img.bscale, img.bzero, dst + done); break;
        case 16: detail::be_int16_to_float(buf.data(), m, img.bscale, img.bzero, dst + done); break;
        case 32: detail::be_int32_to_float(buf.data(), m, img.bscale, img.bzero, dst + done); break;
        case -32: convert_fits_float32(buf.data(), m, dst + done); break;
        default: detail::be_float64_to_float(buf.data(), m, dst + done);
      }
    }
  }
  if (failed) throw FitsError(spec, "cannot read pixel data (file truncated or being replaced?)");
  return true;
}

MappedData map_data_unit(const std::string& spec, std::int64_t data_start, std::size_t bytes) {
  const std::string base = spec.substr(0, spec.find('['));
  const int fd = ::open(base.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  struct stat st {};
  if (::fstat(fd, &st) != 0 ||
      static_cast<std::uint64_t>(st.st_size) < static_cast<std::uint64_t>(data_start) + bytes) {
    ::close(fd);
    return {};
  }
  // The data unit's pages only (from the page holding its first byte: offsets must be
  // page-aligned), read-only and populated at once: one call maps them all (already in the
  // page cache after a recent write or read, or read from disk here) rather than one page
  // fault per few pages as the planes are read.
  const long page = ::sysconf(_SC_PAGESIZE);
  const std::int64_t first = page > 0 ? data_start / page * page : 0;
  const std::size_t len = static_cast<std::size_t>(data_start - first) + bytes;
  void* p =
      ::mmap(nullptr, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, static_cast<off_t>(first));
  ::close(fd);  // the mapping keeps the file open
  if (p == MAP_FAILED) return {};
  MappedData m;
  m.data = static_cast<const unsigned char*>(p) + (data_start - first);
  m.keep =
      std::shared_ptr<const void>(p, [len](const void* q) { ::munmap(const_cast<void*>(q), len); });
  return m;
}

}  // namespace psfphot::io::detail
