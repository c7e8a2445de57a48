#include "fits_direct.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

namespace psfphot::io::detail {

// Pixel data of an uncompressed image read straight from the file and decoded here, instead
// of through cfitsio's conversion of its own buffers: for the BITPIX 16 raw frame and the
// BITPIX -32 masters of `psfphot frame` cfitsio's path (copy into its buffer, byte swap, a
// second conversion loop, after the image was zero-filled) cost ~10% of the frame's time at
// 4096^2, and 5-7x a memory copy for BITPIX 32 and -64. The values are cfitsio's, bit for bit
// (tests/unit/io/fits_test.cpp compares them with fits_read_pix).
void check_data_size(fitsfile* f, const std::string& spec, const FitsImage& out) {
  const int w = out.width, h = out.height;
  int status = 0;
  if (!out.compressed) {
    // A corrupt or cut header can claim gigabytes: check the data unit is really there
    // before allocating it (a 100000 x 100000 header on a 6 kB file is "truncated", not
    // a 40 GB allocation). cfitsio's own file size also holds for .gz files it inflated.
    LONGLONG head = 0, data_start = 0, data_end = 0;
    const LONGLONG file_bytes = f->Fptr->filesize;
    const LONGLONG need = static_cast<LONGLONG>(w) * h * (std::abs(out.bitpix) / 8);
    if (fits_get_hduaddrll(f, &head, &data_start, &data_end, &status) == 0 &&
        data_start + need > file_bytes) {
      throw FitsError(spec, "file truncated: the header declares " + std::to_string(w) + "x" +
                                std::to_string(h) + " pixels of BITPIX " +
                                std::to_string(out.bitpix) + " (" + std::to_string(need) +
                                " bytes) but only " +
                                std::to_string(std::max<LONGLONG>(0, file_bytes - data_start)) +
                                " bytes follow the header");
    }
  }
}

std::optional<DirectData> direct_data(fitsfile* f, const std::string& spec, const FitsImage& img,
                                      std::size_t n) {
  if (img.compressed) return std::nullopt;
  PixelEncoding enc = PixelEncoding::kFloat;
  switch (img.bitpix) {
    case 8: enc = PixelEncoding::kFitsUint8; break;
    case 16: enc = PixelEncoding::kFitsInt16; break;
    case 32: enc = PixelEncoding::kFitsInt32; break;
    case -32: enc = PixelEncoding::kFitsFloat32; break;
    case -64: enc = PixelEncoding::kFitsFloat64; break;
    default: return std::nullopt;
  }
  if (img.bitpix < 0 && (img.bscale != 1.0 || img.bzero != 0.0)) return std::nullopt;
  if (img.bitpix > 0) {
    int st = 0;
    long blank = 0;
    if (fits_read_key(f, TLONG, "BLANK", &blank, nullptr, &st) != KEY_NO_EXIST) return std::nullopt;
  }
  // Only a plain file opened in place: an HDU chosen by number or name is, an image section,
  // filter or a gzipped file becomes a copy in memory (of another size than the file).
  const std::size_t open_br = spec.find('[');
  DirectData d;
  d.file = spec.substr(0, open_br);
  d.encoding = enc;
  if (open_br != std::string::npos) {
    const std::size_t close_br = spec.find(']', open_br);
    if (close_br + 1 != spec.size()) return std::nullopt;
    for (std::size_t i = open_br + 1; i < close_br; ++i) {
      const unsigned char ch = static_cast<unsigned char>(spec[i]);
      if (!std::isalnum(ch) && ch != '_' && ch != '-') return std::nullopt;
    }
  }
  std::error_code ec;
  const auto disk_bytes = std::filesystem::file_size(d.file, ec);
  if (ec || static_cast<LONGLONG>(disk_bytes) != f->Fptr->filesize) return std::nullopt;
  LONGLONG head = 0, data_start = 0, data_end = 0;
  int status = 0;
  if (fits_get_hduaddrll(f, &head, &data_start, &data_end, &status)) return std::nullopt;
  d.offset = static_cast<std::size_t>(data_start);
  d.bytes = n * encoded_pixel_bytes(enc);
  if (static_cast<std::size_t>(data_end - data_start) < d.bytes) return std::nullopt;
  return d;
}

void read_pixels_direct(const std::string& spec, const DirectData& d, const FitsImage& img,
                        float* dst, std::size_t n) {
  const int fd = ::open(d.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FitsError(spec, std::string("cannot open: ") + std::strerror(errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  const std::size_t bpp = encoded_pixel_bytes(d.encoding);
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
                                  static_cast<off_t>(d.offset + done * bpp + got));
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
      decode_pixels(buf.data(), m, d.encoding, img.bscale, img.bzero, dst + done);
    }
  }
  if (failed) throw FitsError(spec, "cannot read pixel data (file truncated or being replaced?)");
}

}  // namespace psfphot::io::detail
