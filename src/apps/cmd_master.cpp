// psfphot master: build a master dark or master flat from raw frames, written as FITS.
#include <cstdio>
#include <iostream>
#include <limits>

#include "commands.hpp"
#include "psfphot/io/fits.hpp"
#include "psfphot/io/fits_rows.hpp"
#include "psfphot/pipeline/masters.hpp"

namespace psfphot::apps {
namespace {

struct MasterArgs {
  std::string kind = "dark";
  std::vector<std::string> inputs;
  std::string output, dark, method = "clipped-mean";
  std::string overscan = "level", bias_section = "header", trim_section = "header";
  double kappa = 3.0;
  bool overwrite = false;
  bool unscaled_dark = false;
};

int run_master(const MasterArgs& a) {
  CombineConfig cc;
  cc.method = a.method == "median" ? CombineMethod::kMedian : CombineMethod::kClippedMean;
  cc.clip_kappa = a.kappa;
  cc.scale_dark_by_exptime = !a.unscaled_dark;
  cc.overscan.mode = a.overscan == "none"   ? OverscanMode::kNone
                     : a.overscan == "line" ? OverscanMode::kLine
                                            : OverscanMode::kLevel;
  cc.overscan.bias_section = a.bias_section;
  cc.overscan.trim_section = a.trim_section;
  for (const std::string* sec : {&a.bias_section, &a.trim_section})
    if (*sec != "header" && *sec != "none" && !section_syntax_error(*sec).empty()) {
      std::cerr << "psfphot master: section '" << *sec << "': " << section_syntax_error(*sec)
                << "\n";
      return kExitUsage;
    }
  try {
    io::FitsImage first = io::read_fits_header(a.inputs.front());
    std::vector<HeaderCard> cards;
    if (first.header.has_exptime())
      cards.push_back(io::card("EXPTIME", first.header.exptime_s, "s"));
    cards.push_back(io::card("NCOMBINE", static_cast<double>(a.inputs.size()), "frames combined"));
    cards.push_back(io::card("COMBINE", a.method, "per-pixel combination"));
    // What was done to the inputs' bias: `level`/`line` when every input had a strip, `none`
    // when none had one (or --overscan none), `mixed` otherwise. (The pipeline does not rely
    // on it: a master dark still holding its bias has it measured in its own strip.)
    std::size_t with_strip = 0;
    if (cc.overscan.mode != OverscanMode::kNone)
      for (const auto& p : a.inputs) {
        io::FitsRowReader r(p);
        try {
          with_strip +=
              !raw_sections(r.info().header, r.width(), r.height(), cc.overscan).bias.empty();
        } catch (const std::invalid_argument& e) {
          throw std::runtime_error(p + ": " + e.what());
        }
      }
    const std::string done = with_strip == 0                 ? std::string("none")
                             : with_strip == a.inputs.size() ? a.overscan
                                                             : std::string("mixed");
    cards.push_back(io::card("OVERSCAN", done,
                             std::to_string(with_strip) + " of " + std::to_string(a.inputs.size()) +
                                 " inputs' bias taken from their overscan strip"));
    for (const auto& p : a.inputs) cards.push_back({"HISTORY", "", "psfphot master input " + p});
    Image<float> m;
    if (a.kind == "dark") {
      double t = 0;
      m = pipeline::build_master_dark(a.inputs, cc, &t);
    } else {
      Image<float> dark;
      double t_dark = std::numeric_limits<double>::quiet_NaN();
      if (!a.dark.empty()) {
        io::FitsImage d = io::read_fits(a.dark);
        dark = std::move(d.pixels);
        t_dark = d.header.exptime_s;
      }
      m = pipeline::build_master_flat(a.inputs, cc, dark.empty() ? nullptr : &dark, t_dark);
    }
    io::FitsWriteOptions fo;
    fo.overwrite = a.overwrite;
    io::write_fits(a.output, m.cview(), cards, fo);
    std::printf("wrote master %s %s (%dx%d) from %zu frames\n", a.kind.c_str(), a.output.c_str(),
                m.width(), m.height(), a.inputs.size());
    return kExitOk;
  } catch (const std::exception& e) {
    std::cerr << "psfphot master: " << e.what() << "\n";
    return kExitFailure;
  }
}

}  // namespace

void add_master_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<MasterArgs>();
  auto* cmd = app.add_subcommand(
      "master", "Build a master dark or flat from raw frames (sigma-clipped mean or median)");
  cmd->add_option("kind", a->kind, "dark or flat")
      ->required()
      ->check(CLI::IsMember({"dark", "flat"}));
  cmd->add_option("inputs", a->inputs, "raw frames (FITS)")->required();
  cmd->add_option("-o,--output", a->output, "master FITS to write")->required();
  cmd->add_option("--dark", a->dark,
                  "flats only: master dark subtracted first, scaled by the flat's EXPTIME over "
                  "the dark's (a flat or a dark without EXPTIME is then an error)");
  cmd->add_flag("--unscaled-dark", a->unscaled_dark,
                "flats only: subtract the --dark as it is, not scaled by exposure time (as "
                "calibration.scale_dark = false)");
  cmd->add_option("--method", a->method, "clipped-mean or median")
      ->check(CLI::IsMember({"clipped-mean", "median"}));
  cmd->add_option("--kappa", a->kappa, "clipping threshold in robust sigmas");
  cmd->add_option("--overscan", a->overscan,
                  "each input's bias from its overscan strip: level (median), line or none "
                  "(as calibration.overscan; frames without a strip are left as they are)")
      ->check(CLI::IsMember({"level", "line", "none"}));
  cmd->add_option("--bias-section", a->bias_section,
                  "overscan strip: header (BIASSEC), none or [x1:x2,y1:y2]");
  cmd->add_option("--trim-section", a->trim_section,
                  "flats: pixels holding light (NaN outside): header (TRIMSEC), none or "
                  "[x1:x2,y1:y2]");
  cmd->add_flag("--overwrite", a->overwrite, "replace an existing output");
  cmd->callback([a, &exit_code]() { exit_code = run_master(*a); });
}

}  // namespace psfphot::apps
