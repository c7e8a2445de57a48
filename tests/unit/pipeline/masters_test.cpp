#include "psfphot/pipeline/masters.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "psfphot/algo/stats.hpp"
#include "psfphot/io/fits.hpp"
#include "psfphot/pipeline/process_frame.hpp"
#include "support/synth.hpp"
#include "support/test_support.hpp"

namespace psfphot::pipeline {
namespace {

using test::TempDir;

// Darks: bias + a fixed pattern + noise, each with a few cosmic-ray hits; 150 rows so the
// 64-row stacking blocks do not divide the frame.
constexpr int kW = 41, kH = 150;

float pattern(int x, int y) {
  return static_cast<float>(500.0 + 0.5 * x + 0.25 * y);
}

std::vector<std::string> write_darks(const TempDir& dir, int n, double exptime_s) {
  std::vector<std::string> paths;
  std::mt19937 rng(11);
  std::normal_distribution<double> noise(0.0, 3.0);
  for (int i = 0; i < n; ++i) {
    Image<float> img(kW, kH);
    for (int y = 0; y < kH; ++y)
      for (int x = 0; x < kW; ++x)
        img(x, y) = static_cast<float>(std::round(pattern(x, y) + noise(rng)));
    for (int k = 0; k < 20; ++k) img((7 * k + 3 * i) % kW, (13 * k + 5 * i) % kH) = 60000.f;
    const std::string p = dir.file("dark" + std::to_string(i) + ".fits");
    io::write_fits(p, img.cview(), {io::card("EXPTIME", exptime_s)});
    paths.push_back(p);
  }
  return paths;
}

// Stacking a block of rows at a time must give exactly what stacking whole frames gives.
TEST(Masters, StreamedDarkEqualsWholeFrameStack) {
  TempDir dir;
  const auto paths = write_darks(dir, 5, 30.0);
  CombineConfig cfg;
  double t = 0;
  const Image<float> master = build_master_dark(paths, cfg, &t);
  EXPECT_DOUBLE_EQ(t, 30.0);
  std::vector<io::FitsImage> frames;
  std::vector<ImageView<const float>> views;
  for (const auto& p : paths) frames.push_back(io::read_fits(p));
  for (const auto& f : frames) views.push_back(f.pixels.cview());
  const Image<float> whole = combine_frames(views, cfg);
  ASSERT_EQ(master.width(), kW);
  ASSERT_EQ(master.height(), kH);
  int differ = 0;
  double worst = 0;
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) {
      differ += master(x, y) != whole(x, y);
      worst = std::max(worst, std::abs(double(master(x, y)) - pattern(x, y)));
    }
  EXPECT_EQ(differ, 0);
  // And the clipping removed every cosmic ray: within 5 noise sigmas of the pattern
  // (the clipped mean of 4-5 frames of sigma 3 has sd <= 1.5).
  EXPECT_LT(worst, 7.5);
}

TEST(Masters, DarksOfAnotherExposureOrShapeAreNamed) {
  TempDir dir;
  const auto paths = write_darks(dir, 3, 30.0);
  Image<float> small(kW, kH - 1, 500.f);
  const std::string odd = dir.file("odd.fits");
  io::write_fits(odd, small.cview(), {io::card("EXPTIME", 30.0)});
  auto with_odd = paths;
  with_odd.push_back(odd);
  try {
    build_master_dark(with_odd, CombineConfig{}, nullptr);
    FAIL() << "expected a shape error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("odd.fits"), std::string::npos) << e.what();
  }
  Image<float> longer(kW, kH, 500.f);
  const std::string slow = dir.file("slow.fits");
  io::write_fits(slow, longer.cview(), {io::card("EXPTIME", 90.0)});
  auto with_slow = paths;
  with_slow.push_back(slow);
  try {
    build_master_dark(with_slow, CombineConfig{}, nullptr);
    FAIL() << "expected an EXPTIME error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("slow.fits"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("EXPTIME"), std::string::npos) << e.what();
  }
}

// Flats k_i * R + dark (scaled by exposure time): the master is R / median(R), whatever
// the k_i, once the dark scaled by each flat's EXPTIME is removed.
TEST(Masters, StreamedFlatRemovesTheScaledDarkAndNormalises) {
  TempDir dir;
  Image<float> dark(kW, kH);
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) dark(x, y) = static_cast<float>(10.0 + (x % 5));
  auto response = [](int x, int y) {
    return 0.8 + 0.4 * std::exp(-((x - 20.0) * (x - 20.0) + (y - 75.0) * (y - 75.0)) / 2000.0);
  };
  std::vector<std::string> paths;
  const double ks[] = {10000, 14000, 9000};
  const double ts[] = {2.0, 3.0, 1.0};  // the dark is for 1 s
  for (int i = 0; i < 3; ++i) {
    Image<float> f(kW, kH);
    for (int y = 0; y < kH; ++y)
      for (int x = 0; x < kW; ++x)
        f(x, y) = static_cast<float>(ks[i] * response(x, y) + ts[i] * dark(x, y));
    paths.push_back(dir.file("flat" + std::to_string(i) + ".fits"));
    io::write_fits(paths.back(), f.cview(), {io::card("EXPTIME", ts[i])});
  }
  const Image<float> master = build_master_flat(paths, CombineConfig{}, &dark, 1.0);
  std::vector<double> r;
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) r.push_back(response(x, y));
  const double med = median_inplace(r);  // stats.hpp, tested on its own
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x)
      ASSERT_NEAR(master(x, y), response(x, y) / med, 2e-5) << x << "," << y;
}

// A flat without EXPTIME cannot have the dark scaled to it: an error naming the flat and
// both times (it used to get the dark unscaled, silently); a dark without EXPTIME likewise.
// With scaling off (calibration.scale_dark = false, `master flat --unscaled-dark`) the dark
// is subtracted as it is, whatever the times.
TEST(Masters, FlatWithoutExposureTimeFailsByNameUnlessTheDarkIsUnscaled) {
  TempDir dir;
  const Image<float> dark(kW, kH, 50.f);
  std::vector<std::string> paths;
  for (int i = 0; i < 2; ++i) {
    Image<float> f(kW, kH, static_cast<float>(10000 + 1000 * i));
    paths.push_back(dir.file("flat" + std::to_string(i) + ".fits"));
    // flat1 has no EXPTIME card.
    io::write_fits(
        paths.back(), f.cview(),
        i == 0 ? std::vector<HeaderCard>{io::card("EXPTIME", 5.0)} : std::vector<HeaderCard>{});
  }
  auto message = [&](const CombineConfig& cc, double t_dark) -> std::string {
    try {
      build_master_flat(paths, cc, &dark, t_dark);
    } catch (const CalibrationError& e) {
      return e.what();
    }
    return "";
  };
  const std::string m = message(CombineConfig{}, 60.0);
  EXPECT_NE(m.find("flat1.fits"), std::string::npos) << m;
  EXPECT_NE(m.find("EXPTIME"), std::string::npos) << m;
  EXPECT_NE(m.find("60"), std::string::npos) << m;
  EXPECT_NE(m.find("scale_dark = false"), std::string::npos) << m;
  // The dark's time missing: the first flat already fails.
  const std::string md = message(CombineConfig{}, std::nan(""));
  EXPECT_NE(md.find("flat0.fits"), std::string::npos) << md;
  // Unscaled: builds, and the dark went out as it is (flat_i - 50, each normalised to 1).
  CombineConfig off;
  off.scale_dark_by_exptime = false;
  EXPECT_EQ(message(off, 60.0), "");
  const Image<float> master = build_master_flat(paths, off, &dark, 60.0);
  EXPECT_NEAR(master(7, 9), 1.0, 1e-6);
  // No dark: nothing to scale, no times needed.
  EXPECT_NO_THROW(build_master_flat(paths, CombineConfig{}, nullptr, std::nan("")));
}

template <typename T>
bool same_bits(const Image<T>& a, const Image<T>& b) {
  return a.width() == b.width() && a.height() == b.height() &&
         (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

std::vector<std::string> write_flats(const TempDir& dir, int n) {
  std::vector<std::string> paths;
  std::mt19937 rng(5);
  std::normal_distribution<double> noise(0.0, 40.0);
  for (int i = 0; i < n; ++i) {
    Image<float> f(kW, kH);
    for (int y = 0; y < kH; ++y)
      for (int x = 0; x < kW; ++x)
        f(x, y) = static_cast<float>((9000.0 + 700.0 * i) * (1.0 + 0.001 * x) + noise(rng));
    f(3, 4 + i) = std::numeric_limits<float>::quiet_NaN();
    paths.push_back(dir.file("flat" + std::to_string(i) + ".fits"));
    io::write_fits(paths.back(), f.cview(), {io::card("EXPTIME", 1.0 + i)});
  }
  return paths;
}

TEST(Masters, RowBandsCoverTheRowsOnceInOrder) {
  for (int h : {0, 1, 2, 7, 150, 2048})
    for (int parts : {1, 2, 3, 4, 7, 200}) {
      int next = 0;
      for (int p = 0; p < parts; ++p) {
        const RowBand b = row_band(h, p, parts);
        EXPECT_EQ(b.y0, next) << h << " " << parts << " " << p;
        EXPECT_GE(b.y1, b.y0);
        EXPECT_LE(b.y1 - b.y0, h / parts + 1);
        next = b.y1;
      }
      EXPECT_EQ(next, h) << h << " " << parts;
    }
}

// Each band of the master dark and flat, built alone, is bit for bit those rows of the
// whole master: odd row counts (150 rows: bands of 75, 50, 22 or 21, ...; none a multiple
// of the 64-row stacking block) and more bands than rows (some empty).
TEST(Masters, BandsAreTheRowsOfTheWholeMasterBitForBit) {
  TempDir dir;
  const auto darks = write_darks(dir, 5, 2.0);
  const auto flats = write_flats(dir, 4);
  double t = 0;
  const Image<float> dark = build_master_dark(darks, CombineConfig{}, &t);
  const Image<float> flat = build_master_flat(flats, CombineConfig{}, &dark, t);
  const std::vector<double> medians = flat_medians(flats, &dark, t, 0, 1);
  for (int parts : {2, 3, 7, kH + 5}) {
    std::vector<double> shared(flats.size(), 0.0);
    for (int p = 0; p < parts; ++p) {
      const std::vector<double> mine = flat_medians(flats, &dark, t, p, parts);
      for (std::size_t i = 0; i < mine.size(); ++i)
        if (static_cast<int>(i) % parts == p) shared[i] = mine[i];
    }
    ASSERT_EQ(std::memcmp(shared.data(), medians.data(), shared.size() * sizeof(double)), 0);
    for (int p = 0; p < parts; ++p) {
      const RowBand b = row_band(kH, p, parts);
      double tp = 0;
      int w = 0, h = 0;
      const Image<float> db = build_master_dark_rows(darks, CombineConfig{}, &tp, p, parts, &w, &h);
      const Image<float> fb =
          build_master_flat_rows(flats, CombineConfig{}, &dark, t, shared, p, parts);
      EXPECT_EQ(tp, t);
      EXPECT_EQ(w, kW);
      EXPECT_EQ(h, kH);
      ASSERT_EQ(db.height(), b.y1 - b.y0);
      ASSERT_EQ(fb.height(), b.y1 - b.y0);
      const std::size_t off = static_cast<std::size_t>(b.y0) * kW, n = db.size();
      EXPECT_TRUE(n == 0 || std::memcmp(db.data(), dark.data() + off, n * sizeof(float)) == 0)
          << parts << " " << p;
      EXPECT_TRUE(n == 0 || std::memcmp(fb.data(), flat.data() + off, n * sizeof(float)) == 0)
          << parts << " " << p;
    }
  }
}

// MasterExchange over threads in one process (farm/ does it over MPI ranks): the same
// calls, in the same order, on every "rank".
class ThreadExchange final : public MasterExchange {
 public:
  struct Shared {
    explicit Shared(int n) : sync(n), errors(static_cast<std::size_t>(n)) {}
    std::barrier<> sync;
    std::vector<std::string> errors;
    Image<float> image;
    std::vector<double> values;
  };
  ThreadExchange(Shared& s, int part, int parts) : s_(s), part_(part), parts_(parts) {}
  int part() const override { return part_; }
  int parts() const override { return parts_; }
  void run(const std::function<void()>& work) override {
    std::string err;
    try {
      work();
    } catch (const std::exception& e) {
      err = e.what();
    }
    s_.errors[static_cast<std::size_t>(part_)] = err;
    s_.sync.arrive_and_wait();
    std::string first;
    for (const auto& e : s_.errors)
      if (!e.empty()) {
        first = e;
        break;
      }
    s_.sync.arrive_and_wait();
    if (!first.empty()) throw CalibrationError(first);
  }
  Image<float> gather_rows(const Image<float>& band, int w, int h) override {
    if (part_ == 0) s_.image = Image<float>(w, h, std::numeric_limits<float>::quiet_NaN());
    s_.sync.arrive_and_wait();
    const RowBand b = row_band(h, part_, parts_);
    std::copy(band.data(), band.data() + band.size(),
              s_.image.data() + static_cast<std::size_t>(b.y0) * w);
    s_.sync.arrive_and_wait();
    Image<float> out = s_.image.clone();
    s_.sync.arrive_and_wait();
    return out;
  }
  void share_values(std::vector<double>& v) override {
    if (part_ == 0) s_.values.assign(v.size(), 0.0);
    s_.sync.arrive_and_wait();
    for (std::size_t i = static_cast<std::size_t>(part_); i < v.size();
         i += static_cast<std::size_t>(parts_))
      s_.values[i] = v[i];
    s_.sync.arrive_and_wait();
    v = s_.values;
    s_.sync.arrive_and_wait();
  }

 private:
  Shared& s_;
  int part_, parts_;
};

// load_masters shared out over `parts` processes: on each, the masters one process builds.
std::vector<Masters> load_shared(int parts, const std::vector<std::string>& darks,
                                 const std::vector<std::string>& flats, const FrameConfig& fc,
                                 std::vector<std::string>* errors) {
  ThreadExchange::Shared shared(parts);
  std::vector<Masters> out(static_cast<std::size_t>(parts));
  errors->assign(static_cast<std::size_t>(parts), "");
  std::vector<std::thread> threads;
  for (int p = 0; p < parts; ++p)
    threads.emplace_back([&, p] {
      ThreadExchange ex(shared, p, parts);
      try {
        out[static_cast<std::size_t>(p)] =
            load_masters("", darks, "", flats, "", fc, CombineConfig{}, &ex);
      } catch (const std::exception& e) {
        (*errors)[static_cast<std::size_t>(p)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  return out;
}

TEST(Masters, SharedOutLoadGivesTheSameMastersOnEveryProcess) {
  TempDir dir;
  const auto darks = write_darks(dir, 5, 2.0);
  const auto flats = write_flats(dir, 3);
  FrameConfig fc;
  const Masters one = load_masters("", darks, "", flats, "", fc, CombineConfig{});
  ASSERT_TRUE(one.flat.has_value());
  for (int parts : {2, 3, 4, kH + 1}) {
    std::vector<std::string> errors;
    const std::vector<Masters> all = load_shared(parts, darks, flats, fc, &errors);
    for (int p = 0; p < parts; ++p) {
      const Masters& m = all[static_cast<std::size_t>(p)];
      EXPECT_EQ(errors[static_cast<std::size_t>(p)], "");
      EXPECT_TRUE(same_bits(m.dark, one.dark)) << parts << " " << p;
      ASSERT_TRUE(m.flat.has_value());
      EXPECT_TRUE(same_bits(m.flat->response, one.flat->response)) << parts << " " << p;
      EXPECT_EQ(m.flat->norm, one.flat->norm);
      EXPECT_EQ(m.dark_exptime_s, one.dark_exptime_s);
      EXPECT_EQ(m.dark_source, one.dark_source);
      EXPECT_EQ(m.flat_source, one.flat_source);
    }
  }
}

// A bad calibration frame read by one process only (a truncated dark: only the process with
// the last rows reads past the end; a flat with a non-positive median, its median computed by
// one process) fails the load on every process, with the message naming the file.
TEST(Masters, ABadFrameSeenByOneProcessFailsEveryProcessByName) {
  FrameConfig fc;
  std::vector<std::string> errors;
  {
    TempDir dir;
    const auto darks = write_darks(dir, 3, 2.0);
    const auto flats = write_flats(dir, 3);
    std::filesystem::resize_file(darks[1], std::filesystem::file_size(darks[1]) - 2880 * 2);
    load_shared(2, darks, flats, fc, &errors);
    for (const auto& e : errors) EXPECT_NE(e.find(darks[1]), std::string::npos) << e;
  }
  {
    TempDir dir;
    const auto darks = write_darks(dir, 3, 2.0);
    const auto flats = write_flats(dir, 3);
    std::filesystem::remove(flats[1]);
    io::write_fits(flats[1], Image<float>(kW, kH, -1.f).cview(), {io::card("EXPTIME", 1.0)});
    load_shared(2, darks, flats, fc, &errors);
    for (const auto& e : errors)
      EXPECT_NE(e.find(flats[1] + ": flat has a non-positive median"), std::string::npos) << e;
  }
}

// `psfphot frame` maps its master files (load_masters with map_files) instead of reading
// them: the flat's norm, its response at every pixel (invalid ones planted: 0, < 0, NaN,
// inf, subnormal), the calibrated frame and mask (the dark with NaN, inf and a subnormal; an
// odd width, so the conversion's 8-pixel loop leaves a tail) and the frame's stars must be
// those of the masters read into memory, bit for bit, also when the masters are released as
// the frame goes (the dark after calibration, the flat's mapping kept for the photometry).
// And the stars must not depend on whether the RMS map is kept as an image (with the
// products) or computed where read (without).
TEST(Masters, MappedMasterFilesGiveTheSameFrameBitForBit) {
  TempDir dir;
  constexpr int w = 157, h = 136;
  Image<float> dark(w, h), flat(w, h);
  std::mt19937 rng(5);
  std::normal_distribution<double> n01(0.0, 1.0);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      dark(x, y) = static_cast<float>(100.0 + 0.1 * x + 2.0 * n01(rng));
      flat(x, y) = static_cast<float>(20000.0 * (0.7 + 0.002 * x + 0.001 * y) + 50 * n01(rng));
    }
  const float bad[] = {0.0f, -5.0f, std::numeric_limits<float>::quiet_NaN(),
                       std::numeric_limits<float>::infinity(),
                       std::numeric_limits<float>::denorm_min()};
  for (int k = 0; k < 5; ++k) flat(13 + 29 * k, 7 + 23 * k) = bad[k];
  for (int k = 2; k < 5; ++k) dark(150 - 31 * k, 120 - 17 * k) = bad[k];
  Image<float> sci = test::constant(w, h, 0.f);
  for (const auto& st : test::scatter_stars(6, w, h, 15, 25, 40000, 1.8, rng))
    test::add_star(sci, st);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      sci(x, y) = std::round(sci(x, y) * flat(x, y) / 24000.f + 400.f + 2.f * dark(x, y) +
                             static_cast<float>(8.0 * n01(rng)));
  const std::string dark_p = dir.file("mdark.fits"), flat_p = dir.file("mflat.fits"),
                    sci_p = dir.file("sci.fits");
  io::write_fits(dark_p, dark.cview(), {io::card("EXPTIME", 10.0)});
  io::write_fits(flat_p, flat.cview(), {});
  io::write_fits(sci_p, sci.cview(), {io::card("EXPTIME", 20.0), io::card("GAIN", 1.5)});

  FrameConfig fc;
  for (FlatNorm norm : {FlatNorm::kMax, FlatNorm::kMedian, FlatNorm::kMean}) {
    fc.calibration.flat_norm = norm;
    const Masters read = load_masters(dark_p, {}, flat_p, {}, "", fc, CombineConfig{});
    Masters mapped = load_masters(dark_p, {}, flat_p, {}, "", fc, CombineConfig{}, nullptr, true);
    ASSERT_TRUE(read.flat && mapped.flat);
    EXPECT_TRUE(mapped.dark.empty());  // mapped, not copied
    EXPECT_EQ(mapped.dark_mapped.kind(), FloatPlane::Kind::kFitsFloat32);
    EXPECT_TRUE(mapped.flat->response.empty());
    EXPECT_EQ(mapped.dark_exptime_s, read.dark_exptime_s);
    EXPECT_EQ(mapped.flat->norm, read.flat->norm);
    EXPECT_EQ(mapped.flat->n_invalid, 5u);
    EXPECT_EQ(read.flat->n_invalid, 5u);
    const FloatPlane a = read.flat->response_plane(), b = mapped.flat->response_plane();
    std::size_t differ = 0;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const float u = a(x, y), v = b(x, y);
        differ += std::memcmp(&u, &v, 4) != 0;
      }
    EXPECT_EQ(differ, 0u);

    FrameProducts p0, p1;
    const FrameResult r0 = process_frame(0, sci_p, fc, read);       // RMS computed where read
    const FrameResult rk = process_frame(0, sci_p, fc, read, &p0);  // RMS kept as an image
    const FrameResult r1 = process_frame(0, sci_p, fc, mapped, &p1);
    const FrameResult r2 = process_frame(0, sci_p, fc, std::move(mapped));  // released as it goes
    ASSERT_TRUE(r0.ok()) << r0.message;
    ASSERT_GE(r0.stars.size(), 5u);
    for (const FrameResult* r : {&rk, &r1, &r2}) {
      ASSERT_TRUE(r->ok()) << r->message;
      ASSERT_EQ(r->stars.size(), r0.stars.size());
      EXPECT_EQ(0, std::memcmp(r->stars.data(), r0.stars.data(), r0.stars.size() * sizeof(Star)));
    }
    EXPECT_TRUE(same_bits(p1.calibrated, p0.calibrated));
    EXPECT_TRUE(same_bits(p1.rms, p0.rms));
    ASSERT_EQ(p1.mask.size(), p0.mask.size());
    EXPECT_EQ(0, std::memcmp(p1.mask.data(), p0.mask.data(), p0.mask.size()));
    // The planted dark and flat values were used: NaN pixels and invalid-flat bits.
    std::size_t nan_px = 0, flat_bits = 0;
    for (std::size_t i = 0; i < p0.calibrated.size(); ++i) {
      nan_px += std::isnan(p0.calibrated.data()[i]);
      flat_bits += (p0.mask.data()[i] & mask::kFlatInvalid) != 0;
    }
    EXPECT_GE(nan_px, 6u);
    EXPECT_EQ(flat_bits, 5u);
  }
}

}  // namespace
}  // namespace psfphot::pipeline
