#pragma once
// Synthetic images for the algorithm unit tests: pixel-integrated Gaussian stars with
// known position and flux, and seeded Gaussian noise. Deliberately independent of the
// simulator (algo/simulate*, algo/sim_psf) so the tests do not share its code; the only
// shared piece is psfphot::integrated_profile, which has its own unit test.
#include <cstdint>
#include <random>
#include <vector>

#include "psfphot/core/image.hpp"

namespace psfphot::test {

struct SynthStar {
  double x = 0, y = 0;  // px, 0-based, pixel centres at integers
  double flux = 0;      // ADU, total over the plane
  double sigma = 2.0;   // Gaussian sigma, px
};

// Add a pixel-integrated circular Gaussian star to `img` (pixels within
// ceil(8 sigma) of the centre; the flux beyond is < 1e-14 of the total).
void add_star(Image<float>& img, const SynthStar& s);
void add_star(Image<double>& img, const SynthStar& s);

// Add the same star sampled at pixel centres (the teaching lab's model).
void add_sampled_star(Image<float>& img, const SynthStar& s);

// Add zero-mean Gaussian noise of standard deviation `sigma` to every pixel.
void add_noise(Image<float>& img, double sigma, std::mt19937& rng);

// Add zero-mean Gaussian noise with per-pixel variance sky_rms^2 + max(model, 0) / gain
// (Poisson noise of the star in its Gaussian limit; gain <= 0: sky only). `model` is the
// noiseless signal above the sky.
void add_noise(Image<float>& img, const Image<double>& model, double sky_rms, double gain,
               std::mt19937& rng);

// Copy a double image to float.
Image<float> to_float(const Image<double>& img);

// A `w` x `h` image filled with `value`.
Image<float> constant(int w, int h, float value);

// `n` positions uniformly in [margin, w - 1 - margin] x [margin, h - 1 - margin], every
// pair at least `min_sep` px apart (rejection sampling; throws std::runtime_error when it
// cannot place them).
std::vector<SynthStar> scatter_stars(int n, int w, int h, double margin, double min_sep,
                                     double flux, double sigma, std::mt19937& rng);

}  // namespace psfphot::test
