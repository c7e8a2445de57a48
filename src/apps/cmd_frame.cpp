// psfphot frame: one raw frame in, a star table (CSV) out.
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <utility>

#include "commands.hpp"
#include "psfphot/io/fits.hpp"
#include "psfphot/io/star_csv.hpp"
#include "psfphot/pipeline/config.hpp"
#include "psfphot/pipeline/masters.hpp"
#include "psfphot/pipeline/process_frame.hpp"

namespace psfphot::apps {
namespace {

struct FrameArgs {
  std::string science, dark, flat, mask, config, output;
  std::vector<std::string> sets;
  int threads = 0;
  std::string write_calibrated, write_background, write_rms, write_subtracted;
  bool overwrite = false;
  bool print_config = false;
};

int run_frame(const FrameArgs& a) {
  if (a.threads > 0) omp_set_num_threads(a.threads);
  pipeline::Config cfg;
  try {
    cfg =
        pipeline::load_config(a.config, a.sets, /*allow_night=*/true);  // a night config works too
  } catch (const pipeline::ConfigError& e) {
    std::cerr << "psfphot frame: invalid configuration:\n";
    for (const auto& p : e.problems()) std::cerr << "  " << p << "\n";
    return kExitUsage;
  }
  if (a.print_config) {
    std::cout << pipeline::effective_config_toml(cfg);
    return kExitOk;
  }
  if (a.output.empty()) {
    std::cerr << "psfphot frame: -o/--output is required\n";
    return kExitUsage;
  }
  std::error_code ec;
  if (std::filesystem::exists(a.output, ec) && !a.overwrite) {
    std::cerr << "psfphot frame: " << a.output
              << " exists already (use --overwrite to replace it)\n";
    return kExitUsage;
  }
  // The time outside the per-frame steps is reported too: with the masters read and
  // normalised it is a visible share of a 4096^2 frame.
  using clock = std::chrono::steady_clock;
  auto ms_since = [](clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock::now() - t0).count();
  };
  const auto t_masters = clock::now();
  pipeline::Masters masters;
  const std::string mask_file = a.mask.empty() ? cfg.frame.mask.file : a.mask;
  try {
    // Mapped from their files: one frame's run is short, and copies of them were
    // frame-sized first touches (docs/performance.md).
    masters = pipeline::load_masters(a.dark, {}, a.flat, {}, mask_file, cfg.frame,
                                     cfg.night.combine, nullptr, /*map_files=*/true);
  } catch (const std::exception& e) {
    std::cerr << "psfphot frame: cannot load calibration frames: " << e.what() << "\n";
    return kExitFailure;
  }
  const double masters_ms = ms_since(t_masters);
  const bool keep = !a.write_calibrated.empty() || !a.write_background.empty() ||
                    !a.write_rms.empty() || !a.write_subtracted.empty();
  pipeline::FrameProducts products;
  // The masters are this frame's alone: their memory is reused once it is calibrated.
  FrameResult r = pipeline::process_frame(0, a.science, cfg.frame, std::move(masters),
                                          keep ? &products : nullptr);
  if (!r.ok()) {
    std::cerr << "psfphot frame: " << a.science << ": " << to_string(r.status) << " in step "
              << r.failed_step << ": " << r.message << "\n";
    return kExitFailure;
  }
  const auto t_write = clock::now();
  io::write_stars_csv(a.output, r.stars);
  io::FitsWriteOptions fo;
  fo.overwrite = a.overwrite;
  auto cards = products.header.cards;
  if (!a.write_calibrated.empty())
    io::write_fits(a.write_calibrated, products.calibrated.cview(), cards, fo);
  if (!a.write_background.empty())
    io::write_fits(a.write_background, products.background.cview(), cards, fo);
  if (!a.write_rms.empty()) io::write_fits(a.write_rms, products.rms.cview(), cards, fo);
  if (!a.write_subtracted.empty()) {
    Image<float> sub = products.calibrated.clone();
    for (std::size_t i = 0; i < sub.size(); ++i) sub.data()[i] -= products.background.data()[i];
    io::write_fits(a.write_subtracted, sub.cview(), cards, fo);
  }
  const double write_ms = ms_since(t_write);
  int flagged = 0;
  for (const Star& s : r.stars) flagged += s.flags != 0;
  std::printf(
      "%s: %zu stars (%d flagged), %d raw peaks, PSF sigma %.3f px, sky %.2f ADU, rms %.3f ADU, "
      "%.0f ms\n",
      a.science.c_str(), r.stars.size(), flagged, r.summary.n_peaks, r.summary.psf_sigma_px,
      r.summary.sky_adu, r.summary.sky_rms_adu, r.total_ms);
  if (std::isfinite(r.summary.bias_adu))
    std::printf("  overscan bias %.2f ADU subtracted\n", r.summary.bias_adu);
  // A master dark that still held its bias: say so (it was taken out by its own strip).
  if (std::isfinite(r.summary.dark_bias_adu) && std::abs(r.summary.dark_bias_adu) >= 1.0)
    std::printf("  the master dark's overscan reads %.2f ADU: its bias, subtracted from it\n",
                r.summary.dark_bias_adu);
  std::printf("  %-10s %8.1f ms\n", "masters", masters_ms);
  for (const auto& t : r.timings) std::printf("  %-10s %8.1f ms\n", t.step.c_str(), t.ms);
  std::printf("  %-10s %8.1f ms\n", "write", write_ms);
  std::printf("wrote %s\n", a.output.c_str());
  return kExitOk;
}

}  // namespace

void add_frame_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<FrameArgs>();
  auto* cmd =
      app.add_subcommand("frame", "Photometry of one raw frame: FITS in, star table (CSV) out");
  cmd->add_option("science", a->science, "raw science frame (FITS; file.fits[1] selects an HDU)")
      ->required();
  cmd->add_option("--dark", a->dark, "master dark (FITS)");
  cmd->add_option("--flat", a->flat, "master flat (FITS), normalised per calibration.flat_norm");
  cmd->add_option("--mask", a->mask,
                  "mask FITS: non-zero pixels are excluded from background and detection");
  cmd->add_option("-c,--config", a->config, "pipeline config (TOML); see configs/default.toml");
  cmd->add_option("--set", a->sets, "override a config key: section.key=value (repeatable)");
  cmd->add_option("--threads", a->threads,
                  "OpenMP threads (default: OMP_NUM_THREADS or all cores)");
  cmd->add_option("-o,--output", a->output, "output CSV (one row per star)");
  cmd->add_option("--write-calibrated", a->write_calibrated,
                  "also write the calibrated frame (FITS)");
  cmd->add_option("--write-background", a->write_background,
                  "also write the background map (FITS)");
  cmd->add_option("--write-rms", a->write_rms, "also write the background RMS map (FITS)");
  cmd->add_option("--write-subtracted", a->write_subtracted,
                  "also write calibrated minus background (FITS)");
  cmd->add_flag("--overwrite", a->overwrite, "replace existing output files");
  cmd->add_flag("--print-config", a->print_config, "print the effective configuration and exit");
  cmd->callback([a, &exit_code]() { exit_code = run_frame(*a); });
}

}  // namespace psfphot::apps
