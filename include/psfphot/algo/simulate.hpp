#pragma once
// Night simulator: raw camera frames with known truth (the engine of `psfphot simulate`).
//
// What is rendered (defaults match the peer frames of ../shared/peers/README.md):
//   raw = bias(column) + [ flat * (sky + galaxies + stars) * gain + dark_rate * t ]_Poisson / gain
//         + read noise + cosmic rays + unstable hot pixels                          (ADU, float)
// where flat is the master-flat response normalised to max 1, so that the calibrated frame
//   calibrated = (raw - master_dark) / (flat / max(flat))
// holds sky + galaxies + stars in "ADU of the calibrated frame": a star of truth flux F adds
// F * flat(x, y) * psf(x, y) to the raw frame. Truth fluxes are totals over the infinite
// plane (the stamp that renders a star leaves out < stamp_edge_adu per pixel and at most
// stamp_max_outside of the flux, unless max_stamp_radius_px cuts it; sim_psf.hpp).
//
// Truth S/N = F / sqrt(4 pi sigma^2 B), sigma the local PSF sigma (Gaussian-equivalent for
// the Moffat), B the per-pixel background variance in calibrated ADU^2 at the star:
//   B = (sky_e * flat + dark_e + read_noise_e^2) / gain^2 / flat^2,
// sky_e the sky in e- before the flat, dark_e the smooth dark (dark current + glow) * t.
// A truth star is saturated when a raw pixel of the 3x3 box around its nearest pixel
// (lround(x), lround(y)) is >= saturation_adu (noise, neighbours and cosmic rays included).
//
// Determinism: every random number comes from a stream keyed by (seed, purpose, frame,
// row) (never a shared generator); stars are rendered into small stamps in parallel, each
// into its own buffer, then added row by row in star order. The result is byte-identical for
// any OpenMP thread count. OpenMP runs over rows and stars inside each call.
//
// Noise: Poisson electrons (exact below 30 e- per pixel, normal with the same mean and
// variance above), Gaussian read noise. Raw frames are returned as float ADU before
// quantisation; quantise_camera() then clips and rounds as a 16-bit camera does.
// Coordinates: 0-based, pixel centres at integers, x = column. No I/O, no logging; pure
// functions of their arguments, thread-safe. Invalid configs throw std::invalid_argument.
#include <cstdint>
#include <string>
#include <vector>

#include "psfphot/algo/sim_psf.hpp"
#include "psfphot/core/image.hpp"

namespace psfphot {

struct SimConfig {
  // Frame and camera.
  int width = 2048;                  // px (NAXIS1)
  int height = 2048;                 // px (NAXIS2)
  std::uint64_t seed = 1;            // everything random follows from it
  double exptime_s = 60.0;           // science, dark and flat exposures alike, s
  double gain_e_per_adu = 1.2;       // e-/ADU
  double read_noise_e = 5.0;         // e- rms per pixel
  double bias_adu = 500.0;           // mean bias level, ADU
  double bias_column_rms_adu = 1.0;  // fixed per-column bias pattern, ADU rms
  double saturation_adu = 65535.0;   // raw values are clipped here (<= 65535), ADU
  // Dark: dark current + amp glow from the corner (width-1, 0) + stable hot pixels.
  double dark_current_e_per_s = 0.05;  // e-/s/px
  double glow_e_per_s = 3.0;           // amp glow at the corner pixel, e-/s
  double glow_scale_px = 150.0;        // e-folding distance of the glow from the corner, px
  double hot_pixel_fraction = 1e-4;    // stable hot pixels, fraction of all pixels
  double hot_rate_min_e_per_s = 2.0;   // hot-pixel dark rate, log-uniform between these
  double hot_rate_max_e_per_s = 200.0;
  double unstable_hot_fraction = 3e-5;   // flickering pixels (absent from darks), fraction
  double unstable_on_probability = 0.5;  // chance one is lit in a given science exposure
  // Flat: vignetting * (1 + PRNU) * dust, normalised to max 1.
  double vignetting_corner = 0.55;  // response in the corners relative to the maximum
  double prnu = 0.01;               // pixel response non-uniformity, rms fraction
  int n_dust = 3;                   // out-of-focus dust donuts
  double dust_radius_min_px = 10.0, dust_radius_max_px = 30.0;  // outer radius range, px
  double dust_depth_min = 0.03, dust_depth_max = 0.08;          // fractional dimming range
  double flat_level_adu = 30000.0;  // raw flat signal above bias where the response is 1, ADU
  // Sky (calibrated, i.e. before the flat): level * (1 + gradient/2 * p), p in [-1, 1]
  // along a direction drawn per frame, so gradient is the peak-to-peak fraction.
  double sky_e = 200.0;               // median sky level, e-/px per exposure
  double sky_level_rms = 0.1;         // frame-to-frame scatter of the level (log-normal)
  double sky_gradient = 0.30;         // peak-to-peak across the frame, fraction of the level
  double sky_gradient_jitter = 0.05;  // per-frame uniform jitter of sky_gradient, +-
  // Stars.
  int n_stars = 2000;  // stars per frame on average (the field is slightly larger)
  PsfModel psf = PsfModel::kGaussian;
  double psf_sigma_px = 2.0;             // median seeing, Gaussian(-equivalent) sigma, px
  double moffat_beta = 3.0;              // Moffat power index when psf == kMoffat
  double seeing_rms = 0.08;              // frame-to-frame scatter of sigma (log-normal)
  double seeing_field_variation = 0.06;  // sigma in the corners / at the centre - 1
  double seeing_tilt_max = 0.03;      // per-frame linear trend of sigma, +- fraction per half-frame
  double snr_min = 3.0;               // faintest star: S/N at the field centre, median frame
  double flux_slope = 0.7;            // N(>F) ~ F^-flux_slope
  double saturated_fraction = 0.004;  // share drawn above the nominal saturation flux
  double bright_range = 20.0;         // brightest star / nominal saturation flux
  double dither_px = 8.0;             // pointing offsets uniform in +-dither_px per axis
  double stamp_edge_adu = 0.02;       // stamps reach where a star falls below this, ADU/px,
  double stamp_max_outside = 1e-3;    // and hold all but this fraction of its flux,
  int max_stamp_radius_px = 64;       // within this hard cap on the stamp radius, px
  // Artefacts.
  double cosmic_rays_per_mpix = 3.0;  // per exposure (science, darks and flats)
  int n_galaxies = 2;                 // Sersic-like galaxies in the field
  double galaxy_flux_min_adu = 2e5, galaxy_flux_max_adu = 1e6;  // total flux range, ADU
  double galaxy_re_min_px = 8.0, galaxy_re_max_px = 25.0;       // effective radius range
};

// Throws std::invalid_argument listing every problem.
void validate(const SimConfig& cfg);

// Fixed properties of the camera for one seed.
struct HotPixel {
  int x = 0, y = 0;
  double rate_e_per_s = 0.0;
};
struct SimInstrument {
  Image<float> flat;               // master-flat response, max exactly 1
  Image<float> dark_rate_e_per_s;  // dark current + glow + stable hot pixels, e-/s/px
  std::vector<float> bias_adu;     // bias level per column, ADU
  std::vector<HotPixel> unstable;  // flickering hot pixels (not in darks)
};
SimInstrument make_instrument(const SimConfig& cfg);

// Noiseless master dark: bias(column) + dark_rate * exptime / gain, ADU.
Image<float> render_master_dark(const SimConfig& cfg, const SimInstrument& inst);

// The sky: stars (positions in field coordinates: frame = field + dither) and galaxies.
struct FieldStar {
  double x = 0, y = 0;  // px, field coordinates
  double flux_adu = 0;  // calibrated ADU, total
};
struct Galaxy {
  double x = 0, y = 0;    // px, field coordinates
  double flux_adu = 0;    // calibrated ADU, total
  double r_e_px = 0;      // effective (half-light) radius along the major axis
  double sersic_n = 1;    // Sersic index
  double axis_ratio = 1;  // minor / major
  double angle_rad = 0;   // major axis from +x towards +y
};
struct SimField {
  std::vector<FieldStar> stars;  // star_id = index
  std::vector<Galaxy> galaxies;
  double flux_min_adu = 0;  // faintest star (S/N = snr_min at the centre)
  double flux_sat_adu = 0;  // nominal saturation flux (centred star, median seeing, centre)
};
SimField make_field(const SimConfig& cfg);

// One exposure's conditions (random per frame, keyed by the frame index).
struct FrameConditions {
  int frame = 0;
  double dx_px = 0, dy_px = 0;  // pointing offset: frame position = field position + (dx, dy)
  double sigma_px = 2;          // PSF sigma at the frame centre
  double sigma_tilt = 0;        // fractional sigma change per half-frame along tilt_angle
  double tilt_angle_rad = 0;
  double sky_e = 200;         // sky at the frame centre, e-/px (before the flat)
  double sky_gradient = 0.3;  // peak-to-peak fraction
  double sky_angle_rad = 0;   // direction of increasing sky
};
FrameConditions frame_conditions(const SimConfig& cfg, int frame);
// Sky (e-/px, before the flat) and PSF sigma (px) at frame position (x, y).
double sky_e_at(const SimConfig& cfg, const FrameConditions& c, double x, double y);
double sigma_px_at(const SimConfig& cfg, const FrameConditions& c, double x, double y);

struct TruthStar {
  int star_id = 0;          // index in SimField::stars, the same in every frame
  double x = 0, y = 0;      // frame position, px
  double flux_adu = 0;      // calibrated ADU, total over the plane
  double snr = 0;           // F / sqrt(4 pi sigma^2 B)
  bool saturated = false;   // raw 3x3 core reaches saturation_adu
  double psf_sigma_px = 0;  // local PSF sigma (Gaussian-equivalent for the Moffat)
  double sky_var_adu2 = 0;  // B, calibrated ADU^2 per pixel
  // Flat response (normalised to max 1) at the star's nearest pixel, the f in B above: in
  // the calibrated frame the star's photon variance is its value / (gain * f).
  double flat_response = 1;
};
struct CosmicRay {
  double x = 0, y = 0;  // start of the track, px
  double length_px = 0;
  double angle_rad = 0;
  double energy_e = 0;  // total deposit, e-
};
struct SimFrame {
  FrameConditions conditions;
  Image<float> raw_adu;                // float ADU, not quantised
  std::vector<TruthStar> truth;        // stars whose centre lies on the frame, by star_id
  std::vector<CosmicRay> cosmic_rays;  // truth of the artefacts too
  std::vector<HotPixel> lit_unstable;  // unstable hot pixels lit in this exposure
  double sky_median_adu = 0;           // sky at the frame centre, calibrated ADU
};
SimFrame render_science_frame(const SimConfig& cfg, const SimInstrument& inst,
                              const SimField& field, int frame);

// Raw calibration exposures (exptime_s each, cosmic rays included), float ADU.
Image<float> render_raw_dark(const SimConfig& cfg, const SimInstrument& inst, int index);
Image<float> render_raw_flat(const SimConfig& cfg, const SimInstrument& inst, int index);

// As a 16-bit camera stores a frame: values clipped to [0, min(saturation_adu, 65535)]
// and rounded to integers (half away from zero), in place.
void quantise_camera(ImageView<float> raw, double saturation_adu);

}  // namespace psfphot
