#include "psfphot/pipeline/night.hpp"

#include <glob.h>
#include <spdlog/spdlog.h>

#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>

#include "psfphot/algo/overscan.hpp"
#include "psfphot/io/catalogue.hpp"
#include "psfphot/io/fits.hpp"

namespace psfphot::pipeline {
namespace fs = std::filesystem;

namespace {
std::string resolve(const std::string& p, const std::string& base) {
  if (p.empty()) return p;
  fs::path q(p);
  return (q.is_absolute() ? q : fs::path(base) / q).lexically_normal().string();
}
}  // namespace

std::vector<std::string> expand_paths(const std::vector<std::string>& patterns,
                                      const std::string& base_dir) {
  std::vector<std::string> out;
  for (const auto& pat : patterns) {
    if (!pat.empty() && pat[0] == '@') {
      const std::string list = resolve(pat.substr(1), base_dir);
      std::ifstream in(list);
      if (!in) throw RunError(list + ": cannot read the list file");
      std::string line;
      const std::string list_dir = fs::path(list).parent_path().string();
      while (std::getline(in, line)) {
        line.erase(0, line.find_first_not_of(" \t"));
        while (!line.empty() && (line.back() == ' ' || line.back() == '\r' || line.back() == '\t'))
          line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        out.push_back(resolve(line, list_dir));
      }
      continue;
    }
    const std::string full = resolve(pat, base_dir);
    glob_t g{};
    const int rc = ::glob(full.c_str(), 0, nullptr, &g);
    if (rc == GLOB_NOMATCH || g.gl_pathc == 0) {
      globfree(&g);
      throw RunError("\"" + pat + "\" (" + full + ") matches no file");
    }
    if (rc != 0) {
      globfree(&g);
      throw RunError("\"" + pat + "\": cannot expand the pattern");
    }
    for (std::size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
    globfree(&g);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

namespace {

// An overscan or trim section written in the config (an IRAF section, not "header" or
// "none") holds for the camera: one that does not fit the night's first frame would fail
// every frame of the night, one by one, after the masters were built. Refused here instead,
// naming the key, the frame and its size. Sections taken from the headers stay per frame
// (a frame with a broken card fails alone), and so do frames of another size later in the
// night. A first frame that cannot be read is left to fail as a frame.
void check_sections_fit(const Config& cfg, const std::string& first_frame) {
  const OverscanConfig& oc = cfg.frame.calibration.overscan;
  auto explicit_section = [](const std::string& s) {
    return !s.empty() && s != "header" && s != "none";
  };
  const bool bias = oc.mode != OverscanMode::kNone && explicit_section(oc.bias_section);
  if (!bias && !explicit_section(oc.trim_section)) return;
  io::FitsImage head;
  try {
    head = io::read_fits_header(first_frame);
  } catch (const std::exception&) {
    return;
  }
  const int w = std::atoi(head.header.card("NAXIS1").c_str()),
            h = std::atoi(head.header.card("NAXIS2").c_str());
  if (w <= 0 || h <= 0) return;
  // Only the configured sections: the frame's own cards are not judged here.
  OverscanConfig only_config = oc;
  if (!explicit_section(only_config.bias_section)) only_config.bias_section = "none";
  if (!explicit_section(only_config.trim_section)) only_config.trim_section = "none";
  try {
    (void)raw_sections(HeaderFacts{}, w, h, only_config);
  } catch (const std::invalid_argument& e) {
    throw RunError(cfg.source + ": " + e.what() + " (the night's first frame " + first_frame +
                   " is " + std::to_string(w) + " x " + std::to_string(h) + " px)");
  }
}

}  // namespace

NightPlan plan_night(const Config& cfg, const RunOptions& opt) {
  const auto& n = cfg.night;
  NightPlan p;
  if (n.science.empty()) throw RunError(cfg.source + ": night.science lists no frames");
  p.frames = expand_paths(n.science, n.base_dir);
  if (!n.darks.empty()) p.darks = expand_paths(n.darks, n.base_dir);
  if (!n.flats.empty()) p.flats = expand_paths(n.flats, n.base_dir);
  p.master_dark = resolve(n.master_dark, n.base_dir);
  p.master_flat = resolve(n.master_flat, n.base_dir);
  if (!p.master_dark.empty() && !p.darks.empty())
    throw RunError(cfg.source + ": give night.darks or night.master_dark, not both");
  if (!p.master_flat.empty() && !p.flats.empty())
    throw RunError(cfg.source + ": give night.flats or night.master_flat, not both");
  p.mask_file = resolve(cfg.frame.mask.file, n.base_dir);
  p.output = opt.output.empty() ? resolve(n.output, n.base_dir)
                                : fs::absolute(opt.output).lexically_normal().string();
  p.log_dir = n.log_dir.empty() ? p.output + ".logs" : resolve(n.log_dir, n.base_dir);
  std::error_code ec;
  const fs::path parent = fs::path(p.output).parent_path();
  if (!fs::is_directory(parent, ec))
    throw RunError(p.output + ": output folder " + parent.string() +
                   (fs::exists(parent, ec) ? " is not a folder" : " does not exist"));
  // Create (and remove) a file there: access(W_OK) says yes to root on read-only or
  // pseudo file systems (/proc), and a night must not fail only at its first commit.
  std::string probe = (parent / ".psfphot-write-test-XXXXXX").string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0)
    throw RunError(p.output + ": output folder " + parent.string() +
                   " is not writable: " + std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
  if (fs::exists(p.output, ec) && opt.mode == OutputMode::kCreate) {
    throw RunError(
        p.output +
        ": catalogue exists already; use --resume to continue it or --overwrite to replace it");
  }
  // A catalogue the writer would refuse to resume (another schema version, not a catalogue)
  // is refused here, before every rank spends minutes building the masters only for rank 0
  // to refuse it then. Read-only: the refusal changes nothing on disk.
  if (opt.mode == OutputMode::kResume) {
    try {
      io::check_resumable(p.output);
    } catch (const io::CatalogueError& e) {
      throw RunError(e.what());
    }
  }
  check_sections_fit(cfg, p.frames.front());
  p.config_text = effective_config_toml(cfg);
  return p;
}

Progress::Progress(std::int64_t total, std::int64_t already_done)
    : total_(total), skipped_(already_done), start_(std::chrono::steady_clock::now()) {}

std::string Progress::record(const FrameResult& r) {
  ++done_;
  if (!r.ok()) ++failed_;
  stars_ += static_cast<std::int64_t>(r.stars.size());
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = secs > 0 ? done_ / secs : 0;
  const std::int64_t left = total_ - skipped_ - done_;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "[%lld/%lld] frame %lld %s%s%s, %zu stars | failed %lld, stars %lld, %.2f "
                "frames/s, ETA %.0f s",
                static_cast<long long>(skipped_ + done_), static_cast<long long>(total_),
                static_cast<long long>(r.frame_id), to_string(r.status), r.ok() ? "" : ": ",
                r.ok() ? "" : (r.failed_step + ": " + r.message).c_str(), r.stars.size(),
                static_cast<long long>(failed_), static_cast<long long>(stars_), rate,
                rate > 0 ? left / rate : 0.0);
  return buf;
}

std::string Progress::summary() const {
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  char buf[256];
  std::snprintf(
      buf, sizeof buf,
      "%lld frames processed (%lld failed, %lld done before), %lld stars, %.1f s, %.2f frames/s",
      static_cast<long long>(done_), static_cast<long long>(failed_),
      static_cast<long long>(skipped_), static_cast<long long>(stars_), secs,
      secs > 0 ? done_ / secs : 0.0);
  return buf;
}

}  // namespace psfphot::pipeline
