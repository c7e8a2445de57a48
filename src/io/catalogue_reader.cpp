// CatalogueReader, CatalogueError and decode(FrameRow).
#include <algorithm>
#include <map>
#include <utility>

#include "catalogue_file.hpp"
#include "psfphot/io/catalogue.hpp"

namespace psfphot::io {

CatalogueError::CatalogueError(std::string path, const std::string& problem, std::string hdf5_stack)
    : std::runtime_error("catalogue " + path + ": " + problem),
      path_(std::move(path)),
      stack_(std::move(hdf5_stack)) {}

FrameEntry decode(const FrameRow& r) {
  FrameEntry e;
  e.frame_id = r.frame_id;
  e.path = field_text(r.path);
  e.status = r.status;
  e.status_name = field_text(r.status_name);
  e.failed_step = field_text(r.failed_step);
  e.message = field_text(r.message);
  e.filter = field_text(r.filter);
  e.n_stars = r.n_stars;
  e.mjd_obs = r.mjd_obs;
  e.exptime_s = r.exptime_s;
  e.psf_sigma_px = r.psf_sigma_px;
  e.sky_adu = r.sky_adu;
  e.sky_rms_adu = r.sky_rms_adu;
  e.bias_adu = r.bias_adu;
  e.dark_bias_adu = r.dark_bias_adu;
  e.total_ms = r.total_ms;
  e.worker_rank = r.worker_rank;
  e.n_peaks = r.n_peaks;
  e.stars_start = r.stars_start;
  e.stars_count = r.stars_count;
  return e;
}

struct CatalogueReader::Impl {
  std::string path;
  h5::Handle file;
  detail::Tables tables;
  CatalogueInfo info;
  std::vector<FrameEntry> frames;
  std::map<std::int64_t, std::size_t> latest;  // frame id -> index in frames
  std::int64_t star_rows = 0;

  // Row ranges of the requested frames, sorted and with neighbours merged, so a set of
  // consecutive frames is one read.
  std::vector<std::pair<std::int64_t, std::int64_t>> ranges(
      const std::vector<std::int64_t>& ids) const {
    std::vector<std::pair<std::int64_t, std::int64_t>> r;
    for (std::int64_t id : ids) {
      auto it = latest.find(id);
      if (it == latest.end())
        throw CatalogueError(path, "frame " + std::to_string(id) + " is not in the catalogue");
      const FrameEntry& f = frames[it->second];
      if (f.stars_count > 0) r.emplace_back(f.stars_start, f.stars_start + f.stars_count);
    }
    std::sort(r.begin(), r.end());
    std::vector<std::pair<std::int64_t, std::int64_t>> merged;
    for (const auto& x : r) {
      if (!merged.empty() && x.first <= merged.back().second)
        merged.back().second = std::max(merged.back().second, x.second);
      else
        merged.push_back(x);
    }
    return merged;
  }

  h5::Handle star_type(const std::vector<std::string>& columns) const {
    if (columns.empty()) return h5::Handle(make_star_type());
    std::vector<std::string> cols = columns;
    if (std::find(cols.begin(), cols.end(), "frame_id") == cols.end())
      cols.insert(cols.begin(), "frame_id");
    return h5::Handle(make_star_subset_type(cols));
  }
};

CatalogueReader::CatalogueReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  h5::QuietErrors quiet;
  Impl& r = *impl_;
  r.path = path;
  detail::ReadOpen ro = detail::open_read_only(path);
  r.file = std::move(ro.file);
  r.info = detail::read_info(r.file.get(), path);
  const int version = static_cast<int>(r.info.schema_version);
  r.tables = detail::open_tables(r.file.get(), path, version);
  detail::Committed c =
      detail::committed_state(r.tables.frames.get(), r.tables.stars.get(), path, version);
  r.star_rows = c.star_rows;
  r.frames.reserve(c.rows.size());
  for (const FrameRow& row : c.rows) {
    r.latest[row.frame_id] = r.frames.size();
    r.frames.push_back(decode(row));
  }
}

CatalogueReader::~CatalogueReader() {
  if (!impl_) return;
  h5::QuietErrors quiet;
  impl_.reset();
}
CatalogueReader::CatalogueReader(CatalogueReader&&) noexcept = default;
CatalogueReader& CatalogueReader::operator=(CatalogueReader&&) noexcept = default;

const std::string& CatalogueReader::path() const {
  return impl_->path;
}
const CatalogueInfo& CatalogueReader::info() const {
  return impl_->info;
}
const std::vector<FrameEntry>& CatalogueReader::frames() const {
  return impl_->frames;
}
std::int64_t CatalogueReader::star_rows() const {
  return impl_->star_rows;
}

std::vector<Star> CatalogueReader::stars_for_frames(const std::vector<std::int64_t>& frame_ids,
                                                    const std::vector<std::string>& columns) const {
  h5::QuietErrors quiet;
  const Impl& r = *impl_;
  auto ranges = r.ranges(frame_ids);
  h5::Handle type = r.star_type(columns);
  std::int64_t total = 0;
  for (const auto& [a, b] : ranges) total += b - a;
  std::vector<Star> out(static_cast<std::size_t>(total), star_fill_value());
  std::int64_t at = 0;
  for (const auto& [a, b] : ranges) {
    h5::read_rows(r.tables.stars.get(), type.get(), a, b - a, out.data() + at, r.path, "/stars");
    at += b - a;
  }
  return out;
}

std::vector<Star> CatalogueReader::stars(std::int64_t first, std::int64_t count,
                                         const std::vector<std::string>& columns) const {
  h5::QuietErrors quiet;
  const Impl& r = *impl_;
  first = std::clamp<std::int64_t>(first, 0, r.star_rows);
  count = std::clamp<std::int64_t>(count, 0, r.star_rows - first);
  h5::Handle type = r.star_type(columns);
  std::vector<Star> out(static_cast<std::size_t>(count), star_fill_value());
  h5::read_rows(r.tables.stars.get(), type.get(), first, count, out.data(), r.path, "/stars");
  return out;
}

std::vector<double> CatalogueReader::star_column(const std::string& column,
                                                 const std::vector<std::int64_t>& frame_ids) const {
  h5::QuietErrors quiet;
  const Impl& r = *impl_;
  h5::Handle type(make_double_column_type(star_columns(), column));
  std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
  if (frame_ids.empty())
    ranges.emplace_back(0, r.star_rows);
  else
    ranges = r.ranges(frame_ids);
  std::int64_t total = 0;
  for (const auto& [a, b] : ranges) total += b - a;
  std::vector<double> out(static_cast<std::size_t>(total));
  std::int64_t at = 0;
  for (const auto& [a, b] : ranges) {
    h5::read_rows(r.tables.stars.get(), type.get(), a, b - a, out.data() + at, r.path, "/stars");
    at += b - a;
  }
  return out;
}

}  // namespace psfphot::io
