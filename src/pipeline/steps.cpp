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
      Image<float> sm = gaussian_smooth(c.frame.pixels.cview(), c.frame.mask.cview(),
                                        mask::kUnusable, d.filter_sigma_px, d.lowered_kernel);
      pc.rms_scale *= smoothing_noise_factor(d.filter_sigma_px, d.lowered_kernel);
      c.peaks = find_peaks(sm.cview(), c.background.rms.cview(), c.frame.mask.cview(), pc);
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
                           cand, pc.fixed_sigma_px, c.gain, c.cfg.photometry, pc.max_order);
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
#pragma omp parallel for schedule(dynamic, 32)
    for (std::ptrdiff_t i = 0; i < n; ++i)
      fits[i] = measure_psf_flux(img, rms, msk, x0[i], y0[i], sig[i], c.gain, pc);
    // Judging a residual peak next to a bright star needs that star's photon noise, so the
    // gain: without one (no GAIN card, none configured) the search would take photon noise
    // for companions, and is skipped.
    if (fit && pc.neighbour_passes > 0 && pc.residual_detection && c.gain > 0)
      find_in_residual(c, fits, x0, y0, sig, base);
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
    }
    // A star found in the residual must survive its final fit on the frame: converged,
    // positive and above the detection threshold in S/N; otherwise it was a residual
    // artefact (a galaxy's structure, a PSF mismatch) and is dropped. It sits at the end.
    {
      std::size_t keep = 0;
      const double min_snr =
          c.cfg.detection.peaks.mode == ThresholdMode::kSigma ? c.cfg.detection.peaks.k_sigma : 0.0;
      for (std::size_t i = 0; i < c.stars.size(); ++i) {
        const PsfFit& f = fits[i];
        const bool found = base[i] & star_flag::kFoundInResidual;
        if (found && !(f.converged && f.flux_err > 0 && f.flux / f.flux_err >= min_snr)) continue;
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
    // Cosmic-ray tracks that passed the hot-pixel test: narrower than the PSF (hotpix.hpp).
    std::size_t keep = 0;
    for (std::size_t i = 0; i < c.stars.size(); ++i) {
      const Star& s = c.stars[i];
      const double sg = std::isfinite(s.centroid_x)
                            ? c.psf_model.sigma_at(s.centroid_x, s.centroid_y)
                            : c.psf_sigma_px;
      if (too_sharp_for_a_star(s.width_x, s.width_y, s.snr, sg, c.cfg.hotpix)) continue;
      c.stars[keep] = s;
      c.stars[keep].star_id = static_cast<std::int32_t>(keep);
      ++keep;
    }
    c.stars.resize(keep);
  }

 private:
  // Stars hidden in brighter ones' light (a faint companion 2-7 px from a bright star
  // makes no peak of its own). Around every well-measured star with S/N >= 20, a box of
  // the frame has every fitted model subtracted and is searched with the detection
  // settings; a peak is kept when it is significant against the sky noise plus the photon
  // noise of the subtracted light, passes the hot-pixel test on the residual, has no
  // saturated or unusable pixel within 2 sigma, and lies >= 2 px from every fitted star.
  // Boxes, not the whole frame: the search costs ~1% of the frame and no full-frame
  // image. Found stars are appended (ids after the others) with a first fit on the box's
  // residual; the neighbour passes then refit everyone on the frame. (DAOPHOT's second
  // FIND on the star-subtracted image; Stetson 1987.)
  struct Found {
    int x = 0, y = 0;  // peak, frame px
    std::size_t box = 0;
    Star star;
    PsfFit fit;
    double sigma = 0;
  };

  static void find_in_residual(FrameContext& c, std::vector<PsfFit>& fits, std::vector<double>& x0,
                               std::vector<double>& y0, std::vector<double>& sig,
                               std::vector<std::uint32_t>& base) {
    const auto& pc = c.cfg.photometry;
    const auto& d = c.cfg.detection;
    const auto img = c.frame.pixels.cview();
    const auto msk = c.frame.mask.cview();
    const auto rmsv = c.background.rms.cview();
    const int w = img.width(), h = img.height();
    const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(fits.size());
    const double sky_rms = c.background.global_rms > 0 ? c.background.global_rms : 1.0;
    // Models and their reach, and a grid to find those touching a box.
    std::vector<char> usable(n, 0);
    std::vector<double> reach(n, 0.0);
    double max_reach = 0;
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      const PsfFit& f = fits[j];
      if (!f.converged || !std::isfinite(f.flux) || !(f.flux > 0)) continue;
      usable[j] = 1;
      const double peak = f.flux / (2.0 * std::numbers::pi * sig[j] * sig[j]);
      reach[j] = sig[j] * std::sqrt(2.0 * std::log(std::max(1.0, peak / (0.01 * sky_rms)))) + 1;
      max_reach = std::max(max_reach, reach[j]);
    }
    constexpr int kCell = 32;
    const int gw = w / kCell + 1, gh = h / kCell + 1;
    std::vector<std::vector<std::ptrdiff_t>> grid(static_cast<std::size_t>(gw) * gh);
    auto cell = [](double v, int cells) {
      return std::clamp(static_cast<int>(v / kCell), 0, cells - 1);
    };
    for (std::ptrdiff_t j = 0; j < n; ++j)
      if (usable[j])
        grid[static_cast<std::size_t>(cell(fits[j].y, gh)) * gw + cell(fits[j].x, gw)].push_back(j);
    std::vector<std::ptrdiff_t> bright;
    for (std::ptrdiff_t j = 0; j < n; ++j)
      if (usable[j] && fits[j].flux_err > 0 && fits[j].flux / fits[j].flux_err >= 20.0 &&
          !(fits[j].flags & star_flag::kSaturated))
        bright.push_back(j);

    PeakConfig pk = d.peaks;
    if (d.filter_sigma_px > 0)
      pk.rms_scale *= smoothing_noise_factor(d.filter_sigma_px, d.lowered_kernel);
    const double k = pk.mode == ThresholdMode::kSigma ? pk.k_sigma : 0.0;
    const int margin = static_cast<int>(std::ceil(3.0 * std::max(0.0, d.filter_sigma_px))) + 1;
    std::vector<std::vector<Found>> per_box(bright.size());
#pragma omp parallel
    {
      Profile1D px, py;
      std::vector<Peak> peaks;
#pragma omp for schedule(dynamic, 8)
      for (std::ptrdiff_t bi = 0; bi < static_cast<std::ptrdiff_t>(bright.size()); ++bi) {
        const std::ptrdiff_t b = bright[bi];
        const double sb = sig[b];
        const int inner = static_cast<int>(std::ceil(3.5 * sb)) + 1;
        const int stamp = static_cast<int>(std::ceil(pc.stamp_radius_sigma * sb)) + 2;
        const int half = inner + std::max(margin, stamp);
        const int bx = static_cast<int>(std::lround(fits[b].x));
        const int by = static_cast<int>(std::lround(fits[b].y));
        const int xa = std::max(0, bx - half), ya = std::max(0, by - half);
        const int xb = std::min(w - 1, bx + half), yb = std::min(h - 1, by + half);
        if (xa > xb || ya > yb) continue;
        const int bw = xb - xa + 1, bh = yb - ya + 1;
        Image<float> res(bw, bh);
        for (int y = 0; y < bh; ++y)
          for (int x = 0; x < bw; ++x) res(x, y) = img(xa + x, ya + y);
        // Every model reaching the box, in star order (deterministic floats).
        std::vector<std::ptrdiff_t> touch;
        for (int gy = cell(ya - max_reach, gh); gy <= cell(yb + max_reach, gh); ++gy)
          for (int gx = cell(xa - max_reach, gw); gx <= cell(xb + max_reach, gw); ++gx)
            for (std::ptrdiff_t j : grid[static_cast<std::size_t>(gy) * gw + gx])
              if (fits[j].x + reach[j] >= xa && fits[j].x - reach[j] <= xb &&
                  fits[j].y + reach[j] >= ya && fits[j].y - reach[j] <= yb)
                touch.push_back(j);
        std::sort(touch.begin(), touch.end());
        for (std::ptrdiff_t j : touch) {
          if (pc.integrate_pixels) {
            integrated_profile(fits[j].x, sig[j], xa, bw, false, px);
            integrated_profile(fits[j].y, sig[j], ya, bh, false, py);
          } else {
            sampled_profile(fits[j].x, sig[j], xa, bw, false, px);
            sampled_profile(fits[j].y, sig[j], ya, bh, false, py);
          }
          for (int y = 0; y < bh; ++y)
            for (int x = 0; x < bw; ++x)
              res(x, y) -= static_cast<float>(fits[j].flux * px.value[x] * py.value[y]);
        }
        const auto bmsk = msk.subview(xa, ya, bw, bh);
        const auto brms = rmsv.subview(xa, ya, bw, bh);
        ImageView<const float> rv(res.data(), bw, bh, bw, xa, ya);
        if (d.filter_sigma_px > 0) {
          Image<float> sm =
              gaussian_smooth(rv, bmsk, mask::kUnusable, d.filter_sigma_px, d.lowered_kernel);
          peaks = find_peaks(sm.cview(), brms, bmsk, pk);
        } else {
          peaks = find_peaks(rv, brms, bmsk, pk);
        }
        for (const Peak& p : peaks) {
          const int fx = xa + p.x, fy = ya + p.y;
          if (std::abs(fx - bx) > inner || std::abs(fy - by) > inner) continue;
          if (!passes_hot_pixel_test(rv, p.x, p.y, c.cfg.hotpix)) continue;
          const double light = std::max(0.0, double(img(fx, fy)) - res(p.x, p.y));
          const double r = rmsv(fx, fy);
          const double noise = std::sqrt(r * r + (c.gain > 0 ? light / c.gain : 0.0));
          if (k > 0 && p.value < k * pk.rms_scale * noise) continue;
          const int q = static_cast<int>(std::ceil(2.0 * sb));
          bool bad = false;
          for (int y = std::max(0, fy - q); y <= std::min(h - 1, fy + q) && !bad; ++y)
            for (int x = std::max(0, fx - q); x <= std::min(w - 1, fx + q); ++x)
              if (msk(x, y) & (mask::kSaturated | mask::kUnusable)) {
                bad = true;
                break;
              }
          if (bad) continue;
          Found f;
          f.x = fx;
          f.y = fy;
          f.box = static_cast<std::size_t>(bi);
          Star& s = f.star;
          s = make_star(c.frame.id, 0, fx, fy);
          s.peak_value = res(p.x, p.y);
          s.background = c.background.level_at(fx, fy);
          s.background_rms = r;
          CentroidConfig cc = c.cfg.centroid;
          cc.window_sigma_px = c.psf_sigma_px;
          const Centroid ct = measure_centroid(rv, bmsk, p.x, p.y, cc);
          const bool ok = std::isfinite(ct.x) && std::isfinite(ct.y);
          s.centroid_x = ok ? ct.x + xa : fx;
          s.centroid_y = ok ? ct.y + ya : fy;
          f.sigma = c.psf_model.sigma_at(s.centroid_x, s.centroid_y);
          f.fit = measure_psf_flux(rv, brms, bmsk, s.centroid_x - xa, s.centroid_y - ya, f.sigma,
                                   c.gain, pc);
          f.fit.x += xa;
          f.fit.y += ya;
          per_box[bi].push_back(f);
        }
      }
    }
    // Merge in a fixed order: by peak position, the first box that found it wins.
    std::vector<Found> all;
    for (auto& v : per_box)
      for (auto& f : v) all.push_back(std::move(f));
    std::stable_sort(all.begin(), all.end(), [](const Found& a, const Found& b) {
      return std::tie(a.y, a.x, a.box) < std::tie(b.y, b.x, b.box);
    });
    std::vector<Position> taken;
    for (const PsfFit& f : fits)
      if (std::isfinite(f.x)) taken.push_back({f.x, f.y});
    for (Found& f : all) {
      const Star& s = f.star;
      bool near = false;
      for (const Position& q : taken)
        if (std::hypot(q.x - s.centroid_x, q.y - s.centroid_y) < 2.0) {
          near = true;
          break;
        }
      if (near) continue;
      f.star.star_id = static_cast<std::int32_t>(c.stars.size());
      f.star.flags |= star_flag::kFoundInResidual;
      fits.push_back(f.fit);
      x0.push_back(s.centroid_x);
      y0.push_back(s.centroid_y);
      sig.push_back(f.sigma);
      base.push_back(f.star.flags);
      c.stars.push_back(f.star);
      taken.push_back({s.centroid_x, s.centroid_y});
    }
  }

  // One neighbour pass. Star j's model reaches star i's stamp when their distance is below
  // i's stamp half-size (times sqrt 2, the corner) plus the radius where j's model drops
  // to 1% of the sky RMS.
  static std::vector<PsfFit> refit_with_neighbours(
      const FrameContext& c, ImageView<const float> img, ImageView<const float> rms,
      ImageView<const MaskBits> msk, const std::vector<double>& x0, const std::vector<double>& y0,
      const std::vector<double>& sig, const std::vector<PsfFit>& prev, std::vector<char>& moved) {
    const auto& pc = c.cfg.photometry;
    const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(prev.size());
    const double sky_rms = c.background.global_rms > 0 ? c.background.global_rms : 1.0;
    std::vector<NeighbourModel> model(n);
    std::vector<double> reach(n, 0.0);
    std::vector<char> usable(n, 0);
    double max_reach = 0;
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      const PsfFit& f = prev[j];
      if (!f.converged || !std::isfinite(f.flux) || !(f.flux > 0)) continue;
      usable[j] = 1;
      model[j] = {f.x, f.y, f.flux, sig[j]};
      const double peak = f.flux / (2.0 * std::numbers::pi * sig[j] * sig[j]);
      reach[j] = sig[j] * std::sqrt(2.0 * std::log(std::max(1.0, peak / (0.01 * sky_rms))));
      max_reach = std::max(max_reach, reach[j]);
    }
    // Grid of usable stars by position (cells in a fixed order: deterministic lists).
    constexpr double kCell = 32.0;
    const int gw = img.width() / static_cast<int>(kCell) + 1;
    const int gh = img.height() / static_cast<int>(kCell) + 1;
    std::vector<std::vector<std::ptrdiff_t>> grid(static_cast<std::size_t>(gw) * gh);
    auto cell_of = [&](double v, int cells) {
      return std::clamp(static_cast<int>(v / kCell), 0, cells - 1);
    };
    for (std::ptrdiff_t j = 0; j < n; ++j)
      if (usable[j])
        grid[static_cast<std::size_t>(cell_of(model[j].y, gh)) * gw + cell_of(model[j].x, gw)]
            .push_back(j);
    std::vector<PsfFit> out(prev);
    std::vector<char> now(n, 0);
#pragma omp parallel
    {
      std::vector<NeighbourModel> near;
      std::vector<std::ptrdiff_t> idx;
#pragma omp for schedule(dynamic, 32)
      for (std::ptrdiff_t i = 0; i < n; ++i) {
        if (!std::isfinite(x0[i])) continue;
        const double xi = prev[i].converged ? prev[i].x : x0[i];
        const double yi = prev[i].converged ? prev[i].y : y0[i];
        const double half = std::max(3.0, std::ceil(pc.stamp_radius_sigma * sig[i])) * 1.4143;
        const double r = half + max_reach;
        idx.clear();
        for (int gy = cell_of(yi - r, gh); gy <= cell_of(yi + r, gh); ++gy)
          for (int gx = cell_of(xi - r, gw); gx <= cell_of(xi + r, gw); ++gx)
            for (std::ptrdiff_t j : grid[static_cast<std::size_t>(gy) * gw + gx]) {
              if (j == i) continue;
              if (std::hypot(model[j].x - xi, model[j].y - yi) < half + reach[j]) idx.push_back(j);
            }
        // Nothing to subtract, or no neighbour moved since this star's last fit: it stands.
        if (idx.empty() ||
            std::none_of(idx.begin(), idx.end(), [&](std::ptrdiff_t j) { return moved[j] != 0; }))
          continue;
        std::sort(idx.begin(), idx.end());
        near.clear();
        for (std::ptrdiff_t j : idx) near.push_back(model[j]);
        out[i] = measure_psf_flux(img, rms, msk, x0[i], y0[i], sig[i], c.gain, pc, near);
        const PsfFit &a = prev[i], &b = out[i];
        now[i] = a.converged != b.converged ||
                 (b.converged && (std::abs(a.x - b.x) > 1e-3 || std::abs(a.y - b.y) > 1e-3 ||
                                  std::abs(a.flux - b.flux) > 1e-4 * std::abs(b.flux)));
      }
    }
    moved = std::move(now);
    return out;
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
