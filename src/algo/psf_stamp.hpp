#pragma once
// Internal to src/algo (not installed): the fitting stamp shared by the PSF photometry
// (psf_photometry.cpp) and the two-star split test (deblend.cpp), and the sums their fits
// make over it (vectorised in psf_stamp_sums.cpp: the normal equations' sums in pixel order, the
// amplitude's by partial sums).
// Thread-safety: plain values and functions safe to call from any thread at once; some keep
// per-thread (thread_local) work buffers, rewritten for each stamp before they are read, and
// none calls another that uses the same buffer while holding it.
#include <Eigen/Dense>
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "psfphot/algo/gaussian_psf.hpp"
#include "psfphot/algo/psf_photometry.hpp"
#include "psfphot/core/image.hpp"

namespace psfphot::detail {

// A vector whose resize leaves new elements of a trivial type uninitialised (core/image.hpp's
// PixelAllocator: default-, not value-initialised; stamps are far below its mapping size, so
// plain new): cut_stamp_into writes every element of a stamp it resizes, and the per-thread
// stamps, resized for each star, zeroed the part each larger stamp added first (a memset per
// vector and star).
template <class T>
using StampVector = std::vector<T, PixelAllocator<T>>;

// A box of background-subtracted pixels around a star with, per pixel, the fixed part of
// the variance (sky, plus subtracted neighbours' photon noise), the effective gain for the
// star's own photon noise, and whether the pixel takes part (not masked, finite).
struct Stamp {
  int x0 = 0, y0 = 0, nx = 0, ny = 0;  // frame px of the first pixel; size
  StampVector<double> data, sky_var;   // ADU; ADU^2
  // Effective e-/ADU per pixel; +inf where there is no photon-noise term (no gain, or the
  // pixel is not used), so max(model, 0) / gain is the term everywhere, with no branch.
  StampVector<double> gain;
  bool any_gain = false;
  StampVector<char> use;
  // use as a 0/1 weight (kept equal to it: cut_stamp sets both; whoever drops a pixel from
  // `use` zeroes it here too). The sums below multiply by it rather than branch, and had
  // rebuilt it from `use` on every call.
  StampVector<double> on;
  std::uint32_t flags = 0;  // kEdge, kSaturated, kMaskedPixel from the pixels
};

// The stamp of half-size max(3, ceil(cfg.stamp_radius_sigma * sigma)) px around (x, y).
Stamp cut_stamp(ImageView<const float> image, const FloatPlane& rms, ImageView<const MaskBits> mask,
                const PixelGain& gain, double x, double y, double sigma,
                const PhotometryConfig& cfg);
// The same stamp, cut into `s` (every field set; its vectors' storage reused).
void cut_stamp_into(Stamp& s, ImageView<const float> image, const FloatPlane& rms,
                    ImageView<const MaskBits> mask, const PixelGain& gain, double x, double y,
                    double sigma, const PhotometryConfig& cfg);

// Neighbours' models are taken out of the data; their photon noise goes into sky_var.
void subtract_neighbours(Stamp& s, std::span<const NeighbourModel> neighbours,
                         const PhotometryConfig& cfg);

// The x and y profiles of a unit-flux Gaussian at (x, y) over the stamp's columns and rows.
void profiles(const Stamp& s, double x, double y, double sigma, bool integrate, bool derivs,
              Profile1D& px, Profile1D& py);

// The normal equations J^T W J d = J^T W r of the (F, x, y) fit at flux F, from the profiles
// of the model position (with derivatives), weights 1/var from the model variance (or 1 when
// `weighted` is false), as 4x4 with the fourth parameter (the width) decoupled: A(3, 3) = 1,
// zeros elsewhere in its row and column. `covariance`: the full matrix at weights 1/var,
// for A.inverse() (b untouched); otherwise the lower triangle (what an LDLT reads) and b.
// `scratch` is working space (reused between calls to spare allocations).
void normal_equations_xy(const Stamp& s, const Profile1D& px, const Profile1D& py, double F,
                         bool weighted, bool covariance, std::vector<double>& scratch,
                         Eigen::Matrix4d& A, Eigen::Vector4d& b);

// The same for the (F, x, y, sigma) fit (fit_psf_sigma): the full 4x4 (F, x, y, sigma) matrix
// of (w J_a) J_b sums (at weights 1/var when `covariance`, b then untouched), the bits of
// the Eigen form A += w J J^T, b += (w r) J over the used pixels in pixel order. Needs the
// profiles' d_s.
void normal_equations_xys(const Stamp& s, const Profile1D& px, const Profile1D& py, double F,
                          bool weighted, bool covariance, std::vector<double>& scratch,
                          Eigen::Matrix4d& A, Eigen::Vector4d& b);

// The sums of the fixed-position amplitude f = sum(w d p) / sum(w p^2) and of its variance
// sum(w^2 p^2 var), over the used pixels (each row's terms summed four pixels to a partial sum,
// then the rows in order), with var the sky's plus the photon noise of the model F p (F = 0:
// the sky's alone) and w = 1/var (1 when not `weighted`). `want_var` false: var_num is not
// summed (set to NaN); num and den are the same bits either way.
void amplitude_sums(const Stamp& s, const Profile1D& px, const Profile1D& py, double F,
                    bool weighted, std::vector<double>& scratch, double& num, double& den,
                    double& var_num, bool want_var = true);

// The normal equations of K stars fitted jointly (deblend.cpp): parameters (F, x, y) of star 0,
// then of star 1, ...; the model at a pixel is the sum of the stars' models, its variance the sky's
// plus the summed model's photon noise. `full`: the whole matrix (for A.inverse()), else
// the lower triangle only (what an LDLT reads). Returns chi^2 = sum r^2 / var over the used
// pixels when `full` (0 otherwise: a step does not need it). Each term is the product the Eigen
// form w J J^T, (w r) J computes, summed in pixel order, so the results are those bits.
// Instantiated for K = 1 and 2.
template <int K>
double joint_normal_equations(const Stamp& s, const std::array<Profile1D, K>& px,
                              const std::array<Profile1D, K>& py, const std::array<double, K>& F,
                              bool weighted, bool full, std::vector<double>& scratch,
                              Eigen::Matrix<double, 3 * K, 3 * K>& A,
                              Eigen::Matrix<double, 3 * K, 1>& b);

// The companion search's candidate pixels (companion.cpp): into `out` (resized to their
// count), in scan order, the indices j nx + i of an nx x ny stamp whose residual
// r[j stride + i] is not <= 0 (NaN included, as the search always took it) and whose centre (x0 +
// i, y0 + j) lies at a distance d from (cx, cy) with rmin <= d <= rmax, d = std::hypot(dx, dy). The
// squared distance decides outside a shell of 1e-9 relative around rmin^2 and rmax^2 (its
// error is ~1e-16), hypot inside it: the same set as hypot everywhere.
void companion_candidates(const double* r, std::ptrdiff_t stride, int nx, int ny, int x0, int y0,
                          double cx, double cy, double rmin, double rmax, std::vector<int>& out);

}  // namespace psfphot::detail
