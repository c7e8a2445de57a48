#include "psfphot/algo/overscan.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>

#include "psfphot/algo/calibrate.hpp"

namespace psfphot {
namespace {

std::string error_of(std::string_view text, int w, int h) {
  try {
    parse_section(text, w, h);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(Overscan, SectionsBecomeZeroBasedHalfOpenBoxes) {
  // BIASSEC of the SAAO 1.0m frame in ../shared/data: columns 4..13, rows 1..520 (1-based).
  EXPECT_EQ(parse_section("[4:13,1:520]", 536, 520), (PixelBox{3, 0, 13, 520}));
  EXPECT_EQ(parse_section("  '[17:528, 1:520]' ", 536, 520), (PixelBox{16, 0, 528, 520}));
  // Reversed ranges name the same pixels; * is the whole axis; a single pixel is 1 wide.
  EXPECT_EQ(parse_section("[13:4,520:1]", 536, 520), (PixelBox{3, 0, 13, 520}));
  EXPECT_EQ(parse_section("[*,10:20]", 536, 520), (PixelBox{0, 9, 536, 20}));
  EXPECT_EQ(parse_section("[5:5,*]", 536, 520), (PixelBox{4, 0, 5, 520}));
}

TEST(Overscan, MalformedOrOutOfRangeSectionsAreRefusedWithTheReason) {
  EXPECT_NE(error_of("4:13,1:520", 536, 520).find("expected [x1:x2,y1:y2]"), std::string::npos);
  EXPECT_NE(error_of("[4:13;1:520]", 536, 520).find("one comma"), std::string::npos);
  EXPECT_NE(error_of("[4-13,1:520]", 536, 520).find("first:last"), std::string::npos);
  EXPECT_NE(error_of("[0:13,1:520]", 536, 520).find("start at 1"), std::string::npos);
  const std::string far = error_of("[4:13,1:600]", 536, 520);
  EXPECT_NE(far.find("y reaches 600 but the frame has 520"), std::string::npos) << far;
  EXPECT_NE(far.find("[4:13,1:600]"), std::string::npos) << far;
  EXPECT_EQ(section_syntax_error("[4:13,1:600]"), "");  // bounds are checked per frame
  EXPECT_NE(section_syntax_error("[a:b,1:2]"), "");
}

// A frame with a bias that drifts along the rows (known per row), noise, and one cosmic ray
// in the vertical overscan strip (columns 2..5).
struct Biased {
  Image<float> img;
  std::vector<double> bias;  // per row
};
Biased biased_frame(int w, int h) {
  Biased b{Image<float>(w, h), std::vector<double>(h)};
  std::mt19937 rng(5);
  std::normal_distribution<double> noise(0.0, 2.0);
  for (int y = 0; y < h; ++y) {
    b.bias[y] = 200.0 + 0.05 * y;
    for (int x = 0; x < w; ++x) b.img(x, y) = static_cast<float>(b.bias[y] + noise(rng));
  }
  b.img(3, 17) = 60000.f;
  return b;
}

TEST(Overscan, LevelIsTheStripsMedianAndLinesFollowTheDriftPerRow) {
  const int w = 60, h = 400;
  const Biased b = biased_frame(w, h);
  const PixelBox strip{2, 0, 6, h};
  const auto view = b.img.cview().subview(strip.x0, strip.y0, strip.width(), strip.height());
  const OverscanLevels lv = measure_overscan(view, strip, w, h, OverscanMode::kLevel);
  EXPECT_TRUE(lv.per_row);
  EXPECT_EQ(lv.n_pixels, 4u * h);
  // The strip's median: the mean bias (200 + 0.05 * 199.5) within the noise of a median of
  // 1600 pixels whose spread is the drift (+-10) plus noise: ~0.3 ADU.
  EXPECT_NEAR(lv.median_adu, 209.975, 0.6);
  for (int y = 0; y < h; ++y) ASSERT_EQ(lv.at(0, y), static_cast<float>(lv.median_adu));
  const OverscanLevels ln = measure_overscan(view, strip, w, h, OverscanMode::kLine);
  // Per row: the median of 4 noisy pixels (sigma 2 each: ~1.2 ADU; 5 sigma bound), the
  // cosmic ray in row 17 included (a median of 4 takes the middle two).
  double worst = 0;
  for (int y = 0; y < h; ++y) worst = std::max(worst, std::abs(ln.at(30, y) - b.bias[y]));
  EXPECT_LT(worst, 6.0);
  // The drift (20 ADU top to bottom) is followed: the first and last 50 rows' mean levels.
  double lo = 0, hi = 0;
  for (int y = 0; y < 50; ++y) {
    lo += ln.at(0, y) / 50.0;
    hi += ln.at(0, h - 1 - y) / 50.0;
  }
  EXPECT_NEAR(hi - lo, 0.05 * (h - 50), 0.5);
}

TEST(Overscan, HorizontalStripGivesLevelsPerColumnAndUncoveredLinesTheFrameLevel) {
  const int w = 50, h = 30;
  Image<float> img(w, h, 100.f);
  for (int x = 0; x < w; ++x)
    for (int y = 26; y < 30; ++y) img(x, y) = static_cast<float>(300 + x);
  img(7, 27) = std::numeric_limits<float>::quiet_NaN();  // ignored
  // Rows 27..30 (1-based), columns 1..40: columns 40..49 are not covered.
  const PixelBox strip = parse_section("[1:40,27:30]", w, h);
  const OverscanLevels ln =
      measure_overscan(img.cview().subview(0, 26, 40, 4), strip, w, h, OverscanMode::kLine);
  EXPECT_FALSE(ln.per_row);
  ASSERT_EQ(ln.level.size(), static_cast<std::size_t>(w));
  EXPECT_EQ(ln.n_pixels, 159u);
  for (int x = 0; x < 40; ++x) EXPECT_EQ(ln.at(x, 0), static_cast<float>(300 + x)) << x;
  for (int x = 40; x < w; ++x) EXPECT_EQ(ln.at(x, 0), static_cast<float>(ln.median_adu)) << x;
  Image<float> rows(w, 2, 1000.f);
  subtract_overscan_rows(rows.data(), w, 5, 2, ln);
  EXPECT_EQ(rows(3, 1), 1000.f - 303.f);
}

// A serial overscan of a windowed readout: the strip spans every row but is wider than tall
// (40 columns, 30 rows). Its lines are the rows, whatever its shape: a bias rising along the
// rows must be followed row by row.
TEST(Overscan, StripSpanningEveryRowHasLevelsPerRowWhateverItsShape) {
  const int w = 300, h = 30;
  Image<float> img(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) img(x, y) = static_cast<float>(500 + 4 * y);
  const PixelBox strip{260, 0, 300, h};
  const OverscanLevels ln =
      measure_overscan(img.cview().subview(260, 0, 40, h), strip, w, h, OverscanMode::kLine);
  EXPECT_TRUE(ln.per_row);
  for (int y = 0; y < h; ++y) EXPECT_EQ(ln.at(0, y), static_cast<float>(500 + 4 * y)) << y;
  // A parallel overscan spanning every column of a narrow frame, taller than wide (20 x 40 of
  // a 20 x 100 frame): per column, the bias following the columns.
  Image<float> narrow(20, 100);
  for (int y = 0; y < 100; ++y)
    for (int x = 0; x < 20; ++x) narrow(x, y) = static_cast<float>(300 + x);
  const OverscanLevels col = measure_overscan(narrow.cview().subview(0, 60, 20, 40),
                                              {0, 60, 20, 100}, 20, 100, OverscanMode::kLine);
  EXPECT_FALSE(col.per_row);
  for (int x = 0; x < 20; ++x) EXPECT_EQ(col.at(x, 7), static_cast<float>(300 + x)) << x;
}

TEST(Overscan, RefusesAnEmptyOrMisplacedStripAndModeNone) {
  Image<float> img(10, 10, 1.f);
  EXPECT_THROW(measure_overscan(img.cview(), {0, 0, 10, 10}, 10, 10, OverscanMode::kNone),
               std::invalid_argument);
  EXPECT_THROW(measure_overscan(img.cview(), {0, 0, 10, 10}, 8, 10, OverscanMode::kLevel),
               std::invalid_argument);
  Image<float> nan(2, 10, std::numeric_limits<float>::quiet_NaN());
  EXPECT_THROW(measure_overscan(nan.cview(), {0, 0, 2, 10}, 10, 10, OverscanMode::kLevel),
               std::invalid_argument);
}

TEST(Overscan, SectionsComeFromTheHeaderUnlessTheConfigNamesThem) {
  HeaderFacts hdr;
  hdr.cards = {{"BIASSEC", "'[4:13,1:520]'", ""}, {"TRIMSEC", "'[17:528,1:520]'", ""}};
  OverscanConfig cfg;
  RawSections s = raw_sections(hdr, 536, 520, cfg);
  EXPECT_EQ(s.bias, (PixelBox{3, 0, 13, 520}));
  EXPECT_EQ(s.trim, (PixelBox{16, 0, 528, 520}));
  cfg.mode = OverscanMode::kNone;  // no bias, the trim stays
  s = raw_sections(hdr, 536, 520, cfg);
  EXPECT_TRUE(s.bias.empty());
  EXPECT_FALSE(s.trim.empty());
  cfg = OverscanConfig{};
  cfg.trim_section = "[17:528,1:512]";
  cfg.bias_section = "none";
  s = raw_sections(hdr, 536, 520, cfg);
  EXPECT_TRUE(s.bias.empty());
  EXPECT_EQ(s.trim, (PixelBox{16, 0, 528, 512}));
  // No cards: nothing; a trim section covering the frame: nothing to mask.
  EXPECT_TRUE(raw_sections(HeaderFacts{}, 536, 520, OverscanConfig{}).bias.empty());
  cfg.trim_section = "[*,*]";
  EXPECT_TRUE(raw_sections(hdr, 536, 520, cfg).trim.empty());
  // A card that does not fit the frame: the error names the card.
  hdr.cards[0].value = "'[4:13,1:600]'";
  try {
    raw_sections(hdr, 536, 520, OverscanConfig{});
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("BIASSEC section '[4:13,1:600]'"), std::string::npos)
        << e.what();
  }
}

// cut_box gives the box's pixels whatever the block size the rows come in (the masters read
// FITS blocks of many rows, the calibration the master dark's rows one at a time).
TEST(Overscan, CutBoxGivesTheBoxWhateverTheBlockSize) {
  const int w = 11, h = 9;
  Image<float> frame(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) frame(x, y) = static_cast<float>(100 * y + x);
  const PixelBox box{7, 1, 10, 8};  // 3 x 7, a strip near the right edge
  for (int block : {1, 2, 3, 7, 64}) {
    int calls = 0;
    const Image<float> strip = cut_box(box, w, block, [&](int y0, int n) {
      EXPECT_LE(n, block);
      EXPECT_GE(y0, box.y0);
      EXPECT_LE(y0 + n, box.y1);
      ++calls;
      return static_cast<const float*>(frame.view().row(y0));
    });
    ASSERT_EQ(strip.width(), 3);
    ASSERT_EQ(strip.height(), 7);
    EXPECT_EQ(calls, (7 + block - 1) / block) << "block " << block;
    for (int y = 0; y < 7; ++y)
      for (int x = 0; x < 3; ++x)
        EXPECT_EQ(strip(x, y), frame(box.x0 + x, box.y0 + y)) << "block " << block;
  }
}

// Blocks of no rows (or fewer) would never get through the box: refused, without a call.
TEST(Overscan, CutBoxRefusesBlocksOfNoRows) {
  const int w = 11, h = 9;
  Image<float> frame(w, h, 1.f);
  const PixelBox box{7, 1, 10, 8};
  for (int block : {0, -1, -64}) {
    int calls = 0;
    const auto rows = [&](int y0, int) {
      // A loop that does not advance: stop it here instead of hanging the test.
      if (++calls > 100) throw std::runtime_error("cut_box does not advance");
      return static_cast<const float*>(frame.view().row(std::clamp(y0, 0, h - 1)));
    };
    try {
      (void)cut_box(box, w, block, rows);
      ADD_FAILURE() << "block " << block << " accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("block_rows must be >= 1, got " + std::to_string(block)),
                std::string::npos)
          << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "block " << block << ": " << e.what();
    }
    EXPECT_EQ(calls, 0) << "block " << block;
  }
}

TEST(Overscan, MaskOutsideMarksEveryPixelOutsideTheTrimSection) {
  Image<MaskBits> m(20, 10, 0);
  m(0, 0) = mask::kSaturated;
  mask_outside(m.view(), {3, 1, 18, 9}, mask::kOutsideTrim);
  int outside = 0;
  for (int y = 0; y < 10; ++y)
    for (int x = 0; x < 20; ++x) {
      const bool in = x >= 3 && x < 18 && y >= 1 && y < 9;
      EXPECT_EQ((m(x, y) & mask::kOutsideTrim) != 0, !in) << x << "," << y;
      outside += !in;
    }
  EXPECT_EQ(outside, 200 - 15 * 8);
  EXPECT_EQ(m(0, 0), mask::kSaturated | mask::kOutsideTrim);
  // An empty box is "no trim section": nothing is masked.
  Image<MaskBits> none(20, 10, 0);
  mask_outside(none.view(), PixelBox{}, mask::kOutsideTrim);
  for (std::size_t i = 0; i < none.size(); ++i) ASSERT_EQ(none.data()[i], 0);
  EXPECT_NE(mask::kUnusable & mask::kOutsideTrim, 0);
}

// Calibration with a bias: (raw - b - s dark) / flat, with the saturation test still on the
// raw value (a pixel at the saturation level stays saturated although raw - b is below it).
TEST(Overscan, CalibrationSubtractsTheBiasWithTheDarkAndJudgesSaturationOnRawValues) {
  const int w = 37, h = 9;  // odd width: the vector loop's tail too
  Image<float> raw(w, h), dark(w, h), flat(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      raw(x, y) = static_cast<float>(1000 + 10 * x + y);
      dark(x, y) = static_cast<float>(5 + (x % 3));
      flat(x, y) = static_cast<float>(0.5 + 0.01 * x);
    }
  raw(20, 4) = 60000.f;
  OverscanLevels lv;
  lv.per_row = true;
  for (int y = 0; y < h; ++y) lv.level.push_back(static_cast<float>(200 + 3 * y));
  CalibrationConfig cfg;
  cfg.flat_norm = FlatNorm::kMax;
  const NormalisedFlat nf = normalise_flat(flat.cview(), cfg.flat_norm);
  for (bool with_flat : {false, true}) {
    CalibrationInputs in;
    in.dark = FloatPlane(dark.cview());
    in.dark_exptime_s = 10.0;
    in.flat = with_flat ? &nf : nullptr;
    in.overscan = &lv;
    const CalibratedImage c = calibrate(raw.cview(), 20.0, 60000.0 - 100.0, in, cfg);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        double want = raw(x, y) - lv.level[y] - 2.0 * dark(x, y);
        if (with_flat) want /= nf.response(x, y);
        ASSERT_NEAR(c.pixels(x, y), want, 1e-6 * std::abs(want)) << x << "," << y;
      }
    EXPECT_EQ(c.n_saturated, 1u);
    EXPECT_EQ(c.mask(20, 4), mask::kSaturated);
  }
  // Levels of another frame's shape are refused.
  OverscanLevels other;
  other.level.assign(h + 1, 0.f);
  CalibrationInputs in;
  in.overscan = &other;
  EXPECT_THROW(calibrate(raw.cview(), 1.0, NAN, in, cfg), CalibrationError);
}

}  // namespace
}  // namespace psfphot
