#pragma once
// Header facts: the handful of FITS header values the pipeline needs, parsed once at
// the I/O edge, plus every card kept verbatim so outputs can carry the header over.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace psfphot {

struct HeaderCard {
  std::string key;      // e.g. "EXPTIME"
  std::string value;    // raw value text as in the card ('...' for strings kept quoted)
  std::string comment;  // comment text, may be empty
};

struct HeaderFacts {
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  double exptime_s = kNaN;        // EXPTIME (or EXPOSURE)
  double gain_e_per_adu = kNaN;   // GAIN, else EGAIN
  double read_noise_e = kNaN;     // RDNOISE (or READNOIS, RON)
  double saturation_adu = kNaN;   // SATURATE (or SATLEVEL)
  double mjd_obs = kNaN;          // MJD-OBS, else derived from DATE-OBS (UTC assumed)
  std::string date_obs;           // DATE-OBS as written
  std::string filter;             // FILTER (or FILTERS)
  std::vector<HeaderCard> wcs;    // WCS cards (CTYPEn, CRVALn, CRPIXn, CDi_j, ...)
  std::vector<HeaderCard> cards;  // every non-structural card, in file order

  bool has_exptime() const { return std::isfinite(exptime_s); }
  bool has_gain() const { return std::isfinite(gain_e_per_adu) && gain_e_per_adu > 0; }
  bool has_saturation() const { return std::isfinite(saturation_adu); }
  // Text value of a card, or empty when absent (quotes stripped).
  std::string card(const std::string& key) const;
};

}  // namespace psfphot
