#pragma once
// Neighbour handling of the photometry step (DAOPHOT style; Stetson 1987, PASP 99, 191):
// finding stars hidden in brighter ones' light in the star-subtracted frame, and refitting
// every star with its neighbours' models subtracted. Used by PhotometryStep (photometry_step.cpp);
// configured by photometry.neighbour_passes and photometry.residual_detection.
// Per-star state is kept in parallel vectors indexed like FrameContext::stars: the fits,
// each fit's start position (x0, y0, px), its PSF sigma (px) and the flags set before
// photometry (base).
// Thread-safety: OpenMP inside; deterministic (fixed orders, Jacobi-style passes).
#include <cstdint>
#include <vector>

#include "psfphot/algo/psf_photometry.hpp"
#include "psfphot/pipeline/steps.hpp"

namespace psfphot::pipeline {

// Around every well-measured star with S/N >= 20 (converged, not marked `extended`), a box of the
// frame has every fitted model subtracted and is searched with the detection settings; a peak is
// kept when it is significant against the sky noise plus the photon noise of the subtracted light
// (needs c.gain > 0), passes the hot-pixel test on the residual, has no saturated or unusable pixel
// within 2 sigma, and lies >= 2 px from every fitted star. Found stars are appended to
// c.stars (ids after the others, flag kFoundInResidual) and to the vectors, with a first fit
// on the box's residual (and 0 to `extended`).
void find_in_residual(FrameContext& c, std::vector<PsfFit>& fits, std::vector<double>& x0,
                      std::vector<double>& y0, std::vector<double>& sig,
                      std::vector<std::uint32_t>& base, std::vector<char>& extended);

// One neighbour pass: star i is refitted from (x0, y0) with the previous pass's models of
// its neighbours subtracted (star j counts when its model reaches i's stamp: distance below
// the stamp's half-diagonal plus the radius where j's model falls to 1% of the sky RMS),
// if any of them moved in the previous pass (`moved`, updated: > 1e-3 px or 1e-4 in flux).
// Close pairs (two converged, unsaturated fits without clipped pixels, < 3 sigma apart, no third
// star that close) are refitted jointly instead (refit_pair, algo/deblend.hpp, from the previous
// pass's fits) when any model reaching the pair, its own two included, moved; alone as above when
// the joint fit fails or takes either star more than 2 px from its start. One at a time, such a
// pair's refits alternate and settle slowly (on the 4096^2 scorecard frame ~35 stars, all in
// pairs 1.9-3.1 sigma apart, still moved at the tenth pass; jointly, none by the tenth).
std::vector<PsfFit> refit_with_neighbours(
    const FrameContext& c, ImageView<const float> img, const FloatPlane& rms,
    ImageView<const MaskBits> msk, const std::vector<double>& x0, const std::vector<double>& y0,
    const std::vector<double>& sig, const std::vector<PsfFit>& prev, std::vector<char>& moved);

}  // namespace psfphot::pipeline
