#include "psfphot/algo/sim_psf.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

namespace psfphot {
namespace {

constexpr double kPi = std::numbers::pi;

// Gauss-Legendre nodes and weights mapped to [-0.5, 0.5] (weights sum to 1).
constexpr double kGl4Node[4] = {-0.43056815579702629, -0.16999052179242813, 0.16999052179242813,
                                0.43056815579702629};
constexpr double kGl4Weight[4] = {0.17392742256872693, 0.32607257743127307, 0.32607257743127307,
                                  0.17392742256872693};
constexpr double kGl3Node[3] = {-0.38729833462074169, 0.0, 0.38729833462074169};
constexpr double kGl3Weight[3] = {0.27777777777777778, 0.44444444444444444, 0.27777777777777778};
constexpr double kGl2Node[2] = {-0.28867513459481288, 0.28867513459481288};
constexpr double kGl2Weight[2] = {0.5, 0.5};
constexpr const double* kGlNode[5] = {nullptr, nullptr, kGl2Node, kGl3Node, kGl4Node};
constexpr const double* kGlWeight[5] = {nullptr, nullptr, kGl2Weight, kGl3Weight, kGl4Weight};

// Distance beyond which an n-point Gauss-Legendre rule integrates a Moffat pixel to a relative
// error below kQuadTol. The n-point rule on a unit interval errs by
// (n!)^4 / ((2n+1) ((2n)!)^3) f^(2n); in the power-law wing f ~ r^(-2 beta), so
// |f^(2n) / f| <= (2 beta)(2 beta + 1)...(2 beta + 2n - 1) / r^(2n).
constexpr double kQuadTol = 3e-7;
double gl_safe_radius(int n, double beta) {
  const double c = n == 2 ? 1.0 / 4320.0 : 1.0 / 2016000.0;
  double prod = 1.0;
  for (int i = 0; i < 2 * n; ++i) prod *= 2.0 * beta + i;
  return std::pow(c * prod / kQuadTol, 1.0 / (2 * n));
}

}  // namespace

const char* psf_model_name(PsfModel m) {
  return m == PsfModel::kMoffat ? "moffat" : "gaussian";
}

double moffat_alpha_px(double sigma_px, double beta) {
  const double fwhm = 2.0 * std::sqrt(2.0 * std::log(2.0)) * sigma_px;
  return fwhm / (2.0 * std::sqrt(std::pow(2.0, 1.0 / beta) - 1.0));
}

double psf_intensity(const PsfShape& psf, double r_px) {
  const double r2 = r_px * r_px;
  if (psf.model == PsfModel::kGaussian) {
    const double s2 = psf.sigma_px * psf.sigma_px;
    return std::exp(-0.5 * r2 / s2) / (2.0 * kPi * s2);
  }
  const double a = moffat_alpha_px(psf.sigma_px, psf.moffat_beta);
  return (psf.moffat_beta - 1.0) / (kPi * a * a) * std::pow(1.0 + r2 / (a * a), -psf.moffat_beta);
}

double psf_fraction_outside(const PsfShape& psf, double r_px) {
  const double r2 = r_px * r_px;
  if (psf.model == PsfModel::kGaussian) return std::exp(-0.5 * r2 / (psf.sigma_px * psf.sigma_px));
  const double a = moffat_alpha_px(psf.sigma_px, psf.moffat_beta);
  return std::pow(1.0 + r2 / (a * a), 1.0 - psf.moffat_beta);
}

double psf_central_pixel_fraction(const PsfShape& psf) {
  Stamp s = render_psf_stamp(psf, 0.0, 0.0, 1.0, 0);
  return s.pixels(0, 0);
}

int stamp_radius_px(const PsfShape& psf, double flux_adu, double edge_adu,
                    double max_outside_fraction, int min_radius_px, int max_radius_px) {
  double r = 0.0;
  const bool gauss = psf.model == PsfModel::kGaussian;
  const double s2 = psf.sigma_px * psf.sigma_px;
  const double a = gauss ? 0.0 : moffat_alpha_px(psf.sigma_px, psf.moffat_beta);
  if (flux_adu > 0 && edge_adu > 0) {
    if (gauss) {
      const double q = flux_adu / (2.0 * kPi * s2 * edge_adu);
      r = q > 1.0 ? std::sqrt(2.0 * s2 * std::log(q)) : 0.0;
    } else {
      const double q = flux_adu * (psf.moffat_beta - 1.0) / (kPi * a * a * edge_adu);
      const double u = std::pow(std::max(q, 1.0), 1.0 / psf.moffat_beta);
      r = a * std::sqrt(u - 1.0);
    }
  }
  if (max_outside_fraction > 0 && max_outside_fraction < 1) {
    const double m = max_outside_fraction;
    r = std::max(r, gauss ? std::sqrt(-2.0 * s2 * std::log(m))
                          : a * std::sqrt(std::pow(m, 1.0 / (1.0 - psf.moffat_beta)) - 1.0));
  }
  const int ri = static_cast<int>(std::ceil(std::min(r, 1e6)));
  return std::clamp(ri, min_radius_px, std::max(min_radius_px, max_radius_px));
}

Stamp render_psf_stamp(const PsfShape& psf, double x, double y, double flux_adu, int radius_px) {
  const int r = std::max(radius_px, 0);
  const int n = 2 * r + 1;
  Stamp s;
  s.x0 = static_cast<int>(std::lround(x)) - r;
  s.y0 = static_cast<int>(std::lround(y)) - r;
  s.pixels = Image<float>(n, n);
  if (psf.model == PsfModel::kGaussian) {
    // Separable: pixel (i, j) holds flux * gx[i] * gy[j]. Evaluating erf at the n + 1 pixel
    // edges and differencing keeps the row sums telescoping to the exact 1-D integral.
    std::vector<double> ex(n + 1), ey(n + 1);
    const double k = 1.0 / (psf.sigma_px * std::numbers::sqrt2);
    for (int i = 0; i <= n; ++i) {
      ex[i] = std::erf((s.x0 + i - 0.5 - x) * k);
      ey[i] = std::erf((s.y0 + i - 0.5 - y) * k);
    }
    for (int j = 0; j < n; ++j) {
      const double gy = 0.5 * (ey[j + 1] - ey[j]) * flux_adu;
      float* row = s.pixels.view().row(j);
      for (int i = 0; i < n; ++i) row[i] = static_cast<float>(0.5 * (ex[i + 1] - ex[i]) * gy);
    }
    return s;
  }
  const double beta = psf.moffat_beta;
  const double a = moffat_alpha_px(psf.sigma_px, beta);
  const double inv_a2 = 1.0 / (a * a);
  const double norm = flux_adu * (beta - 1.0) / (kPi * a * a);
  // t^-beta is most of the cost; for the usual beta = k/2 (2.5, 3, 4, ...) products, a
  // reciprocal and at most one sqrt do it several times faster than pow().
  const double twice = 2.0 * beta;
  const bool half_integer = twice == std::round(twice) && twice <= 40.0;
  const int whole = static_cast<int>(std::floor(beta));
  const bool with_sqrt = half_integer && static_cast<int>(twice) % 2 == 1;
  auto inv_power = [&](double t) {
    if (!half_integer) return std::pow(t, -beta);
    double p = 1.0;
    for (int k = 0; k < whole; ++k) p *= t;
    if (with_sqrt) p *= std::sqrt(t);
    return 1.0 / p;
  };
  // 4 nodes per axis in the core (smooth on the scale alpha there), fewer in the wing where
  // the power-law error bound allows; distances are from the nearest point of the pixel.
  const double r3 = std::max(3.0 * a + 1.0, gl_safe_radius(3, beta));
  const double r2 = std::max(r3, gl_safe_radius(2, beta));
  for (int j = 0; j < n; ++j) {
    const double dyc = s.y0 + j - y;
    float* row = s.pixels.view().row(j);
    for (int i = 0; i < n; ++i) {
      const double dxc = s.x0 + i - x;
      const double d = std::max(0.0, std::sqrt(dxc * dxc + dyc * dyc) - std::numbers::sqrt2 / 2);
      const int m = d < r3 ? 4 : (d < r2 ? 3 : 2);
      const double* node = kGlNode[m];
      const double* weight = kGlWeight[m];
      double sum = 0.0;
      for (int q = 0; q < m; ++q) {
        const double dy = dyc + node[q];
        for (int p = 0; p < m; ++p) {
          const double dx = dxc + node[p];
          sum += weight[q] * weight[p] * inv_power(1.0 + (dx * dx + dy * dy) * inv_a2);
        }
      }
      row[i] = static_cast<float>(norm * sum);
    }
  }
  return s;
}

}  // namespace psfphot
