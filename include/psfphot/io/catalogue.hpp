#pragma once
// The night's HDF5 catalogue: writer (rank 0 only) and reader. docs/catalogue.md is the
// user manual; io/catalogue_schema.hpp holds the tables' columns and units.
//
// Layout: /stars (one row per Star, a frame's rows contiguous), /frames (one FrameRow
// per appended frame, in append order: the commit marker and the index of /stars),
// astropy metadata "stars.__table_column_meta__" / "frames.__table_column_meta__", and
// attributes (root: psfphot_schema_version, star_schema_version, software,
// software_version, git_hash, creation_time, config_text; each table: column_names,
// column_units, column_descriptions; /stars: flag_bit_names; /frames: status_names).
//
// Durability (docs/catalogue.md "Durability"): the file is written in HDF5 SWMR mode
// (single writer / multiple readers), whose ordered flushes keep the file consistent
// on disk at every moment; append() ends with a flush (and an fsync unless disabled),
// so when append() returns the frame is committed and survives kill -9 of the process.
// After a kill the file still carries HDF5's "open for writing" mark: CatalogueReader
// and h5py.File(p, "r", swmr=True) read it as it is; resuming (or `h5clear -s`) clears
// the mark so any reader opens it. A frame whose /frames row is missing or whose rows
// are not all there is not committed: resume truncates it away and the caller redoes it.
// Only one writer per catalogue: a lock file "<catalogue>.lock" (flock) enforces it.
//
// Errors: every failure throws CatalogueError whose what() names the file and the
// problem, including the innermost HDF5 error (e.g. "errno = 28, error message = 'No
// space left on device'"); HDF5's automatic error printing is silenced while this code
// runs. After a failed append() the writer refuses further appends; what was committed
// before stays readable.
//
// Thread-safety: none. Debian's HDF5 is built without thread-safety; use the writer and
// readers from one thread at a time (psfphot: rank 0's main thread).
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "psfphot/core/frame_result.hpp"
#include "psfphot/core/star.hpp"
#include "psfphot/io/catalogue_schema.hpp"

namespace psfphot::io {

class CatalogueError : public std::runtime_error {
 public:
  // what() = "catalogue <path>: <problem>"
  CatalogueError(std::string path, const std::string& problem, std::string hdf5_stack = "");
  const std::string& path() const { return path_; }
  // HDF5's error stack (innermost first, one line each); empty when not an HDF5 error.
  const std::string& hdf5_stack() const { return stack_; }

 private:
  std::string path_;
  std::string stack_;
};

enum class CatalogueMode {
  kCreate,     // new catalogue; an existing file is an error
  kOverwrite,  // new catalogue; an existing file is replaced (only when the new one exists)
  kResume,     // continue an existing catalogue (repairing a crash); create it if absent
};

struct CatalogueOptions {
  std::string config_text;               // effective config (TOML), root attribute config_text
  std::int64_t stars_chunk_rows = 4096;  // /stars chunk, rows (136 B each)
  std::int64_t frames_chunk_rows = 64;   // /frames chunk, rows (1224 B each)
  int deflate_level = 4;         // of the finished file (close(true)), with byte shuffle; 0 = none
  bool sync_each_commit = true;  // fsync after each append: survives power loss, not only kill
};

// What opening for resume found and repaired.
struct ResumeReport {
  bool resumed = false;             // an existing catalogue was opened
  bool was_left_open = false;       // the previous writer did not close it (crash or kill)
  std::int64_t frames_kept = 0;     // committed /frames rows
  std::int64_t frames_dropped = 0;  // trailing rows dropped (half-written or "skipped")
  std::int64_t stars_dropped = 0;   // /stars rows after the last committed frame
};

struct CloseReport {
  std::uint64_t bytes_before = 0;  // file size at close
  std::uint64_t bytes_after = 0;   // after finalizing (== bytes_before when not rewritten)
  bool compacted = false;          // rewritten compressed and compact
  std::string compaction_error;    // rewrite failed: the catalogue is intact, uncompressed
};

class CatalogueWriter {
 public:
  // Opens per `mode`. Creation is atomic: the file is built as "<path>.creating" and
  // renamed into place, so a crash never leaves a half-created catalogue at `path`.
  // Errors name the path: existing file (kCreate), missing or unwritable folder, another
  // writer holding the lock, not an HDF5 file / not a psfphot catalogue / a schema version
  // other than kCatalogueSchemaVersion (kResume: an older catalogue is refused, as its
  // /frames rows lack this version's columns, by check_resumable() before the lock file is
  // made or anything beside or in the file changes). Sets SIGXFSZ
  // to ignored when it has its default action, so exceeding RLIMIT_FSIZE is an error
  // (EFBIG) instead of killing the process.
  CatalogueWriter(const std::string& path, CatalogueMode mode, CatalogueOptions options = {});
  ~CatalogueWriter();  // close(false); never throws
  CatalogueWriter(CatalogueWriter&&) noexcept;
  CatalogueWriter& operator=(CatalogueWriter&&) noexcept;

  // Stores the effective config. Allowed while no frame has been committed; on a resumed
  // catalogue with frames it keeps the stored text and returns false (compare with
  // stored_config_text() to decide whether resuming with another config is acceptable).
  bool set_config_text(const std::string& text);
  std::string stored_config_text() const;

  // Commits one frame: its stars as contiguous /stars rows, then its /frames row, then
  // flush (+ fsync). Every star must carry r.frame_id; a frame already done is refused.
  // A kSkipped result is recorded but the frame stays not-done (a resume redoes it).
  void append(const FrameResult& r);
  void flush();

  // Flushes and closes; the file is then an ordinary HDF5 file for every reader.
  // While writing, the tables are uncompressed (an append then costs a copy, not a
  // recompression of the last chunk: docs/catalogue.md "Durability"). With `finalize`,
  // close then rewrites the file compressed (deflate_level) and without dead space, as
  // "<path>.compacting" renamed over it: a failure or a kill leaves the original intact.
  // Pass false when the night is not finished (stopping on SIGTERM): the file stays in
  // its fast-append form for the resume, which finalizes at its end.
  CloseReport close(bool finalize = true);

  // Frames whose /frames row is committed with status ok or a failure (not kSkipped),
  // ascending.
  std::vector<std::int64_t> done_frame_ids() const;
  bool is_done(std::int64_t frame_id) const;
  std::int64_t frame_rows() const;
  std::int64_t star_rows() const;
  const ResumeReport& resume_report() const;
  const std::string& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Throws the CatalogueError CatalogueWriter(path, kResume) throws for a file it cannot
// append to: not a readable psfphot catalogue, or one of another schema version than
// kCatalogueSchemaVersion (the message names the file, its version and the writing
// psfphot's, this build's version, and what to do instead). Opens the file read-only and
// changes nothing, makes no lock file; a missing `path` passes (a resume creates it). For
// callers that want the refusal before expensive work (psfphot run checks it while planning
// the night, before the masters are built).
void check_resumable(const std::string& path);

// A /frames row decoded.
struct FrameEntry {
  std::int64_t frame_id = -1;
  std::string path;
  std::int32_t status = 0;  // FrameStatus value (int: a newer writer may add values)
  std::string status_name;
  std::string failed_step;
  std::string message;
  std::string filter;
  std::int32_t n_stars = 0;
  double mjd_obs = 0, exptime_s = 0, psf_sigma_px = 0, sky_adu = 0, sky_rms_adu = 0;
  // Overscan levels, ADU (FrameRow): NaN without overscan correction, and in a catalogue of
  // schema version 1, which has no such columns.
  double bias_adu = std::numeric_limits<double>::quiet_NaN();
  double dark_bias_adu = std::numeric_limits<double>::quiet_NaN();
  double total_ms = 0;
  std::int32_t worker_rank = 0;
  std::int32_t n_peaks = 0;
  std::int64_t stars_start = 0;
  std::int64_t stars_count = 0;
};
FrameEntry decode(const FrameRow& row);

struct CatalogueInfo {
  std::int64_t schema_version = 0;
  std::int64_t star_schema_version = 0;
  std::string software_version;
  std::string git_hash;
  std::string creation_time;  // ISO 8601 UTC
  std::string config_text;
};

class CatalogueReader {
 public:
  // Opens read-only, also while a writer is appending (a snapshot at open) and after a
  // crash (the committed frames only). Throws CatalogueError for a missing file, a
  // non-HDF5 file, a file that is not a psfphot catalogue, or a newer schema.
  explicit CatalogueReader(const std::string& path);
  ~CatalogueReader();
  CatalogueReader(CatalogueReader&&) noexcept;
  CatalogueReader& operator=(CatalogueReader&&) noexcept;

  const std::string& path() const;
  const CatalogueInfo& info() const;
  // Committed /frames rows in file order. A frame recorded "skipped" and redone later
  // has two rows; the later one is authoritative.
  const std::vector<FrameEntry>& frames() const;
  std::int64_t star_rows() const;  // committed /stars rows

  // Stars of the given frames (latest row of each id), in /stars order, reading only
  // their row ranges. `columns` empty = every field; otherwise only the named fields are
  // read and the others keep star_fill_value() (frame_id is always read). Throws
  // CatalogueError for an id with no row, std::invalid_argument for an unknown column.
  std::vector<Star> stars_for_frames(const std::vector<std::int64_t>& frame_ids,
                                     const std::vector<std::string>& columns = {}) const;
  // /stars rows [first, first + count) (clamped to the committed rows).
  std::vector<Star> stars(std::int64_t first, std::int64_t count,
                          const std::vector<std::string>& columns = {}) const;
  // One numeric /stars column as doubles for the given frames (empty = all committed
  // rows), 8 bytes per row in memory instead of 136.
  std::vector<double> star_column(const std::string& column,
                                  const std::vector<std::int64_t>& frame_ids = {}) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace psfphot::io
