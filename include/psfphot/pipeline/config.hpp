#pragma once
// Configuration: one struct per algorithm (defaults + units live there), gathered in
// FrameConfig (the per-frame pipeline) and NightConfig (a whole night). Parsed from TOML
// (toml++) in one place (config.cpp) through a registry of documented keys:
//   * unknown sections/keys, wrong types and out-of-range values are errors naming the
//     key and the file; all problems are reported together (ConfigError::problems);
//   * `--set section.key=value` overrides are applied after the file, same checks;
//   * effective_config_toml() prints every key with its value (stored in catalogues),
//     and config_reference_markdown() the documentation table (docs/configuration.md).
// Pixel rectangles are 0-based inclusive [x0, y0, x1, y1].
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "psfphot/algo/background.hpp"
#include "psfphot/algo/calibrate.hpp"
#include "psfphot/algo/centroid.hpp"
#include "psfphot/algo/crowding.hpp"
#include "psfphot/algo/hotpix.hpp"
#include "psfphot/algo/moments.hpp"
#include "psfphot/algo/peaks.hpp"
#include "psfphot/algo/psf_photometry.hpp"

namespace psfphot::pipeline {

struct Rect {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // inclusive, 0-based
};

struct MaskConfig {
  std::vector<Rect> background_rects;  // excluded from the background estimate
  std::vector<Rect> detect_rects;      // excluded from peak finding
  std::string file;                    // mask FITS (non-zero = masked from both), "" = none
};

struct DetectionConfig {
  double filter_sigma_px = 1.5;  // matched-filter Gaussian sigma, px (0 = unsmoothed, lab)
  // Threshold on the (smoothed) image: 8.5 local-RMS sigmas by default, where the twelve
  // simulated 4096^2 scorecard frames have 0-2 false detections (the per-frame pipeline
  // issue's target) at S/N 11.0-12.7 at 50% completeness; 5 (configs/deep.toml) reaches S/N
  // 6.3-7.1 with 2-17 false ones, faint blends and faint stars measured > 1.5 px off
  // (docs/scorecard.md).
  PeakConfig peaks{.k_sigma = 8.5};
  double merge_radius_px = 3.0;  // merge peaks closer than this, px (0 = off, lab)
  bool lowered_kernel = true;    // DAOFIND zero-sum kernel: ignore smooth pedestals
  bool merge_saturated = true;   // one peak per saturated region
};

struct PsfConfig {
  // Frame PSF sigma: "fit" = median of Gaussian fits with free sigma on bright isolated
  // stars; "moments" = median second-moment width (the lab; truncation-biased);
  // "fixed" = fixed_sigma_px.
  std::string sigma_method = "fit";
  double fixed_sigma_px = 2.0;  // px, used for "fixed" and as the starting guess
  int max_stars = 200;          // bright isolated stars used for the estimate
  double isolation_px = 12.0;   // candidates need no detected neighbour closer than this
  int max_order = 2;            // polynomial order of sigma(x, y): 0 constant, 1 plane, 2 quadratic
};

struct FrameConfig {
  CalibrationConfig calibration;
  BackgroundConfig background;
  MaskConfig mask;
  DetectionConfig detection;
  HotPixelConfig hotpix;
  CentroidConfig centroid;
  CrowdingConfig crowding;
  MomentsConfig moments;
  PsfConfig psf;
  PhotometryConfig photometry;
  // e-/ADU for the star Poisson term; NaN = header GAIN/EGAIN, else none.
  double gain_e_per_adu = std::numeric_limits<double>::quiet_NaN();
};

struct NightConfig {
  std::string name = "night";
  std::vector<std::string> science;  // globs or @listfile entries, relative to the config
  std::vector<std::string> darks;    // raw darks -> master dark (once per night)
  std::vector<std::string> flats;    // raw flats -> master flat
  std::string master_dark;           // a ready master instead of `darks`
  std::string master_flat;
  std::string output = "catalogue.h5";
  std::string log_dir = "";  // per-rank logs; "" = <output>.logs
  int threads = 0;           // OpenMP threads per rank; 0 = OMP default
  CombineConfig combine;     // master building
  std::string base_dir;      // folder of the config file (paths relative to it)
};

struct Config {
  FrameConfig frame;
  NightConfig night;
  std::string source = "(defaults)";  // file name, for messages
};

class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<std::string> problems);
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

// Load `path` (empty = defaults) and apply `overrides` ("section.key=value").
// `allow_night` = false refuses a [night] section (psfphot frame). Throws ConfigError.
Config load_config(const std::string& path, const std::vector<std::string>& overrides,
                   bool allow_night = true);

// Every key with its effective value, as TOML; with `comments`, each key is preceded by
// its meaning and unit (configs/default.toml is this for the defaults).
std::string effective_config_toml(const Config& cfg, bool comments = false);
// Markdown reference of every key: section, key, type, default, unit, meaning.
std::string config_reference_markdown();

}  // namespace psfphot::pipeline
