#include "psfphot/io/table_csv.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

namespace psfphot::io {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

std::string column_list(const std::vector<std::string>& cols) {
  std::string out;
  for (const auto& c : cols) out += (out.empty() ? "" : ", ") + c;
  return out;
}

}  // namespace

CsvError::CsvError(const std::string& source, long line, const std::string& what)
    : std::runtime_error(source + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " +
                         what),
      source_(source),
      line_(line) {}

std::optional<double> parse_csv_number(std::string_view text) {
  text = trim(text);
  if (text.empty()) return std::numeric_limits<double>::quiet_NaN();
  if (text.front() == '+') text.remove_prefix(1);  // from_chars refuses a leading '+'
  double v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  // Out-of-range values are malformed for our purposes (they would be silently clamped).
  if (ec != std::errc{} || ptr != end) return std::nullopt;
  return v;
}

CsvTable CsvTable::read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CsvError(path, 0, "cannot open file for reading");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw CsvError(path, 0, "read error");
  return parse(std::move(ss).str(), path);
}

CsvTable CsvTable::parse(std::string text, const std::string& source) {
  CsvTable t;
  t.source_ = source;
  t.text_ = std::move(text);
  const std::string& s = t.text_;
  bool have_header = false;
  long line_no = 0;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t eol = s.find('\n', pos);
    if (eol == std::string::npos) eol = s.size();
    ++line_no;
    std::size_t line_end = eol;
    if (line_end > pos && s[line_end - 1] == '\r') --line_end;
    const std::size_t line_begin = pos;
    pos = eol + 1;
    const std::string_view line(s.data() + line_begin, line_end - line_begin);
    const std::string_view body = trim(line);
    if (body.empty()) continue;
    if (body.front() == '#') {
      const std::string_view c = body.substr(1);
      const std::size_t eq = c.find('=');
      if (eq != std::string_view::npos && !trim(c.substr(0, eq)).empty())
        t.comments_.emplace_back(std::string(trim(c.substr(0, eq))),
                                 std::string(trim(c.substr(eq + 1))));
      continue;
    }
    // Split into cells, honouring double quotes.
    std::vector<Cell> cells;
    std::size_t i = line_begin;
    for (;;) {
      while (i < line_end && (s[i] == ' ' || s[i] == '\t')) ++i;
      Cell cell;
      if (i < line_end && s[i] == '"') {
        cell.quoted = true;
        cell.begin = ++i;
        while (true) {
          if (i >= line_end) throw CsvError(source, line_no, "unterminated quoted cell");
          if (s[i] == '"') {
            if (i + 1 < line_end && s[i + 1] == '"') {
              i += 2;
              continue;
            }
            break;
          }
          ++i;
        }
        cell.size = i - cell.begin;
        ++i;  // closing quote
        while (i < line_end && (s[i] == ' ' || s[i] == '\t')) ++i;
        if (i < line_end && s[i] != ',')
          throw CsvError(source, line_no,
                         "unexpected text after quoted cell " + std::to_string(cells.size() + 1));
      } else {
        cell.begin = i;
        while (i < line_end && s[i] != ',') ++i;
        std::size_t e = i;
        while (e > cell.begin && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
        cell.size = e - cell.begin;
      }
      cells.push_back(cell);
      if (i >= line_end) break;
      ++i;  // the comma
    }
    if (!have_header) {
      for (std::size_t k = 0; k < cells.size(); ++k) {
        std::string name = t.cell_text(cells[k]);
        if (name.empty())
          throw CsvError(source, line_no, "empty name for column " + std::to_string(k + 1));
        if (std::find(t.columns_.begin(), t.columns_.end(), name) != t.columns_.end())
          throw CsvError(source, line_no, "duplicate column name '" + name + "'");
        t.columns_.push_back(std::move(name));
      }
      have_header = true;
      continue;
    }
    if (cells.size() != t.columns_.size())
      throw CsvError(source, line_no,
                     "expected " + std::to_string(t.columns_.size()) + " cells (header: " +
                         column_list(t.columns_) + "), found " + std::to_string(cells.size()));
    t.cells_.insert(t.cells_.end(), cells.begin(), cells.end());
    t.row_lines_.push_back(line_no);
  }
  if (!have_header) throw CsvError(source, 0, "no header line (file empty or only comments)");
  return t;
}

std::string CsvTable::cell_text(const Cell& c) const {
  std::string out = text_.substr(c.begin, c.size);
  if (c.quoted) {
    for (std::size_t k = out.find("\"\""); k != std::string::npos; k = out.find("\"\"", k + 1))
      out.erase(k, 1);
  }
  return out;
}

int CsvTable::column_index(std::string_view name) const {
  for (std::size_t i = 0; i < columns_.size(); ++i)
    if (columns_[i] == name) return static_cast<int>(i);
  return -1;
}

int CsvTable::require_column(std::string_view name) const {
  const int i = column_index(name);
  if (i < 0)
    throw CsvError(
        source_, 0,
        "no column '" + std::string(name) + "' (columns: " + column_list(columns_) + ")");
  return i;
}

std::optional<std::string> CsvTable::comment(std::string_view key) const {
  for (const auto& [k, v] : comments_)
    if (k == key) return v;
  return std::nullopt;
}

double CsvTable::comment_number(std::string_view key) const {
  const auto v = comment(key);
  if (!v) throw CsvError(source_, 0, "no '# " + std::string(key) + "=...' comment line");
  const auto d = parse_csv_number(*v);
  if (!d || v->empty())
    throw CsvError(source_, 0, "comment '" + std::string(key) + "=" + *v + "' is not a number");
  return *d;
}

std::string CsvTable::cell(std::size_t row, std::size_t col) const {
  return cell_text(cells_[row * columns_.size() + col]);
}

std::vector<double> CsvTable::numbers(std::string_view column) const {
  const auto col = static_cast<std::size_t>(require_column(column));
  std::vector<double> out(rows());
  for (std::size_t r = 0; r < rows(); ++r) {
    const std::string text = cell(r, col);
    const auto v = parse_csv_number(text);
    if (!v)
      throw CsvError(source_, row_lines_[r],
                     "column '" + std::string(column) + "' (column " + std::to_string(col + 1) +
                         "): '" + text + "' is not a number");
    out[r] = *v;
  }
  return out;
}

std::vector<bool> CsvTable::booleans(std::string_view column) const {
  const auto col = static_cast<std::size_t>(require_column(column));
  std::vector<bool> out(rows());
  for (std::size_t r = 0; r < rows(); ++r) {
    const std::string raw = cell(r, col);
    const std::string text = lower(trim(raw));
    if (text == "1" || text == "true") {
      out[r] = true;
    } else if (text == "0" || text == "false") {
      out[r] = false;
    } else {
      throw CsvError(source_, row_lines_[r],
                     "column '" + std::string(column) + "' (column " + std::to_string(col + 1) +
                         "): '" + raw + "' is not a boolean (0/1/true/false)");
    }
  }
  return out;
}

}  // namespace psfphot::io
