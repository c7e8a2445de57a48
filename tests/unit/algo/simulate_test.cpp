#include "psfphot/algo/simulate.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <stdexcept>

namespace psfphot {
namespace {

// A frame with nothing but sky, dark current, read noise and a flat of exactly 1.
SimConfig bare_config(int size) {
  SimConfig c;
  c.width = c.height = size;
  c.bias_column_rms_adu = 0;
  c.glow_e_per_s = 0;
  c.hot_pixel_fraction = 0;
  c.unstable_hot_fraction = 0;
  c.vignetting_corner = 1.0;
  c.prnu = 0;
  c.n_dust = 0;
  c.sky_level_rms = 0;
  c.sky_gradient = 0;
  c.sky_gradient_jitter = 0;
  c.n_stars = 0;
  c.n_galaxies = 0;
  c.cosmic_rays_per_mpix = 0;
  return c;
}

bool same_bytes(const Image<float>& a, const Image<float>& b) {
  return a.width() == b.width() && a.height() == b.height() &&
         std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class ThreadCount {  // restores the OpenMP thread count on scope exit
 public:
  explicit ThreadCount(int n) : old_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~ThreadCount() { omp_set_num_threads(old_); }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;

 private:
  int old_;
};

TEST(Simulate, FlatMaxIsOneAndCornersSitAtTheVignettingLevel) {
  SimConfig c;
  c.width = 600;
  c.height = 400;
  const SimInstrument inst = make_instrument(c);
  float mx = 0;
  for (std::size_t i = 0; i < inst.flat.size(); ++i) mx = std::max(mx, inst.flat.data()[i]);
  EXPECT_EQ(mx, 1.0f);
  // Mean over the 3x3 corner boxes (36 px) against the noiseless vignetting law there,
  // v = 1 - (1 - corner) rho^2. PRNU of 1% on 36 pixels gives 0.55 * 0.01 / 6 = 0.0009 rms;
  // the renormalisation by the noisy maximum shifts the level by < 0.1%. Tolerance 0.005.
  const double cx = 0.5 * (c.width - 1), cy = 0.5 * (c.height - 1);
  double got = 0, want = 0;
  for (int y : {0, 1, 2, c.height - 3, c.height - 2, c.height - 1})
    for (int x : {0, 1, 2, c.width - 3, c.width - 2, c.width - 1}) {
      got += inst.flat(x, y) / 36.0;
      const double rho2 = ((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (cx * cx + cy * cy);
      want += (1.0 - (1.0 - c.vignetting_corner) * rho2) / 36.0;
    }
  EXPECT_NEAR(got, want, 0.005);
  EXPECT_NEAR(inst.flat(0, 0), 0.55, 0.04);  // one pixel: PRNU + the slope inside the pixel
}

// Mean and variance of a flat sky patch against the camera model:
//   mean = bias + (sky + dark) / gain,  var = (sky + dark + rn^2) / gain^2.
// Sampling errors: SE(mean) = sqrt(var / N); SE(var) = sqrt((2 var^2 + k4) / N) with
// k4 = (sky + dark) / gain^4 the Poisson fourth cumulant. Tolerance: 5 standard errors.
void check_noise(double sky_e) {
  SimConfig c = bare_config(256);
  c.sky_e = sky_e;
  const SimInstrument inst = make_instrument(c);
  const SimField field = make_field(c);
  const SimFrame f = render_science_frame(c, inst, field, 3);
  ASSERT_DOUBLE_EQ(f.conditions.sky_e, sky_e);
  const double n = static_cast<double>(f.raw_adu.size());
  double sum = 0, sum2 = 0;
  for (std::size_t i = 0; i < f.raw_adu.size(); ++i) sum += f.raw_adu.data()[i];
  const double mean = sum / n;
  for (std::size_t i = 0; i < f.raw_adu.size(); ++i) {
    const double d = f.raw_adu.data()[i] - mean;
    sum2 += d * d;
  }
  const double var = sum2 / (n - 1);
  const double g = c.gain_e_per_adu;
  const double lambda = sky_e + c.dark_current_e_per_s * c.exptime_s;
  const double want_mean = c.bias_adu + lambda / g;
  const double want_var = (lambda + c.read_noise_e * c.read_noise_e) / (g * g);
  const double se_var = std::sqrt((2 * want_var * want_var + lambda / (g * g * g * g)) / n);
  EXPECT_NEAR(mean, want_mean, 5 * std::sqrt(want_var / n)) << "sky " << sky_e;
  EXPECT_NEAR(var, want_var, 5 * se_var) << "sky " << sky_e;
}

TEST(Simulate, NoiseOfAFlatSkyMatchesGainAndReadNoise) {
  check_noise(200.0);  // normal branch (>= 30 e-)
  check_noise(4.0);    // exact Poisson branch
}

TEST(Simulate, TruthSkyVarianceMatchesTheCalibratedNoise) {
  // Pool (calibrated - noiseless model)^2 / B over star-free pixels around each faint truth
  // star: the mean is 1 within sqrt(2 / N) if B (sky + dark + read noise, divided by
  // flat^2) is right. B varies linearly across each ring, which cancels to first order.
  SimConfig c;
  c.width = c.height = 768;
  c.n_stars = 150;
  c.n_galaxies = 0;
  c.cosmic_rays_per_mpix = 0;
  c.hot_pixel_fraction = 0;
  c.unstable_hot_fraction = 0;
  const SimInstrument inst = make_instrument(c);
  const SimField field = make_field(c);
  const SimFrame f = render_science_frame(c, inst, field, 0);
  const Image<float> dark = render_master_dark(c, inst);
  Image<float> model(c.width, c.height);  // calibrated stars
  for (const FieldStar& s : field.stars) {
    const double x = s.x + f.conditions.dx_px, y = s.y + f.conditions.dy_px;
    const Stamp st = render_psf_stamp({c.psf, sigma_px_at(c, f.conditions, x, y), c.moffat_beta}, x,
                                      y, s.flux_adu, 30);
    for (int j = 0; j < st.pixels.height(); ++j)
      for (int i = 0; i < st.pixels.width(); ++i)
        if (model.contains(st.x0 + i, st.y0 + j)) model(st.x0 + i, st.y0 + j) += st.pixels(i, j);
  }
  double z2 = 0;
  long n = 0;
  for (const TruthStar& t : f.truth) {
    EXPECT_NEAR(t.snr,
                t.flux_adu / std::sqrt(4 * std::numbers::pi * t.psf_sigma_px * t.psf_sigma_px *
                                       t.sky_var_adu2),
                1e-9 * t.snr);
    const int px = static_cast<int>(std::lround(t.x)), py = static_cast<int>(std::lround(t.y));
    // flat_response is the normalised flat at the star's nearest pixel, the one in B.
    EXPECT_EQ(t.flat_response,
              inst.flat(std::clamp(px, 0, c.width - 1), std::clamp(py, 0, c.height - 1)));
    for (int y = py - 12; y <= py + 12; ++y)
      for (int x = px - 12; x <= px + 12; ++x) {
        const int r2 = (x - px) * (x - px) + (y - py) * (y - py);
        if (r2 < 64 || r2 > 144 || !model.contains(x, y)) continue;
        if (model(x, y) > 0.05 * std::sqrt(t.sky_var_adu2)) continue;  // star light: skip
        const double cal = (f.raw_adu(x, y) - dark(x, y)) / inst.flat(x, y);
        const double expect = sky_e_at(c, f.conditions, x, y) / c.gain_e_per_adu + model(x, y);
        z2 += (cal - expect) * (cal - expect) / t.sky_var_adu2;
        ++n;
      }
  }
  ASSERT_GT(n, 20000);
  EXPECT_NEAR(z2 / n, 1.0, 5 * std::sqrt(2.0 / n) + 0.005);
}

TEST(Simulate, SameSeedSameBytesWithOneOrTwoThreads) {
  SimConfig c;
  c.width = 300;
  c.height = 200;
  c.n_stars = 400;
  c.seed = 77;
  auto run = [&](int threads) {
    ThreadCount tc(threads);
    const SimInstrument inst = make_instrument(c);
    const SimField field = make_field(c);
    SimFrame f = render_science_frame(c, inst, field, 5);
    return std::make_tuple(inst.flat.clone(), std::move(f), render_raw_dark(c, inst, 1),
                           render_raw_flat(c, inst, 2));
  };
  auto [flat1, f1, d1, fl1] = run(1);
  auto [flat2, f2, d2, fl2] = run(2);
  EXPECT_TRUE(same_bytes(flat1, flat2));
  EXPECT_TRUE(same_bytes(f1.raw_adu, f2.raw_adu));
  EXPECT_TRUE(same_bytes(d1, d2));
  EXPECT_TRUE(same_bytes(fl1, fl2));
  ASSERT_EQ(f1.truth.size(), f2.truth.size());
  ASSERT_GT(f1.truth.size(), 300u);
  for (std::size_t i = 0; i < f1.truth.size(); ++i) {
    EXPECT_EQ(f1.truth[i].star_id, f2.truth[i].star_id);
    EXPECT_EQ(f1.truth[i].x, f2.truth[i].x);
    EXPECT_EQ(f1.truth[i].saturated, f2.truth[i].saturated);
  }
}

TEST(Simulate, DifferentSeedsAndFramesDiffer) {
  SimConfig a;
  a.width = a.height = 128;
  a.n_stars = 50;
  SimConfig b = a;
  b.seed = a.seed + 1;
  const SimInstrument ia = make_instrument(a), ib = make_instrument(b);
  const SimField fa = make_field(a), fb = make_field(b);
  EXPECT_FALSE(same_bytes(ia.flat, ib.flat));
  EXPECT_NE(fa.stars[0].x, fb.stars[0].x);
  EXPECT_FALSE(same_bytes(render_science_frame(a, ia, fa, 0).raw_adu,
                          render_science_frame(b, ib, fb, 0).raw_adu));
  EXPECT_FALSE(same_bytes(render_science_frame(a, ia, fa, 0).raw_adu,
                          render_science_frame(a, ia, fa, 1).raw_adu));
  EXPECT_FALSE(same_bytes(render_raw_dark(a, ia, 0), render_raw_dark(a, ia, 1)));
}

TEST(Simulate, DithersShiftTheSameStarList) {
  SimConfig c;
  c.width = c.height = 256;
  c.n_stars = 100;
  const SimInstrument inst = make_instrument(c);
  const SimField field = make_field(c);
  const SimFrame f0 = render_science_frame(c, inst, field, 0);
  const SimFrame f1 = render_science_frame(c, inst, field, 1);
  const double ddx = f1.conditions.dx_px - f0.conditions.dx_px;
  const double ddy = f1.conditions.dy_px - f0.conditions.dy_px;
  EXPECT_GT(std::hypot(ddx, ddy), 0.01);
  EXPECT_LE(std::abs(ddx), 2 * c.dither_px);
  int common = 0;
  for (const TruthStar& a : f0.truth)
    for (const TruthStar& b : f1.truth)
      if (a.star_id == b.star_id) {
        ++common;
        EXPECT_NEAR(b.x - a.x, ddx, 1e-9);
        EXPECT_NEAR(b.y - a.y, ddy, 1e-9);
        EXPECT_DOUBLE_EQ(a.flux_adu, b.flux_adu);
      }
  EXPECT_GT(common, 80);
}

TEST(Simulate, SaturatedTruthStarsAreThoseWhoseRawPeakHitsTheLimit) {
  SimConfig c;
  c.width = c.height = 640;
  c.n_stars = 3000;
  c.seed = 5;
  const SimInstrument inst = make_instrument(c);
  const SimField field = make_field(c);
  SimFrame f = render_science_frame(c, inst, field, 0);
  const Image<float> dark = render_master_dark(c, inst);
  const double g = c.gain_e_per_adu;
  int n_sat = 0;
  for (const TruthStar& t : f.truth) {
    const int px = static_cast<int>(std::lround(t.x)), py = static_cast<int>(std::lround(t.y));
    float peak = -1e30f;
    for (int y = py - 1; y <= py + 1; ++y)
      for (int x = px - 1; x <= px + 1; ++x)
        if (f.raw_adu.contains(x, y)) peak = std::max(peak, f.raw_adu(x, y));
    EXPECT_EQ(t.saturated, peak >= c.saturation_adu) << t.star_id;
    n_sat += t.saturated;
    // The star's own noiseless peak is a lower bound of the noiseless 3x3 maximum; 6 sigma
    // above saturation it must be flagged, whatever the noise.
    if (!f.raw_adu.contains(px, py)) continue;
    const Stamp own =
        render_psf_stamp({c.psf, t.psf_sigma_px, c.moffat_beta}, t.x, t.y, t.flux_adu, 0);
    const double flat = inst.flat(px, py);
    const double mean =
        dark(px, py) + (own.pixels(0, 0) + sky_e_at(c, f.conditions, t.x, t.y) / g) * flat;
    const double sd = std::sqrt((mean - c.bias_adu) * g) / g;
    if (mean > c.saturation_adu + 6 * sd) {
      EXPECT_TRUE(t.saturated) << t.star_id;
    }
  }
  // 0.4% of ~3000 stars drawn above the nominal saturation flux: expect ~12.
  EXPECT_GE(n_sat, 3);
  EXPECT_LE(n_sat, 40);
  // A camera stores them as the top value.
  quantise_camera(f.raw_adu.view(), c.saturation_adu);
  for (const TruthStar& t : f.truth) {
    if (!t.saturated) continue;
    const int px = static_cast<int>(std::lround(t.x)), py = static_cast<int>(std::lround(t.y));
    float peak = 0;
    for (int y = py - 1; y <= py + 1; ++y)
      for (int x = px - 1; x <= px + 1; ++x)
        if (f.raw_adu.contains(x, y)) peak = std::max(peak, f.raw_adu(x, y));
    EXPECT_EQ(peak, 65535.0f);
  }
}

TEST(Simulate, FluxesFollowTheTruncatedPowerLaw) {
  SimConfig c;
  c.n_stars = 40000;
  const SimField field = make_field(c);
  const double a = c.flux_slope, lo = field.flux_min_adu, hi = field.flux_sat_adu;
  const double n = static_cast<double>(field.stars.size());
  // P(F > x) for x in [lo, hi]: (1 - p) (x^-a - hi^-a) / (lo^-a - hi^-a) + p.
  const double p = c.saturated_fraction;
  for (double k : {1.5, 3.0, 10.0, 100.0}) {
    const double x = k * lo;
    long count = 0;
    for (const FieldStar& s : field.stars) count += s.flux_adu > x;
    const double want =
        (1 - p) * (std::pow(x, -a) - std::pow(hi, -a)) / (std::pow(lo, -a) - std::pow(hi, -a)) + p;
    EXPECT_NEAR(count / n, want, 5 * std::sqrt(want * (1 - want) / n)) << "k=" << k;
  }
  long above = 0;
  for (const FieldStar& s : field.stars) {
    EXPECT_GE(s.flux_adu, lo);
    EXPECT_LE(s.flux_adu, c.bright_range * hi);
    above += s.flux_adu >= hi;
  }
  EXPECT_NEAR(above / n, p, 5 * std::sqrt(p / n));
  // The faintest stars have S/N snr_min at the centre of a median frame.
  const double b0 =
      (c.sky_e + c.dark_current_e_per_s * c.exptime_s + c.read_noise_e * c.read_noise_e) /
      (c.gain_e_per_adu * c.gain_e_per_adu);
  EXPECT_NEAR(lo / std::sqrt(4 * std::numbers::pi * 4.0 * b0), c.snr_min, 1e-9);
}

TEST(Simulate, ValidateRejectsNonsenseWithAllProblems) {
  SimConfig c;
  c.width = 0;
  c.gain_e_per_adu = -1;
  try {
    validate(c);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("width"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("gain"), std::string::npos);
  }
  EXPECT_NO_THROW(validate(SimConfig{}));
}

}  // namespace
}  // namespace psfphot
