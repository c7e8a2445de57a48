#include "psfphot/pipeline/simulate_night.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <numbers>
#include <random>
#include <regex>
#include <stdexcept>

#include "psfphot/algo/stats.hpp"
#include "psfphot/io/fits.hpp"

namespace psfphot::pipeline {
namespace fs = std::filesystem;

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
long days_from_civil(long y, long m, long d) {
  y -= m <= 2;
  const long era = (y >= 0 ? y : y - 399) / 400;
  const long yoe = y - era * 400;
  const long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

File open_write(const fs::path& p) {
  File f(std::fopen(p.c_str(), "w"));
  if (!f) throw std::runtime_error(p.string() + ": cannot open for writing");
  return f;
}
void close_checked(File f, const fs::path& p) {
  if (std::fclose(f.release()) != 0)
    throw std::runtime_error(p.string() + ": write failed (disk full?)");
}

std::string numbered(const char* stem, int i, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s_%0*d", stem, digits, i);
  return buf;
}

// Make out_dir usable: create it, or refuse a non-empty one, or (overwrite) remove the
// simulator's own earlier outputs so that a smaller night leaves no stale frames behind.
void prepare_folder(const NightSimOptions& o, NightSimResult& r) {
  std::error_code ec;
  const fs::path dir(o.out_dir);
  if (o.out_dir.empty()) throw std::runtime_error("no output folder given");
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw std::runtime_error(o.out_dir + ": exists and is not a folder");
  if (fs::is_directory(dir, ec) && !fs::is_empty(dir, ec)) {
    if (!o.overwrite)
      throw std::runtime_error(o.out_dir +
                               ": folder is not empty; choose another folder or pass --overwrite "
                               "(replaces the simulator's own files only)");
    const std::pair<const char*, std::regex> ours[] = {
        {"science", std::regex(R"(sci_\d+\.fits)")},
        {"darks", std::regex(R"(dark_\d+\.fits)")},
        {"flats", std::regex(R"(flat_\d+\.fits)")},
        {"truth", std::regex(R"((sci_\d+|frames|galaxies|artefacts)\.csv)")}};
    for (const auto& [sub, re] : ours) {
      if (!fs::is_directory(dir / sub, ec)) continue;
      for (const auto& e : fs::directory_iterator(dir / sub)) {
        if (e.is_regular_file() && std::regex_match(e.path().filename().string(), re))
          fs::remove(e.path());
      }
    }
    fs::remove(dir / "night.toml", ec);
    if (fs::exists(dir / "catalogue.h5", ec))
      r.warnings.push_back((dir / "catalogue.h5").string() +
                           " is from an earlier night; remove it before running this one");
  }
  for (const char* sub : {"", "science", "darks", "flats", "truth"}) {
    fs::create_directories(dir / sub, ec);
    if (ec) throw std::runtime_error((dir / sub).string() + ": cannot create: " + ec.message());
  }
}

std::vector<HeaderCard> camera_cards(const NightSimOptions& o, const char* imagetyp, double unix_s,
                                     int index) {
  const SimConfig& c = o.sim;
  using io::card;
  return {card("IMAGETYP", imagetyp, "LIGHT, DARK or FLAT"),
          card("OBJECT", std::string(imagetyp) == "LIGHT" ? o.object : imagetyp),
          card("EXPTIME", c.exptime_s, "exposure time [s]"),
          card("DATE-OBS", unix_seconds_to_utc(unix_s), "UTC start of exposure"),
          card("MJD-OBS", unix_seconds_to_mjd(unix_s), "MJD (UTC) start of exposure"),
          card("FILTER", o.filter),
          card("GAIN", c.gain_e_per_adu, "[e-/ADU]"),
          card("RDNOISE", c.read_noise_e, "read noise [e-]"),
          card("SATURATE", c.saturation_adu, "saturation level [ADU]"),
          card("BUNIT", "ADU"),
          card("XBINNING", 1.0),
          card("YBINNING", 1.0),
          card("CCD-TEMP", -10.0, "[C]"),
          card("TELESCOP", "psfphot simulator"),
          card("INSTRUME", "SIMCAM"),
          card("SIMSEED", std::to_string(c.seed), "psfphot simulate --seed"),
          card("SIMINDEX", static_cast<double>(index), "0-based index within its type"),
          {"COMMENT", "", "Simulated by psfphot simulate; truth tables in ../truth/"}};
}

// A gnomonic (TAN) WCS, north up and east left (CD1_1 < 0): the field's centre pixel
// ((width - 1) / 2, (height - 1) / 2) 0-based at (field_ra_deg, field_dec_deg); a frame
// whose stars sit at field position + (dx, dy) has its reference pixel moved by the same.
void add_wcs_cards(std::vector<HeaderCard>& cards, const NightSimOptions& o, double dx_px,
                   double dy_px) {
  if (!(o.pixel_scale_arcsec > 0)) return;
  using io::card;
  const SimConfig& c = o.sim;
  const double scale_deg = o.pixel_scale_arcsec / 3600.0;
  cards.push_back(card("WCSAXES", 2.0));
  cards.push_back(card("CTYPE1", "RA---TAN"));
  cards.push_back(card("CTYPE2", "DEC--TAN"));
  cards.push_back(card("CRVAL1", o.field_ra_deg, "[deg] field centre"));
  cards.push_back(card("CRVAL2", o.field_dec_deg, "[deg] field centre"));
  // FITS pixels are 1-based: the 0-based centre (w - 1) / 2 is (w + 1) / 2.
  cards.push_back(card("CRPIX1", 0.5 * (c.width + 1) + dx_px, "field centre + dither"));
  cards.push_back(card("CRPIX2", 0.5 * (c.height + 1) + dy_px, "field centre + dither"));
  cards.push_back(card("CD1_1", -scale_deg));
  cards.push_back(card("CD1_2", 0.0));
  cards.push_back(card("CD2_1", 0.0));
  cards.push_back(card("CD2_2", scale_deg));
  cards.push_back(card("RADESYS", "ICRS"));
  cards.push_back(card("CUNIT1", "deg"));
  cards.push_back(card("CUNIT2", "deg"));
}

// The exposure with its overscan (NightSimOptions::overscan_px): the frame widened by that
// many columns on the right, which see no light and no dark current (bias + read noise), and
// the whole exposure's bias offset by its own draw. `kind` and `index` name the exposure
// for its own random stream (the same bytes for a seed, whatever else is simulated).
// `bias_adu` receives the exposure's bias level, bias + offset (the overscan's mean).
Image<float> with_overscan(const Image<float>& raw, const NightSimOptions& o, int kind, int index,
                           std::vector<HeaderCard>& cards, double& bias_adu) {
  const int w = raw.width(), h = raw.height(), n = o.overscan_px;
  const SimConfig& c = o.sim;
  std::seed_seq seq{static_cast<std::uint32_t>(c.seed), static_cast<std::uint32_t>(c.seed >> 32),
                    0x05CA11u, static_cast<std::uint32_t>(kind), static_cast<std::uint32_t>(index)};
  std::mt19937_64 rng(seq);
  std::uniform_real_distribution<double> jitter(-o.overscan_bias_jitter_adu,
                                                o.overscan_bias_jitter_adu);
  std::normal_distribution<double> read(0.0, c.read_noise_e / c.gain_e_per_adu);
  const double offset = jitter(rng);
  bias_adu = c.bias_adu + offset;
  Image<float> out(w + n, h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) out(x, y) = static_cast<float>(raw(x, y) + offset);
    for (int x = w; x < w + n; ++x) out(x, y) = static_cast<float>(c.bias_adu + offset + read(rng));
  }
  cards.push_back(io::card(
      "BIASSEC",
      "[" + std::to_string(w + 1) + ":" + std::to_string(w + n) + ",1:" + std::to_string(h) + "]",
      "overscan columns (1-based)"));
  cards.push_back(io::card("TRIMSEC", "[1:" + std::to_string(w) + ",1:" + std::to_string(h) + "]",
                           "light-sensitive pixels (1-based)"));
  return out;
}

void write_camera_fits(const fs::path& p, Image<float>& raw, const SimConfig& c,
                       const std::vector<HeaderCard>& cards) {
  quantise_camera(raw.view(), c.saturation_adu);
  io::FitsWriteOptions opt;
  opt.bitpix = 16;
  opt.bzero = 32768.0;
  opt.overwrite = true;  // prepare_folder() has already decided
  io::write_fits(p.string(), raw.cview(), cards, opt);
}

// `bias_adu`: the exposure's own bias level (with_overscan), NaN without overscan.
void write_truth_csv(const fs::path& p, const NightSimOptions& o, const SimFrame& f,
                     double bias_adu) {
  const SimConfig& c = o.sim;
  File out = open_write(p);
  std::FILE* fp = out.get();
  std::fprintf(fp, "# width=%d\n# height=%d\n", c.width, c.height);
  std::fprintf(fp, "# gain_e_per_adu=%.6f\n# read_noise_e=%.6f\n", c.gain_e_per_adu,
               c.read_noise_e);
  std::fprintf(fp, "# bias_adu=%.6f\n# saturation_adu=%.6f\n", c.bias_adu, c.saturation_adu);
  // Only with overscan, so the truth of a night without it keeps its bytes.
  if (std::isfinite(bias_adu)) std::fprintf(fp, "# overscan_bias_adu=%.6f\n", bias_adu);
  std::fprintf(fp, "# psf=%s\n# moffat_beta=%.6f\n", psf_model_name(c.psf), c.moffat_beta);
  std::fprintf(fp, "# exptime_s=%.6f\n# frame=%d\n# seed=%llu\n", c.exptime_s, f.conditions.frame,
               static_cast<unsigned long long>(c.seed));
  std::fprintf(fp, "# psf_sigma_px_centre=%.6f\n# sky_adu_centre=%.6f\n", f.conditions.sigma_px,
               f.sky_median_adu);
  std::fprintf(fp, "# dither_x_px=%.6f\n# dither_y_px=%.6f\n", f.conditions.dx_px,
               f.conditions.dy_px);
  std::fprintf(fp, "# coordinates=0-based pixel centres at integers, x = column\n");
  std::fprintf(fp, "# flux_unit=ADU of (raw - dark) / (flat / max(flat)), total\n");
  std::fprintf(fp, "star_id,x,y,flux,snr,saturated,psf_sigma_px,sky_var_adu2,flat_response\n");
  for (const TruthStar& t : f.truth) {
    std::fprintf(fp, "%d,%.6f,%.6f,%.6f,%.6f,%d,%.6f,%.6f,%.6f\n", t.star_id, t.x, t.y, t.flux_adu,
                 t.snr, t.saturated ? 1 : 0, t.psf_sigma_px, t.sky_var_adu2, t.flat_response);
  }
  close_checked(std::move(out), p);
}

}  // namespace

double utc_to_unix_seconds(const std::string& iso) {
  int y = 0, mo = 0, d = 0, hh = 0, mi = 0;
  double s = 0;
  char tail = 0;
  const int n = std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%lf%c", &y, &mo, &d, &hh, &mi, &s, &tail);
  if (n != 6 || mo < 1 || mo > 12 || d < 1 || d > 31 || hh > 23 || mi > 59 || s < 0 || s >= 61)
    throw std::invalid_argument("not a UTC time YYYY-MM-DDThh:mm:ss: '" + iso + "'");
  return days_from_civil(y, mo, d) * 86400.0 + hh * 3600.0 + mi * 60.0 + s;
}

std::string unix_seconds_to_utc(double seconds) {
  const auto ms = static_cast<long long>(std::llround(seconds * 1000.0));
  long long days = ms / 86400000, rem = ms % 86400000;
  if (rem < 0) {
    rem += 86400000;
    --days;
  }
  // civil_from_days (H. Hinnant).
  const long long z = days + 719468;
  const long long era = (z >= 0 ? z : z - 146096) / 146097;
  const long long doe = z - era * 146097;
  const long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const long long mp = (5 * doy + 2) / 153;
  const long long d = doy - (153 * mp + 2) / 5 + 1;
  const long long m = mp < 10 ? mp + 3 : mp - 9;
  const long long y = yoe + era * 400 + (m <= 2);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lld", y, m, d,
                rem / 3600000, rem / 60000 % 60, rem / 1000 % 60, rem % 1000);
  return buf;
}

double unix_seconds_to_mjd(double seconds) {
  return 40587.0 + seconds / 86400.0;
}

NightSimResult simulate_night(const NightSimOptions& o,
                              const std::function<void(const std::string&)>& progress) {
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  validate(o.sim);
  // Without a dark and a flat the night cannot be calibrated, so night.toml would lie.
  if (o.n_frames < 1 || o.n_darks < 1 || o.n_flats < 1)
    throw std::runtime_error("need at least one science frame, one dark and one flat");
  if (o.overscan_px < 0 || o.overscan_px > 4096 || !(o.overscan_bias_jitter_adu >= 0))
    throw std::runtime_error("overscan must be 0 to 4096 columns with a jitter >= 0 ADU");
  const double start = utc_to_unix_seconds(o.night_start_utc);
  NightSimResult r;
  prepare_folder(o, r);
  const fs::path dir(o.out_dir);
  const SimConfig& c = o.sim;
  auto say = [&](const std::string& s) {
    if (progress) progress(s);
  };

  // Returns the exposure's bias level when it has an overscan (NaN otherwise).
  auto write_exposure = [&](const fs::path& p, Image<float>& raw, int kind, int index,
                            std::vector<HeaderCard> cards) {
    double bias = std::numeric_limits<double>::quiet_NaN();
    if (o.overscan_px <= 0) {
      write_camera_fits(p, raw, c, cards);
      return bias;
    }
    Image<float> wide = with_overscan(raw, o, kind, index, cards, bias);
    write_camera_fits(p, wide, c, cards);
    return bias;
  };
  auto t0 = Clock::now();
  const SimInstrument inst = make_instrument(c);
  const SimField field = make_field(c);
  r.render_seconds += since(t0);

  const double cadence = std::max(o.night_length_h * 3600.0 / o.n_frames, c.exptime_s + 5.0);
  const double calib_step = c.exptime_s + 5.0;
  for (int i = 0; i < o.n_flats; ++i) {
    t0 = Clock::now();
    Image<float> raw = render_raw_flat(c, inst, i);
    r.render_seconds += since(t0);
    t0 = Clock::now();
    const double when = start - (o.n_flats - i) * calib_step - 600.0;
    write_exposure(dir / "flats" / (numbered("flat", i, 2) + ".fits"), raw, 2, i,
                   camera_cards(o, "FLAT", when, i));
    r.write_seconds += since(t0);
    ++r.n_flats;
  }
  say("flats " + std::to_string(o.n_flats));

  const fs::path truth = dir / "truth";
  File frames = open_write(truth / "frames.csv");
  File galaxies = open_write(truth / "galaxies.csv");
  File artefacts = open_write(truth / "artefacts.csv");
  std::fprintf(frames.get(),
               "frame,path,psf_sigma_px,sky_adu,dx,dy,date_obs,mjd_obs,n_stars,n_saturated,"
               "truth\n");
  std::fprintf(galaxies.get(), "frame,x,y,flux,r_e_px,sersic_n,axis_ratio,angle_deg\n");
  std::fprintf(artefacts.get(), "frame,kind,x,y,length_px,angle_deg,signal_e\n");
  constexpr double kDeg = 180.0 / std::numbers::pi;
  for (int i = 0; i < o.n_frames; ++i) {
    t0 = Clock::now();
    SimFrame f = render_science_frame(c, inst, field, i);
    r.render_seconds += since(t0);
    t0 = Clock::now();
    const double when = start + i * cadence;
    const std::string stem = numbered("sci", i, 4);
    std::vector<HeaderCard> cards = camera_cards(o, "LIGHT", when, i);
    add_wcs_cards(cards, o, f.conditions.dx_px, f.conditions.dy_px);
    const double bias =
        write_exposure(dir / "science" / (stem + ".fits"), f.raw_adu, 0, i, std::move(cards));
    write_truth_csv(truth / (stem + ".csv"), o, f, bias);
    std::vector<double> sig;
    long n_sat = 0;
    for (const TruthStar& t : f.truth) {
      sig.push_back(t.psf_sigma_px);
      n_sat += t.saturated;
    }
    const double sigma_med = sig.empty() ? f.conditions.sigma_px : median_inplace(sig);
    std::fprintf(frames.get(),
                 "%d,science/%s.fits,%.6f,%.6f,%.6f,%.6f,%s,%.8f,%zu,%ld,truth/%s.csv\n", i,
                 stem.c_str(), sigma_med, f.sky_median_adu, f.conditions.dx_px, f.conditions.dy_px,
                 unix_seconds_to_utc(when).c_str(), unix_seconds_to_mjd(when), f.truth.size(),
                 n_sat, stem.c_str());
    for (const Galaxy& g : field.galaxies) {
      std::fprintf(galaxies.get(), "%d,%.6f,%.6f,%.3f,%.4f,%.4f,%.4f,%.3f\n", i,
                   g.x + f.conditions.dx_px, g.y + f.conditions.dy_px, g.flux_adu, g.r_e_px,
                   g.sersic_n, g.axis_ratio, g.angle_rad * kDeg);
    }
    for (const CosmicRay& cr : f.cosmic_rays) {
      std::fprintf(artefacts.get(), "%d,cosmic_ray,%.3f,%.3f,%.3f,%.2f,%.1f\n", i, cr.x, cr.y,
                   cr.length_px, cr.angle_rad * kDeg, cr.energy_e);
    }
    for (const HotPixel& p : f.lit_unstable) {
      std::fprintf(artefacts.get(), "%d,hot_pixel,%d,%d,0,0,%.1f\n", i, p.x, p.y,
                   p.rate_e_per_s * c.exptime_s);
    }
    r.write_seconds += since(t0);
    r.n_truth_rows += static_cast<long>(f.truth.size());
    r.n_saturated += n_sat;
    r.n_cosmic_rays += static_cast<long>(f.cosmic_rays.size());
    ++r.n_science;
    say("science " + std::to_string(i + 1) + "/" + std::to_string(o.n_frames));
  }
  close_checked(std::move(frames), truth / "frames.csv");
  close_checked(std::move(galaxies), truth / "galaxies.csv");
  close_checked(std::move(artefacts), truth / "artefacts.csv");

  const double night_end = start + (o.n_frames - 1) * cadence + c.exptime_s;
  for (int i = 0; i < o.n_darks; ++i) {
    t0 = Clock::now();
    Image<float> raw = render_raw_dark(c, inst, i);
    r.render_seconds += since(t0);
    t0 = Clock::now();
    write_exposure(dir / "darks" / (numbered("dark", i, 2) + ".fits"), raw, 1, i,
                   camera_cards(o, "DARK", night_end + 600.0 + i * calib_step, i));
    r.write_seconds += since(t0);
    ++r.n_darks;
  }
  say("darks " + std::to_string(o.n_darks));

  const fs::path toml = dir / "night.toml";
  File t = open_write(toml);
  std::fprintf(t.get(),
               "# psfphot night config written by psfphot simulate (seed %llu)\n"
               "[night]\n"
               "name = \"simulated\"\n"
               "science = [\"science/*.fits\"]\n"
               "darks = [\"darks/*.fits\"]\n"
               "flats = [\"flats/*.fits\"]\n"
               "output = \"catalogue.h5\"\n",
               static_cast<unsigned long long>(c.seed));
  close_checked(std::move(t), toml);
  return r;
}

}  // namespace psfphot::pipeline
