#include "psfphot/io/wcs.hpp"

#include <wcslib/wcs.h>
#include <wcslib/wcserr.h>
#include <wcslib/wcshdr.h>
#include <wcslib/wcsmath.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <regex>
#include <stdexcept>
#include <vector>

namespace psfphot::io {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Galactic -> FK5 J2000 (see wcs.hpp): astropy's Galactic._ngp_J2000 and _lon0_J2000.
constexpr double kNgpRaDeg = 192.8594812065348;
constexpr double kNgpDecDeg = 27.1282511808198;
constexpr double kNcpGalacticLonDeg = 122.9319185680026;
// Ecliptic of J2000 -> FK5 J2000: IAU 2006 obliquity at J2000, 84381.406 arcsec.
constexpr double kObliquityDeg = 84381.406 / 3600.0;

// wcslib's detailed error messages (wcserr) are off unless enabled; the switch is global,
// so it is set once, before any wcsprm of ours exists.
void enable_wcs_errors() {
  static std::once_flag once;
  std::call_once(once, [] { wcserr_enable(1); });
}

std::string trim(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  while (!s.empty() && s.front() == ' ') s.erase(s.begin());
  return s;
}

// One 80-character header record "KEY     = value", as wcspih() expects.
std::string keyrecord(const HeaderCard& c) {
  std::string rec = c.key;
  rec.resize(8, ' ');
  rec += "= " + c.value;
  rec.resize(80, ' ');
  for (char& ch : rec)
    if (ch < 0x20 || ch > 0x7e) ch = ' ';
  return rec;
}

std::string wcslib_message(const wcsprm* w, int status) {
  if (w && w->err && w->err->msg[0] != '\0') return w->err->msg;
  if (status > 0 && status <= WCSERR_NON_SEPARABLE) return wcs_errmsg[status];
  return "wcslib status " + std::to_string(status);
}

bool is_undefined(double v) {
  return !std::isfinite(v) || undefined(v);
}

}  // namespace

const char* to_string(SkyWcsStatus s) {
  switch (s) {
    case SkyWcsStatus::kOk: return "ok";
    case SkyWcsStatus::kNone: return "none";
    case SkyWcsStatus::kNotCelestial: return "not-celestial";
    case SkyWcsStatus::kInvalid: return "invalid";
    case SkyWcsStatus::kUnsupported: return "unsupported";
  }
  return "?";
}

struct SkyWcs::Impl {
  int nwcs = 0;
  wcsprm* all = nullptr;  // wcspih's array; `w` is its primary description
  wcsprm* w = nullptr;
  std::vector<double> pix, img, phi, theta, world;
  std::vector<int> stat;
  ~Impl() {
    if (all) wcsvfree(&nwcs, &all);
  }
};

SkyWcs::SkyWcs(SkyWcs&&) noexcept = default;
SkyWcs& SkyWcs::operator=(SkyWcs&&) noexcept = default;
SkyWcs::~SkyWcs() = default;

SkyWcs::SkyWcs(const HeaderFacts& header) {
  enable_wcs_errors();
  static const std::regex primary_ctype("^CTYPE[0-9]+$");
  std::vector<HeaderCard> cards = header.wcs;
  bool has_ctype = false;
  for (const auto& c : cards) has_ctype = has_ctype || std::regex_match(c.key, primary_ctype);
  if (!has_ctype) {
    status_ = SkyWcsStatus::kNone;
    reason_ = "no WCS (no CTYPEn card)";
    return;
  }
  // EPOCH is the old name of EQUINOX (wcspih reads it so under WCSHDR_all); io does not
  // count it among the WCS cards. Only a number, and only without EQUINOX: wcslib rejects
  // it otherwise (EPOCH = 'J2000' beside EQUINOX = 2000 is common).
  bool has_equinox = false;
  for (const auto& c : cards) has_equinox = has_equinox || c.key == "EQUINOX";
  for (const auto& c : header.cards)
    if (c.key == "EPOCH" && !has_equinox) {
      char* end = nullptr;
      const std::string v = trim(c.value);
      std::strtod(v.c_str(), &end);
      if (!v.empty() && end && *end == '\0') cards.push_back(c);
    }

  std::string text;
  for (const auto& c : cards)
    if (c.key.size() <= 8) text += keyrecord(c);
  const int nkeyrec = static_cast<int>(text.size() / 80);
  impl_ = std::make_unique<Impl>();
  int nreject = 0;
  // ctrl -1: the records wcslib parsed are removed from `text`, so what is left of our WCS
  // cards names the rejected ones.
  const int st = wcspih(text.data(), nkeyrec, WCSHDR_all, -1, &nreject, &impl_->nwcs, &impl_->all);
  if (st != 0) {
    status_ = SkyWcsStatus::kInvalid;
    reason_ = std::string("wcslib cannot parse the WCS cards: ") +
              (st > 0 && st <= WCSHDRERR_BAD_TABULAR_PARAMS ? wcshdr_errmsg[st] : "error");
    impl_.reset();
    return;
  }
  if (nreject > 0) {
    // wcslib counts rejections over the whole header: only a rejected card of the primary
    // description (no alternate letter) makes it unusable; a broken alternate (CRVAL1A) or
    // reference-date card leaves the primary WCS as wcslib set it up.
    static const std::regex primary_key(
        "^(WCSAXES|CTYPE[0-9]+|CRVAL[0-9]+|CRPIX[0-9]+|CDELT[0-9]+|CD[0-9]+_[0-9]+|"
        "PC[0-9]+_[0-9]+|PV[0-9]+_[0-9]+|PS[0-9]+_[0-9]+|CROTA[0-9]+|CUNIT[0-9]+|RADESYS|"
        "RADECSYS|EQUINOX|EPOCH|LONPOLE|LATPOLE)$");
    std::string names;
    bool primary = false;
    const std::size_t left = std::strlen(text.c_str()) / 80;
    for (std::size_t i = 0; i < left; ++i) {
      const std::string rec = trim(text.substr(i * 80, 80));
      primary =
          primary ||
          std::regex_match(trim(rec.substr(0, std::min<std::size_t>(8, rec.size()))), primary_key);
      if (!names.empty()) names += "; ";
      names += rec;
    }
    if (primary) {
      status_ = SkyWcsStatus::kInvalid;
      reason_ = "wcslib rejected " + std::to_string(nreject) + " WCS card(s): " + names;
      impl_.reset();
      return;
    }
  }
  for (int i = 0; i < impl_->nwcs; ++i)
    if (impl_->all[i].alt[0] == ' ' || impl_->all[i].alt[0] == '\0') impl_->w = &impl_->all[i];
  if (!impl_->w) {
    status_ = SkyWcsStatus::kNone;
    reason_ = "no primary WCS description (only alternates CTYPEnA...)";
    return;
  }
  wcsprm* w = impl_->w;
  std::string ctypes;
  for (int i = 0; i < w->naxis; ++i) {
    const std::string ct = trim(w->ctype[i]);
    ctypes += (i ? ", " : "") + (ct.empty() ? std::string("''") : ct);
  }
  description_ = ctypes;
  if (const int s = wcsset(w); s != 0) {
    status_ = SkyWcsStatus::kInvalid;
    reason_ = "invalid WCS (" + ctypes + "): " + wcslib_message(w, s);
    return;
  }
  if (w->lng < 0 || w->lat < 0) {
    status_ = SkyWcsStatus::kNotCelestial;
    reason_ = "the WCS has no celestial axes (CTYPE " + ctypes + ")";
    return;
  }
  const std::string lngtyp = trim(w->lngtyp);
  const bool equinox_2000 = is_undefined(w->equinox) || w->equinox == 2000.0;
  char equinox_text[32] = "none";
  if (!is_undefined(w->equinox)) std::snprintf(equinox_text, sizeof equinox_text, "%g", w->equinox);
  int s = 0;
  if (lngtyp == "RA") {
    const std::string radesys = trim(w->radesys);
    if (!(radesys == "ICRS" || (radesys == "FK5" && equinox_2000))) {
      status_ = SkyWcsStatus::kUnsupported;
      reason_ = "equatorial WCS in RADESYS " + (radesys.empty() ? "?" : radesys) + ", EQUINOX " +
                equinox_text + ": only ICRS and FK5 J2000 are used";
      return;
    }
    description_ = ctypes + " (" + radesys + ")";
  } else if (lngtyp == "GLON") {
    s = wcsccs(w, kNgpRaDeg, kNgpDecDeg, kNcpGalacticLonDeg, "RA", "DEC", "FK5", 2000.0, "");
    description_ = ctypes + ", galactic -> FK5 J2000";
  } else if (lngtyp == "ELON") {
    if (!equinox_2000) {
      status_ = SkyWcsStatus::kUnsupported;
      reason_ =
          "ecliptic WCS of EQUINOX " + std::string(equinox_text) + ": only J2000 is converted";
      return;
    }
    s = wcsccs(w, 270.0, 90.0 - kObliquityDeg, 90.0, "RA", "DEC", "FK5", 2000.0, "");
    description_ = ctypes + ", ecliptic J2000 -> FK5 J2000";
  } else {
    status_ = SkyWcsStatus::kUnsupported;
    reason_ = "celestial system " + lngtyp + " (CTYPE " + ctypes +
              ") is not converted to RA/Dec (only equatorial, galactic, ecliptic)";
    return;
  }
  if (s != 0) {
    status_ = SkyWcsStatus::kInvalid;
    reason_ = "cannot change " + ctypes + " to FK5 RA/Dec: " + wcslib_message(w, s);
    return;
  }
  status_ = SkyWcsStatus::kOk;
}

SkyCoord SkyWcs::pixel_to_sky(double x, double y) {
  SkyCoord c{kNaN, kNaN};
  pixels_to_sky({&x, 1}, {&y, 1}, {&c.ra_deg, 1}, {&c.dec_deg, 1});
  return c;
}

void SkyWcs::pixels_to_sky(std::span<const double> x, std::span<const double> y,
                           std::span<double> ra_deg, std::span<double> dec_deg) {
  const std::size_t n = x.size();
  if (y.size() != n || ra_deg.size() != n || dec_deg.size() != n)
    throw std::invalid_argument("SkyWcs::pixels_to_sky: spans of different sizes");
  std::fill(ra_deg.begin(), ra_deg.end(), kNaN);
  std::fill(dec_deg.begin(), dec_deg.end(), kNaN);
  if (!ok() || n == 0) return;
  wcsprm* w = impl_->w;
  const auto naxis = static_cast<std::size_t>(w->naxis);
  // Only finite pixels go to wcslib; `index` maps its rows back.
  std::vector<std::size_t> index;
  index.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    if (std::isfinite(x[i]) && std::isfinite(y[i])) index.push_back(i);
  constexpr std::size_t kChunk = 1 << 16;
  for (std::size_t start = 0; start < index.size(); start += kChunk) {
    const std::size_t m = std::min(kChunk, index.size() - start);
    impl_->pix.assign(m * naxis, 1.0);  // FITS pixel 1 on any axis beyond the second
    for (std::size_t k = 0; k < m; ++k) {
      const std::size_t i = index[start + k];
      impl_->pix[k * naxis] = x[i] + 1.0;  // 0-based centre -> FITS 1-based
      if (naxis > 1) impl_->pix[k * naxis + 1] = y[i] + 1.0;
    }
    impl_->img.resize(m * naxis);
    impl_->world.resize(m * naxis);
    impl_->phi.resize(m);
    impl_->theta.resize(m);
    impl_->stat.resize(m);
    const int s = wcsp2s(w, static_cast<int>(m), static_cast<int>(naxis), impl_->pix.data(),
                         impl_->img.data(), impl_->phi.data(), impl_->theta.data(),
                         impl_->world.data(), impl_->stat.data());
    // 8: some pixels were outside the projection's domain (their stat is non-zero); any
    // other non-zero status leaves all of them NaN.
    if (s != 0 && s != WCSERR_BAD_PIX) continue;
    const auto lng = static_cast<std::size_t>(w->lng), lat = static_cast<std::size_t>(w->lat);
    for (std::size_t k = 0; k < m; ++k) {
      if (impl_->stat[k] != 0) continue;
      double ra = impl_->world[k * naxis + lng];
      const double dec = impl_->world[k * naxis + lat];
      if (!std::isfinite(ra) || !std::isfinite(dec)) continue;
      ra = std::fmod(ra, 360.0);
      if (ra < 0) ra += 360.0;
      if (ra >= 360.0) ra -= 360.0;  // -1e-20 + 360 rounds to 360
      const std::size_t i = index[start + k];
      ra_deg[i] = ra;
      dec_deg[i] = dec;
    }
  }
}

}  // namespace psfphot::io
