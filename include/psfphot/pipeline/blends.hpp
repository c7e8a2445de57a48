#pragma once
// Deblending and source classification of the photometry step (PhotometryStep,
// photometry_step.cpp), over the per-star vectors it keeps (indexed like
// FrameContext::stars: the fits, each fit's start position, PSF sigma, flags set before
// photometry, and whether the source is extended). Configured by photometry.split_min_dchi2 and
// photometry.extended_sigma_ratio. Thread-safety: OpenMP inside; deterministic.
#include <cstdint>
#include <vector>

#include "psfphot/algo/extended_profile.hpp"
#include "psfphot/algo/psf_photometry.hpp"
#include "psfphot/pipeline/steps.hpp"

namespace psfphot::pipeline {

// Marks extended sources (galaxy cores fitted as stars): converged fits with S/N >= 20,
// not saturated, whose second moments' geometric mean exceeds 1.1 x the median of such
// stars and whose free-width Gaussian fit (fit_psf_sigma) is wider than
// photometry.extended_sigma_ratio x their PSF sigma. Returns one flag per star (all 0 when
// the ratio is 0).
std::vector<char> mark_extended(const FrameContext& c, const std::vector<PsfFit>& fits,
                                const std::vector<double>& sig);

// Subtracts the light of every extended source from c.frame.pixels (algo/extended_profile.hpp),
// brightest first, each profile measured on the frame less the ones before it and without the
// pixels of the other fitted sources; its extent is where its light falls to the residual
// search's per-pixel threshold (detection k_sigma x the smoothed image's noise factor x the
// local RMS: light that would pass that search's test), out to 30 PSF sigmas. A source marked
// extended that lies on an already subtracted one is fitted again (fit_psf_sigma) and unmarked
// when that fit converges no wider than photometry.extended_sigma_ratio x its PSF sigma (a star
// on a galaxy's disc). Returns the profiles subtracted (for the stars' reported sky).
std::vector<EllipticalProfile> subtract_extended_light(FrameContext& c,
                                                       const std::vector<PsfFit>& fits,
                                                       const std::vector<double>& sig,
                                                       std::vector<char>& extended);

// Deblending (algo/deblend.hpp): every converged star with 10 <= S/N <= 300, not saturated,
// not extended, not itself found in a residual, whose second moments' trace wx^2 + wy^2
// exceeds 1.15 x the frame's median (stars with S/N >= 20), gets the two-star split test with its
// neighbours' models subtracted. A split star keeps its id as the brighter component; the other is
// appended (flags kFoundInResidual and kMomentsInvalid, widths NaN: the blend's moments
// describe neither star; it must survive its final fit like the residual
// search's finds). `moved` is set for both, so the next neighbour passes refit around them.
// Returns the number of stars split. Deterministic: tests in parallel, applied in star order.
int split_blends(FrameContext& c, std::vector<PsfFit>& fits, std::vector<double>& x0,
                 std::vector<double>& y0, std::vector<double>& sig,
                 std::vector<std::uint32_t>& base, std::vector<char>& extended,
                 std::vector<char>& moved);

}  // namespace psfphot::pipeline
