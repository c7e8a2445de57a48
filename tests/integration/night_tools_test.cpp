// psfphot info / query / quicklook and docs/python.md on a real catalogue: a small night
// simulated with known stars, run by `psfphot run`, then asked and pictured.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "psfphot/algo/quicklook.hpp"
#include "psfphot/io/catalogue.hpp"
#include "psfphot/io/png.hpp"
#include "psfphot/io/table_csv.hpp"
#include "support/test_support.hpp"
#include "unit/io/catalogue_fixtures.hpp"

namespace psfphot {
namespace {
namespace fs = std::filesystem;
using test::run_command;

constexpr int kSize = 256;
constexpr std::int64_t kFrame = 1;

class NightTools : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    const std::string exe = test::psfphot_exe();
    const auto sim = run_command(exe + " simulate -q --out " + night() + " --frames 3 --size " +
                                 std::to_string(kSize) + " --stars 40 --seed 11 --threads 1");
    ASSERT_EQ(sim.exit_code, 0) << sim.out;
    const auto run = run_command(exe + " run " + night() + "/night.toml --threads 1 -o " + cat());
    ASSERT_EQ(run.exit_code, 0) << run.out;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string night() { return dir_->file("night"); }
  static std::string cat() { return dir_->file("night.h5"); }
  static std::string psfphot(const std::string& args) { return test::psfphot_exe() + " " + args; }
  static test::TempDir* dir_;
};
test::TempDir* NightTools::dir_ = nullptr;

TEST_F(NightTools, InfoSummarisesFramesStarsAndConfig) {
  io::CatalogueReader r(cat());
  const auto res = run_command(psfphot("info " + cat()));
  ASSERT_EQ(res.exit_code, 0) << res.out;
  EXPECT_NE(res.out.find("frames      3: 3 ok, 0 failed"), std::string::npos) << res.out;
  EXPECT_NE(res.out.find("stars       " + std::to_string(r.star_rows()) + " "), std::string::npos)
      << res.out;
  EXPECT_NE(res.out.find("psf_sigma_px"), std::string::npos);
  EXPECT_NE(res.out.find("[night] science = ['science/*.fits']"), std::string::npos) << res.out;
  const auto cfg = run_command(psfphot("info --config " + cat()));
  EXPECT_EQ(cfg.out, r.info().config_text + (r.info().config_text.back() == '\n' ? "" : "\n"));
  const auto per = run_command(psfphot("info --per-frame " + cat()));
  EXPECT_NE(per.out.find("sci_0002.fits"), std::string::npos);
}

// Failures with their messages, skipped frames apart, a redone frame counted once.
TEST(InfoCommand, ListsFailuresAndSkippedFrames) {
  test::TempDir dir;
  const std::string p = dir.file("broken.h5");
  {
    io::CatalogueWriter w(p, io::CatalogueMode::kCreate);
    w.append(test::fixture_frame(0, 5));
    w.append(test::fixture_failed_frame(1, FrameStatus::kReadFailed, "truncated: 2880 of 8640"));
    FrameResult skipped = test::fixture_failed_frame(2, FrameStatus::kSkipped, "");
    skipped.failed_step = "";
    w.append(skipped);
    w.append(test::fixture_frame(3, 7));
    FrameResult later = test::fixture_failed_frame(4, FrameStatus::kSkipped, "");
    later.failed_step = "";
    w.append(later);
    w.append(test::fixture_frame(4, 2));  // redone after a resume: the later row counts
    w.close();
  }
  const auto res = run_command(test::psfphot_exe() + " info --per-frame " + p);
  ASSERT_EQ(res.exit_code, 0) << res.out;
  EXPECT_NE(res.out.find("frames      5: 3 ok, 1 failed, 1 skipped"), std::string::npos) << res.out;
  EXPECT_NE(res.out.find("stars       14 "), std::string::npos) << res.out;
  EXPECT_NE(res.out.find("frame 1 read-failed: read: truncated: 2880 of 8640 "
                         "(/data/night/broken_1.fits)"),
            std::string::npos)
      << res.out;
  const auto bad = run_command(test::psfphot_exe() + " info " + dir.file("none.h5"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find(dir.file("none.h5")), std::string::npos) << bad.out;
}

TEST_F(NightTools, QueryOneFrameAsCsvEqualsTheCatalogue) {
  io::CatalogueReader r(cat());
  const std::vector<Star> want = r.stars_for_frames({kFrame});
  ASSERT_GT(want.size(), 10u);
  const std::string out = dir_->file("q.csv");
  const auto res = run_command(psfphot("query " + cat() + " --frame " + std::to_string(kFrame) +
                                       " --format csv --columns star_id,psf_flux -o " + out));
  ASSERT_EQ(res.exit_code, 0) << res.out;
  const io::CsvTable t = io::CsvTable::read(out);
  ASSERT_EQ(t.rows(), want.size());
  const auto ids = t.numbers("star_id"), flux = t.numbers("psf_flux");
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(ids[i], want[i].star_id);
    if (std::isnan(want[i].psf_flux))
      EXPECT_TRUE(std::isnan(flux[i]));
    else
      EXPECT_EQ(flux[i], want[i].psf_flux);  // shortest round-trip text
  }
  // Filters: --where and --flags none --sort --limit against the same stars.
  std::vector<const Star*> bright;
  for (const Star& s : want)
    if (s.psf_flux > 5000 && s.flags == 0) bright.push_back(&s);
  std::sort(bright.begin(), bright.end(),
            [](const Star* a, const Star* b) { return a->psf_flux > b->psf_flux; });
  const auto q =
      run_command(psfphot("query " + cat() + " --frame " + std::to_string(kFrame) +
                          " --where 'psf_flux > 5000' --flags none --sort psf_flux:desc" +
                          " --limit 3 --format csv --columns star_id 2>&1"));
  ASSERT_EQ(q.exit_code, 0) << q.out;
  std::string expect = "star_id\n";
  for (std::size_t i = 0; i < std::min<std::size_t>(3, bright.size()); ++i)
    expect += std::to_string(bright[i]->star_id) + "\n";
  EXPECT_EQ(q.out, expect);
}

TEST_F(NightTools, QueryRefusesUnknownColumnsAndFrames) {
  auto res = run_command(psfphot("query " + cat() + " --where 'psf_flx > 1000'"));
  EXPECT_EQ(res.exit_code, 2);
  EXPECT_NE(res.out.find("unknown column 'psf_flx'"), std::string::npos) << res.out;
  EXPECT_NE(res.out.find("psf_flux"), std::string::npos);
  res = run_command(psfphot("query " + cat() + " --columns star_id,fluxx"));
  EXPECT_EQ(res.exit_code, 2);
  EXPECT_NE(res.out.find("unknown column 'fluxx'"), std::string::npos) << res.out;
  res = run_command(psfphot("query " + cat() + " --frame 42"));
  EXPECT_EQ(res.exit_code, 2);
  EXPECT_NE(res.out.find("frame 42 is not in"), std::string::npos) << res.out;
  res = run_command(psfphot("query " + cat() + " --flags crowdy"));
  EXPECT_EQ(res.exit_code, 2);
  EXPECT_NE(res.out.find("unknown flag 'crowdy'"), std::string::npos) << res.out;
}

bool is_grey(const Rgb& c) {
  return c.r == c.g && c.g == c.b;
}

TEST_F(NightTools, QuicklookCirclesLandOnTheTrueStars) {
  const std::string out = dir_->file("ql");
  const auto res = run_command(psfphot("quicklook " + cat() + " --frame " + std::to_string(kFrame) +
                                       " -o " + out + " --threads 1"));
  ASSERT_EQ(res.exit_code, 0) << res.out;
  for (const char* f :
       {"frame_1.png", "cutouts_1.png", "background_1.png", "rms_1.png", "night.png"}) {
    const RgbImage p = io::read_png(out + "/" + f);
    EXPECT_GE(p.width(), 200) << f;
    EXPECT_GE(p.height(), 200) << f;
    // A picture, not a blank: many pixels differ from the most common colour.
    std::map<std::uint32_t, int> colours;
    for (int y = 0; y < p.height(); ++y)
      for (int x = 0; x < p.width(); ++x) ++colours[p(x, y).r << 16 | p(x, y).g << 8 | p(x, y).b];
    int most = 0;
    for (const auto& [c, n] : colours) most = std::max(most, n);
    EXPECT_GT(p.width() * p.height() - most, p.width() * p.height() / 100) << f;
    EXPECT_GE(colours.size(), std::string(f) == "night.png" ? 4u : 50u) << f;
  }
  const RgbImage img = io::read_png(out + "/frame_1.png");
  ASSERT_EQ(img.width(), kSize);
  ASSERT_EQ(img.height(), kSize);

  io::CatalogueReader r(cat());
  const std::vector<Star> stars = r.stars_for_frames({kFrame});
  double sigma = 0;
  for (const auto& f : r.frames())
    if (f.frame_id == kFrame) sigma = f.psf_sigma_px;
  const double radius = std::max(4.0, 3.0 * sigma);
  const io::CsvTable truth = io::CsvTable::read(night() + "/truth/sci_0001.csv");
  const auto tx = truth.numbers("x"), ty = truth.numbers("y");
  auto pic = [&](int x, int y) { return img(x, frame_to_picture_y(y, kSize)); };

  // Around every true star the pipeline found (and no other star near), the ring at the
  // circle radius has the star's colour: green without flags, red with.
  int checked = 0;
  for (std::size_t t = 0; t < tx.size(); ++t) {
    const Star* match = nullptr;
    int near = 0;
    for (const Star& s : stars) {
      const double d = std::hypot(s.centroid_x - tx[t], s.centroid_y - ty[t]);
      if (d < 1.5) match = &s;
      if (d < 2 * radius + 3) ++near;
    }
    if (!match || near != 1) continue;
    if (tx[t] < radius + 2 || ty[t] < radius + 2 || tx[t] > kSize - radius - 3 ||
        ty[t] > kSize - radius - 3)
      continue;
    const Rgb want = match->flags ? colour::kRed : colour::kGreen;
    int hits = 0;
    for (int a = 0; a < 16; ++a) {
      const double ang = a * 2 * M_PI / 16;
      const int x = static_cast<int>(std::lround(tx[t] + radius * std::cos(ang)));
      const int y = static_cast<int>(std::lround(ty[t] + radius * std::sin(ang)));
      bool hit = false;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) hit = hit || pic(x + dx, y + dy) == want;
      hits += hit;
    }
    EXPECT_GE(hits, 15) << "true star at " << tx[t] << "," << ty[t];
    // The star itself is not painted over.
    EXPECT_TRUE(
        is_grey(pic(static_cast<int>(std::lround(tx[t])), static_cast<int>(std::lround(ty[t])))));
    ++checked;
  }
  EXPECT_GE(checked, 10);
  // Away from every catalogue star the picture is the grey frame (or a mask outline).
  int away = 0;
  for (int y = 0; y < kSize; ++y)
    for (int x = 0; x < kSize; ++x) {
      bool far = true;
      for (const Star& s : stars) {
        const double cx = std::isnan(s.centroid_x) ? s.peak_x : s.centroid_x;
        const double cy = std::isnan(s.centroid_y) ? s.peak_y : s.centroid_y;
        if (std::hypot(x - cx, y - cy) < radius + 2.5) far = false;
      }
      if (!far) continue;
      ++away;
      const Rgb c = pic(x, y);
      ASSERT_TRUE(is_grey(c) || c == colour::kCyan) << x << "," << y;
    }
  EXPECT_GT(away, kSize * kSize / 2);
}

TEST_F(NightTools, QuicklookNamesTheMissingRawFrame) {
  // A copy of the night whose frame 2 has been removed.
  const std::string copy = dir_->file("moved");
  fs::copy(night(), copy, fs::copy_options::recursive);
  const std::string c2 = copy + "/night.h5";
  const auto run = run_command(psfphot("run " + copy + "/night.toml --threads 1 -o " + c2));
  ASSERT_EQ(run.exit_code, 0) << run.out;
  fs::remove(copy + "/science/sci_0002.fits");
  const auto res = run_command(psfphot("quicklook " + c2 + " --frame 2 -o " + copy + "/ql"));
  EXPECT_EQ(res.exit_code, 1);
  EXPECT_NE(res.out.find(copy + "/science/sci_0002.fits"), std::string::npos) << res.out;
  EXPECT_NE(res.out.find("no longer there"), std::string::npos) << res.out;
  const auto bad = run_command(psfphot("quicklook " + c2 + " --frame 9 -o " + copy + "/ql"));
  EXPECT_EQ(bad.exit_code, 2);
  // The whole night moved: its config at the new place finds frame 1 there.
  const std::string moved = dir_->file("moved-again");
  fs::rename(copy, moved);
  const auto again = run_command(psfphot("quicklook " + moved + "/night.h5 --frame 1 -o " + moved +
                                         "/ql --config " + moved + "/night.toml"));
  EXPECT_EQ(again.exit_code, 0) << again.out;
  EXPECT_NE(again.out.find(moved + "/science/sci_0001.fits"), std::string::npos) << again.out;
  EXPECT_EQ(io::read_png(moved + "/ql/frame_1.png").width(), kSize);
  // Without --config the old place is named.
  const auto old =
      run_command(psfphot("quicklook " + moved + "/night.h5 --frame 1 -o " + moved + "/ql2"));
  EXPECT_EQ(old.exit_code, 1);
  EXPECT_NE(old.out.find(copy + "/science/sci_0001.fits of frame 1 is no longer there"),
            std::string::npos)
      << old.out;
}

// Every ```python block of docs/python.md, run on the catalogue, with checks appended.
TEST_F(NightTools, PythonDocSnippetsRunOnARealCatalogue) {
  constexpr const char* kPython = "/usr/bin/python3";
  const auto have = run_command(std::string(kPython) + " -c 'import h5py, astropy, pandas'");
  if (have.exit_code != 0)
    GTEST_SKIP() << kPython << " lacks h5py/astropy/pandas (apt-get install python3-h5py "
                 << "python3-astropy python3-pandas): " << have.out;
  std::ifstream in(std::string(PSFPHOT_SOURCE_DIR) + "/docs/python.md");
  ASSERT_TRUE(in) << "docs/python.md";
  std::vector<std::string> blocks;
  std::string line, cur;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!inside && line == "```python") {
      inside = true;
      cur.clear();
    } else if (inside && line == "```") {
      inside = false;
      blocks.push_back(cur);
    } else if (inside) {
      cur += line + "\n";
    }
  }
  ASSERT_GE(blocks.size(), 3u) << "h5py, astropy and pandas snippets";
  io::CatalogueReader r(cat());
  std::int64_t frame_rows = 0;
  for (const auto& f : r.frames()) frame_rows += f.frame_id == kFrame ? f.stars_count : 0;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const std::string code = std::regex_replace(blocks[i], std::regex("night\\.h5"), cat());
    std::string check = "\nassert len(stars) == " + std::to_string(r.star_rows()) + "\n";
    if (code.find("one =") != std::string::npos)
      check = "\nassert len(one) == " + std::to_string(frame_rows) +
              " and (one['frame_id'] == " + std::to_string(kFrame) + ").all()\n";
    else if (code.find("frames") != std::string::npos)
      check += "assert len(frames) == " + std::to_string(r.frames().size()) + "\n";
    if (code.find("Table.read") != std::string::npos)
      check += "assert str(stars['psf_flux'].unit) == 'adu'\n";
    const std::string file = dir_->file("snippet" + std::to_string(i) + ".py");
    std::ofstream(file) << code << check << "print('SNIPPET-OK')\n";
    const auto res = run_command(std::string(kPython) + " " + file);
    EXPECT_EQ(res.exit_code, 0) << "block " << i << ":\n" << code << res.out;
    EXPECT_NE(res.out.find("SNIPPET-OK"), std::string::npos) << res.out;
  }
}

}  // namespace
}  // namespace psfphot
