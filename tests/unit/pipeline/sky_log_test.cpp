// log_sky_fill: a WCS psfphot cannot use is warned about once per reason, its repeats (the
// same header keywords on every frame of a night) at debug level.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>
#include <string>

#include "psfphot/pipeline/sky.hpp"

namespace psfphot::pipeline {
namespace {

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

TEST(SkyLog, OneWarningPerReasonRepeatsAtDebug) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  sink->set_pattern("%l %v");
  auto logger = std::make_shared<spdlog::logger>("sky_log_test", sink);
  logger->set_level(spdlog::level::debug);
  const auto previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);
  SkyFill bad;
  bad.status = io::SkyWcsStatus::kUnsupported;
  bad.reason = "sky_log_test: RADESYS 'FK4' is not supported";
  SkyFill other = bad;
  other.reason = "sky_log_test: wcslib rejected CTYPE1";
  for (int i = 0; i < 3; ++i) log_sky_fill("frame" + std::to_string(i) + ".fits", bad);
  log_sky_fill("frame3.fits", other);
  SkyFill none;  // no WCS at all: debug only
  none.reason = "sky_log_test: no celestial WCS";
  log_sky_fill("frame4.fits", none);
  spdlog::set_default_logger(previous);
  const std::string text = out.str();
  EXPECT_EQ(count(text, "warning frame0.fits"), 1) << text;
  EXPECT_EQ(count(text, "debug frame1.fits"), 1) << text;
  EXPECT_EQ(count(text, "debug frame2.fits"), 1) << text;
  EXPECT_EQ(count(text, "warning frame3.fits"), 1) << text;  // another reason: warned
  EXPECT_EQ(count(text, "warning"), 2) << text;
  EXPECT_EQ(count(text, "debug frame4.fits"), 1) << text;
}

}  // namespace
}  // namespace psfphot::pipeline
