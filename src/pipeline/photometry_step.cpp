#include "photometry_step.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "model_index.hpp"
#include "psfphot/algo/hotpix.hpp"
#include "psfphot/algo/moments.hpp"
#include "psfphot/algo/psf_photometry.hpp"
#include "psfphot/core/star.hpp"
#include "psfphot/pipeline/blends.hpp"
#include "psfphot/pipeline/neighbours.hpp"

namespace psfphot::pipeline {
namespace {

class PhotometryStep : public Step {
 public:
  const char* name() const override { return "photometry"; }
  FrameStatus failure_status() const override { return FrameStatus::kMeasurementFailed; }
  void run(FrameContext& c) const override {
    const auto img = c.frame.pixels.cview();
    const auto rms = c.background.rms_plane();
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
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      // The stamp rows of the star after next, into the outer caches: its misses then overlap
      // two fits instead of stalling its own (at a chunk's end the star is another thread's: a
      // wasted hint). Initial fits, one core: ~71 -> ~62 ms CPU.
      if (i + 2 < n)
        detail::prefetch_stamp_rows(img, rms, msk, gain, x0[i + 2], y0[i + 2], sig[i + 2], pc);
      fits[i] = measure_psf_flux(img, rms, msk, x0[i], y0[i], sig[i], gain, pc);
    }
    // Extended sources (galaxy cores) fitted as stars: their residuals would seed a ring of
    // false companions, and they are not stars. Only sources whose second moments are
    // already 10% wider than the frame's typical star get the free-width fit.
    std::vector<char> extended =
        fit ? mark_extended(c, fits, sig) : std::vector<char>(static_cast<std::size_t>(n), 0);
    // Their light goes from the frame (pipeline/blends.hpp), so that the residual search does
    // not take noise on a galaxy's disc for stars and the neighbour passes refit the stars on
    // it without it (the passes refit every star at first, those included).
    std::vector<EllipticalProfile> galaxies;
    if (fit && pc.subtract_extended && pc.extended_sigma_ratio > 0 && pc.neighbour_passes > 0)
      galaxies = subtract_extended_light(c, fits, sig, extended);
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
        // The star's sky: the mesh background plus any subtracted galaxy light under it.
        double under = 0;
        for (const EllipticalProfile& g : galaxies) under += g.at(cx, cy);
        s.background = c.background.level_at(cx, cy) + under;
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
      // Judged on the principal axes, not on width_x / width_y: a track lying diagonally
      // across the pixel grid is wide along both of those but sharp across itself; with
      // Gaussian weights of the PSF sigma, the moment's error from the background RMS at the
      // star, and a noiseless star's moment through the same window as the reference
      // (hotpix.hpp). Only stars bright enough to be judged pay for the moments.
      if (s.snr >= c.cfg.hotpix.min_width_snr && c.cfg.hotpix.min_width_sigma > 0 &&
          too_sharp_for_a_star(minor_axis_moment(img, msk, s.centroid_x, s.centroid_y,
                                                 s.background_rms, sg, c.cfg.moments, sg),
                               s.snr, c.cfg.hotpix))
        continue;
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

std::unique_ptr<Step> make_photometry_step() {
  return std::make_unique<PhotometryStep>();
}

}  // namespace psfphot::pipeline
