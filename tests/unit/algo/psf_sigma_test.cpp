// The frame's PSF width model from bright stars' fitted widths (algo/psf_sigma.hpp).
#include "psfphot/algo/psf_sigma.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <random>
#include <utility>
#include <vector>

#include "support/synth.hpp"

namespace psfphot {
namespace {

struct Scene {
  Image<float> image;  // background subtracted
  Image<float> rms;
  Image<double> model;  // noiseless stars
};

// A field of isolated bright stars whose sigma follows sigma_of(x, y).
template <typename F>
Scene field(int n, F sigma_of, unsigned seed, std::vector<std::pair<double, double>>& cand,
            std::vector<test::SynthStar>& stars) {
  constexpr int w = 512, h = 512;
  std::mt19937 rng(seed);
  stars = test::scatter_stars(n, w, h, 20, 30, 1e5, 2.0, rng);
  Scene s{Image<float>(w, h, 0.f), Image<float>(w, h, 10.f), Image<double>(w, h, 0.0)};
  for (auto& st : stars) {
    st.sigma = sigma_of(st.x, st.y);
    test::add_star(s.model, st);
  }
  s.image = test::to_float(s.model);
  test::add_noise(s.image, s.model, 10.0, 2.0, rng);
  std::normal_distribution<double> jitter(0.0, 0.2);  // centroid-quality start positions
  cand.clear();
  for (const auto& st : stars) cand.emplace_back(st.x + jitter(rng), st.y + jitter(rng));
  return s;
}

TEST(PsfSigmaTest, EstimatePsfSigmaFromBrightStars) {
  // 50 stars of S/N ~ 300: each fitted sigma errs by ~0.3%, the median of 50 by ~0.05%.
  std::vector<std::pair<double, double>> cand;
  std::vector<test::SynthStar> stars;
  const Scene s = field(
      50, [](double, double) { return 2.3; }, 46, cand, stars);
  const PsfSigmaEstimate e =
      estimate_psf_sigma(s.image.cview(), s.rms.cview(), {}, cand, 2.0, 2.0, PhotometryConfig{});
  EXPECT_EQ(e.n_stars, 50);
  EXPECT_NEAR(e.sigma_px, 2.3, 0.01 * 2.3);
  EXPECT_EQ(e.model.order, 2);
  for (double x : {30.0, 256.0, 480.0})
    for (double y : {30.0, 256.0, 480.0}) EXPECT_NEAR(e.model.sigma_at(x, y), 2.3, 0.01 * 2.3);
  EXPECT_LT(e.scatter_px, 0.02);
  // Fewer stars, simpler models; none: sigma0 back, n_stars 0.
  std::vector<std::pair<double, double>> few(cand.begin(), cand.begin() + 12);
  EXPECT_EQ(estimate_psf_sigma(s.image.cview(), s.rms.cview(), {}, few, 2.0, 2.0, {}).model.order,
            1);
  few.resize(5);
  const PsfSigmaEstimate e5 =
      estimate_psf_sigma(s.image.cview(), s.rms.cview(), {}, few, 2.0, 2.0, {});
  EXPECT_EQ(e5.model.order, 0);
  EXPECT_NEAR(e5.model.sigma_at(100, 100), 2.3, 0.01 * 2.3);
  const PsfSigmaEstimate e0 =
      estimate_psf_sigma(s.image.cview(), s.rms.cview(), {}, {}, 2.0, 2.0, {});
  EXPECT_EQ(e0.n_stars, 0);
  EXPECT_DOUBLE_EQ(e0.model.sigma_at(10, 10), 2.0);
}

TEST(PsfSigmaTest, EstimatePsfSigmaFollowsAFieldGradient) {
  // Sigma from 1.8 px to 3.0 px across the field, linearly; the quadratic model must follow
  // it to 1% inside the area the stars cover.
  auto sig = [](double x, double y) { return 1.8 + 0.8 * x / 512.0 + 0.4 * y / 512.0; };
  std::vector<std::pair<double, double>> cand;
  std::vector<test::SynthStar> stars;
  const Scene s = field(60, sig, 47, cand, stars);
  const PsfSigmaEstimate e =
      estimate_psf_sigma(s.image.cview(), s.rms.cview(), {}, cand, 2.2, 2.0, PhotometryConfig{});
  EXPECT_EQ(e.n_stars, 60);
  EXPECT_EQ(e.model.order, 2);
  for (double x = 40; x <= 472; x += 48)
    for (double y = 40; y <= 472; y += 48)
      EXPECT_NEAR(e.model.sigma_at(x, y), sig(x, y), 0.01 * sig(x, y)) << x << "," << y;
  // The scatter about the model is the per-star fitting noise (~0.3%), not the gradient.
  EXPECT_LT(e.scatter_px, 0.02);
  // Same result with 1 and 2 threads.
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const PsfSigmaEstimate a =
      estimate_psf_sigma(s.image.cview(), s.rms.cview(), {}, cand, 2.2, 2.0, PhotometryConfig{});
  omp_set_num_threads(2);
  const PsfSigmaEstimate b =
      estimate_psf_sigma(s.image.cview(), s.rms.cview(), {}, cand, 2.2, 2.0, PhotometryConfig{});
  omp_set_num_threads(saved);
  for (int c = 0; c < 6; ++c) EXPECT_EQ(a.model.coef[c], b.model.coef[c]);
}

}  // namespace
}  // namespace psfphot
