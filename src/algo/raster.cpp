#include "psfphot/algo/raster.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace psfphot {

namespace {

// Finite pixels on a regular grid, at most about `max_samples` of them, sorted.
std::vector<double> sample_sorted(ImageView<const float> img, int max_samples) {
  std::vector<double> v;
  if (img.empty()) return v;
  const double n = static_cast<double>(img.size());
  const int step =
      std::max(1, static_cast<int>(std::ceil(std::sqrt(n / std::max(1, max_samples)))));
  for (int y = step / 2; y < img.height(); y += step)
    for (int x = step / 2; x < img.width(); x += step) {
      const float p = img(x, y);
      if (std::isfinite(p)) v.push_back(p);
    }
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

StretchLimits zscale_limits(ImageView<const float> img, const ZscaleConfig& cfg) {
  const std::vector<double> s = sample_sorted(img, cfg.max_samples);
  if (s.empty()) return {0, 1};
  const int n = static_cast<int>(s.size());
  const double zmin = s.front(), zmax = s.back();
  const double centre = (n - 1) / 2.0;
  const double median =
      n % 2 ? s[static_cast<std::size_t>(n / 2)]
            : 0.5 * (s[static_cast<std::size_t>(n / 2 - 1)] + s[static_cast<std::size_t>(n / 2)]);
  // Least-squares line through (i - centre, s[i]) with kappa-sigma rejection.
  std::vector<char> good(static_cast<std::size_t>(n), 1);
  int ngood = n;
  const int min_good = std::max(5, static_cast<int>(cfg.min_fraction * n));
  double slope = 0;
  for (int it = 0; it <= cfg.max_iter && ngood >= min_good; ++it) {
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < n; ++i) {
      if (!good[static_cast<std::size_t>(i)]) continue;
      const double x = i - centre, y = s[static_cast<std::size_t>(i)];
      sx += x;
      sy += y;
      sxx += x * x;
      sxy += x * y;
    }
    const double den = ngood * sxx - sx * sx;
    if (den <= 0) break;
    slope = (ngood * sxy - sx * sy) / den;
    const double icpt = (sy - slope * sx) / ngood;
    double ss = 0;
    for (int i = 0; i < n; ++i) {
      if (!good[static_cast<std::size_t>(i)]) continue;
      const double r = s[static_cast<std::size_t>(i)] - (icpt + slope * (i - centre));
      ss += r * r;
    }
    const double sigma = std::sqrt(ss / std::max(1, ngood - 1));
    int rejected = 0;
    for (int i = 0; i < n; ++i) {
      if (!good[static_cast<std::size_t>(i)]) continue;
      const double r = s[static_cast<std::size_t>(i)] - (icpt + slope * (i - centre));
      if (std::abs(r) > cfg.reject_kappa * sigma) {
        good[static_cast<std::size_t>(i)] = 0;
        ++rejected;
      }
    }
    ngood -= rejected;
    if (rejected == 0) break;
  }
  if (ngood < min_good || !(slope >= 0)) return {zmin, zmax > zmin ? zmax : zmin + 1};
  const double sl = slope / (cfg.contrast > 0 ? cfg.contrast : 1.0);
  StretchLimits lim{std::max(zmin, median - centre * sl),
                    std::min(zmax, median + (n - centre) * sl)};
  if (!(lim.hi > lim.lo)) lim = {zmin, zmax > zmin ? zmax : zmin + 1};
  return lim;
}

StretchLimits percentile_limits(ImageView<const float> img, double lo_pct, double hi_pct,
                                int max_samples) {
  const std::vector<double> s = sample_sorted(img, max_samples);
  if (s.empty()) return {0, 1};
  auto at = [&](double pct) {
    const double pos = std::clamp(pct, 0.0, 100.0) / 100.0 * static_cast<double>(s.size() - 1);
    return s[static_cast<std::size_t>(std::lround(pos))];
  };
  StretchLimits lim{at(lo_pct), at(hi_pct)};
  if (!(lim.hi > lim.lo)) lim.hi = lim.lo + 1;
  return lim;
}

RgbImage render_grey(ImageView<const float> img, StretchLimits lim, Stretch stretch,
                     double asinh_softening) {
  RgbImage out(img.width(), img.height());
  const double range = lim.hi > lim.lo ? lim.hi - lim.lo : 1.0;
  const double a = asinh_softening > 0 ? asinh_softening : 0.1;
  const double norm = std::asinh(1.0 / a);
  for (int y = 0; y < img.height(); ++y)
    for (int x = 0; x < img.width(); ++x) {
      const float p = img(x, y);
      if (!std::isfinite(p)) {
        out(x, y) = Rgb{0, 0, 96};
        continue;
      }
      double t = std::clamp((p - lim.lo) / range, 0.0, 1.0);
      if (stretch == Stretch::kAsinh) t = std::asinh(t / a) / norm;
      const auto g = static_cast<std::uint8_t>(std::lround(255.0 * std::clamp(t, 0.0, 1.0)));
      out(x, y) = Rgb{g, g, g};
    }
  return out;
}

void flip_rows(RgbImage& img) {
  for (int y = 0; y < img.height() / 2; ++y)
    for (int x = 0; x < img.width(); ++x) std::swap(img(x, y), img(x, img.height() - 1 - y));
}

void set_pixel(RgbImage& img, int x, int y, Rgb c) {
  if (x >= 0 && y >= 0 && x < img.width() && y < img.height()) img(x, y) = c;
}

void draw_circle(RgbImage& img, double cx, double cy, double r, Rgb c, int thickness) {
  // Every pixel whose centre lies within half a pixel of a ring of the circle.
  const double r_out = r + 0.5, r_in = std::max(0.0, r - thickness + 0.5);
  const int x0 = static_cast<int>(std::floor(cx - r_out)),
            x1 = static_cast<int>(std::ceil(cx + r_out));
  const int y0 = static_cast<int>(std::floor(cy - r_out)),
            y1 = static_cast<int>(std::ceil(cy + r_out));
  for (int y = std::max(0, y0); y <= std::min(img.height() - 1, y1); ++y)
    for (int x = std::max(0, x0); x <= std::min(img.width() - 1, x1); ++x) {
      const double d = std::hypot(x - cx, y - cy);
      if (d < r_out && d >= r_in) img(x, y) = c;
    }
}

void draw_cross(RgbImage& img, double cx, double cy, int half, Rgb c, int gap) {
  const int x = static_cast<int>(std::lround(cx)), y = static_cast<int>(std::lround(cy));
  for (int d = gap; d <= half; ++d) {
    if (d == 0) {
      set_pixel(img, x, y, c);
      continue;
    }
    set_pixel(img, x + d, y, c);
    set_pixel(img, x - d, y, c);
    set_pixel(img, x, y + d, c);
    set_pixel(img, x, y - d, c);
  }
}

void draw_rect(RgbImage& img, int x0, int y0, int x1, int y1, Rgb c) {
  for (int x = x0; x <= x1; ++x) {
    set_pixel(img, x, y0, c);
    set_pixel(img, x, y1, c);
  }
  for (int y = y0; y <= y1; ++y) {
    set_pixel(img, x0, y, c);
    set_pixel(img, x1, y, c);
  }
}

void fill_rect(RgbImage& img, int x0, int y0, int x1, int y1, Rgb c) {
  for (int y = std::max(0, y0); y <= std::min(img.height() - 1, y1); ++y)
    for (int x = std::max(0, x0); x <= std::min(img.width() - 1, x1); ++x) img(x, y) = c;
}

void draw_line(RgbImage& img, int x0, int y0, int x1, int y1, Rgb c) {
  const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
  const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  for (;;) {
    set_pixel(img, x0, y0, c);
    if (x0 == x1 && y0 == y1) break;
    const int e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      x0 += sx;
    }
    if (e2 <= dx) {
      err += dx;
      y0 += sy;
    }
  }
}

void outline_mask(RgbImage& img, ImageView<const MaskBits> mask, MaskBits bits, Rgb c) {
  auto in = [&](int x, int y) { return (mask(x, y) & bits) != 0; };
  for (int y = 0; y < mask.height(); ++y)
    for (int x = 0; x < mask.width(); ++x) {
      if (!in(x, y)) continue;
      const bool edge = x == 0 || y == 0 || x == mask.width() - 1 || y == mask.height() - 1;
      if (edge || !in(x - 1, y) || !in(x + 1, y) || !in(x, y - 1) || !in(x, y + 1))
        set_pixel(img, x, y, c);
    }
}

namespace {

struct Glyph {
  char ch;
  const char* bits;  // 5 rows of 3 columns, '1' = ink
};
constexpr Glyph kFont[] = {
    {'0', "111101101101111"}, {'1', "010110010010111"}, {'2', "111001111100111"},
    {'3', "111001111001111"}, {'4', "101101111001001"}, {'5', "111100111001111"},
    {'6', "111100111101111"}, {'7', "111001001010010"}, {'8', "111101111101111"},
    {'9', "111101111001111"}, {'A', "010101111101101"}, {'B', "110101110101110"},
    {'C', "011100100100011"}, {'D', "110101101101110"}, {'E', "111100110100111"},
    {'F', "111100110100100"}, {'G', "011100101101011"}, {'H', "101101111101101"},
    {'I', "111010010010111"}, {'J', "001001001101010"}, {'K', "101101110101101"},
    {'L', "100100100100111"}, {'M', "101111111101101"}, {'N', "110101101101101"},
    {'O', "010101101101010"}, {'P', "110101110100100"}, {'Q', "010101101110011"},
    {'R', "110101110101101"}, {'S', "011100010001110"}, {'T', "111010010010010"},
    {'U', "101101101101111"}, {'V', "101101101101010"}, {'W', "101101111111101"},
    {'X', "101101010101101"}, {'Y', "101101010010010"}, {'Z', "111001010100111"},
    {'.', "000000000000010"}, {'-', "000000111000000"}, {':', "000010000010000"},
    {'/', "001001010100100"}, {'(', "010100100100010"}, {')', "010001001001010"},
    {',', "000000000010100"}, {'=', "000111000111000"}, {'+', "000010111010000"},
    {'_', "000000000000111"}, {'%', "101001010100101"},
};

const char* glyph(char ch) {
  if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
  for (const auto& g : kFont)
    if (g.ch == ch) return g.bits;
  return nullptr;
}

}  // namespace

int text_width(std::string_view text, int scale) {
  return text.empty() ? 0 : static_cast<int>(text.size()) * 4 * scale - scale;
}

int draw_text(RgbImage& img, int x, int y, std::string_view text, Rgb c, int scale) {
  int pen = x;
  for (char ch : text) {
    if (const char* g = glyph(ch)) {
      for (int row = 0; row < 5; ++row)
        for (int col = 0; col < 3; ++col)
          if (g[row * 3 + col] == '1')
            fill_rect(img, pen + col * scale, y + row * scale, pen + col * scale + scale - 1,
                      y + row * scale + scale - 1, c);
    }
    pen += 4 * scale;
  }
  return pen - x - (text.empty() ? 0 : scale);
}

RgbImage upscale(const RgbImage& img, int factor) {
  factor = std::max(1, factor);
  RgbImage out(img.width() * factor, img.height() * factor);
  for (int y = 0; y < out.height(); ++y)
    for (int x = 0; x < out.width(); ++x) out(x, y) = img(x / factor, y / factor);
  return out;
}

void blit(RgbImage& dst, const RgbImage& src, int x, int y) {
  for (int j = 0; j < src.height(); ++j)
    for (int i = 0; i < src.width(); ++i) set_pixel(dst, x + i, y + j, src(i, j));
}

namespace {

std::string tick_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

}  // namespace

RgbImage plot_series(const std::vector<double>& x, const std::vector<double>& y, int w, int h,
                     std::string_view title, Rgb c, PlotLayout* layout) {
  if (x.size() != y.size()) throw std::invalid_argument("plot_series: x and y differ in size");
  if (w < 80 || h < 60) throw std::invalid_argument("plot_series: raster smaller than 80 x 60");
  RgbImage img(w, h, colour::kWhite);
  PlotLayout L;
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) continue;
    xmin = std::min(xmin, x[i]);
    xmax = std::max(xmax, x[i]);
    ymin = std::min(ymin, y[i]);
    ymax = std::max(ymax, y[i]);
  }
  if (!(xmin <= xmax)) xmin = 0, xmax = 1, ymin = 0, ymax = 1;
  if (xmax == xmin) xmin -= 0.5, xmax += 0.5;
  if (ymax == ymin) {
    const double pad = ymin == 0 ? 1.0 : std::abs(ymin) * 0.05;
    ymin -= pad;
    ymax += pad;
  }
  const std::string ylo = tick_text(ymin), yhi = tick_text(ymax);
  L.left = std::max(text_width(ylo, 2), text_width(yhi, 2)) + 10;
  L.right = w - 10;
  L.top = 20;
  L.bottom = h - 24;
  L.x0 = xmin, L.x1 = xmax, L.y0 = ymin, L.y1 = ymax;
  draw_text(img, L.left, 4, title, colour::kBlack, 2);
  // Axes with ticks at both ends, labelled.
  draw_line(img, L.left - 1, L.top, L.left - 1, L.bottom + 1, colour::kBlack);
  draw_line(img, L.left - 1, L.bottom + 1, L.right, L.bottom + 1, colour::kBlack);
  draw_line(img, L.left - 5, L.top, L.left - 1, L.top, colour::kBlack);
  draw_line(img, L.left - 5, L.bottom, L.left - 1, L.bottom, colour::kBlack);
  draw_line(img, L.left, L.bottom + 1, L.left, L.bottom + 5, colour::kBlack);
  draw_line(img, L.right, L.bottom + 1, L.right, L.bottom + 5, colour::kBlack);
  draw_text(img, L.left - 6 - text_width(yhi, 2), L.top, yhi, colour::kBlack, 2);
  draw_text(img, L.left - 6 - text_width(ylo, 2), L.bottom - 9, ylo, colour::kBlack, 2);
  const std::string xlo = tick_text(xmin), xhi = tick_text(xmax);
  draw_text(img, L.left, L.bottom + 8, xlo, colour::kBlack, 2);
  draw_text(img, L.right - text_width(xhi, 2), L.bottom + 8, xhi, colour::kBlack, 2);
  auto px = [&](double v) {
    return L.left + static_cast<int>(std::lround((v - xmin) / (xmax - xmin) * (L.right - L.left)));
  };
  auto py = [&](double v) {
    return L.bottom -
           static_cast<int>(std::lround((v - ymin) / (ymax - ymin) * (L.bottom - L.top)));
  };
  bool have_prev = false;
  int qx = 0, qy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) {
      have_prev = false;
      continue;
    }
    const int X = px(x[i]), Y = py(y[i]);
    if (have_prev) draw_line(img, qx, qy, X, Y, c);
    fill_rect(img, X - 1, Y - 1, X + 1, Y + 1, c);
    qx = X, qy = Y, have_prev = true;
  }
  if (layout) *layout = L;
  return img;
}

}  // namespace psfphot
