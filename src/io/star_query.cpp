#include "psfphot/io/star_query.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <queue>
#include <utility>

namespace psfphot::io {

// ---------------------------------------------------------------- filters

FlagFilter parse_flag_filter(std::string_view text) {
  FlagFilter f;
  if (text == "none") {
    f.mode = FlagMode::kNone;
    return f;
  }
  if (text == "any") {
    f.mode = FlagMode::kAny;
    return f;
  }
  f.mode = FlagMode::kAnyOf;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    const std::string_view name = text.substr(start, comma - start);
    bool found = false;
    for (std::uint32_t i = 0; i < star_flag::kCount; ++i) {
      if (name == star_flag::name(1u << i)) {
        f.bits |= 1u << i;
        found = true;
      }
    }
    if (!found) {
      std::string names;
      for (const auto& n : flag_bit_names()) names += (names.empty() ? "" : ", ") + n;
      throw QueryError("--flags: unknown flag '" + std::string(name) +
                       "' (none, any, or names from: " + names + ")");
    }
    start = comma + 1;
  }
  return f;
}

std::vector<std::string> default_query_columns() {
  return {"frame_id", "star_id",      "centroid_x", "centroid_y",
          "psf_flux", "psf_flux_err", "snr",        "flags"};
}

namespace {

// Position for --box / --near: the centroid, or the peak pixel without one.
std::pair<double, double> position(const Star& s) {
  if (std::isnan(s.centroid_x) || std::isnan(s.centroid_y))
    return {static_cast<double>(s.peak_x), static_cast<double>(s.peak_y)};
  return {s.centroid_x, s.centroid_y};
}

}  // namespace

bool StarQuery::matches(const Star& s) const {
  if (box || near) {
    const auto [x, y] = position(s);
    if (box && !(x >= (*box)[0] && x <= (*box)[1] && y >= (*box)[2] && y <= (*box)[3]))
      return false;
    if (near) {
      const double dx = x - (*near)[0], dy = y - (*near)[1];
      if (!(dx * dx + dy * dy <= (*near)[2] * (*near)[2])) return false;
    }
  }
  if (!std::isnan(min_snr) && !(s.snr >= min_snr)) return false;
  switch (flags.mode) {
    case FlagMode::kAll: break;
    case FlagMode::kNone:
      if (s.flags != 0) return false;
      break;
    case FlagMode::kAny:
      if (s.flags == 0) return false;
      break;
    case FlagMode::kAnyOf:
      if ((s.flags & flags.bits) == 0) return false;
      break;
  }
  return !where || where->matches(s);
}

std::vector<std::string> StarQuery::needed_columns() const {
  std::vector<std::string> need;
  auto want = [&](const std::string& c, const char* what) {
    if (!find_star_column(c))
      throw QueryError(std::string(what) + ": unknown column '" + c +
                       "' (columns: " + star_column_list() + ")");
    if (std::find(need.begin(), need.end(), c) == need.end()) need.push_back(c);
  };
  for (const auto& c : columns.empty() ? default_query_columns() : columns) want(c, "--columns");
  if (!sort_column.empty()) want(sort_column, "--sort");
  if (box || near)
    for (const char* c : {"centroid_x", "centroid_y", "peak_x", "peak_y"}) want(c, "position");
  if (!std::isnan(min_snr)) want("snr", "--min-snr");
  if (flags.mode != FlagMode::kAll) want("flags", "--flags");
  if (where)
    for (const auto& c : where->columns()) want(c, "--where");
  return need;
}

QueryStats run_query(const CatalogueReader& r, const StarQuery& q,
                     const std::function<void(const Star&)>& emit) {
  const std::vector<std::string> cols = q.needed_columns();
  const std::vector<std::string> kAll;  // empty = every column
  const ColumnInfo* sort_col = q.sort_column.empty() ? nullptr : find_star_column(q.sort_column);
  QueryStats st;

  // Row ranges: the requested frames' (latest row of each id), else the whole table.
  std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
  if (q.frames.empty()) {
    ranges.emplace_back(0, r.star_rows());
  } else {
    const auto& frames = r.frames();
    for (std::int64_t id : q.frames) {
      const FrameEntry* e = nullptr;
      for (const auto& f : frames)
        if (f.frame_id == id) e = &f;
      if (!e) throw CatalogueError(r.path(), "frame " + std::to_string(id) + " is not in it");
      if (e->stars_count <= 0) continue;
      if (!ranges.empty() && ranges.back().second == e->stars_start)
        ranges.back().second += e->stars_count;  // the next frame's rows: one read
      else
        ranges.emplace_back(e->stars_start, e->stars_start + e->stars_count);
    }
  }

  // Sorted answers: (key, catalogue sequence) order; NaN keys go last either way.
  struct Held {
    double key;
    std::int64_t seq;
    Star star;
  };
  auto before = [&](const Held& a, const Held& b) {
    const bool an = std::isnan(a.key), bn = std::isnan(b.key);
    if (an != bn) return bn;
    if (!an && a.key != b.key) return q.descending ? a.key > b.key : a.key < b.key;
    return a.seq < b.seq;
  };
  // Max-heap on `before`: top is the worst kept answer (for sort + limit).
  std::priority_queue<Held, std::vector<Held>, decltype(before)> best(before);
  std::vector<Held> all;
  std::int64_t seq = 0;

  const std::int64_t batch = std::max<std::int64_t>(1, q.batch_rows);
  bool done = false;
  for (const auto& [a, b] : ranges) {
    for (std::int64_t first = a; first < b && !done; first += batch) {
      const std::vector<Star> stars =
          r.stars(first, std::min(batch, b - first), q.whole_rows ? kAll : cols);
      st.rows_read += static_cast<std::int64_t>(stars.size());
      for (const Star& s : stars) {
        if (!q.matches(s)) continue;
        ++st.rows_matched;
        if (!sort_col) {
          emit(s);
          ++st.rows_emitted;
          if (q.limit >= 0 && st.rows_emitted >= q.limit) {
            done = true;
            break;
          }
          continue;
        }
        Held h{star_value(s, *sort_col), seq++, s};
        if (q.limit < 0) {
          all.push_back(h);
        } else if (q.limit > 0) {
          if (static_cast<std::int64_t>(best.size()) < q.limit) {
            best.push(h);
          } else if (before(h, best.top())) {
            best.pop();
            best.push(h);
          }
        }
      }
    }
    if (done) break;
  }
  if (sort_col) {
    if (q.limit >= 0) {
      all.reserve(best.size());
      while (!best.empty()) {
        all.push_back(best.top());
        best.pop();
      }
    }
    std::sort(all.begin(), all.end(), before);
    for (const Held& h : all) {
      emit(h.star);
      ++st.rows_emitted;
    }
  }
  return st;
}

// ---------------------------------------------------------------- output

OutputFormat parse_output_format(std::string_view text) {
  if (text == "table") return OutputFormat::kTable;
  if (text == "csv") return OutputFormat::kCsv;
  if (text == "json") return OutputFormat::kJson;
  throw QueryError("--format: '" + std::string(text) + "' is not table, csv or json");
}

namespace {

// Integers exactly; doubles as the shortest text that reads back to the same double.
std::string number_text(const Star& s, const ColumnInfo& c, bool json) {
  const double v = star_value(s, c);
  if (std::isnan(v)) return json ? "null" : "nan";
  if (std::isinf(v)) return json ? "null" : (v > 0 ? "inf" : "-inf");
  char buf[64];
  std::to_chars_result res{};
  switch (c.type) {
    case ColumnType::kInt32:
    case ColumnType::kInt64:
    case ColumnType::kUInt32: {
      std::int64_t i = 0;
      if (c.type == ColumnType::kInt64) {
        std::memcpy(&i, reinterpret_cast<const char*>(&s) + c.offset, sizeof i);
      } else {
        i = static_cast<std::int64_t>(v);
      }
      res = std::to_chars(buf, buf + sizeof buf, i);
      break;
    }
    default: res = std::to_chars(buf, buf + sizeof buf, v); break;
  }
  return std::string(buf, res.ptr);
}

std::string table_text(const Star& s, const ColumnInfo& c) {
  if (c.type != ColumnType::kFloat64) return number_text(s, c, false);
  const double v = star_value(s, c);
  if (std::isnan(v)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.7g", v);
  return buf;
}

}  // namespace

StarWriter::StarWriter(std::ostream& out, OutputFormat format, std::vector<std::string> columns)
    : out_(out), format_(format) {
  if (columns.empty()) columns = default_query_columns();
  for (const auto& n : columns) {
    const ColumnInfo* c = find_star_column(n);
    if (!c)
      throw QueryError("--columns: unknown column '" + n + "' (columns: " + star_column_list() +
                       ")");
    cols_.push_back(c);
    const int w = c->type == ColumnType::kFloat64 ? 13 : 9;
    widths_.push_back(std::max(w, static_cast<int>(std::strlen(c->name))));
  }
  header();
}

void StarWriter::header() {
  switch (format_) {
    case OutputFormat::kTable: {
      std::string names, units;
      for (std::size_t i = 0; i < cols_.size(); ++i) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "%*s", widths_[i], cols_[i]->name);
        names += (i ? " " : "") + std::string(buf);
        const std::string u = cols_[i]->unit && *cols_[i]->unit ? cols_[i]->unit : "";
        std::snprintf(buf, sizeof buf, "%*s", widths_[i], u.empty() ? "" : ("[" + u + "]").c_str());
        units += (i ? " " : "") + std::string(buf);
      }
      out_ << names << "\n" << units << "\n";
      break;
    }
    case OutputFormat::kCsv:
      for (std::size_t i = 0; i < cols_.size(); ++i) out_ << (i ? "," : "") << cols_[i]->name;
      out_ << "\n";
      break;
    case OutputFormat::kJson: out_ << "["; break;
  }
}

void StarWriter::row(const Star& s) {
  switch (format_) {
    case OutputFormat::kTable:
      for (std::size_t i = 0; i < cols_.size(); ++i) {
        const std::string v = table_text(s, *cols_[i]);
        if (i) out_ << ' ';
        for (int k = static_cast<int>(v.size()); k < widths_[i]; ++k) out_ << ' ';
        out_ << v;
      }
      out_ << '\n';
      break;
    case OutputFormat::kCsv:
      for (std::size_t i = 0; i < cols_.size(); ++i)
        out_ << (i ? "," : "") << number_text(s, *cols_[i], false);
      out_ << '\n';
      break;
    case OutputFormat::kJson:
      out_ << (rows_ ? ",\n{" : "\n{");
      for (std::size_t i = 0; i < cols_.size(); ++i)
        out_ << (i ? ", \"" : "\"") << cols_[i]->name << "\": " << number_text(s, *cols_[i], true);
      out_ << '}';
      break;
  }
  ++rows_;
}

void StarWriter::finish() {
  if (finished_) return;
  finished_ = true;
  if (format_ == OutputFormat::kJson) out_ << (rows_ ? "\n]\n" : "]\n");
  out_.flush();
}

}  // namespace psfphot::io
