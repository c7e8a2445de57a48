#include "psfphot/core/frame_result.hpp"

namespace psfphot {

const char* to_string(FrameStatus s) {
  switch (s) {
    case FrameStatus::kOk: return "ok";
    case FrameStatus::kReadFailed: return "read-failed";
    case FrameStatus::kCalibrationFailed: return "calibration-failed";
    case FrameStatus::kBackgroundFailed: return "background-failed";
    case FrameStatus::kDetectionFailed: return "detection-failed";
    case FrameStatus::kMeasurementFailed: return "measurement-failed";
    case FrameStatus::kInternalError: return "internal-error";
    case FrameStatus::kSkipped: return "skipped";
  }
  return "unknown";
}

}  // namespace psfphot
