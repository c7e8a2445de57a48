#include "psfphot/pipeline/sky.hpp"

#include <spdlog/spdlog.h>

#include <cmath>
#include <exception>
#include <limits>
#include <mutex>
#include <set>

namespace psfphot::pipeline {

SkyFill fill_sky_coordinates(const HeaderFacts& header, std::vector<Star>& stars) {
  SkyFill out;
  try {
    io::SkyWcs wcs(header);
    out.status = wcs.status();
    out.reason = wcs.reason();
    out.description = wcs.description();
    if (!wcs.ok()) return out;
    const std::size_t n = stars.size();
    std::vector<double> x(n), y(n), ra(n), dec(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = stars[i].centroid_x, y[i] = stars[i].centroid_y;
    wcs.pixels_to_sky(x, y, ra, dec);
    for (std::size_t i = 0; i < n; ++i) {
      stars[i].ra_deg = ra[i];
      stars[i].dec_deg = dec[i];
      out.n_filled += std::isfinite(ra[i]) && std::isfinite(dec[i]);
    }
  } catch (const std::exception& e) {
    // Sky positions are extras: a failure here leaves them NaN, the photometry stands.
    out.status = io::SkyWcsStatus::kInvalid;
    out.reason = std::string("sky coordinates not computed: ") + e.what();
    out.n_filled = 0;
    for (Star& s : stars) s.ra_deg = s.dec_deg = std::numeric_limits<double>::quiet_NaN();
  }
  return out;
}

void log_sky_fill(const std::string& path, const SkyFill& fill) {
  using io::SkyWcsStatus;
  switch (fill.status) {
    case SkyWcsStatus::kOk:
      spdlog::debug("{}: sky coordinates of {} stars from the WCS ({})", path, fill.n_filled,
                    fill.description);
      break;
    case SkyWcsStatus::kNone:
    case SkyWcsStatus::kNotCelestial:
      spdlog::debug("{}: no sky coordinates: {}", path, fill.reason);
      break;
    case SkyWcsStatus::kInvalid:
    case SkyWcsStatus::kUnsupported: {
      // A night's frames share their headers' WCS keywords, so a WCS psfphot cannot use
      // is usually the same on every frame: one warning per distinct reason (per process,
      // i.e. per MPI rank), the repeats at debug level, so a 500-frame night does not bury
      // its other warnings.
      static std::mutex m;
      static std::set<std::string> seen;
      bool first = false;
      {
        const std::lock_guard<std::mutex> lock(m);
        first = seen.insert(fill.reason).second;
      }
      if (first)
        spdlog::warn(
            "{}: no sky coordinates (ra_deg, dec_deg are NaN): {} (later frames with the same "
            "problem: debug level)",
            path, fill.reason);
      else
        spdlog::debug("{}: no sky coordinates (ra_deg, dec_deg are NaN): {}", path, fill.reason);
      break;
    }
  }
}

}  // namespace psfphot::pipeline
