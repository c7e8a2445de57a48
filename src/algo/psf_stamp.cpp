// The fitting stamp shared by the PSF photometry (psf_photometry.cpp) and the two-star split
// test (deblend.cpp): cutting it, subtracting neighbours, the profiles. The normal equations
// and amplitude sums over it are in psf_stamp_sums.cpp.
#include <algorithm>
#include <cmath>
#include <cstdint>
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

typedef float V4f __attribute__((vector_size(16)));
typedef std::int32_t V4i __attribute__((vector_size(16)));
typedef double V4d __attribute__((vector_size(32)));
typedef std::int64_t V4l __attribute__((vector_size(32)));

// One stamp row from its frame row parts (img, msk, rms, resp: the row's pixels from the
// stamp's first column), with the mask, RMS map and flat response as template switches;
// returns the star flags the row sets. Per pixel the values cut_stamp's scalar loop made
// (its tail here, after four pixels at a time in vectors): ok = finite pixel and RMS, RMS > 0,
// no excluded mask bit; data = ok ? v : 0, sky_var = ok ? r r : 1, the gain as gain.at() would
// give it where ok (else 0), +inf where not > 0; use and on as ok. The vector steps are the
// same IEEE operations (float -> double is exact, then the same products), their choices
// made by bit masks, so every value has the scalar loop's bits. (The scalar loop, a dozen
// branches per pixel, was most of a stamp's cut.)
template <bool kMask, bool kRms, bool kResp>
PSFPHOT_VECTOR_CLONES std::uint32_t stamp_row(
    int n, const float* __restrict img, const MaskBits* __restrict msk, const float* __restrict rms,
    const float* __restrict resp, MaskBits exclude, double e_per_adu, bool with_gain,
    double* __restrict data, double* __restrict sky, double* __restrict gain, char* __restrict use,
    double* __restrict on) {
  constexpr float kMax = std::numeric_limits<float>::max();
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const V4l all = {-1, -1, -1, -1};
  const V4l gain_on = with_gain ? all : V4l{};
  const V4d one = {1.0, 1.0, 1.0, 1.0}, inf = {kInf, kInf, kInf, kInf};
  const V4d e = {e_per_adu, e_per_adu, e_per_adu, e_per_adu};
  V4i sat_any = {}, bad_any = {};
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    V4f v, r = {1.f, 1.f, 1.f, 1.f};
    __builtin_memcpy(&v, img + i, sizeof v);
    if (kRms) __builtin_memcpy(&r, rms + i, sizeof r);
    V4i mb = {};
    if (kMask) mb = V4i{msk[i], msk[i + 1], msk[i + 2], msk[i + 3]};
    const V4i abs_mask = {0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff};
    const V4f av = reinterpret_cast<V4f>(reinterpret_cast<V4i>(v) & abs_mask);
    const V4f ar = reinterpret_cast<V4f>(reinterpret_cast<V4i>(r) & abs_mask);
    const V4i sat = (mb & static_cast<int>(mask::kSaturated)) != 0;
    const V4i ok =
        (av <= kMax) & (ar <= kMax) & (r > 0.f) & ((mb & static_cast<int>(exclude)) == 0);
    sat_any |= sat;
    bad_any |= ~ok & ~sat;
    const V4l okl = __builtin_convertvector(ok, V4l);
    const V4d vd = __builtin_convertvector(v, V4d), rd = __builtin_convertvector(r, V4d);
    const V4d rr = rd * rd;
    const V4d d_out = reinterpret_cast<V4d>(reinterpret_cast<V4l>(vd) & okl);
    const V4d s_out = reinterpret_cast<V4d>((reinterpret_cast<V4l>(rr) & okl) |
                                            (reinterpret_cast<V4l>(one) & ~okl));
    const V4d on_out = reinterpret_cast<V4d>(reinterpret_cast<V4l>(one) & okl);
    V4d g = e;
    if (kResp) {
      V4f fr;
      __builtin_memcpy(&fr, resp + i, sizeof fr);
      const V4l fr_ok = __builtin_convertvector((fr > 0.f) & (fr < 1e30f), V4l);
      const V4d prod = e * __builtin_convertvector(fr, V4d);
      g = reinterpret_cast<V4d>(reinterpret_cast<V4l>(prod) & fr_ok);
    }
    g = reinterpret_cast<V4d>(reinterpret_cast<V4l>(g) & okl & gain_on);
    const V4l pos = g > 0.0;
    const V4d g_out = reinterpret_cast<V4d>((reinterpret_cast<V4l>(g) & pos) |
                                            (reinterpret_cast<V4l>(inf) & ~pos));
    __builtin_memcpy(data + i, &d_out, sizeof d_out);
    __builtin_memcpy(sky + i, &s_out, sizeof s_out);
    __builtin_memcpy(gain + i, &g_out, sizeof g_out);
    __builtin_memcpy(on + i, &on_out, sizeof on_out);
    for (int l = 0; l < 4; ++l) use[i + l] = static_cast<char>(ok[l] & 1);
  }
  bool sat_tail = false, bad_tail = false;
  for (; i < n; ++i) {
    const float v = img[i];
    const MaskBits mb = kMask ? msk[i] : 0;
    const double r = kRms ? rms[i] : 1.0;
    const bool ok = std::isfinite(v) && std::isfinite(r) && r > 0 && !(mb & exclude);
    if (mb & mask::kSaturated) sat_tail = true;
    if (!ok && !(mb & mask::kSaturated)) bad_tail = true;
    data[i] = ok ? v : 0.0;
    sky[i] = ok ? r * r : 1.0;
    double g = 0.0;
    if (ok && with_gain) {
      if (!kResp) {
        g = e_per_adu;
      } else {
        const float fr = resp[i];
        g = fr > 0 && fr < 1e30f ? e_per_adu * fr : 0.0;
      }
    }
    gain[i] = g > 0 ? g : kInf;
    use[i] = ok;
    on[i] = ok ? 1.0 : 0.0;
  }
  const bool sat_v = (sat_any[0] | sat_any[1] | sat_any[2] | sat_any[3]) != 0;
  const bool bad_v = (bad_any[0] | bad_any[1] | bad_any[2] | bad_any[3]) != 0;
  return (sat_v || sat_tail ? star_flag::kSaturated : 0u) |
         (bad_v || bad_tail ? star_flag::kMaskedPixel : 0u);
}

using StampRow = std::uint32_t (*)(int, const float*, const MaskBits*, const float*, const float*,
                                   MaskBits, double, bool, double*, double*, double*, char*,
                                   double*);

template <bool kMask, bool kRms>
StampRow stamp_row_for(bool resp) {
  return resp ? stamp_row<kMask, kRms, true> : stamp_row<kMask, kRms, false>;
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
  const bool has_mask = !mask.empty();
  const StampRow row_fn = has_mask ? (has_rms ? stamp_row_for<true, true>(has_resp)
                                              : stamp_row_for<true, false>(has_resp))
                                   : (has_rms ? stamp_row_for<false, true>(has_resp)
                                              : stamp_row_for<false, false>(has_resp));
  const bool with_gain = gain.e_per_adu > 0;
  for (int j = 0; j < s.ny; ++j) {
    const int py = ya + j;
    const float* rms_row = has_rms ? rms.row_part(py, xa, s.nx, rms_buf) : nullptr;
    const float* resp_row =
        has_resp ? gain.flat_response.row_part(py, xa, s.nx, resp_buf) : nullptr;
    const std::size_t k = static_cast<std::size_t>(j) * s.nx;
    s.flags |= row_fn(s.nx, &image(xa, py), has_mask ? &mask(xa, py) : nullptr, rms_row, resp_row,
                      cfg.exclude_bits, gain.e_per_adu, with_gain, s.data.data() + k,
                      s.sky_var.data() + k, s.gain.data() + k, s.use.data() + k, s.on.data() + k);
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
