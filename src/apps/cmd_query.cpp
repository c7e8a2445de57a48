// psfphot query CATALOGUE.h5 [filters]: stars of a catalogue as a table, CSV or JSON
// (docs/query.md). Reads only the requested frames' rows and the needed columns.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "psfphot/io/catalogue.hpp"
#include "psfphot/io/star_query.hpp"

namespace psfphot::apps {
namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    std::size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    std::string item = s.substr(start, comma - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
    start = comma + 1;
  }
  return out;
}

std::int64_t parse_id(const std::string& s) {
  std::size_t used = 0;
  long long v = -1;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != s.size() || v < 0)
    throw io::QueryError("--frame: '" + s + "' is not a frame id (ID, ID,ID or FIRST-LAST)");
  return v;
}

// "3", "3,5,9", "10-20" (inclusive), mixed.
std::vector<std::int64_t> parse_frames(const std::string& text) {
  std::vector<std::int64_t> ids;
  for (const auto& item : split(text)) {
    const auto dash = item.find('-', 1);
    if (dash == std::string::npos) {
      ids.push_back(parse_id(item));
      continue;
    }
    const std::int64_t a = parse_id(item.substr(0, dash)), b = parse_id(item.substr(dash + 1));
    if (b < a) throw io::QueryError("--frame: empty range '" + item + "'");
    for (std::int64_t i = a; i <= b; ++i) ids.push_back(i);
  }
  if (ids.empty()) throw io::QueryError("--frame: no frame id given");
  return ids;
}

}  // namespace

void add_query_command(CLI::App& app, int& exit_code) {
  auto* cmd =
      app.add_subcommand("query", "Stars of a catalogue, filtered, as a table, CSV or JSON");
  struct Args {
    std::string path, frames, flags, where, columns, sort, format = "table", output;
    std::vector<double> box, near;
    double min_snr = std::numeric_limits<double>::quiet_NaN();
    std::int64_t limit = -1;
    bool desc = false, stats = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("catalogue", a->path, "night catalogue (HDF5)")->required();
  cmd->add_option("--frame", a->frames, "frame ids: ID, ID,ID,... or FIRST-LAST");
  cmd->add_option("--box", a->box, "x0 x1 y0 y1: position inside (inclusive, 0-based px)")
      ->expected(4);
  cmd->add_option("--near", a->near, "x y r: position within r px of (x, y)")->expected(3);
  cmd->add_option("--min-snr", a->min_snr, "snr >= S (stars without an snr fail)");
  cmd->add_option("--flags", a->flags,
                  "none (no flag), any (some flag), or NAME[,NAME] (at least one of them)");
  cmd->add_option("--where", a->where,
                  "expression on columns, e.g. \"psf_flux > 1000 and (flags & crowded) == 0\"");
  cmd->add_option("--columns", a->columns, "output columns a,b,... or 'all'");
  cmd->add_option("--sort", a->sort, "sort by COLUMN (ascending) or COLUMN:desc");
  cmd->add_flag("--desc", a->desc, "sort descending");
  cmd->add_option("--limit", a->limit, "at most N rows")->check(CLI::NonNegativeNumber);
  cmd->add_option("--format", a->format, "table, csv or json")->default_str("table");
  cmd->add_option("-o,--output", a->output, "write to FILE instead of standard output");
  cmd->add_flag("--stats", a->stats, "print rows read / matched and the time on stderr");
  cmd->callback([a, &exit_code]() {
    const auto t0 = std::chrono::steady_clock::now();
    io::StarQuery q;
    io::OutputFormat format{};
    try {
      if (!a->frames.empty()) q.frames = parse_frames(a->frames);
      if (!a->box.empty())
        q.box = std::array<double, 4>{a->box[0], a->box[1], a->box[2], a->box[3]};
      if (!a->near.empty()) q.near = std::array<double, 3>{a->near[0], a->near[1], a->near[2]};
      q.min_snr = a->min_snr;
      if (!a->flags.empty()) q.flags = io::parse_flag_filter(a->flags);
      if (!a->where.empty()) q.where = io::StarExpression::parse(a->where);
      if (a->columns == "all") {
        for (const auto& c : io::star_columns()) q.columns.emplace_back(c.name);
      } else if (!a->columns.empty()) {
        q.columns = split(a->columns);
      }
      q.sort_column = a->sort;
      q.descending = a->desc;
      if (const auto colon = a->sort.find(':'); colon != std::string::npos) {
        const std::string dir = a->sort.substr(colon + 1);
        if (dir != "desc" && dir != "asc")
          throw io::QueryError("--sort: '" + a->sort + "': use COLUMN, COLUMN:asc or COLUMN:desc");
        q.sort_column = a->sort.substr(0, colon);
        q.descending = dir == "desc";
      }
      q.limit = a->limit;
      format = io::parse_output_format(a->format);
      q.needed_columns();  // unknown columns are reported before the catalogue is opened
    } catch (const io::QueryError& e) {
      std::cerr << "psfphot query: error: " << e.what() << "\n";
      exit_code = kExitUsage;
      return;
    }
    io::CatalogueReader r(a->path);
    for (std::int64_t id : q.frames) {
      bool found = false;
      for (const auto& f : r.frames()) found = found || f.frame_id == id;
      if (!found) {
        std::cerr << "psfphot query: error: frame " << id << " is not in " << a->path
                  << " (psfphot info --per-frame lists the frames)\n";
        exit_code = kExitUsage;
        return;
      }
    }
    std::ofstream file;
    if (!a->output.empty()) {
      file.open(a->output, std::ios::binary | std::ios::trunc);
      if (!file) throw std::runtime_error(a->output + ": cannot open for writing");
    } else {
      std::ios_base::sync_with_stdio(false);
    }
    std::ostream& out = a->output.empty() ? std::cout : file;
    io::StarWriter w(out, format, q.columns);
    const io::QueryStats st = io::run_query(r, q, [&](const Star& s) { w.row(s); });
    w.finish();
    if (!a->output.empty()) {
      file.close();
      if (!file) throw std::runtime_error(a->output + ": write failed");
    }
    if (a->stats) {
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr,
                   "psfphot query: %lld rows out, %lld matched, %lld of %lld read, %.1f ms\n",
                   static_cast<long long>(st.rows_emitted), static_cast<long long>(st.rows_matched),
                   static_cast<long long>(st.rows_read), static_cast<long long>(r.star_rows()), ms);
    }
    exit_code = kExitOk;
  });
}

}  // namespace psfphot::apps
