// psfphot info CATALOGUE.h5: what a user checks first after a night (docs/query.md).
// Reads only the /frames table and the root attributes, never /stars.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "psfphot/io/catalogue.hpp"
#include "psfphot/pipeline/config.hpp"

namespace psfphot::apps {
namespace {

std::string num(double v, const char* fmt = "%.4g") {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// "section.key" -> "key = value" of a TOML text as written by effective_config_toml.
std::vector<std::pair<std::string, std::string>> config_lines(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(text);
  std::string line, section;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      section = line.substr(1, line.find(']') - 1);
      continue;
    }
    const auto eq = line.find(" = ");
    if (eq == std::string::npos) continue;
    out.emplace_back(section + "." + line.substr(0, eq), line);
  }
  return out;
}

void print_stat(const char* name, const std::vector<const io::FrameEntry*>& ok,
                double io::FrameEntry::*field) {
  std::vector<std::pair<double, std::int64_t>> v;
  for (const auto* f : ok)
    if (std::isfinite(f->*field)) v.emplace_back(f->*field, f->frame_id);
  if (v.empty()) {
    std::printf("  %-13s -\n", name);
    return;
  }
  std::sort(v.begin(), v.end());
  const double med = v.size() % 2 ? v[v.size() / 2].first
                                  : 0.5 * (v[v.size() / 2 - 1].first + v[v.size() / 2].first);
  std::printf("  %-13s %10s %10s %10s   (min frame %lld, max frame %lld)\n", name,
              num(v.front().first).c_str(), num(med).c_str(), num(v.back().first).c_str(),
              static_cast<long long>(v.front().second), static_cast<long long>(v.back().second));
}

}  // namespace

void add_info_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "info", "Summary of a catalogue: frames ok/failed, stars, PSF width and sky over the night");
  auto path = std::make_shared<std::string>();
  auto per_frame = std::make_shared<bool>(false);
  auto show_config = std::make_shared<bool>(false);
  cmd->add_option("catalogue", *path, "night catalogue (HDF5)")->required();
  cmd->add_flag("--per-frame", *per_frame, "also print one line per frame");
  cmd->add_flag("--config", *show_config, "print the whole effective config stored in it");
  cmd->callback([path, per_frame, show_config, &exit_code]() {
    io::CatalogueReader r(*path);
    const auto& info = r.info();
    if (*show_config) {
      std::cout << info.config_text;
      if (!info.config_text.empty() && info.config_text.back() != '\n') std::cout << "\n";
      exit_code = kExitOk;
      return;
    }
    // The authoritative row of each frame is its last one ("skipped" then redone).
    std::map<std::int64_t, const io::FrameEntry*> latest;
    for (const auto& f : r.frames()) latest[f.frame_id] = &f;
    std::vector<const io::FrameEntry*> ok, failed, skipped;
    for (const auto& [id, f] : latest) {
      if (f->status == 0)
        ok.push_back(f);
      else if (f->status == static_cast<int>(FrameStatus::kSkipped))
        skipped.push_back(f);
      else
        failed.push_back(f);
    }
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(*path, ec);
    std::printf("catalogue   %s (%s MB)\n", path->c_str(),
                ec ? "?" : num(static_cast<double>(bytes) / 1e6, "%.3g").c_str());
    std::printf("written by  psfphot %s (git %s), %s; schema %lld, star schema %lld\n",
                info.software_version.c_str(), info.git_hash.c_str(), info.creation_time.c_str(),
                static_cast<long long>(info.schema_version),
                static_cast<long long>(info.star_schema_version));
    std::printf("frames      %zu: %zu ok, %zu failed", latest.size(), ok.size(), failed.size());
    if (!skipped.empty())
      std::printf(", %zu skipped (not processed yet: run again with --resume)", skipped.size());
    std::printf("\n");
    std::vector<double> counts;
    for (const auto* f : ok) counts.push_back(f->n_stars);
    std::sort(counts.begin(), counts.end());
    std::printf("stars       %lld", static_cast<long long>(r.star_rows()));
    if (!counts.empty())
      std::printf(" (per ok frame: min %s, median %s, max %s)", num(counts.front()).c_str(),
                  num(counts[counts.size() / 2]).c_str(), num(counts.back()).c_str());
    std::printf("\n");
    if (!ok.empty()) {
      double t0 = INFINITY, t1 = -INFINITY;
      for (const auto* f : ok)
        if (std::isfinite(f->mjd_obs) && f->mjd_obs > 0) {
          t0 = std::min(t0, f->mjd_obs);
          t1 = std::max(t1, f->mjd_obs);
        }
      if (t0 <= t1)
        std::printf("time        MJD %s .. %s (%s h)\n", num(t0, "%.5f").c_str(),
                    num(t1, "%.5f").c_str(), num((t1 - t0) * 24.0, "%.2f").c_str());
      std::printf("across the night (ok frames)    min     median        max\n");
      print_stat("psf_sigma_px", ok, &io::FrameEntry::psf_sigma_px);
      print_stat("sky_adu", ok, &io::FrameEntry::sky_adu);
      print_stat("sky_rms_adu", ok, &io::FrameEntry::sky_rms_adu);
      // "-" when no frame had an overscan correction (or the catalogue predates the columns).
      print_stat("bias_adu", ok, &io::FrameEntry::bias_adu);
      print_stat("dark_bias_adu", ok, &io::FrameEntry::dark_bias_adu);
      print_stat("exptime_s", ok, &io::FrameEntry::exptime_s);
      print_stat("total_ms", ok, &io::FrameEntry::total_ms);
    }
    if (!failed.empty()) {
      std::printf("failed frames\n");
      for (const auto* f : failed)
        std::printf("  frame %lld %s: %s%s%s (%s)\n", static_cast<long long>(f->frame_id),
                    f->status_name.c_str(), f->failed_step.c_str(),
                    f->failed_step.empty() ? "" : ": ", f->message.c_str(), f->path.c_str());
    }
    if (*per_frame) {
      std::printf("%8s %-20s %8s %8s %12s %10s %10s %9s %9s %s\n", "frame", "status", "stars",
                  "peaks", "mjd_obs", "psf_sigma", "sky_adu", "sky_rms", "bias_adu", "path");
      for (const auto& [id, f] : latest)
        std::printf("%8lld %-20s %8d %8d %12s %10s %10s %9s %9s %s\n", static_cast<long long>(id),
                    f->status_name.c_str(), f->n_stars, f->n_peaks, num(f->mjd_obs, "%.5f").c_str(),
                    num(f->psf_sigma_px).c_str(), num(f->sky_adu).c_str(),
                    num(f->sky_rms_adu).c_str(), num(f->bias_adu, "%.2f").c_str(), f->path.c_str());
    }
    // The config: only what differs from psfphot's defaults (--config prints it all).
    const auto defaults = config_lines(pipeline::effective_config_toml(pipeline::Config{}));
    std::map<std::string, std::string> def(defaults.begin(), defaults.end());
    std::vector<std::string> changed;
    for (const auto& [key, line] : config_lines(info.config_text)) {
      auto it = def.find(key);
      if (it == def.end() || it->second != line)
        changed.push_back("[" + key.substr(0, key.find('.')) + "] " + line);
    }
    std::printf(
        "config      %zu keys differ from the defaults (psfphot info --config prints all)\n",
        changed.size());
    for (const auto& c : changed) std::printf("  %s\n", c.c_str());
    exit_code = kExitOk;
  });
}

}  // namespace psfphot::apps
