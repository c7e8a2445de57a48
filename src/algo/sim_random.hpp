#pragma once
// Internal to the simulator: counter-keyed random streams.
//
// Every stream is keyed by (seed, kind, index, row), so a row of a frame draws the same
// numbers whichever thread renders it and in whatever order: this is what makes the
// simulator byte-identical for any OpenMP thread count. Generator: xoshiro256** (Blackman
// & Vigna 2018) seeded through SplitMix64; normals by Marsaglia's polar method.
#include <cmath>
#include <cstdint>

namespace psfphot::sim_detail {

inline std::uint64_t splitmix64(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// What a stream is for; part of its key so streams of different purposes never coincide.
enum class StreamKind : std::uint64_t {
  kField = 1,       // star list and galaxies (one per night)
  kConditions = 2,  // per-frame seeing, sky, dither
  kScience = 3,     // per-row pixel noise of science frames
  kDark = 4,        // per-row pixel noise of raw darks
  kFlat = 5,        // per-row pixel noise of raw flats
  kInstrument = 6,  // PRNU rows, hot pixels, dust, column bias
  kArtefacts = 7,   // cosmic rays and unstable hot pixels of one exposure
};

class Rng {
 public:
  Rng(std::uint64_t seed, StreamKind kind, std::int64_t index, std::int64_t row) {
    std::uint64_t k = seed;
    std::uint64_t h = splitmix64(k);
    k = h ^ static_cast<std::uint64_t>(kind);
    h = splitmix64(k);
    k = h ^ static_cast<std::uint64_t>(index);
    h = splitmix64(k);
    k = h ^ static_cast<std::uint64_t>(row);
    for (auto& s : s_) s = splitmix64(k);
  }

  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Log-uniform in [lo, hi), lo > 0.
  double log_uniform(double lo, double hi) { return lo * std::exp(std::log(hi / lo) * uniform()); }
  // Standard normal.
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u, v, s;
    do {
      u = 2.0 * uniform() - 1.0;
      v = 2.0 * uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = std::sqrt(-2.0 * std::log(s) / s);
    spare_ = v * f;
    has_spare_ = true;
    return u * f;
  }
  // Poisson deviate: exact (inversion by multiplication) below kExactBelow; above it the
  // normal approximation with the same mean and variance (skewness 1/sqrt(mean) < 0.18).
  static constexpr double kExactBelow = 30.0;
  double poisson(double mean) {
    if (!(mean > 0.0)) return 0.0;
    if (mean >= kExactBelow) return mean + std::sqrt(mean) * normal();
    const double limit = std::exp(-mean);
    double p = uniform();
    int k = 0;
    while (p > limit) {
      p *= uniform();
      ++k;
    }
    return k;
  }
  // Index in [0, n).
  std::int64_t index(std::int64_t n) {
    return static_cast<std::int64_t>(uniform() * static_cast<double>(n));
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace psfphot::sim_detail
