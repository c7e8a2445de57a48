// `psfphot score` end to end: truth and catalogue CSVs with known offsets written to a
// temporary folder, the command run, its JSON read back and checked against the numbers
// the offsets imply; then the night's HDF5 catalogue (psfphot run) scored frame by frame
// against the same frame's `psfphot frame` CSV.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_support.hpp"

namespace psfphot {
namespace {

// Just enough JSON to read the scorecard back: objects, arrays, numbers, strings, true,
// false, null (null reads as NaN).
struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  double number = NAN;
  bool boolean = false;
  std::string string;
  std::vector<Json> array;
  std::map<std::string, Json> object;
  const Json& operator[](const std::string& k) const {
    auto it = object.find(k);
    if (it == object.end()) throw std::runtime_error("JSON: no key " + k);
    return it->second;
  }
  const Json& operator[](std::size_t i) const { return array.at(i); }
  double num() const { return number; }
};

class JsonParser {
 public:
  explicit JsonParser(const std::string& s) : s_(s) {}
  Json parse() {
    Json v = value();
    ws();
    if (i_ != s_.size()) fail("trailing text");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error("JSON: " + what + " at offset " + std::to_string(i_));
  }
  void ws() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool eat(const std::string& lit) {
    if (s_.compare(i_, lit.size(), lit) != 0) return false;
    i_ += lit.size();
    return true;
  }
  std::string str() {
    if (!eat("\"")) fail("expected string");
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      if (s_[i_] == '\\') ++i_;  // our writer escapes only quote and backslash here
      out += s_[i_++];
    }
    if (!eat("\"")) fail("unterminated string");
    return out;
  }
  Json value() {
    ws();
    Json v;
    if (eat("null")) return v;
    if (eat("true") || eat("false")) {
      v.kind = Json::kBool;
      v.boolean = s_[i_ - 1] == 'e' && s_[i_ - 2] == 'u';
      return v;
    }
    if (i_ < s_.size() && s_[i_] == '"') {
      v.kind = Json::kString;
      v.string = str();
      return v;
    }
    if (eat("[")) {
      v.kind = Json::kArray;
      ws();
      if (eat("]")) return v;
      do v.array.push_back(value());
      while (ws(), eat(","));
      if (!eat("]")) fail("expected ]");
      return v;
    }
    if (eat("{")) {
      v.kind = Json::kObject;
      ws();
      if (eat("}")) return v;
      do {
        ws();
        std::string k = str();
        ws();
        if (!eat(":")) fail("expected :");
        v.object[k] = value();
      } while (ws(), eat(","));
      if (!eat("}")) fail("expected }");
      return v;
    }
    std::size_t used = 0;
    v.kind = Json::kNumber;
    v.number = std::stod(s_.substr(i_, 40), &used);
    i_ += used;
    return v;
  }
  const std::string& s_;
  std::size_t i_ = 0;
};

Json read_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return JsonParser(ss.str()).parse();
}

constexpr double kSigma = 2.0, kSky = 150.0;
const double kSnr[] = {30, 70, 200, 600, 3000};  // one per bin from 20-50 up

struct Star {
  double x, y, flux, snr;
};

// 25 isolated stars (all clean) in a 512 x 400 frame.
std::vector<Star> write_truth(const std::string& path) {
  std::ofstream f(path);
  f << "# width=512\n# height=400\n# gain_e_per_adu=1.2\n# read_noise_e=5\n# psf=gaussian\n"
       "# moffat_beta=nan\n# exptime_s=60\n# frame=3\n# seed=42\n"
       "star_id,x,y,flux,snr,saturated,psf_sigma_px,sky_var_adu2\n";
  std::vector<Star> stars;
  for (int i = 0; i < 25; ++i) {
    const double snr = kSnr[i % 5];
    const Star s{40.0 + 90 * (i % 5) + 0.37, 40.0 + 80 * (i / 5) - 0.21,
                 snr * std::sqrt(4 * std::numbers::pi * kSigma * kSigma * kSky), snr};
    f.precision(17);
    f << i << "," << s.x << "," << s.y << "," << s.flux << "," << s.snr << ",0," << kSigma << ","
      << kSky << "\n";
    stars.push_back(s);
  }
  return stars;
}

test::CommandResult score(const std::string& args) {
  return test::run_command(test::psfphot_exe() + " score " + args);
}

TEST(ScoreCli, PsfphotCatalogueWithKnownOffsets) {
  test::TempDir dir;
  const auto truth = write_truth(dir.file("truth.csv"));
  {
    std::ofstream f(dir.file("frame.csv"));
    f.precision(17);
    f << "star_id,peak_x,peak_y,centroid_x,centroid_y,centroid_err_x,centroid_err_y,width_x,"
         "width_y,psf_flux,psf_flux_err,snr,background,background_rms,flags\n";
    for (std::size_t i = 0; i < truth.size(); ++i) {
      const Star& s = truth[i];
      // dx = +0.1, dy = -0.2 for every star; flux 2% high; star 0 flagged (edge bit).
      f << i << ",0,0," << s.x + 0.1 << "," << s.y - 0.2 << ",0.01,0.01,2,2," << s.flux * 1.02
        << ",1,30,100,12," << (i == 0 ? 1 : 0) << "\n";
    }
    f << "25,0,0,300.5,5.5,,,2,2,500,1,5,100,12,0\n";  // two false detections
    f << "26,0,0,5.5,300.5,,,2,2,500,1,5,100,12,0\n";
  }
  const std::string json = dir.file("score.json");
  const auto r = score(dir.file("frame.csv") + " " + dir.file("truth.csv") + " --json " + json);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("S/N at 50% completeness"), std::string::npos) << r.out;
  const Json j = read_json(json);
  EXPECT_EQ(j["schema_version"].num(), 2);
  EXPECT_EQ(j["catalogue_frame"].kind, Json::kNull);  // a CSV: no frame chosen
  EXPECT_EQ(j["columns"]["x"].string, "centroid_x");
  EXPECT_EQ(j["columns"]["flux"].string, "psf_flux");
  EXPECT_EQ(j["columns"]["flags"].string, "flags");
  EXPECT_EQ(j["frame"]["width"].num(), 512);
  EXPECT_EQ(j["frame"]["gain_e_per_adu"].num(), 1.2);
  EXPECT_EQ(j["counts"]["n_true"].num(), 25);
  EXPECT_EQ(j["counts"]["n_measured"].num(), 27);
  EXPECT_EQ(j["counts"]["n_matched"].num(), 25);
  EXPECT_EQ(j["counts"]["n_false"].num(), 2);
  const Json& o = j["overall"];
  EXPECT_EQ(o["completeness"].num(), 1.0);
  EXPECT_EQ(o["completeness_clean"].num(), 1.0);
  EXPECT_EQ(o["n_errors"].num(), 25);
  EXPECT_EQ(o["n_matched_flagged"].num(), 1);
  EXPECT_NEAR(o["centroid_rms_x_px"].num(), 0.1, 1e-9);
  EXPECT_NEAR(o["centroid_rms_y_px"].num(), 0.2, 1e-9);
  EXPECT_NEAR(o["centroid_rms_px"].num(), std::sqrt((0.01 + 0.04) / 2), 1e-9);
  EXPECT_NEAR(o["centroid_bias_y_px"].num(), -0.2, 1e-9);
  EXPECT_NEAR(o["flux_ratio_median"].num(), 1.02, 1e-9);
  EXPECT_NEAR(o["flux_scatter"].num(), 0.0, 1e-9);
  EXPECT_EQ(j["headline"]["n_true"].num(), 25);  // all S/N >= 20
  ASSERT_EQ(j["bins"].array.size(), 7u);
  EXPECT_EQ(j["bins"][0]["n_true"].num(), 0);
  EXPECT_TRUE(std::isnan(j["bins"][0]["completeness"].num()));  // null: no stars
  EXPECT_TRUE(std::isnan(j["bins"][6]["snr_max"].num()));       // open bin
  for (std::size_t k = 2; k < 7; ++k) {
    const Json& b = j["bins"][k];
    const double snr = kSnr[k - 2];
    EXPECT_EQ(b["n_true"].num(), 5) << k;
    EXPECT_NEAR(b["centroid_bound_simple_px"].num(), std::sqrt(2.0) * kSigma / snr, 1e-9);
    EXPECT_NEAR(b["flux_bound_simple"].num(), 1.0 / snr, 1e-9);
    EXPECT_GT(b["flux_bound_full"].num(), b["flux_bound_simple"].num());
    EXPECT_NEAR(b["centroid_rms_over_bound"].num(),
                b["centroid_rms_px"].num() / b["centroid_bound_full_px"].num(), 1e-6);
    // No flat_response column: the full bound is the literal one.
    EXPECT_EQ(b["centroid_bound_literal_px"].num(), b["centroid_bound_full_px"].num());
    EXPECT_EQ(b["centroid_rms_over_bound_literal"].num(), b["centroid_rms_over_bound"].num());
    EXPECT_EQ(b["flux_bound_literal"].num(), b["flux_bound_full"].num());
    EXPECT_EQ(b["flux_scatter_over_bound_literal"].num(), b["flux_scatter_over_bound"].num());
  }
  EXPECT_NE(r.out.find("r/lit"), std::string::npos) << r.out;
}

// The truth's flat_response enters the full bound through the effective gain gain * f; the
// literal bound ignores it. At f = 0.5 the brightest bin (S/N 3000: photon noise dominates
// the sky there) has its bound close to sqrt(2) larger; the S/N-30 bin, whose core carries
// about half as much star photon variance as sky (F p / gain ~ 80 vs B = 150 ADU^2), less.
TEST(ScoreCli, FlatResponseColumnWidensTheFullBoundOnly) {
  test::TempDir dir;
  const auto truth = write_truth(dir.file("truth.csv"));
  {
    std::ifstream in(dir.file("truth.csv"));
    std::ofstream out(dir.file("truth_f.csv"));
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line[0] == '#')
        out << line << "\n";
      else if (line.rfind("star_id", 0) == 0)
        out << line << ",flat_response\n";
      else
        out << line << ",0.5\n";
    }
    std::ofstream f(dir.file("cat.csv"));
    f.precision(17);
    f << "x,y,flux\n";
    for (const Star& t : truth) f << t.x + 0.003 << "," << t.y << "," << t.flux << "\n";
  }
  auto r =
      score(dir.file("cat.csv") + " " + dir.file("truth.csv") + " --json " + dir.file("a.json"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = score(dir.file("cat.csv") + " " + dir.file("truth_f.csv") + " --json " + dir.file("b.json"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const Json a = read_json(dir.file("a.json")), b = read_json(dir.file("b.json"));
  const Json &lo_a = a["bins"][2], &lo_b = b["bins"][2];  // S/N 20-50
  const Json &hi_a = a["bins"][6], &hi_b = b["bins"][6];  // S/N >= 1000
  for (const Json* x : {&lo_b, &hi_b}) {
    EXPECT_GT((*x)["centroid_bound_full_px"].num(), (*x)["centroid_bound_literal_px"].num());
    EXPECT_LT((*x)["centroid_rms_over_bound"].num(), (*x)["centroid_rms_over_bound_literal"].num());
  }
  EXPECT_EQ(lo_b["centroid_bound_literal_px"].num(), lo_a["centroid_bound_full_px"].num());
  EXPECT_EQ(hi_b["centroid_bound_literal_px"].num(), hi_a["centroid_bound_full_px"].num());
  EXPECT_EQ(hi_b["flux_bound_literal"].num(), hi_a["flux_bound_full"].num());
  const double hi = hi_b["centroid_bound_full_px"].num() / hi_a["centroid_bound_full_px"].num();
  const double lo = lo_b["centroid_bound_full_px"].num() / lo_a["centroid_bound_full_px"].num();
  EXPECT_GT(hi, 1.3);
  EXPECT_LT(hi, std::sqrt(2.0));
  EXPECT_GT(lo, 1.0);
  EXPECT_LT(lo, hi - 0.1);
}

TEST(ScoreCli, SextractorStyleColumnsAndOneBasedCoordinates) {
  test::TempDir dir;
  const auto truth = write_truth(dir.file("truth.csv"));
  {
    std::ofstream f(dir.file("sex.csv"));
    f.precision(17);
    f << "NUMBER,X_IMAGE,Y_IMAGE,FLUX_AUTO,FLAGS\n";
    for (std::size_t i = 0; i < truth.size(); ++i)
      f << i + 1 << "," << truth[i].x + 1 << "," << truth[i].y + 1 << "," << truth[i].flux
        << ",0\n";
  }
  const std::string args = dir.file("sex.csv") + " " + dir.file("truth.csv") + " --json ";
  auto r = score(args + dir.file("a.json") + " --one-based");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  Json j = read_json(dir.file("a.json"));
  EXPECT_EQ(j["columns"]["x"].string, "X_IMAGE");
  EXPECT_EQ(j["columns"]["flux"].string, "FLUX_AUTO");
  EXPECT_EQ(j["columns"]["flags"].string, "FLAGS");
  EXPECT_TRUE(j["columns"]["one_based"].boolean);
  EXPECT_NEAR(j["overall"]["centroid_rms_px"].num(), 0.0, 1e-9);
  // Without --one-based: a note, and every star 1 px off per axis (still within 1.5 px).
  r = score(args + dir.file("b.json"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("--one-based"), std::string::npos) << r.out;
  j = read_json(dir.file("b.json"));
  EXPECT_NEAR(j["overall"]["centroid_rms_px"].num(), 1.0, 1e-9);
  // Explicit columns override detection; --json - prints only the JSON.
  r = score(args + "- --x-col NUMBER --y-col Y_IMAGE --flux-col FLUX_AUTO --match-radius 2");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // (run_command merges stderr, which carries the 1-based note: skip to the document.)
  const std::string doc = r.out.substr(r.out.find('{'));
  j = JsonParser(doc).parse();
  EXPECT_EQ(j["columns"]["x"].string, "NUMBER");
  EXPECT_EQ(j["config"]["match_radius_px"].num(), 2.0);
  EXPECT_EQ(j["counts"]["n_matched"].num(), 0);
}

TEST(ScoreCli, InputErrorsAreClear) {
  test::TempDir dir;
  write_truth(dir.file("truth.csv"));
  std::ofstream(dir.file("cat.h5")) << "not really";
  auto r = score(dir.file("cat.h5") + " " + dir.file("truth.csv"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find(dir.file("cat.h5") + ": is not an HDF5 file"), std::string::npos) << r.out;
  // An HDF5 file that is not a psfphot catalogue.
  H5Fclose(H5Fcreate(dir.file("foreign.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  r = score(dir.file("foreign.h5") + " " + dir.file("truth.csv"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find(dir.file("foreign.h5")), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("not a psfphot catalogue"), std::string::npos) << r.out;
  // Flat response of a truth row must be positive.
  {
    std::ifstream in(dir.file("truth.csv"));
    std::ofstream out(dir.file("truth_f0.csv"));
    for (std::string line; std::getline(in, line);)
      out << line
          << (line.empty() || line[0] == '#'  ? ""
              : line.rfind("star_id", 0) == 0 ? ",flat_response"
                                              : ",0")
          << "\n";
  }

  std::ofstream(dir.file("bad.csv")) << "x,y,flux\n1,2,3\n4,five,6\n";
  r = score(dir.file("bad.csv") + " " + dir.file("truth.csv"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find(dir.file("bad.csv") + ":3: column 'y' (column 2): 'five'"),
            std::string::npos)
      << r.out;

  r = score(dir.file("bad.csv") + " " + dir.file("truth.csv") + " --frame 0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("--frame applies to HDF5 catalogues only"), std::string::npos) << r.out;

  std::ofstream(dir.file("ok.csv")) << "x,y,flux\n1,2,3\n";
  r = score(dir.file("ok.csv") + " " + dir.file("truth_f0.csv"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find(dir.file("truth_f0.csv") + ":11: flat_response must be a finite number > 0"),
            std::string::npos)
      << r.out;

  std::ofstream(dir.file("nocols.csv")) << "a,b\n1,2\n";
  r = score(dir.file("nocols.csv") + " " + dir.file("truth.csv"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("--x-col"), std::string::npos) << r.out;

  std::ofstream(dir.file("t2.csv"))
      << "# width=10\nx,y,flux,snr,saturated,psf_sigma_px,sky_var_adu2\n";
  r = score(dir.file("nocols.csv") + " " + dir.file("t2.csv") + " --x-col a --y-col b");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("no '# height=...'"), std::string::npos) << r.out;
}

// A small simulated night run by `psfphot run` into an HDF5 catalogue, scored frame by frame
// against the truth, and compared with scoring `psfphot frame`'s CSV of the same frame (the
// two measure identically: PipelineAccuracy.FrameCommandMeasuresLikeTheNightRunner).
class ScoreHdf5 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    const std::string exe = test::psfphot_exe(), d = night();
    auto run = [](const std::string& cmd, int want = 0) {
      const auto r = test::run_command(cmd);
      EXPECT_EQ(r.exit_code, want) << cmd << "\n" << r.out;
      return r.exit_code == want;
    };
    ok_ = run(exe + " simulate --out " + d +
              " --frames 2 --size 512 --stars 400 --seed 23 --darks 3 --flats 3 -q") &&
          run(exe + " master dark " + d + "/darks/*.fits -o " + d + "/mdark.fits") &&
          run(exe + " master flat " + d + "/flats/*.fits --dark " + d + "/mdark.fits -o " + d +
              "/mflat.fits") &&
          run(exe + " run " + d + "/night.toml -q --set night.darks=[] --set night.flats=[] " +
              "--set night.master_dark=" + d + "/mdark.fits --set night.master_flat=" + d +
              "/mflat.fits -o " + d + "/run.h5") &&
          run(exe + " frame " + d + "/science/sci_0001.fits --dark " + d + "/mdark.fits --flat " +
              d + "/mflat.fits -o " + d + "/sci_0001.csv");
    // A night of one good and one unreadable frame, and a night of one frame.
    std::filesystem::create_directories(d + "/bad");
    std::ofstream(d + "/bad/broken.fits") << "not a FITS file";
    const std::string masters = "master_dark = \"mdark.fits\"\nmaster_flat = \"mflat.fits\"\n";
    std::ofstream(d + "/withbad.toml")
        << "[night]\nscience = [\"science/sci_0000.fits\", \"bad/broken.fits\"]\n"
        << masters << "output = \"withbad.h5\"\n";
    std::ofstream(d + "/one.toml") << "[night]\nscience = [\"science/sci_0000.fits\"]\n"
                                   << masters << "output = \"one.h5\"\n";
    ok_ = ok_ && run(exe + " run " + d + "/withbad.toml -q", 3) &&
          run(exe + " run " + d + "/one.toml -q");
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string night() { return dir_->file("night"); }
  static std::string truth(int i) {
    return night() + "/truth/sci_000" + std::to_string(i) + ".csv";
  }
  // `psfphot score ARGS --json -`: the document (stderr notes before it skipped).
  static Json score_json(const std::string& args) {
    const auto r = score(args + " --json -");
    EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.out;
    const auto brace = r.out.find('{');
    if (r.exit_code != 0 || brace == std::string::npos) return Json{};
    return JsonParser(r.out.substr(brace)).parse();
  }
  static test::TempDir* dir_;
  static bool ok_;
};
test::TempDir* ScoreHdf5::dir_ = nullptr;
bool ScoreHdf5::ok_ = false;

// Every number of the two documents agrees: the frame CSV prints positions and fluxes with
// 10 significant digits (5e-8 px at x ~ 500), the catalogue holds the doubles, so an RMS of
// 0.005 px may move by 1e-5 relative and a median bias of ~1e-4 px by 5e-8 absolute.
// Counts (integers below 10^4) must agree exactly under this tolerance.
void expect_same_numbers(const Json& a, const Json& b, const std::string& where, int& n) {
  ASSERT_EQ(a.kind, b.kind) << where;
  switch (a.kind) {
    case Json::kNumber:
      EXPECT_NEAR(a.number, b.number, 1e-4 * std::abs(b.number) + 1e-6) << where;
      ++n;
      break;
    case Json::kArray:
      ASSERT_EQ(a.array.size(), b.array.size()) << where;
      for (std::size_t i = 0; i < a.array.size(); ++i)
        expect_same_numbers(a.array[i], b.array[i], where + "[" + std::to_string(i) + "]", n);
      break;
    case Json::kObject:
      ASSERT_EQ(a.object.size(), b.object.size()) << where;
      for (const auto& [k, v] : a.object) {
        if (k == "catalogue" || k == "catalogue_frame") continue;  // differ by construction
        expect_same_numbers(v, b[k], where + "." + k, n);
      }
      break;
    default: EXPECT_EQ(a.string, b.string) << where; EXPECT_EQ(a.boolean, b.boolean) << where;
  }
}

TEST_F(ScoreHdf5, FrameOfTheNightCatalogueScoresLikeTheFrameCsv) {
  ASSERT_TRUE(ok_);
  const std::string d = night();
  const Json h5 = score_json(d + "/run.h5 " + truth(1) + " --frame sci_0001");
  const Json csv = score_json(d + "/sci_0001.csv " + truth(1));
  ASSERT_EQ(h5.kind, Json::kObject);
  ASSERT_EQ(csv.kind, Json::kObject);
  EXPECT_EQ(h5["catalogue_frame"]["frame_id"].num(), 1);
  EXPECT_EQ(h5["catalogue_frame"]["name"].string, "sci_0001");
  EXPECT_EQ(h5["columns"]["x"].string, "centroid_x");
  EXPECT_EQ(h5["columns"]["flux"].string, "psf_flux");
  EXPECT_EQ(h5["columns"]["flags"].string, "flags");
  EXPECT_GT(h5["counts"]["n_matched"].num(), 80);  // a real comparison, not two empty ones
  EXPECT_GT(h5["headline"]["n_errors"].num(), 50);
  int n = 0;
  expect_same_numbers(h5, csv, "", n);
  EXPECT_GT(n, 250);
  // By id, the same document.
  const Json by_id = score_json(d + "/run.h5 " + truth(1) + " --frame 1");
  int n2 = 0;
  expect_same_numbers(by_id, h5, "", n2);
  EXPECT_EQ(by_id["catalogue_frame"]["frame_id"].num(), 1);
  // Frame 0 against its own truth; and the only frame of a catalogue (one.h5: sci_0000 run
  // alone) is the default, and measures the same.
  const Json f0 = score_json(d + "/run.h5 " + truth(0) + " --frame sci_0000");
  EXPECT_EQ(f0["catalogue_frame"]["frame_id"].num(), 0);
  EXPECT_GT(f0["headline"]["completeness_clean"].num(), 0.95);
  const Json one = score_json(d + "/one.h5 " + truth(0));
  EXPECT_EQ(one["catalogue_frame"]["frame_id"].num(), 0);
  EXPECT_EQ(one["catalogue_frame"]["name"].string, "sci_0000");
  int n3 = 0;
  expect_same_numbers(one, f0, "", n3);
}

TEST_F(ScoreHdf5, ErrorsNameTheFileAndTheProblem) {
  ASSERT_TRUE(ok_);
  const std::string d = night(), cat = d + "/run.h5";
  // Two frames and no --frame: how to choose, with the truth file's name as the hint.
  auto r = score(cat + " " + truth(1));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find(cat + ": the catalogue holds 2 frames; choose one with --frame NAME"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("--frame sci_0001"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("0 sci_0000, 1 sci_0001"), std::string::npos) << r.out;
  r = score(cat + " " + truth(1) + " --frame 7");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find(cat + ": no frame with id 7"), std::string::npos) << r.out;
  r = score(cat + " " + truth(1) + " --frame sci_0009");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find(cat + ": no frame named 'sci_0009'"), std::string::npos) << r.out;
  r = score(cat + " " + truth(1) + " --frame 1 --x-col no_such_column");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find(cat + ": no numeric star column 'no_such_column'"), std::string::npos)
      << r.out;
  // A frame that failed has nothing to score.
  r = score(d + "/withbad.h5 " + truth(0) + " --frame broken");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find(d + "/withbad.h5: frame 0 (broken) has no stars to score: it failed "
                           "(read-failed"),
            std::string::npos)
      << r.out;
  // The truth of another frame than the one scored: a note (not an error).
  r = score(cat + " " + truth(1) + " --frame 0 --json -");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("note: scoring frame 0 (sci_0000) against"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace psfphot
