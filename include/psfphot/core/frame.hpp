#pragma once
// Frame: one exposure as the pipeline sees it: header facts, calibrated float pixels,
// a mask of named bits (core/mask.hpp), and an optional per-pixel variance (ADU^2).
#include <cstdint>
#include <string>

#include "psfphot/core/header.hpp"
#include "psfphot/core/image.hpp"
#include "psfphot/core/mask.hpp"

namespace psfphot {

struct Frame {
  std::int64_t id = -1;  // frame id within the night (0-based, stable order)
  std::string path;      // where it came from (for messages)
  HeaderFacts header;
  Image<float> pixels;    // ADU; calibrated once calibration ran
  Image<MaskBits> mask;   // same shape as pixels
  Image<float> variance;  // optional, ADU^2; empty when not computed
};

}  // namespace psfphot
