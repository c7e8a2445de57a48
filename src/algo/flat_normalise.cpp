// The master flat's normalisation (calibrate.hpp: normalise_flat): the norm (max, median or
// mean of the finite positive pixels), the response flat / norm with its invalid pixels, for
// in-memory and mapped flats. Split from calibrate.cpp (the frame's calibration).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <vector>

#include "psfphot/algo/calibrate.hpp"
#include "psfphot/algo/stats.hpp"
#include "psfphot/core/simd.hpp"

namespace psfphot {
namespace {

// One row of the normalised flat: r * inv where r is finite and > 0, else NaN and, if m is
// given, mask::kFlatInvalid in m (0 elsewhere); returns the number of invalid pixels. & and
// selects instead of a branch per pixel, so that it vectorises; the NaN goes through the
// multiplication (NaN x inv is that same quiet NaN): a product computed only where the
// select keeps it was moved under a branch, which GCC does not vectorise. o may be r.
PSFPHOT_VECTOR_CLONES std::size_t response_row(const float* r, float inv, float* o, MaskBits* m,
                                               int w) {
  constexpr float kMax = std::numeric_limits<float>::max();
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  unsigned bad = 0;
  if (m) {
    for (int x = 0; x < w; ++x) {
      const float v = r[x];
      const bool ok = (v > 0) & (v <= kMax);
      o[x] = (ok ? v : kNaN) * inv;
      m[x] = static_cast<MaskBits>(mask::kFlatInvalid * static_cast<unsigned>(!ok));
      bad += !ok;
    }
  } else {
    for (int x = 0; x < w; ++x) {
      const float v = r[x];
      const bool ok = (v > 0) & (v <= kMax);
      o[x] = (ok ? v : kNaN) * inv;
      bad += !ok;
    }
  }
  return bad;
}

struct RowMax {
  float max;
  std::size_t n_good;
};

// GCC vector types for the pixel loops below that GCC would not vectorise by itself.
typedef float V8f __attribute__((vector_size(32)));
typedef std::int32_t V8i __attribute__((vector_size(32)));

// Maximum and count of the good (finite, > 0) pixels of a row, 8 at a time (GCC compiled the
// scalar lane loop of the single-threaded version scalar once it sat in an OpenMP loop).
PSFPHOT_VECTOR_CLONES RowMax row_max(const float* r, int w) {
  constexpr float kMax = std::numeric_limits<float>::max();
  const V8f vmax = V8f{} + kMax, vzero = V8f{};
  V8f lane_max = V8f{} - std::numeric_limits<float>::infinity();
  V8i lane_n = {};
  int x = 0;
  for (; x + 8 <= w; x += 8) {
    V8f v;
    std::memcpy(&v, r + x, sizeof v);
    const V8i ok = (v > vzero) & (v <= vmax);  // finite and > 0 (NaN compares false)
    lane_max = (ok & (v > lane_max)) ? v : lane_max;
    lane_n -= ok;  // comparisons give -1 for true
  }
  RowMax m{-std::numeric_limits<float>::infinity(), 0};
  for (int l = 0; l < 8; ++l) {
    m.max = std::max(m.max, lane_max[l]);
    m.n_good += static_cast<std::size_t>(lane_n[l]);
  }
  for (; x < w; ++x) {
    const float v = r[x];
    if (v > 0 && v <= kMax) {
      m.max = std::max(m.max, v);
      ++m.n_good;
    }
  }
  return m;
}

// Fills out.response (already sized, may share flat's buffer: each pixel is read before
// it is written; empty: the response is not written, only counted), out.invalid, out.norm,
// out.n_invalid. A mapped flat is scanned in its words for the max norm; otherwise its rows
// are converted into a row buffer as they are read.
void normalise_into(const FloatPlane& flat, FlatNorm how, NormalisedFlat& out,
                    bool with_invalid_mask) {
  if (with_invalid_mask) out.invalid = Image<MaskBits>(flat.width(), flat.height(), 0);
  MaskBits* const inv_px = with_invalid_mask ? out.invalid.data() : nullptr;
  // The good pixels are copied only for the median: for max and mean the copy (a
  // frame-sized buffer, page faults included) cost more than the rest of the pass.
  std::vector<float> good;
  if (how == FlatNorm::kMedian) good.reserve(flat.size());
  double sum = 0, mx = -std::numeric_limits<double>::infinity();
  std::size_t n_good = 0;
  if (how == FlatNorm::kMax) {
    // The maximum and the count need no ordered double sum (the mean's serial chain of
    // additions was most of this pass): kLanes independent float maxima and counts that
    // the compiler vectorises. Rows are split over the threads (a serial pass over the flat
    // was a visible part of a two-thread frame). A maximum is exact in any order, so the norm
    // is the same.
    float frame_max = -std::numeric_limits<float>::infinity();
#pragma omp parallel reduction(max : frame_max) reduction(+ : n_good)
    {
      std::vector<float> scratch(static_cast<std::size_t>(flat.width()));
#pragma omp for schedule(dynamic, 64)
      for (int y = 0; y < flat.height(); ++y) {
        // A mapped FITS flat is scanned in its own words (no converted row), with the same
        // maximum and count.
        if (flat.kind() == FloatPlane::Kind::kFitsFloat32) {
          const PositiveMax m =
              fits_float32_positive_max(flat.fits_row(y), static_cast<std::size_t>(flat.width()));
          frame_max = std::max(frame_max, m.max);
          n_good += m.count;
          continue;
        }
        const RowMax m = row_max(flat.row(y, scratch.data()), flat.width());
        frame_max = std::max(frame_max, m.max);
        n_good += m.n_good;
      }
    }
    mx = frame_max;
  } else {
    std::vector<float> scratch(static_cast<std::size_t>(flat.width()));
    for (int y = 0; y < flat.height(); ++y) {
      const float* r = flat.row(y, scratch.data());
      for (int x = 0; x < flat.width(); ++x) {
        if (std::isfinite(r[x]) && r[x] > 0) {
          if (how == FlatNorm::kMedian) good.push_back(r[x]);
          sum += r[x];
          ++n_good;
        }
      }
    }
  }
  if (n_good == 0) throw CalibrationError("flat has no positive finite pixel");
  switch (how) {
    case FlatNorm::kMax: out.norm = mx; break;
    case FlatNorm::kMean: out.norm = sum / static_cast<double>(n_good); break;
    case FlatNorm::kMedian: out.norm = median_inplace(good); break;
  }
  const float inv = static_cast<float>(1.0 / out.norm);
  if (out.response.empty() && !with_invalid_mask) {
    // Nothing to write (a mapped flat's response is computed as it is read): the invalid
    // pixels are the ones not counted good, without another pass over the flat.
    out.n_invalid = flat.size() - n_good;
    return;
  }
  std::size_t n_invalid = 0;
  const std::size_t w = static_cast<std::size_t>(flat.width());
// Dynamic chunks of rows (here and in calibrate): the cores are shared with other processes,
// and a static split waits for the slowest thread; the integer counts do not depend on it.
#pragma omp parallel reduction(+ : n_invalid)
  {
    std::vector<float> scratch, dropped;
    if (flat.kind() != FloatPlane::Kind::kImage) scratch.resize(w);
    if (out.response.empty()) dropped.resize(w);  // the invalid mask alone is asked for
#pragma omp for schedule(dynamic, 64)
    for (int y = 0; y < flat.height(); ++y) {
      // integer reduction: order-independent, deterministic
      float* o = out.response.empty() ? dropped.data() : out.response.data() + y * w;
      n_invalid += response_row(flat.row(y, scratch.data()), inv, o,
                                inv_px ? inv_px + y * w : nullptr, flat.width());
    }
  }
  out.n_invalid = n_invalid;
}

}  // namespace

NormalisedFlat normalise_flat(ImageView<const float> flat, FlatNorm how) {
  NormalisedFlat out;
  out.response = Image<float>(flat.width(), flat.height());
  normalise_into(flat, how, out, true);
  return out;
}

NormalisedFlat normalise_flat(Image<float>&& flat, FlatNorm how, bool with_invalid_mask) {
  NormalisedFlat out;
  out.response = std::move(flat);
  normalise_into(out.response.cview(), how, out, with_invalid_mask);
  return out;
}

NormalisedFlat normalise_flat(const FloatPlane& flat, std::shared_ptr<const void> source,
                              FlatNorm how) {
  if (flat.kind() != FloatPlane::Kind::kFitsFloat32)
    throw std::invalid_argument("normalise_flat: a mapped flat must be FITS float32 pixels");
  NormalisedFlat out;
  normalise_into(flat, how, out, false);
  // The factor response_row multiplied by, so the values read later are those it wrote.
  out.mapped_response = flat.as_flat_response(static_cast<float>(1.0 / out.norm));
  out.source = std::move(source);
  return out;
}

}  // namespace psfphot
