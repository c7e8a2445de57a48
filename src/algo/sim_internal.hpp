#pragma once
// Internal to the simulator (src/algo/simulate*.cpp): the exposure model shared by science,
// dark and flat frames, and the artefacts every exposure receives.
#include <cmath>
#include <vector>

#include "psfphot/algo/simulate.hpp"
#include "sim_random.hpp"

namespace psfphot::sim_detail {

// Smooth part of the dark rate (dark current + amp glow from the corner (width-1, 0)), e-/s.
inline double smooth_dark_rate(const SimConfig& c, double x, double y) {
  const double d = std::hypot(c.width - 1.0 - x, y);
  return c.dark_current_e_per_s + c.glow_e_per_s * std::exp(-d / c.glow_scale_px);
}

// One exposure of `cfg.exptime_s`: for each row y (OpenMP, one random stream per row keyed
// by (seed, kind, index, y)), signal_row(y, buf) writes the calibrated signal in ADU (sky +
// sources, before the flat) into buf[0..width); the row is then turned into raw ADU:
//   mean_e = signal * flat * gain + dark_rate * t;  raw = bias(col) + noisy_e / gain.
// Poisson + read noise: exact Poisson below Rng::kExactBelow electrons plus a Gaussian read
// noise; above it a single Gaussian with variance mean_e + read_noise^2 (same two moments).
template <typename SignalRow>
Image<float> expose(const SimConfig& cfg, const SimInstrument& inst, StreamKind kind, int index,
                    SignalRow&& signal_row) {
  const int w = cfg.width, h = cfg.height;
  Image<float> raw(w, h);
  const double gain = cfg.gain_e_per_adu, inv_gain = 1.0 / gain;
  const double rn = cfg.read_noise_e, rn2 = rn * rn, t = cfg.exptime_s;
  const ImageView<float> out = raw.view();
#pragma omp parallel
  {
    std::vector<float> buf(static_cast<std::size_t>(w));
#pragma omp for schedule(static)
    for (int y = 0; y < h; ++y) {
      Rng rng(cfg.seed, kind, index, y);
      signal_row(y, buf.data());
      const float* flat = inst.flat.view().row(y);
      const float* dark = inst.dark_rate_e_per_s.view().row(y);
      float* o = out.row(y);
      for (int x = 0; x < w; ++x) {
        const double mean_e = static_cast<double>(buf[x]) * flat[x] * gain + dark[x] * t;
        double e;
        if (mean_e >= Rng::kExactBelow) {
          e = mean_e + std::sqrt(mean_e + rn2) * rng.normal();
        } else {
          e = rng.poisson(mean_e) + rn * rng.normal();
        }
        o[x] = static_cast<float>(inst.bias_adu[x] + e * inv_gain);
      }
    }
  }
  return raw;
}

// Cosmic rays of one exposure (Poisson number at cfg.cosmic_rays_per_mpix), drawn from rng
// (the exposure's artefact stream) and deposited into raw (ADU) serially. Returns them.
std::vector<CosmicRay> add_cosmic_rays(const SimConfig& cfg, ImageView<float> raw, Rng& rng);

// A stream for the artefacts of exposure (kind, index).
inline Rng artefact_rng(const SimConfig& cfg, StreamKind kind, int index) {
  return Rng(cfg.seed, StreamKind::kArtefacts, index, static_cast<std::int64_t>(kind));
}

}  // namespace psfphot::sim_detail
