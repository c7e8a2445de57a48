#pragma once
// Internal: the registry of configuration keys shared by config.cpp and its tests.
#include <toml++/toml.h>

#include <functional>
#include <string>
#include <vector>

#include "psfphot/pipeline/config.hpp"

namespace psfphot::pipeline::detail {

struct Key {
  std::string section, key, type, unit, doc;
  // Sets the value from a TOML node; returns "" or a description of the problem.
  std::function<std::string(const toml::node&, Config&)> set;
  // The current value as TOML text.
  std::function<std::string(const Config&)> get;
};

// Built on each call (cheap): no function-static state.
std::vector<Key> registry();

}  // namespace psfphot::pipeline::detail
