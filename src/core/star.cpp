#include "psfphot/core/star.hpp"

#include <limits>

namespace psfphot {

namespace star_flag {
const char* name(std::uint32_t bit) {
  switch (bit) {
    case kEdge: return "edge";
    case kSaturated: return "saturated";
    case kMaskedPixel: return "masked_pixel";
    case kCrowded: return "crowded";
    case kMomentsInvalid: return "moments_invalid";
    case kCentroidNoConverge: return "centroid_no_converge";
    case kFitFailed: return "fit_failed";
    case kNegativeFlux: return "negative_flux";
    case kClippedPixel: return "clipped_pixel";
    case kFoundInResidual: return "found_in_residual";
    default: return "unknown";
  }
}
}  // namespace star_flag

Star make_star(std::int64_t frame_id, std::int32_t star_id, int peak_x, int peak_y) {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  return Star{frame_id, star_id, peak_x, peak_y, 0u,  nan, nan, nan, nan, nan,
              nan,      nan,     nan,    nan,    nan, nan, nan, nan, nan};
}

}  // namespace psfphot
