// The per-frame pipeline against simulated truth, through the product's own commands:
// psfphot simulate -> master dark/flat -> psfphot frame -> psfphot score --json.
// Asserts the accuracy targets of the per-frame pipeline issue that psfphot meets; the
// ones it does not yet meet are printed (docs/scorecard.md lists them) so a regression
// or an improvement is visible in the log.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "psfphot/core/star.hpp"
#include "support/test_support.hpp"

namespace psfphot {
namespace {

using test::run_command;

// A tiny JSON lookup for the score's flat numeric fields: the value of "key" inside the
// object that follows "anchor" (a bin's "snr_min": X marker, or "headline").
double json_number(const std::string& text, const std::string& anchor, const std::string& key) {
  // Bin anchors ("snr_min": N) are looked up inside "bins": the headline row also starts
  // at S/N 20.
  const bool bin = anchor.find("snr_min") != std::string::npos;
  const auto start = bin ? text.find("\"bins\"") : 0;
  const auto a = start == std::string::npos ? start : text.find(bin ? anchor + "," : anchor, start);
  if (a == std::string::npos) return std::nan("");
  std::smatch m;
  const std::string rest = text.substr(a);
  if (!std::regex_search(rest, m, std::regex("\"" + key + "\":\\s*(-?[0-9.eE+-]+|null)")))
    return std::nan("");
  return m[1] == "null" ? std::nan("") : std::stod(m[1]);
}

class PipelineAccuracy : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    const std::string exe = test::psfphot_exe(), d = dir_->file("night");
    auto r = run_command(exe + " simulate --out " + d +
                         " --frames 1 --size 2048 --stars 2000 --seed 21 -q");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    r = run_command(exe + " master dark " + d + "/darks/*.fits -o " + d + "/mdark.fits");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    r = run_command(exe + " master flat " + d + "/flats/*.fits --dark " + d + "/mdark.fits -o " +
                    d + "/mflat.fits");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    r = run_command(exe + " frame " + d + "/science/sci_0000.fits --dark " + d +
                    "/mdark.fits --flat " + d + "/mflat.fits --threads 2 -o " + d + "/stars.csv");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    r = run_command(exe + " score " + d + "/stars.csv " + d + "/truth/sci_0000.csv --json " + d +
                    "/score.json");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    std::cout << r.out;
    std::ifstream in(d + "/score.json");
    std::stringstream ss;
    ss << in.rdbuf();
    json_ = ss.str();
  }
  static void TearDownTestSuite() { delete dir_; }
  // The fixture's frame again with one config override, written to night/<csv>; returns
  // `psfphot score --json` of it (empty after a failed ASSERT in the caller's view: check
  // HasFatalFailure()).
  static std::string frame_and_score(const std::string& csv, const std::string& set) {
    const std::string exe = test::psfphot_exe(), d = dir_->file("night");
    auto r = run_command(exe + " frame " + d + "/science/sci_0000.fits --dark " + d +
                         "/mdark.fits --flat " + d + "/mflat.fits --threads 2 -o " + d + "/" + csv +
                         " --set " + set);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    if (r.exit_code != 0) return "";
    r = run_command(exe + " score " + d + "/" + csv + " " + d + "/truth/sci_0000.csv --json -");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return r.exit_code == 0 ? r.out : "";
  }
  // A CSV line's fields.
  static std::vector<std::string> fields(const std::string& line) {
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string x; std::getline(ls, x, ',');) f.push_back(x);
    return f;
  }
  static test::TempDir* dir_;
  static std::string json_;
};
test::TempDir* PipelineAccuracy::dir_ = nullptr;
std::string PipelineAccuracy::json_;

TEST_F(PipelineAccuracy, CompletenessOfCleanStarsAboveSnr20) {
  const double c = json_number(json_, "\"headline\"", "completeness_clean");
  EXPECT_GE(c, 0.995);
}

TEST_F(PipelineAccuracy, FluxMedianWithinHalfPercentInEveryBinFrom20) {
  for (const char* lo : {"20", "50", "100", "300", "1000"}) {
    const std::string anchor = std::string("\"snr_min\": ") + lo;
    const double ratio = json_number(json_, anchor, "flux_ratio_median");
    if (std::isnan(ratio)) continue;  // bin empty on this frame
    // Target 0.5%, plus 3 standard errors of a median (1.2533 sigma / sqrt(n)): a bin of
    // 200 stars with 4% scatter cannot pin its median closer than ~0.35%.
    const double se = 1.2533 * json_number(json_, anchor, "flux_scatter") /
                      std::sqrt(json_number(json_, anchor, "n_flux"));
    EXPECT_NEAR(ratio, 1.0, 0.005 + 3 * se) << "S/N bin from " << lo;
  }
}

TEST_F(PipelineAccuracy, CentroidsAndFluxesAtTheCramerRaoBoundInEveryBinFrom20) {
  // Targets (issue 3): centroid RMS <= 1.15 x the full bound and flux scatter <= 1.10 x
  // the bound in every S/N bin from 20 up; the bound is the flat-consistent one (star
  // photon noise with gain x flat response, docs/score.md). A bin of n stars measures its
  // ratio with a relative standard error of 1/sqrt(4n) for the RMS (2n axis values) and
  // 1.166/sqrt(n) for the MAD-based scatter: the 2048^2 frame's bright bins hold 40-100
  // stars, so each target is asserted with 3 of its standard errors on top (the 4096^2
  // scorecard, docs/scorecard.md, meets them without: 1.05-1.10 and 0.87-1.05).
  for (const char* lo : {"20", "50", "100", "300", "1000"}) {
    const std::string anchor = std::string("\"snr_min\": ") + lo;
    const double n = json_number(json_, anchor, "n_errors");
    ASSERT_GE(n, 20) << "S/N bin from " << lo << " has too few stars to test";
    const double rms = json_number(json_, anchor, "centroid_rms_over_bound");
    const double flux = json_number(json_, anchor, "flux_scatter_over_bound");
    EXPECT_LE(rms, 1.15 * (1 + 3 / std::sqrt(4 * n))) << "S/N bin from " << lo;
    EXPECT_LE(flux, 1.10 * (1 + 3 * 1.166 / std::sqrt(n))) << "S/N bin from " << lo;
    // The two fullest bins (~200 and ~90 stars) also meet the centroid target outright.
    if (std::string(lo) == "20" || std::string(lo) == "50") {
      EXPECT_LE(rms, 1.15) << lo;
    }
    std::cout << "S/N >= " << lo << " (" << n << " stars): centroid rms/bound " << rms
              << ", flux scatter/bound " << flux << "\n";
  }
}

TEST_F(PipelineAccuracy, FewFalseDetections) {
  // Target: <= 2 per 4096^2 frame, 0.5 per 2048^2 (this frame: 0 at the default 8.5-sigma
  // threshold). At configs/deep.toml's 5 sigma it has 2, blended faint pairs and faint stars
  // measured > 1.5 px off (docs/scorecard.md): the threshold is what removes them, while
  // every clean star with S/N > 20 is still found (CompletenessOfCleanStarsAboveSnr20).
  const double n_false = json_number(json_, "\"counts\"", "n_false");
  EXPECT_LE(n_false, 1);
  const std::string deep = frame_and_score("deep5.csv", "detection.k_sigma=5");
  ASSERT_FALSE(deep.empty());
  const double n_false_deep = json_number(deep, "\"counts\"", "n_false");
  std::cout << "false detections: " << n_false << " (5 sigma: " << n_false_deep << ")\n";
}

// photometry.drop_failed (default true) removes exactly the detections whose fit failed,
// and they are mostly not stars: false detections fall, clean S/N > 20 completeness holds.
TEST_F(PipelineAccuracy, DroppingFailedFitsRemovesFalseDetectionsNotStars) {
  // Failed fits are faint detections: at the default threshold (8.5 sigma) this frame has
  // none left to drop, so both sides run at configs/deep.toml's 5 sigma.
  const std::string d = dir_->file("night");
  const std::string keep =
      frame_and_score("keep.csv", "detection.k_sigma=5 --set photometry.drop_failed=false");
  const std::string drop = frame_and_score("deep.csv", "detection.k_sigma=5");
  ASSERT_FALSE(keep.empty() || drop.empty());
  // Rows with a position whose fit failed (flags bit 6), and all rows, per file.
  auto count = [](const std::string& path, int* rows) {
    std::ifstream in(path);
    std::string line;
    int failed = 0;
    *rows = 0;
    std::getline(in, line);  // header: ... centroid_x (3) ... flags (14)
    while (std::getline(in, line)) {
      const auto f = fields(line);
      ++*rows;
      if (f.at(3) != "nan" && (std::stoul(f.at(14)) & star_flag::kFitFailed)) ++failed;
    }
    return failed;
  };
  int rows_keep = 0, rows_drop = 0;
  const int failed_keep = count(d + "/keep.csv", &rows_keep);
  const int failed_drop = count(d + "/deep.csv", &rows_drop);
  ASSERT_GT(failed_keep, 0) << "no failed fit on this frame: the test lost its case";
  EXPECT_EQ(failed_drop, 0);
  EXPECT_EQ(rows_keep - rows_drop, failed_keep);
  const double false_keep = json_number(keep, "\"counts\"", "n_false");
  const double false_drop = json_number(drop, "\"counts\"", "n_false");
  EXPECT_LT(false_drop, false_keep);
  EXPECT_GE(json_number(drop, "\"headline\"", "completeness_clean"),
            json_number(keep, "\"headline\"", "completeness_clean") - 0.002);
  std::cout << "fit failed: " << failed_keep << " rows; false detections " << false_keep << " -> "
            << false_drop << "\n";
}

// Cosmic-ray tracks are not reported as stars (hotpix.min_width_sigma: the minor-axis
// rule, algo/hotpix.hpp): no row with S/N >= 20 lies within 2 px of a simulated track
// (truth/artefacts.csv) and more than 1.5 px from every true star. The frame holds such a
// track (S/N 37 as a star, 14 px long) that the rule turned off reports, so the test has its
// case; the rule costs no true star (same matched count).
TEST_F(PipelineAccuracy, CosmicRayTracksAreNotReportedAsStars) {
  const std::string d = dir_->file("night");
  const std::string off = frame_and_score("nowidth.csv", "hotpix.min_width_sigma=0");
  ASSERT_FALSE(off.empty());
  // Truth stars (x, y) and cosmic-ray segments (x, y, length, angle).
  std::vector<std::array<double, 2>> truth;
  {
    std::ifstream in(d + "/truth/sci_0000.csv");
    std::string line;
    std::vector<std::string> head;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      if (head.empty()) {
        head = fields(line);
        continue;
      }
      const auto f = fields(line);
      const auto col = [&](const char* n) {
        return static_cast<std::size_t>(std::find(head.begin(), head.end(), n) - head.begin());
      };
      truth.push_back({std::stod(f.at(col("x"))), std::stod(f.at(col("y")))});
    }
  }
  std::vector<std::array<double, 4>> tracks;
  {
    std::ifstream in(d + "/truth/artefacts.csv");
    std::string line;
    std::getline(in, line);  // frame,kind,x,y,length_px,angle_deg,signal_e
    while (std::getline(in, line)) {
      const auto f = fields(line);
      if (f.at(0) != "0" || f.at(1) != "cosmic_ray") continue;  // frame 0, the one measured
      tracks.push_back({std::stod(f.at(2)), std::stod(f.at(3)), std::stod(f.at(4)),
                        std::stod(f.at(5)) * M_PI / 180});
    }
  }
  ASSERT_GT(truth.size(), 1000u);
  ASSERT_GT(tracks.size(), 5u);
  auto on_a_track = [&](const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);  // star_id, ..., centroid_x (3), centroid_y (4), ..., snr (11)
    int n = 0;
    while (std::getline(in, line)) {
      const auto f = fields(line);
      if (f.at(3) == "nan" || f.at(11) == "nan" || std::stod(f.at(11)) < 20) continue;
      const double x = std::stod(f.at(3)), y = std::stod(f.at(4));
      bool star = false;
      for (const auto& t : truth) star = star || std::hypot(t[0] - x, t[1] - y) <= 1.5;
      if (star) continue;
      for (const auto& t : tracks) {
        const double ux = std::cos(t[3]), uy = std::sin(t[3]);
        const double s = std::clamp((x - t[0]) * ux + (y - t[1]) * uy, 0.0, t[2]);
        if (std::hypot(x - t[0] - s * ux, y - t[1] - s * uy) < 2) {
          ++n;
          break;
        }
      }
    }
    return n;
  };
  const int with_rule = on_a_track(d + "/stars.csv"), without = on_a_track(d + "/nowidth.csv");
  ASSERT_GT(without, 0) << "no cosmic-ray track reported as a star without the rule: the test "
                           "lost its case";
  EXPECT_EQ(with_rule, 0);
  EXPECT_EQ(json_number(json_, "\"counts\"", "n_matched"),
            json_number(off, "\"counts\"", "n_matched"));
  std::cout << "cosmic-ray tracks reported as S/N >= 20 stars: " << without << " without the rule, "
            << with_rule << " with it\n";
}

TEST_F(PipelineAccuracy, OneAndTwoThreadsGiveIdenticalBytes) {
  const std::string exe = test::psfphot_exe(), d = dir_->file("night");
  auto r =
      run_command(exe + " frame " + d + "/science/sci_0000.fits --dark " + d +
                  "/mdark.fits --flat " + d + "/mflat.fits --threads 1 -o " + d + "/stars1.csv");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto cmp = run_command("cmp " + d + "/stars.csv " + d + "/stars1.csv");
  EXPECT_EQ(cmp.exit_code, 0) << cmp.out;
}

// The night runner and `psfphot frame` measure a frame the same way (same masters): every
// star's position, flux and flux error agree to the CSV's printed precision. (A frame-only
// memory saving once freed the flat before the photometry, whose photon noise needs the
// flat response: `frame` then reported smaller errors than `run` for the same star.)
TEST_F(PipelineAccuracy, FrameCommandMeasuresLikeTheNightRunner) {
  const std::string exe = test::psfphot_exe(), d = dir_->file("night");
  auto r = run_command(exe + " run " + d + "/night.toml -q --set night.darks=[] --set " +
                       "night.flats=[] --set night.master_dark=" + d + "/mdark.fits --set " +
                       "night.master_flat=" + d + "/mflat.fits -o " + d + "/run.h5");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto q = run_command(exe + " query " + d + "/run.h5 --format csv --columns " +
                       "star_id,centroid_x,psf_flux,psf_flux_err > " + d + "/run.csv");
  ASSERT_EQ(q.exit_code, 0) << q.out;
  auto table = [](const std::string& path, std::vector<int> cols) {
    std::ifstream in(path);
    std::vector<std::vector<double>> rows;
    std::string line;
    bool header = true;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      if (header) {
        header = false;
        continue;
      }
      std::vector<std::string> f;
      std::stringstream ls(line);
      for (std::string x; std::getline(ls, x, ',');) f.push_back(x);
      std::vector<double> v;
      for (int c : cols) v.push_back(std::stod(f.at(static_cast<std::size_t>(c))));
      rows.push_back(v);
    }
    return rows;
  };
  // stars.csv: star_id 0, centroid_x 3, psf_flux 9, psf_flux_err 10 (docs/pipeline.md).
  const auto a = table(d + "/stars.csv", {0, 3, 9, 10}), b = table(d + "/run.csv", {0, 1, 2, 3});
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GT(a.size(), 500u);
  int compared = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i][0], b[i][0]);
    for (int k = 1; k < 4; ++k) {
      if (std::isnan(a[i][k]) || std::isnan(b[i][k])) {
        EXPECT_EQ(std::isnan(a[i][k]), std::isnan(b[i][k])) << "star " << a[i][0];
        continue;
      }
      // The CSV prints 6-7 significant digits.
      EXPECT_NEAR(a[i][k], b[i][k], 1e-5 * std::abs(b[i][k]) + 1e-6)
          << "star " << a[i][0] << " column " << k;
      ++compared;
    }
  }
  EXPECT_GT(compared, 1500);
}

TEST_F(PipelineAccuracy, Lab3ConfigReproducesTheLabsPitfalls) {
  // The literal lab recipe (configs/lab3.toml): fluxes biased low by the truncated
  // moments, completeness lost to the crowding drop, as ../shared/peers measured.
  const std::string exe = test::psfphot_exe(), d = dir_->file("night");
  auto r = run_command(exe + " frame " + d + "/science/sci_0000.fits --dark " + d +
                       "/mdark.fits --flat " + d + "/mflat.fits --config " + PSFPHOT_SOURCE_DIR +
                       "/configs/lab3.toml -o " + d + "/lab.csv");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_command(exe + " score " + d + "/lab.csv " + d + "/truth/sci_0000.csv --json " + d +
                  "/lab.json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::ifstream in(d + "/lab.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string lab = ss.str();
  EXPECT_LT(json_number(lab, "\"headline\"", "flux_ratio_median"), 0.97);
  EXPECT_LT(json_number(lab, "\"headline\"", "completeness_clean"),
            json_number(json_, "\"headline\"", "completeness_clean"));
}

TEST(Configs, DefaultTomlIsWhatPsfphotPrints) {
  auto r = run_command(test::psfphot_exe() + " config defaults");
  ASSERT_EQ(r.exit_code, 0);
  std::ifstream in(std::string(PSFPHOT_SOURCE_DIR) + "/configs/default.toml");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), r.out) << "regenerate with: psfphot config defaults > configs/default.toml";
  for (const char* f : {"default.toml", "lab3.toml", "deep.toml"}) {
    auto c =
        run_command(test::psfphot_exe() + " config check " + PSFPHOT_SOURCE_DIR + "/configs/" + f);
    EXPECT_EQ(c.exit_code, 0) << f << ": " << c.out;
  }
}

}  // namespace
}  // namespace psfphot
