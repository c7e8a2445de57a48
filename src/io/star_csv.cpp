#include "psfphot/io/star_csv.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace psfphot::io {

void write_stars_csv(const std::string& path, const std::vector<Star>& stars) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) throw std::runtime_error(path + ": cannot create file: " + std::strerror(errno));
  std::fprintf(f, "%s\n", kStarCsvHeader);
  for (const Star& s : stars) {
    // %.17g would be exact; 10 significant digits keep files small and are far below the
    // measurement errors (1e-4 px at 4096 px).
    std::fprintf(f, "%d,%d,%d,%.10g,%.10g,%.4g,%.4g,%.6g,%.6g,%.10g,%.6g,%.6g,%.8g,%.6g,%u\n",
                 s.star_id, s.peak_x, s.peak_y, s.centroid_x, s.centroid_y, s.centroid_err_x,
                 s.centroid_err_y, s.width_x, s.width_y, s.psf_flux, s.psf_flux_err, s.snr,
                 s.background, s.background_rms, s.flags);
  }
  const bool write_failed = std::ferror(f) != 0;
  if (std::fclose(f) != 0 || write_failed) {
    std::filesystem::remove(tmp);
    throw std::runtime_error(path + ": write failed (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec)
    throw std::runtime_error(path + ": cannot move the finished file into place: " + ec.message());
}

}  // namespace psfphot::io
