#pragma once
// Internal to src/pipeline (not installed): the index of fitted star models shared by the
// neighbour handling (neighbours.cpp) and the deblending (blends.cpp).
// Thread-safety: built once, then read-only (safe to query from many threads).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numbers>
#include <vector>

#include "psfphot/algo/psf_photometry.hpp"

namespace psfphot::pipeline::detail {

// hypot(dx, dy) < r, the same answer with few hypot calls: the squared distance decides except
// within a relative 1e-9 of r^2 (its rounding, ~1e-16, could only differ from hypot's there),
// where hypot does. (The index queries made ~60% of the photometry step's hypot calls.)
inline bool closer_than(double dx, double dy, double r) {
  const double d2 = dx * dx + dy * dy, r2 = r * r;
  if (r > 1e-100 && r < 1e100) {
    if (d2 < r2 * (1 - 1e-9)) return true;
    if (d2 > r2 * (1 + 1e-9)) return false;
  }
  return std::hypot(dx, dy) < r;
}

// The fitted models that can be subtracted (converged, positive flux), how far each reaches
// (where it falls to 1% of the sky RMS, plus `margin_px`), and a grid of them by position
// (cells filled in star order, so every list is deterministic).
struct ModelIndex {
  static constexpr int kCell = 32;
  std::vector<char> usable;
  std::vector<double> reach;
  double max_reach = 0;
  int gw = 0, gh = 0;
  // The grid as one array: cell c holds members[start[c] .. start[c + 1]) (built once per
  // neighbour pass, so no vector per cell: 16641 of them at 4096^2 cost more than the pass
  // when only a few stars are refitted).
  std::vector<std::ptrdiff_t> start, members;
  const std::vector<PsfFit>& fits;

  ModelIndex(const std::vector<PsfFit>& f, const std::vector<double>& sig, double sky_rms,
             int width, int height, double margin_px)
      : usable(f.size(), 0), reach(f.size(), 0.0), fits(f) {
    for (std::size_t j = 0; j < f.size(); ++j) {
      if (!f[j].converged || !std::isfinite(f[j].flux) || !(f[j].flux > 0)) continue;
      usable[j] = 1;
      const double peak = f[j].flux / (2.0 * std::numbers::pi * sig[j] * sig[j]);
      reach[j] =
          sig[j] * std::sqrt(2.0 * std::log(std::max(1.0, peak / (0.01 * sky_rms)))) + margin_px;
      max_reach = std::max(max_reach, reach[j]);
    }
    gw = width / kCell + 1;
    gh = height / kCell + 1;
    const std::size_t cells = static_cast<std::size_t>(gw) * gh;
    std::vector<std::size_t> where(f.size());
    start.assign(cells + 1, 0);
    for (std::size_t j = 0; j < f.size(); ++j)
      if (usable[j]) {
        where[j] = static_cast<std::size_t>(cell(f[j].y, gh)) * gw + cell(f[j].x, gw);
        ++start[where[j] + 1];
      }
    for (std::size_t c = 0; c < cells; ++c) start[c + 1] += start[c];
    members.resize(static_cast<std::size_t>(start[cells]));
    std::vector<std::ptrdiff_t> fill(start.begin(), start.end() - 1);
    for (std::size_t j = 0; j < f.size(); ++j)  // in star order within each cell
      if (usable[j])
        members[static_cast<std::size_t>(fill[where[j]]++)] = static_cast<std::ptrdiff_t>(j);
  }
  static int cell(double v, int cells) {
    return std::clamp(static_cast<int>(v / kCell), 0, cells - 1);
  }
  // Every usable model whose cell lies within r + max_reach of (x, y), cell by cell.
  template <typename Fn>
  void for_each_near(double x, double y, double r, Fn fn) const {
    for_each_in_cells(x, y, r + max_reach, fn);
  }
  // Every usable model whose cell lies within R of (x, y) (in both axes), cell by cell: a
  // superset of the models whose centres lie closer than R, in the order for_each_near
  // visits them.
  template <typename Fn>
  void for_each_in_cells(double x, double y, double R, Fn fn) const {
    for (int gy = cell(y - R, gh); gy <= cell(y + R, gh); ++gy)
      for (int gx = cell(x - R, gw); gx <= cell(x + R, gw); ++gx) {
        const std::size_t c = static_cast<std::size_t>(gy) * gw + gx;
        for (std::ptrdiff_t k = start[c]; k < start[c + 1]; ++k)
          fn(members[static_cast<std::size_t>(k)]);
      }
  }
  // The usable models (other than `skip_a`, `skip_b`) that reach within r of (x, y), i.e.
  // lie closer than r + their reach, in star order (deterministic sums downstream).
  void reaching(double x, double y, double r, std::ptrdiff_t skip_a, std::ptrdiff_t skip_b,
                std::vector<std::ptrdiff_t>& out) const {
    out.clear();
    for_each_near(x, y, r, [&](std::ptrdiff_t j) {
      if (j != skip_a && j != skip_b && closer_than(fits[j].x - x, fits[j].y - y, r + reach[j]))
        out.push_back(j);
    });
    std::sort(out.begin(), out.end());
  }
};

// A hint, no effect on results: the frame rows (image, RMS, mask, flat response) of the stamp
// measure_psf_flux(image, rms, mask, x, y, sigma, gain, cfg) cuts, asked into the outer caches
// (the rows lie a frame row apart, so in a 4096-wide float frame they share one L1 set: asked
// for into L1 a star ahead they made no measurable difference, likely evicting each other).
inline void prefetch_stamp_rows(ImageView<const float> image, const FloatPlane& rms,
                                ImageView<const MaskBits> mask, const PixelGain& gain, double x,
                                double y, double sigma, const PhotometryConfig& cfg) {
  if (!std::isfinite(x) || !std::isfinite(y) || !(sigma > 0)) return;
  const int half = std::max(3, static_cast<int>(std::ceil(cfg.stamp_radius_sigma * sigma)));
  const int cx = static_cast<int>(std::lround(x)), cy = static_cast<int>(std::lround(y));
  const int xa = std::max(cx - half, 0), ya = std::max(cy - half, 0);
  const int xb = std::min(cx + half, image.width() - 1);
  const int yb = std::min(cy + half, image.height() - 1);
  if (xa > xb || ya > yb) return;
  for (int py = ya; py <= yb; ++py)
    for (int px : {xa, xb}) {
      __builtin_prefetch(&image(px, py), 0, 1);
      if (!rms.empty()) __builtin_prefetch(rms.address(px, py), 0, 1);
      if (!mask.empty()) __builtin_prefetch(&mask(px, py), 0, 1);
      if (!gain.flat_response.empty()) __builtin_prefetch(gain.flat_response.address(px, py), 0, 1);
    }
}

// partner[i]: the other star of i's close pair, or -1. A pair is two eligible stars closer
// than sep_sigma x the first's sigma, each with no other eligible star that close; only the
// index's (usable) models are candidates. Used by the neighbour passes (pairs fitted jointly
// inside them) and the deblending step's pair refits, with their own eligibility rules.
template <class Eligible>
std::vector<std::ptrdiff_t> close_pairs(const ModelIndex& index, const std::vector<PsfFit>& fits,
                                        const std::vector<double>& sig, double sep_sigma,
                                        Eligible eligible) {
  const std::size_t n = fits.size();
  std::vector<std::ptrdiff_t> close(n, -1), partner(n, -1);
  std::vector<int> n_close(n, 0);
  for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) {
    if (!index.usable[i] || !eligible(i)) continue;
    const double r = sep_sigma * sig[i];
    // Only centres closer than r count, so only the cells within r (+1 px against the
    // rounding of x +- r) need a look, not those within r + the largest model's reach: the
    // same stars pass the test, in the same order. (This ran for every star in each of the
    // ~14 neighbour passes.)
    index.for_each_in_cells(fits[i].x, fits[i].y, r + 1.0, [&](std::ptrdiff_t j) {
      if (j != i && eligible(j) && closer_than(fits[j].x - fits[i].x, fits[j].y - fits[i].y, r)) {
        ++n_close[i];
        close[i] = j;
      }
    });
  }
  for (std::size_t i = 0; i < n; ++i) {
    const std::ptrdiff_t j = close[i];
    if (j >= 0 && n_close[i] == 1 && n_close[j] == 1 && close[j] == static_cast<std::ptrdiff_t>(i))
      partner[i] = j;
  }
  return partner;
}

}  // namespace psfphot::pipeline::detail
