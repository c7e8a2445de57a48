#include "psfphot/pipeline/process_frame.hpp"

#include <chrono>
#include <exception>
#include <string_view>

#include "psfphot/pipeline/sky.hpp"
#include "psfphot/pipeline/steps.hpp"

namespace psfphot::pipeline {

namespace {

// release: the masters themselves when they are this frame's alone (dark and flat freed
// after calibration), else nullptr.
FrameResult run_steps(std::int64_t frame_id, const std::string& path, const FrameConfig& cfg,
                      const Masters& masters, Masters* release, FrameProducts* keep) {
  using clock = std::chrono::steady_clock;
  FrameResult r;
  r.frame_id = frame_id;
  r.path = path;
  FrameContext ctx(cfg, masters);
  ctx.keep_products = keep != nullptr;
  ctx.frame.id = frame_id;
  ctx.frame.path = path;
  const auto t_start = clock::now();
  r.status = FrameStatus::kOk;
  for (const auto& step : default_steps()) {
    const auto t0 = clock::now();
    try {
      step->run(ctx);
    } catch (const std::exception& e) {
      // The only catch of the per-frame pipeline: a bad frame becomes a value.
      r.status = step->failure_status();
      r.failed_step = step->name();
      r.message = e.what();
      // Every failure names its file (algorithms do not know it; io errors already do).
      if (r.message.find(path) == std::string::npos) r.message = path + ": " + r.message;
    } catch (...) {
      r.status = FrameStatus::kInternalError;
      r.failed_step = step->name();
      r.message = path + ": unknown exception";
    }
    r.timings.push_back(
        {step->name(), std::chrono::duration<double, std::milli>(clock::now() - t0).count()});
    if (!r.ok()) break;
    if (release && std::string_view(step->name()) == "calibrate") {
      // The flat's response stays: the photometry's photon noise needs it (PixelGain).
      release->dark = Image<float>();
      release->dark_mapped = FloatPlane();
      release->dark_mapping.reset();
      if (release->flat) release->flat->invalid = Image<MaskBits>();
    }
  }
  if (r.ok()) {
    // After the steps: sky positions need only the centroids and the header, and a WCS
    // psfphot cannot use leaves them NaN without failing the frame.
    const auto t0 = clock::now();
    log_sky_fill(path, fill_sky_coordinates(ctx.frame.header, ctx.stars));
    r.timings.push_back(
        {"sky", std::chrono::duration<double, std::milli>(clock::now() - t0).count()});
  }
  r.total_ms = std::chrono::duration<double, std::milli>(clock::now() - t_start).count();
  const auto& h = ctx.frame.header;
  r.summary.mjd_obs = h.mjd_obs;
  r.summary.exptime_s = h.exptime_s;
  r.summary.filter = h.filter;
  r.summary.psf_sigma_px = ctx.psf_sigma_px;
  r.summary.sky_adu = ctx.background.global_level;
  r.summary.sky_rms_adu = ctx.background.global_rms;
  r.summary.bias_adu = ctx.bias_adu;
  r.summary.dark_bias_adu = ctx.dark_bias_adu;
  r.summary.n_peaks = ctx.n_raw_peaks;
  if (r.ok()) r.stars = std::move(ctx.stars);
  if (keep) {
    keep->calibrated = std::move(ctx.calibrated);
    keep->background = std::move(ctx.background.level);
    keep->rms = std::move(ctx.background.rms_image);
    keep->mask = std::move(ctx.frame.mask);
    keep->header = ctx.frame.header;
  }
  return r;
}

}  // namespace

FrameResult process_frame(std::int64_t frame_id, const std::string& path, const FrameConfig& cfg,
                          const Masters& masters, FrameProducts* keep) {
  return run_steps(frame_id, path, cfg, masters, nullptr, keep);
}

FrameResult process_frame(std::int64_t frame_id, const std::string& path, const FrameConfig& cfg,
                          Masters&& masters, FrameProducts* keep) {
  return run_steps(frame_id, path, cfg, masters, &masters, keep);
}

}  // namespace psfphot::pipeline
