#pragma once
// Night-level calibration inputs: master dark, normalised master flat and the user mask,
// built or loaded once per night and shared read-only by every frame (and every thread).
#include <optional>
#include <string>
#include <vector>

#include "psfphot/algo/calibrate.hpp"
#include "psfphot/core/image.hpp"
#include "psfphot/core/mask.hpp"
#include "psfphot/pipeline/config.hpp"

namespace psfphot::pipeline {

struct Masters {
  Image<float> dark;  // empty = no dark
  double dark_exptime_s = std::numeric_limits<double>::quiet_NaN();
  std::string dark_source;             // file(s) it came from, for messages
  std::optional<NormalisedFlat> flat;  // from load_masters: without the `invalid` mask
  std::string flat_source;
  Image<MaskBits> user_mask;  // mask FITS as bits (kUserBackground | kUserDetect); empty = none
  std::string mask_source;
};

// Master dark from raw darks: sigma-clipped mean or median per pixel. All darks must
// share shape and EXPTIME (else an error naming the odd file). Throws std::runtime_error
// (FitsError / CalibrationError) with file names.
Image<float> build_master_dark(const std::vector<std::string>& paths, const CombineConfig& cfg,
                               double* exptime_s);

// Master flat from raw flats: each has the master dark (scaled by exposure time when
// `dark` is given) subtracted and is divided by its median, then they are combined.
Image<float> build_master_flat(const std::vector<std::string>& paths, const CombineConfig& cfg,
                               const Image<float>* dark, double dark_exptime_s);

// Assemble the masters: ready master files, or lists of raw frames, or nothing.
// `mask_file`: non-zero pixels become kUserBackground | kUserDetect.
Masters load_masters(const std::string& master_dark, const std::vector<std::string>& darks,
                     const std::string& master_flat, const std::vector<std::string>& flats,
                     const std::string& mask_file, const FrameConfig& cfg,
                     const CombineConfig& combine);

}  // namespace psfphot::pipeline
