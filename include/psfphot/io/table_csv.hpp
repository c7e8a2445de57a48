#pragma once
// A small reader for the CSV tables psfphot meets: simulator truth tables, per-frame
// catalogues (`psfphot frame`), and catalogues exported from other tools.
//
// Format accepted:
//   * lines starting with '#' (after optional blanks) are comments; "# key=value" comments
//     are kept as (key, value) pairs, trimmed, in file order, wherever they appear;
//     other comments are ignored;
//   * blank lines are ignored; "\r\n" line ends are accepted;
//   * the first other line is the header: comma-separated column names (trimmed);
//     names must be unique and non-empty;
//   * every following line is a row with exactly as many comma-separated cells as the
//     header; a cell may be double-quoted ("a,b", "" for a quote), on one line only.
// Numbers: std::from_chars syntax after trimming (decimal or exponent, "nan", "inf",
// "-inf"); an empty cell reads as NaN (a missing value); anything else is an error.
// Booleans: 0/1, true/false (any case); an empty cell is an error.
//
// Errors throw CsvError with "FILE:LINE: ..." naming the column (name and 1-based number)
// for malformed values, or listing the available columns for a missing one.
// A CsvTable is an immutable value once read: concurrent reads are safe.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace psfphot::io {

class CsvError : public std::runtime_error {
 public:
  CsvError(const std::string& source, long line, const std::string& what);
  const std::string& source() const { return source_; }
  long line() const { return line_; }  // 1-based; 0 when not about one line

 private:
  std::string source_;
  long line_;
};

class CsvTable {
 public:
  // Read a file. Throws CsvError (unreadable file, no header, ragged rows, bad quoting).
  static CsvTable read(const std::string& path);
  // Parse text already in memory; `source` names it in error messages.
  static CsvTable parse(std::string text, const std::string& source);

  const std::string& source() const { return source_; }
  const std::vector<std::string>& columns() const { return columns_; }
  std::size_t rows() const { return row_lines_.size(); }
  // 0-based index of a column, or -1.
  int column_index(std::string_view name) const;
  bool has_column(std::string_view name) const { return column_index(name) >= 0; }

  // "# key=value" comments in file order.
  const std::vector<std::pair<std::string, std::string>>& comments() const { return comments_; }
  // Value of the first comment with this key.
  std::optional<std::string> comment(std::string_view key) const;
  // That value as a number; throws CsvError if the key is absent or not a number.
  double comment_number(std::string_view key) const;

  // Whole column as numbers / booleans. Throws CsvError if the column is missing or a
  // cell is malformed.
  std::vector<double> numbers(std::string_view column) const;
  std::vector<bool> booleans(std::string_view column) const;

  // Raw cell text (quotes removed), and the 1-based file line of a row.
  std::string cell(std::size_t row, std::size_t col) const;
  long line_of(std::size_t row) const { return row_lines_[row]; }

 private:
  struct Cell {
    std::size_t begin = 0, size = 0;  // into text_, quotes stripped, not unescaped
    bool quoted = false;
  };
  int require_column(std::string_view name) const;
  std::string cell_text(const Cell& c) const;

  std::string source_;
  std::string text_;
  std::vector<std::string> columns_;
  std::vector<std::pair<std::string, std::string>> comments_;
  std::vector<Cell> cells_;  // row-major, rows() * columns().size()
  std::vector<long> row_lines_;
};

// Parse one number with the rules above ("" -> NaN). Returns nullopt when malformed.
std::optional<double> parse_csv_number(std::string_view text);

}  // namespace psfphot::io
