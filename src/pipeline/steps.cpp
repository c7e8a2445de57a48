#include "psfphot/pipeline/steps.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <stdexcept>
#include <tuple>

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
#include "psfphot/pipeline/blends.hpp"
#include "psfphot/pipeline/neighbours.hpp"

namespace psfphot::pipeline {
namespace {

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
    if (!c.masters.dark.empty()) {
      in.dark = c.masters.dark.cview();
      in.dark_exptime_s = c.masters.dark_exptime_s;
    }
    if (c.masters.flat) in.flat = &*c.masters.flat;
    double sat = c.cfg.calibration.saturation_adu;
    if (std::isnan(sat)) sat = c.frame.header.saturation_adu;
    // In place: the raw frame is not needed afterwards (a failure fails the frame).
    CalibratedImage cal = calibrate_in_place(c.frame.pixels.view(), c.frame.header.exptime_s, sat,
                                             in, c.cfg.calibration);
    c.frame.mask = std::move(cal.mask);
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
    // The full-resolution level image is only built when a caller keeps it: it is needed
    // at star positions only, and dropping it keeps a frame within 4 full-frame images.
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
      c.peaks = find_peaks_smoothed(c.frame.pixels.cview(), c.background.rms.cview(),
                                    c.frame.mask.cview(), mask::kUnusable, d.filter_sigma_px,
                                    d.lowered_kernel, pc);
    } else {
      c.peaks =
          find_peaks(c.frame.pixels.cview(), c.background.rms.cview(), c.frame.mask.cview(), pc);
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
    c.peaks = reject_hot_pixels(c.frame.pixels.cview(), c.peaks, c.cfg.hotpix);
    // Star ids are fixed here, in (y, x) order, before any parallel loop.
    c.stars.clear();
    c.stars.reserve(c.peaks.size());
    for (std::size_t i = 0; i < c.peaks.size(); ++i) {
      const Peak& p = c.peaks[i];
      Star s = make_star(c.frame.id, static_cast<std::int32_t>(i), p.x, p.y);
      s.peak_value = c.frame.pixels(p.x, p.y);
      s.background = c.background.level_at(p.x, p.y);
      s.background_rms = c.background.rms(p.x, p.y);
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
#pragma omp parallel for schedule(dynamic, 64)
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      Star& s = c.stars[i];
      Centroid ct = measure_centroid(img, msk, s.peak_x, s.peak_y, cc);
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
#pragma omp parallel for schedule(dynamic, 64)
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      Star& s = c.stars[i];
      Widths wd = second_moments(img, msk, s.centroid_x, s.centroid_y, c.cfg.moments);
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
        estimate_psf_sigma(c.frame.pixels.cview(), c.background.rms.cview(), c.frame.mask.cview(),
                           cand, pc.fixed_sigma_px, c.pixel_gain(), c.cfg.photometry, pc.max_order);
    if (e.n_stars >= 3) {
      c.psf_sigma_px = e.sigma_px;
      c.psf_model = e.model;
    }
  }
};

class PhotometryStep : public Step {
 public:
  const char* name() const override { return "photometry"; }
  FrameStatus failure_status() const override { return FrameStatus::kMeasurementFailed; }
  void run(FrameContext& c) const override {
    const auto img = c.frame.pixels.cview();
    const auto rms = c.background.rms.cview();
    const auto msk = c.frame.mask.cview();
    std::ptrdiff_t n = static_cast<std::ptrdiff_t>(c.stars.size());
    const auto& pc = c.cfg.photometry;
    const bool fit = pc.method == PhotometryMethod::kFit;
    // What the fit starts from and the flags set before it: every pass starts afresh.
    std::vector<double> x0(n), y0(n), sig(n);
    std::vector<std::uint32_t> base(n);
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const Star& s = c.stars[i];
      x0[i] = s.centroid_x;
      y0[i] = s.centroid_y;
      base[i] = s.flags;
      sig[i] = std::isfinite(s.centroid_x) ? c.psf_model.sigma_at(s.centroid_x, s.centroid_y)
                                           : c.psf_sigma_px;
    }
    std::vector<PsfFit> fits(n);
    const PixelGain gain = c.pixel_gain();
#pragma omp parallel for schedule(dynamic, 32)
    for (std::ptrdiff_t i = 0; i < n; ++i)
      fits[i] = measure_psf_flux(img, rms, msk, x0[i], y0[i], sig[i], gain, pc);
    // Extended sources (galaxy cores) fitted as stars: their residuals would seed a ring of
    // false companions, and they are not stars. Only sources whose second moments are
    // already 10% wider than the frame's typical star get the free-width fit.
    std::vector<char> extended =
        fit ? mark_extended(c, fits, sig) : std::vector<char>(static_cast<std::size_t>(n), 0);
    // Judging a residual peak next to a bright star needs that star's photon noise, so the
    // gain: without one (no GAIN card, none configured) the search would take photon noise
    // for companions, and is skipped.
    if (fit && pc.neighbour_passes > 0 && pc.residual_detection && c.gain > 0)
      find_in_residual(c, fits, x0, y0, sig, base, extended);
    // Neighbour passes (Jacobi style: every star is refitted against the previous pass's
    // models of its neighbours, so the result does not depend on the order or the threads).
    if (fit) {
      // Until nothing moves (overlapping stars converge geometrically: a 5% companion
      // 2 sigma away needs ~6 passes), refitting only stars with a neighbour that moved.
      std::vector<char> moved(fits.size(), 1);
      for (int pass = 0; pass < pc.neighbour_passes; ++pass) {
        fits = refit_with_neighbours(c, img, rms, msk, x0, y0, sig, fits, moved);
        if (std::none_of(moved.begin(), moved.end(), [](char m) { return m != 0; })) break;
      }
      // Blended pairs that made one peak: split, then the passes settle around them.
      if (pc.neighbour_passes > 0) {
        std::fill(moved.begin(), moved.end(), 0);
        if (split_blends(c, fits, x0, y0, sig, base, extended, moved) > 0)
          for (int pass = 0; pass < pc.neighbour_passes; ++pass) {
            fits = refit_with_neighbours(c, img, rms, msk, x0, y0, sig, fits, moved);
            if (std::none_of(moved.begin(), moved.end(), [](char m) { return m != 0; })) break;
          }
      }
    }
    // A star found in the residual must survive its final fit on the frame: converged,
    // positive and above the detection threshold in S/N; otherwise it was a residual
    // artefact (a galaxy's structure, a PSF mismatch) and is dropped. It sits at the end.
    // Extended sources go too.
    {
      std::size_t keep = 0;
      const double min_snr =
          c.cfg.detection.peaks.mode == ThresholdMode::kSigma ? c.cfg.detection.peaks.k_sigma : 0.0;
      for (std::size_t i = 0; i < c.stars.size(); ++i) {
        const PsfFit& f = fits[i];
        const bool found = base[i] & star_flag::kFoundInResidual;
        if (found && !(f.converged && f.flux_err > 0 && f.flux / f.flux_err >= min_snr)) continue;
        if (extended[i] && pc.extended_sigma_ratio > 0) continue;
        c.stars[keep] = c.stars[i];
        c.stars[keep].star_id = static_cast<std::int32_t>(keep);
        fits[keep] = fits[i];
        base[keep] = base[i];
        ++keep;
      }
      c.stars.resize(keep);
      fits.resize(keep);
      base.resize(keep);
    }
    n = static_cast<std::ptrdiff_t>(c.stars.size());
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      Star& s = c.stars[i];
      const PsfFit& f = fits[i];
      s.flags = base[i];
      s.psf_flux = f.flux;
      s.psf_flux_err = f.flux_err;
      s.snr = (std::isfinite(f.flux) && f.flux_err > 0) ? f.flux / f.flux_err : std::nan("");
      // The fitted position is the best centroid; keep the windowed one if the fit failed.
      if (fit && f.converged) {
        s.centroid_x = f.x;
        s.centroid_y = f.y;
        s.centroid_err_x = f.x_err;
        s.centroid_err_y = f.y_err;
      }
      s.flags |= f.flags;
      if (std::isfinite(s.centroid_x)) {
        const int cx = std::clamp(static_cast<int>(std::lround(s.centroid_x)), 0, img.width() - 1);
        const int cy = std::clamp(static_cast<int>(std::lround(s.centroid_y)), 0, img.height() - 1);
        s.background = c.background.level_at(cx, cy);
        s.background_rms = rms(cx, cy);
      }
    }
    // Cosmic-ray tracks that passed the hot-pixel test: narrower than the PSF (hotpix.hpp);
    // and, by default, detections whose fit failed.
    std::size_t keep = 0;
    for (std::size_t i = 0; i < c.stars.size(); ++i) {
      const Star& s = c.stars[i];
      const double sg = std::isfinite(s.centroid_x)
                            ? c.psf_model.sigma_at(s.centroid_x, s.centroid_y)
                            : c.psf_sigma_px;
      if (too_sharp_for_a_star(s.width_x, s.width_y, s.snr, sg, c.cfg.hotpix)) continue;
      // A detection with a position but no point-source solution near it is not a star
      // we can measure: a cosmic-ray track, an unstable hot pixel, a noise bump beside a
      // faint star (docs/pipeline.md). Edge stars (no position) stay, flagged.
      if (pc.drop_failed && (s.flags & star_flag::kFitFailed) && std::isfinite(s.centroid_x) &&
          std::isfinite(s.centroid_y))
        continue;
      c.stars[keep] = s;
      c.stars[keep].star_id = static_cast<std::int32_t>(keep);
      ++keep;
    }
    c.stars.resize(keep);
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
  s.push_back(std::make_unique<PhotometryStep>());
  return s;
}

}  // namespace psfphot::pipeline
