#include "psfphot/pipeline/masters.hpp"

#include <cmath>

#include "psfphot/algo/stats.hpp"
#include "psfphot/io/fits.hpp"

namespace psfphot::pipeline {

Image<float> build_master_dark(const std::vector<std::string>& paths, const CombineConfig& cfg,
                               double* exptime_s) {
  if (paths.empty()) throw CalibrationError("no dark frames given");
  std::vector<io::FitsImage> frames;
  frames.reserve(paths.size());
  for (const auto& p : paths) {
    frames.push_back(io::read_fits(p));
    const auto& f = frames.back();
    const auto& first = frames.front();
    if (f.pixels.width() != first.pixels.width() || f.pixels.height() != first.pixels.height()) {
      throw CalibrationError(p + ": dark is " + std::to_string(f.pixels.width()) + "x" +
                             std::to_string(f.pixels.height()) + " but " + paths.front() + " is " +
                             std::to_string(first.pixels.width()) + "x" +
                             std::to_string(first.pixels.height()));
    }
    const double t0 = first.header.exptime_s, t = f.header.exptime_s;
    if (std::isfinite(t0) && std::isfinite(t) && std::abs(t - t0) > 1e-6 * std::max(1.0, t0)) {
      throw CalibrationError(p + ": dark EXPTIME " + std::to_string(t) + " s differs from " +
                             paths.front() + " (" + std::to_string(t0) +
                             " s); combine darks of one exposure time");
    }
  }
  if (exptime_s) *exptime_s = frames.front().header.exptime_s;
  std::vector<ImageView<const float>> views;
  for (const auto& f : frames) views.push_back(f.pixels.cview());
  return combine_frames(views, cfg);
}

Image<float> build_master_flat(const std::vector<std::string>& paths, const CombineConfig& cfg,
                               const Image<float>* dark, double dark_exptime_s) {
  if (paths.empty()) throw CalibrationError("no flat frames given");
  std::vector<Image<float>> frames;
  std::vector<double> scales;
  for (const auto& p : paths) {
    io::FitsImage f = io::read_fits(p);
    if (dark && !dark->empty()) {
      if (dark->width() != f.pixels.width() || dark->height() != f.pixels.height())
        throw CalibrationError(p + ": flat shape differs from the master dark");
      double s = 1.0;
      if (std::isfinite(dark_exptime_s) && dark_exptime_s > 0 && std::isfinite(f.header.exptime_s))
        s = f.header.exptime_s / dark_exptime_s;
      for (std::size_t i = 0; i < f.pixels.size(); ++i)
        f.pixels.data()[i] -= static_cast<float>(s * dark->data()[i]);
    }
    std::vector<float> v;
    v.reserve(f.pixels.size());
    for (std::size_t i = 0; i < f.pixels.size(); ++i)
      if (std::isfinite(f.pixels.data()[i])) v.push_back(f.pixels.data()[i]);
    const double med = median_inplace(v);
    if (!(med > 0))
      throw CalibrationError(p + ": flat has a non-positive median (" + std::to_string(med) + ")");
    scales.push_back(1.0 / med);
    if (!frames.empty() &&
        (frames[0].width() != f.pixels.width() || frames[0].height() != f.pixels.height()))
      throw CalibrationError(p + ": flat shape differs from " + paths.front());
    frames.push_back(std::move(f.pixels));
  }
  std::vector<ImageView<const float>> views;
  for (const auto& f : frames) views.push_back(f.cview());
  return combine_frames(views, cfg, scales);
}

Masters load_masters(const std::string& master_dark, const std::vector<std::string>& darks,
                     const std::string& master_flat, const std::vector<std::string>& flats,
                     const std::string& mask_file, const FrameConfig& cfg,
                     const CombineConfig& combine) {
  Masters m;
  if (!master_dark.empty()) {
    io::FitsImage d = io::read_fits(master_dark);
    m.dark = std::move(d.pixels);
    m.dark_exptime_s = d.header.exptime_s;
    m.dark_source = master_dark;
  } else if (!darks.empty()) {
    m.dark = build_master_dark(darks, combine, &m.dark_exptime_s);
    m.dark_source = std::to_string(darks.size()) + " darks";
  }
  Image<float> flat;
  if (!master_flat.empty()) {
    flat = std::move(io::read_fits(master_flat).pixels);
    m.flat_source = master_flat;
  } else if (!flats.empty()) {
    flat = build_master_flat(flats, combine, m.dark.empty() ? nullptr : &m.dark, m.dark_exptime_s);
    m.flat_source = std::to_string(flats.size()) + " flats";
  }
  if (!flat.empty()) {
    try {
      m.flat = normalise_flat(flat.cview(), cfg.calibration.flat_norm);
    } catch (const CalibrationError& e) {
      throw CalibrationError(m.flat_source + ": " + e.what());
    }
  }
  if (!mask_file.empty()) {
    io::FitsImage mk = io::read_fits(mask_file);
    m.user_mask = Image<MaskBits>(mk.pixels.width(), mk.pixels.height(), 0);
    for (std::size_t i = 0; i < mk.pixels.size(); ++i)
      if (mk.pixels.data()[i] != 0)
        m.user_mask.data()[i] = mask::kUserBackground | mask::kUserDetect;
    m.mask_source = mask_file;
  }
  return m;
}

}  // namespace psfphot::pipeline
