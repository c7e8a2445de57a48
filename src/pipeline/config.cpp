#include "psfphot/pipeline/config.hpp"

#include <toml++/toml.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "config_keys.hpp"

namespace psfphot::pipeline {
namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& p : v) s += (s.empty() ? "" : "\n") + p;
  return s;
}

std::string where(const toml::node& n) {
  const auto& src = n.source();
  return src.begin.line ? " (line " + std::to_string(src.begin.line) + ")" : "";
}

void apply_table(const toml::table& root, const std::string& origin, bool allow_night,
                 const std::vector<detail::Key>& keys, Config& cfg,
                 std::vector<std::string>& problems) {
  std::map<std::string, std::map<std::string, const detail::Key*>> by_section;
  for (const auto& k : keys) by_section[k.section][k.key] = &k;
  for (const auto& [sec_name, sec_node] : root) {
    const std::string sec(sec_name.str());
    auto it = by_section.find(sec);
    if (it == by_section.end()) {
      std::string known;
      for (const auto& [s, _] : by_section) known += (known.empty() ? "" : ", ") + s;
      problems.push_back(origin + ": unknown section [" + sec + "]" + where(sec_node) +
                         "; known sections: " + known);
      continue;
    }
    if (sec == "night" && !allow_night) {
      problems.push_back(origin + ": [night] belongs in a night config (psfphot run), not here");
      continue;
    }
    const auto* tbl = sec_node.as_table();
    if (!tbl) {
      problems.push_back(origin + ": " + sec + " must be a section ([" + sec + "])" +
                         where(sec_node));
      continue;
    }
    for (const auto& [key_name, val] : *tbl) {
      const std::string key(key_name.str());
      auto kit = it->second.find(key);
      if (kit == it->second.end()) {
        std::string known;
        for (const auto& [k, _] : it->second) known += (known.empty() ? "" : ", ") + k;
        problems.push_back(origin + ": unknown key " + sec + "." + key + where(val) +
                           "; known keys in [" + sec + "]: " + known);
        continue;
      }
      std::string err = kit->second->set(val, cfg);
      if (!err.empty())
        problems.push_back(origin + ": " + sec + "." + key + where(val) + ": " + err);
    }
  }
}

void validate(const Config& c, std::vector<std::string>& problems) {
  const auto& f = c.frame;
  if (f.centroid.window_px % 2 == 0)
    problems.push_back(c.source + ": centroid.window_px must be odd, got " +
                       std::to_string(f.centroid.window_px));
  if (f.moments.window_px % 2 == 0)
    problems.push_back(c.source + ": moments.window_px must be odd, got " +
                       std::to_string(f.moments.window_px));
  if (f.background.filter_size % 2 == 0)
    problems.push_back(c.source + ": background.filter_size must be odd, got " +
                       std::to_string(f.background.filter_size));
}

}  // namespace

ConfigError::ConfigError(std::vector<std::string> problems)
    : std::runtime_error(join(problems)), problems_(std::move(problems)) {}

Config load_config(const std::string& path, const std::vector<std::string>& overrides,
                   bool allow_night) {
  Config cfg;
  std::vector<std::string> problems;
  const auto keys = detail::registry();
  if (!path.empty()) {
    cfg.source = path;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
      throw ConfigError({path + ": config file does not exist"});
    try {
      toml::table t = toml::parse_file(path);
      apply_table(t, path, allow_night, keys, cfg, problems);
    } catch (const toml::parse_error& e) {
      throw ConfigError({path + ": TOML syntax error at line " +
                         std::to_string(e.source().begin.line) + ", column " +
                         std::to_string(e.source().begin.column) + ": " +
                         std::string(e.description())});
    }
    cfg.night.base_dir = std::filesystem::absolute(path).parent_path().string();
  } else {
    cfg.night.base_dir = std::filesystem::current_path().string();
  }
  for (const auto& o : overrides) {
    const auto eq = o.find('='), dot = o.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot > eq) {
      problems.push_back("--set " + o + ": expected section.key=value");
      continue;
    }
    const std::string sec = o.substr(0, dot), key = o.substr(dot + 1, eq - dot - 1),
                      val = o.substr(eq + 1);
    // Parse the value as TOML; a bare word is taken as a string for convenience.
    toml::table t;
    try {
      t = toml::parse("[" + sec + "]\n" + key + " = " + val);
    } catch (const toml::parse_error&) {
      try {
        std::ostringstream q;
        q << toml::value<std::string>(val);
        t = toml::parse("[" + sec + "]\n" + key + " = " + q.str());
      } catch (const toml::parse_error& e) {
        problems.push_back("--set " + o +
                           ": cannot parse the value: " + std::string(e.description()));
        continue;
      }
    }
    apply_table(t, "--set " + o, allow_night, keys, cfg, problems);
  }
  validate(cfg, problems);
  if (!problems.empty()) throw ConfigError(problems);
  return cfg;
}

std::string effective_config_toml(const Config& cfg, bool comments) {
  std::ostringstream o;
  std::string section;
  for (const auto& k : detail::registry()) {
    if (k.section != section) {
      o << (section.empty() ? "" : "\n") << "[" << k.section << "]\n";
      section = k.section;
    }
    if (comments) o << "# " << k.doc << (k.unit.empty() ? "" : " [" + k.unit + "]") << "\n";
    o << k.key << " = " << k.get(cfg) << "\n";
  }
  return o.str();
}

std::string config_reference_markdown() {
  std::ostringstream o;
  Config defaults;
  std::string section;
  for (const auto& k : detail::registry()) {
    if (k.section != section) {
      o << "\n### [" << k.section
        << "]\n\n| key | type | default | unit | meaning |\n|---|---|---|---|---|\n";
      section = k.section;
    }
    o << "| `" << k.key << "` | " << k.type << " | `" << k.get(defaults) << "` | " << k.unit
      << " | " << k.doc << " |\n";
  }
  return o.str();
}

}  // namespace psfphot::pipeline
