#pragma once
// Star: the catalogue record, one per measured star per frame.
//
// Plain, fixed-width and trivially copyable: it travels between MPI ranks as raw bytes
// and is written to HDF5 with a compound type built in one place (io/catalogue_schema).
// FIELD ORDER IS FROZEN: append new fields at the end only, and bump kStarSchemaVersion.
//
// Units: pixel coordinates are 0-based with pixel centres at integers (x = column);
// fluxes and background in ADU of the calibrated frame; widths in pixels (Gaussian
// sigma). A value that could not be measured is NaN and a flag bit (StarFlag) says why.
#include <cstdint>
#include <type_traits>

namespace psfphot {

inline constexpr int kStarSchemaVersion = 1;

// Per-star flag bits. Each algorithm documents which of these it sets.
namespace star_flag {
inline constexpr std::uint32_t kEdge = 1u << 0;                // window crosses the frame edge
inline constexpr std::uint32_t kSaturated = 1u << 1;           // saturated pixel in the window
inline constexpr std::uint32_t kMaskedPixel = 1u << 2;         // masked/unusable pixel in window
inline constexpr std::uint32_t kCrowded = 1u << 3;             // neighbour within crowding radius
inline constexpr std::uint32_t kMomentsInvalid = 1u << 4;      // second moments not positive
inline constexpr std::uint32_t kCentroidNoConverge = 1u << 5;  // windowed centroid did not converge
inline constexpr std::uint32_t kFitFailed = 1u << 6;           // PSF flux not measurable
inline constexpr std::uint32_t kNegativeFlux = 1u << 7;        // fitted flux <= 0
inline constexpr std::uint32_t kClippedPixel = 1u << 8;     // outlier pixels dropped from the fit
inline constexpr std::uint32_t kFoundInResidual = 1u << 9;  // found after subtracting neighbours
inline constexpr std::uint32_t kCount = 10;
const char* name(std::uint32_t single_bit);  // "edge", "saturated", ...
}  // namespace star_flag

struct Star {
  std::int64_t frame_id;  // frame the star was measured on
  std::int32_t star_id;   // 0-based id within the frame, ordered by (peak_y, peak_x)
  std::int32_t peak_x;    // peak pixel column
  std::int32_t peak_y;    // peak pixel row
  std::uint32_t flags;    // star_flag bits
  double peak_value;      // background-subtracted value at the peak pixel, ADU
  double centroid_x;      // px
  double centroid_y;      // px
  double centroid_err_x;  // 1-sigma, px (from the fit's covariance)
  double centroid_err_y;  // 1-sigma, px
  double width_x;         // second-moment sigma along x, px
  double width_y;         // second-moment sigma along y, px
  double psf_flux;        // Gaussian PSF flux, ADU (total over the plane)
  double psf_flux_err;    // 1-sigma, ADU
  double snr;             // psf_flux / psf_flux_err
  double background;      // local sky at the centroid, ADU/pixel
  double background_rms;  // local sky RMS, ADU/pixel
  double ra_deg;          // FK5 J2000 sky position from the frame's WCS (io/wcs.hpp), else NaN
  double dec_deg;
};

static_assert(std::is_trivially_copyable_v<Star>);
static_assert(std::is_standard_layout_v<Star>);

// A Star with every measurement NaN and the ids/peak set.
Star make_star(std::int64_t frame_id, std::int32_t star_id, int peak_x, int peak_y);

}  // namespace psfphot
