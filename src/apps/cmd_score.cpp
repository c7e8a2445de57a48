// psfphot score CATALOGUE TRUTH: match a catalogue to a simulator truth table and print the
// scorecard (docs/score.md); --json writes every number machine-readably.
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands.hpp"
#include "psfphot/algo/score.hpp"
#include "psfphot/io/table_csv.hpp"
#include "score_output.hpp"

namespace psfphot::apps {
namespace {

struct ScoreOptions {
  std::string catalogue, truth, json_out;
  std::string x_col, y_col, flux_col, flags_col;
  bool one_based = false;
  double match_radius_px = 1.5;
  std::uint32_t reject_flags = 0;
};

// Input problems (bad file, missing column): exit code kExitUsage.
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// First column whose name equals one of `candidates`, exactly, then ignoring case.
std::string find_column(const io::CsvTable& t, const std::vector<std::string>& candidates) {
  for (const auto& c : candidates)
    if (t.has_column(c)) return c;
  for (const auto& c : candidates)
    for (const auto& col : t.columns())
      if (lower(col) == lower(c)) return col;
  return {};
}

ScoreColumns choose_columns(const io::CsvTable& cat, const ScoreOptions& o) {
  ScoreColumns c;
  c.one_based = o.one_based;
  // psfphot's own per-frame CSV first, then names other tools use (sep, photutils,
  // SExtractor); the candidate lists are documented in docs/score.md.
  const bool psfphot_csv =
      cat.has_column("centroid_x") && cat.has_column("centroid_y") && cat.has_column("psf_flux");
  c.x = !o.x_col.empty() ? o.x_col
        : psfphot_csv    ? "centroid_x"
                         : find_column(cat, {"x", "x_px", "centroid_x", "xcentroid", "x_centroid",
                                             "x_fit", "x_0", "xcenter", "XWIN_IMAGE", "X_IMAGE"});
  c.y = !o.y_col.empty() ? o.y_col
        : psfphot_csv    ? "centroid_y"
                         : find_column(cat, {"y", "y_px", "centroid_y", "ycentroid", "y_centroid",
                                             "y_fit", "y_0", "ycenter", "YWIN_IMAGE", "Y_IMAGE"});
  c.flux = !o.flux_col.empty() ? o.flux_col
           : psfphot_csv       ? "psf_flux"
                         : find_column(cat, {"flux", "flux_adu", "psf_flux", "flux_fit", "FLUX_PSF",
                                             "FLUX_AUTO", "FLUX_ISO", "FLUX_APER"});
  c.flags = !o.flags_col.empty() ? o.flags_col : find_column(cat, {"flags"});
  if (c.x.empty() || c.y.empty())
    throw InputError(cat.source() +
                     ": no x/y columns recognised; name them with --x-col and --y-col");
  for (const auto* name : {&c.x, &c.y, &c.flux, &c.flags})
    if (!name->empty() && !cat.has_column(*name))
      throw InputError(cat.source() + ": no column '" + *name + "'");
  return c;
}

std::vector<ScoreMeasuredStar> read_catalogue(const ScoreOptions& o, ScoreColumns& cols) {
  const std::string ext = lower(std::filesystem::path(o.catalogue).extension().string());
  if (ext == ".h5" || ext == ".hdf5" || ext == ".he5")
    throw InputError(o.catalogue + ": HDF5 catalogues: not yet supported (give a CSV)");
  const auto cat = io::CsvTable::read(o.catalogue);
  cols = choose_columns(cat, o);
  const auto xs = cat.numbers(cols.x), ys = cat.numbers(cols.y);
  const auto fl = cols.flux.empty() ? std::vector<double>(cat.rows(), NAN) : cat.numbers(cols.flux);
  const auto fg = cols.flags.empty() ? std::vector<double>() : cat.numbers(cols.flags);
  const double shift = o.one_based ? 1.0 : 0.0;
  std::vector<ScoreMeasuredStar> m(cat.rows());
  for (std::size_t i = 0; i < m.size(); ++i) {
    m[i].x = xs[i] - shift;
    m[i].y = ys[i] - shift;
    m[i].flux_adu = fl[i];
    if (!fg.empty()) {
      if (!(fg[i] >= 0 && fg[i] <= 4294967295.0 && fg[i] == std::floor(fg[i])))
        throw InputError(cat.source() + ":" + std::to_string(cat.line_of(i)) + ": column '" +
                         cols.flags + "': flags must be an unsigned 32-bit integer");
      m[i].flags = static_cast<std::uint32_t>(fg[i]);
    }
  }
  return m;
}

std::vector<ScoreTruthStar> read_truth(const std::string& path, ScoreFrame& frame) {
  const auto t = io::CsvTable::read(path);
  const double w = t.comment_number("width"), h = t.comment_number("height");
  frame.gain_e_per_adu = t.comment_number("gain_e_per_adu");
  if (!(w >= 1 && h >= 1 && w == std::floor(w) && h == std::floor(h) && w < 1e9 && h < 1e9))
    throw InputError(path + ": '# width=' and '# height=' must be positive integers");
  frame.width = static_cast<int>(w);
  frame.height = static_cast<int>(h);
  const auto x = t.numbers("x"), y = t.numbers("y"), f = t.numbers("flux"), snr = t.numbers("snr");
  const auto sat = t.booleans("saturated");
  const auto sig = t.numbers("psf_sigma_px"), b = t.numbers("sky_var_adu2");
  std::vector<ScoreTruthStar> out(t.rows());
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = ScoreTruthStar{x[i], y[i], f[i], snr[i], sat[i], sig[i], b[i]};
  return out;
}

int run_score(const ScoreOptions& o) {
  ScoreFrame frame;
  ScoreColumns cols;
  std::vector<ScoreMeasuredStar> measured;
  std::vector<ScoreTruthStar> truth;
  try {
    measured = read_catalogue(o, cols);
    truth = read_truth(o.truth, frame);
  } catch (const std::exception& e) {  // CsvError and InputError: the input's fault
    std::cerr << "psfphot score: error: " << e.what() << "\n";
    return kExitUsage;
  }
  if (!o.one_based && (lower(cols.x).ends_with("_image") || lower(cols.y).ends_with("_image")))
    std::cerr << "psfphot score: note: " << cols.x << "/" << cols.y
              << " look like SExtractor's 1-based coordinates; pass --one-based if they are\n";
  if (cols.flux.empty())
    std::cerr << "psfphot score: note: no flux column recognised (--flux-col); flux columns "
                 "will be empty\n";
  ScoreConfig cfg;
  cfg.match_radius_px = o.match_radius_px;
  cfg.saturated_exclusion_radius_px = o.match_radius_px;
  cfg.reject_flags = o.reject_flags;
  ScoreReport r;
  try {
    r = score_catalogue(truth, frame, measured, cfg);
  } catch (const std::invalid_argument& e) {
    std::cerr << "psfphot score: error: " << o.truth << ": " << e.what() << "\n";
    return kExitUsage;
  }
  const ScoreInputs in{o.catalogue, o.truth, cols, frame, cfg};
  const std::string json = score_to_json(in, r);
  if (o.json_out == "-") {
    std::cout << json;
    return kExitOk;
  }
  std::cout << score_to_text(in, r);
  if (!o.json_out.empty()) {
    std::ofstream f(o.json_out, std::ios::binary | std::ios::trunc);
    f << json;
    f.close();
    if (!f) {
      std::cerr << "psfphot score: error: " << o.json_out << ": cannot write\n";
      return kExitFailure;
    }
  }
  return kExitOk;
}

}  // namespace

void add_score_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "score", "Score a catalogue against a simulator truth table (docs/score.md)");
  auto o = std::make_shared<ScoreOptions>();
  cmd->add_option("catalogue", o->catalogue,
                  "catalogue CSV: psfphot per-frame CSV or any CSV with x/y/flux columns")
      ->required();
  cmd->add_option("truth", o->truth, "truth CSV written by psfphot simulate")->required();
  cmd->add_option("--json", o->json_out,
                  "also write the scorecard as JSON here ('-': stdout only)");
  cmd->add_option("--x-col", o->x_col, "catalogue column of x (default: detected)");
  cmd->add_option("--y-col", o->y_col, "catalogue column of y (default: detected)");
  cmd->add_option("--flux-col", o->flux_col,
                  "catalogue column of the flux, ADU (default: detected)");
  cmd->add_option("--flags-col", o->flags_col,
                  "catalogue column of integer flags (default: flags)");
  cmd->add_flag("--one-based", o->one_based,
                "catalogue x/y are 1-based (FITS/SExtractor/DS9): subtract 1");
  cmd->add_option("--match-radius", o->match_radius_px, "match radius, px")
      ->default_val(1.5)
      ->check(CLI::PositiveNumber);
  cmd->add_option("--reject-flags", o->reject_flags,
                  "drop catalogue rows with any of these flag bits before matching (default 0)");
  cmd->callback([o, &exit_code]() { exit_code = run_score(*o); });
}

}  // namespace psfphot::apps
