#include "psfphot/io/catalogue_schema.hpp"

#include <hdf5.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <type_traits>

namespace psfphot::io {

static_assert(std::is_same_v<hid_t, std::int64_t>,
              "catalogue_schema.hpp spells hid_t as std::int64_t (HDF5 >= 1.10)");

namespace {

using CT = ColumnType;

#define PSFPHOT_STAR_COL(field, type, unit, doc)                        \
  ColumnInfo {                                                          \
#field, type, offsetof(Star, field), sizeof(Star::field), unit, doc \
  }

constexpr std::array kStarColumns = {
    PSFPHOT_STAR_COL(frame_id, CT::kInt64, nullptr, "frame the star was measured on"),
    PSFPHOT_STAR_COL(star_id, CT::kInt32, nullptr,
                     "0-based id within the frame, ordered by (peak_y, peak_x)"),
    PSFPHOT_STAR_COL(peak_x, CT::kInt32, "pix", "peak pixel column (0-based)"),
    PSFPHOT_STAR_COL(peak_y, CT::kInt32, "pix", "peak pixel row (0-based)"),
    PSFPHOT_STAR_COL(flags, CT::kUInt32, nullptr, "star_flag bits (see flag_bit_names)"),
    PSFPHOT_STAR_COL(peak_value, CT::kFloat64, "adu",
                     "background-subtracted value at the peak pixel"),
    PSFPHOT_STAR_COL(centroid_x, CT::kFloat64, "pix",
                     "centroid column (0-based, pixel centres "
                     "at integers)"),
    PSFPHOT_STAR_COL(centroid_y, CT::kFloat64, "pix", "centroid row (0-based)"),
    PSFPHOT_STAR_COL(centroid_err_x, CT::kFloat64, "pix", "1-sigma error of centroid_x"),
    PSFPHOT_STAR_COL(centroid_err_y, CT::kFloat64, "pix", "1-sigma error of centroid_y"),
    PSFPHOT_STAR_COL(width_x, CT::kFloat64, "pix", "second-moment sigma along x"),
    PSFPHOT_STAR_COL(width_y, CT::kFloat64, "pix", "second-moment sigma along y"),
    PSFPHOT_STAR_COL(psf_flux, CT::kFloat64, "adu", "Gaussian PSF flux (total over the plane)"),
    PSFPHOT_STAR_COL(psf_flux_err, CT::kFloat64, "adu", "1-sigma error of psf_flux"),
    PSFPHOT_STAR_COL(snr, CT::kFloat64, "", "psf_flux / psf_flux_err"),
    PSFPHOT_STAR_COL(background, CT::kFloat64, "adu / pix", "local sky at the centroid"),
    PSFPHOT_STAR_COL(background_rms, CT::kFloat64, "adu / pix", "local sky RMS"),
    PSFPHOT_STAR_COL(ra_deg, CT::kFloat64, "deg",
                     "FK5 J2000 right ascension from the frame's WCS (NaN without one)"),
    PSFPHOT_STAR_COL(dec_deg, CT::kFloat64, "deg",
                     "FK5 J2000 declination from the frame's WCS (NaN without one)"),
};
#undef PSFPHOT_STAR_COL

#define PSFPHOT_FRAME_COL(field, type, unit, doc)                               \
  ColumnInfo {                                                                  \
#field, type, offsetof(FrameRow, field), sizeof(FrameRow::field), unit, doc \
  }

constexpr std::array kFrameColumns = {
    PSFPHOT_FRAME_COL(frame_id, CT::kInt64, nullptr, "frame id (position in the night)"),
    PSFPHOT_FRAME_COL(path, CT::kString, nullptr, "input FITS file as given to the run"),
    PSFPHOT_FRAME_COL(status, CT::kInt32, nullptr, "0 = ok, else the failure (status_names)"),
    PSFPHOT_FRAME_COL(status_name, CT::kString, nullptr, "status as text: ok, read-failed, ..."),
    PSFPHOT_FRAME_COL(failed_step, CT::kString, nullptr, "pipeline step that failed, or empty"),
    PSFPHOT_FRAME_COL(message, CT::kString, nullptr, "why the frame failed, or empty"),
    PSFPHOT_FRAME_COL(filter, CT::kString, nullptr, "FILTER header value"),
    PSFPHOT_FRAME_COL(n_stars, CT::kInt32, nullptr, "stars measured (== stars_count)"),
    PSFPHOT_FRAME_COL(mjd_obs, CT::kFloat64, "d", "modified Julian date of the exposure"),
    PSFPHOT_FRAME_COL(exptime_s, CT::kFloat64, "s", "exposure time"),
    PSFPHOT_FRAME_COL(psf_sigma_px, CT::kFloat64, "pix", "PSF Gaussian sigma used for photometry"),
    PSFPHOT_FRAME_COL(sky_adu, CT::kFloat64, "adu / pix", "median background"),
    PSFPHOT_FRAME_COL(sky_rms_adu, CT::kFloat64, "adu / pix", "median background RMS"),
    PSFPHOT_FRAME_COL(bias_adu, CT::kFloat64, "adu",
                      "overscan (bias) level subtracted from the frame; NaN without overscan "
                      "correction"),
    PSFPHOT_FRAME_COL(dark_bias_adu, CT::kFloat64, "adu",
                      "overscan level of the master dark, taken out of it; NaN without dark "
                      "or overscan correction"),
    PSFPHOT_FRAME_COL(total_ms, CT::kFloat64, "ms", "wall time to process the frame"),
    PSFPHOT_FRAME_COL(worker_rank, CT::kInt32, nullptr, "MPI rank that processed the frame"),
    PSFPHOT_FRAME_COL(n_peaks, CT::kInt32, nullptr, "raw peaks before rejection"),
    PSFPHOT_FRAME_COL(stars_start, CT::kInt64, nullptr, "first /stars row of this frame"),
    PSFPHOT_FRAME_COL(stars_count, CT::kInt64, nullptr, "number of /stars rows of this frame"),
};
#undef PSFPHOT_FRAME_COL

// /frames columns added after schema version 1, with the version that added them. A
// reader of an older catalogue leaves them at their fill value.
struct AddedColumn {
  const char* name;
  int since;
};
constexpr std::array kFrameColumnsAdded = {
    AddedColumn{"bias_adu", 2},
    AddedColumn{"dark_bias_adu", 2},
};

constexpr int since_version(const char* name) {
  for (const auto& a : kFrameColumnsAdded)
    if (std::string_view(a.name) == name) return a.since;
  return 1;
}

constexpr bool added_columns_known() {
  for (const auto& a : kFrameColumnsAdded) {
    bool found = false;
    for (const auto& c : kFrameColumns) found = found || std::string_view(c.name) == a.name;
    if (!found || a.since < 2 || a.since > kCatalogueSchemaVersion) return false;
  }
  return true;
}
static_assert(added_columns_known(), "kFrameColumnsAdded must name /frames columns of 2..current");

// The column list must tile the record exactly: no gap, no overlap, nothing left over.
template <std::size_t N>
constexpr bool tiles(const std::array<ColumnInfo, N>& cols, std::size_t record_size) {
  std::size_t end = 0;
  for (const auto& c : cols) {
    if (c.offset != end) return false;
    end = c.offset + c.size;
  }
  return end == record_size;
}
static_assert(tiles(kStarColumns, sizeof(Star)),
              "star_columns() must list every Star field in order: update it with Star");
static_assert(tiles(kFrameColumns, sizeof(FrameRow)), "frame_columns() must tile FrameRow");
static_assert(sizeof(FrameRow) == 1224);

hid_t member_type(const ColumnInfo& c) {
  switch (c.type) {
    case CT::kInt32: return H5Tcopy(H5T_NATIVE_INT32);
    case CT::kInt64: return H5Tcopy(H5T_NATIVE_INT64);
    case CT::kUInt32: return H5Tcopy(H5T_NATIVE_UINT32);
    case CT::kFloat64: return H5Tcopy(H5T_NATIVE_DOUBLE);
    case CT::kString: {
      hid_t t = H5Tcopy(H5T_C_S1);
      H5Tset_size(t, c.size);
      H5Tset_strpad(t, H5T_STR_NULLTERM);
      H5Tset_cset(t, H5T_CSET_UTF8);
      return t;
    }
  }
  return H5I_INVALID_HID;
}

template <typename Pred>
hid_t compound(std::span<const ColumnInfo> cols, std::size_t size, Pred keep) {
  hid_t t = H5Tcreate(H5T_COMPOUND, size);
  if (t < 0) throw std::runtime_error("H5Tcreate(H5T_COMPOUND) failed");
  for (const auto& c : cols) {
    if (!keep(c)) continue;
    hid_t m = member_type(c);
    herr_t st = H5Tinsert(t, c.name, c.offset, m);
    H5Tclose(m);
    if (st < 0) {
      H5Tclose(t);
      throw std::runtime_error(std::string("H5Tinsert failed for column ") + c.name);
    }
  }
  return t;
}

const ColumnInfo* find(std::span<const ColumnInfo> cols, const std::string& name) {
  for (const auto& c : cols)
    if (name == c.name) return &c;
  return nullptr;
}

// Copy `s` into a NUL-terminated field of `size` bytes; cut at a UTF-8 boundary with
// "..." when it does not fit.
void set_text(char* field, std::size_t size, const std::string& s) {
  std::memset(field, 0, size);
  if (s.size() < size) {
    std::memcpy(field, s.data(), s.size());
    return;
  }
  std::size_t n = size - 4;  // room for "..." and the NUL
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0u) == 0x80u) --n;
  std::memcpy(field, s.data(), n);
  std::memcpy(field + n, "...", 3);
}

std::string yaml_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "''";
    } else if (c == '\n' || c == '\r' || c == '\t') {
      out += ' ';  // a single-quoted scalar folds line breaks anyway: keep one line
    } else {
      out += c;
    }
  }
  return out + "'";
}

const char* astropy_datatype(ColumnType t) {
  switch (t) {
    case CT::kInt32: return "int32";
    case CT::kInt64: return "int64";
    case CT::kUInt32: return "uint32";
    case CT::kFloat64: return "float64";
    case CT::kString: return "string";
  }
  return "string";
}

}  // namespace

std::span<const ColumnInfo> star_columns() {
  return kStarColumns;
}
std::span<const ColumnInfo> frame_columns() {
  return kFrameColumns;
}

FrameRow make_frame_row(const FrameResult& r, std::int64_t stars_start) {
  FrameRow row{};
  row.frame_id = r.frame_id;
  set_text(row.path, sizeof row.path, r.path);
  row.status = static_cast<std::int32_t>(r.status);
  set_text(row.status_name, sizeof row.status_name, to_string(r.status));
  set_text(row.failed_step, sizeof row.failed_step, r.failed_step);
  set_text(row.message, sizeof row.message, r.message);
  set_text(row.filter, sizeof row.filter, r.summary.filter);
  row.n_stars = static_cast<std::int32_t>(r.stars.size());
  row.mjd_obs = r.summary.mjd_obs;
  row.exptime_s = r.summary.exptime_s;
  row.psf_sigma_px = r.summary.psf_sigma_px;
  row.sky_adu = r.summary.sky_adu;
  row.sky_rms_adu = r.summary.sky_rms_adu;
  row.bias_adu = r.summary.bias_adu;
  row.dark_bias_adu = r.summary.dark_bias_adu;
  row.total_ms = r.total_ms;
  row.worker_rank = r.worker_rank;
  row.n_peaks = r.summary.n_peaks;
  row.stars_start = stars_start;
  row.stars_count = static_cast<std::int64_t>(r.stars.size());
  return row;
}

std::string field_text(const char* field, std::size_t size) {
  std::size_t n = 0;
  while (n < size && field[n] != '\0') ++n;
  return std::string(field, n);
}

Star star_fill_value() {
  Star s = make_star(-1, -1, -1, -1);
  s.flags = 0;
  return s;
}

FrameRow frame_fill_value() {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  FrameRow row{};
  row.frame_id = -1;
  row.status = -1;
  row.n_stars = -1;
  row.mjd_obs = row.exptime_s = row.psf_sigma_px = nan;
  row.sky_adu = row.sky_rms_adu = row.total_ms = nan;
  row.bias_adu = row.dark_bias_adu = nan;
  row.worker_rank = -1;
  row.n_peaks = -1;
  row.stars_start = -1;
  row.stars_count = -1;
  return row;
}

std::int64_t make_star_type() {
  return compound(kStarColumns, sizeof(Star), [](const ColumnInfo&) { return true; });
}

std::int64_t make_frame_row_type() {
  return compound(kFrameColumns, sizeof(FrameRow), [](const ColumnInfo&) { return true; });
}

int frame_column_since(const std::string& name) {
  if (!find(kFrameColumns, name))
    throw std::invalid_argument("unknown frame column '" + name + "'");
  return since_version(name.c_str());
}

namespace {

void check_version(int schema_version) {
  if (schema_version < 1 || schema_version > kCatalogueSchemaVersion)
    throw std::invalid_argument("catalogue schema version " + std::to_string(schema_version) +
                                " is not one of 1.." + std::to_string(kCatalogueSchemaVersion));
}

}  // namespace

std::int64_t make_frame_file_type(int schema_version) {
  check_version(schema_version);
  // The columns of that version, each placed right after the previous one: the layout the
  // FrameRow of that version had (no padding in any of them).
  std::vector<ColumnInfo> cols;
  std::size_t end = 0;
  for (const auto& c : kFrameColumns) {
    if (since_version(c.name) > schema_version) continue;
    ColumnInfo packed = c;
    packed.offset = end;
    end += c.size;
    cols.push_back(packed);
  }
  return compound(cols, end, [](const ColumnInfo&) { return true; });
}

std::int64_t make_frame_read_type(int schema_version) {
  check_version(schema_version);
  return compound(kFrameColumns, sizeof(FrameRow),
                  [&](const ColumnInfo& c) { return since_version(c.name) <= schema_version; });
}

std::int64_t make_star_subset_type(const std::vector<std::string>& columns) {
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (!find(kStarColumns, columns[i]))
      throw std::invalid_argument("unknown star column '" + columns[i] + "'");
    for (std::size_t j = 0; j < i; ++j)
      if (columns[j] == columns[i])
        throw std::invalid_argument("star column '" + columns[i] + "' requested twice");
  }
  return compound(kStarColumns, sizeof(Star), [&](const ColumnInfo& c) {
    for (const auto& n : columns)
      if (n == c.name) return true;
    return false;
  });
}

std::int64_t make_double_column_type(std::span<const ColumnInfo> columns,
                                     const std::string& column) {
  const ColumnInfo* c = find(columns, column);
  if (!c) throw std::invalid_argument("unknown column '" + column + "'");
  if (c->type == CT::kString)
    throw std::invalid_argument("column '" + column + "' is text, not a number");
  hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(double));
  if (t < 0 || H5Tinsert(t, c->name, 0, H5T_NATIVE_DOUBLE) < 0) {
    if (t >= 0) H5Tclose(t);
    throw std::runtime_error("cannot build the HDF5 type for column " + column);
  }
  return t;
}

std::vector<std::string> flag_bit_names() {
  std::vector<std::string> names;
  for (std::uint32_t i = 0; i < star_flag::kCount; ++i)
    names.emplace_back(star_flag::name(1u << i));
  return names;
}

std::vector<std::string> status_names() {
  std::vector<std::string> names;
  for (int s = 0; s <= static_cast<int>(FrameStatus::kSkipped); ++s)
    names.emplace_back(to_string(static_cast<FrameStatus>(s)));
  return names;
}

std::vector<std::string> astropy_table_meta(
    std::span<const ColumnInfo> columns,
    const std::vector<std::pair<std::string, std::string>>& table_meta) {
  // astropy.table.meta.get_header_from_yaml reads this; every column of the table must
  // be listed (astropy looks each one up by name).
  std::vector<std::string> lines{"datatype:"};
  for (const auto& c : columns) {
    std::string l = std::string("- {name: ") + c.name;
    if (c.unit) l += std::string(", unit: ") + yaml_quote(c.unit);
    l += std::string(", datatype: ") + astropy_datatype(c.type);
    l += ", description: " + yaml_quote(c.description) + "}";
    lines.push_back(std::move(l));
  }
  if (!table_meta.empty()) {
    lines.emplace_back("meta: !!omap");
    for (const auto& [k, v] : table_meta) lines.push_back("- {" + k + ": " + yaml_quote(v) + "}");
  }
  return lines;
}

}  // namespace psfphot::io
