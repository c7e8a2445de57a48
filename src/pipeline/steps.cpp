#include "psfphot/pipeline/steps.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "photometry_step.hpp"
#include "psfphot/algo/calibrate.hpp"
#include "psfphot/algo/centroid.hpp"
#include "psfphot/algo/crowding.hpp"
#include "psfphot/algo/gaussian_psf.hpp"
#include "psfphot/algo/hotpix.hpp"
#include "psfphot/algo/moments.hpp"
#include "psfphot/algo/psf_photometry.hpp"
#include "psfphot/algo/smooth.hpp"
#include "psfphot/algo/stats.hpp"
#include "psfphot/io/fits.hpp"

namespace psfphot::pipeline {
namespace {

// Runs batch(i0, count) over [0, n) in chunks of 64 stars, one chunk per OpenMP task: the
// batched star measurements (measure_centroids, measure_moments) work a run of stars at a
// time; each chunk writes only its own outputs, so the result does not depend on threads.
template <class Batch>
void in_star_chunks(std::ptrdiff_t n, Batch batch) {
  constexpr std::ptrdiff_t kChunk = 64;
#pragma omp parallel for schedule(dynamic, 1)
  for (std::ptrdiff_t i0 = 0; i0 < n; i0 += kChunk)
    batch(i0, static_cast<std::size_t>(std::min(kChunk, n - i0)));
}

class ReadStep : public Step {
 public:
  const char* name() const override { return "read"; }
  FrameStatus failure_status() const override { return FrameStatus::kReadFailed; }
  void run(FrameContext& c) const override {
    io::FitsImage img = io::read_fits(c.frame.path);
    // A constant frame (an empty readout of zeros, every pixel saturated) holds no signal:
    // fail it by name rather than report "ok, 0 stars". Stops at the first differing pixel.
    const float* px = img.pixels.data();
    const std::size_t n = img.pixels.size();
    if (n > 1 && std::all_of(px + 1, px + n, [v = px[0]](float p) { return p == v; })) {
      char text[32];
      std::snprintf(text, sizeof text, "%g", static_cast<double>(px[0]));
      throw std::runtime_error(c.frame.path + ": every pixel is " + text +
                               " (empty readout or saturated): no signal to measure");
    }
    c.frame.header = std::move(img.header);
    c.frame.pixels = std::move(img.pixels);
  }
};

class CalibrateStep : public Step {
 public:
  const char* name() const override { return "calibrate"; }
  FrameStatus failure_status() const override { return FrameStatus::kCalibrationFailed; }
  void run(FrameContext& c) const override {
    CalibrationInputs in;
    if (c.masters.has_dark()) {
      in.dark = c.masters.dark_plane();
      in.dark_exptime_s = c.masters.dark_exptime_s;
    }
    if (c.masters.flat) in.flat = &*c.masters.flat;
    double sat = c.cfg.calibration.saturation_adu;
    if (std::isnan(sat)) sat = c.frame.header.saturation_adu;
    const int w = c.frame.pixels.width(), h = c.frame.pixels.height();
    RawSections sec;
    OverscanLevels bias;
    try {
      sec = raw_sections(c.frame.header, w, h, c.cfg.calibration.overscan);
      if (!sec.bias.empty()) {
        const PixelBox& b = sec.bias;
        const OverscanMode mode = c.cfg.calibration.overscan.mode;
        bias = measure_overscan(c.frame.pixels.cview().subview(b.x0, b.y0, b.width(), b.height()),
                                b, w, h, mode);
        c.bias_adu = bias.median_adu;
        // A master dark that still holds its bias (an older or another tool's master, a
        // single raw dark) would subtract it a second time: its own strip measures it, and it
        // goes out the same way (raw - b - s (dark - b_dark)). A master from overscan-corrected
        // darks reads ~0 there and changes nothing measurable.
        if (in.dark.width() == w && in.dark.height() == h) {
          std::vector<float> row(static_cast<std::size_t>(w));
          const Image<float> strip =
              cut_box(b, w, 1, [&](int y, int) { return in.dark.row(y, row.data()); });
          // calibrate() scales the dark by the same factor; without exposure times it fails
          // the frame (naming them), so the 1 here is never used for a result.
          double s =
              dark_exptime_scale(c.frame.header.exptime_s, in.dark_exptime_s, c.cfg.calibration);
          if (std::isnan(s)) s = 1.0;
          OverscanLevels dark_bias;
          try {
            dark_bias = measure_overscan(strip.cview(), b, w, h, mode);
          } catch (const std::invalid_argument& e) {
            throw std::invalid_argument("master dark " + c.masters.dark_source + ": " + e.what());
          }
          for (std::size_t k = 0; k < bias.level.size(); ++k)
            bias.level[k] = static_cast<float>(bias.level[k] - s * dark_bias.level[k]);
          c.dark_bias_adu = dark_bias.median_adu;
        }
        in.overscan = &bias;
      }
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(e.what());  // reported with the frame's path
    }
    // In place: the raw frame is not needed afterwards (a failure fails the frame).
    CalibratedImage cal = calibrate_in_place(c.frame.pixels.view(), c.frame.header.exptime_s, sat,
                                             in, c.cfg.calibration);
    c.frame.mask = std::move(cal.mask);
    // Prescan and overscan columns hold no sky: kept, but masked as unusable.
    if (!sec.trim.empty()) mask_outside(c.frame.mask.view(), sec.trim, mask::kOutsideTrim);
    double g = c.cfg.gain_e_per_adu;
    if (std::isnan(g)) g = c.frame.header.gain_e_per_adu;
    c.gain = std::isfinite(g) && g > 0 ? g : 0.0;
    if (c.keep_products) c.calibrated = c.frame.pixels.clone();
  }
};

void paint(Image<MaskBits>& m, const std::vector<Rect>& rects, MaskBits bit) {
  for (const auto& r : rects)
    for (int y = std::max(0, r.y0); y <= std::min(m.height() - 1, r.y1); ++y)
      for (int x = std::max(0, r.x0); x <= std::min(m.width() - 1, r.x1); ++x) m(x, y) |= bit;
}

class MaskStep : public Step {
 public:
  const char* name() const override { return "mask"; }
  FrameStatus failure_status() const override { return FrameStatus::kCalibrationFailed; }
  void run(FrameContext& c) const override {
    auto& m = c.frame.mask;
    const auto& um = c.masters.user_mask;
    if (!um.empty()) {
      if (um.width() != m.width() || um.height() != m.height()) {
        throw std::runtime_error("mask " + c.masters.mask_source + " is " +
                                 std::to_string(um.width()) + "x" + std::to_string(um.height()) +
                                 " but the frame is " + std::to_string(m.width()) + "x" +
                                 std::to_string(m.height()));
      }
      for (std::size_t i = 0; i < m.size(); ++i) m.data()[i] |= um.data()[i];
    }
    paint(m, c.cfg.mask.background_rects, mask::kUserBackground);
    paint(m, c.cfg.mask.detect_rects, mask::kUserDetect);
  }
};

class BackgroundStep : public Step {
 public:
  const char* name() const override { return "background"; }
  FrameStatus failure_status() const override { return FrameStatus::kBackgroundFailed; }
  void run(FrameContext& c) const override {
    // The full-resolution level and RMS images are only built when a caller keeps them: the
    // level is needed at star positions only, the RMS where detection and the fits read it,
    // both evaluated from their splines there (two frame-sized first touches fewer).
    c.background = estimate_background(c.frame.pixels.cview(), c.frame.mask.cview(),
                                       c.cfg.background, c.keep_products);
    subtract_background(c.frame.pixels.view(), c.background);
  }
};

class DetectStep : public Step {
 public:
  const char* name() const override { return "detect"; }
  FrameStatus failure_status() const override { return FrameStatus::kDetectionFailed; }
  void run(FrameContext& c) const override {
    const auto& d = c.cfg.detection;
    PeakConfig pc = d.peaks;
    if (d.filter_sigma_px > 0) {
      // Smoothing streamed into the search: no full-frame smoothed image.
      pc.rms_scale *= smoothing_noise_factor(d.filter_sigma_px, d.lowered_kernel);
      // Through the RMS map's spline when there is one (the values of rms_plane() bit for bit,
      // whether or not the full RMS image is kept): the search then evaluates it only where a
      // pixel may pass the threshold.
      if (c.background.rms_map)
        c.peaks =
            find_peaks_smoothed(c.frame.pixels.cview(), *c.background.rms_map, c.frame.mask.cview(),
                                mask::kUnusable, d.filter_sigma_px, d.lowered_kernel, pc);
      else
        c.peaks = find_peaks_smoothed(c.frame.pixels.cview(), c.background.rms_plane(),
                                      c.frame.mask.cview(), mask::kUnusable, d.filter_sigma_px,
                                      d.lowered_kernel, pc);
    } else {
      c.peaks =
          find_peaks(c.frame.pixels.cview(), c.background.rms_plane(), c.frame.mask.cview(), pc);
    }
    c.n_raw_peaks = static_cast<int>(c.peaks.size());
    c.peaks = merge_close_peaks(c.peaks, d.merge_radius_px);
    if (d.merge_saturated)
      c.peaks = merge_peaks_in_regions(c.peaks, c.frame.mask.cview(), mask::kSaturated);
  }
};

class HotPixelStep : public Step {
 public:
  const char* name() const override { return "hotpix"; }
  FrameStatus failure_status() const override { return FrameStatus::kDetectionFailed; }
  void run(FrameContext& c) const override {
    c.peaks =
        reject_hot_pixels(c.frame.pixels.cview(), c.background.rms_plane(), c.peaks, c.cfg.hotpix);
    // Star ids are fixed here, in (y, x) order, before any parallel loop.
    c.stars.clear();
    c.stars.reserve(c.peaks.size());
    const FloatPlane rms = c.background.rms_plane();
    for (std::size_t i = 0; i < c.peaks.size(); ++i) {
      const Peak& p = c.peaks[i];
      Star s = make_star(c.frame.id, static_cast<std::int32_t>(i), p.x, p.y);
      s.peak_value = c.frame.pixels(p.x, p.y);
      s.background = c.background.level_at(p.x, p.y);
      s.background_rms = rms(p.x, p.y);
      c.stars.push_back(s);
    }
  }
};

class CentroidStep : public Step {
 public:
  const char* name() const override { return "centroid"; }
  FrameStatus failure_status() const override { return FrameStatus::kMeasurementFailed; }
  void run(FrameContext& c) const override {
    CentroidConfig cc = c.cfg.centroid;
    cc.window_sigma_px = c.cfg.psf.fixed_sigma_px;  // refined by the PSF fit later
    const auto img = c.frame.pixels.cview();
    const auto msk = c.frame.mask.cview();
    const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(c.stars.size());
    // In chunks of stars, each measured by measure_centroids (four stars per vector).
    std::vector<int> px(c.stars.size()), py(c.stars.size());
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      px[i] = c.stars[i].peak_x;
      py[i] = c.stars[i].peak_y;
    }
    std::vector<Centroid> cts(c.stars.size());
    in_star_chunks(n, [&](std::ptrdiff_t i0, std::size_t k) {
      measure_centroids(img, msk, px.data() + i0, py.data() + i0, k, cc, cts.data() + i0);
    });
#pragma omp parallel for schedule(dynamic, 64)
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      Star& s = c.stars[i];
      Centroid ct = cts[i];
      // A saturated core cannot weigh light: its centre is the clipped region's centre
      // (algo/centroid.hpp). The photometry fits the position from the wings after this.
      if (!msk.empty() && (msk(s.peak_x, s.peak_y) & mask::kSaturated)) {
        const RegionCentre rc = masked_region_centre(msk, s.peak_x, s.peak_y, mask::kSaturated);
        if (rc.n_pixels > 0) {
          ct.x = rc.x;
          ct.y = rc.y;
          ct.flags &= ~star_flag::kCentroidNoConverge;
        }
      }
      s.centroid_x = ct.x;
      s.centroid_y = ct.y;
      s.flags |= ct.flags;
    }
  }
};

class CrowdingStep : public Step {
 public:
  const char* name() const override { return "crowding"; }
  FrameStatus failure_status() const override { return FrameStatus::kMeasurementFailed; }
  void run(FrameContext& c) const override {
    std::vector<Position> pos;
    pos.reserve(c.stars.size());
    for (const Star& s : c.stars)
      pos.push_back(std::isfinite(s.centroid_x) ? Position{s.centroid_x, s.centroid_y}
                                                : Position{double(s.peak_x), double(s.peak_y)});
    auto crowded = find_crowded(pos, c.cfg.crowding.radius_px);
    if (c.cfg.crowding.action == CrowdingAction::kRemove) {
      std::vector<Star> kept;
      for (std::size_t i = 0; i < c.stars.size(); ++i)
        if (!crowded[i]) kept.push_back(c.stars[i]);
      for (std::size_t i = 0; i < kept.size(); ++i) kept[i].star_id = static_cast<std::int32_t>(i);
      c.stars = std::move(kept);
    } else {
      for (std::size_t i = 0; i < c.stars.size(); ++i)
        if (crowded[i]) c.stars[i].flags |= star_flag::kCrowded;
    }
  }
};

class MomentsStep : public Step {
 public:
  const char* name() const override { return "moments"; }
  FrameStatus failure_status() const override { return FrameStatus::kMeasurementFailed; }
  void run(FrameContext& c) const override {
    const auto img = c.frame.pixels.cview();
    const auto msk = c.frame.mask.cview();
    const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(c.stars.size());
    // In chunks of stars through measure_moments (which prefetches the windows).
    std::vector<double> xc(c.stars.size()), yc(c.stars.size());
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      xc[i] = c.stars[i].centroid_x;
      yc[i] = c.stars[i].centroid_y;
    }
    std::vector<Widths> wds(c.stars.size());
    in_star_chunks(n, [&](std::ptrdiff_t i0, std::size_t k) {
      measure_moments(img, msk, xc.data() + i0, yc.data() + i0, k, c.cfg.moments, wds.data() + i0);
    });
#pragma omp parallel for schedule(dynamic, 64)
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      Star& s = c.stars[i];
      const Widths& wd = wds[i];
      s.width_x = wd.sigma_x;
      s.width_y = wd.sigma_y;
      s.flags |= wd.flags & ~star_flag::kEdge;  // the centroid already reports edges
    }
  }
};

class PsfStep : public Step {
 public:
  const char* name() const override { return "psf"; }
  FrameStatus failure_status() const override { return FrameStatus::kMeasurementFailed; }
  void run(FrameContext& c) const override {
    const auto& pc = c.cfg.psf;
    c.psf_sigma_px = pc.fixed_sigma_px;
    c.psf_model = PsfSigmaModel{};
    c.psf_model.coef[0] = pc.fixed_sigma_px;
    if (pc.sigma_method == "fixed") return;
    constexpr std::uint32_t kBad = star_flag::kEdge | star_flag::kSaturated |
                                   star_flag::kMaskedPixel | star_flag::kCentroidNoConverge |
                                   star_flag::kMomentsInvalid;
    if (pc.sigma_method == "moments") {
      std::vector<double> w;
      for (const Star& s : c.stars)
        if (!(s.flags & (kBad | star_flag::kCrowded))) w.push_back(0.5 * (s.width_x + s.width_y));
      if (!w.empty()) c.psf_sigma_px = median_inplace(w);
      c.psf_model.coef[0] = c.psf_sigma_px;
      return;
    }
    // Bright, isolated, unflagged stars whose peak pixel is well below saturation.
    std::vector<Position> pos;
    for (const Star& s : c.stars) pos.push_back({double(s.peak_x), double(s.peak_y)});
    auto near = find_crowded(pos, pc.isolation_px);
    std::vector<std::size_t> idx;
    for (std::size_t i = 0; i < c.stars.size(); ++i) {
      const Star& s = c.stars[i];
      if (!near[i] && !(s.flags & kBad) && std::isfinite(s.centroid_x) &&
          !(c.frame.mask(s.peak_x, s.peak_y) & mask::kSaturated))
        idx.push_back(i);
    }
    std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
      return c.stars[a].peak_value > c.stars[b].peak_value;
    });
    if (idx.size() > static_cast<std::size_t>(2 * pc.max_stars)) idx.resize(2 * pc.max_stars);
    std::vector<std::pair<double, double>> cand;
    for (std::size_t i : idx) cand.emplace_back(c.stars[i].centroid_x, c.stars[i].centroid_y);
    PsfSigmaEstimate e =
        estimate_psf_sigma(c.frame.pixels.cview(), c.background.rms_plane(), c.frame.mask.cview(),
                           cand, pc.fixed_sigma_px, c.pixel_gain(), c.cfg.photometry, pc.max_order);
    if (e.n_stars >= 3) {
      c.psf_sigma_px = e.sigma_px;
      c.psf_model = e.model;
    }
  }
};

}  // namespace

std::vector<std::unique_ptr<Step>> default_steps() {
  std::vector<std::unique_ptr<Step>> s;
  s.push_back(std::make_unique<ReadStep>());
  s.push_back(std::make_unique<CalibrateStep>());
  s.push_back(std::make_unique<MaskStep>());
  s.push_back(std::make_unique<BackgroundStep>());
  s.push_back(std::make_unique<DetectStep>());
  s.push_back(std::make_unique<HotPixelStep>());
  s.push_back(std::make_unique<CentroidStep>());
  s.push_back(std::make_unique<CrowdingStep>());
  s.push_back(std::make_unique<MomentsStep>());
  s.push_back(std::make_unique<PsfStep>());
  s.push_back(make_photometry_step());
  return s;
}

}  // namespace psfphot::pipeline
