#pragma once
// The on-disk schema of the psfphot catalogue (HDF5), built in ONE place beside the
// records it describes. docs/catalogue.md is the user's view of the same tables.
//
// - /stars: one row per Star (core/star.hpp), compound type with one member per Star
//   field, same names, same order, native little-endian types.
// - /frames: one FrameRow per frame (below), the commit marker and index of /stars.
// Both tables come from the column lists star_columns() / frame_columns(), which also
// give every column's unit and description (HDF5 attributes, astropy metadata, docs).
// A static_assert in the .cpp checks the lists cover Star / FrameRow byte for byte, so a
// field added to Star without a column here fails to compile.
//
// Units are astropy/FITS unit strings: "pix", "adu", "adu / pix", "deg", "d" (days),
// "s", "ms"; "" is dimensionless; nullptr means "not a quantity" (ids, flags, text).
//
// The HDF5 type functions return hid_t values spelled std::int64_t (hid_t is int64_t
// since HDF5 1.10; checked in the .cpp) so that this header does not pull <hdf5.h>
// (and, through Debian's parallel HDF5 build, <mpi.h>) into its users. The caller owns
// the returned id and closes it with H5Tclose. Not thread-safe (HDF5 is built without
// its thread-safety option): call from one thread at a time.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "psfphot/core/frame_result.hpp"
#include "psfphot/core/star.hpp"

namespace psfphot::io {

// Layout version of the whole catalogue (datasets, columns, attributes). Stored as the
// root attribute psfphot_schema_version; readers refuse a newer one. History:
//   1: the first catalogues.
//   2: /frames gained bias_adu and dark_bias_adu (after sky_rms_adu).
// Readers read every version 1..kCatalogueSchemaVersion (a column the file's version lacks
// reads as its frame_fill_value(), NaN for both bias columns); the writer appends only to
// a catalogue of its own version (docs/catalogue.md "Schema versions").
inline constexpr int kCatalogueSchemaVersion = 2;

enum class ColumnType { kInt32, kInt64, kUInt32, kFloat64, kString };

struct ColumnInfo {
  const char* name;  // HDF5 member name == C++ field name
  ColumnType type;
  std::size_t offset;  // offsetof in the record
  std::size_t size;    // bytes; fixed-length strings include the terminating NUL
  const char* unit;    // see the header comment; nullptr = not a quantity
  const char* description;
};

// Columns of /stars, in Star field order (offsets from offsetof(Star, ...)).
std::span<const ColumnInfo> star_columns();

// Text field sizes of a /frames row, bytes including the terminating NUL.
inline constexpr std::size_t kPathBytes = 512;
inline constexpr std::size_t kStatusNameBytes = 32;
inline constexpr std::size_t kStepBytes = 32;
inline constexpr std::size_t kMessageBytes = 512;
inline constexpr std::size_t kFilterBytes = 32;

// One /frames row as stored (no padding: 1224 bytes). Text is UTF-8, NUL-terminated and
// NUL-padded. A frame's stars are /stars rows [stars_start, stars_start + stars_count).
// bias_adu / dark_bias_adu (schema version 2 on) are FrameSummary's: the median of the
// frame's overscan strip, and of the same strip in the master dark (taken out of the dark
// too); NaN when no overscan correction was made (or there was no dark).
struct FrameRow {
  std::int64_t frame_id;
  char path[kPathBytes];               // input file as given to the run
  std::int32_t status;                 // FrameStatus value
  char status_name[kStatusNameBytes];  // to_string(status): "ok", "read-failed", ...
  char failed_step[kStepBytes];        // empty when ok
  char message[kMessageBytes];         // why the frame failed; empty when ok
  char filter[kFilterBytes];           // FILTER header value
  std::int32_t n_stars;                // stars measured (== stars_count)
  double mjd_obs;                      // days
  double exptime_s;                    // s
  double psf_sigma_px;                 // PSF Gaussian sigma used for photometry, px
  double sky_adu;                      // median background, ADU/pixel
  double sky_rms_adu;                  // median background RMS, ADU/pixel
  double bias_adu;                     // overscan level subtracted, ADU; NaN: none (v2)
  double dark_bias_adu;                // master dark's overscan level, ADU; NaN: none (v2)
  double total_ms;                     // wall time of the frame's processing
  std::int32_t worker_rank;            // MPI rank that processed it
  std::int32_t n_peaks;                // raw peaks before rejection
  std::int64_t stars_start;            // first /stars row of this frame
  std::int64_t stars_count;            // its number of /stars rows
};
static_assert(std::is_trivially_copyable_v<FrameRow>);
static_assert(std::is_standard_layout_v<FrameRow>);

// Columns of /frames, in FrameRow field order.
std::span<const ColumnInfo> frame_columns();
// The catalogue schema version that introduced /frames column `name` (1 for the first
// columns); throws std::invalid_argument for a name that is not a /frames column.
int frame_column_since(const std::string& name);

// The /frames row of `r` whose stars start at /stars row `stars_start`. Text longer than
// its field is cut at a UTF-8 character boundary and ends with "...".
FrameRow make_frame_row(const FrameResult& r, std::int64_t stars_start);

// A fixed-length text field as a std::string (up to the first NUL).
std::string field_text(const char* field, std::size_t size);
template <std::size_t N>
std::string field_text(const char (&field)[N]) {
  return field_text(field, N);
}

// Fill values: what an allocated but never written row reads as. frame_id = -1 marks
// such a row, so a crash cannot make one look committed.
Star star_fill_value();
FrameRow frame_fill_value();

// HDF5 compound types (see the header comment for ownership).
std::int64_t make_star_type();
std::int64_t make_frame_row_type();
// The /frames type a catalogue of `schema_version` stores: that version's columns in
// FrameRow order, packed (every FrameRow version had no padding). For the current version
// it equals make_frame_row_type(); for version 1 it is the 1208-byte row of the first
// catalogues. Throws std::invalid_argument for a version outside 1..kCatalogueSchemaVersion.
std::int64_t make_frame_file_type(int schema_version);
// Reads a version-`schema_version` /frames table into FrameRow records: a compound of
// sizeof(FrameRow) holding that version's columns at their FrameRow offsets, so the
// fields the version lacks keep what the buffer held (fill it with frame_fill_value()).
// Same exceptions as make_frame_file_type().
std::int64_t make_frame_read_type(int schema_version);
// A compound type of sizeof(Star) holding only `columns` (names from star_columns()) at
// their Star offsets: reading /stars with it fills only those fields of a Star buffer.
// Throws std::invalid_argument naming an unknown or repeated column.
std::int64_t make_star_subset_type(const std::vector<std::string>& columns);
// A compound type of one double named `column` (any numeric star or frame column;
// HDF5 converts integers): reads one column into a std::vector<double>.
// Throws std::invalid_argument for an unknown or text column.
std::int64_t make_double_column_type(std::span<const ColumnInfo> columns,
                                     const std::string& column);

// Names of the star flag bits: element i names bit (1u << i) (star_flag::name).
std::vector<std::string> flag_bit_names();
// Names of the FrameStatus values: element i names status i (to_string).
std::vector<std::string> status_names();

// The YAML lines astropy (>= 3.0, astropy.io.misc.hdf5 with serialize_meta=True) stores
// in the dataset "<table>.__table_column_meta__" beside a table: every column's name,
// datatype, unit and description, then `table_meta` as the table's ordered meta.
// Values are quoted as YAML single-quoted scalars.
std::vector<std::string> astropy_table_meta(
    std::span<const ColumnInfo> columns,
    const std::vector<std::pair<std::string, std::string>>& table_meta);

}  // namespace psfphot::io
