#pragma once
// Internal to src/pipeline (not installed): the builders of config_keys.cpp's entries, one
// per kind of key (float, integer, bool, string, choice, string list, rectangles, image
// section). Each returns a Key whose set() parses and range-checks a TOML node into one field
// of Config, and whose get() prints the field back as TOML.
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "config_keys.hpp"

namespace psfphot::pipeline::detail::builders {

inline std::string fmt_double(double v) {
  if (std::isnan(v)) return "nan";
  char b[64];
  std::snprintf(b, sizeof b, "%.10g", v);
  std::string s = b;
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}
inline std::string quote(const std::string& s) {
  std::ostringstream o;
  o << toml::value<std::string>(s);
  return o.str();
}

template <class Ref>
Key dbl(const char* sec, const char* key, const char* unit, double lo, double hi, const char* doc,
        Ref ref, bool allow_nan = false) {
  Key k{sec, key, "float", unit, doc, nullptr, nullptr};
  k.set = [=](const toml::node& n, Config& c) -> std::string {
    std::optional<double> v = n.value<double>();
    if (!v || !(n.is_floating_point() || n.is_integer())) return "expected a number";
    if (std::isnan(*v) && allow_nan) {
      ref(c) = *v;
      return "";
    }
    if (!(*v >= lo && *v <= hi)) {
      return "value " + fmt_double(*v) + " is out of range [" + fmt_double(lo) + ", " +
             fmt_double(hi) + "]";
    }
    ref(c) = *v;
    return "";
  };
  k.get = [=](const Config& c) { return fmt_double(ref(const_cast<Config&>(c))); };
  return k;
}

template <class Ref>
Key integer(const char* sec, const char* key, const char* unit, long lo, long hi, const char* doc,
            Ref ref) {
  Key k{sec, key, "integer", unit, doc, nullptr, nullptr};
  k.set = [=](const toml::node& n, Config& c) -> std::string {
    if (!n.is_integer()) return "expected an integer";
    long v = static_cast<long>(*n.value<int64_t>());
    if (v < lo || v > hi)
      return "value " + std::to_string(v) + " is out of range [" + std::to_string(lo) + ", " +
             std::to_string(hi) + "]";
    ref(c) = static_cast<std::remove_reference_t<decltype(ref(c))>>(v);
    return "";
  };
  k.get = [=](const Config& c) { return std::to_string(ref(const_cast<Config&>(c))); };
  return k;
}

template <class Ref>
Key boolean(const char* sec, const char* key, const char* doc, Ref ref) {
  Key k{sec, key, "bool", "", doc, nullptr, nullptr};
  k.set = [=](const toml::node& n, Config& c) -> std::string {
    if (!n.is_boolean()) return "expected true or false";
    ref(c) = *n.value<bool>();
    return "";
  };
  k.get = [=](const Config& c) {
    return std::string(ref(const_cast<Config&>(c)) ? "true" : "false");
  };
  return k;
}

template <class Ref>
Key string(const char* sec, const char* key, const char* doc, Ref ref) {
  Key k{sec, key, "string", "", doc, nullptr, nullptr};
  k.set = [=](const toml::node& n, Config& c) -> std::string {
    if (!n.is_string()) return "expected a string";
    ref(c) = *n.value<std::string>();
    return "";
  };
  k.get = [=](const Config& c) { return quote(ref(const_cast<Config&>(c))); };
  return k;
}

// An IRAF image section "[x1:x2,y1:y2]", or "header" (the frame's card) or "none"; the
// syntax is checked here, the bounds against each frame.
template <class Ref>
Key section(const char* sec, const char* key, const char* doc, Ref ref) {
  Key k{sec, key, "string: header|none|[x1:x2,y1:y2]", "", doc, nullptr, nullptr};
  k.set = [=](const toml::node& n, Config& c) -> std::string {
    if (!n.is_string()) return "expected a string: header, none or [x1:x2,y1:y2]";
    const std::string& v = n.as_string()->get();
    if (v != "header" && v != "none") {
      const std::string why = section_syntax_error(v);
      if (!why.empty()) return "\"" + v + "\": " + why + ", or header or none";
    }
    ref(c) = v;
    return "";
  };
  k.get = [=](const Config& c) { return quote(ref(const_cast<Config&>(c))); };
  return k;
}

// A string key with a fixed set of choices mapped onto an enum (or string) field.
template <class E, class Ref>
Key choice(const char* sec, const char* key, const char* doc,
           std::vector<std::pair<std::string, E>> choices, Ref ref) {
  std::string names;
  for (auto& [n, v] : choices) names += (names.empty() ? "" : "|") + n;
  Key k{sec, key, "string: " + names, "", doc, nullptr, nullptr};
  k.set = [=](const toml::node& n, Config& c) -> std::string {
    if (!n.is_string()) return "expected a string, one of " + names;
    const std::string s = *n.value<std::string>();
    for (auto& [nm, v] : choices)
      if (nm == s) {
        ref(c) = v;
        return "";
      }
    return "unknown value \"" + s + "\" (expected one of " + names + ")";
  };
  k.get = [=](const Config& c) {
    for (auto& [nm, v] : choices)
      if (v == ref(const_cast<Config&>(c))) return quote(nm);
    return quote("?");
  };
  return k;
}

template <class Ref>
Key strings(const char* sec, const char* key, const char* doc, Ref ref) {
  Key k{sec, key, "array of strings", "", doc, nullptr, nullptr};
  k.set = [=](const toml::node& n, Config& c) -> std::string {
    std::vector<std::string> out;
    if (n.is_string()) {
      out.push_back(*n.value<std::string>());
    } else if (const auto* a = n.as_array()) {
      for (const auto& e : *a) {
        if (!e.is_string()) return "expected an array of strings";
        out.push_back(*e.value<std::string>());
      }
    } else {
      return "expected a string or an array of strings";
    }
    ref(c) = out;
    return "";
  };
  k.get = [=](const Config& c) {
    std::string s = "[";
    for (const auto& v : ref(const_cast<Config&>(c))) s += (s.size() > 1 ? ", " : "") + quote(v);
    return s + "]";
  };
  return k;
}

template <class Ref>
Key rects(const char* sec, const char* key, const char* doc, Ref ref) {
  Key k{sec, key, "array of [x0, y0, x1, y1]", "px", doc, nullptr, nullptr};
  k.set = [=](const toml::node& n, Config& c) -> std::string {
    const auto* a = n.as_array();
    if (!a) return "expected an array of [x0, y0, x1, y1] rectangles";
    std::vector<Rect> out;
    for (const auto& e : *a) {
      const auto* r = e.as_array();
      if (!r || r->size() != 4) return "each rectangle must be [x0, y0, x1, y1]";
      int v[4];
      for (int i = 0; i < 4; ++i) {
        if (!(*r)[i].is_integer()) return "rectangle corners must be integers";
        v[i] = static_cast<int>(*(*r)[i].value<int64_t>());
      }
      if (v[2] < v[0] || v[3] < v[1]) return "rectangle has x1 < x0 or y1 < y0";
      out.push_back({v[0], v[1], v[2], v[3]});
    }
    ref(c) = out;
    return "";
  };
  k.get = [=](const Config& c) {
    std::string s = "[";
    for (const auto& r : ref(const_cast<Config&>(c)))
      s += (s.size() > 1 ? ", " : "") + std::string("[") + std::to_string(r.x0) + ", " +
           std::to_string(r.y0) + ", " + std::to_string(r.x1) + ", " + std::to_string(r.y1) + "]";
    return s + "]";
  };
  return k;
}

}  // namespace psfphot::pipeline::detail::builders
