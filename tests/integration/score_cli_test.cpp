// `psfphot score` end to end: truth and catalogue CSVs with known offsets written to a
// temporary folder, the command run, its JSON read back and checked against the numbers
// the offsets imply.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
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
  EXPECT_EQ(j["schema_version"].num(), 1);
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
  }
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
  EXPECT_NE(r.out.find("HDF5 catalogues: not yet supported"), std::string::npos) << r.out;

  std::ofstream(dir.file("bad.csv")) << "x,y,flux\n1,2,3\n4,five,6\n";
  r = score(dir.file("bad.csv") + " " + dir.file("truth.csv"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find(dir.file("bad.csv") + ":3: column 'y' (column 2): 'five'"),
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

}  // namespace
}  // namespace psfphot
