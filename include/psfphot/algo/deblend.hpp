#pragma once
// Two-star split test: is one detection two stars? (Deblending of blended pairs.)
//
// Two stars closer than ~2.5 PSF sigma make a single peak in the matched-filtered image
// (the filter widens them to sigma ~2.5 px), so the pipeline fits one star at the pair's
// light centre: a false detection between two missed stars. On the 4096^2 scorecard frame
// these were 8 of 13 false detections (pairs 3.2-4.9 px apart, S/N 5-100).
//
// Method (DAOPHOT-like, Stetson 1987 sect. III.e, with a likelihood-ratio acceptance): the
// single star is refitted on a stamp (neighbours subtracted); the quadrupole moment of its
// residual gives the pair's axis (a pair fitted as one leaves positive lobes along it); two
// stars start at +-0.75 sigma along that axis with half the flux each, and (F, x, y) of both
// are fitted jointly (Gauss-Newton, the same pixel-integrated Gaussian, weights and
// variance as measure_psf_flux). The split is accepted when the fit converges, chi^2 drops
// by at least `min_dchi2` (three more parameters: chi^2_3 > 30 has p ~ 1e-6, a few per
// 10^4 single stars even with the position search), the two are at least `min_sep_sigma`
// sigma apart (closer, two components only mimic a wider PSF), and the fainter has at
// least `min_flux_ratio` of the brighter's flux (unequal pairs are the residual search's
// job; a PSF wing mismatch fits as a faint offset component).
// Units: px, ADU. Thread-safety: pure function.
#include <array>
#include <span>

#include "psfphot/algo/psf_photometry.hpp"
#include "psfphot/core/float_plane.hpp"
#include "psfphot/core/image.hpp"

namespace psfphot {

struct SplitConfig {
  double min_dchi2 = 30.0;       // chi^2 improvement needed; <= 0 disables the test
  double min_sep_sigma = 1.0;    // component separation, PSF sigmas
  double min_flux_ratio = 0.25;  // fainter / brighter component flux
};

struct SplitResult {
  bool split = false;
  double dchi2 = 0;  // chi^2 (one star) - chi^2 (two stars), when the pair fit converged
  PsfFit a, b;       // the two components when split (a the brighter); fluxes, positions,
                     // errors from the joint fit's covariance; flags from the stamp
};

// `x, y`: the single star's fitted position; `sigma_px` its PSF sigma. Other stars' models
// in `neighbours` are subtracted first. Stamps with saturated pixels are never split.
SplitResult try_split(ImageView<const float> image, const FloatPlane& rms,
                      ImageView<const MaskBits> mask, double x, double y, double sigma_px,
                      const PixelGain& gain, const PhotometryConfig& cfg, const SplitConfig& sc,
                      std::span<const NeighbourModel> neighbours = {});

// Faint companion of a star (a few % of its flux, 1-3 sigma away: no peak of its own in
// the filtered image, and the star's one-at-a-time fit absorbs part of it, which biased
// bright stars' centroids by up to 20 bounds on the scorecard frames). The residual of the
// star's fit `star` (neighbours subtracted) is searched with a matched filter for the best
// point-source position between `min_sep_sigma` and 3 sigma; where that S/N^2 reaches
// `min_dchi2`, star and companion are fitted jointly (as in try_split) and the companion
// accepted when chi^2 drops by at least `min_dchi2`, the two stay `min_sep_sigma` apart,
// and the companion explains at least half of the single fit's chi^2 excess over its
// degrees of freedom (a PSF that differs from the model leaves an excess a second star
// only partly absorbs), and it ends within 3 sigma. No flux-ratio limit. A star whose fit
// clipped outlier pixels (flag clipped_pixel) is searched on the unclipped stamp (the
// clipped pixels may be a companion's core; outliers > 2 sigma from both the star and the
// candidate are dropped again), and its companion is accepted only if the pair leaves no
// pixel beyond cfg.clip_sigma of its noise within one sigma (>= 1 px) of the component
// seeded at the candidate: a cosmic ray or hot pixel there, which no PSF absorbs, is not
// taken for a companion. (Nor, then, is a true companion with a hot pixel that close, or
// one within ~2 sigma of a very bright star whose PSF the Gaussian does not match.)
// Result as try_split's (a the brighter).
// Thread-safety: pure function.
SplitResult try_companion(ImageView<const float> image, const FloatPlane& rms,
                          ImageView<const MaskBits> mask, const PsfFit& star, double sigma_px,
                          const PixelGain& gain, const PhotometryConfig& cfg, const SplitConfig& sc,
                          std::span<const NeighbourModel> neighbours = {});

// Joint fit of two stars already known (a close pair, < ~2.5 sigma apart, whose one-at-a-
// time neighbour passes can settle on a wrong solution: each absorbs part of the other's
// light). Starts from `a` and `b` (x, y, flux), other neighbours subtracted; the same
// fit as try_split's. `converged` false on the returned fits when the joint fit fails
// (the caller keeps what it had). Thread-safety: pure function.
std::array<PsfFit, 2> refit_pair(ImageView<const float> image, const FloatPlane& rms,
                                 ImageView<const MaskBits> mask, const PsfFit& a, const PsfFit& b,
                                 double sigma_px, const PixelGain& gain,
                                 const PhotometryConfig& cfg,
                                 std::span<const NeighbourModel> neighbours = {});

}  // namespace psfphot
