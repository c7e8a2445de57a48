#pragma once
// CSV output of a frame's stars (psfphot frame -o stars.csv): a header row, then one
// row per star with the columns
//   star_id, peak_x, peak_y, centroid_x, centroid_y, centroid_err_x, centroid_err_y,
//   width_x, width_y, psf_flux, psf_flux_err, snr, background, background_rms, flags,
//   ra_deg, dec_deg
// (0-based pixel coordinates, pixel centres at integers; fluxes ADU of the calibrated
// frame; ra_deg, dec_deg: FK5 J2000 ~ ICRS sky position of the centroid from the frame's
// WCS (pipeline/sky.hpp), 8 decimals, NaN without a usable WCS; NaN written as "nan").
// New columns are appended at the end, so readers that index columns keep working. Written to a
// temporary file and renamed: a failed write never leaves a partial CSV under the final name.
// Throws std::runtime_error naming the file.
#include <string>
#include <vector>

#include "psfphot/core/star.hpp"

namespace psfphot::io {

inline constexpr const char* kStarCsvHeader =
    "star_id,peak_x,peak_y,centroid_x,centroid_y,centroid_err_x,centroid_err_y,width_x,width_y,"
    "psf_flux,psf_flux_err,snr,background,background_rms,flags,ra_deg,dec_deg";

void write_stars_csv(const std::string& path, const std::vector<Star>& stars);

}  // namespace psfphot::io
