#pragma once
// The expression language of `psfphot query --where` (docs/query.md), on /stars rows.
//
// Expressions (StarExpression) are Python-like, on the /stars columns (names from
// star_columns(); flags are numbers, flag bit names are constants):
//   psf_flux > 1000
//   snr >= 20 and (flags & crowded) == 0
//   centroid_x < 100 or not width_x <= 3 || psf_flux / psf_flux_err > 50
// Precedence, loosest first: or (||), and (&&), not (!), comparisons (< <= > >= == != =,
// one per operand pair), | , & (bitwise on the integer parts), + -, * / %, unary -.
// Every value is a double (integers of the catalogue are exact); a comparison with NaN is
// false; a value used as a condition is true when non-zero and not NaN.
// Errors throw QueryError with the expression, the position and, for an unknown column,
// the list of columns.
//
//
// Thread-safety: a parsed expression is an immutable value.
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "psfphot/core/star.hpp"
#include "psfphot/io/catalogue_schema.hpp"

namespace psfphot::io {

// A problem with a query given by the user (bad expression, unknown column or flag name).
class QueryError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// The /stars column named `name`, or nullptr.
const ColumnInfo* find_star_column(std::string_view name);
// "frame_id, star_id, ..." (for error messages).
std::string star_column_list();
// The value of a numeric column of `s` as a double (text columns do not exist in /stars).
double star_value(const Star& s, const ColumnInfo& c);

class StarExpression {
 public:
  StarExpression();
  ~StarExpression();
  StarExpression(const StarExpression&);
  StarExpression& operator=(const StarExpression&);
  StarExpression(StarExpression&&) noexcept;
  StarExpression& operator=(StarExpression&&) noexcept;

  // Throws QueryError for a syntax error or an unknown name.
  static StarExpression parse(std::string_view text);
  bool matches(const Star& s) const;
  double evaluate(const Star& s) const;
  // Columns the expression reads, each once, in order of first use.
  const std::vector<std::string>& columns() const;
  const std::string& text() const;

  struct Impl;  // the parsed program (opaque)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace psfphot::io
