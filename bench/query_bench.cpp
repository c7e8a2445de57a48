// Query benchmark (issue 6): how fast `psfphot query --frame` answers on a big catalogue.
//   query_bench make CAT.h5 [ROWS [STARS_PER_FRAME]]   write a synthetic finished catalogue
//   PSFPHOT_QUERY_CAT=CAT.h5 query_bench [benchmark flags]   time run_query in-process
// bench/query_bench.sh builds a 10-million-row catalogue with `make` and times the real
// command; results are in docs/query.md. The catalogue is written with CatalogueWriter
// directly (no pipeline): deterministic stars, 136 bytes a row, finalized (compressed) as
// a finished night is.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "psfphot/io/catalogue.hpp"
#include "psfphot/io/star_query.hpp"

namespace {

using namespace psfphot;

// SplitMix64: a cheap deterministic stream per (frame, star).
std::uint64_t mix(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
double unit(std::uint64_t& s) {
  s = mix(s);
  return static_cast<double>(s >> 11) * 0x1.0p-53;
}

FrameResult synthetic_frame(std::int64_t id, int n) {
  FrameResult r;
  r.frame_id = id;
  r.path = "/data/bench/frame_" + std::to_string(id) + ".fits";
  r.status = FrameStatus::kOk;
  r.summary.mjd_obs = 60000.0 + 0.0005 * static_cast<double>(id);
  r.summary.exptime_s = 30;
  r.summary.filter = "R";
  r.summary.psf_sigma_px = 1.8;
  r.summary.sky_adu = 300;
  r.summary.sky_rms_adu = 12;
  r.summary.n_peaks = n;
  r.stars.reserve(static_cast<std::size_t>(n));
  std::uint64_t s = static_cast<std::uint64_t>(id) * 1000003u;
  for (int i = 0; i < n; ++i) {
    Star st = make_star(id, i, static_cast<int>(unit(s) * 2048), static_cast<int>(unit(s) * 2048));
    st.flags = unit(s) < 0.1 ? star_flag::kCrowded : 0u;
    st.peak_value = 50 + 5000 * unit(s);
    st.centroid_x = st.peak_x + unit(s) - 0.5;
    st.centroid_y = st.peak_y + unit(s) - 0.5;
    st.centroid_err_x = st.centroid_err_y = 0.05;
    st.width_x = st.width_y = 1.8;
    st.psf_flux = 100 + 1e5 * unit(s);
    st.psf_flux_err = std::sqrt(st.psf_flux + 1000);
    st.snr = st.psf_flux / st.psf_flux_err;
    st.background = 300;
    st.background_rms = 12;
    r.stars.push_back(st);
  }
  return r;
}

int make(const std::string& path, std::int64_t rows, int per_frame) {
  const auto t0 = std::chrono::steady_clock::now();
  io::CatalogueOptions opt;
  opt.sync_each_commit = false;
  opt.config_text = "# query_bench synthetic catalogue\n";
  io::CatalogueWriter w(path, io::CatalogueMode::kOverwrite, opt);
  std::int64_t done = 0, id = 0;
  while (done < rows) {
    const int n = static_cast<int>(std::min<std::int64_t>(per_frame, rows - done));
    w.append(synthetic_frame(id++, n));
    done += n;
  }
  const auto t1 = std::chrono::steady_clock::now();
  const io::CloseReport c = w.close(true);
  const auto t2 = std::chrono::steady_clock::now();
  std::printf("%s: %lld rows, %lld frames; appending %.1f s, finalizing %.1f s, %.0f MB\n",
              path.c_str(), static_cast<long long>(done), static_cast<long long>(id),
              std::chrono::duration<double>(t1 - t0).count(),
              std::chrono::duration<double>(t2 - t1).count(),
              static_cast<double>(c.bytes_after) / 1e6);
  return 0;
}

const char* catalogue() {
  return std::getenv("PSFPHOT_QUERY_CAT");
}

// Open + one frame in the middle of the night, default columns, no output.
void BM_QueryOneFrame(benchmark::State& state) {
  if (!catalogue()) {
    state.SkipWithError("set PSFPHOT_QUERY_CAT (query_bench make CAT.h5 first)");
    return;
  }
  std::int64_t rows = 0;
  for (auto _ : state) {
    io::CatalogueReader r(catalogue());
    io::StarQuery q;
    q.frames = {r.frames()[r.frames().size() / 2].frame_id};
    rows =
        io::run_query(r, q, [](const Star& s) { benchmark::DoNotOptimize(s.psf_flux); }).rows_read;
  }
  state.counters["rows"] = static_cast<double>(rows);
}
BENCHMARK(BM_QueryOneFrame)->Unit(benchmark::kMillisecond);

// Opening alone: reads the whole /frames index.
void BM_OpenCatalogue(benchmark::State& state) {
  if (!catalogue()) {
    state.SkipWithError("set PSFPHOT_QUERY_CAT");
    return;
  }
  for (auto _ : state) {
    io::CatalogueReader r(catalogue());
    benchmark::DoNotOptimize(r.frames().size());
  }
}
BENCHMARK(BM_OpenCatalogue)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::strcmp(argv[1], "make") == 0) {
    const std::int64_t rows = argc >= 4 ? std::atoll(argv[3]) : 10'000'000;
    const int per_frame = argc >= 5 ? std::atoi(argv[4]) : 2000;
    if (rows <= 0 || per_frame <= 0) {
      std::fprintf(stderr, "usage: query_bench make CAT.h5 [ROWS [STARS_PER_FRAME]]\n");
      return 2;
    }
    return make(argv[2], rows, per_frame);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
