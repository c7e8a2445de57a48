// Overscan correction through the pipeline: raw darks, flats and a science frame whose bias
// differs from frame to frame (and drifts along the rows), each with BIASSEC / TRIMSEC cards.
// The masters built from them and the calibrated science frame must carry no bias: with
// the dark scaled by exposure time, a bias left in the dark would be scaled with it.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "psfphot/io/fits.hpp"
#include "psfphot/pipeline/masters.hpp"
#include "psfphot/pipeline/process_frame.hpp"
#include "support/test_support.hpp"

namespace psfphot::pipeline {
namespace {

using test::TempDir;

// 70 x 150 frames: columns 0..2 prescan, 3..59 sky (TRIMSEC [4:60,1:150]), 62..69 overscan
// (BIASSEC [63:70,1:150]); 150 rows so the masters' 64-row blocks do not divide the frame.
constexpr int kW = 70, kH = 150;
constexpr double kDarkRate = 2.0;  // ADU/s, times a per-pixel pattern

double dark_pattern(int x, int y) {
  return 1.0 + 0.01 * x + 0.002 * y;
}
double response(int x, int y) {
  return 0.6 + 0.004 * x + 0.001 * y;  // vignetting-like flat response, max 0.99
}
bool in_trim(int x) {
  return x >= 3 && x < 60;
}

// A raw frame: bias (frame_bias + row drift) everywhere, dark current and `light` x response
// inside the trim section only, Gaussian noise.
std::string write_raw(const TempDir& dir, const std::string& name, double bias, double exptime_s,
                      double light, std::mt19937& rng) {
  std::normal_distribution<double> noise(0.0, 1.5);
  Image<float> img(kW, kH);
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) {
      double v = bias + 0.02 * y + noise(rng);
      if (in_trim(x)) v += kDarkRate * exptime_s * dark_pattern(x, y) + light * response(x, y);
      img(x, y) = static_cast<float>(v);
    }
  const std::string p = dir.file(name);
  io::write_fits(p, img.cview(),
                 {io::card("EXPTIME", exptime_s), io::card("BIASSEC", "[63:70,1:150]"),
                  io::card("TRIMSEC", "[4:60,1:150]")});
  return p;
}

TEST(OverscanNight, MastersAndScienceCarryNoBiasAndTheDarkScalesByExposure) {
  TempDir dir;
  std::mt19937 rng(3);
  std::vector<std::string> darks, flats;
  for (int i = 0; i < 5; ++i)  // bias 480..560: combining uncorrected darks would keep ~520
    darks.push_back(
        write_raw(dir, "dark" + std::to_string(i) + ".fits", 480 + 20 * i, 10.0, 0, rng));
  for (int i = 0; i < 5; ++i)
    flats.push_back(
        write_raw(dir, "flat" + std::to_string(i) + ".fits", 500 - 10 * i, 1.0, 20000, rng));
  const std::string sci = write_raw(dir, "sci.fits", 530, 60.0, 1000, rng);

  FrameConfig fc;
  fc.calibration.flat_norm = FlatNorm::kMax;
  for (OverscanMode mode : {OverscanMode::kLevel, OverscanMode::kLine}) {
    fc.calibration.overscan.mode = mode;
    const Masters m = load_masters("", darks, "", flats, "", fc, CombineConfig{});
    // The master dark inside the trim section: the dark current of 10 s (20 x pattern ADU),
    // to the noise of a 5-frame mean (1.5 / sqrt(5) ~ 0.7 ADU; the level mode leaves the row
    // drift, +-1.5 ADU about its median, in the dark too, where it cancels in the science).
    double worst = 0;
    for (int y = 0; y < kH; ++y)
      for (int x = 3; x < 60; ++x) {
        const double drift = mode == OverscanMode::kLevel ? 0.02 * (y - 74.5) : 0.0;
        worst =
            std::max(worst, std::abs(m.dark(x, y) - kDarkRate * 10 * dark_pattern(x, y) - drift));
      }
    EXPECT_LT(worst, 5 * 0.7 + 0.5) << static_cast<int>(mode);
    // The master flat: NaN outside the trim section (normalisation skips it), the response
    // inside, to the flats' noise (1.5 / 20000 per frame).
    ASSERT_TRUE(m.flat);
    EXPECT_EQ(m.flat->n_invalid, static_cast<std::size_t>((kW - 57) * kH));
    const FloatPlane r = m.flat->response_plane();
    EXPECT_TRUE(std::isnan(r(1, 5)) && std::isnan(r(65, 100)));
    double flat_worst = 0;
    for (int y = 0; y < kH; ++y)
      for (int x = 3; x < 60; ++x)
        flat_worst =
            std::max(flat_worst, std::abs(r(x, y) - response(x, y) / response(59, kH - 1)));
    EXPECT_LT(flat_worst, 1e-3);

    // The science frame (60 s: the dark scaled 6x): calibrated = the 1000-ADU light at every
    // trim pixel, whatever the three biases were; outside the trim section masked.
    FrameProducts p;
    FrameConfig sc = fc;
    sc.background.mesh_px = 16;
    const FrameResult res = process_frame(0, sci, sc, m, &p);
    ASSERT_TRUE(res.ok()) << res.message;
    double sum = 0;
    int n = 0;
    for (int y = 0; y < kH; ++y)
      for (int x = 0; x < kW; ++x) {
        const bool outside = (p.mask(x, y) & mask::kOutsideTrim) != 0;
        ASSERT_EQ(outside, !in_trim(x)) << x << "," << y;
        if (in_trim(x)) {
          sum += p.calibrated(x, y);
          ++n;
        }
      }
    // The flat takes the response out and the max normalisation puts its maximum in:
    // 1000 x response(59, 149) = 985 ADU at every pixel; the noise of the mean over 8550
    // pixels is ~0.03 ADU; a bias left in (or scaled with the dark) would be tens to hundreds.
    EXPECT_NEAR(sum / n, 1000 * response(59, kH - 1), 1.0);
  }
}

// A ready master dark that still holds its bias (made without the correction: an older
// master, another tool's, a single raw dark) must not take the bias out a second time: its
// own strip measures it, and the science frame comes out as with a corrected master.
TEST(OverscanNight, AMasterDarkStillHoldingItsBiasLosesItByItsOwnStrip) {
  TempDir dir;
  std::mt19937 rng(8);
  std::vector<std::string> darks;
  for (int i = 0; i < 3; ++i)
    darks.push_back(write_raw(dir, "d" + std::to_string(i) + ".fits", 500 + 10 * i, 10.0, 0, rng));
  const std::string sci = write_raw(dir, "sci.fits", 530, 60.0, 1000, rng);
  CombineConfig plain;
  plain.overscan.mode = OverscanMode::kNone;
  double t = 0;
  const Image<float> with_bias = build_master_dark(darks, plain, &t);  // ~510 + 20 pattern
  const Image<float> corrected = build_master_dark(darks, CombineConfig{}, &t);
  const std::string d_bias = dir.file("mdark_bias.fits"), d_corr = dir.file("mdark.fits");
  io::write_fits(d_bias, with_bias.cview(), {io::card("EXPTIME", t)});
  io::write_fits(d_corr, corrected.cview(), {io::card("EXPTIME", t)});
  FrameConfig fc;
  fc.background.mesh_px = 16;
  double mean[2];
  for (int k = 0; k < 2; ++k) {
    const Masters m = load_masters(k ? d_corr : d_bias, {}, "", {}, "", fc, CombineConfig{});
    FrameProducts p;
    const FrameResult res = process_frame(0, sci, fc, m, &p);
    ASSERT_TRUE(res.ok()) << res.message;
    // The master's own strip: ~510 ADU (its bias) or ~0 (corrected), reported.
    if (k == 0) {
      EXPECT_NEAR(res.summary.dark_bias_adu, 510.0, 2.0);
    } else {
      EXPECT_NEAR(res.summary.dark_bias_adu, 0.0, 1.0);
    }
    EXPECT_NEAR(res.summary.bias_adu, 530.0 + 0.02 * 74.5, 1.0);
    double sum = 0;
    int n = 0;
    for (int y = 0; y < kH; ++y)
      for (int x = 3; x < 60; ++x, ++n) sum += p.calibrated(x, y);
    mean[k] = sum / n;
  }
  // No flat: the calibrated sky is the light, 1000 x mean response (~0.85): with the bias
  // subtracted twice (6 x 510 ADU) it would be ~ -2200.
  double want = 0;
  for (int y = 0; y < kH; ++y)
    for (int x = 3; x < 60; ++x) want += 1000 * response(x, y) / (57.0 * kH);
  EXPECT_NEAR(mean[0], want, 2.0);
  EXPECT_NEAR(mean[1], want, 2.0);
}

// Built in bands (as the ranks of a night build them, each a share of the rows; the strips
// are read whole by every part), the corrected masters are bit for bit the whole ones,
// line mode included (its levels are per row: a band must index them by frame row).
TEST(OverscanNight, BandsOfCorrectedMastersAreTheRowsOfTheWholeBitForBit) {
  TempDir dir;
  std::mt19937 rng(6);
  std::vector<std::string> darks, flats;
  for (int i = 0; i < 3; ++i) {
    darks.push_back(write_raw(dir, "d" + std::to_string(i) + ".fits", 480 + 30 * i, 10.0, 0, rng));
    flats.push_back(
        write_raw(dir, "f" + std::to_string(i) + ".fits", 470 + 20 * i, 1.0, 15000, rng));
  }
  CombineConfig cc;
  cc.overscan.mode = OverscanMode::kLine;
  double t = 0;
  const Image<float> dark = build_master_dark(darks, cc, &t);
  const Image<float> flat = build_master_flat(flats, cc, &dark, t);
  const std::vector<double> medians = flat_medians(flats, &dark, t, 0, 1, cc);
  for (int parts : {2, 3, 7}) {
    std::vector<double> shared(flats.size(), 0.0);
    for (int p = 0; p < parts; ++p) {
      const std::vector<double> mine = flat_medians(flats, &dark, t, p, parts, cc);
      for (std::size_t i = 0; i < mine.size(); ++i)
        if (static_cast<int>(i) % parts == p) shared[i] = mine[i];
    }
    ASSERT_EQ(shared, medians);
    for (int p = 0; p < parts; ++p) {
      const RowBand b = row_band(kH, p, parts);
      double tp = 0;
      const Image<float> db = build_master_dark_rows(darks, cc, &tp, p, parts);
      const Image<float> fb = build_master_flat_rows(flats, cc, &dark, t, shared, p, parts);
      ASSERT_EQ(db.height(), b.y1 - b.y0);
      for (int y = b.y0; y < b.y1; ++y)
        for (int x = 0; x < kW; ++x) {
          ASSERT_EQ(db(x, y - b.y0), dark(x, y)) << parts << " " << p << " " << x << "," << y;
          const float u = fb(x, y - b.y0), v = flat(x, y);
          ASSERT_TRUE(u == v || (std::isnan(u) && std::isnan(v))) << x << "," << y;
        }
    }
  }
  // And the correction happened (else the test would compare two uncorrected builds).
  CombineConfig none;
  none.overscan.mode = OverscanMode::kNone;
  EXPECT_GT(build_master_dark(darks, none, &t)(30, 70) - dark(30, 70), 400.f);
}

// The same frames with overscan = none: the biases stay, and the master dark (scaled 6x for
// the science frame) subtracts six times the darks' bias: the calibrated sky is far off.
TEST(OverscanNight, WithoutTheCorrectionTheScaledDarkOversubtractsTheBias) {
  TempDir dir;
  std::mt19937 rng(4);
  std::vector<std::string> darks;
  for (int i = 0; i < 3; ++i)
    darks.push_back(write_raw(dir, "dark" + std::to_string(i) + ".fits", 500, 10.0, 0, rng));
  const std::string sci = write_raw(dir, "sci.fits", 500, 60.0, 1000, rng);
  FrameConfig fc;
  fc.background.mesh_px = 16;
  fc.calibration.overscan.mode = OverscanMode::kNone;
  fc.calibration.overscan.trim_section = "none";
  const Masters m = load_masters("", darks, "", {}, "", fc, CombineConfig{});
  FrameProducts p;
  const FrameResult res = process_frame(0, sci, fc, m, &p);
  ASSERT_TRUE(res.ok()) << res.message;
  // Inside the old trim area: 1000 x response + 500 - 6 x 500 = ~ -1200 ADU.
  EXPECT_LT(p.calibrated(30, 75), -1000.f);
  EXPECT_EQ(p.mask(65, 75) & mask::kOutsideTrim, 0);
}

}  // namespace
}  // namespace psfphot::pipeline
