// psfphot run NIGHT.toml: the whole night into one HDF5 catalogue, on one or many MPI
// ranks (`mpirun -n N psfphot run ...`).
#include <omp.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>

#include "commands.hpp"
#include "psfphot/farm/mpi_session.hpp"
#include "psfphot/farm/scheduler.hpp"
#include "psfphot/pipeline/config.hpp"
#include "psfphot/pipeline/logging.hpp"
#include "psfphot/pipeline/night.hpp"

namespace psfphot::apps {
namespace {

// Set by SIGTERM/SIGINT (Slurm's --signal, Ctrl-C); polled between frames. A signal
// handler can only talk through such a flag, hence this one piece of global state.
volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int) {
  g_stop = 1;
}

struct RunArgs {
  std::string config, output;
  std::vector<std::string> sets;
  bool resume = false, overwrite = false, quiet = false;
  int threads = 0;
};

int run_run(const RunArgs& a, int argc_dummy) {
  (void)argc_dummy;
  // Handlers first: a stop request during start-up is honoured too.
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  int argc = 0;
  char** argv = nullptr;
  farm::MpiSession mpi(&argc, &argv);
  // Again after MPI_Init: the MPI runtime may have installed handlers of its own.
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  pipeline::setup_logging(mpi.rank(),
                          a.quiet ? pipeline::LogLevel::kQuiet : pipeline::LogLevel::kInfo);
  pipeline::Config cfg;
  try {
    cfg = pipeline::load_config(a.config, a.sets, /*allow_night=*/true);
  } catch (const pipeline::ConfigError& e) {
    if (mpi.rank() == 0) {
      std::cerr << "psfphot run: invalid configuration:\n";
      for (const auto& p : e.problems()) std::cerr << "  " << p << "\n";
    }
    return kExitUsage;
  }
  if (a.resume && a.overwrite) {
    if (mpi.rank() == 0) std::cerr << "psfphot run: --resume and --overwrite exclude each other\n";
    return kExitUsage;
  }
  const int threads = a.threads > 0 ? a.threads : cfg.night.threads;
  if (threads > 0) omp_set_num_threads(threads);
  pipeline::RunOptions opt;
  opt.output = a.output;
  opt.mode = a.resume
                 ? pipeline::OutputMode::kResume
                 : (a.overwrite ? pipeline::OutputMode::kOverwrite : pipeline::OutputMode::kCreate);
  opt.threads = threads;
  opt.quiet = a.quiet;
  return farm::run_night(mpi, cfg, opt, [] { return g_stop != 0; });
}

}  // namespace

void add_run_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand(
      "run",
      "Photometry of a whole night into one HDF5 catalogue ([mpirun -n N] psfphot run NIGHT.toml)");
  cmd->add_option("night", a->config, "night config (TOML with a [night] section); see configs/")
      ->required();
  cmd->add_option("-o,--output", a->output, "catalogue path (overrides night.output)");
  cmd->add_option("--set", a->sets, "override a config key: section.key=value (repeatable)");
  cmd->add_flag("--resume", a->resume,
                "continue an existing catalogue: frames already in it are skipped");
  cmd->add_flag("--overwrite", a->overwrite, "replace an existing catalogue");
  cmd->add_option("--threads", a->threads, "OpenMP threads per rank (overrides night.threads)");
  cmd->add_flag("-q,--quiet", a->quiet,
                "only warnings on the terminal (the log files keep everything)");
  cmd->callback([a, &exit_code]() { exit_code = run_run(*a, 0); });
}

}  // namespace psfphot::apps
