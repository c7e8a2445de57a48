#include "psfphot/algo/psf_sigma.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>

#include "psfphot/algo/stats.hpp"
#include "psfphot/core/star.hpp"

namespace psfphot {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

double PsfSigmaModel::sigma_at(double x, double y) const {
  const double u = 2.0 * x / width - 1.0, v = 2.0 * y / height - 1.0;
  double s = coef[0];
  if (order >= 1) s += coef[1] * u + coef[2] * v;
  if (order >= 2) s += coef[3] * u * u + coef[4] * u * v + coef[5] * v * v;
  return s;
}

PsfSigmaEstimate estimate_psf_sigma(ImageView<const float> image, const FloatPlane& rms,
                                    ImageView<const MaskBits> mask,
                                    const std::vector<std::pair<double, double>>& candidates,
                                    double sigma0, const PixelGain& gain,
                                    const PhotometryConfig& cfg, int max_order) {
  std::vector<double> sig(candidates.size(), kNaN), fx(candidates.size()), fy(candidates.size());
#pragma omp parallel for schedule(dynamic, 4)
  for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(candidates.size()); ++i) {
    PsfFit f = fit_psf_sigma(image, rms, mask, candidates[i].first, candidates[i].second, sigma0,
                             gain, cfg);
    if (f.converged &&
        !(f.flags & (star_flag::kEdge | star_flag::kSaturated | star_flag::kMaskedPixel))) {
      sig[i] = f.sigma;
      fx[i] = f.x;
      fy[i] = f.y;
    }
  }
  std::vector<double> good, gx, gy;
  for (std::size_t i = 0; i < sig.size(); ++i)
    if (std::isfinite(sig[i])) {
      good.push_back(sig[i]);
      gx.push_back(fx[i]);
      gy.push_back(fy[i]);
    }
  PsfSigmaEstimate e;
  e.model.width = std::max(1, image.width());
  e.model.height = std::max(1, image.height());
  e.model.coef[0] = sigma0;
  e.n_stars = static_cast<int>(good.size());
  if (good.empty()) return e;
  std::vector<double> tmp = good;
  e.sigma_px = median_inplace(tmp);
  e.model.coef[0] = e.sigma_px;
  const int order = std::min(max_order, good.size() >= 30 ? 2 : (good.size() >= 10 ? 1 : 0));
  const int nc = order == 2 ? 6 : (order == 1 ? 3 : 1);
  // Least squares with clipping: a blended or cosmic-ray-hit star can fit a wild width.
  std::vector<char> use(good.size(), 1);
  double scatter = 0;
  for (int it = 0; it < 5 && order > 0; ++it) {
    Eigen::MatrixXd A(good.size(), nc);
    Eigen::VectorXd b(good.size());
    for (std::size_t i = 0; i < good.size(); ++i) {
      const double u = 2.0 * gx[i] / e.model.width - 1.0, v = 2.0 * gy[i] / e.model.height - 1.0;
      const double row[6] = {1, u, v, u * u, u * v, v * v};
      const double wt = use[i] ? 1.0 : 0.0;
      for (int c = 0; c < nc; ++c) A(static_cast<Eigen::Index>(i), c) = wt * row[c];
      b(static_cast<Eigen::Index>(i)) = wt * good[i];
    }
    Eigen::VectorXd coef = A.colPivHouseholderQr().solve(b);
    PsfSigmaModel m = e.model;
    m.order = order;
    for (int c = 0; c < nc; ++c) m.coef[c] = coef(c);
    std::vector<double> res;
    for (std::size_t i = 0; i < good.size(); ++i)
      if (use[i]) res.push_back(good[i] - m.sigma_at(gx[i], gy[i]));
    scatter = mad_std_inplace(res);
    bool changed = false;
    for (std::size_t i = 0; i < good.size(); ++i) {
      const bool keep = std::abs(good[i] - m.sigma_at(gx[i], gy[i])) <= 3.0 * scatter + 1e-9;
      changed |= keep != static_cast<bool>(use[i]);
      use[i] = keep;
    }
    e.model = m;
    if (!changed) break;
  }
  if (order == 0) {
    std::vector<double> g2 = good;
    scatter = good.size() > 1 ? mad_std_inplace(g2) : 0.0;
  }
  e.scatter_px = scatter;
  return e;
}

}  // namespace psfphot
