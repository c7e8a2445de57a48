// psfphot simulate --out DIR ...: a raw night with darks, flats, truth and a night config.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "commands.hpp"
#include "psfphot/pipeline/simulate_night.hpp"

namespace psfphot::apps {
namespace {

struct SimulateArgs {
  std::string out;
  int frames = 32;
  std::string size = "2048";
  int stars = 2000;
  std::uint64_t seed = 1;
  std::string psf = "gaussian";
  int darks = 5;
  int flats = 5;
  int overscan = 0;
  int threads = 0;
  bool overwrite = false;
  bool quiet = false;
};

// "W" or "WxH" -> (W, H).
bool parse_size(const std::string& s, int& w, int& h) {
  char x = 0, tail = 0;
  const int n = std::sscanf(s.c_str(), "%d%c%d%c", &w, &x, &h, &tail);
  if (n == 1) {
    h = w;
    return true;
  }
  return n == 3 && (x == 'x' || x == 'X');
}

int run(const SimulateArgs& a) {
  pipeline::NightSimOptions o;
  o.out_dir = a.out;
  o.n_frames = a.frames;
  o.n_darks = a.darks;
  o.n_flats = a.flats;
  o.overscan_px = a.overscan;
  o.overwrite = a.overwrite;
  if (!parse_size(a.size, o.sim.width, o.sim.height)) {
    std::cerr << "psfphot simulate: error: --size '" << a.size << "' is not W or WxH\n";
    return kExitUsage;
  }
  o.sim.n_stars = a.stars;
  o.sim.seed = a.seed;
  o.sim.psf = a.psf == "moffat" ? PsfModel::kMoffat : PsfModel::kGaussian;
  if (a.threads > 0) omp_set_num_threads(a.threads);
  try {
    validate(o.sim);
  } catch (const std::invalid_argument& e) {
    std::cerr << "psfphot simulate: error: " << e.what() << "\n";
    return kExitUsage;
  }
  const auto t0 = std::chrono::steady_clock::now();
  pipeline::NightSimResult r;
  try {
    r = pipeline::simulate_night(o, [&](const std::string& line) {
      if (!a.quiet) std::fprintf(stderr, "psfphot simulate: %s\n", line.c_str());
    });
  } catch (const std::exception& e) {
    std::cerr << "psfphot simulate: error: " << e.what() << "\n";
    return kExitFailure;
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string& d = a.out;
  std::printf("psfphot simulate: wrote %s (seed %llu, %s PSF, %dx%d)\n", d.c_str(),
              static_cast<unsigned long long>(a.seed), psf_model_name(o.sim.psf), o.sim.width,
              o.sim.height);
  std::printf("  science  %d frames  %s/science/sci_NNNN.fits (uint16, BZERO 32768)\n", r.n_science,
              d.c_str());
  std::printf("  darks    %d         %s/darks/dark_NN.fits\n", r.n_darks, d.c_str());
  std::printf("  flats    %d         %s/flats/flat_NN.fits\n", r.n_flats, d.c_str());
  std::printf("  truth    %ld stars (%ld saturated), %ld cosmic rays  %s/truth/\n", r.n_truth_rows,
              r.n_saturated, r.n_cosmic_rays, d.c_str());
  std::printf("  config   %s/night.toml\n", d.c_str());
  std::printf("  time     %.2f s wall (simulation %.2f s, writing %.2f s), %d threads\n", wall,
              r.render_seconds, r.write_seconds, omp_get_max_threads());
  for (const auto& w : r.warnings)
    std::fprintf(stderr, "psfphot simulate: warning: %s\n", w.c_str());
  return kExitOk;
}

}  // namespace

void add_simulate_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "simulate", "Write a simulated raw night (science, darks, flats, truth, night.toml)");
  auto a = std::make_shared<SimulateArgs>();
  cmd->add_option("--out", a->out, "output folder (created; must be empty unless --overwrite)")
      ->required();
  cmd->add_option("--frames", a->frames, "science frames")
      ->default_val(32)
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--size", a->size, "frame size W or WxH, px")->default_val("2048");
  cmd->add_option("--stars", a->stars, "stars per frame")
      ->default_val(2000)
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", a->seed, "random seed (same seed, same bytes)")->default_val(1);
  cmd->add_option("--psf", a->psf, "PSF model")
      ->default_val("gaussian")
      ->check(CLI::IsMember({"gaussian", "moffat"}));
  cmd->add_option("--darks", a->darks, "raw darks")->default_val(5)->check(CLI::Range(1, 1000));
  cmd->add_option("--flats", a->flats, "raw flats")->default_val(5)->check(CLI::Range(1, 1000));
  cmd->add_option("--overscan", a->overscan,
                  "overscan columns added at every raw frame's right edge (bias + read noise, "
                  "BIASSEC/TRIMSEC cards), each exposure's bias offset by up to +-20 ADU; 0 = none")
      ->default_val(0)
      ->check(CLI::Range(0, 4096));
  cmd->add_option("--threads", a->threads, "OpenMP threads (0 = OpenMP default)")
      ->default_val(0)
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--overwrite", a->overwrite,
                "write into a non-empty folder, replacing the simulator's own files");
  cmd->add_flag("-q,--quiet", a->quiet, "no progress lines");
  cmd->callback([a, &exit_code]() { exit_code = run(*a); });
}

}  // namespace psfphot::apps
