#include "synth.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "psfphot/algo/gaussian_psf.hpp"

namespace psfphot::test {
namespace {

template <typename T>
void add_separable(Image<T>& img, const SynthStar& s, bool integrated) {
  const int r = static_cast<int>(std::ceil(8.0 * s.sigma)) + 1;
  const int x0 = std::max(0, static_cast<int>(std::floor(s.x)) - r);
  const int x1 = std::min(img.width() - 1, static_cast<int>(std::floor(s.x)) + r);
  const int y0 = std::max(0, static_cast<int>(std::floor(s.y)) - r);
  const int y1 = std::min(img.height() - 1, static_cast<int>(std::floor(s.y)) + r);
  if (x1 < x0 || y1 < y0) return;
  Profile1D px, py;
  if (integrated) {
    integrated_profile(s.x, s.sigma, x0, x1 - x0 + 1, false, px);
    integrated_profile(s.y, s.sigma, y0, y1 - y0 + 1, false, py);
  } else {
    sampled_profile(s.x, s.sigma, x0, x1 - x0 + 1, false, px);
    sampled_profile(s.y, s.sigma, y0, y1 - y0 + 1, false, py);
  }
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) {
      const double v = s.flux * px.value[x - x0] * py.value[y - y0];
      img(x, y) = static_cast<T>(img(x, y) + v);
    }
}

}  // namespace

void add_star(Image<float>& img, const SynthStar& s) {
  add_separable(img, s, true);
}
void add_star(Image<double>& img, const SynthStar& s) {
  add_separable(img, s, true);
}
void add_sampled_star(Image<float>& img, const SynthStar& s) {
  add_separable(img, s, false);
}

void add_noise(Image<float>& img, double sigma, std::mt19937& rng) {
  std::normal_distribution<double> n(0.0, 1.0);
  for (int y = 0; y < img.height(); ++y)
    for (int x = 0; x < img.width(); ++x)
      img(x, y) = static_cast<float>(img(x, y) + sigma * n(rng));
}

void add_noise(Image<float>& img, const Image<double>& model, double sky_rms, double gain,
               std::mt19937& rng) {
  std::normal_distribution<double> n(0.0, 1.0);
  for (int y = 0; y < img.height(); ++y)
    for (int x = 0; x < img.width(); ++x) {
      double var = sky_rms * sky_rms;
      if (gain > 0) var += std::max(model(x, y), 0.0) / gain;
      img(x, y) = static_cast<float>(img(x, y) + std::sqrt(var) * n(rng));
    }
}

Image<float> to_float(const Image<double>& img) {
  Image<float> out(img.width(), img.height());
  for (int y = 0; y < img.height(); ++y)
    for (int x = 0; x < img.width(); ++x) out(x, y) = static_cast<float>(img(x, y));
  return out;
}

Image<float> constant(int w, int h, float value) {
  return Image<float>(w, h, value);
}

std::vector<SynthStar> scatter_stars(int n, int w, int h, double margin, double min_sep,
                                     double flux, double sigma, std::mt19937& rng) {
  std::uniform_real_distribution<double> ux(margin, w - 1 - margin), uy(margin, h - 1 - margin);
  std::vector<SynthStar> out;
  int tries = 0;
  while (static_cast<int>(out.size()) < n) {
    if (++tries > 1000 * n) throw std::runtime_error("scatter_stars: cannot place the stars");
    const double x = ux(rng), y = uy(rng);
    bool ok = true;
    for (const auto& s : out) ok = ok && std::hypot(s.x - x, s.y - y) >= min_sep;
    if (ok) out.push_back({x, y, flux, sigma});
  }
  return out;
}

}  // namespace psfphot::test
