#pragma once
// Each psfphot sub-command lives in its own cmd_<name>.cpp and registers itself here.
// A command's callback returns the process exit code through the shared `exit_code`.
#include <CLI/CLI.hpp>

namespace psfphot::apps {

// Exit codes (docs/exit-codes.md lists them all).
inline constexpr int kExitOk = 0;
inline constexpr int kExitSomeFramesFailed = 3;  // finished, some frames failed
inline constexpr int kExitUsage = 2;             // bad command line / config / input
inline constexpr int kExitFailure = 1;           // could not do the job
inline constexpr int kExitInterrupted = 4;       // stopped by SIGTERM/SIGINT; --resume completes

void add_fitsinfo_command(CLI::App& app, int& exit_code);
void add_simulate_command(CLI::App& app, int& exit_code);
void add_score_command(CLI::App& app, int& exit_code);
void add_frame_command(CLI::App& app, int& exit_code);
void add_master_command(CLI::App& app, int& exit_code);
void add_run_command(CLI::App& app, int& exit_code);
void add_config_command(CLI::App& app, int& exit_code);
void add_info_command(CLI::App& app, int& exit_code);
void add_query_command(CLI::App& app, int& exit_code);
void add_quicklook_command(CLI::App& app, int& exit_code);

}  // namespace psfphot::apps
