// psfphot score CATALOGUE TRUTH: match a catalogue to a simulator truth table and print the
// scorecard (docs/score.md); --json writes every number machine-readably.
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands.hpp"
#include "psfphot/algo/score.hpp"
#include "psfphot/core/frame_result.hpp"
#include "psfphot/io/catalogue.hpp"
#include "psfphot/io/table_csv.hpp"
#include "score_output.hpp"

namespace psfphot::apps {
namespace {

struct ScoreOptions {
  std::string catalogue, truth, json_out;
  std::string x_col, y_col, flux_col, flags_col;
  std::string frame;  // HDF5 catalogue: frame name or id; empty = the only frame
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

// x, y, flux and flags columns (flux and flags as doubles, either may be empty) into
// measured stars; `where(i)` names row i in error messages.
template <typename Where>
std::vector<ScoreMeasuredStar> to_measured(const std::vector<double>& xs,
                                           const std::vector<double>& ys,
                                           const std::vector<double>& fl,
                                           const std::vector<double>& fg, const ScoreColumns& cols,
                                           Where where) {
  const double shift = cols.one_based ? 1.0 : 0.0;
  std::vector<ScoreMeasuredStar> m(xs.size());
  for (std::size_t i = 0; i < m.size(); ++i) {
    m[i].x = xs[i] - shift;
    m[i].y = ys[i] - shift;
    m[i].flux_adu = fl.empty() ? NAN : fl[i];
    if (!fg.empty()) {
      if (!(fg[i] >= 0 && fg[i] <= 4294967295.0 && fg[i] == std::floor(fg[i])))
        throw InputError(where(i) + ": column '" + cols.flags +
                         "': flags must be an unsigned 32-bit integer");
      m[i].flags = static_cast<std::uint32_t>(fg[i]);
    }
  }
  return m;
}

// HDF5 files start with this signature (at offset 0 unless a user block precedes it).
bool looks_like_hdf5(const std::string& path) {
  const std::string ext = lower(std::filesystem::path(path).extension().string());
  if (ext == ".h5" || ext == ".hdf5" || ext == ".he5") return true;
  std::ifstream in(path, std::ios::binary);
  char sig[8] = {};
  in.read(sig, sizeof sig);
  return in && std::string(sig, sizeof sig) == std::string("\x89HDF\r\n\x1a\n", 8);
}

std::string frame_name(const io::FrameEntry& f) {
  return std::filesystem::path(f.path).stem().string();
}

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char ch : s)
    if (!std::isdigit(static_cast<unsigned char>(ch))) return false;
  return true;
}

// "id name" of up to 12 frames, for error messages.
std::string list_frames(const std::map<std::int64_t, io::FrameEntry>& frames) {
  std::string s;
  int n = 0;
  for (const auto& [id, f] : frames) {
    if (n++ == 12) return s + ", ...";
    s += (s.empty() ? "" : ", ") + std::to_string(id) + " " + frame_name(f);
  }
  return s;
}

// The frame of an HDF5 catalogue chosen by --frame (docs/score.md "HDF5 catalogues").
io::FrameEntry choose_frame(const io::CatalogueReader& reader, const ScoreOptions& o) {
  std::map<std::int64_t, io::FrameEntry> latest;  // a later row of the same id wins
  for (const auto& f : reader.frames()) latest[f.frame_id] = f;
  const std::string& path = o.catalogue;
  if (latest.empty()) throw InputError(path + ": the catalogue holds no frames");
  const io::FrameEntry* chosen = nullptr;
  if (o.frame.empty()) {
    if (latest.size() != 1) {
      // Suggest the frame whose name is the truth file's (sci_0001.csv -> sci_0001).
      const std::string truth_stem = std::filesystem::path(o.truth).stem().string();
      std::string hint;
      for (const auto& [id, f] : latest)
        if (frame_name(f) == truth_stem) hint = " (the truth file's: --frame " + truth_stem + ")";
      throw InputError(
          path + ": the catalogue holds " + std::to_string(latest.size()) +
          " frames; choose one with --frame NAME or --frame ID" + hint +
          "; NAME is the science file's stem, ID the 0-based frame id: " + list_frames(latest));
    }
    chosen = &latest.begin()->second;
  } else if (all_digits(o.frame)) {
    const auto it = o.frame.size() < 18 ? latest.find(std::stoll(o.frame)) : latest.end();
    if (it == latest.end())
      throw InputError(path + ": no frame with id " + o.frame + " (frames: " + list_frames(latest) +
                       ")");
    chosen = &it->second;
  } else {
    for (const auto& [id, f] : latest) {
      const std::filesystem::path p(f.path);
      if (p.stem().string() != o.frame && p.filename().string() != o.frame && f.path != o.frame)
        continue;
      if (chosen)
        throw InputError(path + ": frame name '" + o.frame + "' is ambiguous (frames " +
                         std::to_string(chosen->frame_id) + " and " + std::to_string(id) +
                         "); give the frame id");
      chosen = &f;
    }
    if (!chosen)
      throw InputError(path + ": no frame named '" + o.frame + "' (frames: " + list_frames(latest) +
                       ")");
  }
  if (chosen->status != static_cast<std::int32_t>(FrameStatus::kOk)) {
    std::string why = chosen->status_name;
    if (!chosen->failed_step.empty()) why += " in step " + chosen->failed_step;
    if (!chosen->message.empty()) why += ": " + chosen->message;
    throw InputError(path + ": frame " + std::to_string(chosen->frame_id) + " (" +
                     frame_name(*chosen) + ") has no stars to score: it failed (" + why + ")");
  }
  return *chosen;
}

struct ChosenFrame {
  long id = -1;
  std::string name;
};

std::vector<ScoreMeasuredStar> read_hdf5_catalogue(const ScoreOptions& o, ScoreColumns& cols,
                                                   ChosenFrame& chosen) {
  const io::CatalogueReader reader(o.catalogue);  // CatalogueError names the file
  const io::FrameEntry f = choose_frame(reader, o);
  chosen = {static_cast<long>(f.frame_id), frame_name(f)};
  const std::string frame_label = "frame " + std::to_string(f.frame_id) + " (" + chosen.name + ")";
  const std::string truth_stem = std::filesystem::path(o.truth).stem().string();
  if (frame_name(f) != truth_stem)
    for (const auto& other : reader.frames())
      if (frame_name(other) == truth_stem)
        std::cerr << "psfphot score: note: scoring " << frame_label << " against " << o.truth
                  << ", whose name is that of frame " << other.frame_id << "\n";
  cols.one_based = o.one_based;
  cols.x = o.x_col.empty() ? "centroid_x" : o.x_col;
  cols.y = o.y_col.empty() ? "centroid_y" : o.y_col;
  cols.flux = o.flux_col.empty() ? "psf_flux" : o.flux_col;
  cols.flags = o.flags_col.empty() ? "flags" : o.flags_col;
  auto column = [&](const std::string& name) {
    try {
      return reader.star_column(name, {f.frame_id});
    } catch (const std::invalid_argument& e) {
      throw InputError(o.catalogue + ": no numeric star column '" + name + "' (" + e.what() + ")");
    }
  };
  const auto xs = column(cols.x), ys = column(cols.y), fl = column(cols.flux),
             fg = column(cols.flags);
  if (ys.size() != xs.size() || fl.size() != xs.size() || fg.size() != xs.size())
    throw InputError(o.catalogue + ": " + frame_label + ": columns of different lengths");
  return to_measured(xs, ys, fl, fg, cols, [&](std::size_t i) {
    return o.catalogue + ": " + frame_label + " star row " + std::to_string(i);
  });
}

std::vector<ScoreMeasuredStar> read_catalogue(const ScoreOptions& o, ScoreColumns& cols,
                                              ChosenFrame& chosen) {
  if (looks_like_hdf5(o.catalogue)) return read_hdf5_catalogue(o, cols, chosen);
  if (!o.frame.empty())
    throw InputError(o.catalogue + ": --frame applies to HDF5 catalogues only (this is a CSV)");
  const auto cat = io::CsvTable::read(o.catalogue);
  cols = choose_columns(cat, o);
  const auto xs = cat.numbers(cols.x), ys = cat.numbers(cols.y);
  const auto fl = cols.flux.empty() ? std::vector<double>() : cat.numbers(cols.flux);
  const auto fg = cols.flags.empty() ? std::vector<double>() : cat.numbers(cols.flags);
  return to_measured(xs, ys, fl, fg, cols, [&](std::size_t i) {
    return cat.source() + ":" + std::to_string(cat.line_of(i));
  });
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
  // Older truth tables have no flat_response: 1, the peers' literal bound.
  const auto flat = t.has_column("flat_response") ? t.numbers("flat_response")
                                                  : std::vector<double>(t.rows(), 1.0);
  std::vector<ScoreTruthStar> out(t.rows());
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!(flat[i] > 0) || !std::isfinite(flat[i]))
      throw InputError(path + ":" + std::to_string(t.line_of(i)) +
                       ": flat_response must be a finite number > 0");
    out[i] = ScoreTruthStar{x[i], y[i], f[i], snr[i], sat[i], sig[i], b[i], flat[i]};
  }
  return out;
}

int run_score(const ScoreOptions& o) {
  ScoreFrame frame;
  ScoreColumns cols;
  std::vector<ScoreMeasuredStar> measured;
  std::vector<ScoreTruthStar> truth;
  ChosenFrame chosen;  // HDF5: which frame was scored
  try {
    measured = read_catalogue(o, cols, chosen);
    truth = read_truth(o.truth, frame);
  } catch (const std::exception& e) {  // CsvError, CatalogueError, InputError: the input's
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
  const ScoreInputs in{o.catalogue, o.truth, cols, frame, cfg, chosen.id, chosen.name};
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
                  "catalogue: psfphot per-frame CSV, any CSV with x/y/flux columns, or the "
                  "night's HDF5 catalogue (with --frame)")
      ->required();
  cmd->add_option("truth", o->truth, "truth CSV written by psfphot simulate")->required();
  cmd->add_option("--frame", o->frame,
                  "HDF5 catalogue: the frame to score, by name (science file stem, e.g. "
                  "sci_0001) or 0-based frame id (default: the only frame)");
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
