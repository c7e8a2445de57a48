#include "psfphot/pipeline/masters.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "psfphot/algo/stats.hpp"
#include "psfphot/io/fits.hpp"
#include "psfphot/io/fits_rows.hpp"

namespace psfphot::pipeline {

namespace {

// Rows per block when stacking: small enough that N frames' blocks stay in cache-sized
// buffers, large enough that cfitsio reads whole FITS blocks at a time.
constexpr int kStackRows = 64;

std::string shape_text(int w, int h) {
  return std::to_string(w) + "x" + std::to_string(h);
}

// Opens every frame for row reading and checks they share one shape.
std::vector<io::FitsRowReader> open_stack(const std::vector<std::string>& paths, const char* kind) {
  std::vector<io::FitsRowReader> readers;
  readers.reserve(paths.size());
  for (const auto& p : paths) {
    readers.emplace_back(p);
    const auto& f = readers.back();
    const auto& first = readers.front();
    if (f.width() != first.width() || f.height() != first.height()) {
      throw CalibrationError(p + ": " + kind + " is " + shape_text(f.width(), f.height()) +
                             " but " + paths.front() + " is " +
                             shape_text(first.width(), first.height()));
    }
  }
  return readers;
}

// combine_frames over the whole stack, a block of rows at a time: the combination is
// per pixel, so the result is the same as stacking whole frames, but only one block of
// each frame is in memory (a night's 20 raw darks no longer cost 20 full frames).
// `prepare(i, y0, n, rows)` may modify frame i's block (e.g. subtract the dark).
template <typename Prepare>
Image<float> combine_streamed(std::vector<io::FitsRowReader>& readers, const CombineConfig& cfg,
                              const std::vector<double>& scales, Prepare prepare) {
  const int w = readers.front().width(), h = readers.front().height();
  Image<float> out(w, h);
  std::vector<Image<float>> blocks;
  for (std::size_t i = 0; i < readers.size(); ++i) blocks.emplace_back(w, kStackRows);
  for (int y0 = 0; y0 < h; y0 += kStackRows) {
    const int n = std::min(kStackRows, h - y0);
    std::vector<ImageView<const float>> views;
    for (std::size_t i = 0; i < readers.size(); ++i) {
      readers[i].read_rows(y0, n, blocks[i].data());
      prepare(i, y0, n, blocks[i].data());
      views.emplace_back(blocks[i].data(), w, n, w);
    }
    const Image<float> part = combine_frames(views, cfg, scales);
    std::copy(part.data(), part.data() + part.size(),
              out.data() + static_cast<std::size_t>(y0) * w);
  }
  return out;
}

}  // namespace

Image<float> build_master_dark(const std::vector<std::string>& paths, const CombineConfig& cfg,
                               double* exptime_s) {
  if (paths.empty()) throw CalibrationError("no dark frames given");
  auto readers = open_stack(paths, "dark");
  const double t0 = readers.front().info().header.exptime_s;
  for (std::size_t i = 1; i < readers.size(); ++i) {
    const double t = readers[i].info().header.exptime_s;
    if (std::isfinite(t0) && std::isfinite(t) && std::abs(t - t0) > 1e-6 * std::max(1.0, t0)) {
      throw CalibrationError(paths[i] + ": dark EXPTIME " + std::to_string(t) + " s differs from " +
                             paths.front() + " (" + std::to_string(t0) +
                             " s); combine darks of one exposure time");
    }
  }
  if (exptime_s) *exptime_s = t0;
  return combine_streamed(readers, cfg, {}, [](std::size_t, int, int, float*) {});
}

Image<float> build_master_flat(const std::vector<std::string>& paths, const CombineConfig& cfg,
                               const Image<float>* dark, double dark_exptime_s) {
  if (paths.empty()) throw CalibrationError("no flat frames given");
  auto readers = open_stack(paths, "flat");
  const int w = readers.front().width(), h = readers.front().height();
  const bool use_dark = dark && !dark->empty();
  if (use_dark && (dark->width() != w || dark->height() != h))
    throw CalibrationError(paths.front() + ": flat is " + shape_text(w, h) +
                           " but the master dark is " + shape_text(dark->width(), dark->height()));
  std::vector<double> dark_scale(readers.size(), 1.0);
  for (std::size_t i = 0; i < readers.size(); ++i) {
    const double t = readers[i].info().header.exptime_s;
    if (std::isfinite(dark_exptime_s) && dark_exptime_s > 0 && std::isfinite(t))
      dark_scale[i] = t / dark_exptime_s;
  }
  auto subtract_dark = [&](std::size_t i, int y0, int n, float* rows) {
    if (!use_dark) return;
    const float* d = dark->data() + static_cast<std::size_t>(y0) * w;
    const std::size_t m = static_cast<std::size_t>(n) * w;
    for (std::size_t k = 0; k < m; ++k) rows[k] -= static_cast<float>(dark_scale[i] * d[k]);
  };
  // Each flat is normalised by its own median (after the dark), read in blocks too.
  std::vector<double> scales;
  std::vector<float> v, block(static_cast<std::size_t>(w) * kStackRows);
  for (std::size_t i = 0; i < readers.size(); ++i) {
    v.clear();
    v.reserve(static_cast<std::size_t>(w) * h);
    for (int y0 = 0; y0 < h; y0 += kStackRows) {
      const int n = std::min(kStackRows, h - y0);
      readers[i].read_rows(y0, n, block.data());
      subtract_dark(i, y0, n, block.data());
      for (int k = 0; k < n * w; ++k)
        if (std::isfinite(block[k])) v.push_back(block[k]);
    }
    const double med = median_inplace(v);
    if (!(med > 0))
      throw CalibrationError(paths[i] + ": flat has a non-positive median (" + std::to_string(med) +
                             ")");
    scales.push_back(1.0 / med);
  }
  std::vector<float>().swap(v);
  return combine_streamed(readers, cfg, scales, subtract_dark);
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
      // In its own buffer, without the invalid-pixel mask: nothing downstream reads it
      // (calibration masks flat-invalid pixels from the response's NaN), and it was a
      // frame-sized image to fill, fault in and send to every rank.
      m.flat = normalise_flat(std::move(flat), cfg.calibration.flat_norm,
                              /*with_invalid_mask=*/false);
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
