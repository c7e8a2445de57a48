#pragma once
// Private to src/io: what the catalogue writer and reader share: building an empty
// catalogue file, recognising one, opening it, and finding its committed frames.
#include <cstdint>
#include <string>
#include <vector>

#include "hdf5_support.hpp"
#include "psfphot/io/catalogue.hpp"

namespace psfphot::io::detail {

inline constexpr const char* kStars = "stars";
inline constexpr const char* kFrames = "frames";

// File access properties: latest file format (SWMR needs it). With `clear_status_flags`
// the open also clears the "open for writing" mark a killed writer leaves (what
// `h5clear -s` does, through the same HDF5 property).
h5::Handle file_access(bool clear_status_flags = false);

// Root-attribute values of a new catalogue.
struct FileMeta {
  std::string creation_time;  // ISO 8601 UTC
  std::string config_text;
  std::string software_version;
  std::string git_hash;
};
FileMeta new_file_meta(const std::string& config_text);  // now, this build's version
std::string utc_now_iso8601();

// Build a complete, empty catalogue at `file_path` (truncating anything there), close it
// and fsync it. Tables are chunked per `opt`, compressed when `deflate_level` > 0.
// `shown_path` is the name used in error messages.
void build_catalogue(const std::string& file_path, const std::string& shown_path,
                     const FileMeta& meta, const CatalogueOptions& opt, int deflate_level);

// Whether a table has any filter (compression) in its pipeline.
bool is_compressed(hid_t dset);

// Rename `from` over `to` and fsync the folder; throws CatalogueError (removing `from`).
void rename_into_place(const std::string& from, const std::string& to);

// Rewrites the closed catalogue at `path` as "<path>.compacting" holding its committed
// frames only, compressed with opt.deflate_level, and renames it over `path`. The copy
// has this build's schema version (columns an older file lacks would be fill values; the
// writer, its only caller, only ever holds catalogues of its own version). Whole
// chunks are written once each, so the result has no dead space. A failure removes the
// temporary file and leaves the original untouched.
void compact_catalogue(const std::string& path, const CatalogueOptions& opt);

// Reads and checks the root attributes: throws CatalogueError unless `file` is a psfphot
// catalogue of a schema this build reads.
CatalogueInfo read_info(hid_t file, const std::string& path);

// How an existing file was opened read-only.
struct ReadOpen {
  h5::Handle file;
  bool was_left_open = false;  // only SWMR-read could open it (writer killed or writing)
};
// Checks `path` is an existing regular HDF5 file and opens it read-only: ordinary open
// first, SWMR read as a fallback. Throws CatalogueError with a clear reason.
ReadOpen open_read_only(const std::string& path);

// Opens /stars and /frames (with a chunk cache of a few chunks) and checks their types
// are those of a catalogue of `schema_version` (read_info's, 1..kCatalogueSchemaVersion);
// throws CatalogueError otherwise.
struct Tables {
  h5::Handle stars;
  h5::Handle frames;
};
Tables open_tables(hid_t file, const std::string& path, int schema_version);

// The committed state of an open catalogue: the longest prefix of /frames rows that
// chain through /stars ([stars_start, +stars_count) contiguous from row 0, inside the
// /stars extent, valid status) and whose last frame with stars really has its rows
// (every frame_id matches). Anything after it is a write the crash interrupted. /frames is
// read as a table of `schema_version`: columns it lacks hold frame_fill_value()'s.
struct Committed {
  std::vector<FrameRow> rows;
  std::int64_t star_rows = 0;    // end of the last committed frame's stars
  std::int64_t frame_total = 0;  // /frames rows present (committed or not)
  std::int64_t star_total = 0;   // /stars rows present
};
Committed committed_state(hid_t frames, hid_t stars, const std::string& path, int schema_version);

// fsync a file or the folder holding it; false on failure (errno set).
bool fsync_path(const std::string& path);
bool fsync_parent(const std::string& path);

}  // namespace psfphot::io::detail
