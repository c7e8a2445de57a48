#pragma once
// The per-frame steps, each a small const object calling one algorithm on the shared
// FrameContext (DESIGN.md "Steps"). Order: read, calibrate, mask, background, detect,
// hotpix, centroid, crowding, moments, psf, photometry.
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "psfphot/algo/background.hpp"
#include "psfphot/algo/peaks.hpp"
#include "psfphot/algo/psf_photometry.hpp"
#include "psfphot/algo/psf_sigma.hpp"
#include "psfphot/core/frame.hpp"
#include "psfphot/core/frame_result.hpp"
#include "psfphot/pipeline/config.hpp"
#include "psfphot/pipeline/masters.hpp"

namespace psfphot::pipeline {

struct FrameContext {
  FrameContext(const FrameConfig& c, const Masters& m) : cfg(c), masters(m) {}
  const FrameConfig& cfg;
  const Masters& masters;
  Frame frame;              // pixels become calibrated, then background-subtracted
  Image<float> calibrated;  // kept only when requested
  Background background;
  std::vector<Peak> peaks;  // after detection (and merging)
  int n_raw_peaks = 0;
  std::vector<Star> stars;
  double psf_sigma_px = 0;  // frame median PSF sigma
  PsfSigmaModel psf_model;  // sigma across the field
  double gain = 0;          // e-/ADU used for star noise (0 = none)
  double bias_adu = std::numeric_limits<double>::quiet_NaN();  // overscan level subtracted
  // The master dark's own strip level, subtracted from it (scaled with it; ~0 for a master
  // made from overscan-corrected darks); NaN without a dark or an overscan.
  double dark_bias_adu = std::numeric_limits<double>::quiet_NaN();
  bool keep_products = false;  // keep the calibrated image and the full background maps
  // The gain per pixel of the calibrated frame: `gain` times the flat response the frame
  // was divided by (algo/psf_photometry.hpp, PixelGain).
  PixelGain pixel_gain() const {
    return masters.flat ? PixelGain(gain, masters.flat->response_plane()) : PixelGain(gain);
  }
};

class Step {
 public:
  virtual ~Step() = default;
  virtual const char* name() const = 0;
  // Status recorded when this step throws.
  virtual FrameStatus failure_status() const = 0;
  virtual void run(FrameContext& ctx) const = 0;
};

// The default chain, in order.
std::vector<std::unique_ptr<Step>> default_steps();

}  // namespace psfphot::pipeline
