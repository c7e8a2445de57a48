// farm/wire: a FrameResult crosses between ranks as bytes and comes back field for field
// (stars as raw records); a damaged message is an error, never a wrong result.
#include "psfphot/farm/wire.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "psfphot/core/star.hpp"

namespace psfphot::farm {
namespace {

FrameResult sample_result() {
  FrameResult r;
  r.frame_id = 41;
  r.path = "/data/night/sci_0041.fits";
  r.status = FrameStatus::kBackgroundFailed;
  r.failed_step = "background";
  r.message = "more bad meshes than 90%: \xc3\xa9 (UTF-8 kept)";
  // Designated, so a field added to FrameSummary cannot silently take another's value, and
  // every field distinct so swapped fields in encode/decode show.
  r.summary = {.mjd_obs = 59000.25,
               .exptime_s = 60.0,
               .filter = "r'",
               .psf_sigma_px = 2.03,
               .sky_adu = 181.5,
               .sky_rms_adu = 14.6,
               .bias_adu = 497.5,
               .dark_bias_adu = -0.25,
               .n_peaks = 4472};
  r.timings = {{"read", 20.5}, {"calibrate", 15.25}};
  r.total_ms = 431.0;
  r.worker_rank = 3;
  for (int i = 0; i < 3; ++i) {
    Star s = make_star(41, i, 100 + i, 200 - i);
    s.centroid_x = 100.25 + i;
    s.psf_flux = i == 1 ? std::numeric_limits<double>::quiet_NaN() : 1234.5 * (i + 1);
    s.flags = static_cast<std::uint32_t>(i) << 4;
    r.stars.push_back(s);
  }
  return r;
}

TEST(Wire, FrameResultRoundTripsFieldForField) {
  const FrameResult a = sample_result();
  const FrameResult b = decode_result(encode(a));
  EXPECT_EQ(b.frame_id, a.frame_id);
  EXPECT_EQ(b.path, a.path);
  EXPECT_EQ(b.status, a.status);
  EXPECT_EQ(b.failed_step, a.failed_step);
  EXPECT_EQ(b.message, a.message);
  EXPECT_EQ(b.summary.mjd_obs, a.summary.mjd_obs);
  EXPECT_EQ(b.summary.exptime_s, a.summary.exptime_s);
  EXPECT_EQ(b.summary.filter, a.summary.filter);
  EXPECT_EQ(b.summary.psf_sigma_px, a.summary.psf_sigma_px);
  EXPECT_EQ(b.summary.sky_adu, a.summary.sky_adu);
  EXPECT_EQ(b.summary.sky_rms_adu, a.summary.sky_rms_adu);
  EXPECT_EQ(b.summary.bias_adu, 497.5);
  EXPECT_EQ(b.summary.dark_bias_adu, -0.25);
  EXPECT_EQ(b.summary.n_peaks, 4472);
  ASSERT_EQ(b.timings.size(), a.timings.size());
  for (std::size_t i = 0; i < a.timings.size(); ++i) {
    EXPECT_EQ(b.timings[i].step, a.timings[i].step);
    EXPECT_EQ(b.timings[i].ms, a.timings[i].ms);
  }
  EXPECT_EQ(b.total_ms, a.total_ms);
  EXPECT_EQ(b.worker_rank, a.worker_rank);
  ASSERT_EQ(b.stars.size(), a.stars.size());
  // Bit for bit, NaN included (the catalogue compares records with memcmp).
  EXPECT_EQ(std::memcmp(b.stars.data(), a.stars.data(), a.stars.size() * sizeof(Star)), 0);
  // An empty result (no stars, no timings, empty strings) too.
  const FrameResult e = decode_result(encode(FrameResult{}));
  EXPECT_TRUE(e.stars.empty());
  EXPECT_TRUE(e.path.empty());
}

// Without overscan correction (or without a dark) the biases are NaN: they come back NaN,
// bit for bit, and the fields around them keep their values.
TEST(Wire, NanBiasesRoundTripBitForBit) {
  FrameResult a = sample_result();
  a.summary.bias_adu = std::numeric_limits<double>::quiet_NaN();
  a.summary.dark_bias_adu = -std::numeric_limits<double>::quiet_NaN();
  const FrameResult b = decode_result(encode(a));
  EXPECT_TRUE(std::isnan(b.summary.bias_adu));
  EXPECT_TRUE(std::isnan(b.summary.dark_bias_adu));
  EXPECT_EQ(std::memcmp(&b.summary.bias_adu, &a.summary.bias_adu, sizeof(double)), 0);
  EXPECT_EQ(std::memcmp(&b.summary.dark_bias_adu, &a.summary.dark_bias_adu, sizeof(double)), 0);
  EXPECT_EQ(b.summary.sky_rms_adu, a.summary.sky_rms_adu);
  EXPECT_EQ(b.summary.n_peaks, 4472);
  // One NaN, one number: each lands in its own field.
  a.summary.dark_bias_adu = 3.5;
  const FrameResult c = decode_result(encode(a));
  EXPECT_TRUE(std::isnan(c.summary.bias_adu));
  EXPECT_EQ(c.summary.dark_bias_adu, 3.5);
}

TEST(Wire, DamagedMessagesAreErrors) {
  const std::vector<std::uint8_t> good = encode(sample_result());
  // Every truncation throws (the reader checks each length against what is left).
  for (std::size_t n = 0; n < good.size(); ++n) {
    const std::vector<std::uint8_t> cut(good.begin(), good.begin() + static_cast<long>(n));
    EXPECT_THROW(decode_result(cut), std::runtime_error) << "truncated to " << n;
  }
  // Trailing bytes and a wrong magic number are errors too.
  std::vector<std::uint8_t> longer = good;
  longer.push_back(0);
  EXPECT_THROW(decode_result(longer), std::runtime_error);
  std::vector<std::uint8_t> wrong = good;
  wrong[0] ^= 0xff;
  EXPECT_THROW(decode_result(wrong), std::runtime_error);
}

}  // namespace
}  // namespace psfphot::farm
