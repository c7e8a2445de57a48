// psfphot: command-line entry point. Sub-commands are defined in cmd_*.cpp.
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>

#include "commands.hpp"
#include "psfphot/pipeline/logging.hpp"
#include "psfphot/version.hpp"

int main(int argc, char** argv) {
  // Frames are allocated and freed as whole images (16 MiB at 2048^2). glibc raises its
  // mmap threshold to the size of the last freed mmapped block (up to 32 MiB), after which
  // such images come from the heap and freed ones are kept there: a frame then cost ~30%
  // more resident memory than it uses (measured 122 vs 110 MiB, psfphot frame 2048^2).
  // A fixed threshold keeps every image an mmap that goes back to the system when freed.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  // Warnings of the one-shot commands go to stderr (psfphot run sets up its own logging).
  psfphot::pipeline::setup_command_logging();
  CLI::App app{"psfphot: PSF photometry of whole observing nights (FITS in, HDF5 out)"};
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", std::string("psfphot ") + psfphot::kVersion + " (git " +
                                        psfphot::kGitHash + ")");
  int exit_code = psfphot::apps::kExitOk;
  psfphot::apps::add_fitsinfo_command(app, exit_code);
  psfphot::apps::add_simulate_command(app, exit_code);
  psfphot::apps::add_score_command(app, exit_code);
  psfphot::apps::add_frame_command(app, exit_code);
  psfphot::apps::add_master_command(app, exit_code);
  psfphot::apps::add_run_command(app, exit_code);
  psfphot::apps::add_config_command(app, exit_code);
  psfphot::apps::add_info_command(app, exit_code);
  psfphot::apps::add_query_command(app, exit_code);
  psfphot::apps::add_quicklook_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 numbers its errors 100-112; psfphot documents one code for a bad command
    // line (docs/exit-codes.md). --help and --version stay 0.
    return app.exit(e) == 0 ? psfphot::apps::kExitOk : psfphot::apps::kExitUsage;
  } catch (const std::exception& e) {
    // Commands throw our own exceptions with the file and the problem in what().
    std::cerr << "psfphot: error: " << e.what() << "\n";
    return psfphot::apps::kExitFailure;
  }
  if (app.get_subcommands().empty()) {
    std::cout << app.help();
    return psfphot::apps::kExitUsage;
  }
  return exit_code;
}
