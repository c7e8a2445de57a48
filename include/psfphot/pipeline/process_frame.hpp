#pragma once
// process_frame: one raw frame in, one FrameResult out. Runs the steps of
// pipeline/steps.hpp in order, times each, and is the only place that catches: a
// failing step becomes the frame's status (read-failed, calibration-failed, ...) with
// the step name and message; it never throws for bad data.
// Thread-safety: re-entrant; the masters are read-only and may be shared. OpenMP
// parallelism happens inside the steps.
#include <cstdint>
#include <string>

#include "psfphot/core/frame_result.hpp"
#include "psfphot/core/header.hpp"
#include "psfphot/core/image.hpp"
#include "psfphot/core/mask.hpp"
#include "psfphot/pipeline/config.hpp"
#include "psfphot/pipeline/masters.hpp"

namespace psfphot::pipeline {

// Intermediate images a caller may keep (psfphot frame --write-*, quicklook).
struct FrameProducts {
  Image<float> calibrated;  // after dark/flat
  Image<float> background;  // ADU per pixel
  Image<float> rms;         // ADU per pixel
  Image<MaskBits> mask;
  HeaderFacts header;
};

FrameResult process_frame(std::int64_t frame_id, const std::string& path, const FrameConfig& cfg,
                          const Masters& masters, FrameProducts* keep = nullptr);

// The same for masters used by this one frame only (psfphot frame): their dark (and the
// flat's invalid-pixel mask, if the masters have one) is freed as soon as the frame is
// calibrated (the flat's response stays:
// the photometry's photon noise uses it), so the frame's later images (the background
// RMS map, ...) reuse that memory (core/image.hpp, MappedBufferPool) instead of first-touching
// fresh pages. Same result; `masters` keeps its flat response, user mask and sources afterwards.
FrameResult process_frame(std::int64_t frame_id, const std::string& path, const FrameConfig& cfg,
                          Masters&& masters, FrameProducts* keep = nullptr);

}  // namespace psfphot::pipeline
