#pragma once
// Pixel mask bits. A frame carries one Image<MaskBits> beside its pixels; a pixel with
// any bit set is excluded from background estimation. Detection excludes pixels with
// kDetectExclude or kBad-class bits (see kNoDetectBits).
#include <cstdint>

namespace psfphot {

using MaskBits = std::uint8_t;

namespace mask {
inline constexpr MaskBits kNonFinite = 1u << 0;       // NaN/inf in the raw or calibrated pixel
inline constexpr MaskBits kSaturated = 1u << 1;       // raw value >= saturation level
inline constexpr MaskBits kFlatInvalid = 1u << 2;     // flat <= 0 or non-finite there
inline constexpr MaskBits kUserBackground = 1u << 3;  // user mask: excluded from the background
inline constexpr MaskBits kUserDetect = 1u << 4;      // user mask: excluded from peak finding
inline constexpr MaskBits kBadPixel = 1u << 5;        // bad pixel from a supplied bad-pixel map
inline constexpr MaskBits kOutsideTrim = 1u << 6;  // outside the trim section (overscan, prescan)

// Pixels whose values cannot be trusted at all.
inline constexpr MaskBits kUnusable = kNonFinite | kFlatInvalid | kBadPixel | kOutsideTrim;
// Bits that exclude a pixel from background estimation.
inline constexpr MaskBits kNoBackground = kUnusable | kSaturated | kUserBackground;
// Bits that exclude a pixel from being a detected peak.
inline constexpr MaskBits kNoDetect = kUnusable | kUserDetect;

const char* name(MaskBits single_bit);
}  // namespace mask

}  // namespace psfphot
