#pragma once
// Logging set-up (spdlog). One logger per process; the MPI rank (when there is one) is
// part of the pattern so interleaved rank output stays readable. Algorithms never log.
#include <string>

namespace psfphot::pipeline {

enum class LogLevel { kQuiet, kInfo, kDebug };

// Configure the default logger: stderr, pattern "[time] [rank r] [level] message",
// optionally also a per-rank file `log_file` (folder created by the caller).
// Not thread-safe with respect to other set-up calls; call once at start-up.
void setup_logging(int rank, LogLevel level, const std::string& log_file = "");

// The default logger of the one-shot commands (frame, master, quicklook, ...): stderr,
// pattern "psfphot: [level] message", level info. Without it spdlog's own default logger
// writes to stdout, where a warning would land among a command's printed results. psfphot
// run replaces it with setup_logging. Call once at start-up.
void setup_command_logging();

}  // namespace psfphot::pipeline
