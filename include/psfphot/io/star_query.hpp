#pragma once
// Asking the catalogue for stars: the filters of `psfphot query` (docs/query.md), the
// query runner that reads only the needed frames and
// columns, and the table / CSV / JSON writers that stream the answer.
//
// Expressions: psfphot/io/star_expression.hpp.
//
// Thread-safety: parsed expressions and queries are immutable values; run_query uses the
// reader (HDF5: one thread at a time).
#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "psfphot/core/star.hpp"
#include "psfphot/io/catalogue.hpp"
#include "psfphot/io/catalogue_schema.hpp"
#include "psfphot/io/star_expression.hpp"

namespace psfphot::io {

// Star flag bits from "none", "any" or "NAME[,NAME...]" (flag_bit_names()).
enum class FlagMode { kAll, kNone, kAny, kAnyOf };
struct FlagFilter {
  FlagMode mode = FlagMode::kAll;
  std::uint32_t bits = 0;  // kAnyOf: a star passes when it has at least one of these
};
FlagFilter parse_flag_filter(std::string_view text);  // throws QueryError

// Everything `psfphot query` can ask. Positions (box, near) use the centroid, or the
// peak pixel when the centroid is NaN; pixel coordinates are 0-based (docs/catalogue.md).
struct StarQuery {
  std::vector<std::int64_t> frames;                           // empty = every committed frame
  std::optional<std::array<double, 4>> box;                   // x0 x1 y0 y1, inclusive, px
  std::optional<std::array<double, 3>> near;                  // x y r: distance <= r, px
  double min_snr = std::numeric_limits<double>::quiet_NaN();  // NaN = off; NaN snr fails
  FlagFilter flags;
  std::optional<StarExpression> where;
  std::vector<std::string> columns;  // output columns (must be /stars columns)
  std::string sort_column;           // empty = catalogue order
  bool descending = false;
  std::int64_t limit = -1;          // < 0 = all
  std::int64_t batch_rows = 65536;  // rows read per HDF5 read when scanning
  // Read whole /stars rows (true) or only needed_columns() through a compound type of
  // just those members (false). Whole rows are the default because they are faster:
  // /stars is row-oriented and chunk-compressed, so HDF5 reads and inflates whole chunks
  // either way, and a member subset then costs a compound type conversion (HDF5 1.10:
  // 1M rows in 2.9 s with the 8 default columns vs 1.1 s as whole rows; docs/query.md).
  bool whole_rows = true;

  bool matches(const Star& s) const;
  // The columns to read: output, filters, sort (no duplicates). Throws QueryError for
  // an unknown output or sort column.
  std::vector<std::string> needed_columns() const;
};

// The output columns when none are asked for.
std::vector<std::string> default_query_columns();

struct QueryStats {
  std::int64_t rows_read = 0;
  std::int64_t rows_matched = 0;
  std::int64_t rows_emitted = 0;
};

// Runs `q` on `r`: reads only the /stars row ranges of the requested frames (from the
// /frames index; ranges of consecutive frames merged), whole rows or only the needed
// columns (q.whole_rows), in batches of q.batch_rows, and calls
// `emit` for each answer in order (catalogue order, or sorted; ties keep catalogue
// order). Without a sort the answer streams; with a sort and a limit only the best
// `limit` rows are kept; with a sort and no limit every match is held in memory.
// Throws CatalogueError for a frame id that is not in the catalogue, QueryError for a
// bad column.
QueryStats run_query(const CatalogueReader& r, const StarQuery& q,
                     const std::function<void(const Star&)>& emit);

enum class OutputFormat { kTable, kCsv, kJson };
OutputFormat parse_output_format(std::string_view text);  // throws QueryError

// Streams stars as an aligned text table (header, then one line per star), CSV (header
// line of names, shortest round-trip numbers, NaN as "nan") or JSON (one array of
// objects, NaN as null). Call row() per star then finish().
class StarWriter {
 public:
  StarWriter(std::ostream& out, OutputFormat format, std::vector<std::string> columns);
  void row(const Star& s);
  void finish();

 private:
  std::ostream& out_;
  OutputFormat format_;
  std::vector<const ColumnInfo*> cols_;
  std::vector<int> widths_;
  std::int64_t rows_ = 0;
  bool finished_ = false;
  void header();
};

}  // namespace psfphot::io
