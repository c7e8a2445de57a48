#pragma once
// FrameResult: what processing one frame produced. Every dispatched frame yields
// exactly one, failed or not (DESIGN.md "failure tiers").
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "psfphot/core/star.hpp"

namespace psfphot {

enum class FrameStatus : std::int32_t {
  kOk = 0,
  kReadFailed = 1,         // file missing, not FITS, truncated, wrong dimensionality
  kCalibrationFailed = 2,  // size mismatch with masters, all pixels unusable
  kBackgroundFailed = 3,   // too few good meshes
  kDetectionFailed = 4,
  kMeasurementFailed = 5,
  kInternalError = 6,  // unexpected exception: a bug, reported with its message
  kSkipped = 7,        // not processed (run stopped before it)
};
const char* to_string(FrameStatus s);  // "ok", "read-failed", ...

struct StepTiming {
  std::string step;
  double ms = 0;
};

struct FrameSummary {
  double mjd_obs = 0;
  double exptime_s = 0;
  std::string filter;
  double psf_sigma_px = 0;  // frame PSF sigma used for photometry
  double sky_adu = 0;       // median background
  double sky_rms_adu = 0;   // median background RMS
  // Overscan bias level subtracted (the strip's median, algo/overscan.hpp), ADU; NaN when
  // the frame had no overscan correction.
  double bias_adu = std::numeric_limits<double>::quiet_NaN();
  // The master dark's own strip level, taken out of it (its bias when it still held one;
  // ~0 for a master made from overscan-corrected darks), ADU; NaN without dark or overscan.
  double dark_bias_adu = std::numeric_limits<double>::quiet_NaN();
  std::int32_t n_peaks = 0;  // raw peaks before rejection
};

struct FrameResult {
  std::int64_t frame_id = -1;
  std::string path;
  FrameStatus status = FrameStatus::kInternalError;
  std::string failed_step;  // empty when ok
  std::string message;      // human-readable reason when not ok
  FrameSummary summary;
  std::vector<StepTiming> timings;
  double total_ms = 0;
  std::int32_t worker_rank = 0;
  std::vector<Star> stars;
  bool ok() const { return status == FrameStatus::kOk; }
};

}  // namespace psfphot
