// Per-stage benchmarks of the per-frame pipeline (issue 8), on simulated 2048^2 and 4096^2
// frames (the peers' frames: ../shared/peers/README.md), next to a plain memory copy of
// one float frame measured in the same run: the bandwidth bound a pixel pass is held to.
//
//   build/stages_bench [--benchmark_filter=...]        (one thread: OMP_NUM_THREADS=1)
//   bash bench/stages.sh BUILD_DIR                     (single core, table with ratios)
//
// Times are CPU times of the one benchmark thread (user + sys, page faults included): on the
// shared 2-core machine they stay put when other jobs take the core; wall times do not.
// Counters: px_time = time per pixel (s, shown with an SI prefix: "2.5n" = 2.5 ns);
// bytes_per_second = the stage's own pixel traffic (bytes read + written per pixel, listed
// per benchmark) per second; star_time = time per star (s). Nothing here asserts timings.
#include <benchmark/benchmark.h>

#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "psfphot/algo/background.hpp"
#include "psfphot/algo/calibrate.hpp"
#include "psfphot/algo/centroid.hpp"
#include "psfphot/algo/hotpix.hpp"
#include "psfphot/algo/moments.hpp"
#include "psfphot/algo/peaks.hpp"
#include "psfphot/algo/psf_photometry.hpp"
#include "psfphot/algo/simulate.hpp"
#include "psfphot/algo/smooth.hpp"
#include "psfphot/core/frame_result.hpp"
#include "psfphot/core/star.hpp"
#include "psfphot/io/catalogue.hpp"
#include "psfphot/io/fits.hpp"

namespace {

using namespace psfphot;

// Everything the stages need for one frame size, built once (simulation is the slow part).
struct Frame {
  int size = 0;
  Image<float> raw, dark, flat_raw;
  NormalisedFlat flat;
  double exptime_s = 60, sat_adu = 65535, gain = 1.2;
  CalibratedImage cal;    // calibrated, mask
  Background bg;          // of cal
  Background bg_lean;     // the same as the pipeline keeps it: RMS computed where read
  Image<float> sub;       // cal - background
  Image<float> smoothed;  // detection image
  PeakConfig peak_cfg;    // as the pipeline's defaults
  std::vector<Peak> peaks;
  std::vector<Star> stars;                // with centroids
  std::map<int, std::string> fits_files;  // BITPIX -> temporary file
  std::string tmp_dir;
};

constexpr double kFilterSigma = 1.5;  // pipeline default detection.filter_sigma_px

Frame& frame(int size) {
  static std::map<int, std::unique_ptr<Frame>> cache;
  auto& slot = cache[size];
  if (slot) return *slot;
  slot = std::make_unique<Frame>();
  Frame& f = *slot;
  f.size = size;
  SimConfig sc;
  sc.width = sc.height = size;
  sc.n_stars = size >= 4096 ? 8000 : 2000;
  sc.seed = 11;
  f.exptime_s = sc.exptime_s;
  f.sat_adu = sc.saturation_adu;
  f.gain = sc.gain_e_per_adu;
  SimInstrument inst = make_instrument(sc);
  SimField field = make_field(sc);
  SimFrame sf = render_science_frame(sc, inst, field, 0);
  quantise_camera(sf.raw_adu.view(), sc.saturation_adu);
  f.raw = std::move(sf.raw_adu);
  f.dark = render_master_dark(sc, inst);
  f.flat_raw = inst.flat.clone();
  f.flat = normalise_flat(f.flat_raw.cview(), FlatNorm::kMax);
  CalibrationInputs in;
  in.dark = f.dark.cview();
  in.dark_exptime_s = sc.exptime_s;
  in.flat = &f.flat;
  f.cal = calibrate(f.raw.cview(), f.exptime_s, f.sat_adu, in, CalibrationConfig{});
  f.bg = estimate_background(f.cal.pixels.cview(), f.cal.mask.cview(), BackgroundConfig{});
  f.bg_lean =
      estimate_background(f.cal.pixels.cview(), f.cal.mask.cview(), BackgroundConfig{}, false);
  f.sub = f.cal.pixels.clone();
  for (std::size_t i = 0; i < f.sub.size(); ++i) f.sub.data()[i] -= f.bg.level.data()[i];
  f.smoothed =
      gaussian_smooth(f.sub.cview(), f.cal.mask.cview(), mask::kUnusable, kFilterSigma, true);
  f.peak_cfg.rms_scale = smoothing_noise_factor(kFilterSigma, true);
  f.peaks = find_peaks(f.smoothed.cview(), f.bg.rms_plane(), f.cal.mask.cview(), f.peak_cfg);
  f.peaks = merge_close_peaks(f.peaks, 3.0);
  f.peaks = reject_hot_pixels(f.sub.cview(), f.bg.rms_plane(), f.peaks, HotPixelConfig{});
  CentroidConfig cc;
  for (std::size_t i = 0; i < f.peaks.size(); ++i) {
    Star s = make_star(0, static_cast<std::int32_t>(i), f.peaks[i].x, f.peaks[i].y);
    Centroid c = measure_centroid(f.sub.cview(), f.cal.mask.cview(), s.peak_x, s.peak_y, cc);
    s.centroid_x = c.x;
    s.centroid_y = c.y;
    s.flags |= c.flags;
    f.stars.push_back(s);
  }
  // The raw frame on disk as each BITPIX a camera or a reduction writes.
  f.tmp_dir = (std::filesystem::temp_directory_path() /
               ("psfphot-bench-" + std::to_string(::getpid()) + "-" + std::to_string(size)))
                  .string();
  std::filesystem::create_directories(f.tmp_dir);
  for (int bitpix : {16, 32, -32, -64}) {
    io::FitsWriteOptions o;
    o.bitpix = bitpix;
    if (bitpix == 16) o.bzero = 32768;
    o.overwrite = true;
    const std::string p = f.tmp_dir + "/raw_" + std::to_string(bitpix) + ".fits";
    io::write_fits(p, f.raw.cview(), {}, o);
    f.fits_files[bitpix] = p;
  }
  return f;
}

struct Cleanup {
  ~Cleanup() {
    std::error_code ec;
    for (const auto& e :
         std::filesystem::directory_iterator(std::filesystem::temp_directory_path(), ec))
      if (e.path().filename().string().rfind("psfphot-bench-" + std::to_string(::getpid()) + "-",
                                             0) == 0)
        std::filesystem::remove_all(e.path(), ec);
  }
} cleanup;

void pixel_counters(benchmark::State& st, const Frame& f, double bytes_per_px) {
  const double px = double(f.size) * f.size;
  st.counters["px_time"] = benchmark::Counter(
      px, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * px * bytes_per_px));
  st.counters["Mpx"] = px / 1e6;
}

void star_counters(benchmark::State& st, std::size_t n_stars) {
  st.counters["star_time"] = benchmark::Counter(
      double(n_stars), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  st.counters["stars"] = double(n_stars);
}

// The bandwidth bound: one float frame copied into a buffer already faulted in
// (reads 4 + writes 4 bytes per pixel).
void BM_MemCopy(benchmark::State& st) {
  Frame& f = frame(static_cast<int>(st.range(0)));
  std::vector<float> dst(f.raw.size(), 1.f);
  for (auto _ : st) {
    std::memcpy(dst.data(), f.raw.data(), f.raw.size() * sizeof(float));
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  pixel_counters(st, f, 8);
}

// The same copy into a freshly allocated image, as a stage returning a new Image does:
// page faults included (on this VM they cost more than the copy).
void BM_MemCopyFresh(benchmark::State& st) {
  Frame& f = frame(static_cast<int>(st.range(0)));
  for (auto _ : st) {
    Image<float> dst = f.raw.clone();
    benchmark::DoNotOptimize(dst.data());
  }
  pixel_counters(st, f, 8);
}

// FITS read of the raw frame per on-disk BITPIX (file in the page cache); bytes = the
// file's pixel bytes + 4 written per pixel.
void BM_FitsRead(benchmark::State& st) {
  Frame& f = frame(static_cast<int>(st.range(0)));
  const int bitpix = static_cast<int>(st.range(1));
  const std::string& p = f.fits_files.at(bitpix);
  for (auto _ : st) {
    io::FitsImage img = io::read_fits(p);
    benchmark::DoNotOptimize(img.pixels.data());
  }
  pixel_counters(st, f, std::abs(bitpix) / 8 + 4);
  st.SetLabel("BITPIX " + std::to_string(bitpix));
}

// Calibration: reads raw, dark, flat (12 B), writes pixels + mask (5 B).
void BM_Calibrate(benchmark::State& st) {
  Frame& f = frame(static_cast<int>(st.range(0)));
  CalibrationInputs in;
  in.dark = f.dark.cview();
  in.dark_exptime_s = f.exptime_s;
  in.flat = &f.flat;
  for (auto _ : st) {
    CalibratedImage c = calibrate(f.raw.cview(), f.exptime_s, f.sat_adu, in, CalibrationConfig{});
    benchmark::DoNotOptimize(c.pixels.data());
  }
  pixel_counters(st, f, 17);
}

// The same calibration written into the raw frame's buffer (calibrate_in_place): no new
// frame-sized image. The raw pixels are restored outside the timing.
void BM_CalibrateInPlace(benchmark::State& st) {
  Frame& f = frame(static_cast<int>(st.range(0)));
  CalibrationInputs in;
  in.dark = f.dark.cview();
  in.dark_exptime_s = f.exptime_s;
  in.flat = &f.flat;
  Image<float> px = f.raw.clone();
  for (auto _ : st) {
    st.PauseTiming();
    std::memcpy(px.data(), f.raw.data(), f.raw.size() * sizeof(float));
    st.ResumeTiming();
    CalibratedImage c =
        calibrate_in_place(px.view(), f.exptime_s, f.sat_adu, in, CalibrationConfig{});
    benchmark::DoNotOptimize(c.mask.data());
  }
  pixel_counters(st, f, 17);
}

// Flat normalisation (once per night, per rank): reads 4, writes 4 + 1.
void BM_NormaliseFlat(benchmark::State& st) {
  Frame& f = frame(static_cast<int>(st.range(0)));
  for (auto _ : st) {
    NormalisedFlat n = normalise_flat(f.flat_raw.cview(), FlatNorm::kMax);
    benchmark::DoNotOptimize(n.response.data());
  }
  pixel_counters(st, f, 9);
}

// Background: mesh statistics + filter + splines; reads image + mask (5 B), writes level and
// RMS (8 B).
void BM_Background(benchmark::State& st) {
  Frame& f = frame(static_cast<int>(st.range(0)));
  for (auto _ : st) {
    Background b =
        estimate_background(f.cal.pixels.cview(), f.cal.mask.cview(), BackgroundConfig{});
    benchmark::DoNotOptimize(b.level.data());
  }
  pixel_counters(st, f, 13);
}

// The background step as the pipeline runs it: the statistics and the two mesh splines without
// full-resolution maps (the RMS is computed where it is read), then the level subtracted from
// the frame in place (here from a copy of the calibrated frame, restored untimed). Reads image
// + mask for the statistics, then reads and writes the image: 13 B.
void BM_BackgroundPipeline(benchmark::State& st) {
  Frame& f = frame(static_cast<int>(st.range(0)));
  Image<float> work = f.cal.pixels.clone();
  for (auto _ : st) {
    Background b = estimate_background(work.cview(), f.cal.mask.cview(), BackgroundConfig{}, false);
    subtract_background(work.view(), b);
    benchmark::DoNotOptimize(work.data());
    st.PauseTiming();
    std::memcpy(work.data(), f.cal.pixels.data(), work.size() * sizeof(float));
    st.ResumeTiming();
  }
  pixel_counters(st, f, 13);
}

// Detection filter (lowered Gaussian, sigma 1.5 px): reads image + mask, writes 4 B.
void BM_Smooth(benchmark::State& st) {
  Frame& f = frame(static_cast<int>(st.range(0)));
  for (auto _ : st) {
    Image<float> s =
        gaussian_smooth(f.sub.cview(), f.cal.mask.cview(), mask::kUnusable, kFilterSigma, true);
    benchmark::DoNotOptimize(s.data());
  }
  pixel_counters(st, f, 9);
}

// Peaks on the detection image: threshold first (reads image + RMS + mask, 9 B).
void BM_PeaksFast(benchmark::State& st) {
  Frame& f = frame(static_cast<int>(st.range(0)));
  std::size_t n = 0;
  for (auto _ : st) {
    auto p = find_peaks(f.smoothed.cview(), f.bg.rms_plane(), f.cal.mask.cview(), f.peak_cfg);
    n = p.size();
    benchmark::DoNotOptimize(p.data());
  }
  pixel_counters(st, f, 9);
  st.counters["peaks"] = double(n);
}

// The pipeline's detection: smoothing streamed into the peak search, the RMS from its spline
// where a pixel may pass (9 B: image, RMS, mask).
void BM_DetectStreamed(benchmark::State& st) {
  Frame& f = frame(static_cast<int>(st.range(0)));
  std::size_t n = 0;
  for (auto _ : st) {
    auto p = find_peaks_smoothed(f.sub.cview(), *f.bg_lean.rms_map, f.cal.mask.cview(),
                                 mask::kUnusable, kFilterSigma, true, f.peak_cfg);
    n = p.size();
    benchmark::DoNotOptimize(p.data());
  }
  pixel_counters(st, f, 9);
  st.counters["peaks"] = double(n);
}

// The same search with the RMS as a plane (every row evaluated and every pixel tested): the
// path before the spline search, and the one for an RMS given as an image.
void BM_DetectStreamedPlane(benchmark::State& st) {
  Frame& f = frame(static_cast<int>(st.range(0)));
  std::size_t n = 0;
  for (auto _ : st) {
    auto p = find_peaks_smoothed(f.sub.cview(), f.bg_lean.rms_plane(), f.cal.mask.cview(),
                                 mask::kUnusable, kFilterSigma, true, f.peak_cfg);
    n = p.size();
    benchmark::DoNotOptimize(p.data());
  }
  pixel_counters(st, f, 9);
  st.counters["peaks"] = double(n);
}

// The lab's order: 8 neighbours first, then the threshold (the reference implementation).
void BM_PeaksNaive(benchmark::State& st) {
  Frame& f = frame(static_cast<int>(st.range(0)));
  std::size_t n = 0;
  for (auto _ : st) {
    auto p = find_peaks_naive(f.smoothed.cview(), f.bg.rms_plane(), f.cal.mask.cview(), f.peak_cfg);
    n = p.size();
    benchmark::DoNotOptimize(p.data());
  }
  pixel_counters(st, f, 9);
  st.counters["peaks"] = double(n);
}

void BM_Centroid(benchmark::State& st) {
  Frame& f = frame(static_cast<int>(st.range(0)));
  CentroidConfig cc;
  for (auto _ : st) {
    for (const Star& s : f.stars) {
      Centroid c = measure_centroid(f.sub.cview(), f.cal.mask.cview(), s.peak_x, s.peak_y, cc);
      benchmark::DoNotOptimize(c);
    }
  }
  star_counters(st, f.stars.size());
}

// The same centroids through measure_centroids (four stars per vector), as the pipeline.
void BM_CentroidBatch(benchmark::State& st) {
  Frame& f = frame(static_cast<int>(st.range(0)));
  CentroidConfig cc;
  std::vector<int> px, py;
  for (const Star& s : f.stars) px.push_back(s.peak_x), py.push_back(s.peak_y);
  std::vector<Centroid> out(f.stars.size());
  for (auto _ : st) {
    measure_centroids(f.sub.cview(), f.cal.mask.cview(), px.data(), py.data(), px.size(), cc,
                      out.data());
    benchmark::DoNotOptimize(out.data());
  }
  star_counters(st, f.stars.size());
}

// Second-moment widths star by star (second_moments): the baseline of BM_Moments.
void BM_MomentsScalar(benchmark::State& st) {
  Frame& f = frame(static_cast<int>(st.range(0)));
  for (auto _ : st)
    for (const Star& s : f.stars)
      benchmark::DoNotOptimize(second_moments(f.sub.cview(), f.cal.mask.cview(), s.centroid_x,
                                              s.centroid_y, MomentsConfig{}));
  star_counters(st, f.stars.size());
}

// The same widths through measure_moments (windows prefetched): one batch over all stars,
// where the pipeline runs batches of 64.
void BM_Moments(benchmark::State& st) {
  Frame& f = frame(static_cast<int>(st.range(0)));
  std::vector<double> xc, yc;
  for (const Star& s : f.stars) xc.push_back(s.centroid_x), yc.push_back(s.centroid_y);
  std::vector<Widths> out(f.stars.size());
  for (auto _ : st) {
    measure_moments(f.sub.cview(), f.cal.mask.cview(), xc.data(), yc.data(), xc.size(),
                    MomentsConfig{}, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  star_counters(st, f.stars.size());
}

// Gaussian PSF photometry with the joint (F, x, y) fit, the pipeline's default, reading the
// RMS as the pipeline does (computed from the mesh spline where a stamp needs it);
// BM_PhotometryRmsImage reads it from the full image instead (the cost of computing it).
void photometry_bench(benchmark::State& st, bool rms_image) {
  Frame& f = frame(static_cast<int>(st.range(0)));
  PhotometryConfig pc;
  const FloatPlane rms = rms_image ? f.bg.rms_plane() : f.bg_lean.rms_plane();
  for (auto _ : st) {
    for (const Star& s : f.stars) {
      if (!std::isfinite(s.centroid_x)) continue;
      PsfFit r = measure_psf_flux(f.sub.cview(), rms, f.cal.mask.cview(), s.centroid_x,
                                  s.centroid_y, 2.0, f.gain, pc);
      benchmark::DoNotOptimize(r);
    }
  }
  star_counters(st, f.stars.size());
}
void BM_Photometry(benchmark::State& st) {
  photometry_bench(st, false);
}
void BM_PhotometryRmsImage(benchmark::State& st) {
  photometry_bench(st, true);
}

// One frame's stars appended to an HDF5 catalogue (fsync per commit as in a night; the
// file is created outside the timing).
void BM_CatalogueWrite(benchmark::State& st) {
  Frame& f = frame(static_cast<int>(st.range(0)));
  const std::string path = f.tmp_dir + "/cat.h5";
  std::error_code ec;
  std::filesystem::remove(path, ec);
  io::CatalogueWriter w(path, io::CatalogueMode::kOverwrite);
  std::int64_t id = 0;
  for (auto _ : st) {
    FrameResult r;
    r.frame_id = id;
    r.path = "bench.fits";
    r.status = FrameStatus::kOk;
    r.stars = f.stars;
    for (Star& s : r.stars) s.frame_id = id;
    ++id;
    w.append(r);
  }
  w.close(false);
  std::filesystem::remove(path, ec);
  star_counters(st, f.stars.size());
}

void sizes(benchmark::internal::Benchmark* b) {
  b->Arg(2048)->Arg(4096)->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(BM_MemCopy)->Apply(sizes);
BENCHMARK(BM_MemCopyFresh)->Apply(sizes);
BENCHMARK(BM_FitsRead)
    ->ArgsProduct({{2048, 4096}, {16, 32, -32, -64}})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Calibrate)->Apply(sizes);
BENCHMARK(BM_CalibrateInPlace)->Apply(sizes);
BENCHMARK(BM_NormaliseFlat)->Apply(sizes);
BENCHMARK(BM_Background)->Apply(sizes);
BENCHMARK(BM_BackgroundPipeline)->Apply(sizes);
BENCHMARK(BM_Smooth)->Apply(sizes);
BENCHMARK(BM_PeaksFast)->Apply(sizes);
BENCHMARK(BM_DetectStreamed)->Apply(sizes);
BENCHMARK(BM_DetectStreamedPlane)->Apply(sizes);
BENCHMARK(BM_PeaksNaive)->Apply(sizes);
BENCHMARK(BM_Centroid)->Apply(sizes);
BENCHMARK(BM_CentroidBatch)->Apply(sizes);
BENCHMARK(BM_MomentsScalar)->Apply(sizes);
BENCHMARK(BM_Moments)->Apply(sizes);
BENCHMARK(BM_Photometry)->Apply(sizes);
BENCHMARK(BM_PhotometryRmsImage)->Apply(sizes);
BENCHMARK(BM_CatalogueWrite)->Apply(sizes);
BENCHMARK_MAIN();
