#include "psfphot/core/image.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <type_traits>

#include "psfphot/core/star.hpp"

namespace psfphot {
namespace {

TEST(Image, IndexingIsRowMajorWithXAsColumn) {
  Image<int> img(4, 3);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x) img(x, y) = 10 * y + x;
  EXPECT_EQ(img.data()[1 * 4 + 2], 12);  // data[y * stride + x]
  auto v = img.cview();
  EXPECT_EQ(v.stride(), 4);
  EXPECT_EQ(v(3, 2), 23);
  EXPECT_TRUE(v.contains(3, 2));
  EXPECT_FALSE(v.contains(4, 0));
  EXPECT_FALSE(v.contains(0, -1));
}

TEST(Image, SubviewKeepsFrameCoordinates) {
  Image<int> img(10, 8);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 10; ++x) img(x, y) = 100 * y + x;
  auto sub = img.view().subview(3, 2, 4, 5);
  EXPECT_EQ(sub.width(), 4);
  EXPECT_EQ(sub.height(), 5);
  EXPECT_EQ(sub.stride(), 10);
  EXPECT_EQ(sub.origin_x(), 3);
  EXPECT_EQ(sub.origin_y(), 2);
  EXPECT_EQ(sub(0, 0), 203);
  EXPECT_EQ(sub.at_frame(5, 4), 405);
  EXPECT_TRUE(sub.contains_frame(6, 6));
  EXPECT_FALSE(sub.contains_frame(7, 6));
  // Nested sub-views compose origins.
  auto sub2 = sub.subview(1, 1, 2, 2);
  EXPECT_EQ(sub2.origin_x(), 4);
  EXPECT_EQ(sub2.at_frame(5, 4), 405);
  // Writes through a view land in the image.
  sub2.at_frame(5, 4) = -1;
  EXPECT_EQ(img(5, 4), -1);
}

TEST(Image, SubviewIsClippedAtTheBorder) {
  Image<float> img(5, 5);
  auto sub = img.view().subview(-2, 3, 4, 4);
  EXPECT_EQ(sub.origin_x(), 0);
  EXPECT_EQ(sub.origin_y(), 3);
  EXPECT_EQ(sub.width(), 2);
  EXPECT_EQ(sub.height(), 2);
  auto none = img.view().subview(7, 7, 3, 3);
  EXPECT_TRUE(none.empty());
}

TEST(Image, MoveOnlyWithExplicitClone) {
  static_assert(!std::is_copy_constructible_v<Image<float>>);
  static_assert(std::is_nothrow_move_constructible_v<Image<float>>);
  Image<float> a(3, 2, 1.5f);
  Image<float> b = a.clone();
  b(0, 0) = 7;
  EXPECT_EQ(a(0, 0), 1.5f);
  const float* p = b.data();
  Image<float> c = std::move(b);
  EXPECT_EQ(c.data(), p);  // moved, not copied
  EXPECT_EQ(c(0, 0), 7);
  EXPECT_EQ(b.width(), 0);  // NOLINT(bugprone-use-after-move): moved-from is empty
}

TEST(Image, ConstViewConversion) {
  Image<float> a(2, 2, 3.f);
  ImageView<float> mv = a.view();
  ImageView<const float> cv = mv;
  EXPECT_EQ(cv(1, 1), 3.f);
}

TEST(Image, FreedFrameBuffersAreReusedAndStillFilled) {
  // A frame-sized image freed and asked for again gets the same (already faulted-in)
  // mapping back, and the new image is still filled with its value, not the old pixels.
  constexpr int w = 1536, h = 1024;  // 6 MiB of floats: above PixelAllocator::kLarge
  const float* first = nullptr;
  {
    Image<float> a(w, h, 0.f);
    first = a.data();
    for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = 7.f;
  }
  {
    Image<float> b(w, h, 2.f);
    EXPECT_EQ(b.data(), first);
    for (std::size_t i = 0; i < b.size(); ++i) ASSERT_EQ(b.data()[i], 2.f) << i;
  }
  // A different mapped length is not served from the kept mapping (which stays mapped, so
  // a fresh mapping cannot land on it either).
  Image<float> c(w, 2 * h, 0.f);
  EXPECT_NE(c.data(), first);
}

TEST(Star, RecordIsPlainAndStartsNaN) {
  static_assert(std::is_trivially_copyable_v<Star>);
  Star s = make_star(7, 3, 10, 20);
  EXPECT_EQ(s.frame_id, 7);
  EXPECT_EQ(s.star_id, 3);
  EXPECT_EQ(s.peak_x, 10);
  EXPECT_EQ(s.peak_y, 20);
  EXPECT_EQ(s.flags, 0u);
  EXPECT_TRUE(std::isnan(s.psf_flux));
  EXPECT_TRUE(std::isnan(s.centroid_x));
  EXPECT_STREQ(star_flag::name(star_flag::kEdge), "edge");
}

}  // namespace
}  // namespace psfphot
