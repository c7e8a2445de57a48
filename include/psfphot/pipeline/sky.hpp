#pragma once
// Sky coordinates of a frame's stars: Star::ra_deg / dec_deg from the frame's WCS
// (io/wcs.hpp: wcslib; always FK5 J2000 = ICRS within ~20 mas right ascension and
// declination, a Galactic or ecliptic WCS converted). Run by process_frame after the steps.
//
// Every star with a finite centroid gets the sky position of its centroid; the others, and
// every star of a frame without a usable WCS, keep NaN. A missing, non-celestial or broken
// WCS never fails the frame: the result says why, and log_sky_fill() logs it (debug when
// the frame simply has no celestial WCS, a warning once per reason when it has one psfphot
// cannot use).
//
// Thread-safety: re-entrant; each call builds its own wcslib transform and converts all the
// frame's stars on the calling thread.
#include <cstddef>
#include <string>
#include <vector>

#include "psfphot/core/header.hpp"
#include "psfphot/core/star.hpp"
#include "psfphot/io/wcs.hpp"

namespace psfphot::pipeline {

struct SkyFill {
  io::SkyWcsStatus status = io::SkyWcsStatus::kNone;
  std::string reason;        // empty when ok
  std::string description;   // the WCS found, e.g. "GLON-CAR,GLAT-CAR, galactic -> FK5 J2000"
  std::size_t n_filled = 0;  // stars given a finite (ra_deg, dec_deg)
};

SkyFill fill_sky_coordinates(const HeaderFacts& header, std::vector<Star>& stars);

// One log line for the frame `path` (spdlog's default logger): debug when the WCS was used
// or there is none; a warning for a WCS psfphot cannot use, the first time its reason is
// seen in this process, debug for repeats. Thread-safe.
void log_sky_fill(const std::string& path, const SkyFill& fill);

}  // namespace psfphot::pipeline
