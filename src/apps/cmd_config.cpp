// psfphot config: the configuration keys (defaults as TOML, reference as Markdown) and a
// validity check of a config file.
#include <iostream>

#include "commands.hpp"
#include "psfphot/pipeline/config.hpp"

namespace psfphot::apps {

void add_config_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("config", "Show the configuration keys, or check a config file");
  cmd->require_subcommand(1);
  auto* defaults =
      cmd->add_subcommand("defaults", "every key with its default, meaning and unit (TOML)");
  defaults->callback([&exit_code]() {
    pipeline::Config c;
    std::cout << "# psfphot configuration: every key with its default (psfphot config defaults)\n"
                 "# Units in brackets; 0-based pixel coordinates. Unknown keys are errors.\n\n"
              << pipeline::effective_config_toml(c, true);
    exit_code = kExitOk;
  });
  auto* ref =
      cmd->add_subcommand("reference", "every key as a Markdown table (docs/configuration.md)");
  ref->callback([&exit_code]() {
    std::cout << pipeline::config_reference_markdown();
    exit_code = kExitOk;
  });
  auto file = std::make_shared<std::string>();
  auto sets = std::make_shared<std::vector<std::string>>();
  auto* check =
      cmd->add_subcommand("check", "validate a config file and print the effective configuration");
  check->add_option("file", *file, "config file (TOML)")->required();
  check->add_option("--set", *sets, "override: section.key=value");
  check->callback([file, sets, &exit_code]() {
    try {
      pipeline::Config c = pipeline::load_config(*file, *sets, true);
      std::cout << pipeline::effective_config_toml(c);
      exit_code = kExitOk;
    } catch (const pipeline::ConfigError& e) {
      std::cerr << "psfphot config check: invalid configuration:\n";
      for (const auto& p : e.problems()) std::cerr << "  " << p << "\n";
      exit_code = kExitUsage;
    }
  });
}

}  // namespace psfphot::apps
