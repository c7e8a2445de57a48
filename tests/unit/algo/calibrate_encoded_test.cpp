// Calibration of inputs still encoded as in their FITS files (core/encoded_image.hpp): the
// raw uint16 frame, the dark and the flat as big-endian bytes, decoded inside the pass, must
// give exactly the bytes of the float path (the images decoded first, the flat normalised by
// normalise_flat, then calibrate), mask, counts and the flat's response included, for every
// normalisation rule, with 1 and 2 threads, across the pieces a row is decoded in.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "psfphot/algo/calibrate.hpp"
#include "psfphot/core/encoded_image.hpp"

namespace psfphot {
namespace {

constexpr double kNoSat = std::numeric_limits<double>::quiet_NaN();

void put_be(std::vector<unsigned char>& b, std::size_t i, std::uint32_t v, int bytes) {
  for (int k = 0; k < bytes; ++k) b[i * bytes + k] = (v >> (8 * (bytes - 1 - k))) & 0xFF;
}

std::uint32_t bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Encoded inputs with every kind of pixel: saturated and ordinary raw values; a dark with NaN,
// inf, -0 and subnormals; a flat with zeros, negatives, NaN, inf, subnormals and huge values.
struct Inputs {
  int w, h;
  std::vector<unsigned char> raw, dark, flat;
  EncodedImageView raw_view() const {
    return EncodedImageView(raw.data(), w, h, PixelEncoding::kFitsInt16, 1.0, 32768.0);
  }
  EncodedImageView dark_view() const {
    return EncodedImageView(dark.data(), w, h, PixelEncoding::kFitsFloat32);
  }
  EncodedImageView flat_view() const {
    return EncodedImageView(flat.data(), w, h, PixelEncoding::kFitsFloat32);
  }
};

Inputs make_inputs(int w, int h, unsigned seed) {
  Inputs in{w, h, {}, {}, {}};
  const std::size_t n = static_cast<std::size_t>(w) * h;
  in.raw.resize(2 * n);
  in.dark.resize(4 * n);
  in.flat.resize(4 * n);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> sky(150, 6000);
  std::uniform_real_distribution<float> dk(80.f, 120.f), fl(0.6f, 1.4f);
  const float dark_special[] = {std::numeric_limits<float>::quiet_NaN(),
                                std::numeric_limits<float>::infinity(), -0.f,
                                std::numeric_limits<float>::denorm_min()};
  const float flat_special[] = {0.f,
                                -0.5f,
                                std::numeric_limits<float>::quiet_NaN(),
                                std::numeric_limits<float>::infinity(),
                                std::numeric_limits<float>::denorm_min(),
                                std::numeric_limits<float>::max(),
                                1e-30f};
  for (std::size_t i = 0; i < n; ++i) {
    int v = sky(rng);
    if (i % 53 == 0) v = 65535;  // saturated
    if (i % 59 == 0) v = 0;
    put_be(in.raw, i, static_cast<std::uint16_t>(v - 32768), 2);
    float d = dk(rng);
    if (i % 41 < std::size(dark_special)) d = dark_special[i % 41];
    put_be(in.dark, i, bits(d), 4);
    float f = fl(rng);
    if (i % 43 < std::size(flat_special)) f = flat_special[i % 43];
    put_be(in.flat, i, bits(f), 4);
  }
  return in;
}

Image<float> decoded(EncodedImageView v) {
  Image<float> img(v.width(), v.height());
  for (int y = 0; y < v.height(); ++y) {
    const float* r = v.row(y, 0, v.width(), img.data() + static_cast<std::size_t>(y) * v.width());
    std::memcpy(img.data() + static_cast<std::size_t>(y) * v.width(), r, v.width() * sizeof(float));
  }
  return img;
}

void expect_same(const CalibratedImage& a, const CalibratedImage& b, const char* what) {
  ASSERT_EQ(a.pixels.size(), b.pixels.size()) << what;
  EXPECT_EQ(0, std::memcmp(a.pixels.data(), b.pixels.data(), a.pixels.size() * sizeof(float)))
      << what;
  ASSERT_EQ(a.mask.size(), b.mask.size()) << what;
  EXPECT_EQ(0, std::memcmp(a.mask.data(), b.mask.data(), a.mask.size())) << what;
  EXPECT_EQ(a.n_saturated, b.n_saturated) << what;
  EXPECT_EQ(a.n_nonfinite, b.n_nonfinite) << what;
  EXPECT_EQ(a.n_flat_invalid, b.n_flat_invalid) << what;
  EXPECT_EQ(a.dark_scale, b.dark_scale) << what;
}

TEST(CalibrateEncoded, BigEndianInputsGiveTheFloatPathsBytes) {
  // 1100 = a 1024-pixel piece and a 76-pixel one (not a multiple of the 8-pixel vectors).
  for (int w : {1100, 37}) {
    const Inputs enc = make_inputs(w, 7, 5 + w);
    const Image<float> raw = decoded(enc.raw_view()), dark = decoded(enc.dark_view()),
                       flat = decoded(enc.flat_view());
    for (FlatNorm how : {FlatNorm::kMax, FlatNorm::kMedian, FlatNorm::kMean}) {
      for (int threads : {1, 2}) {
        omp_set_num_threads(threads);
        CalibrationConfig cfg;
        cfg.flat_norm = how;
        const NormalisedFlat nf = normalise_flat(flat.cview(), how);
        CalibrationInputs ref_in;
        ref_in.dark = dark.cview();
        ref_in.dark_exptime_s = 30.0;
        ref_in.flat = &nf;
        const CalibratedImage ref = calibrate(raw.cview(), 45.0, 60000.0, ref_in, cfg);
        EXPECT_GT(ref.n_saturated, 0u);
        EXPECT_GT(ref.n_flat_invalid, 0u);
        EXPECT_GT(ref.n_nonfinite, 0u);

        const double norm = flat_norm(enc.flat_view(), how);
        EXPECT_EQ(norm, nf.norm);
        CalibrationInputs in;
        in.dark = enc.dark_view();
        in.dark_exptime_s = 30.0;
        in.flat_pixels = enc.flat_view();
        in.flat_pixels_norm = norm;
        Image<float> response(w, 7, -1.f);
        in.flat_response_out = response.view();
        const CalibratedImage got = calibrate(enc.raw_view(), 45.0, 60000.0, in, cfg);
        expect_same(ref, got, "all encoded");
        EXPECT_EQ(0, std::memcmp(response.data(), nf.response.data(), response.size() * 4));

        // Without a response output; and mixed: float raw with the encoded masters, encoded
        // raw with the float masters (the night: masters read once, raw frames mapped).
        in.flat_response_out = ImageView<float>();
        expect_same(ref, calibrate(enc.raw_view(), 45.0, 60000.0, in, cfg), "no response out");
        expect_same(ref, calibrate(raw.cview(), 45.0, 60000.0, in, cfg), "float raw");
        expect_same(ref, calibrate(enc.raw_view(), 45.0, 60000.0, ref_in, cfg), "float masters");
        // In place over a float copy of the raw frame, encoded masters.
        Image<float> px = raw.clone();
        CalibratedImage ip = calibrate_in_place(px.view(), 45.0, 60000.0, in, cfg);
        ip.pixels = std::move(px);
        expect_same(ref, ip, "in place");
      }
    }
  }
  omp_set_num_threads(omp_get_num_procs());
}

TEST(CalibrateEncoded, DarkOnlyFlatOnlyAndNoSaturationLevel) {
  const Inputs enc = make_inputs(300, 5, 9);
  const Image<float> raw = decoded(enc.raw_view()), dark = decoded(enc.dark_view()),
                     flat = decoded(enc.flat_view());
  CalibrationConfig cfg;
  cfg.scale_dark_by_exptime = false;
  CalibrationInputs fd, ed;
  fd.dark = dark.cview();
  ed.dark = enc.dark_view();
  expect_same(calibrate(raw.cview(), 1.0, kNoSat, fd, cfg),
              calibrate(enc.raw_view(), 1.0, kNoSat, ed, cfg), "dark only");
  const NormalisedFlat nf = normalise_flat(flat.cview(), FlatNorm::kMax);
  CalibrationInputs ff, ef;
  ff.flat = &nf;
  ef.flat_pixels = enc.flat_view();
  ef.flat_pixels_norm = flat_norm(enc.flat_view(), FlatNorm::kMax);
  expect_same(calibrate(raw.cview(), 1.0, 65535.0, ff, cfg),
              calibrate(enc.raw_view(), 1.0, 65535.0, ef, cfg), "flat only");
}

TEST(CalibrateEncoded, BadEncodedInputsAreNamedErrors) {
  const Inputs enc = make_inputs(40, 6, 1);
  const Inputs small = make_inputs(20, 6, 1);
  CalibrationInputs in;
  in.flat_pixels = small.flat_view();
  in.flat_pixels_norm = 1.0;
  try {
    calibrate(enc.raw_view(), 1.0, kNoSat, in, {});
    ADD_FAILURE() << "no error";
  } catch (const CalibrationError& e) {
    EXPECT_NE(std::string(e.what()).find("flat is 20x6 but the science frame is 40x6"),
              std::string::npos)
        << e.what();
  }
  in.flat_pixels = enc.flat_view();
  in.flat_pixels_norm = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(calibrate(enc.raw_view(), 1.0, kNoSat, in, {}), CalibrationError);
  // A flat without a positive finite pixel has no norm.
  std::vector<unsigned char> zeros(4 * 40 * 6, 0);
  try {
    flat_norm(EncodedImageView(zeros.data(), 40, 6, PixelEncoding::kFitsFloat32), FlatNorm::kMax);
    ADD_FAILURE() << "no error";
  } catch (const CalibrationError& e) {
    EXPECT_NE(std::string(e.what()).find("flat has no positive finite pixel"), std::string::npos);
  }
}

}  // namespace
}  // namespace psfphot
