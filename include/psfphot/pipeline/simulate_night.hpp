#pragma once
// Write a whole simulated night into a folder (the work of `psfphot simulate`; docs/simulate.md).
//
//   DIR/science/sci_NNNN.fits   raw science frames, 0-based NNNN = frame index
//   DIR/darks/dark_NN.fits      raw darks (same exposure time as the science frames)
//   DIR/flats/flat_NN.fits      raw flats (same exposure time; the master dark calibrates them)
//   DIR/truth/sci_NNNN.csv      truth per science frame ("# key=value" lines, then a table)
//   DIR/truth/frames.csv        one row per science frame (conditions, dither, counts)
//   DIR/truth/galaxies.csv      galaxies per frame (not in the star truth)
//   DIR/truth/artefacts.csv     cosmic rays and lit unstable hot pixels per science frame
//   DIR/night.toml              a ready [night] config for the night runner
// FITS frames are stored as a camera writes them: BITPIX 16 with BZERO 32768 (uint16),
// values clipped to [0, saturation] and rounded; headers EXPTIME, GAIN, RDNOISE, SATURATE,
// DATE-OBS, MJD-OBS, FILTER, IMAGETYP, OBJECT, ... Frames are spread evenly over the night;
// flats are taken before it, darks after it.
//
// The pixels and truth depend only on options.sim (seed included), not on the thread count.
// Throws std::runtime_error (or io::FitsError) naming the path and the problem; refuses a
// non-empty folder unless `overwrite`, in which case only the simulator's own files
// (the patterns above) are replaced or removed.
#include <functional>
#include <string>
#include <vector>

#include "psfphot/algo/simulate.hpp"

namespace psfphot::pipeline {

struct NightSimOptions {
  std::string out_dir;  // created if absent
  SimConfig sim;        // frame size, seed, PSF, stars, camera, ...
  int n_frames = 32;    // science frames
  int n_darks = 5;
  int n_flats = 5;
  bool overwrite = false;                               // allow a non-empty out_dir
  std::string night_start_utc = "2026-11-23T19:00:00";  // DATE-OBS of the first science frame
  double night_length_h = 10.0;  // science frames are spread evenly over this, hours
  std::string filter = "V";      // FILTER card
  std::string object = "SIMFIELD";
  // > 0: every raw frame (science, dark, flat) gets this many overscan columns at its right
  // edge, holding the bias and read noise only (BIASSEC / TRIMSEC cards name them), and each
  // exposure's bias is offset by its own amount, uniform in +-overscan_bias_jitter_adu (a
  // bias that wanders between exposures, which only the overscan measures). Star coordinates
  // and the truth are those of the frame as before (the columns are added on the right).
  int overscan_px = 0;
  double overscan_bias_jitter_adu = 20.0;
  // Science frames carry a WCS (RA---TAN / DEC--TAN, north up, east left): the field's
  // centre at (field_ra_deg, field_dec_deg), pixel_scale_arcsec per pixel; each frame's
  // CRPIX follows its pointing dither, so a star keeps its sky position from frame to frame.
  // pixel_scale_arcsec <= 0: no WCS cards.
  double field_ra_deg = 150.1;
  double field_dec_deg = 2.2;
  double pixel_scale_arcsec = 0.6;
};

struct NightSimResult {
  int n_science = 0, n_darks = 0, n_flats = 0;
  long n_truth_rows = 0;              // truth stars over all frames
  long n_saturated = 0;               // of which saturated
  long n_cosmic_rays = 0;             // over the science frames
  double render_seconds = 0;          // simulation (wall)
  double write_seconds = 0;           // FITS and CSV writing (wall)
  std::vector<std::string> warnings;  // e.g. a stale catalogue left in the folder
};

// Progress: called with a short line after each file group ("science 12/32", ...).
NightSimResult simulate_night(const NightSimOptions& options,
                              const std::function<void(const std::string&)>& progress = {});

// UTC "YYYY-MM-DDThh:mm:ss[.sss]" <-> seconds since 1970-01-01 (proleptic Gregorian).
// Throws std::invalid_argument on a malformed string.
double utc_to_unix_seconds(const std::string& iso);
std::string unix_seconds_to_utc(double seconds);  // millisecond precision
double unix_seconds_to_mjd(double seconds);

}  // namespace psfphot::pipeline
