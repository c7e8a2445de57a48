#include "psfphot/algo/calibrate.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "support/synth.hpp"

namespace psfphot {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr double kNoSat = std::numeric_limits<double>::quiet_NaN();

// Calibrated pixels are float: (raw - s dark) / f carries a few ulps of rounding on values
// of a few thousand ADU, i.e. < 1e-3 ADU.
constexpr double kFloatTol = 1e-3;

Image<float> pattern(int w, int h, float base, int mod) {
  Image<float> img(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) img(x, y) = base + static_cast<float>((3 * x + 7 * y) % mod);
  return img;
}

TEST(CalibrateTest, DarkIsScaledByTheExposureTimeRatio) {
  const int w = 23, h = 17;
  const Image<float> sky = pattern(w, h, 1000.f, 11);
  const Image<float> dark = pattern(w, h, 50.f, 13);  // a 60 s dark
  Image<float> raw(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) raw(x, y) = sky(x, y) + 2.5f * dark(x, y);  // 150 s science

  CalibrationInputs in;
  in.dark = dark.cview();
  in.dark_exptime_s = 60.0;
  const CalibratedImage c = calibrate(raw.cview(), 150.0, kNoSat, in, CalibrationConfig{});
  EXPECT_DOUBLE_EQ(c.dark_scale, 2.5);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      EXPECT_NEAR(c.pixels(x, y), sky(x, y), kFloatTol) << x << "," << y;
      EXPECT_EQ(c.mask(x, y), 0);
    }
  EXPECT_EQ(c.n_saturated + c.n_nonfinite + c.n_flat_invalid, 0u);
}

TEST(CalibrateTest, DarkNotScaledWhenConfigured) {
  const int w = 9, h = 8;
  const Image<float> dark = pattern(w, h, 50.f, 13);
  Image<float> raw = pattern(w, h, 700.f, 5);
  CalibrationInputs in;
  in.dark = dark.cview();
  in.dark_exptime_s = 60.0;
  CalibrationConfig cfg;
  cfg.scale_dark_by_exptime = false;
  // Different exposure times, and even an unknown one: the dark is subtracted as it is.
  for (double t : {150.0, std::numeric_limits<double>::quiet_NaN()}) {
    const CalibratedImage c = calibrate(raw.cview(), t, kNoSat, in, cfg);
    EXPECT_DOUBLE_EQ(c.dark_scale, 1.0);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        EXPECT_NEAR(c.pixels(x, y), raw(x, y) - dark(x, y), kFloatTol) << x << "," << y;
  }
}

TEST(CalibrateTest, DarkScalingWithoutExposureTimesThrows) {
  const Image<float> raw(5, 5, 100.f), dark(5, 5, 10.f);
  CalibrationInputs in;
  in.dark = dark.cview();
  in.dark_exptime_s = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(calibrate(raw.cview(), 30.0, kNoSat, in, {}), CalibrationError);
  in.dark_exptime_s = 30.0;
  EXPECT_THROW(calibrate(raw.cview(), 0.0, kNoSat, in, {}), CalibrationError);
}

// dark_exptime_scale: calibrate()'s factor, also what CalibrateStep scales the master dark's
// overscan level by.
TEST(CalibrateTest, DarkScaleIsTheExposureRatioOrOne) {
  constexpr double kInfT = std::numeric_limits<double>::infinity();
  CalibrationConfig cfg;
  EXPECT_EQ(dark_exptime_scale(60.0, 30.0, cfg), 2.0);
  EXPECT_EQ(dark_exptime_scale(150.0, 60.0, cfg), 150.0 / 60.0);
  EXPECT_TRUE(std::isnan(dark_exptime_scale(60.0, 0.0, cfg)));
  EXPECT_TRUE(std::isnan(dark_exptime_scale(-60.0, 30.0, cfg)));
  EXPECT_TRUE(std::isnan(dark_exptime_scale(std::nan(""), 30.0, cfg)));
  // Infinite times and ratios that leave the doubles give no factor either.
  EXPECT_TRUE(std::isnan(dark_exptime_scale(kInfT, kInfT, cfg)));
  EXPECT_TRUE(std::isnan(dark_exptime_scale(kInfT, 30.0, cfg)));
  EXPECT_TRUE(std::isnan(dark_exptime_scale(60.0, kInfT, cfg)));
  EXPECT_TRUE(std::isnan(dark_exptime_scale(1e300, 1e-300, cfg)));
  EXPECT_TRUE(std::isnan(dark_exptime_scale(1e-300, 1e300, cfg)));
  cfg.scale_dark_by_exptime = false;
  EXPECT_EQ(dark_exptime_scale(60.0, 30.0, cfg), 1.0);
  EXPECT_EQ(dark_exptime_scale(std::nan(""), 0.0, cfg), 1.0);
  EXPECT_EQ(dark_exptime_scale(kInfT, kInfT, cfg), 1.0);
}

// Times that are there but give no finite factor: an error naming them, not a frame of NaN
// or infinite pixels; without scaling they do not matter.
TEST(CalibrateTest, DarkScalingWithInfiniteExposureTimesThrows) {
  constexpr double kInfT = std::numeric_limits<double>::infinity();
  const Image<float> raw(5, 5, 100.f), dark(5, 5, 10.f);
  CalibrationInputs in;
  in.dark = dark.cview();
  const std::vector<std::pair<double, double>> cases = {
      {kInfT, kInfT}, {kInfT, 30.0}, {30.0, kInfT}};
  for (const auto& [sci, drk] : cases) {
    in.dark_exptime_s = drk;
    try {
      (void)calibrate(raw.cview(), sci, kNoSat, in, {});
      ADD_FAILURE() << sci << " / " << drk << " calibrated";
    } catch (const CalibrationError& e) {
      EXPECT_NE(std::string(e.what()).find("is not a finite factor"), std::string::npos)
          << e.what();
    }
    CalibrationConfig plain;
    plain.scale_dark_by_exptime = false;
    const CalibratedImage c = calibrate(raw.cview(), sci, kNoSat, in, plain);
    EXPECT_EQ(c.dark_scale, 1.0);
    EXPECT_EQ(c.pixels(2, 2), 90.f);
  }
  // A missing time keeps its message.
  in.dark_exptime_s = std::numeric_limits<double>::quiet_NaN();
  try {
    (void)calibrate(raw.cview(), 30.0, kNoSat, in, {});
    ADD_FAILURE() << "no dark EXPTIME calibrated";
  } catch (const CalibrationError& e) {
    EXPECT_NE(std::string(e.what()).find("needs EXPTIME in both science frame and dark"),
              std::string::npos)
        << e.what();
  }
}

TEST(CalibrateTest, NoDarkNoFlatIsIdentity) {
  const Image<float> raw = pattern(6, 4, 123.f, 7);
  const CalibratedImage c = calibrate(raw.cview(), 10.0, kNoSat, {}, {});
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 6; ++x) EXPECT_EQ(c.pixels(x, y), raw(x, y));
}

TEST(CalibrateTest, FlatNormalisedToMaxMedianMean) {
  // Valid values {1, 2, 3, 4, 10}: max 10, median 3, mean 4; the invalid pixels (0, -1, NaN,
  // +inf) must not enter the norm.
  Image<float> flat(9, 1);
  const float vals[9] = {1.f, 2.f, 0.f, 3.f, -1.f, 4.f, kNaN, 10.f, kInf};
  for (int x = 0; x < 9; ++x) flat(x, 0) = vals[x];
  struct Case {
    FlatNorm how;
    double norm;
  };
  for (Case c :
       {Case{FlatNorm::kMax, 10.0}, Case{FlatNorm::kMedian, 3.0}, Case{FlatNorm::kMean, 4.0}}) {
    const NormalisedFlat nf = normalise_flat(flat.cview(), c.how);
    EXPECT_DOUBLE_EQ(nf.norm, c.norm);
    EXPECT_EQ(nf.n_invalid, 4u);
    for (int x = 0; x < 9; ++x) {
      const bool valid = std::isfinite(vals[x]) && vals[x] > 0;
      if (valid) {
        EXPECT_FLOAT_EQ(nf.response(x, 0), static_cast<float>(vals[x] / c.norm));
        EXPECT_EQ(nf.invalid(x, 0), 0);
      } else {
        EXPECT_TRUE(std::isnan(nf.response(x, 0))) << x;
        EXPECT_EQ(nf.invalid(x, 0), mask::kFlatInvalid) << x;
      }
    }
  }
}

TEST(CalibrateTest, FlatDivisionAndInvalidFlatPixelsMaskedNeverInf) {
  const int w = 8, h = 6;
  Image<float> flat(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) flat(x, y) = 0.5f + 0.05f * static_cast<float>(x + y);  // max 1.1
  flat(1, 1) = 0.f;
  flat(2, 3) = -0.3f;
  flat(4, 4) = kNaN;
  flat(6, 2) = -kInf;
  const NormalisedFlat nf = normalise_flat(flat.cview(), FlatNorm::kMax);
  ASSERT_NEAR(nf.norm, 1.1, 1e-6);
  const Image<float> raw = pattern(w, h, 2000.f, 17);
  CalibrationInputs in;
  in.flat = &nf;
  const CalibratedImage c = calibrate(raw.cview(), 1.0, kNoSat, in, {});
  EXPECT_EQ(c.n_flat_invalid, 4u);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const float v = c.pixels(x, y);
      EXPECT_FALSE(std::isinf(v)) << x << "," << y;
      if (std::isfinite(flat(x, y)) && flat(x, y) > 0) {
        // The lab's rule: divide by flat / max(flat).
        EXPECT_NEAR(v, raw(x, y) / (flat(x, y) / 1.1), 2e-3) << x << "," << y;
        EXPECT_EQ(c.mask(x, y), 0);
      } else {
        EXPECT_TRUE(std::isnan(v)) << x << "," << y;
        EXPECT_TRUE(c.mask(x, y) & mask::kFlatInvalid) << x << "," << y;
      }
    }
}

TEST(CalibrateTest, SaturationMaskFromLevelKeepsValue) {
  const int w = 10, h = 3;
  Image<float> raw(w, h, 100.f);
  raw(2, 1) = 59999.f;
  raw(3, 1) = 60000.f;  // at the level: saturated (>=)
  raw(4, 1) = 65535.f;
  const Image<float> dark(w, h, 10.f);
  CalibrationInputs in;
  in.dark = dark.cview();
  in.dark_exptime_s = 5.0;
  const CalibratedImage c = calibrate(raw.cview(), 5.0, 60000.0, in, {});
  EXPECT_EQ(c.n_saturated, 2u);
  EXPECT_EQ(c.mask(2, 1), 0);
  EXPECT_EQ(c.mask(3, 1), mask::kSaturated);
  EXPECT_EQ(c.mask(4, 1), mask::kSaturated);
  // The value is kept (dark subtracted as usual); the level applies to the raw value.
  EXPECT_NEAR(c.pixels(4, 1), 65525.f, kFloatTol);
  EXPECT_NEAR(c.pixels(3, 1), 59990.f, kFloatTol);
  // No level (NaN): nothing is saturated.
  const CalibratedImage c2 = calibrate(raw.cview(), 5.0, kNoSat, in, {});
  EXPECT_EQ(c2.n_saturated, 0u);
  EXPECT_EQ(c2.mask(4, 1), 0);
}

TEST(CalibrateTest, NonFiniteRawPixelsMasked) {
  Image<float> raw(5, 4, 10.f);
  raw(0, 0) = kNaN;
  raw(3, 2) = kInf;
  raw(4, 3) = -kInf;
  const CalibratedImage c = calibrate(raw.cview(), 1.0, 1000.0, {}, {});
  EXPECT_EQ(c.n_nonfinite, 3u);
  EXPECT_EQ(c.n_saturated, 0u);  // +inf is non-finite, not saturated
  EXPECT_EQ(c.mask(0, 0), mask::kNonFinite);
  EXPECT_EQ(c.mask(3, 2), mask::kNonFinite);
  EXPECT_EQ(c.mask(4, 3), mask::kNonFinite);
  EXPECT_EQ(c.mask(1, 1), 0);
  // A non-finite dark pixel makes the calibrated pixel non-finite: masked as well.
  Image<float> dark(5, 4, 1.f);
  dark(2, 2) = kNaN;
  CalibrationInputs in;
  in.dark = dark.cview();
  in.dark_exptime_s = 1.0;
  const CalibratedImage d = calibrate(raw.cview(), 1.0, kNoSat, in, {});
  EXPECT_TRUE(d.mask(2, 2) & mask::kNonFinite);
  EXPECT_EQ(d.n_nonfinite, 4u);
}

TEST(CalibrateTest, ShapeMismatchNamesBothShapes) {
  const Image<float> raw(10, 9, 1.f), dark(10, 8, 1.f), flat(11, 9, 1.f);
  CalibrationInputs in;
  in.dark = dark.cview();
  in.dark_exptime_s = 1.0;
  try {
    calibrate(raw.cview(), 1.0, kNoSat, in, {});
    FAIL() << "no exception";
  } catch (const CalibrationError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("10x8"), std::string::npos) << msg;
    EXPECT_NE(msg.find("10x9"), std::string::npos) << msg;
  }
  const NormalisedFlat nf = normalise_flat(flat.cview(), FlatNorm::kMax);
  CalibrationInputs in2;
  in2.flat = &nf;
  try {
    calibrate(raw.cview(), 1.0, kNoSat, in2, {});
    FAIL() << "no exception";
  } catch (const CalibrationError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("11x9"), std::string::npos) << msg;
    EXPECT_NE(msg.find("10x9"), std::string::npos) << msg;
  }
}

TEST(CalibrateTest, NothingUsableThrows) {
  const Image<float> raw(4, 4, kNaN);
  EXPECT_THROW(calibrate(raw.cview(), 1.0, kNoSat, {}, {}), CalibrationError);
  const Image<float> flat(4, 4, -1.f);
  EXPECT_THROW(normalise_flat(flat.cview(), FlatNorm::kMedian), CalibrationError);
  const Image<float> empty;
  EXPECT_THROW(calibrate(empty.cview(), 1.0, kNoSat, {}, {}), CalibrationError);
}

std::vector<ImageView<const float>> views(const std::vector<Image<float>>& frames) {
  std::vector<ImageView<const float>> v;
  for (const auto& f : frames) v.push_back(f.cview());
  return v;
}

TEST(CalibrateTest, ClippedMeanRejectsACosmicRay) {
  // 7 frames of a 1000 ADU level with 5 ADU noise; frame 3 carries a +5000 ADU hit.
  constexpr int n = 7, w = 40, h = 30;
  constexpr double level = 1000, noise = 5;
  std::mt19937 rng(3);
  std::vector<Image<float>> frames;
  for (int i = 0; i < n; ++i) {
    frames.push_back(test::constant(w, h, static_cast<float>(level)));
    test::add_noise(frames.back(), noise, rng);
  }
  frames[3](12, 7) += 5000.f;
  const Image<float> out = combine_frames(views(frames), CombineConfig{});
  // Without the hit the pixel is a mean of 6 or 7 frames (sd noise/sqrt(6) ~ 2 ADU); a plain
  // mean would be ~714 ADU high. 5 standard errors allowed.
  const double se = noise / std::sqrt(6.0);
  EXPECT_NEAR(out(12, 7), level, 5 * se);
  // Everywhere: a mean of ~7 frames; its average over the frame is unbiased to
  // noise / sqrt(7 w h), and its scatter close to noise / sqrt(7).
  double sum = 0, sum2 = 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      sum += out(x, y) - level;
      sum2 += (out(x, y) - level) * (out(x, y) - level);
    }
  const double npix = w * h, mean = sum / npix, sd = std::sqrt(sum2 / npix - mean * mean);
  EXPECT_NEAR(mean, 0.0, 5 * noise / std::sqrt(7 * npix));
  // Clipping at 3 robust sigmas of 7 values rejects a good value now and then, so the scatter
  // is a little above the mean's noise / sqrt(7) (and well below the median's 1.25x).
  EXPECT_GT(sd, 0.9 * noise / std::sqrt(7.0));
  EXPECT_LT(sd, 1.15 * noise / std::sqrt(7.0));
}

TEST(CalibrateTest, ClippedMeanRejectsACosmicRayOnQuantisedFrames) {
  // Integer-valued frames (uint16 bias or dark frames with sub-ADU noise) are often all
  // equal in a pixel, so the MAD is 0: a hit must still be rejected, not averaged in.
  constexpr int n = 5;
  std::vector<Image<float>> frames;
  for (int i = 0; i < n; ++i) frames.push_back(test::constant(6, 5, 300.f));
  frames[0](1, 1) = 301.f;  // one frame one ADU off: MAD still 0
  frames[2](1, 1) = 9000.f;
  frames[4](3, 2) = 20000.f;
  const Image<float> out = combine_frames(views(frames), CombineConfig{});
  EXPECT_NEAR(out(3, 2), 300.f, 1e-3);
  EXPECT_NEAR(out(1, 1), 300.f, 1e-3);
  EXPECT_NEAR(out(0, 0), 300.f, 1e-3);
}

TEST(CalibrateTest, MedianCombine) {
  // Constant frames 0, 10, 20, 30, 40: median 20; a hit replacing the 10 in one pixel makes
  // it {0, 20, 30, 40, 1e6}: 30. With the last frame dropped: 15 and 25.
  std::vector<Image<float>> frames;
  for (int i = 0; i < 5; ++i) frames.push_back(test::constant(4, 3, 10.f * static_cast<float>(i)));
  frames[1](2, 2) = 1e6f;
  CombineConfig cfg;
  cfg.method = CombineMethod::kMedian;
  Image<float> out = combine_frames(views(frames), cfg);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x) EXPECT_FLOAT_EQ(out(x, y), (x == 2 && y == 2) ? 30.f : 20.f);
  frames.pop_back();
  out = combine_frames(views(frames), cfg);
  EXPECT_FLOAT_EQ(out(0, 0), 15.f);
  // 1e6 replaces 10 in frame 1: {0, 20, 30, 1e6} -> 25.
  EXPECT_FLOAT_EQ(out(2, 2), 25.f);
}

TEST(CalibrateTest, CombineScalesAndNonFinite) {
  // Flats at three lamp levels become identical after scaling by 1/level.
  std::vector<Image<float>> frames;
  const double levels[3] = {100, 200, 400};
  for (double l : levels) {
    Image<float> f = pattern(5, 4, 0.f, 7);
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 5; ++x) f(x, y) = static_cast<float>((1.0 + 0.1 * f(x, y)) * l);
    frames.push_back(std::move(f));
  }
  frames[1](0, 0) = kNaN;  // ignored, the other frames decide
  for (CombineMethod m : {CombineMethod::kClippedMean, CombineMethod::kMedian}) {
    CombineConfig cfg;
    cfg.method = m;
    const Image<float> out = combine_frames(views(frames), cfg, {1.0 / 100, 1.0 / 200, 1.0 / 400});
    const Image<float> p = pattern(5, 4, 0.f, 7);
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 5; ++x) EXPECT_NEAR(out(x, y), 1.0 + 0.1 * p(x, y), 1e-5);
  }
  // A pixel NaN in every frame stays NaN.
  for (auto& f : frames) f(4, 3) = kNaN;
  EXPECT_TRUE(std::isnan(combine_frames(views(frames), {})(4, 3)));
}

TEST(CalibrateTest, CombineRejectsBadStacks) {
  EXPECT_THROW(combine_frames({}, {}), CalibrationError);
  std::vector<Image<float>> frames;
  frames.push_back(test::constant(4, 4, 1.f));
  frames.push_back(test::constant(4, 5, 1.f));
  try {
    combine_frames(views(frames), {});
    FAIL() << "no exception";
  } catch (const CalibrationError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("4x5"), std::string::npos) << msg;
    EXPECT_NE(msg.find("4x4"), std::string::npos) << msg;
  }
  frames.pop_back();
  frames.push_back(test::constant(4, 4, 2.f));
  EXPECT_THROW(combine_frames(views(frames), {}, {1.0}), CalibrationError);
}

template <typename T>
bool same_bytes(const Image<T>& a, const Image<T>& b) {
  return a.width() == b.width() && a.height() == b.height() &&
         std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

TEST(CalibrateTest, OneAndTwoThreadsGiveIdenticalBytes) {
  const int w = 301, h = 257;
  std::mt19937 rng(17);
  Image<float> raw = test::constant(w, h, 1500.f), dark = test::constant(w, h, 80.f),
               flat = test::constant(w, h, 20000.f);
  test::add_noise(raw, 400.0, rng);
  test::add_noise(dark, 7.0, rng);
  test::add_noise(flat, 900.0, rng);
  raw(5, 5) = kNaN;
  flat(9, 9) = 0.f;
  std::vector<Image<float>> stack;
  for (int i = 0; i < 5; ++i) {
    stack.push_back(test::constant(w, h, 80.f));
    test::add_noise(stack.back(), 7.0, rng);
  }
  const int saved = omp_get_max_threads();
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    NormalisedFlat nf = normalise_flat(flat.cview(), FlatNorm::kMedian);
    CalibrationInputs in;
    in.dark = dark.cview();
    in.dark_exptime_s = 30.0;
    in.flat = &nf;
    CalibratedImage c = calibrate(raw.cview(), 45.0, 2500.0, in, {});
    Image<float> master = combine_frames(views(stack), {});
    return std::make_tuple(std::move(nf), std::move(c), std::move(master));
  };
  auto [f1, c1, m1] = run(1);
  auto [f2, c2, m2] = run(2);
  omp_set_num_threads(saved);
  EXPECT_TRUE(same_bytes(f1.response, f2.response));
  EXPECT_TRUE(same_bytes(f1.invalid, f2.invalid));
  EXPECT_TRUE(same_bytes(c1.pixels, c2.pixels));
  EXPECT_TRUE(same_bytes(c1.mask, c2.mask));
  EXPECT_EQ(c1.n_saturated, c2.n_saturated);
  EXPECT_GT(c1.n_saturated, 0u);  // the 2500 ADU level is hit by the 400 ADU noise
  EXPECT_TRUE(same_bytes(m1, m2));
}

// calibrate_in_place (the pipeline's allocation-free path) must give exactly calibrate()'s
// pixels, mask and counts, with dark scaling, an invalid-flat pixel, a saturated pixel and
// non-finite raw pixels all present.
TEST(CalibrateTest, InPlaceGivesTheSameBytesAsCalibrate) {
  const int w = 16, h = 9;
  Image<float> flat(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) flat(x, y) = 0.6f + 0.03f * static_cast<float>(x + 2 * y);
  flat(3, 2) = 0.f;
  flat(7, 5) = kNaN;
  const NormalisedFlat nf = normalise_flat(flat.cview(), FlatNorm::kMax);
  const Image<float> dark = pattern(w, h, 40.f, 7);
  Image<float> raw = pattern(w, h, 900.f, 13);
  raw(1, 1) = 60000.f;
  raw(5, 4) = kNaN;
  raw(9, 8) = kInf;
  CalibrationInputs in;
  in.dark = dark.cview();
  in.dark_exptime_s = 30.0;
  in.flat = &nf;
  const CalibratedImage ref = calibrate(raw.cview(), 45.0, 50000.0, in, {});
  Image<float> px = raw.clone();
  const CalibratedImage ip = calibrate_in_place(px.view(), 45.0, 50000.0, in, {});
  EXPECT_TRUE(ip.pixels.empty());
  EXPECT_EQ(0, std::memcmp(px.data(), ref.pixels.data(), px.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(ip.mask.data(), ref.mask.data(), ip.mask.size()));
  EXPECT_EQ(ip.n_saturated, 1u);
  EXPECT_EQ(ip.n_saturated, ref.n_saturated);
  EXPECT_EQ(ip.n_nonfinite, ref.n_nonfinite);
  EXPECT_EQ(ip.n_flat_invalid, 2u);
  EXPECT_EQ(ip.n_flat_invalid, ref.n_flat_invalid);
  EXPECT_DOUBLE_EQ(ip.dark_scale, 1.5);
}

// Every kind of pixel through the calibration (vectorised 8 pixels at a time, the row's tail
// one by one: a width of 37 has both), against the rule written out per pixel: non-finite
// raw -> kNonFinite, else >= saturation -> kSaturated; v - scale * dark (with a dark); a
// non-finite flat response -> NaN and kFlatInvalid, else v / response (with a flat); any
// other non-finite result -> kNonFinite.
static void expect_every_pixel_kind_follows_the_rule(bool has_dark, bool has_flat, double sat) {
  SCOPED_TRACE(std::string("dark ") + (has_dark ? "yes" : "no") + ", flat " +
               (has_flat ? "yes" : "no") + ", saturation " + std::to_string(sat));
  const int w = 37, h = 5;
  const float inf = std::numeric_limits<float>::infinity();
  Image<float> raw(w, h), dark(w, h), flat(w, h);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-50.f, 900.f), fu(0.5f, 1.5f);
  const float raw_special[] = {kNaN, inf, -inf, 1000.f, 999.99f, -0.f, 3e38f};
  const float dark_special[] = {kNaN, inf, -3e38f};
  const float flat_special[] = {kNaN, inf, -inf, 1e-30f};
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int k = y * w + x;
      raw(x, y) = k % 5 == 0 ? raw_special[(k / 5) % 7] : u(rng);
      dark(x, y) = k % 11 == 0 ? dark_special[(k / 11) % 3] : u(rng) * 0.01f;
      flat(x, y) = k % 7 == 0 ? flat_special[(k / 7) % 4] : fu(rng);
    }
  NormalisedFlat nf;
  nf.response = flat.clone();  // used as given: NaN and inf are the invalid responses
  CalibrationInputs in;
  if (has_dark) {
    in.dark = dark.cview();
    in.dark_exptime_s = 20.0;
  }
  if (has_flat) in.flat = &nf;
  const CalibratedImage c = calibrate(raw.cview(), 30.0, sat, in, CalibrationConfig{});
  const float ds = static_cast<float>(30.0 / 20.0);
  std::size_t n_sat = 0, n_nf = 0, n_fi = 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const float r = raw(x, y), f = flat(x, y);
      MaskBits bits = 0;
      if (!std::isfinite(r))
        bits |= mask::kNonFinite;
      else if (std::isfinite(sat) && r >= static_cast<float>(sat))
        bits |= mask::kSaturated;
      float v = has_dark ? r - ds * dark(x, y) : r;
      if (has_flat && std::isfinite(f)) {
        v = v / f;
      } else if (has_flat) {
        v = kNaN;
        bits |= mask::kFlatInvalid;
      }
      if (!std::isfinite(v) && !(bits & mask::kFlatInvalid)) bits |= mask::kNonFinite;
      n_sat += (bits & mask::kSaturated) != 0;
      n_nf += (bits & mask::kNonFinite) != 0;
      n_fi += (bits & mask::kFlatInvalid) != 0;
      EXPECT_EQ(c.mask(x, y), bits) << x << "," << y;
      EXPECT_EQ(0, std::memcmp(&c.pixels(x, y), &v, sizeof v)) << x << "," << y;
    }
  EXPECT_EQ(n_sat > 0, std::isfinite(sat));
  EXPECT_GT(n_nf, 0u);
  EXPECT_EQ(n_fi > 0, has_flat);
  EXPECT_EQ(c.n_saturated, n_sat);
  EXPECT_EQ(c.n_nonfinite, n_nf);
  EXPECT_EQ(c.n_flat_invalid, n_fi);
}

// Every combination of dark and flat given or not (each its own vector loop), with and
// without a saturation level.
TEST(CalibrateTest, EveryPixelKindWithOrWithoutDarkAndFlatFollowsTheRule) {
  for (bool has_dark : {true, false})
    for (bool has_flat : {true, false})
      for (double sat : {1000.0, kNoSat})
        expect_every_pixel_kind_follows_the_rule(has_dark, has_flat, sat);
}

// The max norm over rows of a width that is not a multiple of the 8-pixel vector step, with
// the maximum planted in turn in every column (vector part and tail), infinities, NaN and
// negative values beside it: the norm is the largest finite positive pixel and the invalid
// count that of a plain scalar loop, for 1 and 2 threads.
TEST(CalibrateTest, FlatMaxFoundInEveryColumnWhateverTheSpecialValuesAround) {
  const int w = 21, h = 5;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0.5f, 0.9f);
  for (int col = 0; col < w; ++col) {
    Image<float> flat(w, h);
    for (std::size_t i = 0; i < flat.size(); ++i) flat.data()[i] = u(rng);
    flat(col, 3) = 1.25f;
    flat((col + 1) % w, 3) = kInf;
    flat((col + 2) % w, 1) = kNaN;
    flat((col + 3) % w, 4) = -7.f;
    flat((col + 5) % w, 0) = std::numeric_limits<float>::max() * 2.f;  // +inf by overflow
    std::size_t bad = 0;
    for (std::size_t i = 0; i < flat.size(); ++i)
      bad += !(flat.data()[i] > 0 && flat.data()[i] <= std::numeric_limits<float>::max());
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      const NormalisedFlat nf = normalise_flat(flat.cview(), FlatNorm::kMax);
      EXPECT_EQ(nf.norm, 1.25) << "column " << col << ", " << threads << " threads";
      EXPECT_EQ(nf.n_invalid, bad) << "column " << col;
    }
  }
  omp_set_num_threads(omp_get_num_procs());
}

// The in-place flat normalisation (rvalue overload) gives the same bytes as the copying one,
// for each normalisation rule, invalid pixels included.
TEST(CalibrateTest, FlatNormalisedInItsOwnBufferGivesTheSameBytes) {
  const int w = 12, h = 7;
  Image<float> flat(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) flat(x, y) = 0.7f + 0.02f * static_cast<float>(3 * x + y);
  flat(2, 2) = -1.f;
  flat(5, 6) = kNaN;
  for (FlatNorm how : {FlatNorm::kMax, FlatNorm::kMean, FlatNorm::kMedian}) {
    const NormalisedFlat ref = normalise_flat(flat.cview(), how);
    const NormalisedFlat ip = normalise_flat(flat.clone(), how);
    EXPECT_EQ(ip.norm, ref.norm);
    EXPECT_EQ(ip.n_invalid, 2u);
    EXPECT_EQ(ip.n_invalid, ref.n_invalid);
    ASSERT_EQ(ip.response.size(), ref.response.size());
    EXPECT_EQ(0, std::memcmp(ip.response.data(), ref.response.data(),
                             ref.response.size() * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(ip.invalid.data(), ref.invalid.data(), ref.invalid.size()));
    // Without the invalid mask (the pipeline's masters): the same response, norm and count,
    // and calibration masks the same pixels from the response alone.
    const NormalisedFlat lean = normalise_flat(flat.clone(), how, /*with_invalid_mask=*/false);
    EXPECT_TRUE(lean.invalid.empty());
    EXPECT_EQ(lean.norm, ref.norm);
    EXPECT_EQ(lean.n_invalid, ref.n_invalid);
    EXPECT_EQ(0, std::memcmp(lean.response.data(), ref.response.data(),
                             ref.response.size() * sizeof(float)));
    Image<float> raw(w, h, 100.f);
    CalibrationInputs with_mask, without_mask;
    with_mask.flat = &ref;
    without_mask.flat = &lean;
    const CalibratedImage a = calibrate(raw.cview(), 10.0, kNaN, with_mask, CalibrationConfig{});
    const CalibratedImage b = calibrate(raw.cview(), 10.0, kNaN, without_mask, CalibrationConfig{});
    EXPECT_EQ(b.n_flat_invalid, 2u);
    EXPECT_EQ(0, std::memcmp(a.mask.data(), b.mask.data(), a.mask.size()));
    EXPECT_EQ(0, std::memcmp(a.pixels.data(), b.pixels.data(), a.pixels.size() * sizeof(float)));
  }
}

// combine_frames as it was written before its vector path (nth_element medians per pixel),
// kept here as the reference the masters must match bit for bit.
float reference_combine_pixel(const std::vector<Image<float>>& frames, int x, int y,
                              const CombineConfig& cfg, const std::vector<double>& scales) {
  auto median = [](auto v) {
    const std::size_t n = v.size(), mid = n / 2;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
    const double hi = v[mid];
    if (n % 2 == 1) return hi;
    const double lo = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
    return 0.5 * (lo + hi);
  };
  std::vector<float> v;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    float p = frames[i](x, y);
    if (!scales.empty()) p = static_cast<float>(p * scales[i]);
    if (std::isfinite(p)) v.push_back(p);
  }
  if (v.empty()) return kNaN;
  const double med = median(v);
  if (cfg.method == CombineMethod::kMedian || v.size() < 3) return static_cast<float>(med);
  std::vector<double> dev(v.begin(), v.end());
  const double m2 = median(dev);
  for (auto& d : dev) d = std::abs(d - m2);
  const double sigma = 1.482602218505602 * median(dev);
  double centre = med, mean = med;
  for (int it = 0; it < cfg.clip_iterations; ++it) {
    double sum = 0;
    std::size_t m = 0;
    for (float p : v)
      if (std::abs(p - centre) <= cfg.clip_kappa * sigma) {
        sum += p;
        ++m;
      }
    if (m == 0) break;
    mean = sum / static_cast<double>(m);
    centre = mean;
  }
  return static_cast<float>(mean);
}

TEST(CalibrateTest, CombineGivesTheReferenceBitsForAnyStack) {
  // Stack depths 1..50 (the vector path takes up to 48), widths that leave a tail of 1-3
  // pixels, Gaussian and integer-valued (tied) values, a hit, NaN, inf, +0 and -0, both
  // methods, with and without scales, several clipping settings.
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0.f, 1.f);
  for (int n : {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 31, 48, 49, 50}) {
    for (int quantised = 0; quantised < 2; ++quantised) {
      const int w = 13 + n % 4, h = 6;
      std::vector<Image<float>> frames;
      for (int i = 0; i < n; ++i) {
        Image<float> f(w, h);
        for (int y = 0; y < h; ++y)
          for (int x = 0; x < w; ++x) {
            const float v = 300.f + 4.f * g(rng);
            f(x, y) = quantised ? std::round(v / 4.f) : v;
          }
        frames.push_back(std::move(f));
      }
      frames[0](1, 1) = 1e5f;
      frames[n - 1](2, 1) = kNaN;
      frames[n / 2](3, 2) = kInf;
      frames[0](5, 3) = 0.f;
      frames[n - 1](5, 3) = -0.f;
      frames[n / 2](6, 3) = -0.f;
      for (int i = 0; i < n; ++i) frames[i](7, 4) = kNaN;
      for (int i = 0; i < n; i += 2) frames[i](9, 5) = 0.f;
      for (int i = 1; i < n; i += 2) frames[i](9, 5) = -0.f;
      std::vector<double> scales;
      for (int i = 0; i < n; ++i) scales.push_back(1.0 / (250.0 + 17.0 * i));
      for (CombineMethod m : {CombineMethod::kClippedMean, CombineMethod::kMedian})
        for (int iters : {0, 1, 3, 10})
          for (double kappa : {0.5, 3.0})
            for (bool scaled : {false, true}) {
              CombineConfig cfg;
              cfg.method = m;
              cfg.clip_iterations = iters;
              cfg.clip_kappa = kappa;
              const std::vector<double> sc = scaled ? scales : std::vector<double>{};
              const Image<float> out = combine_frames(views(frames), cfg, sc);
              for (int y = 0; y < h; ++y)
                for (int x = 0; x < w; ++x) {
                  const float ref = reference_combine_pixel(frames, x, y, cfg, sc);
                  ASSERT_EQ(std::memcmp(&ref, &out(x, y), sizeof ref), 0)
                      << "n " << n << " quantised " << quantised << " method "
                      << static_cast<int>(m) << " iterations " << iters << " kappa " << kappa
                      << " scaled " << scaled << " at " << x << "," << y << ": " << out(x, y)
                      << " vs " << ref;
                }
            }
    }
  }
}

}  // namespace
}  // namespace psfphot

namespace psfphot {
namespace {
// Mapped masters (read in their big-endian words by the vector loop, by FloatPlane's
// operator() in a row's tail) give the bits of the same masters converted into images:
// every width's tail, special words anywhere (tails included), no / image / mapped dark and
// flat, with and without an overscan, 1 and 2 threads.
TEST(CalibrateTest, MappedMastersGiveTheConvertedImagesBitsInBodyAndTail) {
  std::mt19937 rng(77);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  const std::uint32_t specials[] = {0x00000000u, 0x80000000u, 0x00000003u, 0x80400000u,
                                    0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFF812345u,
                                    0xC0000000u, 0x7F7FFFFFu, 0x00800000u};
  for (int w : {1, 3, 7, 8, 9, 13, 16, 23, 157}) {
    const int h = 6;
    const std::size_t n = static_cast<std::size_t>(w) * h;
    std::vector<unsigned char> dbe(4 * n), fbe(4 * n);
    auto put = [](std::vector<unsigned char>& b, std::size_t i, std::uint32_t v) {
      for (int k = 0; k < 4; ++k) b[4 * i + k] = static_cast<unsigned char>(v >> (24 - 8 * k));
    };
    Image<float> raw(w, h);
    for (std::size_t i = 0; i < n; ++i) {
      const float dv = 100.f + 20.f * u(rng), fv = 0.5f + u(rng);
      std::uint32_t dw = std::bit_cast<std::uint32_t>(dv), fw = std::bit_cast<std::uint32_t>(fv);
      if (i % 5 == 1) dw = specials[(i / 5) % std::size(specials)];
      if (i % 7 == 3) fw = specials[(i / 7) % std::size(specials)];
      put(dbe, i, dw);
      put(fbe, i, fw);
      raw.data()[i] =
          i % 11 == 4 ? std::numeric_limits<float>::quiet_NaN() : 1000.f + 9000.f * u(rng);
    }
    const FloatPlane dmap = FloatPlane::fits_float32(dbe.data(), w, h, w);
    const FloatPlane fmap = FloatPlane::fits_float32(fbe.data(), w, h, w);
    Image<float> dimg(w, h), fimg(w, h);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        dimg(x, y) = dmap(x, y);
        fimg(x, y) = fmap(x, y);
      }
    const NormalisedFlat fl_img = normalise_flat(fimg.cview(), FlatNorm::kMax);
    const NormalisedFlat fl_map = normalise_flat(
        fmap, std::shared_ptr<const void>(fbe.data(), [](const void*) {}), FlatNorm::kMax);
    ASSERT_EQ(fl_map.mapped_response.kind(), FloatPlane::Kind::kFitsFlatResponse);
    ASSERT_EQ(fl_img.norm, fl_map.norm);
    OverscanLevels ov;
    ov.per_row = true;
    for (int y = 0; y < h; ++y) ov.level.push_back(300.f + 3.f * y);
    CalibrationConfig cfg;
    for (int threads : {1, 2})
      for (int dk = 0; dk < 3; ++dk)
        for (int fk = 0; fk < 3; ++fk)
          for (bool with_ov : {false, true}) {
            if (dk != 2 && fk != 2) continue;  // something mapped
            omp_set_num_threads(threads);
            CalibrationInputs a, b;
            a.dark_exptime_s = b.dark_exptime_s = 10.0;
            if (dk == 1 || dk == 2) a.dark = dimg.cview();
            if (dk == 2)
              b.dark = dmap;
            else if (dk == 1)
              b.dark = dimg.cview();
            a.flat = fk ? &fl_img : nullptr;
            b.flat = fk == 2 ? &fl_map : (fk == 1 ? &fl_img : nullptr);
            a.overscan = b.overscan = with_ov ? &ov : nullptr;
            CalibratedImage ra, rb;
            try {
              ra = calibrate(raw.cview(), 20.0, 8000.0, a, cfg);
            } catch (const CalibrationError&) {
              EXPECT_THROW(calibrate(raw.cview(), 20.0, 8000.0, b, cfg), CalibrationError);
              continue;
            }
            rb = calibrate(raw.cview(), 20.0, 8000.0, b, cfg);
            const std::string what = "w " + std::to_string(w) + " dark " + std::to_string(dk) +
                                     " flat " + std::to_string(fk) + " ov " +
                                     std::to_string(with_ov) + " t " + std::to_string(threads);
            EXPECT_EQ(0, std::memcmp(ra.pixels.data(), rb.pixels.data(), 4 * n)) << what;
            EXPECT_EQ(0, std::memcmp(ra.mask.data(), rb.mask.data(), n * sizeof(MaskBits))) << what;
            EXPECT_EQ(ra.n_saturated, rb.n_saturated) << what;
            EXPECT_EQ(ra.n_nonfinite, rb.n_nonfinite) << what;
            EXPECT_EQ(ra.n_flat_invalid, rb.n_flat_invalid) << what;
          }
    omp_set_num_threads(2);
  }
}
}  // namespace
}  // namespace psfphot
