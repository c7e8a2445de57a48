#include "psfphot/core/header.hpp"

namespace psfphot {

std::string HeaderFacts::card(const std::string& key) const {
  for (const auto& c : cards) {
    if (c.key != key) continue;
    std::string v = c.value;
    // String values keep their FITS quotes in HeaderCard; strip them and the padding.
    if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') {
      v = v.substr(1, v.size() - 2);
      while (!v.empty() && v.back() == ' ') v.pop_back();
    }
    return v;
  }
  return {};
}

}  // namespace psfphot
