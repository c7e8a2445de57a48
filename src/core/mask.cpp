#include "psfphot/core/mask.hpp"

namespace psfphot::mask {

const char* name(MaskBits bit) {
  switch (bit) {
    case kNonFinite: return "non_finite";
    case kSaturated: return "saturated";
    case kFlatInvalid: return "flat_invalid";
    case kUserBackground: return "user_background";
    case kUserDetect: return "user_detect";
    case kBadPixel: return "bad_pixel";
    case kOutsideTrim: return "outside_trim";
    default: return "unknown";
  }
}

}  // namespace psfphot::mask
