#pragma once
// Sky coordinates from a frame's FITS WCS, with wcslib
// (https://www.atnf.csiro.au/people/mcalabre/WCS/; Calabretta & Greisen 2002, A&A 395, 1077 = "WCS
// Paper II").
//
// SkyWcs is built from the WCS cards io kept in HeaderFacts::wcs (plus EPOCH, which wcslib
// reads as EQUINOX), rendered back to 80-character header records and parsed by wcspih()
// with every non-standard extension astropy also accepts (WCSHDR_all); wcsset() then checks
// it. Only the primary description (CTYPEn, not CTYPEnA...) is used. Projections, PCi_j /
// CDi_j / CDELTn + CROTAn, SIP and TPV distortions are all wcslib's; nothing is hand-written.
//
// Output: always equatorial right ascension / declination in degrees, FK5 J2000, which
// equals ICRS within the ~20 mas frame bias (Feissel & Mignard 1998; far below any
// ground-based centroid). RA is in [0, 360).
//   - RA/DEC with RADESYS ICRS, or FK5 with EQUINOX 2000 (or the wcslib defaults leading to
//     them: no RADESYS and EQUINOX 2000 or absent): used as is.
//   - GLON/GLAT (Galactic): rotated to FK5 J2000 with wcsccs() and the pole of astropy's
//     Galactic frame (astropy.coordinates.Galactic._ngp_J2000, _lon0_J2000: the IAU 1958
//     B1950 definition transformed to FK5): north galactic pole at RA 192.8594812065348,
//     Dec 27.1282511808198; galactic longitude of the north celestial pole 122.9319185680026.
//     They round to the Hipparcos values (ESA 1997, vol. 1, sec. 1.5.3: 192.85948, 27.12825,
//     122.93192), which differ from them by < 0.01".
//   - ELON/ELAT (ecliptic, EQUINOX 2000 or absent): the mean ecliptic and equinox of J2000,
//     rotated by the IAU 2006 obliquity eps = 84381.406" = 23.439279444 deg (Hilton et al.
//     2006, Celest. Mech. 94, 351; the one astropy's BarycentricMeanEcliptic uses):
//     ecliptic pole at RA 270, Dec 90 - eps; ecliptic longitude of the celestial pole 90.
//   - Anything else celestial (FK4 / B1950, other equinoxes, GAPPT, supergalactic,
//     helioprojective, planetary): kUnsupported, NaN. FK4 -> FK5 needs E-terms and
//     precession, which wcslib does not provide.
//
// Pixels: 0-based, pixel centres at integers, x = column (NAXIS1); FITS pixel = x + 1 is
// applied here. A WCS with more than two axes gets FITS pixel 1 on the others.
//
// Failures are values: a SkyWcs that is not ok() gives NaN for every pixel and reason()
// says why (meant to be logged once per frame); a pixel the projection cannot map (outside
// an AIT ellipse, ...) gives NaN. Nothing here throws for header content (only
// std::bad_alloc).
//
// Thread-safety: building SkyWcs objects concurrently is safe (wcslib >= 7.5's header
// parsers are reentrant). One SkyWcs must not be used by two threads at once: wcsp2s()
// writes scratch buffers inside the wcsprm, hence the non-const conversion functions.
// Give each thread its own SkyWcs, or convert all stars in one call (cheap: under a
// microsecond a star, 6 ms for the 7451 stars of the GLIMPSE mosaic, parsing included).
#include <memory>
#include <span>
#include <string>

#include "psfphot/core/header.hpp"

namespace psfphot::io {

enum class SkyWcsStatus {
  kOk = 0,
  kNone,          // no CTYPEn card: the frame has no WCS
  kNotCelestial,  // a WCS without a longitude/latitude axis pair (e.g. linear CTYPE '')
  kInvalid,       // wcslib rejected cards, or wcsset()/wcsccs() failed
  kUnsupported,   // celestial, but not a system this converts to FK5 J2000 (above)
};
const char* to_string(SkyWcsStatus s);  // "ok", "none", "not-celestial", ...

struct SkyCoord {
  double ra_deg;
  double dec_deg;
};

class SkyWcs {
 public:
  explicit SkyWcs(const HeaderFacts& header);
  ~SkyWcs();
  SkyWcs(SkyWcs&&) noexcept;
  SkyWcs& operator=(SkyWcs&&) noexcept;
  SkyWcs(const SkyWcs&) = delete;
  SkyWcs& operator=(const SkyWcs&) = delete;

  bool ok() const {
    return status_ == SkyWcsStatus::kOk && impl_ != nullptr;
  }  // (moved-from: not ok)
  SkyWcsStatus status() const { return status_; }
  // Why not ok, naming the cards or wcslib's message; empty when ok.
  const std::string& reason() const { return reason_; }
  // What was found, e.g. "GLON-CAR, galactic -> FK5 J2000"; empty when there is no WCS.
  const std::string& description() const { return description_; }

  // 0-based pixel -> (RA, Dec) in degrees; NaN when not ok() or x, y not finite or outside
  // the projection's domain.
  SkyCoord pixel_to_sky(double x, double y);
  // The same for n points in one wcsp2s() call; all spans of equal size (else
  // std::invalid_argument).
  void pixels_to_sky(std::span<const double> x, std::span<const double> y, std::span<double> ra_deg,
                     std::span<double> dec_deg);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  SkyWcsStatus status_ = SkyWcsStatus::kNone;
  std::string reason_;
  std::string description_;
};

}  // namespace psfphot::io
