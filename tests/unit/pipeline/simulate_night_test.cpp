#include "psfphot/pipeline/simulate_night.hpp"

#include <fitsio.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "psfphot/io/fits.hpp"
#include "support/test_support.hpp"

namespace psfphot::pipeline {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

NightSimOptions tiny_night(const std::string& dir) {
  NightSimOptions o;
  o.out_dir = dir;
  o.sim.width = 320;
  o.sim.height = 256;
  o.sim.n_stars = 60;
  o.sim.n_galaxies = 0;  // keeps the flux test's sky local; galaxies are tested by eye/docs
  o.sim.seed = 11;
  o.n_frames = 3;
  o.n_darks = 2;
  o.n_flats = 2;
  return o;
}

struct TruthFile {
  std::map<std::string, std::string> meta;
  std::string header;
  std::vector<std::vector<double>> rows;
};

TruthFile read_truth(const std::string& path) {
  TruthFile t;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# ", 0) == 0) {
      const auto eq = line.find('=');
      if (eq != std::string::npos) t.meta[line.substr(2, eq - 2)] = line.substr(eq + 1);
      continue;
    }
    if (t.header.empty()) {
      t.header = line;
      continue;
    }
    std::vector<double> row;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) {
      std::size_t used = 0;
      row.push_back(std::stod(cell, &used));
      EXPECT_EQ(used, cell.size()) << "not a number: " << cell;
    }
    t.rows.push_back(row);
  }
  return t;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(SimulateNight, WritesTheNightAndItsConfig) {
  TempDir dir;
  const NightSimResult r = simulate_night(tiny_night(dir.path().string()));
  EXPECT_EQ(r.n_science, 3);
  EXPECT_EQ(r.n_darks, 2);
  EXPECT_EQ(r.n_flats, 2);
  for (const char* f : {"science/sci_0000.fits", "science/sci_0002.fits", "darks/dark_01.fits",
                        "flats/flat_01.fits", "truth/sci_0002.csv", "truth/frames.csv",
                        "truth/galaxies.csv", "truth/artefacts.csv"})
    EXPECT_TRUE(fs::exists(dir.path() / f)) << f;
  EXPECT_FALSE(fs::exists(dir.path() / "science/sci_0003.fits"));
  EXPECT_EQ(slurp(dir.path() / "night.toml"),
            "# psfphot night config written by psfphot simulate (seed 11)\n"
            "[night]\n"
            "name = \"simulated\"\n"
            "science = [\"science/*.fits\"]\n"
            "darks = [\"darks/*.fits\"]\n"
            "flats = [\"flats/*.fits\"]\n"
            "output = \"catalogue.h5\"\n");
}

TEST(SimulateNight, HeadersAndPixelsRoundTrip) {
  TempDir dir;
  const NightSimOptions o = tiny_night(dir.path().string());
  simulate_night(o);
  const io::FitsImage img = io::read_fits(dir.file("science/sci_0001.fits"));
  EXPECT_EQ(img.bitpix, 16);
  EXPECT_EQ(img.equiv_bitpix, USHORT_IMG);
  EXPECT_EQ(img.bzero, 32768.0);
  EXPECT_EQ(img.header.exptime_s, o.sim.exptime_s);
  EXPECT_EQ(img.header.gain_e_per_adu, o.sim.gain_e_per_adu);
  EXPECT_EQ(img.header.read_noise_e, o.sim.read_noise_e);
  EXPECT_EQ(img.header.saturation_adu, o.sim.saturation_adu);
  EXPECT_EQ(img.header.filter, "V");
  EXPECT_EQ(img.header.card("IMAGETYP"), "LIGHT");
  // Frame 1 of 3 spread over a 10 h night.
  const double when = utc_to_unix_seconds(o.night_start_utc) + 10.0 * 3600.0 / 3.0;
  EXPECT_EQ(img.header.date_obs, unix_seconds_to_utc(when));
  EXPECT_EQ(img.header.date_obs, "2026-11-23T22:20:00.000");
  EXPECT_NEAR(img.header.mjd_obs, unix_seconds_to_mjd(when), 1e-8);
  // The file holds exactly the simulator's frame as a camera stores it.
  const SimInstrument inst = make_instrument(o.sim);
  const SimField field = make_field(o.sim);
  SimFrame f = render_science_frame(o.sim, inst, field, 1);
  quantise_camera(f.raw_adu.view(), o.sim.saturation_adu);
  ASSERT_EQ(img.pixels.width(), o.sim.width);
  ASSERT_EQ(img.pixels.height(), o.sim.height);
  long mismatches = 0;
  for (std::size_t i = 0; i < f.raw_adu.size(); ++i)
    mismatches += img.pixels.data()[i] != f.raw_adu.data()[i];
  EXPECT_EQ(mismatches, 0);
  const io::FitsImage dark = io::read_fits(dir.file("darks/dark_00.fits"));
  EXPECT_EQ(dark.header.card("IMAGETYP"), "DARK");
  EXPECT_EQ(dark.header.exptime_s, o.sim.exptime_s);
  const io::FitsImage flat = io::read_fits(dir.file("flats/flat_00.fits"));
  EXPECT_EQ(flat.header.card("IMAGETYP"), "FLAT");
}

TEST(SimulateNight, TruthTablesParse) {
  TempDir dir;
  const NightSimOptions o = tiny_night(dir.path().string());
  simulate_night(o);
  const TruthFile t = read_truth(dir.file("truth/sci_0002.csv"));
  EXPECT_EQ(t.header, "star_id,x,y,flux,snr,saturated,psf_sigma_px,sky_var_adu2,flat_response");
  EXPECT_EQ(t.meta.at("width"), "320");
  EXPECT_EQ(t.meta.at("height"), "256");
  EXPECT_DOUBLE_EQ(std::stod(t.meta.at("gain_e_per_adu")), 1.2);
  EXPECT_DOUBLE_EQ(std::stod(t.meta.at("read_noise_e")), 5.0);
  EXPECT_EQ(t.meta.at("psf"), "gaussian");
  EXPECT_EQ(t.meta.at("frame"), "2");
  EXPECT_EQ(t.meta.at("seed"), "11");
  EXPECT_DOUBLE_EQ(std::stod(t.meta.at("exptime_s")), 60.0);
  EXPECT_TRUE(t.meta.count("moffat_beta"));
  ASSERT_GT(t.rows.size(), 40u);
  for (const auto& row : t.rows) {
    ASSERT_EQ(row.size(), 9u);
    EXPECT_GE(row[1], -0.5);
    EXPECT_LT(row[1], 319.5);
    EXPECT_GE(row[2], -0.5);
    EXPECT_LT(row[2], 255.5);
    EXPECT_GT(row[3], 0);
    EXPECT_TRUE(row[5] == 0 || row[5] == 1);
    EXPECT_GT(row[8], 0.4);  // flat response: vignetting to 0.55, PRNU, dust
    EXPECT_LE(row[8], 1.0);
  }
  // frames.csv: one row per frame, its star count matching the frame's truth table.
  std::ifstream in(dir.file("truth/frames.csv"));
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line.rfind("frame,path,psf_sigma_px,sky_adu,dx,dy,", 0), 0u);
  int n = 0;
  while (std::getline(in, line)) {
    if (n == 2) {
      std::vector<std::string> cells;
      std::stringstream ss(line);
      std::string cell;
      while (std::getline(ss, cell, ',')) cells.push_back(cell);
      EXPECT_EQ(cells[1], "science/sci_0002.fits");
      EXPECT_EQ(std::stoul(cells[8]), t.rows.size());
    }
    ++n;
  }
  EXPECT_EQ(n, 3);
}

// (raw - dark) / flat summed over a box around bright stars, minus the mean sky of a
// surrounding ring, against the truth flux plus what neighbours put into box and ring (from
// their own truth rows). Noise of the estimate, in calibrated ADU^2: per box pixel
// B + 1/12 / flat^2 (quantisation), the star's Poisson noise F / (gain * flat), the sky
// estimate's box^2 * B / ring pixels, and the neighbours' Poisson noise. Tolerance 5 sigma.
TEST(SimulateNight, CalibratedFluxOfBrightStarsMatchesTruth) {
  TempDir dir;
  NightSimOptions o = tiny_night(dir.path().string());
  o.sim.n_stars = 120;
  simulate_night(o);
  const SimConfig& c = o.sim;
  const SimInstrument inst = make_instrument(c);
  const Image<float> dark = render_master_dark(c, inst);
  const SimFrame sim = render_science_frame(c, inst, make_field(c), 0);
  const io::FitsImage img = io::read_fits(dir.file("science/sci_0000.fits"));
  const TruthFile t = read_truth(dir.file("truth/sci_0000.csv"));
  const ImageView<const float> rate = inst.dark_rate_e_per_s.view();
  auto hot = [&](int x, int y) {  // a stable hot pixel stands out of its neighbours
    return rate(x, y) > 1.5f * std::min(rate(x > 0 ? x - 1 : x + 1, y),
                                        rate(x + 1 < rate.width() ? x + 1 : x - 1, y)) +
                            0.5f;
  };
  int tested = 0;
  for (const auto& s : t.rows) {
    const double x = s[1], y = s[2], flux = s[3], snr = s[4], sigma = s[6], b = s[7];
    if (snr < 30 || s[5] != 0) continue;
    const int half = static_cast<int>(std::ceil(5 * sigma)), ring = half + 8;
    const int px = static_cast<int>(std::lround(x)), py = static_cast<int>(std::lround(y));
    if (px - ring < 0 || py - ring < 0 || px + ring >= c.width || py + ring >= c.height) continue;
    auto in_box = [&](int xx, int yy) {
      return std::abs(xx - px) <= half && std::abs(yy - py) <= half;
    };
    auto in_ring = [&](int xx, int yy) {
      return std::abs(xx - px) <= ring && std::abs(yy - py) <= ring &&
             (std::abs(xx - px) > half + 3 || std::abs(yy - py) > half + 3);
    };
    bool clear = true;
    for (const CosmicRay& cr : sim.cosmic_rays)
      if (std::hypot(cr.x - x, cr.y - y) < 1.5 * ring + cr.length_px + 2) clear = false;
    for (const HotPixel& h : sim.lit_unstable)
      if (std::abs(h.x - px) <= ring && std::abs(h.y - py) <= ring) clear = false;
    for (int yy = py - ring; yy <= py + ring; ++yy)
      for (int xx = px - ring; xx <= px + ring; ++xx) clear = clear && !hot(xx, yy);
    // Neighbours: their expected share of box minus ring-based sky.
    double neighbours = 0, var_neighbours = 0;  // (their Poisson noise, flat ~ 1 here)
    const int n_box = (2 * half + 1) * (2 * half + 1);
    const int n_ring = (2 * ring + 1) * (2 * ring + 1) - (2 * half + 7) * (2 * half + 7);
    for (const auto& other : t.rows) {
      if (&other == &s || std::hypot(other[1] - x, other[2] - y) > 2 * ring + 10 * other[6])
        continue;
      if (other[5] != 0) clear = false;  // a clipped neighbour is not modelled
      const Stamp st = render_psf_stamp({c.psf, other[6], c.moffat_beta}, other[1], other[2],
                                        other[3], 2 * ring);
      for (int j = 0; j < st.pixels.height(); ++j)
        for (int i = 0; i < st.pixels.width(); ++i) {
          const int xx = st.x0 + i, yy = st.y0 + j;
          const double v = st.pixels(i, j), k = static_cast<double>(n_box) / n_ring;
          if (in_box(xx, yy)) {
            neighbours += v;
            var_neighbours += v / c.gain_e_per_adu;
          } else if (in_ring(xx, yy)) {
            neighbours -= v * k;
            var_neighbours += v * k * k / c.gain_e_per_adu;
          }
        }
    }
    if (!clear) continue;
    double box = 0, sky = 0, var_q = 0;
    for (int yy = py - ring; yy <= py + ring; ++yy)
      for (int xx = px - ring; xx <= px + ring; ++xx) {
        const double f = inst.flat(xx, yy);
        const double cal = (img.pixels(xx, yy) - dark(xx, yy)) / f;
        if (in_box(xx, yy)) {
          box += cal;
          var_q += 1.0 / 12.0 / (f * f);
        } else if (in_ring(xx, yy)) {
          sky += cal;
        }
      }
    const double measured = box - n_box * sky / n_ring;
    const double var = n_box * b + var_q + flux / (c.gain_e_per_adu * inst.flat(px, py)) +
                       static_cast<double>(n_box) * n_box * b / n_ring + var_neighbours;
    EXPECT_NEAR(measured, flux + neighbours, 5 * std::sqrt(var))
        << "star at " << x << "," << y << " flux " << flux << " neighbours " << neighbours;
    ++tested;
  }
  EXPECT_GE(tested, 3);
}

TEST(SimulateNight, RefusesANonEmptyFolderUnlessOverwrite) {
  TempDir dir;
  std::ofstream(dir.file("notes.txt")) << "mine";
  NightSimOptions o = tiny_night(dir.path().string());
  try {
    simulate_night(o);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not empty"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--overwrite"), std::string::npos) << e.what();
  }
  o.overwrite = true;
  o.n_frames = 3;
  simulate_night(o);
  o.n_frames = 1;  // a smaller night must not leave frames 1 and 2 behind
  simulate_night(o);
  EXPECT_TRUE(fs::exists(dir.path() / "science/sci_0000.fits"));
  EXPECT_FALSE(fs::exists(dir.path() / "science/sci_0001.fits"));
  EXPECT_FALSE(fs::exists(dir.path() / "truth/sci_0002.csv"));
  EXPECT_EQ(slurp(dir.path() / "notes.txt"), "mine");
}

TEST(SimulateNight, UtcConversions) {
  EXPECT_EQ(utc_to_unix_seconds("1970-01-01T00:00:00"), 0.0);
  EXPECT_EQ(unix_seconds_to_mjd(utc_to_unix_seconds("2000-01-01T12:00:00")), 51544.5);
  EXPECT_EQ(unix_seconds_to_utc(utc_to_unix_seconds("2024-02-29T23:59:59.250")),
            "2024-02-29T23:59:59.250");
  EXPECT_EQ(unix_seconds_to_utc(utc_to_unix_seconds("2026-12-31T23:30:00") + 3600.0),
            "2027-01-01T00:30:00.000");
  EXPECT_THROW(utc_to_unix_seconds("yesterday"), std::invalid_argument);
}

}  // namespace
}  // namespace psfphot::pipeline
