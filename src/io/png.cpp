#include "psfphot/io/png.hpp"

#include <png.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>

namespace psfphot::io {

// libpng reports errors by calling the error function and then longjmp-ing to the
// setjmp point of its caller. setjmp lives only in the small functions marked "C-style"
// below, which hold no object with a destructor and return false after an error; the
// C++ callers then throw PngError with libpng's message.

namespace {

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

struct ErrorCtx {
  char message[256] = {0};
};

void on_error(png_structp png, png_const_charp msg) {
  auto* ctx = static_cast<ErrorCtx*>(png_get_error_ptr(png));
  std::snprintf(ctx->message, sizeof ctx->message, "%s", msg ? msg : "libpng error");
  png_longjmp(png, 1);
}
void on_warning(png_structp, png_const_charp) {}

struct WriteStructs {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~WriteStructs() { png_destroy_write_struct(&png, &info); }
};
struct ReadStructs {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~ReadStructs() { png_destroy_read_struct(&png, &info, nullptr); }
};

// C-style.
[[gnu::noinline]] bool write_all(png_structp png, png_infop info, std::FILE* f,
                                 const unsigned char* pixels, png_uint_32 w, png_uint_32 h,
                                 png_textp chunks, int n_chunks) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_init_io(png, f);
  png_set_IHDR(png, info, w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (n_chunks > 0) png_set_text(png, info, chunks, n_chunks);
  png_write_info(png, info);
  for (png_uint_32 y = 0; y < h; ++y)
    png_write_row(png, pixels + static_cast<std::size_t>(y) * w * 3);
  png_write_end(png, nullptr);
  return true;
}

// C-style: header, conversions to 8-bit RGB; *w, *h, *rowbytes out.
[[gnu::noinline]] bool read_header(png_structp png, png_infop info, std::FILE* f, png_uint_32* w,
                                   png_uint_32* h, std::size_t* rowbytes) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_init_io(png, f);
  png_set_sig_bytes(png, 8);
  png_read_info(png, info);
  png_set_expand(png);  // palette -> RGB, grey < 8 bit -> 8 bit, tRNS -> alpha
  png_set_strip_16(png);
  png_set_strip_alpha(png);
  png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  *w = png_get_image_width(png, info);
  *h = png_get_image_height(png, info);
  *rowbytes = png_get_rowbytes(png, info);
  return true;
}

// C-style.
[[gnu::noinline]] bool read_pixels(png_structp png, png_infop info, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  png_read_end(png, info);
  return true;
}

}  // namespace

void write_png(const std::string& path, const RgbImage& img,
               const std::vector<std::pair<std::string, std::string>>& text) {
  static_assert(sizeof(Rgb) == 3, "Rgb rows are written as packed RGB bytes");
  if (img.empty()) throw PngError(path + ": empty picture");
  File f(std::fopen(path.c_str(), "wb"));
  if (!f) throw PngError(path + ": cannot open for writing: " + std::strerror(errno));
  ErrorCtx ctx;
  WriteStructs s;
  s.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning);
  if (!s.png) throw PngError(path + ": png_create_write_struct failed");
  s.info = png_create_info_struct(s.png);
  if (!s.info) throw PngError(path + ": png_create_info_struct failed");
  std::vector<png_text> chunks(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    chunks[i] = png_text{};
    chunks[i].compression = PNG_TEXT_COMPRESSION_NONE;
    chunks[i].key = const_cast<char*>(text[i].first.c_str());
    chunks[i].text = const_cast<char*>(text[i].second.c_str());
    chunks[i].text_length = text[i].second.size();
  }
  if (!write_all(s.png, s.info, f.get(), reinterpret_cast<const unsigned char*>(img.data()),
                 static_cast<png_uint_32>(img.width()), static_cast<png_uint_32>(img.height()),
                 chunks.data(), static_cast<int>(chunks.size())))
    throw PngError(path + ": " + ctx.message);
  if (std::fflush(f.get()) != 0 || std::ferror(f.get()))
    throw PngError(path + ": write failed: " + std::strerror(errno));
  if (std::fclose(f.release()) != 0)
    throw PngError(path + ": close failed: " + std::strerror(errno));
}

namespace {

RgbImage read(const std::string& path, std::vector<std::pair<std::string, std::string>>* text) {
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) throw PngError(path + ": cannot open: " + std::strerror(errno));
  unsigned char sig[8] = {0};
  if (std::fread(sig, 1, 8, f.get()) != 8 || png_sig_cmp(sig, 0, 8) != 0)
    throw PngError(path + ": not a PNG file");
  ErrorCtx ctx;
  ReadStructs s;
  s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning);
  if (!s.png) throw PngError(path + ": png_create_read_struct failed");
  s.info = png_create_info_struct(s.png);
  if (!s.info) throw PngError(path + ": png_create_info_struct failed");
  png_uint_32 w = 0, h = 0;
  std::size_t rowbytes = 0;
  if (!read_header(s.png, s.info, f.get(), &w, &h, &rowbytes))
    throw PngError(path + ": " + ctx.message);
  if (rowbytes != static_cast<std::size_t>(w) * 3)
    throw PngError(path + ": unexpected row size after conversion to RGB");
  RgbImage img(static_cast<int>(w), static_cast<int>(h));
  std::vector<png_bytep> rows(h);
  for (png_uint_32 y = 0; y < h; ++y)
    rows[y] = reinterpret_cast<png_bytep>(img.data() + static_cast<std::size_t>(y) * w);
  if (!read_pixels(s.png, s.info, rows.data())) throw PngError(path + ": " + ctx.message);
  if (text) {
    png_textp t = nullptr;
    int n = 0;
    png_get_text(s.png, s.info, &t, &n);
    for (int i = 0; i < n; ++i) text->emplace_back(t[i].key, t[i].text ? t[i].text : "");
  }
  return img;
}

}  // namespace

RgbImage read_png(const std::string& path) {
  return read(path, nullptr);
}

std::vector<std::pair<std::string, std::string>> read_png_text(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> text;
  read(path, &text);
  return text;
}

}  // namespace psfphot::io
