#pragma once
// Deterministic frames and stars for the catalogue tests: the same (frame id) always
// gives the same bytes, so a catalogue can be checked against what was written.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "psfphot/core/frame_result.hpp"
#include "psfphot/core/star.hpp"

namespace psfphot::test {

// Stars in frame `id`: 0..2999, varied so chunks fill unevenly; a few frames have none.
inline int fixture_star_count(std::int64_t id) {
  return id % 11 == 5 ? 0 : static_cast<int>((id * 7919 + 13) % 3000);
}

inline Star fixture_star(std::int64_t frame, std::int32_t sid, std::mt19937_64& rng) {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Star s = make_star(frame, sid, static_cast<int>(rng() % 2048), static_cast<int>(rng() % 2048));
  s.flags = static_cast<std::uint32_t>(rng() & 0xFFu);
  s.peak_value = 50.0 + 5000.0 * u(rng);
  s.centroid_x = s.peak_x + u(rng) - 0.5;
  s.centroid_y = s.peak_y + u(rng) - 0.5;
  s.centroid_err_x = 0.01 + 0.1 * u(rng);
  s.centroid_err_y = 0.01 + 0.1 * u(rng);
  s.width_x = 1.0 + 2.0 * u(rng);
  s.width_y = 1.0 + 2.0 * u(rng);
  s.psf_flux = 1e3 + 1e5 * u(rng);
  s.psf_flux_err = std::sqrt(s.psf_flux);
  s.snr = s.psf_flux / s.psf_flux_err;
  s.background = 300.0 + 10.0 * u(rng);
  s.background_rms = 12.0 + u(rng);
  if (sid % 7 == 3) {  // an unmeasurable star: NaN and the flag saying why
    s.psf_flux = s.psf_flux_err = s.snr = nan;
    s.flags |= star_flag::kFitFailed;
  }
  if (frame % 2 == 0) {  // frames with a WCS
    s.ra_deg = 180.0 + u(rng);
    s.dec_deg = -30.0 + u(rng);
  }
  return s;
}

inline FrameResult fixture_frame(std::int64_t id, int n_stars = -1) {
  if (n_stars < 0) n_stars = fixture_star_count(id);
  FrameResult r;
  r.frame_id = id;
  r.path = "/data/night/frame_" + std::to_string(id) + ".fits";
  r.status = FrameStatus::kOk;
  r.summary.mjd_obs = 56094.0 + 0.001 * static_cast<double>(id);
  r.summary.exptime_s = 30.0;
  r.summary.filter = "R";
  r.summary.psf_sigma_px = 1.7;
  r.summary.sky_adu = 310.5;
  r.summary.sky_rms_adu = 12.25;
  // Overscan levels: every frame a bias of its own; a master dark's level on even frames only
  // (odd frames keep the NaN of "no dark bias measured").
  r.summary.bias_adu = 480.0 + 2.5 * static_cast<double>(id);
  if (id % 2 == 0) r.summary.dark_bias_adu = 0.125 * static_cast<double>(id);
  r.summary.n_peaks = n_stars + 4;
  r.total_ms = 123.5 + static_cast<double>(id);
  r.worker_rank = static_cast<std::int32_t>(id % 3);
  std::mt19937_64 rng(static_cast<std::uint64_t>(id) * 1000003u + 17u);
  for (int i = 0; i < n_stars; ++i) r.stars.push_back(fixture_star(id, i, rng));
  return r;
}

inline FrameResult fixture_failed_frame(std::int64_t id, FrameStatus status,
                                        const std::string& message) {
  FrameResult r;
  r.frame_id = id;
  r.path = "/data/night/broken_" + std::to_string(id) + ".fits";
  r.status = status;
  r.failed_step = "read";
  r.message = message;
  r.worker_rank = 1;
  r.total_ms = 2.0;
  return r;
}

inline bool same_bytes(const Star& a, const Star& b) {
  return std::memcmp(&a, &b, sizeof(Star)) == 0;
}

// One star for the query tests: frame 3, star 7, centroid (x, y), flux error 10.
inline Star query_star(double flux, double snr, std::uint32_t flags, double x = 10, double y = 20) {
  Star s = make_star(3, 7, static_cast<int>(x), static_cast<int>(y));
  s.psf_flux = flux;
  s.psf_flux_err = 10;
  s.snr = snr;
  s.flags = flags;
  s.centroid_x = x;
  s.centroid_y = y;
  return s;
}

}  // namespace psfphot::test
