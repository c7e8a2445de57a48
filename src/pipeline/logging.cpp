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
  std::shared_ptr<spdlog::sinks::basic_file_sink_mt> file;
  if (!log_file.empty()) {
    file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_file, false);
    sinks.push_back(file);
  }
  auto logger = std::make_shared<spdlog::logger>("psfphot", sinks.begin(), sinks.end());
  const std::string who = "[rank " + std::to_string(rank) + "] ";
  logger->set_pattern("[%H:%M:%S] " + who + "[%^%l%$] %v");
  // The files carry the date and milliseconds: they outlive the terminal, and the
  // start-up and closing phases of a night are a fraction of a second each.
  if (file) file->set_pattern("[%Y-%m-%d %H:%M:%S.%e %z] " + who + "[%l] %v");
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

void setup_command_logging() {
  auto logger = std::make_shared<spdlog::logger>(
      "psfphot", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  logger->set_pattern("psfphot: [%^%l%$] %v");
  logger->set_level(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace psfphot::pipeline
