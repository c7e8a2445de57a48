#include "psfphot/pipeline/logging.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <vector>

namespace psfphot::pipeline {

void setup_logging(int rank, LogLevel level, const std::string& log_file) {
  std::vector<spdlog::sink_ptr> sinks;
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  // Only rank 0 talks on the terminal; other ranks report warnings there and keep the
  // rest in their own log file.
  if (rank != 0) console->set_level(spdlog::level::warn);
  sinks.push_back(console);
  if (!log_file.empty()) {
    sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_file, false));
  }
  auto logger = std::make_shared<spdlog::logger>("psfphot", sinks.begin(), sinks.end());
  logger->set_pattern("[%H:%M:%S] [rank " + std::to_string(rank) + "] [%^%l%$] %v");
  switch (level) {
    case LogLevel::kQuiet:
      console->set_level(spdlog::level::warn);
      logger->set_level(spdlog::level::info);
      break;
    case LogLevel::kInfo: logger->set_level(spdlog::level::info); break;
    case LogLevel::kDebug: logger->set_level(spdlog::level::debug); break;
  }
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace psfphot::pipeline
