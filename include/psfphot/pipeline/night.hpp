#pragma once
// A night: the list of frames, the masters, the catalogue, progress. The MPI-free parts
// of `psfphot run` live here; farm/scheduler.hpp distributes the same work over ranks.
//
// Frame ids are the 0-based positions of the science files in the sorted, de-duplicated
// list the night config's globs resolve to, so the same night gets the same ids on any
// layout, and a resumed run recognises its frames.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "psfphot/core/frame_result.hpp"
#include "psfphot/pipeline/config.hpp"
#include "psfphot/pipeline/masters.hpp"

namespace psfphot::pipeline {

// Run-level problems (bad config, globs matching nothing, unwritable output, existing
// catalogue without --resume/--overwrite): reported at start-up, before any work.
class RunError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class OutputMode { kCreate, kResume, kOverwrite };

struct RunOptions {
  std::string output;  // overrides night.output when non-empty
  OutputMode mode = OutputMode::kCreate;
  int threads = 0;  // overrides night.threads when > 0
  bool quiet = false;
};

struct NightPlan {
  std::vector<std::string> frames;  // science files; index = frame id
  std::vector<std::string> darks, flats;
  std::string master_dark, master_flat, mask_file;
  std::string output;  // catalogue path
  std::string log_dir;
  std::string config_text;  // effective config stored in the catalogue
};

// Expand globs ("*", "?", "[...]" via POSIX glob) and "@list" files (one path a line,
// '#' comments), relative to `base_dir`. Throws RunError naming a pattern that matched
// nothing or an unreadable list file.
std::vector<std::string> expand_paths(const std::vector<std::string>& patterns,
                                      const std::string& base_dir);

// Everything a run needs to know before it starts; throws RunError.
NightPlan plan_night(const Config& cfg, const RunOptions& opt);

// Frames-done / failed / rate / ETA bookkeeping and its log line.
class Progress {
 public:
  Progress(std::int64_t total, std::int64_t already_done);
  // Record one finished frame; returns the progress line to log.
  std::string record(const FrameResult& r);
  std::string summary() const;
  std::int64_t done() const { return done_; }
  std::int64_t failed() const { return failed_; }
  std::int64_t stars() const { return stars_; }

 private:
  std::int64_t total_, skipped_, done_ = 0, failed_ = 0, stars_ = 0;
  std::chrono::steady_clock::time_point start_;
};

// Exit status of a finished run (docs/exit-codes.md).
inline constexpr int kRunOk = 0;
inline constexpr int kRunSomeFramesFailed = 3;
inline constexpr int kRunInterrupted = 4;

}  // namespace psfphot::pipeline
