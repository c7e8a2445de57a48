#include "psfphot/algo/overscan.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <stdexcept>

#include "psfphot/algo/stats.hpp"

namespace psfphot {
namespace {

struct Range {
  bool all = false;  // "*"
  long a = 0, b = 0;
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (std::isspace(static_cast<unsigned char>(s.front())) || s.front() == '\''))
    s.remove_prefix(1);
  while (!s.empty() && (std::isspace(static_cast<unsigned char>(s.back())) || s.back() == '\''))
    s.remove_suffix(1);
  return s;
}

bool parse_long(std::string_view s, long& v) {
  s = trim(s);
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// "" or the reason; fills x and y.
std::string parse_ranges(std::string_view text, Range& x, Range& y) {
  std::string_view s = trim(text);
  if (s.size() < 2 || s.front() != '[' || s.back() != ']')
    return "expected [x1:x2,y1:y2] (1-based, inclusive)";
  s = s.substr(1, s.size() - 2);
  const auto comma = s.find(',');
  if (comma == std::string_view::npos || s.find(',', comma + 1) != std::string_view::npos)
    return "expected two ranges separated by one comma, [x1:x2,y1:y2]";
  auto one = [](std::string_view r, Range& out) {
    r = trim(r);
    if (r == "*") {
      out.all = true;
      return true;
    }
    const auto colon = r.find(':');
    if (colon == std::string_view::npos) return false;
    return parse_long(r.substr(0, colon), out.a) && parse_long(r.substr(colon + 1), out.b);
  };
  if (!one(s.substr(0, comma), x) || !one(s.substr(comma + 1), y))
    return "each range must be first:last (integers) or *";
  for (const Range* r : {&x, &y})
    if (!r->all && (r->a < 1 || r->b < 1)) return "pixel numbers start at 1";
  return "";
}

}  // namespace

std::string section_syntax_error(std::string_view text) {
  Range x, y;
  return parse_ranges(text, x, y);
}

PixelBox parse_section(std::string_view text, int width, int height) {
  Range x, y;
  const std::string why = parse_ranges(text, x, y);
  const std::string quoted = "section '" + std::string(text) + "'";
  if (!why.empty()) throw std::invalid_argument(quoted + ": " + why);
  auto to_half_open = [&](const Range& r, int n, const char* axis, int& lo, int& hi) {
    if (r.all) {
      lo = 0;
      hi = n;
      return;
    }
    const long a = std::min(r.a, r.b), b = std::max(r.a, r.b);
    if (b > n)
      throw std::invalid_argument(quoted + ": " + axis + " reaches " + std::to_string(b) +
                                  " but the frame has " + std::to_string(n));
    lo = static_cast<int>(a - 1);
    hi = static_cast<int>(b);
  };
  PixelBox box;
  to_half_open(x, width, "x", box.x0, box.x1);
  to_half_open(y, height, "y", box.y0, box.y1);
  return box;
}

RawSections raw_sections(const HeaderFacts& header, int width, int height,
                         const OverscanConfig& cfg) {
  RawSections out;
  // "header": the card, none when absent; "none" or empty: none; else the section itself.
  auto resolve = [&](const std::string& setting, const char* card, const char* key) {
    const bool from_header = setting == "header";
    const std::string text = from_header ? header.card(card) : setting;
    if (text.empty() || text == "none") return PixelBox{};
    try {
      return parse_section(text, width, height);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string(from_header ? card : key) + " " + e.what());
    }
  };
  if (cfg.mode != OverscanMode::kNone)
    out.bias = resolve(cfg.bias_section, "BIASSEC", "calibration.bias_section");
  out.trim = resolve(cfg.trim_section, "TRIMSEC", "calibration.trim_section");
  if (out.trim == PixelBox{0, 0, width, height}) out.trim = PixelBox{};
  return out;
}

OverscanLevels measure_overscan(ImageView<const float> strip, const PixelBox& bias, int frame_width,
                                int frame_height, OverscanMode mode) {
  if (mode == OverscanMode::kNone) throw std::invalid_argument("measure_overscan: mode is none");
  if (bias.empty() || bias.x0 < 0 || bias.y0 < 0 || bias.x1 > frame_width || bias.y1 > frame_height)
    throw std::invalid_argument("overscan section is empty or outside the frame");
  if (strip.width() != bias.width() || strip.height() != bias.height())
    throw std::invalid_argument("overscan strip's shape differs from its section");
  OverscanLevels lv;
  // A strip spanning every row of the frame (serial overscan, read after each row) has one
  // level per row; one spanning every column (parallel overscan), per column; a strip that
  // spans neither (or both) is judged by its shape, narrower than tall meaning per row. (By
  // shape alone, a serial strip of a windowed readout wider than tall would get per-column
  // levels: a bias drifting along the rows would then be missed.)
  const bool all_rows = bias.y0 == 0 && bias.y1 == frame_height;
  const bool all_cols = bias.x0 == 0 && bias.x1 == frame_width;
  lv.per_row = all_rows != all_cols ? all_rows : bias.width() <= bias.height();
  std::vector<float> all;
  all.reserve(static_cast<std::size_t>(bias.width()) * bias.height());
  for (int y = 0; y < strip.height(); ++y)
    for (int x = 0; x < strip.width(); ++x)
      if (std::isfinite(strip(x, y))) all.push_back(strip(x, y));
  if (all.empty()) throw std::invalid_argument("overscan section has no finite pixel");
  lv.n_pixels = all.size();
  lv.median_adu = median_inplace(all);
  const float frame_level = static_cast<float>(lv.median_adu);
  lv.level.assign(static_cast<std::size_t>(lv.per_row ? frame_height : frame_width), frame_level);
  if (mode == OverscanMode::kLine) {
    std::vector<float> line;
    const int n_lines = lv.per_row ? strip.height() : strip.width();
    const int first = lv.per_row ? bias.y0 : bias.x0;
    for (int k = 0; k < n_lines; ++k) {
      line.clear();
      const int len = lv.per_row ? strip.width() : strip.height();
      for (int t = 0; t < len; ++t) {
        const float v = lv.per_row ? strip(t, k) : strip(k, t);
        if (std::isfinite(v)) line.push_back(v);
      }
      if (!line.empty())
        lv.level[static_cast<std::size_t>(first + k)] = static_cast<float>(median_inplace(line));
    }
  }
  return lv;
}

void subtract_overscan_rows(float* rows, int width, int y0, int n, const OverscanLevels& lv) {
  for (int j = 0; j < n; ++j) {
    float* r = rows + static_cast<std::size_t>(j) * width;
    if (lv.per_row) {
      const float l = lv.level[static_cast<std::size_t>(y0 + j)];
      for (int x = 0; x < width; ++x) r[x] -= l;
    } else {
      for (int x = 0; x < width; ++x) r[x] -= lv.level[static_cast<std::size_t>(x)];
    }
  }
}

void mask_outside(ImageView<MaskBits> mask, const PixelBox& keep, MaskBits bit) {
  if (keep.empty()) return;  // no trim section (RawSections' convention), not "keep nothing"
  for (int y = 0; y < mask.height(); ++y) {
    MaskBits* m = mask.row(y);
    if (y < keep.y0 || y >= keep.y1) {
      for (int x = 0; x < mask.width(); ++x) m[x] |= bit;
      continue;
    }
    for (int x = 0; x < std::min(keep.x0, mask.width()); ++x) m[x] |= bit;
    for (int x = std::max(0, keep.x1); x < mask.width(); ++x) m[x] |= bit;
  }
}

}  // namespace psfphot
