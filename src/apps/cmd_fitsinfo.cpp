// psfphot fitsinfo FILE...: shape, BITPIX, pixel statistics and header facts per file.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "psfphot/algo/stats.hpp"
#include "psfphot/io/fits.hpp"

namespace psfphot::apps {
namespace {

std::string fmt_num(double v) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

}  // namespace

void add_fitsinfo_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("fitsinfo",
                                 "Shape, BITPIX, min/median/max and header facts of FITS images");
  auto files = std::make_shared<std::vector<std::string>>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("files", *files, "FITS files (cfitsio syntax: file.fits[1], file.fits[SCI])")
      ->required();
  cmd->add_flag("--json", *as_json, "one JSON object per file instead of text");
  cmd->callback([files, as_json, &exit_code]() {
    int failures = 0;
    for (const auto& f : *files) {
      try {
        io::FitsImage img = io::read_fits(f);
        ImageStats s = image_stats(img.pixels.cview());
        const auto& h = img.header;
        if (*as_json) {
          std::printf(
              "{\"file\": \"%s\", \"hdu\": %d, \"width\": %d, \"height\": %d, \"bitpix\": %d, "
              "\"bzero\": %s, \"bscale\": %s, \"compressed\": %s, \"min\": %s, \"median\": %s, "
              "\"max\": %s, \"nonfinite\": %zu, \"exptime_s\": %s, \"gain_e_per_adu\": %s, "
              "\"read_noise_e\": %s, \"saturation_adu\": %s, \"mjd_obs\": %s, "
              "\"date_obs\": \"%s\", \"filter\": \"%s\", \"wcs_cards\": %zu}\n",
              f.c_str(), img.hdu_number, img.pixels.width(), img.pixels.height(), img.bitpix,
              fmt_num(img.bzero).c_str(), fmt_num(img.bscale).c_str(),
              img.compressed ? "true" : "false", fmt_num(s.min).c_str(), fmt_num(s.median).c_str(),
              fmt_num(s.max).c_str(), s.n_nonfinite,
              std::isfinite(h.exptime_s) ? fmt_num(h.exptime_s).c_str() : "null",
              std::isfinite(h.gain_e_per_adu) ? fmt_num(h.gain_e_per_adu).c_str() : "null",
              std::isfinite(h.read_noise_e) ? fmt_num(h.read_noise_e).c_str() : "null",
              std::isfinite(h.saturation_adu) ? fmt_num(h.saturation_adu).c_str() : "null",
              std::isfinite(h.mjd_obs) ? fmt_num(h.mjd_obs).c_str() : "null", h.date_obs.c_str(),
              h.filter.c_str(), h.wcs.size());
        } else {
          std::printf("%s\n", f.c_str());
          std::printf("  HDU %d%s  %d x %d (NAXIS1 x NAXIS2)  BITPIX %d  BZERO %s  BSCALE %s\n",
                      img.hdu_number, img.compressed ? " (tile-compressed)" : "",
                      img.pixels.width(), img.pixels.height(), img.bitpix,
                      fmt_num(img.bzero).c_str(), fmt_num(img.bscale).c_str());
          std::printf("  min %s  median %s  max %s  (non-finite pixels: %zu)\n",
                      fmt_num(s.min).c_str(), fmt_num(s.median).c_str(), fmt_num(s.max).c_str(),
                      s.n_nonfinite);
          std::printf("  EXPTIME %s s  GAIN %s e-/ADU  RDNOISE %s e-  SATURATE %s ADU\n",
                      fmt_num(h.exptime_s).c_str(), fmt_num(h.gain_e_per_adu).c_str(),
                      fmt_num(h.read_noise_e).c_str(), fmt_num(h.saturation_adu).c_str());
          std::printf("  DATE-OBS %s  MJD %s  FILTER %s  WCS cards %zu\n",
                      h.date_obs.empty() ? "-" : h.date_obs.c_str(), fmt_num(h.mjd_obs).c_str(),
                      h.filter.empty() ? "-" : h.filter.c_str(), h.wcs.size());
        }
      } catch (const io::FitsError& e) {
        std::cerr << "psfphot fitsinfo: error: " << e.what() << "\n";
        ++failures;
      }
    }
    exit_code = failures ? kExitFailure : kExitOk;
  });
}

}  // namespace psfphot::apps
