// The documented configuration keys. Each entry binds one TOML key to one field of the
// algorithm config structs, with its type, unit, range and meaning.
#include "config_keys.hpp"
#include "config_key_builders.hpp"

namespace psfphot::pipeline::detail {
namespace {

using namespace builders;  // dbl, integer, boolean, string, choice, strings, rects, section

constexpr double kInf = 1e300;

std::vector<Key> build() {
  std::vector<Key> r;
  // [calibration]
  r.push_back(boolean(
      "calibration", "scale_dark",
      "scale the dark by t_science / t_dark (EXPTIME), and by t_flat / t_dark for raw flats",
      [](Config& c) -> bool& { return c.frame.calibration.scale_dark_by_exptime; }));
  r.push_back(choice<FlatNorm>(
      "calibration", "flat_norm", "flat normalisation: max (the lab's rule), median or mean",
      {{"max", FlatNorm::kMax}, {"median", FlatNorm::kMedian}, {"mean", FlatNorm::kMean}},
      [](Config& c) -> FlatNorm& { return c.frame.calibration.flat_norm; }));
  r.push_back(dbl(
      "calibration", "saturation_adu", "ADU", 0, kInf,
      "raw level at and above which pixels are saturated; nan = header SATURATE, else none",
      [](Config& c) -> double& { return c.frame.calibration.saturation_adu; }, true));
  r.push_back(choice<OverscanMode>(
      "calibration", "overscan",
      "bias from the overscan strip, subtracted before the dark: level (the strip's median), "
      "line (a median per row of a vertical strip, per column of a horizontal one) or none",
      {{"level", OverscanMode::kLevel},
       {"line", OverscanMode::kLine},
       {"none", OverscanMode::kNone}},
      [](Config& c) -> OverscanMode& { return c.frame.calibration.overscan.mode; }));
  r.push_back(section(
      "calibration", "bias_section",
      "overscan strip: header (the BIASSEC card; no correction without one), none, or an IRAF "
      "section [x1:x2,y1:y2] (1-based, inclusive)",
      [](Config& c) -> std::string& { return c.frame.calibration.overscan.bias_section; }));
  r.push_back(section(
      "calibration", "trim_section",
      "pixels holding sky; those outside are masked (prescan, overscan): header (the TRIMSEC "
      "card; none without one), none, or an IRAF section [x1:x2,y1:y2]",
      [](Config& c) -> std::string& { return c.frame.calibration.overscan.trim_section; }));
  r.push_back(dbl(
      "calibration", "gain_e_per_adu", "e-/ADU", 0, kInf,
      "gain for the star Poisson noise; nan = header GAIN/EGAIN, else sky noise only",
      [](Config& c) -> double& { return c.frame.gain_e_per_adu; }, true));
  // [background]
  r.push_back(integer("background", "mesh_px", "px", 4, 4096, "mesh size (SExtractor BACK_SIZE)",
                      [](Config& c) -> int& { return c.frame.background.mesh_px; }));
  r.push_back(integer("background", "filter_size", "meshes", 1, 15,
                      "median filter over the mesh grid (odd)",
                      [](Config& c) -> int& { return c.frame.background.filter_size; }));
  r.push_back(dbl("background", "clip_kappa", "sigma", 1.0, 10.0,
                  "sigma-clipping threshold per mesh",
                  [](Config& c) -> double& { return c.frame.background.clip_kappa; }));
  r.push_back(integer("background", "clip_max_iter", "", 1, 100, "maximum clipping iterations",
                      [](Config& c) -> int& { return c.frame.background.clip_max_iter; }));
  r.push_back(dbl("background", "min_good_fraction", "", 0.01, 1.0,
                  "usable pixel fraction for a good mesh",
                  [](Config& c) -> double& { return c.frame.background.min_good_fraction; }));
  r.push_back(dbl("background", "max_bad_mesh_fraction", "", 0.0, 1.0,
                  "more bad meshes than this fraction fails the frame",
                  [](Config& c) -> double& { return c.frame.background.max_bad_mesh_fraction; }));
  // [mask]
  r.push_back(rects("mask", "background_rects", "regions excluded from the background estimate",
                    [](Config& c) -> std::vector<Rect>& { return c.frame.mask.background_rects; }));
  r.push_back(rects("mask", "detect_rects",
                    "regions excluded from peak finding (e.g. big galaxies)",
                    [](Config& c) -> std::vector<Rect>& { return c.frame.mask.detect_rects; }));
  r.push_back(string("mask", "file",
                     "mask FITS of the frame's shape; non-zero pixels are masked from both",
                     [](Config& c) -> std::string& { return c.frame.mask.file; }));
  // [detection]
  r.push_back(dbl("detection", "filter_sigma_px", "px", 0.0, 20.0,
                  "matched-filter Gaussian sigma before the peak search; 0 = none (the lab)",
                  [](Config& c) -> double& { return c.frame.detection.filter_sigma_px; }));
  r.push_back(choice<ThresholdMode>(
      "detection", "threshold_mode", "k-sigma on the local RMS map, or an absolute level",
      {{"sigma", ThresholdMode::kSigma}, {"absolute", ThresholdMode::kAbsolute}},
      [](Config& c) -> ThresholdMode& { return c.frame.detection.peaks.mode; }));
  r.push_back(dbl("detection", "k_sigma", "sigma", 0.1, 1000.0,
                  "threshold in local RMS units (of the searched image); configs/deep.toml "
                  "sets 5 (deeper, a few false detections per frame: docs/scorecard.md)",
                  [](Config& c) -> double& { return c.frame.detection.peaks.k_sigma; }));
  r.push_back(dbl("detection", "absolute_adu", "ADU", -kInf, kInf,
                  "threshold above background (absolute mode)",
                  [](Config& c) -> double& { return c.frame.detection.peaks.absolute; }));
  r.push_back(dbl("detection", "merge_radius_px", "px", 0.0, 50.0,
                  "merge peaks closer than this, keeping the highest; 0 = off (the lab)",
                  [](Config& c) -> double& { return c.frame.detection.merge_radius_px; }));
  r.push_back(
      boolean("detection", "lowered_kernel",
              "zero-sum (DAOFIND) matched filter: smooth galaxy light and gradients make no peaks",
              [](Config& c) -> bool& { return c.frame.detection.lowered_kernel; }));
  r.push_back(boolean("detection", "merge_saturated",
                      "keep one peak per connected saturated region",
                      [](Config& c) -> bool& { return c.frame.detection.merge_saturated; }));
  // [hotpix]
  r.push_back(boolean("hotpix", "enabled", "reject peaks failing the neighbour test",
                      [](Config& c) -> bool& { return c.frame.hotpix.enabled; }));
  r.push_back(integer("hotpix", "min_neighbours", "", 0, 8,
                      "neighbours that must exceed fraction x peak",
                      [](Config& c) -> int& { return c.frame.hotpix.min_neighbours; }));
  r.push_back(dbl("hotpix", "fraction", "", 0.0, 1.0,
                  "fraction of the peak value a neighbour must exceed",
                  [](Config& c) -> double& { return c.frame.hotpix.fraction; }));
  r.push_back(dbl("hotpix", "noise_sigma", "sigma", 0.0, 100.0,
                  "for peaks below 20 background RMS, a neighbour counts when above fraction x "
                  "peak minus this many RMS (faint stars' noisy peaks); 0 = the lab's literal "
                  "rule",
                  [](Config& c) -> double& { return c.frame.hotpix.noise_sigma; }));
  r.push_back(dbl("hotpix", "min_width_sigma", "", 0.0, 1.0,
                  "after photometry, drop stars whose minor-axis second moment (weighted by a "
                  "Gaussian of the PSF sigma) is below this^2 x a star's in the same window by "
                  "more than 3 of its errors (cosmic-ray tracks, any angle); 0 = off (the lab)",
                  [](Config& c) -> double& { return c.frame.hotpix.min_width_sigma; }));
  r.push_back(dbl("hotpix", "min_width_snr", "", 0.0, 1e9,
                  "S/N from which the width rule applies (moments of fainter stars are noisy)",
                  [](Config& c) -> double& { return c.frame.hotpix.min_width_snr; }));
  // [centroid]
  r.push_back(choice<CentroidMethod>(
      "centroid", "method",
      "windowed = iterated Gaussian-weighted (SExtractor XWIN); lab = one light-weighted pass",
      {{"windowed", CentroidMethod::kWindowed}, {"lab", CentroidMethod::kLab}},
      [](Config& c) -> CentroidMethod& { return c.frame.centroid.method; }));
  r.push_back(integer("centroid", "window_px", "px", 3, 101, "box size of the lab centroid (odd)",
                      [](Config& c) -> int& { return c.frame.centroid.window_px; }));
  r.push_back(integer("centroid", "max_iter", "", 1, 1000, "windowed centroid iterations",
                      [](Config& c) -> int& { return c.frame.centroid.max_iter; }));
  // [crowding]
  r.push_back(dbl("crowding", "radius_px", "px", 0.0, 1000.0,
                  "centroids closer than this are crowded",
                  [](Config& c) -> double& { return c.frame.crowding.radius_px; }));
  r.push_back(
      choice<CrowdingAction>("crowding", "action", "flag crowded stars, or remove them (the lab)",
                             {{"flag", CrowdingAction::kFlag}, {"remove", CrowdingAction::kRemove}},
                             [](Config& c) -> CrowdingAction& { return c.frame.crowding.action; }));
  // [moments]
  r.push_back(integer("moments", "window_px", "px", 3, 101,
                      "box size for second-moment widths (odd)",
                      [](Config& c) -> int& { return c.frame.moments.window_px; }));
  // [psf]
  r.push_back(
      choice<std::string>("psf", "sigma_method",
                          "frame PSF sigma: fit (free-sigma Gaussian fits), moments (lab), fixed",
                          {{"fit", "fit"}, {"moments", "moments"}, {"fixed", "fixed"}},
                          [](Config& c) -> std::string& { return c.frame.psf.sigma_method; }));
  r.push_back(dbl("psf", "sigma_px", "px", 0.3, 50.0, "fixed PSF sigma, and the starting guess",
                  [](Config& c) -> double& { return c.frame.psf.fixed_sigma_px; }));
  r.push_back(integer("psf", "max_stars", "", 1, 100000,
                      "bright isolated stars used to estimate sigma",
                      [](Config& c) -> int& { return c.frame.psf.max_stars; }));
  r.push_back(dbl("psf", "isolation_px", "px", 0.0, 1000.0,
                  "PSF stars need no neighbour within this",
                  [](Config& c) -> double& { return c.frame.psf.isolation_px; }));
  r.push_back(integer("psf", "max_order", "", 0, 2,
                      "order of the sigma(x, y) polynomial across the field",
                      [](Config& c) -> int& { return c.frame.psf.max_order; }));
  // [photometry]
  r.push_back(choice<PhotometryMethod>(
      "photometry", "method",
      "fit = weighted joint fit of flux and position; lab = amplitude at the centroid",
      {{"fit", PhotometryMethod::kFit}, {"lab", PhotometryMethod::kLab}},
      [](Config& c) -> PhotometryMethod& { return c.frame.photometry.method; }));
  r.push_back(boolean("photometry", "integrate_pixels",
                      "integrate the Gaussian over pixels (false: sample centres, the lab)",
                      [](Config& c) -> bool& { return c.frame.photometry.integrate_pixels; }));
  r.push_back(boolean("photometry", "weighted",
                      "inverse-variance weights (false: uniform, the lab)",
                      [](Config& c) -> bool& { return c.frame.photometry.weighted; }));
  r.push_back(dbl("photometry", "stamp_radius_sigma", "sigma", 1.0, 20.0,
                  "fit stamp half-size in PSF sigmas",
                  [](Config& c) -> double& { return c.frame.photometry.stamp_radius_sigma; }));
  r.push_back(dbl("photometry", "clip_sigma", "sigma", 0.0, 1000.0,
                  "drop fit pixels with |residual| above this many sigma and refit; 0 = off",
                  [](Config& c) -> double& { return c.frame.photometry.clip_sigma; }));
  r.push_back(integer("photometry", "neighbour_passes", "", 0, 10,
                      "at most this many refits of every star with its neighbours' fitted "
                      "models subtracted, until nothing moves (DAOPHOT style); 0 = off (the lab)",
                      [](Config& c) -> int& { return c.frame.photometry.neighbour_passes; }));
  r.push_back(boolean("photometry", "residual_detection",
                      "search the frame minus all fitted stars for stars hidden in brighter "
                      "ones' light (needs neighbour_passes > 0 and a gain)",
                      [](Config& c) -> bool& { return c.frame.photometry.residual_detection; }));
  r.push_back(boolean("photometry", "drop_failed",
                      "drop detections whose PSF fit failed (cosmic rays, hot pixels, noise; "
                      "false: keep them flagged fit_failed, the lab)",
                      [](Config& c) -> bool& { return c.frame.photometry.drop_failed; }));
  r.push_back(dbl("photometry", "extended_sigma_ratio", "", 0.0, 100.0,
                  "drop sources with S/N >= 20 whose free-width Gaussian fit is wider than this x "
                  "the PSF sigma (galaxy cores); 0 = keep them (the lab)",
                  [](Config& c) -> double& { return c.frame.photometry.extended_sigma_ratio; }));
  r.push_back(
      boolean("photometry", "subtract_extended",
              "subtract those extended sources' light (an elliptical profile, docs/pipeline.md "
              "\"galaxy light\") before the "
              "stars on them are refitted and the residual searched (needs "
              "extended_sigma_ratio > 0 and neighbour_passes > 0)",
              [](Config& c) -> bool& { return c.frame.photometry.subtract_extended; }));
  r.push_back(dbl("photometry", "split_min_dchi2", "", 0.0, 1e6,
                  "split a detection into two stars when a joint two-star fit improves chi^2 by "
                  "at least this (blended pairs), and add a faint companion found in a S/N >= 50 "
                  "star's residual on the same terms (algo/deblend.hpp); 0 = off (the lab)",
                  [](Config& c) -> double& { return c.frame.photometry.split_min_dchi2; }));
  // [night]
  r.push_back(string("night", "name", "name of the night (stored in the catalogue)",
                     [](Config& c) -> std::string& { return c.night.name; }));
  r.push_back(strings("night", "science", "science frames: globs, or @file listing paths",
                      [](Config& c) -> std::vector<std::string>& { return c.night.science; }));
  r.push_back(strings("night", "darks", "raw darks combined into a master dark once per night",
                      [](Config& c) -> std::vector<std::string>& { return c.night.darks; }));
  r.push_back(strings("night", "flats", "raw flats combined into a master flat once per night",
                      [](Config& c) -> std::vector<std::string>& { return c.night.flats; }));
  r.push_back(string("night", "master_dark", "a ready master dark FITS (instead of darks)",
                     [](Config& c) -> std::string& { return c.night.master_dark; }));
  r.push_back(string("night", "master_flat", "a ready master flat FITS (instead of flats)",
                     [](Config& c) -> std::string& { return c.night.master_flat; }));
  r.push_back(string("night", "output", "catalogue path (HDF5)",
                     [](Config& c) -> std::string& { return c.night.output; }));
  r.push_back(string("night", "log_dir", "per-rank log folder; empty = <output>.logs",
                     [](Config& c) -> std::string& { return c.night.log_dir; }));
  r.push_back(integer("night", "threads", "", 0, 1024,
                      "OpenMP threads per rank; 0 = OMP_NUM_THREADS/default",
                      [](Config& c) -> int& { return c.night.threads; }));
  r.push_back(choice<CombineMethod>(
      "night", "combine", "master building: clipped-mean or median",
      {{"clipped-mean", CombineMethod::kClippedMean}, {"median", CombineMethod::kMedian}},
      [](Config& c) -> CombineMethod& { return c.night.combine.method; }));
  return r;
}

}  // namespace

std::vector<Key> registry() {
  return build();
}

}  // namespace psfphot::pipeline::detail
