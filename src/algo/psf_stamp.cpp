// The fitting stamp shared by the PSF photometry (psf_photometry.cpp) and the two-star split
// test (deblend.cpp): cutting it, subtracting neighbours, the profiles. The normal equations
// and amplitude sums over it are in psf_stamp_sums.cpp.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "psf_stamp.hpp"
#include "psfphot/core/simd.hpp"
#include "psfphot/core/star.hpp"

namespace psfphot::detail {

namespace {

// One stamp row of subtract_neighbours: the same operations per pixel, the model's column
// factor (flux E_x) formed once per column, and the variance term times `on` (the stamp's
// use as 0/1) instead of added only where the pixel is used: the term t = max(m, 0) / gain is
// finite and >= 0 (m is a finite model, gain > 0 or +inf), so t * 1 is t and t * 0 adds an
// exact +0 (x + 0 is x). The branch per pixel kept GCC from vectorising the division, most of
// the neighbour passes' subtraction.
PSFPHOT_VECTOR_CLONES void subtract_row(int nx, const double* __restrict fpx, double ey,
                                        const double* __restrict on, const double* __restrict gain,
                                        double* __restrict data, double* __restrict sky) {
  for (int i = 0; i < nx; ++i) {
    const double m = fpx[i] * ey;
    data[i] -= m;
    const double t = std::max(m, 0.0) / gain[i];
    sky[i] += t * on[i];
  }
}

}  // namespace

Stamp cut_stamp(ImageView<const float> image, const FloatPlane& rms, ImageView<const MaskBits> mask,
                const PixelGain& gain, double x, double y, double sigma,
                const PhotometryConfig& cfg) {
  Stamp s;
  cut_stamp_into(s, image, rms, mask, gain, x, y, sigma, cfg);
  return s;
}

void cut_stamp_into(Stamp& s, ImageView<const float> image, const FloatPlane& rms,
                    ImageView<const MaskBits> mask, const PixelGain& gain, double x, double y,
                    double sigma, const PhotometryConfig& cfg) {
  s.flags = 0;
  const int half = std::max(3, static_cast<int>(std::ceil(cfg.stamp_radius_sigma * sigma)));
  const int cx = static_cast<int>(std::lround(x)), cy = static_cast<int>(std::lround(y));
  int xa = cx - half, xb = cx + half, ya = cy - half, yb = cy + half;
  if (xa < 0 || ya < 0 || xb >= image.width() || yb >= image.height()) s.flags |= star_flag::kEdge;
  xa = std::max(xa, 0);
  ya = std::max(ya, 0);
  xb = std::min(xb, image.width() - 1);
  yb = std::min(yb, image.height() - 1);
  s.x0 = xa;
  s.y0 = ya;
  s.nx = std::max(0, xb - xa + 1);
  s.ny = std::max(0, yb - ya + 1);
  const std::size_t n = static_cast<std::size_t>(s.nx) * s.ny;
  s.data.resize(n);
  s.sky_var.resize(n);
  s.gain.resize(n);
  s.use.resize(n);
  s.on.resize(n);
  s.any_gain = gain.any();
  if (n == 0) return;  // the stamp lies wholly off the frame: nothing to read
  // The stamp's rows lie a frame row apart in four frame-sized images, so nearly every row's
  // first read missed the caches, one miss after another: ask for all of them first, so the
  // misses overlap.
  if (s.nx > 0)
    for (int j = 0; j < s.ny; ++j) {
      const int py = ya + j;
      for (int px : {xa, xb}) {
        __builtin_prefetch(&image(px, py));
        if (!rms.empty()) __builtin_prefetch(rms.address(px, py));
        if (!mask.empty()) __builtin_prefetch(&mask(px, py));
        if (!gain.flat_response.empty()) __builtin_prefetch(gain.flat_response.address(px, py));
      }
    }
  // The RMS and flat response a stamp row at a time: either map may be computed or converted
  // as it is read (core/float_plane.hpp), which costs little per row part and more per pixel.
  const bool has_rms = !rms.empty(), has_resp = !gain.flat_response.empty();
  // Row buffers on the stack for the usual stamp widths (no allocation per stamp in the
  // per-star loops), on the heap for a saturated star's wide stamp.
  constexpr int kStackRow = 96;
  float rms_stack[kStackRow], resp_stack[kStackRow];
  std::vector<float> rms_heap, resp_heap;
  float* rms_buf = rms_stack;
  float* resp_buf = resp_stack;
  if (s.nx > kStackRow) {
    rms_heap.resize(s.nx);
    resp_heap.resize(s.nx);
    rms_buf = rms_heap.data();
    resp_buf = resp_heap.data();
  }
  for (int j = 0; j < s.ny; ++j) {
    const int py = ya + j;
    const float* rms_row = has_rms ? rms.row_part(py, xa, s.nx, rms_buf) : nullptr;
    const float* resp_row =
        has_resp ? gain.flat_response.row_part(py, xa, s.nx, resp_buf) : nullptr;
    for (int i = 0; i < s.nx; ++i) {
      const std::size_t k = static_cast<std::size_t>(j) * s.nx + i;
      const int px = xa + i;
      const float v = image(px, py);
      const MaskBits mb = mask.empty() ? 0 : mask(px, py);
      const double r = has_rms ? rms_row[i] : 1.0;
      bool ok = std::isfinite(v) && std::isfinite(r) && r > 0 && !(mb & cfg.exclude_bits);
      if (mb & mask::kSaturated) s.flags |= star_flag::kSaturated;
      if (!ok && !(mb & mask::kSaturated)) s.flags |= star_flag::kMaskedPixel;
      s.data[k] = ok ? v : 0.0;
      s.sky_var[k] = ok ? r * r : 1.0;
      // gain.at(px, py), written out: GCC did not inline it here.
      double g = 0.0;
      if (ok && gain.e_per_adu > 0) {
        if (!has_resp) {
          g = gain.e_per_adu;
        } else {
          const float fr = resp_row[i];
          g = fr > 0 && fr < 1e30f ? gain.e_per_adu * fr : 0.0;
        }
      }
      s.gain[k] = g > 0 ? g : std::numeric_limits<double>::infinity();
      s.use[k] = ok;
      s.on[k] = ok ? 1.0 : 0.0;
    }
  }
}

// Neighbours' models are taken out of the stamp's data, and their photon noise goes into
// the fixed part of each pixel's variance (their light is still there in the noise).
void subtract_neighbours(Stamp& s, std::span<const NeighbourModel> neighbours,
                         const PhotometryConfig& cfg) {
  if (neighbours.empty()) return;
  // Per thread, not per call (this runs once per fit of the neighbour passes).
  thread_local Profile1D px, py;
  thread_local std::vector<double> fpx;
  for (const NeighbourModel& n : neighbours) {
    if (!std::isfinite(n.flux) || !std::isfinite(n.x) || !std::isfinite(n.y) || !(n.sigma > 0))
      continue;
    if (cfg.integrate_pixels) {
      integrated_profile(n.x, n.sigma, s.x0, s.nx, false, px);
      integrated_profile(n.y, n.sigma, s.y0, s.ny, false, py);
    } else {
      sampled_profile(n.x, n.sigma, s.x0, s.nx, false, px);
      sampled_profile(n.y, n.sigma, s.y0, s.ny, false, py);
    }
    // m = flux E_x E_y, as (flux E_x) E_y.
    fpx.resize(static_cast<std::size_t>(s.nx));
    for (int i = 0; i < s.nx; ++i) fpx[i] = n.flux * px.value[i];
    for (int j = 0; j < s.ny; ++j) {
      const std::size_t k = static_cast<std::size_t>(j) * s.nx;
      subtract_row(s.nx, fpx.data(), py.value[j], s.on.data() + k, s.gain.data() + k,
                   s.data.data() + k, s.sky_var.data() + k);
    }
  }
}

void profiles(const Stamp& s, double x, double y, double sigma, bool integrate, bool derivs,
              Profile1D& px, Profile1D& py) {
  if (integrate) {
    integrated_profile(x, sigma, s.x0, s.nx, derivs, px);
    integrated_profile(y, sigma, s.y0, s.ny, derivs, py);
  } else {
    sampled_profile(x, sigma, s.x0, s.nx, derivs, px);
    sampled_profile(y, sigma, s.y0, s.ny, derivs, py);
  }
}

}  // namespace psfphot::detail
