#include "psfphot/io/fits.hpp"

#include <fitsio.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <regex>

#include "fits_direct.hpp"

namespace psfphot::io {
namespace {

std::string status_text(int status) {
  char text[FLEN_STATUS] = {0};
  fits_get_errstatus(status, text);
  // cfitsio also keeps a stack of detailed messages; the first is usually the most
  // specific ("tried to move past end of file" ...). Drain it so it does not leak
  // into the next error.
  std::string detail;
  char msg[FLEN_ERRMSG] = {0};
  while (fits_read_errmsg(msg)) {
    if (detail.empty()) detail = msg;
  }
  std::string out = text;
  if (!detail.empty() && detail != out) out += " (" + detail + ")";
  out += " [cfitsio status " + std::to_string(status) + "]";
  return out;
}

struct FitsCloser {
  void operator()(fitsfile* f) const {
    int st = 0;
    fits_close_file(f, &st);
  }
};
using FitsPtr = std::unique_ptr<fitsfile, FitsCloser>;

bool is_structural(const std::string& key) {
  static const std::regex re(
      "^(SIMPLE|BITPIX|NAXIS[0-9]*|EXTEND|BZERO|BSCALE|BLANK|PCOUNT|GCOUNT|XTENSION|END|"
      "CHECKSUM|DATASUM|ZIMAGE|ZBITPIX|ZNAXIS[0-9]*|ZTILE[0-9]*|ZCMPTYPE|ZNAME[0-9]*|"
      "ZVAL[0-9]*|ZQUANTIZ|ZDITHER0|ZSIMPLE|ZEXTEND|ZTENSION|ZPCOUNT|ZGCOUNT|ZBLANK)$");
  return std::regex_match(key, re);
}

bool is_wcs(const std::string& key) {
  static const std::regex re(
      "^(WCSAXES[A-Z]?|CTYPE[0-9]+[A-Z]?|CRVAL[0-9]+[A-Z]?|CRPIX[0-9]+[A-Z]?|CDELT[0-9]+[A-Z]?|"
      "CUNIT[0-9]+[A-Z]?|CROTA[0-9]+|CD[0-9]+_[0-9]+[A-Z]?|PC[0-9]+_[0-9]+[A-Z]?|"
      "PV[0-9]+_[0-9]+[A-Z]?|PS[0-9]+_[0-9]+[A-Z]?|RADESYS[A-Z]?|RADECSYS|EQUINOX[A-Z]?|"
      "LONPOLE[A-Z]?|LATPOLE[A-Z]?|A_ORDER|B_ORDER|AP_ORDER|BP_ORDER|A_[0-9]+_[0-9]+|"
      "B_[0-9]+_[0-9]+|AP_[0-9]+_[0-9]+|BP_[0-9]+_[0-9]+|MJDREF|DATEREF)$");
  return std::regex_match(key, re);
}

std::string unquote(std::string v) {
  if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') {
    v = v.substr(1, v.size() - 2);
    while (!v.empty() && v.back() == ' ') v.pop_back();
  }
  return v;
}

double to_double(const std::string& v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::string s = unquote(v);
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (end == s.c_str()) return std::numeric_limits<double>::quiet_NaN();
  return d;
}

// Modified Julian Date of a Gregorian calendar date (Fliegel & Van Flandern 1968).
double mjd_from_calendar(int y, int m, int d, int hh, int mm, double ss) {
  long a = (14 - m) / 12;
  long yy = y + 4800 - a;
  long mo = m + 12 * a - 3;
  long jdn = d + (153 * mo + 2) / 5 + 365 * yy + yy / 4 - yy / 100 + yy / 400 - 32045;
  return static_cast<double>(jdn) - 2400001.0 + (hh + (mm + ss / 60.0) / 60.0) / 24.0;
}

void parse_header(fitsfile* f, const std::string& path, HeaderFacts& h) {
  int status = 0;
  char* hdr = nullptr;
  int nkeys = 0;
  // Converts a tile-compressed header to the equivalent image header too.
  if (fits_convert_hdr2str(f, 0, nullptr, 0, &hdr, &nkeys, &status)) {
    throw FitsError(path, "cannot read header: " + status_text(status), status);
  }
  for (int i = 0; i < nkeys; ++i) {
    std::string raw(hdr + 80 * i, 80);
    char name[FLEN_KEYWORD] = {0}, value[FLEN_VALUE] = {0}, comment[FLEN_COMMENT] = {0};
    int namelen = 0, st = 0;
    fits_get_keyname(raw.data(), name, &namelen, &st);
    std::string key(name);
    if (key.empty() || is_structural(key)) continue;
    if (key == "COMMENT" || key == "HISTORY") {
      std::string text = raw.substr(8);
      while (!text.empty() && text.back() == ' ') text.pop_back();
      h.cards.push_back({key, "", text});
      continue;
    }
    st = 0;
    fits_parse_value(raw.data(), value, comment, &st);
    if (st) continue;  // malformed card: keep going, it is not one we need
    HeaderCard c{key, value, comment};
    h.cards.push_back(c);
    if (is_wcs(key)) h.wcs.push_back(c);
  }
  int st = 0;
  fits_free_memory(hdr, &st);

  auto num = [&](std::initializer_list<const char*> keys) {
    for (const char* k : keys) {
      double d = to_double(h.card(k).empty() ? "" : h.card(k));
      if (std::isfinite(d)) return d;
    }
    return std::numeric_limits<double>::quiet_NaN();
  };
  h.exptime_s = num({"EXPTIME", "EXPOSURE", "EXP_TIME"});
  h.gain_e_per_adu = num({"GAIN", "EGAIN", "CCDGAIN"});
  h.read_noise_e = num({"RDNOISE", "READNOIS", "RON", "READNOISE"});
  h.saturation_adu = num({"SATURATE", "SATLEVEL", "SATURATION"});
  h.date_obs = h.card("DATE-OBS");
  h.filter = h.card("FILTER");
  if (h.filter.empty()) h.filter = h.card("FILTERS");
  h.mjd_obs = num({"MJD-OBS", "MJD_OBS"});
  if (!std::isfinite(h.mjd_obs) && !h.date_obs.empty()) {
    int y = 0, mo = 0, d = 0, hh = 0, mi = 0, s2 = 0;
    double sec = 0;
    if (fits_str2time(h.date_obs.data(), &y, &mo, &d, &hh, &mi, &sec, &s2) == 0) {
      h.mjd_obs = mjd_from_calendar(y, mo, d, hh, mi, sec);
    }
  }
}

// `map`: a BITPIX -32 image's pixels are mapped into *map rather than read, where they can be.
FitsImage open_and_read(const std::string& spec, bool read_pixels, MappedFits* map = nullptr) {
  std::error_code ec;
  std::string base = spec.substr(0, spec.find('['));
  if (!std::filesystem::exists(base, ec)) {
    throw FitsError(spec, "file does not exist");
  }
  if (std::filesystem::is_directory(base, ec)) {
    throw FitsError(spec, "is a directory, not a FITS file");
  }
  if (std::filesystem::file_size(base, ec) == 0) {
    throw FitsError(spec, "file is empty");
  }
  int status = 0;
  fitsfile* raw = nullptr;
  if (fits_open_image(&raw, spec.c_str(), READONLY, &status)) {
    std::string why = status_text(status);
    if (raw) {
      int st = 0;
      fits_close_file(raw, &st);
    }
    throw FitsError(spec, "cannot open as a FITS image: " + why, status);
  }
  FitsPtr f(raw);
  FitsImage out;
  out.path = spec;
  int hdunum = 0;
  fits_get_hdu_num(f.get(), &hdunum);
  out.hdu_number = hdunum - 1;
  out.compressed = fits_is_compressed_image(f.get(), &status) != 0;
  int naxis = 0;
  long naxes[9] = {0};
  if (fits_get_img_param(f.get(), 9, &out.bitpix, &naxis, naxes, &status) ||
      fits_get_img_equivtype(f.get(), &out.equiv_bitpix, &status)) {
    throw FitsError(spec, "cannot read image parameters: " + status_text(status), status);
  }
  // A 3-D cube with a single plane is an image; anything else is not.
  int effective = naxis;
  while (effective > 2 && naxes[effective - 1] == 1) --effective;
  if (effective != 2) {
    std::string shape;
    for (int i = 0; i < naxis; ++i) shape += (i ? "x" : "") + std::to_string(naxes[i]);
    throw FitsError(spec, "expected a 2-D image but NAXIS=" + std::to_string(naxis) +
                              (naxis ? " (" + shape + ")" : ""));
  }
  if (naxes[0] <= 0 || naxes[1] <= 0 || naxes[0] > (1L << 20) || naxes[1] > (1L << 20)) {
    throw FitsError(spec, "image size " + std::to_string(naxes[0]) + "x" +
                              std::to_string(naxes[1]) + " is empty or implausible");
  }
  parse_header(f.get(), spec, out.header);
  // BZERO/BSCALE are structural (not kept in cards); read them directly.
  {
    int st = 0;
    double v = 0;
    if (fits_read_key(f.get(), TDOUBLE, "BZERO", &v, nullptr, &st) == 0) out.bzero = v;
    st = 0;
    if (fits_read_key(f.get(), TDOUBLE, "BSCALE", &v, nullptr, &st) == 0) out.bscale = v;
  }
  const int w = static_cast<int>(naxes[0]), h = static_cast<int>(naxes[1]);
  if (!read_pixels) {
    out.pixels = Image<float>(0, 0);
    out.header.cards.push_back({"NAXIS1", std::to_string(w), ""});
    out.header.cards.push_back({"NAXIS2", std::to_string(h), ""});
    return out;
  }
  if (!out.compressed) {
    // A corrupt or cut header can claim gigabytes: check the data unit is really there
    // before allocating it (a 100000 x 100000 header on a 6 kB file is "truncated", not
    // a 40 GB allocation). cfitsio's own file size also holds for .gz files it inflated.
    LONGLONG head = 0, data_start = 0, data_end = 0;
    const LONGLONG file_bytes = f->Fptr->filesize;
    const LONGLONG need = static_cast<LONGLONG>(w) * h * (std::abs(out.bitpix) / 8);
    if (fits_get_hduaddrll(f.get(), &head, &data_start, &data_end, &status) == 0 &&
        data_start + need > file_bytes) {
      throw FitsError(spec, "file truncated: the header declares " + std::to_string(w) + "x" +
                                std::to_string(h) + " pixels of BITPIX " +
                                std::to_string(out.bitpix) + " (" + std::to_string(need) +
                                " bytes) but only " +
                                std::to_string(std::max<LONGLONG>(0, file_bytes - data_start)) +
                                " bytes follow the header");
    }
    status = 0;
  }
  if (map && out.bitpix == -32) {
    const std::size_t n = static_cast<std::size_t>(w) * h;
    if (const auto start = detail::direct_data_start(f.get(), spec, out, n)) {
      detail::MappedData md = detail::map_data_unit(spec, *start, n * 4);
      if (md.data) {
        map->mapped = FloatPlane::fits_float32(md.data, w, h, w);
        map->mapping = std::move(md.keep);
        out.pixels = Image<float>(0, 0);
        return out;
      }
    }
  }
  out.pixels = Image<float>(w, h, kNoInit);
  if (detail::read_pixels_direct(f.get(), spec, out, out.pixels.data(), out.pixels.size()))
    return out;
  long fpixel[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  float nulval = std::numeric_limits<float>::quiet_NaN();
  int anynul = 0;
  if (fits_read_pix(f.get(), TFLOAT, fpixel, static_cast<LONGLONG>(w) * h, &nulval,
                    out.pixels.data(), &anynul, &status)) {
    throw FitsError(spec,
                    "cannot read pixel data (file truncated or corrupt?): " + status_text(status),
                    status);
  }
  return out;
}

}  // namespace

FitsError::FitsError(const std::string& path, const std::string& what, int cfitsio_status)
    : std::runtime_error(path + ": " + what), path_(path), status_(cfitsio_status) {}

FitsImage read_fits(const std::string& spec) {
  return open_and_read(spec, true);
}
FitsImage read_fits_header(const std::string& spec) {
  return open_and_read(spec, false);
}

MappedFits read_fits_mapped(const std::string& spec) {
  MappedFits m;
  m.image = open_and_read(spec, true, &m);
  return m;
}

HeaderCard card(const std::string& key, double value, const std::string& comment) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15G", value);
  return {key, buf, comment};
}
HeaderCard card(const std::string& key, const std::string& value, const std::string& comment) {
  return {key, "'" + value + "'", comment};
}

void write_fits(const std::string& path, ImageView<const float> pixels,
                const std::vector<HeaderCard>& cards, const FitsWriteOptions& opt) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(path, ec) && !opt.overwrite) {
    throw FitsError(path, "exists already (refusing to overwrite)");
  }
  fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec)) {
    throw FitsError(path, "output folder " + parent.string() + " does not exist");
  }
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  fs::remove(tmp, ec);
  int status = 0;
  fitsfile* raw = nullptr;
  if (fits_create_file(&raw, tmp.c_str(), &status)) {
    throw FitsError(path, "cannot create file: " + status_text(status), status);
  }
  FitsPtr f(raw);
  auto fail = [&](const std::string& what) {
    std::string why = status_text(status);
    f.reset();
    fs::remove(tmp, ec);
    throw FitsError(path, what + ": " + why, status);
  };
  if (opt.compress) {
    if (opt.bitpix < 0) {
      fits_set_compression_type(f.get(), GZIP_2, &status);
      fits_set_quantize_level(f.get(), 0.0f, &status);  // lossless for floats
    } else {
      fits_set_compression_type(f.get(), RICE_1, &status);
    }
  }
  long naxes[2] = {pixels.width(), pixels.height()};
  const bool ushort = opt.bitpix == 16 && opt.bzero == 32768.0 && opt.bscale == 1.0;
  const bool ubyte_signed = opt.bitpix == 8 && opt.bzero == -128.0 && opt.bscale == 1.0;
  int img_type = ushort ? USHORT_IMG : (ubyte_signed ? SBYTE_IMG : opt.bitpix);
  if (fits_create_img(f.get(), img_type, 2, naxes, &status)) fail("cannot create image HDU");
  const bool custom_scale = !ushort && !ubyte_signed && (opt.bzero != 0.0 || opt.bscale != 1.0);
  if (custom_scale) {
    double bs = opt.bscale, bz = opt.bzero;
    fits_write_key(f.get(), TDOUBLE, "BSCALE", &bs, "physical = BZERO + BSCALE * stored", &status);
    fits_write_key(f.get(), TDOUBLE, "BZERO", &bz, nullptr, &status);
    fits_set_bscale(f.get(), bs, bz, &status);
    if (status) fail("cannot set scaling");
  }
  for (const auto& c : cards) {
    if (is_structural(c.key)) continue;
    if (c.key == "HISTORY") {
      fits_write_history(f.get(), c.comment.c_str(), &status);
    } else if (c.key == "COMMENT") {
      fits_write_comment(f.get(), c.comment.c_str(), &status);
    } else {
      std::string tmpl = c.key + " = " + (c.value.empty() ? "''" : c.value);
      if (!c.comment.empty()) tmpl += " / " + c.comment;
      char rec[FLEN_CARD] = {0};
      int keytype = 0;
      fits_parse_template(tmpl.data(), rec, &keytype, &status);
      if (status == 0) fits_write_record(f.get(), rec, &status);
    }
    if (status) fail("cannot write header card " + c.key);
  }
  // Write row by row so a strided view needs no copy. cfitsio cannot convert types
  // while compressing, so compressed integer images get their stored values here.
  const bool convert = opt.compress && opt.bitpix > 0;
  if (convert && custom_scale) fits_set_bscale(f.get(), 1.0, 0.0, &status);
  std::vector<std::int32_t> ints(convert ? static_cast<std::size_t>(pixels.width()) : 0);
  std::vector<unsigned short> ushorts(ints.size());
  std::vector<short> shorts(ints.size());
  std::vector<unsigned char> bytes(ints.size());
  for (int y = 0; y < pixels.height(); ++y) {
    long fpixel[2] = {1, y + 1};
    int rc = 0;
    if (convert) {
      const float* r = pixels.row(y);
      const int w = pixels.width();
      if (ushort) {
        for (int x = 0; x < w; ++x) ushorts[x] = static_cast<unsigned short>(std::lround(r[x]));
        rc = fits_write_pix(f.get(), TUSHORT, fpixel, w, ushorts.data(), &status);
      } else if (opt.bitpix == 16) {
        for (int x = 0; x < w; ++x)
          shorts[x] = static_cast<short>(std::lround((r[x] - opt.bzero) / opt.bscale));
        rc = fits_write_pix(f.get(), TSHORT, fpixel, w, shorts.data(), &status);
      } else if (opt.bitpix == 8) {
        for (int x = 0; x < w; ++x)
          bytes[x] = static_cast<unsigned char>(std::lround((r[x] - opt.bzero) / opt.bscale));
        rc = fits_write_pix(f.get(), TBYTE, fpixel, w, bytes.data(), &status);
      } else {
        for (int x = 0; x < w; ++x)
          ints[x] = static_cast<std::int32_t>(std::lround((r[x] - opt.bzero) / opt.bscale));
        rc = fits_write_pix(f.get(), TINT, fpixel, w, ints.data(), &status);
      }
    } else {
      rc = fits_write_pix(f.get(), TFLOAT, fpixel, pixels.width(),
                          const_cast<float*>(pixels.row(y)), &status);
    }
    if (rc) {
      fail("cannot write pixel row " + std::to_string(y) + " (value out of range for BITPIX " +
           std::to_string(opt.bitpix) + "?)");
    }
  }
  raw = f.release();
  if (fits_close_file(raw, &status)) {
    fs::remove(tmp, ec);
    throw FitsError(path, "cannot finish writing (disk full?): " + status_text(status), status);
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw FitsError(path, "cannot move finished file into place: " + ec.message());
  }
}

}  // namespace psfphot::io
