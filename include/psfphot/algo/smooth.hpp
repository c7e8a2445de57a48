#pragma once
// Matched-filter smoothing for detection: separable convolution with a normalised
// Gaussian. On white noise of per-pixel RMS s the smoothed image has RMS
// s * noise_factor(sigma), so a k-sigma threshold on the smoothed image is a k-sigma
// threshold in the matched-filter S/N (Irwin 1985; SExtractor's FILTER step).
// Pixels with any of `exclude_bits` in the mask (and non-finite pixels) count as 0.
// Thread-safety: pure; OpenMP over rows; deterministic.
#include <functional>
#include <vector>

#include "psfphot/core/image.hpp"
#include "psfphot/core/mask.hpp"

namespace psfphot {

// Normalised 1-D Gaussian taps, half-width ceil(3 sigma) (sum = 1).
std::vector<float> gaussian_taps(double sigma_px);

// sqrt(sum of squared 2-D kernel weights): the noise ratio smoothed / raw for white noise.
double smoothing_noise_factor(double sigma_px, bool lowered = false);

// sigma_px <= 0 returns a copy with excluded pixels zeroed.
// `lowered` = true convolves with the zero-sum "lowered" Gaussian of DAOFIND (Stetson
// 1987, PASP 99, 191): K = G - 1/n over the (2r+1)^2 window, computed as the Gaussian
// convolution minus the box mean. A smooth pedestal (galaxy wings, sky gradients) then
// contributes nothing, so noise bumps on extended emission are not taken for stars.
Image<float> gaussian_smooth(ImageView<const float> image, ImageView<const MaskBits> mask,
                             MaskBits exclude_bits, double sigma_px, bool lowered = false);

// The same smoothing streamed row by row, for callers that consume the smoothed image as
// it is made (find_peaks_smoothed) instead of keeping a full-frame image: run(y0, y1, sink)
// calls sink(y, row) for y = y0 .. y1 - 1 in order, `row` (width floats) valid during the
// call and until row y + kKeep - kGroup has been passed (so a sink may still read the rows it
// was given just before: find_peaks_smoothed's 3x3 test reads rows y - 2 .. y in place). Every row
// has exactly the bits of the same row of gaussian_smooth with the same arguments, whatever range
// it is asked in. Method: the input rows a range needs are cleaned, convolved along x and
// box-summed (in float, symmetric taps in pairs) once each into rings of 2r + 1 + kGroup rows (r =
// the kernel half-width), and each output row is summed down its column from the rings (four rows
// at a time where their windows are full); memory O(width x kernel), not O(image).
// Thread-safety: one streamer per thread (it owns its buffers); the image must outlive it.
class SmoothRowStreamer {
 public:
  static constexpr int kGroup = 4;  // output rows summed together
  static constexpr int kKeep = 8;   // rows kept for the sink (see run)
  SmoothRowStreamer(ImageView<const float> image, ImageView<const MaskBits> mask,
                    MaskBits exclude_bits, double sigma_px, bool lowered = false);
  void run(int y0, int y1, const std::function<void(int, const float*)>& sink);
  // The same rows written straight into out's rows y0 .. y1 - 1 (out as wide as the image;
  // throws std::invalid_argument for a view that cannot hold them).
  void run_into(int y0, int y1, ImageView<float> out);

 private:
  void clean_row(int y, float* o) const;
  void run_impl(int y0, int y1, const std::function<void(int, const float*)>* sink,
                ImageView<float> out);
  ImageView<const float> image_;
  ImageView<const MaskBits> mask_;
  MaskBits exclude_bits_;
  bool lowered_;
  std::vector<float> taps_;
  int rad_ = 0;
  int ring_ = 0;
  int lead_ = 0;                              // zeros before (and after) the cleaned row in cl_
  static constexpr std::size_t kRowPad = 16;  // floats (one cache line) after each ring row
  std::size_t stride_ = 0;                    // floats from one ring row to the next
  std::vector<float> cl_, hg_, hb_, row_;
  std::vector<const float*> gp_, bp_;
};

}  // namespace psfphot
