#pragma once
// Step 1 of the per-frame pipeline: dark subtraction, flat division, pixel masking; and
// the master dark / master flat builders.
//
//   calibrated = (raw - b - s * dark) / (flat / norm(flat)),   s = t_sci / t_dark when
//   `scale_dark_by_exptime`, else 1; norm = max (the teaching lab's rule), median or mean
//   of the flat's valid pixels; b the overscan (bias) level of the pixel's line when an
//   overscan strip is given (algo/overscan.hpp; 0 otherwise: the dark then carries the bias).
// Dark and flat are each optional. Flat pixels <= 0 or non-finite are masked
// (mask::kFlatInvalid) and the calibrated pixel set to NaN, never inf. Raw pixels at or
// above the saturation level are masked mask::kSaturated (value kept); non-finite raw
// pixels are masked mask::kNonFinite.
//
// Method: standard CCD reduction (e.g. Howell, "Handbook of CCD Astronomy", ch. 4).
// Thread-safety: pure functions; OpenMP over rows; deterministic.
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "psfphot/algo/overscan.hpp"
#include "psfphot/core/float_plane.hpp"
#include "psfphot/core/image.hpp"
#include "psfphot/core/mask.hpp"

namespace psfphot {

enum class FlatNorm { kMax, kMedian, kMean };
enum class CombineMethod { kClippedMean, kMedian };

struct CalibrationConfig {
  bool scale_dark_by_exptime = true;    // scale the dark by t_sci / t_dark
  FlatNorm flat_norm = FlatNorm::kMax;  // lab rule; kMedian avoids max-noise bias
  // Saturation level in raw ADU; NaN = take SATURATE from the header, else none.
  double saturation_adu = std::numeric_limits<double>::quiet_NaN();
  // Overscan (bias) correction and trim section of the raw science frame (algo/overscan.hpp);
  // the pipeline applies it to the raw darks and flats it combines too (CombineConfig).
  OverscanConfig overscan;
};

struct CombineConfig {
  CombineMethod method = CombineMethod::kClippedMean;
  double clip_kappa = 3.0;  // sigma-clipping threshold (kClippedMean), in robust sigmas
  int clip_iterations = 3;
  // Raw frames' overscan correction before they are combined (pipeline/masters.hpp: each
  // frame's own strip; a flat's pixels outside its trim section become NaN, i.e. invalid).
  OverscanConfig overscan;
  // Raw flats: the master dark is scaled by t_flat / t_dark before it is subtracted
  // (config key calibration.scale_dark, as for science frames: dark_exptime_scale); false
  // subtracts it as it is.
  bool scale_dark_by_exptime = true;
};

// Thrown for inputs that cannot be calibrated (shape mismatch, all pixels unusable).
class CalibrationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A flat normalised to 1 (flat / norm) and the mask of its invalid pixels.
struct NormalisedFlat {
  Image<float> response;    // flat / norm; NaN where invalid (empty when mapped, below)
  Image<MaskBits> invalid;  // mask::kFlatInvalid where flat <= 0 or non-finite (or empty,
                            // when not asked for: see below)
  double norm = 1.0;        // the value divided by
  std::size_t n_invalid = 0;
  // Or the same response computed as it is read from a FITS file's mapped pixels
  // (core/float_plane.hpp), `source` keeping the mapping alive.
  FloatPlane mapped_response;
  std::shared_ptr<const void> source;
  // The response, whichever way it is held.
  FloatPlane response_plane() const {
    return response.empty() ? mapped_response : FloatPlane(response.cview());
  }
};
NormalisedFlat normalise_flat(ImageView<const float> flat, FlatNorm how);
// The same, normalising the flat in its own buffer (which becomes `response`): bit-identical
// to the overload above, without a second frame-sized image (a first touch that costs more
// than the pass itself where page faults are expensive, docs/performance.md).
// with_invalid_mask = false leaves `invalid` empty: calibrate() finds the invalid pixels from
// the response's NaN and never reads it, so the pipeline's masters skip the frame-sized mask.
NormalisedFlat normalise_flat(Image<float>&& flat, FlatNorm how, bool with_invalid_mask = true);
// The same from a mapped FITS float32 flat (FloatPlane::Kind::kFitsFloat32; `source` owns
// its memory): the norm and count as above, the response left in the file
// (mapped_response: bit for bit the values `response` would hold), no invalid mask.
NormalisedFlat normalise_flat(const FloatPlane& flat, std::shared_ptr<const void> source,
                              FlatNorm how);

struct CalibrationInputs {
  FloatPlane dark;  // empty = no dark (an image view converts; a view, not owned)
  double dark_exptime_s = std::numeric_limits<double>::quiet_NaN();
  const NormalisedFlat* flat = nullptr;  // nullptr = no flat
  // The science frame's bias levels (nullptr = none): subtracted with the dark, after the
  // saturation test, which stays on the raw value.
  const OverscanLevels* overscan = nullptr;
};

struct CalibratedImage {
  Image<float> pixels;
  Image<MaskBits> mask;
  double dark_scale = 1.0;  // factor the dark was multiplied by
  std::size_t n_saturated = 0, n_nonfinite = 0, n_flat_invalid = 0;
};

// The factor the dark is multiplied by. Without cfg.scale_dark_by_exptime: 1, whatever the
// times. With it: sci_exptime_s / dark_exptime_s when both times are finite and > 0 and so
// is their ratio; otherwise NaN, and calibrate() throws: a time missing (NaN), zero or
// negative, an infinite time (inf / inf has no value, and inf / t or t / inf would subtract
// an infinite or no dark), or a ratio that overflows or underflows. Headers read by io/fits
// give finite times or NaN, so the infinite cases come only through the API.
double dark_exptime_scale(double sci_exptime_s, double dark_exptime_s,
                          const CalibrationConfig& cfg);

// Calibrate `raw` (ADU). `sci_exptime_s` is used for dark scaling; `saturation_adu`
// (NaN = none) for the saturation mask. Throws CalibrationError on a shape mismatch
// (message gives both shapes), when dark scaling is asked for without usable exposure
// times (dark_exptime_scale() NaN), or when no pixel is usable.
CalibratedImage calibrate(ImageView<const float> raw, double sci_exptime_s, double saturation_adu,
                          const CalibrationInputs& in, const CalibrationConfig& cfg);

// The same calibration done in place: `pixels` holds the raw frame and becomes the
// calibrated one, bit for bit what calibrate() returns; the result carries the mask and
// counts (its `pixels` stays empty). Saves a frame-sized allocation, whose first touch
// costs more than the arithmetic where page faults are expensive (docs/performance.md).
// Same errors as calibrate(); on an error `pixels` may be partly calibrated.
CalibratedImage calibrate_in_place(ImageView<float> pixels, double sci_exptime_s,
                                   double saturation_adu, const CalibrationInputs& in,
                                   const CalibrationConfig& cfg);

// Master frame from a stack of same-shaped frames: per pixel sigma-clipped mean (about
// the median, MAD-based sigma) or median. `scales` (optional, one per frame) multiplies
// each frame first (e.g. 1/median for flats). Throws CalibrationError on shape mismatch
// or an empty stack.
Image<float> combine_frames(const std::vector<ImageView<const float>>& frames,
                            const CombineConfig& cfg, const std::vector<double>& scales = {});

}  // namespace psfphot
