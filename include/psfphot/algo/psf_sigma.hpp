#pragma once
// The frame's PSF width, step 8's refinement: fit_psf_sigma (psf_photometry.hpp) on bright
// isolated stars, then a low-order polynomial of sigma across the field. Windowed second
// moments (step 8, moments.hpp) are truncated by their window (sigma 1.86 instead of 2.0 px
// in a 9 px window, ../shared/peers/README.md); the fitted widths are not.
// Thread-safety: pure; estimate_psf_sigma runs OpenMP over the candidates (deterministic:
// per-candidate slots, the model fitted serially in candidate order).
#include <utility>
#include <vector>

#include "psfphot/algo/psf_photometry.hpp"
#include "psfphot/core/float_plane.hpp"
#include "psfphot/core/image.hpp"
#include "psfphot/core/mask.hpp"

namespace psfphot {

// The PSF width across the field: sigma(x, y) = polynomial of order 0, 1 or 2 in the
// scaled coordinates u = 2x/W - 1, v = 2y/H - 1 (seeing and focus vary mildly across a
// detector; a single width biases bright-star fluxes by ~2x the relative mismatch).
struct PsfSigmaModel {
  int order = 0;                          // 0: constant, 1: plane, 2: quadratic
  double coef[6] = {2.0, 0, 0, 0, 0, 0};  // 1, u, v, u^2, uv, v^2
  double width = 1, height = 1;           // frame size used for scaling, px
  double sigma_at(double x, double y) const;
};

struct PsfSigmaEstimate {
  double sigma_px = 0;    // median of the per-star fits
  double scatter_px = 0;  // robust scatter of the per-star fits about the model
  int n_stars = 0;        // stars used
  PsfSigmaModel model;    // order chosen from the number of stars (>= 30: 2, >= 10: 1)
};

// Frame PSF sigma: fits fit_psf_sigma on the given candidates (bright, isolated,
// unflagged, chosen by the caller), then fits the polynomial model by least squares with
// iterative 3-sigma clipping. n_stars = 0 (model = sigma0) when none could be fitted.
PsfSigmaEstimate estimate_psf_sigma(ImageView<const float> image, const FloatPlane& rms,
                                    ImageView<const MaskBits> mask,
                                    const std::vector<std::pair<double, double>>& candidates,
                                    double sigma0, const PixelGain& gain,
                                    const PhotometryConfig& cfg, int max_order = 2);

}  // namespace psfphot
