#include "psfphot/pipeline/masters.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
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

// combine_frames over rows [band.y0, band.y1) of the stack, a block of rows at a time: the
// combination is per pixel, so the result is the same as stacking whole frames, but only one
// block of each frame is in memory (a night's 20 raw darks no longer cost 20 full frames).
// `prepare(i, y0, n, rows)` may modify frame i's block (e.g. subtract the dark).
template <typename Prepare>
Image<float> combine_streamed(std::vector<io::FitsRowReader>& readers, const CombineConfig& cfg,
                              const std::vector<double>& scales, RowBand band, Prepare prepare) {
  const int w = readers.front().width();
  Image<float> out(w, band.y1 - band.y0);
  std::vector<Image<float>> blocks;
  for (std::size_t i = 0; i < readers.size(); ++i) blocks.emplace_back(w, kStackRows);
  for (int y0 = band.y0; y0 < band.y1; y0 += kStackRows) {
    const int n = std::min(kStackRows, band.y1 - y0);
    std::vector<ImageView<const float>> views;
    for (std::size_t i = 0; i < readers.size(); ++i) {
      readers[i].read_rows(y0, n, blocks[i].data());
      prepare(i, y0, n, blocks[i].data());
      views.emplace_back(blocks[i].data(), w, n, w);
    }
    const Image<float> part = combine_frames(views, cfg, scales);
    std::copy(part.data(), part.data() + part.size(),
              out.data() + static_cast<std::size_t>(y0 - band.y0) * w);
  }
  return out;
}

// A raw frame's overscan levels (none when it has no strip) and trim section (empty: none),
// from its own header cards under cfg. The strip's rows are read in blocks (a vertical
// strip spans the frame: one extra read of the frame, from the page cache).
struct RawPrep {
  std::optional<OverscanLevels> bias;
  PixelBox trim;
};

std::vector<RawPrep> raw_preps(std::vector<io::FitsRowReader>& readers,
                               const std::vector<std::string>& paths, const OverscanConfig& cfg) {
  std::vector<RawPrep> out(readers.size());
  for (std::size_t i = 0; i < readers.size(); ++i) {
    const int w = readers[i].width(), h = readers[i].height();
    try {
      const RawSections sec = raw_sections(readers[i].info().header, w, h, cfg);
      out[i].trim = sec.trim;
      if (sec.bias.empty()) continue;
      const PixelBox& b = sec.bias;
      std::vector<float> block(static_cast<std::size_t>(w) * kStackRows);
      const Image<float> strip = cut_box(b, w, kStackRows, [&](int y0, int n) {
        readers[i].read_rows(y0, n, block.data());
        return static_cast<const float*>(block.data());
      });
      out[i].bias = measure_overscan(strip.cview(), b, w, h, cfg.mode);
    } catch (const std::invalid_argument& e) {
      throw CalibrationError(paths[i] + ": " + e.what());
    }
  }
  return out;
}

void subtract_bias_rows(const RawPrep& p, int w, int y0, int n, float* rows) {
  if (p.bias) subtract_overscan_rows(rows, w, y0, n, *p.bias);
}

void check_dark_shape(const std::vector<std::string>& paths, int w, int h,
                      const Image<float>* dark) {
  if (dark && !dark->empty() && (dark->width() != w || dark->height() != h))
    throw CalibrationError(paths.front() + ": flat is " + shape_text(w, h) +
                           " but the master dark is " + shape_text(dark->width(), dark->height()));
}

// The factor each flat's master dark is multiplied by: the science frames' rule
// (dark_exptime_scale), so a flat without a usable EXPTIME fails by name instead of
// silently getting an unscaled dark (a 5 s flat would have lost a 60 s dark's current 12
// times over). No dark: nothing to scale.
std::vector<double> dark_scales(const std::vector<io::FitsRowReader>& readers,
                                const std::vector<std::string>& paths, bool have_dark,
                                double dark_exptime_s, bool scale_by_exptime) {
  std::vector<double> s(readers.size(), 1.0);
  if (!have_dark) return s;
  CalibrationConfig cc;
  cc.scale_dark_by_exptime = scale_by_exptime;
  for (std::size_t i = 0; i < readers.size(); ++i) {
    const double t = readers[i].info().header.exptime_s;
    s[i] = dark_exptime_scale(t, dark_exptime_s, cc);
    if (std::isnan(s[i])) {
      char times[128];
      std::snprintf(times, sizeof times, "flat EXPTIME %g s, master dark EXPTIME %g s", t,
                    dark_exptime_s);
      throw CalibrationError(paths[i] + ": cannot scale the master dark to this flat (" + times +
                             ": a time is missing or not positive); set "
                             "calibration.scale_dark = false (psfphot master flat: "
                             "--unscaled-dark) to subtract the dark as it is");
    }
  }
  return s;
}

void subtract_dark_rows(const Image<float>* dark, double scale, int y0, int n, float* rows) {
  if (!dark || dark->empty()) return;
  const std::size_t w = static_cast<std::size_t>(dark->width());
  const float* d = dark->data() + static_cast<std::size_t>(y0) * w;
  const std::size_t m = static_cast<std::size_t>(n) * w;
  for (std::size_t k = 0; k < m; ++k) rows[k] -= static_cast<float>(scale * d[k]);
}

void check_flat_median(const std::string& path, double med) {
  if (!(med > 0))
    throw CalibrationError(path + ": flat has a non-positive median (" + std::to_string(med) + ")");
}

}  // namespace

RowBand row_band(int h, int part, int parts) {
  const int base = h / parts, extra = h % parts;
  const auto start = [&](int p) { return p * base + std::min(p, extra); };
  return {start(part), start(part + 1)};
}

Image<float> build_master_dark_rows(const std::vector<std::string>& paths, const CombineConfig& cfg,
                                    double* exptime_s, int part, int parts, int* width,
                                    int* height) {
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
  const int w = readers.front().width(), h = readers.front().height();
  if (width) *width = w;
  if (height) *height = h;
  const std::vector<RawPrep> prep = raw_preps(readers, paths, cfg.overscan);
  return combine_streamed(readers, cfg, {}, row_band(h, part, parts),
                          [&](std::size_t i, int y0, int n, float* rows) {
                            subtract_bias_rows(prep[i], w, y0, n, rows);
                          });
}

Image<float> build_master_dark(const std::vector<std::string>& paths, const CombineConfig& cfg,
                               double* exptime_s) {
  return build_master_dark_rows(paths, cfg, exptime_s, 0, 1);
}

std::vector<double> flat_medians(const std::vector<std::string>& paths, const Image<float>* dark,
                                 double dark_exptime_s, int part, int parts,
                                 const CombineConfig& cfg) {
  if (paths.empty()) throw CalibrationError("no flat frames given");
  auto readers = open_stack(paths, "flat");
  const int w = readers.front().width(), h = readers.front().height();
  check_dark_shape(paths, w, h, dark);
  const std::vector<double> ds =
      dark_scales(readers, paths, dark != nullptr, dark_exptime_s, cfg.scale_dark_by_exptime);
  const std::vector<RawPrep> prep = raw_preps(readers, paths, cfg.overscan);
  // Each flat is normalised by its own median (after the bias and the dark, inside its trim
  // section), read in blocks too.
  std::vector<double> medians(readers.size(), 0.0);
  std::vector<float> v, block(static_cast<std::size_t>(w) * kStackRows);
  for (std::size_t i = static_cast<std::size_t>(part); i < readers.size();
       i += static_cast<std::size_t>(parts)) {
    v.clear();
    v.reserve(static_cast<std::size_t>(w) * h);
    const PixelBox& t = prep[i].trim;
    for (int y0 = 0; y0 < h; y0 += kStackRows) {
      const int n = std::min(kStackRows, h - y0);
      readers[i].read_rows(y0, n, block.data());
      subtract_bias_rows(prep[i], w, y0, n, block.data());
      subtract_dark_rows(dark, ds[i], y0, n, block.data());
      for (int k = 0; k < n * w; ++k)
        if (std::isfinite(block[k]) && (t.empty() || t.contains(k % w, y0 + k / w)))
          v.push_back(block[k]);
    }
    medians[i] = median_inplace(v);
    check_flat_median(paths[i], medians[i]);
  }
  return medians;
}

Image<float> build_master_flat_rows(const std::vector<std::string>& paths, const CombineConfig& cfg,
                                    const Image<float>* dark, double dark_exptime_s,
                                    const std::vector<double>& medians, int part, int parts,
                                    int* width, int* height) {
  if (paths.empty()) throw CalibrationError("no flat frames given");
  auto readers = open_stack(paths, "flat");
  const int w = readers.front().width(), h = readers.front().height();
  check_dark_shape(paths, w, h, dark);
  if (medians.size() != paths.size())
    throw CalibrationError("build_master_flat_rows: one median per flat expected");
  std::vector<double> scales;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    check_flat_median(paths[i], medians[i]);
    scales.push_back(1.0 / medians[i]);
  }
  if (width) *width = w;
  if (height) *height = h;
  const std::vector<double> ds =
      dark_scales(readers, paths, dark != nullptr, dark_exptime_s, cfg.scale_dark_by_exptime);
  const std::vector<RawPrep> prep = raw_preps(readers, paths, cfg.overscan);
  const RowBand band = row_band(h, part, parts);
  Image<float> out =
      combine_streamed(readers, cfg, scales, band, [&](std::size_t i, int y0, int n, float* rows) {
        subtract_bias_rows(prep[i], w, y0, n, rows);
        subtract_dark_rows(dark, ds[i], y0, n, rows);
      });
  // Outside the trim section a flat measures no response: NaN there (outside any of the
  // flats' sections, should they differ), so its normalisation skips those pixels and
  // calibration marks them invalid.
  for (const RawPrep& p : prep) {
    const PixelBox& t = p.trim;
    if (t.empty()) continue;
    for (int y = band.y0; y < band.y1; ++y)
      for (int x = 0; x < w; ++x)
        if (!t.contains(x, y)) out(x, y - band.y0) = std::numeric_limits<float>::quiet_NaN();
  }
  return out;
}

Image<float> build_master_flat(const std::vector<std::string>& paths, const CombineConfig& cfg,
                               const Image<float>* dark, double dark_exptime_s) {
  const std::vector<double> medians = flat_medians(paths, dark, dark_exptime_s, 0, 1, cfg);
  return build_master_flat_rows(paths, cfg, dark, dark_exptime_s, medians, 0, 1);
}

Masters load_masters(const std::string& master_dark, const std::vector<std::string>& darks,
                     const std::string& master_flat, const std::vector<std::string>& flats,
                     const std::string& mask_file, const FrameConfig& cfg,
                     const CombineConfig& combine, MasterExchange* exchange, bool map_files) {
  // Without an exchange this process builds everything (part 0 of 1).
  const int part = exchange ? exchange->part() : 0, parts = exchange ? exchange->parts() : 1;
  const auto run = [exchange](const std::function<void()>& work) {
    if (exchange)
      exchange->run(work);
    else
      work();
  };
  const auto whole = [exchange](Image<float>&& band, int w, int h) {
    return exchange ? exchange->gather_rows(band, w, h) : std::move(band);
  };
  // Raw darks and flats get the science frames' overscan correction (else a dark scaled by
  // exposure time would scale the bias with it).
  CombineConfig combine_raw = combine;
  combine_raw.overscan = cfg.calibration.overscan;
  combine_raw.scale_dark_by_exptime = cfg.calibration.scale_dark_by_exptime;
  Masters m;
  if (!master_dark.empty()) {
    run([&] {
      // (Raw flats are built with the dark as an image: it is read then.)
      if (map_files && flats.empty()) {
        io::MappedFits d = io::read_fits_mapped(master_dark);
        m.dark = std::move(d.image.pixels);  // empty when mapped
        m.dark_mapped = d.mapped;
        m.dark_mapping = std::move(d.mapping);
        m.dark_exptime_s = d.image.header.exptime_s;
      } else {
        io::FitsImage d = io::read_fits(master_dark);
        m.dark = std::move(d.pixels);
        m.dark_exptime_s = d.header.exptime_s;
      }
    });
    m.dark_source = master_dark;
  } else if (!darks.empty()) {
    Image<float> band;
    int w = 0, h = 0;
    run([&] {
      band = build_master_dark_rows(darks, combine_raw, &m.dark_exptime_s, part, parts, &w, &h);
    });
    m.dark = whole(std::move(band), w, h);
    m.dark_source = std::to_string(darks.size()) + " darks";
  }
  Image<float> flat;
  io::MappedFits flat_file;  // a mapped master flat (map_files)
  if (!master_flat.empty()) {
    run([&] {
      if (map_files) {
        flat_file = io::read_fits_mapped(master_flat);
        flat = std::move(flat_file.image.pixels);
      } else {
        flat = std::move(io::read_fits(master_flat).pixels);
      }
    });
    m.flat_source = master_flat;
  } else if (!flats.empty()) {
    const Image<float>* dark = m.dark.empty() ? nullptr : &m.dark;  // never mapped here
    std::vector<double> medians;
    run([&] { medians = flat_medians(flats, dark, m.dark_exptime_s, part, parts, combine_raw); });
    if (exchange) exchange->share_values(medians);
    Image<float> band;
    int w = 0, h = 0;
    run([&] {
      band = build_master_flat_rows(flats, combine_raw, dark, m.dark_exptime_s, medians, part,
                                    parts, &w, &h);
    });
    flat = whole(std::move(band), w, h);
    m.flat_source = std::to_string(flats.size()) + " flats";
  }
  if (flat_file.is_mapped()) {
    run([&] {
      try {
        m.flat = normalise_flat(flat_file.mapped, std::move(flat_file.mapping),
                                cfg.calibration.flat_norm);
      } catch (const CalibrationError& e) {
        throw CalibrationError(m.flat_source + ": " + e.what());
      }
    });
  } else if (!flat.empty()) {
    run([&] {
      try {
        // In its own buffer, without the invalid-pixel mask: nothing downstream reads it
        // (calibration masks flat-invalid pixels from the response's NaN), and it was a
        // frame-sized image to fill, fault in and send to every rank.
        m.flat = normalise_flat(std::move(flat), cfg.calibration.flat_norm,
                                /*with_invalid_mask=*/false);
      } catch (const CalibrationError& e) {
        throw CalibrationError(m.flat_source + ": " + e.what());
      }
    });
  }
  if (!mask_file.empty()) {
    run([&] {
      io::FitsImage mk = io::read_fits(mask_file);
      m.user_mask = Image<MaskBits>(mk.pixels.width(), mk.pixels.height(), 0);
      for (std::size_t i = 0; i < mk.pixels.size(); ++i)
        if (mk.pixels.data()[i] != 0)
          m.user_mask.data()[i] = mask::kUserBackground | mask::kUserDetect;
    });
    m.mask_source = mask_file;
  }
  return m;
}

}  // namespace psfphot::pipeline
