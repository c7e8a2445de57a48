// PNG files through libpng: what is written reads back pixel for pixel, with its text.
#include "psfphot/io/png.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "support/test_support.hpp"

namespace psfphot::io {
namespace {

TEST(Png, RoundTripsEveryPixelAndTheText) {
  test::TempDir dir;
  RgbImage img(37, 11);
  for (int y = 0; y < img.height(); ++y)
    for (int x = 0; x < img.width(); ++x)
      img(x, y) = Rgb{static_cast<std::uint8_t>(7 * x), static_cast<std::uint8_t>(23 * y),
                      static_cast<std::uint8_t>((x * y) % 256)};
  const std::string p = dir.file("a.png");
  write_png(p, img, {{"Title", "frame 3: 12 stars"}, {"Software", "psfphot"}});
  std::ifstream in(p, std::ios::binary);
  char sig[8] = {0};
  in.read(sig, 8);
  EXPECT_EQ(std::string(sig + 1, 3), "PNG");
  const RgbImage back = read_png(p);
  ASSERT_EQ(back.width(), 37);
  ASSERT_EQ(back.height(), 11);
  for (int y = 0; y < img.height(); ++y)
    for (int x = 0; x < img.width(); ++x) ASSERT_EQ(back(x, y), img(x, y)) << x << "," << y;
  const auto text = read_png_text(p);
  ASSERT_EQ(text.size(), 2u);
  EXPECT_EQ(text[0].first, "Title");
  EXPECT_EQ(text[0].second, "frame 3: 12 stars");
}

TEST(Png, ErrorsNameTheFile) {
  test::TempDir dir;
  const std::string p = dir.file("not.png");
  std::ofstream(p) << "SIMPLE  =                    T";
  try {
    read_png(p);
    ADD_FAILURE();
  } catch (const PngError& e) {
    EXPECT_NE(std::string(e.what()).find(p + ": not a PNG file"), std::string::npos);
  }
  // A truncated PNG: libpng's error comes back as an exception, not a crash.
  RgbImage img(64, 64, colour::kRed);
  const std::string good = dir.file("good.png");
  write_png(good, img);
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string cut = dir.file("cut.png");
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  EXPECT_THROW(read_png(cut), PngError);
  EXPECT_THROW(write_png(dir.file("no/such/dir.png"), img), PngError);
  EXPECT_THROW(write_png(dir.file("empty.png"), RgbImage()), PngError);
}

}  // namespace
}  // namespace psfphot::io
