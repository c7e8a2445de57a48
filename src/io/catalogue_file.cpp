#include "catalogue_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "psfphot/version.hpp"

namespace psfphot::io::detail {
namespace {

using h5::check;
using h5::check_status;
using h5::Handle;

std::string joined(const std::vector<std::string>& names, const char* sep, bool with_values,
                   bool powers_of_two) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!out.empty()) out += sep;
    out += names[i];
    if (with_values) out += "=" + std::to_string(powers_of_two ? (1u << i) : i);
  }
  return out;
}

void create_table(hid_t file, const char* name, hid_t type, std::int64_t chunk_rows,
                  const void* fill, std::span<const ColumnInfo> cols,
                  const std::vector<std::pair<std::string, std::string>>& table_meta,
                  int deflate_level, const std::string& path) {
  hsize_t zero = 0, unlimited = H5S_UNLIMITED;
  Handle space(H5Screate_simple(1, &zero, &unlimited));
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
  hsize_t chunk = static_cast<hsize_t>(std::max<std::int64_t>(1, chunk_rows));
  check_status(H5Pset_chunk(dcpl.get(), 1, &chunk), path, "bad chunk size");
  if (deflate_level > 0) {
    H5Pset_shuffle(dcpl.get());
    H5Pset_deflate(dcpl.get(), static_cast<unsigned>(std::min(deflate_level, 9)));
  }
  check_status(H5Pset_fill_value(dcpl.get(), type, fill), path, "cannot set fill value");
  Handle d(check(H5Dcreate2(file, name, type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                 path, std::string("cannot create /") + name));
  std::vector<std::string> names, units, docs;
  for (const auto& c : cols) {
    names.emplace_back(c.name);
    units.emplace_back(c.unit ? c.unit : "");
    docs.emplace_back(c.description);
  }
  h5::write_attr(d.get(), "column_names", names, path);
  h5::write_attr(d.get(), "column_units", units, path);
  h5::write_attr(d.get(), "column_descriptions", docs, path);
  h5::write_string_dataset(file, std::string(name) + ".__table_column_meta__",
                           astropy_table_meta(cols, table_meta), path);
}

}  // namespace

Handle file_access(bool clear_status_flags) {
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
  H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  if (clear_status_flags) {
    // The property h5clear sets (H5F_ACS_CLEAR_STATUS_FLAGS_NAME in HDF5 1.10).
    hbool_t clear = true;
    if (H5Pexist(fapl.get(), "clear_status_flags") > 0)
      H5Pset(fapl.get(), "clear_status_flags", &clear);
  }
  return fapl;
}

std::string utc_now_iso8601() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

FileMeta new_file_meta(const std::string& config_text) {
  return FileMeta{utc_now_iso8601(), config_text, kVersion, kGitHash};
}

void build_catalogue(const std::string& file_path, const std::string& shown_path,
                     const FileMeta& meta, const CatalogueOptions& opt, int deflate_level) {
  Handle fapl = file_access();
  Handle file(check(H5Fcreate(file_path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()),
                    shown_path, "cannot create " + file_path));
  hid_t f = file.get();
  h5::write_attr(f, "psfphot_schema_version", std::int64_t{kCatalogueSchemaVersion}, shown_path);
  h5::write_attr(f, "star_schema_version", std::int64_t{kStarSchemaVersion}, shown_path);
  h5::write_attr(f, "software", std::string("psfphot"), shown_path);
  h5::write_attr(f, "software_version", meta.software_version, shown_path);
  h5::write_attr(f, "git_hash", meta.git_hash, shown_path);
  h5::write_attr(f, "creation_time", meta.creation_time, shown_path);
  h5::write_attr(f, "config_text", meta.config_text, shown_path);

  std::vector<std::pair<std::string, std::string>> common = {
      {"psfphot_schema_version", std::to_string(kCatalogueSchemaVersion)},
      {"software_version", meta.software_version},
      {"git_hash", meta.git_hash},
      {"creation_time", meta.creation_time}};
  auto star_meta = common;
  star_meta.emplace_back("flag_bits", joined(flag_bit_names(), " ", true, true));
  auto frame_meta = common;
  frame_meta.emplace_back("status_codes", joined(status_names(), " ", true, false));

  Handle st(make_star_type());
  Star star_fill = star_fill_value();
  create_table(f, kStars, st.get(), opt.stars_chunk_rows, &star_fill, star_columns(), star_meta,
               deflate_level, shown_path);
  Handle ft(make_frame_row_type());
  FrameRow frame_fill = frame_fill_value();
  create_table(f, kFrames, ft.get(), opt.frames_chunk_rows, &frame_fill, frame_columns(),
               frame_meta, deflate_level, shown_path);
  {
    Handle d(H5Dopen2(f, kStars, H5P_DEFAULT));
    h5::write_attr(d.get(), "flag_bit_names", flag_bit_names(), shown_path);
    Handle fr(H5Dopen2(f, kFrames, H5P_DEFAULT));
    h5::write_attr(fr.get(), "status_names", status_names(), shown_path);
  }
  check_status(H5Fclose(file.release()), shown_path, "cannot close " + file_path);
  if (!fsync_path(file_path))
    throw CatalogueError(shown_path, "cannot fsync " + file_path + ": " + std::strerror(errno));
}

CatalogueInfo read_info(hid_t file, const std::string& path) {
  if (!h5::has_attr(file, "psfphot_schema_version"))
    throw CatalogueError(path,
                         "is an HDF5 file but not a psfphot catalogue (no psfphot_schema_version "
                         "attribute)");
  CatalogueInfo info;
  info.schema_version = h5::read_int_attr(file, "psfphot_schema_version", path);
  if (info.schema_version > kCatalogueSchemaVersion || info.schema_version < 1)
    throw CatalogueError(path, "catalogue schema version " + std::to_string(info.schema_version) +
                                   " is not one this psfphot reads (1.." +
                                   std::to_string(kCatalogueSchemaVersion) + ")");
  info.star_schema_version = h5::read_int_attr(file, "star_schema_version", path);
  info.software_version = h5::read_string_attr(file, "software_version", path);
  info.git_hash = h5::read_string_attr(file, "git_hash", path);
  info.creation_time = h5::read_string_attr(file, "creation_time", path);
  info.config_text = h5::read_string_attr(file, "config_text", path);
  return info;
}

ReadOpen open_read_only(const std::string& path) {
  struct stat sb {};
  if (::stat(path.c_str(), &sb) != 0)
    throw CatalogueError(path, std::string("cannot open: ") + std::strerror(errno));
  if (S_ISDIR(sb.st_mode)) throw CatalogueError(path, "is a folder, not a catalogue file");
  if (sb.st_size == 0) throw CatalogueError(path, "is an empty file, not a psfphot catalogue");
  Handle fapl = file_access();
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    h5::take_error_stack();
    throw CatalogueError(path, "is not an HDF5 file, so not a psfphot catalogue");
  }
  ReadOpen r;
  r.file = Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()));
  if (r.file.valid()) return r;
  std::string first = h5::take_error_stack();
  // A writer still appending, or one that was killed, leaves the file marked open for
  // writing; SWMR readers ignore the mark and see the last flushed state.
  r.file = Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl.get()));
  if (r.file.valid()) {
    r.was_left_open = true;
    return r;
  }
  h5::take_error_stack();
  // A write that failed for lack of space can leave the superblock's end-of-allocation
  // beyond the end of the file. Nothing committed lives there (it was never written);
  // skip HDF5's size check as `h5clear` does (resume then extends the file).
  Handle skip = file_access();
  hbool_t yes = true;
  if (H5Pexist(skip.get(), "skip_eof_check") > 0) H5Pset(skip.get(), "skip_eof_check", &yes);
  r.file = Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, skip.get()));
  if (r.file.valid()) {
    r.was_left_open = true;
    return r;
  }
  h5::take_error_stack();
  std::string innermost = first.substr(0, first.find('\n'));
  throw CatalogueError(path, "cannot open the HDF5 file: " + innermost, first);
}

Tables open_tables(hid_t file, const std::string& path, int schema_version) {
  Tables t;
  Handle dapl(H5Pcreate(H5P_DATASET_ACCESS));
  // Enough for the partially filled last chunk and the reads around it.
  H5Pset_chunk_cache(dapl.get(), 2003, 16u << 20, 0.75);
  for (auto [name, handle] : {std::pair{kStars, &t.stars}, std::pair{kFrames, &t.frames}}) {
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0) {
      h5::take_error_stack();
      throw CatalogueError(path,
                           std::string("has no /") + name + " table: not a psfphot catalogue");
    }
    *handle = Handle(check(H5Dopen2(file, name, dapl.get()), path, std::string("/") + name));
  }
  Handle st(make_star_type()), ft(make_frame_file_type(schema_version));
  Handle fst(H5Dget_type(t.stars.get())), fft(H5Dget_type(t.frames.get()));
  if (H5Tequal(fst.get(), st.get()) <= 0)
    throw CatalogueError(path, "its /stars columns are not this psfphot's Star record");
  if (H5Tequal(fft.get(), ft.get()) <= 0)
    throw CatalogueError(path, "its /frames columns are not those of catalogue schema version " +
                                   std::to_string(schema_version));
  return t;
}

Committed committed_state(hid_t frames, hid_t stars, const std::string& path, int schema_version) {
  Committed c;
  c.frame_total = h5::rows(frames, path);
  c.star_total = h5::rows(stars, path);
  // Pre-filled: an older version's table does not have every FrameRow field.
  std::vector<FrameRow> rows(static_cast<std::size_t>(c.frame_total), frame_fill_value());
  Handle ft(make_frame_read_type(schema_version));
  h5::read_rows(frames, ft.get(), 0, c.frame_total, rows.data(), path, "/frames");
  const auto max_status = static_cast<std::int32_t>(FrameStatus::kSkipped);
  std::size_t k = 0;
  std::int64_t end = 0;
  for (; k < rows.size(); ++k) {
    const FrameRow& r = rows[k];
    bool ok = r.frame_id >= 0 && r.status >= 0 && r.status <= max_status && r.stars_start == end &&
              r.stars_count >= 0 && r.n_stars == r.stars_count &&
              end + r.stars_count <= c.star_total;
    if (!ok) break;
    end += r.stars_count;
  }
  // Only the last frame can have been cut by a crash (every earlier one was flushed
  // before it was written): check its rows are really there.
  Handle idt(make_star_subset_type({"frame_id"}));
  while (k > 0) {
    std::size_t j = k;
    while (j > 0 && rows[j - 1].stars_count == 0) --j;
    if (j == 0) break;
    const FrameRow& r = rows[j - 1];
    std::vector<Star> s(static_cast<std::size_t>(r.stars_count), star_fill_value());
    bool ok = true;
    try {
      h5::read_rows(stars, idt.get(), r.stars_start, r.stars_count, s.data(), path, "/stars");
    } catch (const CatalogueError&) {
      ok = false;
    }
    for (const Star& x : s) ok = ok && x.frame_id == r.frame_id;
    if (ok) break;
    k = j - 1;
    end = r.stars_start;
  }
  rows.resize(k);
  c.rows = std::move(rows);
  c.star_rows = end;
  return c;
}

bool is_compressed(hid_t dset) {
  Handle dcpl(H5Dget_create_plist(dset));
  return dcpl.valid() && H5Pget_nfilters(dcpl.get()) > 0;
}

void rename_into_place(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    int e = errno;
    std::remove(from.c_str());
    throw CatalogueError(to, "cannot rename " + from + " into place: " + std::strerror(e));
  }
  fsync_parent(to);
}

void compact_catalogue(const std::string& path, const CatalogueOptions& opt) {
  const std::string tmp = path + ".compacting";
  try {
    ReadOpen in = open_read_only(path);
    CatalogueInfo info = read_info(in.file.get(), path);
    const int version = static_cast<int>(info.schema_version);
    Tables src = open_tables(in.file.get(), path, version);
    Committed c = committed_state(src.frames.get(), src.stars.get(), path, version);
    build_catalogue(tmp, path,
                    {info.creation_time, info.config_text, info.software_version, info.git_hash},
                    opt, opt.deflate_level);
    Handle fapl = file_access();
    Handle out(check(H5Fopen(tmp.c_str(), H5F_ACC_RDWR, fapl.get()), path, "cannot open " + tmp));
    Tables dst = open_tables(out.get(), path, kCatalogueSchemaVersion);
    Handle ft(make_frame_row_type()), st(make_star_type());
    h5::write_rows(dst.frames.get(), ft.get(), 0, static_cast<std::int64_t>(c.rows.size()),
                   c.rows.data(), path, "/frames");
    // Whole chunks at a time, so no chunk is ever rewritten.
    const std::int64_t block = 16 * std::max<std::int64_t>(1, opt.stars_chunk_rows);
    std::vector<Star> buf;
    for (std::int64_t s = 0; s < c.star_rows; s += block) {
      std::int64_t n = std::min(block, c.star_rows - s);
      buf.resize(static_cast<std::size_t>(n));
      h5::read_rows(src.stars.get(), st.get(), s, n, buf.data(), path, "/stars");
      h5::write_rows(dst.stars.get(), st.get(), s, n, buf.data(), path, "/stars");
    }
    dst = {};
    check_status(H5Fclose(out.release()), path, "cannot close " + tmp);
    if (!fsync_path(tmp))
      throw CatalogueError(path, "cannot fsync " + tmp + ": " + std::strerror(errno));
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  rename_into_place(tmp, path);
}

bool fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  errno = saved;
  return rc == 0;
}

bool fsync_parent(const std::string& path) {
  auto parent = std::filesystem::absolute(path).parent_path();
  return fsync_path(parent.string());
}

}  // namespace psfphot::io::detail
