#pragma once
// Step 2: mesh sky background and RMS, SExtractor/SEP style.
//
// Method (Bertin & Arnouts 1996, A&AS 117, 393, sect. 3.1; SEP's background.c):
//  1. the image is cut into meshes of `mesh_px` (the last row/column of meshes may be
//     smaller); pixels with any bit of `exclude_bits` in the mask (and non-finite ones)
//     are ignored;
//  2. per mesh, iterative kappa-sigma clipping about the median until convergence (exact
//     medians and kept sets: the values are put in buckets of value and only the buckets
//     where a median or a clipping bound falls are sorted);
//  3. the mesh level is the mode estimate 2.5 median - 1.5 mean, unless the distribution
//     is skewed ((mean - median) / sigma >= 0.3), where the median is used; the RMS is
//     the clipped standard deviation;
//  4. meshes with fewer than `min_good_fraction` usable pixels are bad and take the mean
//     of their nearest good neighbours;
//  5. a `filter_size` x `filter_size` median filter smooths the mesh grid; near the grid
//     edges the window shrinks symmetrically so it stays centred on the mesh (SExtractor's
//     filterback: edge meshes are filtered along the edge only, corner meshes not at all);
//  6. natural bicubic splines through the mesh centres give the full-resolution maps.
// Thread-safety: pure; OpenMP over mesh rows and map rows; deterministic (the same bits for
// any thread count).
#include <memory>
#include <stdexcept>
#include <vector>

#include "psfphot/core/float_plane.hpp"
#include "psfphot/core/image.hpp"
#include "psfphot/core/mask.hpp"

namespace psfphot {

struct BackgroundConfig {
  int mesh_px = 64;         // mesh size, px (SExtractor BACK_SIZE)
  int filter_size = 3;      // median filter over the mesh grid, meshes (BACK_FILTERSIZE)
  double clip_kappa = 3.0;  // clipping threshold, sigmas
  int clip_max_iter = 10;
  double min_good_fraction = 0.5;      // of a mesh's pixels that must be usable
  double max_bad_mesh_fraction = 0.9;  // more bad meshes than this: BackgroundError
  MaskBits exclude_bits = mask::kNoBackground;
};

class BackgroundError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Step 6's natural bicubic spline through a mesh grid (node i along an axis at pixel
// coordinate cx[i] / cy[j]): a natural cubic spline along y through every mesh column, then
// one along x through those values in every pixel row. Both stages are linear in the grid, so
// the x-stage second derivatives a row needs are the y spline of the grid rows' own x second
// derivatives; with those precomputed, a row of the map costs O(nodes) set-up and one cubic
// per pixel (evaluated in float: within a few float ulps of the exact spline).
struct MeshSpline {
  std::vector<double> cx, cy;
  int nx = 0, ny = 0;
  std::vector<double> g, gyy, gxx, gxxyy;  // grid, d2/dy2, d2/dx2, d4/dx2dy2; index i + nx j
  bool empty() const { return g.empty(); }
  // Pixels [0, width) of row y into out; and one pixel, the same value bit for bit.
  void row(int y, int width, float* out) const;
  float at(int x, int y) const;
};
MeshSpline make_mesh_spline(ImageView<const float> grid, std::vector<double> cx,
                            std::vector<double> cy);

// One interval's cubic in its local coordinate t: p0 + t (p1 + t (p2 + t p3)), in float.
// (No member initialisers: arrays of them are filled before use, and a zero fill of the
// 64-interval array SplineMap::row keeps on its stack would be paid per call.)
struct SplineCubic {
  float p0, p1, p2, p3;
};

// A MeshSpline's full-resolution width x height map, evaluated when asked: the same values as
// spline_upsample's image, bit for bit, for any pixel or part of a row (per pixel a table
// look-up of its interval and local coordinate, per row part the y spline of the few nodes
// it needs, then the same cubic in float). Thread-safe (const).
class SplineMap final : public PlaneSource {
 public:
  // One row of the map made ready for evaluation part by part (prepare_row): per x interval
  // of the spline its cubic, its pixels and a lower bound of every value the map has there
  // (detection skips the RMS and the threshold test where no pixel can pass). Scratch owned
  // by one thread.
  struct Row {
    int y = -1;
    std::vector<int> begin, end;  // interval k's pixels [begin[k], end[k]), in increasing x
                                  // (k = 0 .. intervals - 1)
    // lower[k] <= every value at() / row() / eval() give in interval k of this row (ADU; a
    // proven bound including the float evaluation's rounding, see background_spline.cpp);
    // -inf when no finite bound was found.
    std::vector<double> lower;
    std::vector<double> val, d2;  // the row's node values and x second derivatives
    // The cubics' coefficients, coefficient by coefficient: interval k's p_j at j n + k (n
    // intervals; see SplineCubic).
    std::vector<float> pc;
  };

  SplineMap(MeshSpline spline, int width, int height);
  // Planes point at the map: it stays where it was made (Background holds it by pointer).
  SplineMap(const SplineMap&) = delete;
  SplineMap& operator=(const SplineMap&) = delete;
  float at(int x, int y) const override;
  void row(int y, int x0, int n, float* out) const override;
  FloatPlane plane() const { return FloatPlane::computed(this, w_, h_); }
  int width() const { return w_; }
  int height() const { return h_; }
  // Row y's cubics and bounds into `out` (O(mesh intervals)); then eval(out, x0, x1, dst)
  // writes dst[x] for x in [x0, x1) (0 <= x0, x1 <= width): the values of row() bit for bit.
  void prepare_row(int y, Row& out) const;
  void eval(const Row& r, int x0, int x1, float* dst) const;

 private:
  MeshSpline s_;
  int w_ = 0, h_ = 0;
  std::vector<float> t_;  // per pixel column: the local coordinate in its interval
  std::vector<int> seg_;  // per pixel column: its interval (>= 1; 0 when one node column)
  std::vector<int> end_;  // per interval: the first column after it
  // Per interval (from 0): h^2 / 6 of its cubic; its pixels' smallest t, the width of their t
  // range (rounded up) and their largest |t| (for prepare_row's bounds).
  std::vector<double> k6_, ta_, td_, tmax_;
};

struct Background {
  // ADU per pixel, full resolution; empty when estimated with keep_level_image = false,
  // then level_at() and subtract_background() evaluate the same spline row by row from
  // level_spline: one full-frame image less per frame, bit-identical values.
  Image<float> level;
  MeshSpline level_spline;
  // ADU per pixel, full resolution: only when estimated with keep_level_image (the maps are
  // kept for output); always as rms_map, evaluated from the mesh spline where it is read
  // (the same values bit for bit, without a frame-sized image). Read it through rms_plane().
  // (Named rms_image, not rms, so that code written for the always-full image stops
  // compiling rather than reading an empty one.)
  Image<float> rms_image;
  std::shared_ptr<const SplineMap> rms_map;
  Image<float> mesh_level;  // the filtered mesh grid (nx x ny)
  Image<float> mesh_rms;
  int n_bad_meshes = 0;
  double global_level = 0;  // median of the mesh levels
  double global_rms = 0;    // median of the mesh RMS

  // The RMS map, whichever way it is held (empty before estimation).
  FloatPlane rms_plane() const {
    if (!rms_image.empty()) return FloatPlane(rms_image.cview());
    return rms_map ? rms_map->plane() : FloatPlane();
  }
  // The level at pixel (x, y), equal to level(x, y) whether or not that image is kept.
  // O(meshes per row) when it is not.
  float level_at(int x, int y) const;
};

// Throws BackgroundError when too few meshes are usable or the config is invalid.
// keep_level_image: also build the full-resolution level and RMS images (for output).
Background estimate_background(ImageView<const float> image, ImageView<const MaskBits> mask,
                               const BackgroundConfig& cfg, bool keep_level_image = true);

// image -= level, in place, exactly as subtracting level(x, y) pixel by pixel.
// OpenMP over rows; deterministic.
void subtract_background(ImageView<float> image, const Background& bg);

// Natural cubic spline interpolation of a coarse grid whose node i along an axis sits at
// pixel coordinate centres[i]; evaluated at every integer pixel 0..n-1 (beyond the end
// nodes, the end intervals' cubics continue). Exposed for testing. OpenMP over rows.
Image<float> spline_upsample(ImageView<const float> grid, const std::vector<double>& cx,
                             const std::vector<double>& cy, int width, int height);

}  // namespace psfphot
