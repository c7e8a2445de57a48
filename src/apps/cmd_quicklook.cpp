// psfphot quicklook CATALOGUE.h5 --frame ID -o DIR: PNG pictures of one frame and of the
// night (docs/quicklook.md). The catalogue holds stars, not pixels: the frame is
// processed again from its raw file with the stored config (masters rebuilt the same way).
#include <fnmatch.h>
#include <omp.h>

#include <unistd.h>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "psfphot/algo/quicklook.hpp"
#include "psfphot/io/catalogue.hpp"
#include "psfphot/io/png.hpp"
#include "psfphot/pipeline/config.hpp"
#include "psfphot/pipeline/masters.hpp"
#include "psfphot/pipeline/night.hpp"
#include "psfphot/pipeline/process_frame.hpp"
#include "psfphot/version.hpp"

namespace psfphot::apps {
namespace {
namespace fs = std::filesystem;

// The folder the night config's relative paths were relative to (not stored in the
// catalogue): the ancestor of the frame's file for which a night.science pattern
// matches that file; else the catalogue's folder.
std::string guess_base_dir(const pipeline::Config& cfg, const std::string& frame_path,
                           const std::string& catalogue) {
  const fs::path frame = fs::path(frame_path).lexically_normal();
  for (const auto& pat : cfg.night.science) {
    if (pat.empty() || pat[0] == '@' || fs::path(pat).is_absolute()) continue;
    for (fs::path a = frame.parent_path(); !a.empty(); a = a.parent_path()) {
      const std::string full = (a / pat).lexically_normal().string();
      if (::fnmatch(full.c_str(), frame.c_str(), FNM_PATHNAME) == 0) return a.string();
      if (a == a.root_path()) break;
    }
  }
  return fs::absolute(catalogue).parent_path().string();
}

class QuicklookError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace

void add_quicklook_command(CLI::App& app, int& exit_code) {
  auto* cmd =
      app.add_subcommand("quicklook",
                         "PNG pictures of one frame (stars circled, cut-outs, background, RMS) and "
                         "of the night (PSF width, sky, star count per frame)");
  struct Args {
    std::string path, outdir, stretch = "zscale", config;
    std::int64_t frame = -1;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("catalogue", a->path, "night catalogue (HDF5)")->required();
  cmd->add_option("--frame", a->frame, "frame id")->required()->check(CLI::NonNegativeNumber);
  cmd->add_option("-o,--out", a->outdir, "folder for the PNG files (created)")->required();
  cmd->add_option("--stretch", a->stretch, "zscale or asinh")
      ->check(CLI::IsMember({"zscale", "asinh"}));
  cmd->add_option("--config", a->config,
                  "night config to use instead of the one stored in the catalogue (e.g. when "
                  "the night's files moved)");
  cmd->add_option("--threads", a->threads, "OpenMP threads (0 = default)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([a, &exit_code]() {
    try {
      io::CatalogueReader r(a->path);
      const io::FrameEntry* entry = nullptr;
      for (const auto& f : r.frames())
        if (f.frame_id == a->frame) entry = &f;
      if (!entry) {
        std::cerr << "psfphot quicklook: error: frame " << a->frame << " is not in " << a->path
                  << " (psfphot info --per-frame lists the frames)\n";
        exit_code = kExitUsage;
        return;
      }
      if (entry->status != 0)
        throw QuicklookError("frame " + std::to_string(a->frame) + " failed in the night (" +
                             entry->status_name + ": " + entry->message + "): no stars to show");
      std::error_code ec;
      // The raw frame: where the run read it, or (night moved, --config given) the file
      // of the same name at that frame id in the night the config describes.
      std::string raw = entry->path;
      const bool raw_there = fs::exists(raw, ec);
      if (!raw_there && a->config.empty())
        throw QuicklookError("the raw frame " + entry->path + " of frame " +
                             std::to_string(a->frame) +
                             " is no longer there; quicklook processes the raw frame again "
                             "(restore the file, or give --config with the night's new place)");
      fs::create_directories(a->outdir, ec);
      if (ec || !fs::is_directory(a->outdir))
        throw QuicklookError(a->outdir + ": cannot create the output folder" +
                             (ec ? ": " + ec.message() : std::string()));

      // The night's config: the stored effective config, or the user's.
      pipeline::Config cfg;
      if (!a->config.empty()) {
        cfg = pipeline::load_config(a->config, {});
      } else {
        const std::string tmp = (fs::path(a->outdir) / ".quicklook-config.toml").string();
        std::ofstream(tmp) << r.info().config_text;
        try {
          cfg = pipeline::load_config(tmp, {});
        } catch (...) {
          fs::remove(tmp, ec);
          throw;
        }
        fs::remove(tmp, ec);
        cfg.source = a->path + " (stored config)";
        cfg.night.base_dir = guess_base_dir(cfg, entry->path, a->path);
      }
      if (a->threads > 0) omp_set_num_threads(a->threads);
      pipeline::RunOptions opt;
      // plan_night wants a catalogue path it may create; quicklook never writes it.
      opt.output = (fs::absolute(a->outdir) / ".quicklook-unused.h5").string();
      opt.mode = pipeline::OutputMode::kOverwrite;
      opt.quiet = true;
      pipeline::NightPlan plan;
      try {
        plan = pipeline::plan_night(cfg, opt);
      } catch (const std::exception& e) {
        throw QuicklookError(std::string("cannot find the night's calibration frames from the ") +
                             "stored config (give --config NIGHT.toml): " + e.what());
      }
      if (!raw_there) {
        const auto id = static_cast<std::size_t>(a->frame);
        const std::string name = fs::path(entry->path).filename().string();
        if (id >= plan.frames.size() || fs::path(plan.frames[id]).filename() != name)
          throw QuicklookError("the raw frame " + entry->path + " of frame " +
                               std::to_string(a->frame) + " is no longer there, and " + a->config +
                               " does not list a " + name + " as frame " +
                               std::to_string(a->frame));
        raw = plan.frames[id];
      }
      std::fprintf(stderr, "psfphot quicklook: rebuilding masters, processing %s again\n",
                   raw.c_str());
      const pipeline::Masters masters =
          pipeline::load_masters(plan.master_dark, plan.darks, plan.master_flat, plan.flats,
                                 plan.mask_file, cfg.frame, cfg.night.combine);
      pipeline::FrameProducts prod;
      const FrameResult fr = pipeline::process_frame(a->frame, raw, cfg.frame, masters, &prod);
      if (!fr.ok() || prod.calibrated.empty())
        throw QuicklookError(raw + ": processing it again failed (" + to_string(fr.status) + ": " +
                             fr.message + ")");

      const std::vector<Star> stars = r.stars_for_frames({a->frame});
      const std::string id = std::to_string(a->frame);
      const std::vector<std::pair<std::string, std::string>> meta_base = {
          {"Software", std::string("psfphot ") + kVersion + " (git " + kGitHash + ")"},
          {"Source", raw},
          {"Catalogue", a->path}};
      auto meta = [&](const std::string& title) {
        auto m = meta_base;
        m.insert(m.begin(), {"Title", title});
        return m;
      };
      std::vector<std::string> written;
      auto out = [&](const std::string& name) {
        written.push_back((fs::path(a->outdir) / name).string());
        return written.back();
      };

      FramePictureConfig fc;
      fc.stretch = a->stretch == "asinh" ? DisplayStretch::kAsinh : DisplayStretch::kZscale;
      StretchLimits lim;
      std::size_t flagged = 0;
      for (const Star& s : stars) flagged += s.flags != 0;
      io::write_png(out("frame_" + id + ".png"),
                    frame_picture(prod.calibrated.cview(), prod.mask.cview(), stars,
                                  entry->psf_sigma_px, fc, &lim),
                    meta("frame " + id + ": " + std::to_string(stars.size()) + " stars (" +
                         std::to_string(flagged) + " flagged, red), " + a->stretch + " " +
                         std::to_string(lim.lo) + " .. " + std::to_string(lim.hi) +
                         " ADU; row 0 at the bottom"));
      io::write_png(out("cutouts_" + id + ".png"),
                    cutout_grid(prod.calibrated.cview(), prod.background.cview(), stars),
                    meta("frame " + id + ": cut-outs, peak pixel magenta, centroid yellow"));
      io::write_png(out("background_" + id + ".png"),
                    map_picture(prod.background.cview(), "BACKGROUND ADU"),
                    meta("frame " + id + ": background map, ADU per pixel"));
      io::write_png(out("rms_" + id + ".png"), map_picture(prod.rms.cview(), "RMS ADU"),
                    meta("frame " + id + ": background RMS map, ADU per pixel"));

      // Across the night: the latest row of each ok frame.
      std::map<std::int64_t, const io::FrameEntry*> latest;
      for (const auto& f : r.frames()) latest[f.frame_id] = &f;
      std::vector<double> ids;
      NightSeries psf{"PSF SIGMA PX", {}}, sky{"SKY ADU", {}}, count{"STARS", {}};
      for (const auto& [fid, f] : latest) {
        if (f->status != 0) continue;
        ids.push_back(static_cast<double>(fid));
        psf.values.push_back(f->psf_sigma_px);
        sky.values.push_back(f->sky_adu);
        count.values.push_back(f->n_stars);
      }
      io::write_png(out("night.png"),
                    night_plots(ids, {psf, sky, count}, static_cast<double>(a->frame)),
                    meta("night: PSF sigma, sky and star count per ok frame (x = frame id); "
                         "frame " +
                         id + " marked red"));
      for (const auto& w : written) std::printf("%s\n", w.c_str());
      exit_code = kExitOk;
    } catch (const QuicklookError& e) {
      std::cerr << "psfphot quicklook: error: " << e.what() << "\n";
      exit_code = kExitFailure;
    }
  });
}

}  // namespace psfphot::apps
