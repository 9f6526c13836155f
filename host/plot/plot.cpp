// Plots rendered on a small RGB raster: a frame with ticks and numeric labels,
// bitmap text from stb_easy_font (drawn at integer scale), soft-edged dots shaded
// by how many overlap, and anti-aliased strokes. Every plot is O(n) in its input.
// The image is encoded to PNG in memory and written with write_file_atomic, so a
// failed plot never leaves a partial file.
#include "host/plot/plot.hpp"

#include <stb_easy_font.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "ddpm/error.hpp"
#include "host/io/atomic_file.hpp"

namespace ddpm::plot {
namespace {

// ---------------------------------------------------------------- colours

struct Rgb {
  float r, g, b;
};

constexpr Rgb kTitleInk{20, 20, 20};
constexpr Rgb kLabelInk{55, 55, 55};
constexpr Rgb kMutedInk{125, 125, 125};
constexpr Rgb kFrameInk{60, 60, 60};
constexpr Rgb kGridInk{236, 236, 236};
constexpr Rgb kDotInk{31, 119, 180};
constexpr Rgb kRawLossInk{150, 186, 226};
constexpr Rgb kSmoothLossInk{18, 58, 130};

constexpr int kTextScale = 2;   // tick labels, notes, panel titles
constexpr int kTitleScale = 3;  // the title of a single plot
constexpr int kCapHeight = 7;   // stb_easy_font capitals span rows 0..6
constexpr int kFontRows = 10;   // descenders reach row 8
constexpr int kTickLength = 5;
constexpr int kMinorTickLength = 3;

// Viridis-like sequential map: dark violet through teal to yellow, monotone in lightness.
Rgb colormap(double t) {
  static constexpr Rgb kStops[] = {
      {68, 1, 84},    {72, 36, 117},  {65, 68, 135},  {53, 95, 141},  {42, 120, 142}, {33, 145, 140},
      {34, 168, 132}, {68, 191, 112}, {122, 209, 81}, {189, 223, 38}, {253, 231, 37},
  };
  constexpr int kLast = int(sizeof(kStops) / sizeof(kStops[0])) - 1;
  if (!(t > 0)) return kStops[0];
  if (t >= 1) return kStops[kLast];
  const double f = t * kLast;
  const int i = std::min(int(f), kLast - 1);
  const float u = float(f - i);
  const Rgb a = kStops[i], b = kStops[i + 1];
  return {a.r + (b.r - a.r) * u, a.g + (b.g - a.g) * u, a.b + (b.b - a.b) * u};
}

// ---------------------------------------------------------------- raster

struct Rect {
  int x, y, w, h;
  int right() const { return x + w; }
  int bottom() const { return y + h; }
};

// Coverage values in [0, 1]; overlapping strokes take the maximum, so joints do not darken.
struct Mask {
  int w, h;
  std::vector<float> a;
  Mask(int w_, int h_) : w(w_), h(h_), a(std::size_t(w_) * std::size_t(h_), 0.f) {}
  float at(int x, int y) const { return a[std::size_t(y) * w + x]; }
  void cover(int x, int y, float v) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    float& p = a[std::size_t(y) * w + x];
    p = std::max(p, v);
  }
};

class Canvas {
 public:
  Canvas(int w, int h) : w_(w), h_(h), px_(std::size_t(w) * std::size_t(h) * 3, 255.f) {}

  int width() const { return w_; }
  int height() const { return h_; }

  void blend(int x, int y, Rgb c, float alpha) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_ || !(alpha > 0)) return;
    alpha = std::min(alpha, 1.f);
    float* p = &px_[(std::size_t(y) * w_ + x) * 3];
    p[0] += (c.r - p[0]) * alpha;
    p[1] += (c.g - p[1]) * alpha;
    p[2] += (c.b - p[2]) * alpha;
  }

  // Half-open [x0, x1) x [y0, y1), clipped to the canvas.
  void fill(int x0, int y0, int x1, int y1, Rgb c, float alpha = 1.f) {
    x0 = std::max(x0, 0), y0 = std::max(y0, 0);
    x1 = std::min(x1, w_), y1 = std::min(y1, h_);
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) blend(x, y, c, alpha);
  }

  void composite(const Mask& m, int ox, int oy, Rgb c, float alpha = 1.f) {
    for (int y = 0; y < m.h; ++y)
      for (int x = 0; x < m.w; ++x) {
        const float v = m.at(x, y);
        if (v > 0) blend(ox + x, oy + y, c, v * alpha);
      }
  }

  std::vector<unsigned char> rgb8() const {
    std::vector<unsigned char> out(px_.size());
    for (std::size_t i = 0; i < px_.size(); ++i)
      out[i] = static_cast<unsigned char>(std::lround(std::clamp(px_[i], 0.f, 255.f)));
    return out;
  }

 private:
  int w_, h_;
  std::vector<float> px_;
};

// Adds a dot of radius r (pixels) centred at (cx, cy), with a one-pixel soft edge, to
// the per-pixel coverage sums of `area`; the dot is clipped to the area.
void splat_dot(std::vector<float>& sum, const Rect& area, double cx, double cy, double r) {
  const int x0 = std::max(area.x, int(std::floor(cx - r - 0.5)));
  const int x1 = std::min(area.right() - 1, int(std::floor(cx + r + 0.5)));
  const int y0 = std::max(area.y, int(std::floor(cy - r - 0.5)));
  const int y1 = std::min(area.bottom() - 1, int(std::floor(cy + r + 0.5)));
  for (int y = y0; y <= y1; ++y) {
    const double dy = y + 0.5 - cy;
    float* row = &sum[std::size_t(y - area.y) * area.w - area.x];
    for (int x = x0; x <= x1; ++x) {
      const double dx = x + 0.5 - cx;
      const double cov = r + 0.5 - std::sqrt(dx * dx + dy * dy);
      if (cov > 0) row[x] += float(std::min(cov, 1.0));
    }
  }
}

// An anti-aliased segment of the given width into a mask, clipped to `clip`.
void stroke_segment(Mask& m, double ax, double ay, double bx, double by, double width, const Rect& clip) {
  const double hw = width / 2;
  const int x0 = std::max(clip.x, int(std::floor(std::min(ax, bx) - hw - 1)));
  const int x1 = std::min(clip.right() - 1, int(std::ceil(std::max(ax, bx) + hw + 1)));
  const int y0 = std::max(clip.y, int(std::floor(std::min(ay, by) - hw - 1)));
  const int y1 = std::min(clip.bottom() - 1, int(std::ceil(std::max(ay, by) + hw + 1)));
  const double ex = bx - ax, ey = by - ay, len2 = ex * ex + ey * ey;
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) {
      const double px = x + 0.5 - ax, py = y + 0.5 - ay;
      const double t = len2 > 0 ? std::clamp((px * ex + py * ey) / len2, 0.0, 1.0) : 0.0;
      const double dx = px - t * ex, dy = py - t * ey;
      const double cov = hw + 0.5 - std::sqrt(dx * dx + dy * dy);
      if (cov > 0) m.cover(x, y, float(std::min(cov, 1.0)));
    }
}

struct Pt {
  double x, y;
};

// A polyline whose points are sorted by x. When there are many more points than pixel
// columns, each column keeps its first, lowest, highest and last point: the drawn
// shape is the same and the cost stays proportional to the plot width.
void stroke_polyline(Mask& m, const std::vector<Pt>& pts, double width, const Rect& clip) {
  if (pts.empty()) return;
  std::vector<Pt> path;
  if (pts.size() > std::size_t(2 * clip.w)) {
    std::size_t i = 0;
    while (i < pts.size()) {
      const double column = std::floor(pts[i].x);
      Pt first = pts[i], lo = pts[i], hi = pts[i], last = pts[i];
      for (; i < pts.size() && std::floor(pts[i].x) == column; ++i) {
        if (pts[i].y < lo.y) lo = pts[i];
        if (pts[i].y > hi.y) hi = pts[i];
        last = pts[i];
      }
      path.push_back(first);
      path.push_back(lo);
      path.push_back(hi);
      path.push_back(last);
    }
  } else {
    path = pts;
  }
  if (path.size() == 1) {
    stroke_segment(m, path[0].x, path[0].y, path[0].x, path[0].y, width, clip);
    return;
  }
  for (std::size_t i = 1; i < path.size(); ++i)
    stroke_segment(m, path[i - 1].x, path[i - 1].y, path[i].x, path[i].y, width, clip);
}

// ---------------------------------------------------------------- text

// The ink of `text` at `scale`: rows 0..kCapHeight*scale-1 hold the capitals.
Mask text_mask(const std::string& text, int scale) {
  std::string s = text;
  for (char& ch : s)
    if (ch < 32 || ch > 126) ch = '?';
  if (s.empty()) return Mask(1, kFontRows * scale);
  std::vector<char> vbuf(s.size() * 1024 + 64);
  const int quads = stb_easy_font_print(0, 0, s.data(), nullptr, vbuf.data(), int(vbuf.size()));
  struct Quad {
    int x0, y0, x1, y1;
  };
  std::vector<Quad> q;
  int width = 1;
  for (int i = 0; i < quads; ++i) {
    const float* v0 = reinterpret_cast<const float*>(vbuf.data() + std::size_t(i) * 64);
    const float* v2 = reinterpret_cast<const float*>(vbuf.data() + std::size_t(i) * 64 + 32);
    const Quad r{int(std::lround(v0[0])), int(std::lround(v0[1])), int(std::lround(v2[0])),
                 int(std::lround(v2[1]))};
    q.push_back(r);
    width = std::max(width, r.x1);
  }
  Mask m(width * scale, kFontRows * scale);
  for (const Quad& r : q)
    for (int y = r.y0 * scale; y < r.y1 * scale; ++y)
      for (int x = r.x0 * scale; x < r.x1 * scale; ++x) m.cover(x, y, 1.f);
  return m;
}

// Quarter turn counter-clockwise: the text then reads from bottom to top.
Mask rotate_ccw(const Mask& m) {
  Mask r(m.h, m.w);
  for (int y = 0; y < m.h; ++y)
    for (int x = 0; x < m.w; ++x) r.a[std::size_t(m.w - 1 - x) * r.w + y] = m.at(x, y);
  return r;
}

int text_width(const std::string& text, int scale) { return text_mask(text, scale).w; }

enum class HAlign { kLeft, kCenter, kRight };
enum class VAlign { kTop, kMiddle, kBottom };  // of the capitals

void draw_text(Canvas& c, const std::string& text, double x, double y, int scale, Rgb col,
               HAlign ha = HAlign::kLeft, VAlign va = VAlign::kTop) {
  const Mask m = text_mask(text, scale);
  double left = x;
  if (ha == HAlign::kCenter) left = x - m.w / 2.0;
  if (ha == HAlign::kRight) left = x - m.w;
  double top = y;
  if (va == VAlign::kMiddle) top = y - kCapHeight * scale / 2.0;
  if (va == VAlign::kBottom) top = y - kCapHeight * scale;
  c.composite(m, int(std::lround(left)), int(std::lround(top)), col);
}

// ---------------------------------------------------------------- axes

// A plot area in pixels and the data window it shows; y grows upwards in data space.
struct View {
  Rect area;
  double x0, x1, y0, y1;
  double px(double x) const { return area.x + (x - x0) / (x1 - x0) * area.w; }
  double py(double y) const { return area.y + (y1 - y) / (y1 - y0) * area.h; }
};

struct Tick {
  double v;           // in axis units (log10 of the value on a log axis)
  std::string label;  // empty: a minor tick
};

struct Bounds {
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo;
  double ylo = xlo, yhi = -xlo;
  std::size_t finite = 0, skipped = 0;
  void add(double x, double y) {
    if (!std::isfinite(x) || !std::isfinite(y)) {
      ++skipped;
      return;
    }
    ++finite;
    xlo = std::min(xlo, x), xhi = std::max(xhi, x);
    ylo = std::min(ylo, y), yhi = std::max(yhi, y);
  }
  void add(const Points& xy) {
    for (std::size_t i = 0; i + 1 < xy.size(); i += 2) add(xy[i], xy[i + 1]);
  }
};

// The data window for `area`: the bounds padded by 5% on each side, with equal units per
// pixel on both axes (the looser axis sets the scale; the other is centred).
View equal_aspect_view(const Bounds& b, const Rect& area) {
  double cx = 0, cy = 0, sx = 2, sy = 2;
  if (b.finite > 0) {
    cx = 0.5 * (b.xlo + b.xhi), cy = 0.5 * (b.ylo + b.yhi);
    sx = b.xhi - b.xlo, sy = b.yhi - b.ylo;
  }
  double span_x = sx * 1.1, span_y = sy * 1.1;
  double per_px = std::max(span_x / area.w, span_y / area.h);
  if (!(per_px > 0) || !std::isfinite(per_px)) {
    // All points on one spot: show a unit neighbourhood (or a relative one far from 0).
    const double mag = std::max(std::fabs(cx), std::fabs(cy));
    per_px = (mag > 0 ? 0.2 * mag : 1.0) / std::min(area.w, area.h);
  }
  // Far from zero a tiny spread can fall below float resolution; keep the window sane.
  const double floor_px = 1e-12 * std::max({std::fabs(cx), std::fabs(cy), 1e-30});
  per_px = std::max(per_px, floor_px);
  const double hw = per_px * area.w / 2, hh = per_px * area.h / 2;
  return {area, cx - hw, cx + hw, cy - hh, cy + hh};
}

// Smallest of 1, 2, 5 x 10^k at least `raw`, advanced `bump` places along that sequence.
double nice_step(double raw, int bump) {
  const double e = std::floor(std::log10(raw));
  double mag = std::pow(10.0, e);
  static constexpr double kMantissa[] = {1, 2, 5};
  int k = 0;
  while (k < 3 && kMantissa[k] * mag < raw * (1 - 1e-9)) ++k;
  if (k == 3) k = 0, mag *= 10;
  k += bump;
  mag *= std::pow(10.0, k / 3);
  return kMantissa[k % 3] * mag;
}

// Every label of an axis is written alike: the same number of decimals, or the same
// unit suffix. `largest` is the largest magnitude among the axis' ticks.
using Format = std::string (*)(double v, double step, double largest);

std::string format_number(double v, double step, double largest) {
  char buf[48];
  if (v == 0) v = 0;  // no "-0"
  if (largest >= 1e7 || step < 1e-6) {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  } else {
    const int decimals = std::clamp(int(std::ceil(-std::log10(step) - 1e-9)), 0, 8);
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  }
  return buf;
}

// Step counts in thousands or millions once they get long: "20k", "1.5M".
std::string format_count(double v, double step, double largest) {
  char buf[48];
  if (v == 0) return "0";
  if (largest >= 1e6 && step >= 1e5) {
    std::snprintf(buf, sizeof buf, "%gM", v / 1e6);
    return buf;
  }
  if (largest >= 1e4 && step >= 1e3) {
    std::snprintf(buf, sizeof buf, "%gk", v / 1e3);
    return buf;
  }
  return format_number(v, step, largest);
}

struct TickSet {
  std::vector<Tick> ticks;
  double step = 0;
};

// Round ticks (steps of 1, 2 or 5 x 10^k, at least min_step) over [lo, hi] whose labels
// neither collide nor crowd the axis. length_px: the axis length; horizontal: labels sit
// side by side (else stacked).
TickSet linear_ticks(double lo, double hi, int length_px, bool horizontal, Format format = format_number,
                     double min_step = 0) {
  const double span = hi - lo;
  if (!(span > 0) || !std::isfinite(span)) return {};
  const double target = std::max(4.0, length_px / (horizontal ? 80.0 : 64.0));
  for (int bump = 0; bump < 40; ++bump) {
    const double step = nice_step(span / target, bump);
    if (step < min_step * (1 - 1e-9)) continue;
    const double k0 = std::ceil(lo / step - 1e-9), k1 = std::floor(hi / step + 1e-9);
    if (k1 - k0 > 50) continue;
    const double largest = std::max(std::fabs(k0 * step), std::fabs(k1 * step));
    TickSet set{{}, step};
    for (int i = 0; i <= int(k1 - k0); ++i) {
      double v = (k0 + i) * step;
      if (std::fabs(v) < step * 1e-9) v = 0;
      set.ticks.push_back({v, format(v, step, largest)});
    }
    bool fits = true;
    const double px_per_unit = length_px / span;
    const auto& t = set.ticks;
    for (std::size_t i = 1; i < t.size() && fits; ++i) {
      const double gap = (t[i].v - t[i - 1].v) * px_per_unit;
      const double need =
          horizontal
              ? 0.5 * (text_width(t[i].label, kTextScale) + text_width(t[i - 1].label, kTextScale)) + 16
              : kCapHeight * kTextScale + 14;
      fits = gap >= need;
    }
    if (fits) return set;
  }
  return {};
}

// One tick step on both axes of an equal-aspect view: the coarser of the two that fit.
struct AxisTicks {
  std::vector<Tick> x, y;
};

AxisTicks equal_aspect_ticks(const View& v) {
  TickSet x = linear_ticks(v.x0, v.x1, v.area.w, true);
  TickSet y = linear_ticks(v.y0, v.y1, v.area.h, false, format_number, x.step);
  if (y.step > x.step) x = linear_ticks(v.x0, v.x1, v.area.w, true, format_number, y.step);
  return {std::move(x.ticks), std::move(y.ticks)};
}

std::string format_log_value(double v) {
  char buf[48];
  if (v >= 1e-4 && v < 1e6) {
    std::snprintf(buf, sizeof buf, "%.6g", v);
  } else {
    const int e = int(std::floor(std::log10(v) + 1e-9));
    const double m = v / std::pow(10.0, e);
    if (std::fabs(m - 1) < 1e-6)
      std::snprintf(buf, sizeof buf, "1e%d", e);
    else
      std::snprintf(buf, sizeof buf, "%ge%d", std::round(m * 10) / 10, e);
  }
  return buf;
}

// Ticks for a log10 axis over [lo, hi] (in decades): powers of ten with minor ticks at
// 2..9 when the range spans several decades; 1-2-5 or every integer mantissa when it is
// narrower; plain round values when even that leaves fewer than three.
std::vector<Tick> log_ticks(double lo, double hi, int length_px) {
  const std::vector<std::vector<int>> sets = {{1}, {1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}};
  const int e0 = int(std::floor(lo)), e1 = int(std::ceil(hi));
  const double px_per_decade = length_px / (hi - lo);
  for (std::size_t s = 0; s < sets.size() && e1 - e0 <= 400; ++s) {
    std::vector<double> majors;
    for (int e = e0; e <= e1; ++e)
      for (int m : sets[s]) {
        const double lv = std::log10(double(m)) + e;
        if (lv >= lo - 1e-9 && lv <= hi + 1e-9) majors.push_back(lv);
      }
    if (majors.size() < 3) continue;
    std::vector<Tick> ticks;
    if (s == 0) {
      // Thin out decades when there are many, keep minor ticks when there are few.
      const int every = std::max(1, int(std::ceil(double(majors.size()) / 7)));
      for (double lv : majors) {
        const int e = int(std::lround(lv));
        if (e % every == 0) ticks.push_back({lv, format_log_value(std::pow(10.0, e))});
      }
      if (every == 1 && px_per_decade >= 60)
        for (int e = e0; e <= e1; ++e)
          for (int m = 2; m <= 9; ++m) {
            const double mv = std::log10(double(m)) + e;
            if (mv >= lo && mv <= hi) ticks.push_back({mv, ""});
          }
    } else {
      for (double lv : majors) ticks.push_back({lv, format_log_value(std::pow(10.0, lv))});
    }
    // Drop labels that would overlap their neighbour (the tick mark stays).
    std::sort(ticks.begin(), ticks.end(), [](const Tick& a, const Tick& b) { return a.v < b.v; });
    double last = -1e300;
    for (Tick& t : ticks) {
      if (t.label.empty()) continue;
      if ((t.v - last) * px_per_decade < kCapHeight * kTextScale + 8)
        t.label.clear();
      else
        last = t.v;
    }
    return ticks;
  }
  // Less than a fraction of a decade: round values on the linear scale, placed by log10.
  std::vector<Tick> ticks;
  for (const Tick& t : linear_ticks(std::pow(10.0, lo), std::pow(10.0, hi), length_px, false).ticks)
    if (t.v > 0) ticks.push_back({std::log10(t.v), t.label});
  return ticks;
}

void draw_grid(Canvas& c, const View& v, const std::vector<Tick>& xt, const std::vector<Tick>& yt) {
  const Rect& a = v.area;
  for (const Tick& t : xt) {
    if (t.label.empty()) continue;
    const int col = int(std::floor(v.px(t.v)));
    if (col > a.x && col < a.right() - 1) c.fill(col, a.y, col + 1, a.bottom(), kGridInk);
  }
  for (const Tick& t : yt) {
    if (t.label.empty()) continue;
    const int row = int(std::floor(v.py(t.v)));
    if (row > a.y && row < a.bottom() - 1) c.fill(a.x, row, a.right(), row + 1, kGridInk);
  }
}

// The box around the plot area (just outside it), tick marks and their labels.
void draw_frame(Canvas& c, const View& v, const std::vector<Tick>& xt, const std::vector<Tick>& yt,
                bool x_labels = true, bool y_labels = true) {
  const Rect& a = v.area;
  c.fill(a.x - 1, a.y - 1, a.right() + 1, a.y, kFrameInk);
  c.fill(a.x - 1, a.bottom(), a.right() + 1, a.bottom() + 1, kFrameInk);
  c.fill(a.x - 1, a.y, a.x, a.bottom(), kFrameInk);
  c.fill(a.right(), a.y, a.right() + 1, a.bottom(), kFrameInk);
  for (const Tick& t : xt) {
    const int col = std::clamp(int(std::floor(v.px(t.v))), a.x, a.right() - 1);
    const int len = t.label.empty() ? kMinorTickLength : kTickLength;
    c.fill(col, a.bottom() + 1, col + 1, a.bottom() + 1 + len, kFrameInk);
    if (x_labels && !t.label.empty())
      draw_text(c, t.label, col + 0.5, a.bottom() + kTickLength + 6, kTextScale, kLabelInk, HAlign::kCenter);
  }
  for (const Tick& t : yt) {
    const int row = std::clamp(int(std::floor(v.py(t.v))), a.y, a.bottom() - 1);
    const int len = t.label.empty() ? kMinorTickLength : kTickLength;
    c.fill(a.x - 1 - len, row, a.x - 1, row + 1, kFrameInk);
    if (y_labels && !t.label.empty())
      draw_text(c, t.label, a.x - kTickLength - 7, row + 0.5, kTextScale, kLabelInk, HAlign::kRight,
                VAlign::kMiddle);
  }
}

void draw_title(Canvas& c, const std::string& title, const Rect& area, int scale) {
  if (title.empty()) return;
  draw_text(c, title, area.x + area.w / 2.0, area.y - 16, scale, kTitleInk, HAlign::kCenter, VAlign::kBottom);
}

void draw_centered_note(Canvas& c, const Rect& area, const std::string& text) {
  draw_text(c, text, area.x + area.w / 2.0, area.y + area.h / 2.0, kTextScale, kMutedInk, HAlign::kCenter,
            VAlign::kMiddle);
}

std::string skipped_note(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// Dots are summed per pixel, then shaded on a log scale of that sum: one full dot gets
// shade v1, the 90th percentile q of the covered pixels gets 85%, denser pixels up to
// 92%. v1 falls from 85% (no overlaps) to 35% as q grows, so dense regions stay
// distinguishable for any n while a lone point never vanishes.
double dot_radius(std::size_t n, const Rect& area) {
  double r = n <= 2000 ? 2.5 : n <= 20000 ? 2.0 : 1.5;
  if (double(area.w) * area.h < 120000) r = std::max(1.3, r - 0.6);
  return r;
}

void draw_points(Canvas& c, const View& v, const Points& xy, std::size_t finite) {
  if (finite == 0) return;
  const Rect& a = v.area;
  const double r = dot_radius(finite, a);
  std::vector<float> sum(std::size_t(a.w) * a.h, 0.f);
  for (std::size_t i = 0; i + 1 < xy.size(); i += 2) {
    const double x = xy[i], y = xy[i + 1];
    if (std::isfinite(x) && std::isfinite(y)) splat_dot(sum, a, v.px(x), v.py(y), r);
  }
  std::vector<float> covered;
  for (float s : sum)
    if (s > 0) covered.push_back(s);
  if (covered.empty()) return;
  const auto q = covered.begin() + std::ptrdiff_t(0.9 * double(covered.size() - 1));
  std::nth_element(covered.begin(), q, covered.end());
  const double log_q = std::log(std::max(double(*q), 1.0));
  const double v1 = std::max(0.35, 0.85 - 0.25 * log_q);
  for (int y = 0; y < a.h; ++y)
    for (int x = 0; x < a.w; ++x) {
      const double s = sum[std::size_t(y) * a.w + x];
      if (!(s > 0)) continue;
      double shade = v1 * std::min(s, 1.0);
      if (s > 1) shade = log_q > 0 ? std::min(0.92, v1 + (0.85 - v1) * std::log(s) / log_q) : 0.92;
      c.blend(a.x + x, a.y + y, kDotInk, float(shade));
    }
}

// ---------------------------------------------------------------- output

void check_pairs(const std::string& path, const Points& xy) {
  if (xy.size() % 2 != 0)
    throw Error("plot " + path + ": odd number of coordinates (" + std::to_string(xy.size()) +
                "), expected (x, y) pairs");
}

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<unsigned char>*>(context);
  const auto* p = static_cast<const unsigned char*>(data);
  out->insert(out->end(), p, p + size);
}

void save_png(const std::string& path, const Canvas& c) {
  const std::vector<unsigned char> rgb = c.rgb8();
  std::vector<unsigned char> png;
  if (!stbi_write_png_to_func(append_bytes, &png, c.width(), c.height(), 3, rgb.data(), c.width() * 3) ||
      png.empty())
    throw Error("cannot encode PNG image for " + path);
  io::write_file_atomic(path, png.data(), png.size());
}

// The density image: 820 x 700, the histogram in a square area, the colour bar to its right.
constexpr int kDensityWidth = 820, kDensityHeight = 700;
constexpr Rect kDensityArea{84, 52, 584, 584};
constexpr int kMaxDensityBins = 4096;

void check_bins(const std::string& what, int bins) {
  if (bins < 1 || bins > kMaxDensityBins)
    throw Error(what + ": density bins must be in 1..4096, got " + std::to_string(bins));
}

void check_window(const std::string& what, const DensityWindow& w) {
  if (!(w.x1 > w.x0) || !(w.y1 > w.y0) || !std::isfinite(w.x1 - w.x0) || !std::isfinite(w.y1 - w.y0)) {
    char buf[160];
    std::snprintf(buf, sizeof buf, " (x %g..%g, y %g..%g)", w.x0, w.x1, w.y0, w.y1);
    throw Error(what + " has an empty or unbounded window" + buf);
  }
}

// The cells [c0, c1] that pixel p of n shows when `bins` cells span the n pixels: the cell
// under the pixel's centre when cells are at least a pixel wide, else every cell it touches.
void pixel_cells(int p, int n, int bins, int& c0, int& c1) {
  if (bins <= n) {
    c0 = c1 = std::min(bins - 1, int((p + 0.5) * bins / n));
  } else {
    c0 = int(std::int64_t(p) * bins / n);
    c1 = std::max(c0, int((std::int64_t(p + 1) * bins + n - 1) / n) - 1);
    c1 = std::min(c1, bins - 1);
  }
}

// A colour bar: the colormap from 0 (bottom) to 1 (top) filling `bar`, framed, with a tick
// mark and a label to its right at each tick's height t.
struct BarTick {
  double t;
  std::string label;
};
constexpr int kBarWidth = 18, kBarGap = 26;  // the bar, and its distance from the plot area

// Where the labels of a colour bar start, and how wide they are together.
int bar_labels_x(const Rect& bar) { return bar.right() + kTickLength + 5; }
int bar_labels_width(const std::vector<BarTick>& ticks) {
  int w = 0;
  for (const BarTick& t : ticks) w = std::max(w, text_width(t.label, kTextScale));
  return w;
}

void draw_colour_bar(Canvas& c, const Rect& bar, const std::vector<BarTick>& ticks) {
  for (int y = 0; y < bar.h; ++y)
    c.fill(bar.x, bar.y + y, bar.right(), bar.y + y + 1, colormap(1.0 - (y + 0.5) / bar.h));
  c.fill(bar.x - 1, bar.y - 1, bar.right() + 1, bar.y, kFrameInk);
  c.fill(bar.x - 1, bar.bottom(), bar.right() + 1, bar.bottom() + 1, kFrameInk);
  c.fill(bar.x - 1, bar.y, bar.x, bar.bottom(), kFrameInk);
  c.fill(bar.right(), bar.y, bar.right() + 1, bar.bottom(), kFrameInk);
  for (const BarTick& t : ticks) {
    const int row = std::clamp(int(std::floor(bar.bottom() - t.t * bar.h)), bar.y, bar.bottom() - 1);
    c.fill(bar.right() + 1, row, bar.right() + 1 + kTickLength, row + 1, kFrameInk);
    draw_text(c, t.label, bar_labels_x(bar), row + 0.5, kTextScale, kLabelInk, HAlign::kLeft, VAlign::kMiddle);
  }
}

}  // namespace

// ---------------------------------------------------------------- plots

void write_scatter_png(const std::string& path, const Points& xy, const std::string& title) {
  check_pairs(path, xy);
  Canvas c(700, 700);
  const Rect area{84, 52, 584, 584};
  Bounds b;
  b.add(xy);
  const View v = equal_aspect_view(b, area);
  const auto [xt, yt] = equal_aspect_ticks(v);
  draw_grid(c, v, xt, yt);
  draw_points(c, v, xy, b.finite);
  draw_frame(c, v, xt, yt);
  draw_title(c, title, area, kTitleScale);
  if (b.finite == 0) draw_centered_note(c, area, "no points");
  if (b.skipped > 0)
    draw_text(c, skipped_note(b.skipped, "non-finite point not shown", "non-finite points not shown"),
              c.width() - 10, c.height() - 10, kTextScale, kMutedInk, HAlign::kRight, VAlign::kBottom);
  save_png(path, c);
}

DensityWindow density_window(const Points& xy) {
  Bounds b;
  b.add(xy);
  const View v = equal_aspect_view(b, kDensityArea);
  return {v.x0, v.x1, v.y0, v.y1};
}

DensityWindow density_window(double xlo, double xhi, double ylo, double yhi) {
  Bounds b;
  if (xlo <= xhi && ylo <= yhi) b.xlo = xlo, b.xhi = xhi, b.ylo = ylo, b.yhi = yhi, b.finite = 1;
  const View v = equal_aspect_view(b, kDensityArea);
  return {v.x0, v.x1, v.y0, v.y1};
}

DensityGrid density_grid(const Points& xy, int bins, const DensityWindow& w) {
  check_bins("density_grid", bins);
  check_pairs("density_grid", xy);
  DensityGrid g(bins, w);
  const DensityBinning binning = DensityBinning::of(bins, w);
  for (std::size_t i = 0; i + 1 < xy.size(); i += 2) {
    const double x = xy[i], y = xy[i + 1];
    if (!std::isfinite(x) || !std::isfinite(y)) {
      ++g.non_finite;
      continue;
    }
    uint32_t& h = g.counts[std::size_t(binning.cell(x, y))];
    if (h != std::numeric_limits<uint32_t>::max()) ++h;
  }
  return g;
}

DensityGrid density_grid(const Points& xy, int bins) {
  check_bins("density_grid", bins);
  check_pairs("density_grid", xy);
  return density_grid(xy, bins, density_window(xy));
}

void write_density_png(const std::string& path, const Points& xy, const std::string& title, int bins) {
  check_bins("plot " + path, bins);
  check_pairs(path, xy);
  write_density_png(path, density_grid(xy, bins), title);
}

void write_density_png(const std::string& path, const DensityGrid& grid, const std::string& title) {
  const int bins = grid.bins;
  check_bins("plot " + path, bins);
  if (grid.counts.size() != std::size_t(bins) * bins)
    throw Error("plot " + path + ": density grid has " + std::to_string(grid.counts.size()) +
                " counts, expected " + std::to_string(bins) + "^2");
  check_window("plot " + path + ": density grid", grid.window());
  Canvas c(kDensityWidth, kDensityHeight);
  const Rect area = kDensityArea;
  const View v{area, grid.x0, grid.x1, grid.y0, grid.y1};
  const std::vector<uint32_t>& hist = grid.counts;
  uint32_t peak = 0;
  for (uint32_t h : hist) peak = std::max(peak, h);

  // log(1 + count), with one count at the bottom of the scale and the peak at the top.
  const double lo = std::log1p(1.0), hi = std::log1p(double(peak));
  auto shade = [&](double count) { return hi > lo ? (std::log1p(count) - lo) / (hi - lo) : 1.0; };

  // Each pixel shows the cell under its centre, or the fullest cell it covers when cells
  // are smaller than pixels (so isolated points never vanish).
  for (int py = 0; py < area.h; ++py) {
    int r0, r1;
    pixel_cells(py, area.h, bins, r0, r1);
    for (int px = 0; px < area.w; ++px) {
      int c0, c1;
      pixel_cells(px, area.w, bins, c0, c1);
      uint32_t h = 0;
      for (int r = r0; r <= r1; ++r)
        for (int k = c0; k <= c1; ++k) h = std::max(h, hist[std::size_t(r) * bins + k]);
      if (h > 0) c.blend(area.x + px, area.y + py, colormap(shade(h)), 1.f);
    }
  }

  const auto [xt, yt] = equal_aspect_ticks(v);
  draw_frame(c, v, xt, yt);
  draw_title(c, title, area, kTitleScale);
  if (peak == 0) draw_centered_note(c, area, "no points");
  if (grid.non_finite > 0)
    draw_text(c,
              skipped_note(std::size_t(grid.non_finite), "non-finite point not shown",
                           "non-finite points not shown"),
              c.width() - 10, c.height() - 10, kTextScale, kMutedInk, HAlign::kRight, VAlign::kBottom);

  // Colour bar: the map from one count (bottom) to the peak (top), labelled at 1, the
  // powers of ten in between and the peak.
  const Rect bar{area.right() + kBarGap, area.y, kBarWidth, area.h};
  draw_text(c, "count", bar.x + bar.w / 2.0, bar.y - 16, kTextScale, kLabelInk, HAlign::kCenter,
            VAlign::kBottom);
  std::vector<BarTick> ticks;
  auto bar_label = [&](double count, double t) {
    char buf[32];
    if (count >= 1e6)
      std::snprintf(buf, sizeof buf, "%.3gM", count / 1e6);
    else
      std::snprintf(buf, sizeof buf, "%.0f", count);
    ticks.push_back({t, buf});
  };
  const double top = std::max(1.0, double(peak));
  bar_label(1, 0);
  if (top > 1) {
    bar_label(top, 1);
    const double min_gap = (kCapHeight * kTextScale + 10.0) / bar.h;
    for (double p = 10; p < top; p *= 10) {
      const double t = shade(p);
      if (t > min_gap && t < 1 - min_gap) bar_label(p, t);
    }
  }
  draw_colour_bar(c, bar, ticks);
  save_png(path, c);
}

Points grid_cell_centres(int bins, const DensityWindow& w) {
  check_bins("grid_cell_centres", bins);
  check_window("grid_cell_centres", w);
  Points xy;
  xy.reserve(std::size_t(bins) * std::size_t(bins) * 2);
  for (int r = 0; r < bins; ++r) {
    const float y = float(w.y1 - (r + 0.5) * (w.y1 - w.y0) / bins);
    for (int c = 0; c < bins; ++c) {
      xy.push_back(float(w.x0 + (c + 0.5) * (w.x1 - w.x0) / bins));
      xy.push_back(y);
    }
  }
  return xy;
}

namespace {

// A colour bar value: the decimals of the round ticks' step and one more, trailing zeros dropped.
std::string format_bar_value(double v, double step) {
  std::string s = format_number(v, step / 10, std::fabs(v));
  if (s.find('.') != std::string::npos && s.find('e') == std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s == "-0" ? "0" : s;
}

}  // namespace

void write_heatmap_png(const std::string& path, const GridValues& grid, const std::string& heat_title,
                       const std::string& bar_label, const Points& points, const std::string& points_title,
                       double clip_range) {
  const int bins = grid.bins;
  check_bins("plot " + path, bins);
  if (grid.values.size() != std::size_t(bins) * std::size_t(bins))
    throw Error("plot " + path + ": grid has " + std::to_string(grid.values.size()) + " values, expected " +
                std::to_string(bins) + "^2 = " + std::to_string(std::size_t(bins) * std::size_t(bins)));
  check_window("plot " + path + ": grid", grid.window);
  if (!(clip_range > 0)) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%g", clip_range);
    throw Error("plot " + path + ": heat map clip range must be > 0, got " + buf);
  }
  check_pairs(path, points);

  // The colour scale: the largest finite value at the top, max - clip_range (or the smallest
  // value, if higher) at the bottom.
  double vmin = std::numeric_limits<double>::infinity(), vmax = -vmin;
  std::size_t no_value = 0;
  for (double v : grid.values) {
    if (!std::isfinite(v)) {
      ++no_value;
      continue;
    }
    vmin = std::min(vmin, v), vmax = std::max(vmax, v);
  }
  const bool any = vmax >= vmin;
  double lo = 0, hi = 1;
  if (any) {
    hi = vmax;
    lo = std::max(vmin, vmax - clip_range);
    if (!(hi > lo)) lo = hi - std::max(1.0, std::fabs(hi) * 1e-9);  // one value: the top colour
  }
  const bool clipped = any && vmin < lo;
  auto shade = [&](double v) { return (v - lo) / (hi - lo); };

  // Bar labels: the bottom and top values, and the round values between them.
  constexpr int kSide = 512, kLeft = 84, kTop = 52, kBottom = 70, kRight = 24;
  const Rect heat_area{kLeft, kTop, kSide, kSide};
  const Rect bar{heat_area.right() + kBarGap, kTop, kBarWidth, kSide};
  std::vector<BarTick> ticks;
  if (any) {
    const TickSet round = linear_ticks(lo, hi, bar.h, false);
    const double step = round.step > 0 ? round.step : (hi - lo) / 4;
    ticks.push_back({0, (clipped ? "<= " : "") + format_bar_value(lo, step)});
    ticks.push_back({1, format_bar_value(hi, step)});
    const double min_gap = (kCapHeight * kTextScale + 10.0) / bar.h;
    for (const Tick& t : round.ticks) {
      const double u = shade(t.v);
      if (u > min_gap && u < 1 - min_gap) ticks.push_back({u, t.label});
    }
  }
  const Mask bar_title = rotate_ccw(text_mask(bar_label, kTextScale));
  const int bar_title_x = bar_labels_x(bar) + bar_labels_width(ticks) + 12;
  const Rect points_area{bar_title_x + bar_title.w + 44, kTop, kSide, kSide};
  Canvas c(points_area.right() + kRight, kTop + kSide + kBottom);

  // One view over the window, made square by widening its narrower side about its centre.
  const DensityWindow& w = grid.window;
  View v{heat_area, w.x0, w.x1, w.y0, w.y1};
  if (w.x1 - w.x0 > w.y1 - w.y0) {
    const double cy = 0.5 * (w.y0 + w.y1), h = 0.5 * (w.x1 - w.x0);
    v.y0 = cy - h, v.y1 = cy + h;
  } else if (w.y1 - w.y0 > w.x1 - w.x0) {
    const double cx = 0.5 * (w.x0 + w.x1), h = 0.5 * (w.y1 - w.y0);
    v.x0 = cx - h, v.x1 = cx + h;
  }
  const auto [xt, yt] = equal_aspect_ticks(v);

  // The heat map: each pixel shows the cell under its centre, or the highest of the cells
  // it covers when cells are smaller than pixels; cells with no value show the background.
  const int hx0 = std::clamp(int(std::lround(v.px(w.x0))), heat_area.x, heat_area.right());
  const int hx1 = std::clamp(int(std::lround(v.px(w.x1))), hx0, heat_area.right());
  const int hy0 = std::clamp(int(std::lround(v.py(w.y1))), heat_area.y, heat_area.bottom());
  const int hy1 = std::clamp(int(std::lround(v.py(w.y0))), hy0, heat_area.bottom());
  const int hw = hx1 - hx0, hh = hy1 - hy0;
  for (int py = 0; py < hh; ++py) {
    int r0, r1;
    pixel_cells(py, hh, bins, r0, r1);
    for (int px = 0; px < hw; ++px) {
      int c0, c1;
      pixel_cells(px, hw, bins, c0, c1);
      double best = -std::numeric_limits<double>::infinity();
      bool found = false;
      for (int r = r0; r <= r1; ++r)
        for (int k = c0; k <= c1; ++k) {
          const double val = grid.values[std::size_t(r) * bins + k];
          if (std::isfinite(val) && (!found || val > best)) best = val, found = true;
        }
      if (found) c.blend(hx0 + px, hy0 + py, colormap(shade(best)), 1.f);
    }
  }
  draw_frame(c, v, xt, yt);
  if (!any) draw_centered_note(c, heat_area, "no values");
  if (no_value > 0)
    draw_text(c, skipped_note(no_value, "cell with no value", "cells with no value"), heat_area.x,
              c.height() - 10, kTextScale, kMutedInk, HAlign::kLeft, VAlign::kBottom);
  draw_colour_bar(c, bar, ticks);
  c.composite(bar_title, bar_title_x, int(std::lround(bar.y + bar.h / 2.0 - bar_title.h / 2.0)), kLabelInk);

  // The scatter: the first kHeatmapMaxPoints points, on the same scale.
  const std::size_t total = points.size() / 2, shown = std::min(total, kHeatmapMaxPoints);
  const Points first = shown < total ? Points(points.begin(), points.begin() + std::ptrdiff_t(2 * shown))
                                     : Points();
  const Points& drawn = shown < total ? first : points;
  Bounds b;
  std::size_t outside = 0;
  for (std::size_t i = 0; i + 1 < drawn.size(); i += 2) {
    const double x = drawn[i], y = drawn[i + 1];
    b.add(x, y);
    if (std::isfinite(x) && std::isfinite(y) && (x < v.x0 || x > v.x1 || y < v.y0 || y > v.y1)) ++outside;
  }
  View pv = v;
  pv.area = points_area;
  draw_grid(c, pv, xt, yt);
  draw_points(c, pv, drawn, b.finite);
  draw_frame(c, pv, xt, yt, true, false);
  if (b.finite == 0) draw_centered_note(c, points_area, "no points");
  std::string note;
  auto add_note = [&](const std::string& s) { note += (note.empty() ? "" : ", ") + s; };
  if (shown < total) add_note("first " + std::to_string(shown) + " of " + std::to_string(total) + " shown");
  if (outside > 0) add_note(std::to_string(outside) + " outside");
  if (b.skipped > 0) add_note(std::to_string(b.skipped) + " non-finite");
  if (!note.empty())
    draw_text(c, note, points_area.right(), c.height() - 10, kTextScale, kMutedInk, HAlign::kRight,
              VAlign::kBottom);

  // Titles: large when both fit over their panels.
  const int scale = text_width(heat_title, kTitleScale) <= kSide && text_width(points_title, kTitleScale) <= kSide
                        ? kTitleScale
                        : kTextScale;
  draw_title(c, heat_title, heat_area, scale);
  draw_title(c, points_title, points_area, scale);
  save_png(path, c);
}

void write_panels_png(const std::string& path, const std::vector<Panel>& panels) {
  for (const Panel& p : panels) check_pairs(path, p.points);
  const int n = std::max<int>(1, int(panels.size()));
  constexpr int kSide = 240, kGap = 34, kLeft = 76, kRight = 22, kTop = 48, kBottom = 52;
  Canvas c(kLeft + n * kSide + (n - 1) * kGap + kRight, kTop + kSide + kBottom);

  Bounds all;
  for (const Panel& p : panels) all.add(p.points);
  const Rect first{kLeft, kTop, kSide, kSide};
  const View shared = equal_aspect_view(all, first);
  const auto [xt, yt] = equal_aspect_ticks(shared);

  for (int i = 0; i < n; ++i) {
    View v = shared;
    v.area.x = kLeft + i * (kSide + kGap);
    draw_grid(c, v, xt, yt);
    if (i < int(panels.size())) {
      Bounds b;
      b.add(panels[i].points);
      draw_points(c, v, panels[i].points, b.finite);
      draw_title(c, panels[i].title, v.area, kTextScale);
      if (b.finite == 0) draw_centered_note(c, v.area, "no points");
      if (b.skipped > 0)
        draw_text(c, std::to_string(b.skipped) + " not shown", v.area.right(), c.height() - 8, kTextScale,
                  kMutedInk, HAlign::kRight, VAlign::kBottom);
    } else {
      draw_centered_note(c, v.area, "no points");
    }
    draw_frame(c, v, xt, yt, true, i == 0);
  }
  save_png(path, c);
}

void write_loss_curve_png(const std::string& path, const std::vector<float>& loss, const std::string& title) {
  Canvas c(900, 500);
  const Rect area{112, 56, 900 - 112 - 24, 500 - 56 - 78};
  const std::size_t n = loss.size();

  // Only positive finite values have a place on a log axis.
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  std::size_t valid = 0;
  for (float f : loss)
    if (std::isfinite(f) && f > 0) {
      ++valid;
      lo = std::min(lo, double(f)), hi = std::max(hi, double(f));
    }
  double y0 = -1, y1 = 1;
  if (valid > 0) {
    const double l0 = std::log10(lo), l1 = std::log10(hi);
    const double pad = std::max(0.05 * (l1 - l0), 0.02);
    y0 = l0 - pad, y1 = l1 + pad;
  }
  double x0 = 0, x1 = 2;
  if (n > 1) {
    const double pad = std::max(0.02 * double(n - 1), 0.5);
    x0 = 1 - pad, x1 = double(n) + pad;
  }
  const View v{area, x0, x1, y0, y1};
  const auto xt = linear_ticks(x0, x1, area.w, true, format_count, 1.0).ticks;  // whole steps
  const auto yt = log_ticks(y0, y1, area.h);
  draw_grid(c, v, xt, yt);

  const int window = std::max<int>(1, int(n / 50));
  if (valid > 0) {
    // Raw values, then a centred moving average over the valid values in each window
    // (cut short at the ends of the run).
    std::vector<Pt> raw;
    raw.reserve(valid);
    std::vector<double> sum(n + 1, 0.0);
    std::vector<std::size_t> cnt(n + 1, 0);
    for (std::size_t i = 0; i < n; ++i) {
      const float f = loss[i];
      const bool ok = std::isfinite(f) && f > 0;
      if (ok) raw.push_back({v.px(double(i + 1)), v.py(std::log10(double(f)))});
      sum[i + 1] = sum[i] + (ok ? double(f) : 0.0);
      cnt[i + 1] = cnt[i] + (ok ? 1 : 0);
    }
    // Without a moving average the raw line is the only one: draw it dark, and mark the
    // values themselves when there are few.
    Mask raw_mask(c.width(), c.height());
    stroke_polyline(raw_mask, raw, window > 1 ? 1.2 : 1.8, area);
    if (n <= 100)
      for (const Pt& p : raw) stroke_segment(raw_mask, p.x, p.y, p.x, p.y, 5.0, area);
    c.composite(raw_mask, 0, 0, window > 1 ? kRawLossInk : kSmoothLossInk);

    if (window > 1) {
      Mask avg_mask(c.width(), c.height());
      std::vector<Pt> run;
      const std::size_t half = std::size_t(window) / 2;
      for (std::size_t i = 0; i <= n; ++i) {
        const bool ok = i < n && std::isfinite(loss[i]) && loss[i] > 0;
        if (ok) {
          const std::size_t a = i >= half ? i - half : 0, b = std::min(n, i + half + 1);
          const double mean = (sum[b] - sum[a]) / double(cnt[b] - cnt[a]);
          run.push_back({v.px(double(i + 1)), v.py(std::log10(mean))});
        } else if (!run.empty()) {
          stroke_polyline(avg_mask, run, 2.4, area);
          run.clear();
        }
      }
      c.composite(avg_mask, 0, 0, kSmoothLossInk);
    }
  }

  draw_frame(c, v, xt, yt);
  draw_title(c, title, area, kTitleScale);
  draw_text(c, "step", area.x + area.w / 2.0, area.bottom() + kTickLength + 6 + kCapHeight * kTextScale + 14,
            kTextScale, kLabelInk, HAlign::kCenter);
  const Mask ylabel = rotate_ccw(text_mask("loss (log scale)", kTextScale));
  c.composite(ylabel, 14, int(std::lround(area.y + area.h / 2.0 - ylabel.h / 2.0)), kLabelInk);

  if (valid == 0) {
    draw_centered_note(c, area, "no points");
  } else {
    // Legend in the upper right corner, where a falling loss leaves room.
    const std::string avg_label = window > 1 ? "moving average (" + std::to_string(window) + " steps)" : "";
    const int w =
        std::max(text_width("loss", kTextScale), avg_label.empty() ? 0 : text_width(avg_label, kTextScale));
    const int rows = window > 1 ? 2 : 1;
    const Rect box{area.right() - w - 60, area.y + 10, w + 50, 12 + rows * 24};
    c.fill(box.x, box.y, box.right(), box.bottom(), {255, 255, 255}, 0.9f);
    c.fill(box.x, box.y, box.right(), box.y + 1, {200, 200, 200});
    c.fill(box.x, box.bottom() - 1, box.right(), box.bottom(), {200, 200, 200});
    c.fill(box.x, box.y, box.x + 1, box.bottom(), {200, 200, 200});
    c.fill(box.right() - 1, box.y, box.right(), box.bottom(), {200, 200, 200});
    auto entry = [&](int row, Rgb ink, double width, const std::string& label) {
      const double cy = box.y + 18 + row * 24;
      Mask m(c.width(), c.height());
      stroke_segment(m, box.x + 10, cy, box.x + 32, cy, width, {0, 0, c.width(), c.height()});
      c.composite(m, 0, 0, ink);
      draw_text(c, label, box.x + 40, cy, kTextScale, kLabelInk, HAlign::kLeft, VAlign::kMiddle);
    };
    entry(0, window > 1 ? kRawLossInk : kSmoothLossInk, 2.0, "loss");
    if (window > 1) entry(1, kSmoothLossInk, 2.4, avg_label);
  }
  const std::size_t skipped = n - valid;
  if (skipped > 0)
    draw_text(c, skipped_note(skipped, "value off the log scale", "values off the log scale"), c.width() - 10,
              c.height() - 10, kTextScale, kMutedInk, HAlign::kRight, VAlign::kBottom);
  save_png(path, c);
}

}  // namespace ddpm::plot
