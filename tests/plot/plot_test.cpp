// The plots are checked by decoding the written PNG: image sizes, where dots land,
// the colour of a histogram cell, the shared scale of panels, the smoothed loss
// line, and that failures throw without leaving files behind. A density image drawn
// from a precomputed grid is byte for byte the one drawn from the points. A heat map
// shows its peak where the function's maximum is, its tail in the floor colour, cells
// with no value as background, and points beside it on the same scale.
#include "host/plot/plot.hpp"

#include <gtest/gtest.h>
#include <stb_image.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ddpm/error.hpp"

namespace fs = std::filesystem;
using ddpm::plot::Panel;
using ddpm::plot::Points;

namespace {

struct Image {
  int w = 0, h = 0;
  std::vector<unsigned char> px;
  const unsigned char* at(int x, int y) const { return &px[(std::size_t(y) * w + x) * 3]; }
};

Image load(const fs::path& path) {
  Image img;
  int n = 0;
  unsigned char* data = stbi_load(path.string().c_str(), &img.w, &img.h, &n, 3);
  if (!data) {
    ADD_FAILURE() << "cannot decode " << path;
    return img;
  }
  img.px.assign(data, data + std::size_t(img.w) * img.h * 3);
  stbi_image_free(data);
  return img;
}

// Connected (8-neighbour) groups of pixels satisfying `pred`.
struct Blob {
  std::size_t count = 0;
  double cx = 0, cy = 0;  // centroid, pixel centres
  int x0 = 1 << 30, y0 = 1 << 30, x1 = -1, y1 = -1;
  int width() const { return x1 - x0 + 1; }
  int height() const { return y1 - y0 + 1; }
};

std::vector<Blob> blobs(const Image& img, const std::function<bool(const unsigned char*)>& pred) {
  std::vector<char> seen(std::size_t(img.w) * img.h, 0);
  std::vector<Blob> out;
  std::vector<std::pair<int, int>> stack;
  for (int y = 0; y < img.h; ++y)
    for (int x = 0; x < img.w; ++x) {
      if (seen[std::size_t(y) * img.w + x] || !pred(img.at(x, y))) continue;
      Blob b;
      stack.push_back({x, y});
      seen[std::size_t(y) * img.w + x] = 1;
      while (!stack.empty()) {
        auto [px, py] = stack.back();
        stack.pop_back();
        ++b.count;
        b.cx += px + 0.5, b.cy += py + 0.5;
        b.x0 = std::min(b.x0, px), b.x1 = std::max(b.x1, px);
        b.y0 = std::min(b.y0, py), b.y1 = std::max(b.y1, py);
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx) {
            const int nx = px + dx, ny = py + dy;
            if (nx < 0 || ny < 0 || nx >= img.w || ny >= img.h) continue;
            char& s = seen[std::size_t(ny) * img.w + nx];
            if (s || !pred(img.at(nx, ny))) continue;
            s = 1;
            stack.push_back({nx, ny});
          }
      }
      b.cx /= double(b.count), b.cy /= double(b.count);
      out.push_back(b);
    }
  return out;
}

bool bluish(const unsigned char* p) { return p[2] > p[0] + 30 && p[2] > p[1] + 10; }

bool near_colour(const unsigned char* p, int r, int g, int b) {
  return std::abs(p[0] - r) <= 2 && std::abs(p[1] - g) <= 2 && std::abs(p[2] - b) <= 2;
}

const Blob& largest(const std::vector<Blob>& v) {
  return *std::max_element(v.begin(), v.end(),
                           [](const Blob& a, const Blob& b) { return a.count < b.count; });
}

// Two noisy interleaved half circles.
Points moons(int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> angle(0.f, 3.14159265f);
  std::normal_distribution<float> noise(0.f, 0.06f);
  Points xy;
  for (int i = 0; i < n; ++i) {
    const float a = angle(rng);
    if (i % 2 == 0) {
      xy.push_back(std::cos(a) + noise(rng));
      xy.push_back(std::sin(a) + noise(rng));
    } else {
      xy.push_back(1.f - std::cos(a) + noise(rng));
      xy.push_back(0.5f - std::sin(a) + noise(rng));
    }
  }
  return xy;
}

class Plot : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("ddpm_plot_test_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path path(const std::string& name) const { return dir_ / name; }
  std::size_t files_in_dir() const {
    return std::size_t(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()));
  }

  fs::path dir_;
};

TEST_F(Plot, ScatterIsASquareImage) {
  ddpm::plot::write_scatter_png(path("s.png"), moons(1000, 1), "DDPM samples");
  const Image img = load(path("s.png"));
  EXPECT_EQ(img.w, 700);
  EXPECT_EQ(img.h, 700);
}

TEST_F(Plot, ScatterDotsLandWhereTheDataAreOnAnEqualScale) {
  // Points at (0,0), (1,0) and (0,2): three small blue dots, an L on its side.
  ddpm::plot::write_scatter_png(path("s.png"), {0.f, 0.f, 1.f, 0.f, 0.f, 2.f}, "three points");
  const Image img = load(path("s.png"));
  std::vector<Blob> dots = blobs(img, bluish);
  ASSERT_EQ(dots.size(), 3u);
  for (const Blob& d : dots) {
    EXPECT_GE(d.count, 9u);
    EXPECT_LE(d.count, 50u);
  }
  // Order by data position: the origin is lowest-left, (1,0) right of it, (0,2) above it.
  std::sort(dots.begin(), dots.end(),
            [](const Blob& a, const Blob& b) { return a.cy > b.cy || (a.cy == b.cy && a.cx < b.cx); });
  const Blob& origin = dots[0].cx < dots[1].cx ? dots[0] : dots[1];
  const Blob& right = dots[0].cx < dots[1].cx ? dots[1] : dots[0];
  const Blob& top = dots[2];
  const double unit = right.cx - origin.cx;
  EXPECT_GT(unit, 100);
  EXPECT_NEAR(right.cy, origin.cy, 0.5);
  EXPECT_NEAR(top.cx, origin.cx, 0.5);
  EXPECT_NEAR(origin.cy - top.cy, 2 * unit, 1.5);  // same pixels per unit on both axes

  // Between the dots the plot is background (white or a light grid line).
  for (auto [fx, fy] : {std::pair{0.5, 1.0}, std::pair{0.25, 0.5}, std::pair{0.75, 1.5}}) {
    const unsigned char* p = img.at(int(origin.cx + fx * unit), int(origin.cy - fy * unit));
    EXPECT_GE(p[0], 225);
    EXPECT_GE(p[1], 225);
    EXPECT_GE(p[2], 225);
  }
  // The corner far from the frame is white.
  const unsigned char* corner = img.at(3, 3);
  EXPECT_EQ(corner[0] + corner[1] + corner[2], 3 * 255);
}

TEST_F(Plot, DensePointsDarkenTheirRegion) {
  // Many points on one spot and one elsewhere: the crowded dot is darker.
  Points xy;
  for (int i = 0; i < 200; ++i) xy.insert(xy.end(), {0.f, 0.f});
  xy.insert(xy.end(), {1.f, 1.f});
  ddpm::plot::write_scatter_png(path("s.png"), xy, "");
  const Image img = load(path("s.png"));
  std::vector<Blob> dots = blobs(img, bluish);
  ASSERT_EQ(dots.size(), 2u);
  const Blob& lone = dots[0].cx > dots[1].cx ? dots[0] : dots[1];
  const Blob& crowd = dots[0].cx > dots[1].cx ? dots[1] : dots[0];
  const unsigned char* c = img.at(int(crowd.cx), int(crowd.cy));
  const unsigned char* l = img.at(int(lone.cx), int(lone.cy));
  EXPECT_LT(c[0] + c[1] + c[2], l[0] + l[1] + l[2]);
}

TEST_F(Plot, DensityCellOfAllPointsTakesThePeakColour) {
  // 500 points in the bottom-left cell of a 10x10 histogram, one point in the top-right cell.
  Points xy;
  for (int i = 0; i < 500; ++i) xy.insert(xy.end(), {0.f, 0.f});
  xy.insert(xy.end(), {1.f, 1.f});
  ddpm::plot::write_density_png(path("d.png"), xy, "density", 10);
  const Image img = load(path("d.png"));
  ASSERT_GT(img.w, 0);
  EXPECT_EQ(img.h, 700);

  // Ends of the colour scale: peak (yellow) and a single count (dark violet).
  const auto peak = blobs(img, [](const unsigned char* p) { return near_colour(p, 253, 231, 37); });
  const auto single = blobs(img, [](const unsigned char* p) { return near_colour(p, 68, 1, 84); });
  ASSERT_FALSE(peak.empty());
  ASSERT_FALSE(single.empty());
  const Blob& full = largest(peak);
  const Blob& one = largest(single);
  // Square cells of the same size, nine cells apart on both axes.
  EXPECT_NEAR(full.width(), full.height(), 1);
  EXPECT_GT(full.width(), 40);
  EXPECT_NEAR(one.width(), full.width(), 1);
  EXPECT_NEAR(one.height(), full.height(), 1);
  const double cell = full.width();
  // (A cell spans a fractional number of pixels: allow one pixel per cell.)
  EXPECT_NEAR(one.cx - full.cx, 9 * cell, 9);
  EXPECT_NEAR(full.cy - one.cy, 9 * cell, 9);
  EXPECT_NEAR(one.cx - full.cx, full.cy - one.cy, 1);
}

TEST_F(Plot, DensityRejectsBadBinCounts) {
  const Points xy = {0.f, 0.f, 1.f, 1.f};
  for (int bins : {0, -3, 4097}) {
    EXPECT_THROW(ddpm::plot::write_density_png(path("d.png"), xy, "", bins), ddpm::Error) << bins;
    EXPECT_FALSE(fs::exists(path("d.png")));
  }
  for (int bins : {1, 4096}) {
    ddpm::plot::write_density_png(path("d.png"), xy, "", bins);
    EXPECT_EQ(load(path("d.png")).h, 700) << bins;
  }
}

std::vector<unsigned char> file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_F(Plot, DensityFromAGridIsTheSameImage) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  Points xy = moons(20000, 8);
  xy.insert(xy.end(), {nan, 0.f, 1.f, inf, -inf, nan});
  for (int bins : {1, 10, 400, 1500}) {
    const ddpm::plot::DensityGrid grid = ddpm::plot::density_grid(xy, bins);
    ddpm::plot::write_density_png(path("points.png"), xy, "density", bins);
    ddpm::plot::write_density_png(path("grid.png"), grid, "density");
    const auto a = file_bytes(path("points.png")), b = file_bytes(path("grid.png"));
    EXPECT_GT(a.size(), 1000u);
    EXPECT_TRUE(a == b) << bins;

    ASSERT_EQ(grid.counts.size(), std::size_t(bins) * bins);
    uint64_t total = 0;
    for (uint32_t c : grid.counts) total += c;
    EXPECT_EQ(total, 20000u) << bins;  // the finite points
    EXPECT_EQ(grid.non_finite, 3);
    const ddpm::plot::DensityWindow w = ddpm::plot::density_window(xy);
    EXPECT_EQ(grid.x0, w.x0);
    EXPECT_EQ(grid.x1, w.x1);
    EXPECT_EQ(grid.y0, w.y0);
    EXPECT_EQ(grid.y1, w.y1);
  }
}

TEST_F(Plot, DensityWindowFromBoundsIsTheWindowOfThePoints) {
  const Points xy = moons(5000, 9);
  float lo[2] = {xy[0], xy[1]}, hi[2] = {xy[0], xy[1]};
  for (std::size_t i = 0; i < xy.size(); ++i) {
    lo[i % 2] = std::min(lo[i % 2], xy[i]);
    hi[i % 2] = std::max(hi[i % 2], xy[i]);
  }
  const auto a = ddpm::plot::density_window(xy), b = ddpm::plot::density_window(lo[0], hi[0], lo[1], hi[1]);
  EXPECT_EQ(a.x0, b.x0);
  EXPECT_EQ(a.x1, b.x1);
  EXPECT_EQ(a.y0, b.y0);
  EXPECT_EQ(a.y1, b.y1);
  // Square: the image's plot area is.
  EXPECT_NEAR(a.x1 - a.x0, a.y1 - a.y0, 1e-12 * (a.x1 - a.x0));
  const double inf = std::numeric_limits<double>::infinity();
  const auto none = ddpm::plot::density_window(inf, -inf, inf, -inf), empty = ddpm::plot::density_window({});
  EXPECT_EQ(none.x0, empty.x0);
  EXPECT_EQ(none.y1, empty.y1);
  EXPECT_LT(empty.x0, empty.x1);
}

TEST_F(Plot, DensityGridOverAGivenWindowClampsToTheEdgeCells) {
  // The unit square in 4 x 4 cells; row 0 is the top.
  const ddpm::plot::DensityWindow w{0, 1, 0, 1};
  const Points xy = {0.1f,  0.9f,     // row 0, column 0
                     -5.f,  0.4f,     // left of the window: row 2, column 0
                     5.f,   5.f,      // row 0, column 3
                     0.6f,  -1e30f,   // far below: row 3, column 2
                     1.f,   0.f,      // on the right and bottom edges: row 3, column 3
                     3e38f, -3e38f};  // row 3, column 3
  const ddpm::plot::DensityGrid g = ddpm::plot::density_grid(xy, 4, w);
  std::vector<uint32_t> want(16, 0);
  want[0 * 4 + 0] = 1, want[2 * 4 + 0] = 1, want[0 * 4 + 3] = 1, want[3 * 4 + 2] = 1, want[3 * 4 + 3] = 2;
  EXPECT_EQ(g.counts, want);
  EXPECT_EQ(g.non_finite, 0);
  EXPECT_THROW(ddpm::plot::density_grid(xy, 0, w), ddpm::Error);
  EXPECT_THROW(ddpm::plot::density_grid({0.f, 1.f, 2.f}, 4, w), ddpm::Error);
}

TEST_F(Plot, DensityRejectsABrokenGrid) {
  ddpm::plot::DensityGrid g(8, {0, 1, 0, 1});
  g.counts.pop_back();
  EXPECT_THROW(ddpm::plot::write_density_png(path("d.png"), g, ""), ddpm::Error);
  using ddpm::plot::DensityWindow;
  for (const DensityWindow& w : {DensityWindow{1, 1, 0, 1}, DensityWindow{0, 1, 0, std::nan("")}}) {
    const ddpm::plot::DensityGrid empty_window(8, w);
    EXPECT_THROW(ddpm::plot::write_density_png(path("d.png"), empty_window, ""), ddpm::Error);
  }
  EXPECT_EQ(files_in_dir(), 0u);
  ddpm::plot::write_density_png(path("d.png"), ddpm::plot::DensityGrid(8, {0, 1, 0, 1}), "nothing");
  EXPECT_EQ(load(path("d.png")).h, 700);
}

TEST_F(Plot, PanelsWidenWithTheirCount) {
  int last_width = 0, height = -1;
  for (int n : {1, 2, 5}) {
    std::vector<Panel> panels;
    // (std::string(...) +, not "..." + std::to_string: GCC 12's -Wrestrict misfires on the latter)
    for (int i = 0; i < n; ++i) panels.push_back({std::string("t=") + std::to_string(25 * i), moons(200, unsigned(i))});
    const std::string name = std::string("p") + std::to_string(n) + ".png";
    ddpm::plot::write_panels_png(path(name), panels);
    const Image img = load(path(name));
    EXPECT_GT(img.w, last_width) << n;
    if (height >= 0) {
      EXPECT_EQ(img.h, height) << n;
    }
    last_width = img.w, height = img.h;
  }
}

TEST_F(Plot, PanelsShareOneScale) {
  // The same unit step is four times shorter when the other panel spans four units.
  const std::vector<Panel> panels = {{"a", {0.f, 0.f, 1.f, 0.f}}, {"b", {0.f, 0.f, 4.f, 0.f}}};
  ddpm::plot::write_panels_png(path("p.png"), panels);
  const Image img = load(path("p.png"));
  std::vector<Blob> dots = blobs(img, bluish);
  ASSERT_EQ(dots.size(), 4u);
  std::sort(dots.begin(), dots.end(), [](const Blob& a, const Blob& b) { return a.cx < b.cx; });
  const double a = dots[1].cx - dots[0].cx, b = dots[3].cx - dots[2].cx;
  EXPECT_GT(a, 20);
  EXPECT_NEAR(b, 4 * a, 1.5);
  for (const Blob& d : dots) EXPECT_NEAR(d.cy, dots[0].cy, 0.5);
}

TEST_F(Plot, LossCurveShowsAFallingSmoothedLine) {
  std::mt19937 rng(7);
  std::lognormal_distribution<float> noise(0.f, 0.3f);
  std::vector<float> loss;
  for (int i = 0; i < 3000; ++i) loss.push_back((0.05f + std::exp(-i / 400.f)) * noise(rng));
  ddpm::plot::write_loss_curve_png(path("l.png"), loss, "training loss");
  const Image img = load(path("l.png"));
  ASSERT_EQ(img.w, 900);
  ASSERT_EQ(img.h, 500);

  // The moving average is drawn in dark blue: its mean row sinks from left to right.
  auto dark_row = [&](int x) {
    double sum = 0;
    int n = 0;
    for (int y = 0; y < img.h; ++y) {
      const unsigned char* p = img.at(x, y);
      if (p[2] > 100 && p[0] < 70 && p[1] < 100) sum += y, ++n;
    }
    return n > 0 ? sum / n : -1.0;
  };
  const double early = dark_row(img.w / 5), late = dark_row(img.w / 2);
  ASSERT_GT(early, 0);
  ASSERT_GT(late, 0);
  EXPECT_GT(late, early + 50);
  // The raw values are a lighter blue around it.
  std::size_t light = 0;
  for (int y = 0; y < img.h; ++y) {
    const unsigned char* p = img.at(img.w / 5, y);
    if (p[2] > 200 && p[0] > 120 && p[0] < 235) ++light;
  }
  EXPECT_GT(light, 5u);
}

// ---- Heat maps

using ddpm::plot::DensityWindow;
using ddpm::plot::GridValues;

bool colourful(const unsigned char* p) {
  return std::max({p[0], p[1], p[2]}) - std::min({p[0], p[1], p[2]}) > 20;
}
bool white(const unsigned char* p) { return p[0] == 255 && p[1] == 255 && p[2] == 255; }
bool frame_ink(const unsigned char* p) { return near_colour(p, 60, 60, 60); }

struct Box {
  int x, y, w, h;  // pixels [x, x + w) x [y, y + h)
};

// The heat map's pixels: the largest coloured blob (the colour bar is framed apart from it).
Box heat_box(const Image& img) {
  const auto found = blobs(img, colourful);
  if (found.empty()) {
    ADD_FAILURE() << "no heat map";
    return {};
  }
  const Blob& b = largest(found);
  return {b.x0, b.y0, b.width(), b.height()};
}

// Runs [first, last] of frame-ink pixels along row y (or column x).
std::vector<std::pair<int, int>> frame_runs(const Image& img, int fixed, bool row) {
  std::vector<std::pair<int, int>> runs;
  const int n = row ? img.w : img.h;
  for (int i = 0; i < n; ++i) {
    if (!frame_ink(row ? img.at(i, fixed) : img.at(fixed, i))) continue;
    if (!runs.empty() && runs.back().second == i - 1)
      runs.back().second = i;
    else
      runs.push_back({i, i});
  }
  return runs;
}

// The plot area of the right-hand panel, from its frame in a row through the panels.
Box points_box(const Image& img, int row, int top, int height) {
  const auto runs = frame_runs(img, row, true);
  if (runs.size() < 2) {
    ADD_FAILURE() << "no frame in row " << row;
    return {};
  }
  const int x0 = runs[runs.size() - 2].second + 1, x1 = runs.back().first;
  return {x0, top, x1 - x0, height};
}

// Pixels of a region, copied out (so blobs() sees only that panel).
Image crop(const Image& img, const Box& b) {
  Image out;
  out.w = b.w, out.h = b.h;
  for (int y = b.y; y < b.y + b.h; ++y)
    for (int x = b.x; x < b.x + b.w; ++x) out.px.insert(out.px.end(), img.at(x, y), img.at(x, y) + 3);
  return out;
}

// A Gaussian log-density at the given cell centres.
std::vector<double> gaussian_log_density(const Points& xy, double mx, double my, double sigma) {
  std::vector<double> v;
  for (std::size_t i = 0; i < xy.size(); i += 2) {
    const double dx = xy[i] - mx, dy = xy[i + 1] - my;
    v.push_back(-(dx * dx + dy * dy) / (2 * sigma * sigma) - std::log(2 * M_PI * sigma * sigma));
  }
  return v;
}

TEST_F(Plot, HeatmapCellCentresAreAsDocumented) {
  const DensityWindow w{-1.5, 2.25, -0.75, 3.0};
  for (int bins : {1, 2, 7, 256}) {
    const Points xy = ddpm::plot::grid_cell_centres(bins, w);
    ASSERT_EQ(xy.size(), std::size_t(bins) * bins * 2) << bins;
    const auto binning = ddpm::plot::DensityBinning::of(bins, w);
    std::size_t wrong = 0, wrong_cell = 0;
    for (int r = 0; r < bins; ++r)
      for (int c = 0; c < bins; ++c) {
        const std::size_t i = (std::size_t(r) * bins + c) * 2;
        const float x = float(w.x0 + (c + 0.5) * (w.x1 - w.x0) / bins);
        const float y = float(w.y1 - (r + 0.5) * (w.y1 - w.y0) / bins);
        if (xy[i] != x || xy[i + 1] != y) {
          if (wrong++ == 0) ADD_FAILURE() << "cell (" << r << ", " << c << ") of " << bins << ": centre ("
                                          << xy[i] << ", " << xy[i + 1] << "), expected (" << x << ", " << y << ")";
        }
        // Each centre lies in its own cell, as the density histogram bins it.
        if (binning.cell(xy[i], xy[i + 1]) != r * bins + c) ++wrong_cell;
      }
    EXPECT_EQ(wrong, 0u) << bins;
    EXPECT_EQ(wrong_cell, 0u) << bins;
  }
}

TEST_F(Plot, HeatmapPeakIsWhereTheMaximumIsAndTheTailIsTheFloorColour) {
  // log N((0.7, -0.4), 0.5^2 I) on 256 x 256 cells over [-2, 2]^2.
  const DensityWindow w{-2, 2, -2, 2};
  const int bins = 256;
  const double mx = 0.7, my = -0.4;
  const GridValues grid{bins, w, gaussian_log_density(ddpm::plot::grid_cell_centres(bins, w), mx, my, 0.5)};
  ddpm::plot::write_heatmap_png(path("h.png"), grid, "log-density", "log p(x), nats", {}, "samples");
  const Image img = load(path("h.png"));
  const Box heat = heat_box(img);
  ASSERT_EQ(heat.w, 512);
  ASSERT_EQ(heat.h, 512);
  auto data_x = [&](int px) { return w.x0 + (px - heat.x + 0.5) / heat.w * (w.x1 - w.x0); };
  auto data_y = [&](int py) { return w.y1 - (py - heat.y + 0.5) / heat.h * (w.y1 - w.y0); };
  auto pixel_of = [&](double x, double y) {
    return img.at(heat.x + int((x - w.x0) / (w.x1 - w.x0) * heat.w), heat.y + int((w.y1 - y) / (w.y1 - w.y0) * heat.h));
  };

  // The brightest pixels (red + green rises along the colormap) are the colour at the top of
  // the scale, in a small disk (8-bit colours are flat at the top) centred on the mean.
  int best = -1;
  for (int y = heat.y; y < heat.y + heat.h; ++y)
    for (int x = heat.x; x < heat.x + heat.w; ++x) best = std::max(best, img.at(x, y)[0] + img.at(x, y)[1]);
  double sx = 0, sy = 0, far = 0;
  int n = 0;
  for (int y = heat.y; y < heat.y + heat.h; ++y)
    for (int x = heat.x; x < heat.x + heat.w; ++x)
      if (img.at(x, y)[0] + img.at(x, y)[1] == best) {
        EXPECT_TRUE(near_colour(img.at(x, y), 253, 231, 37));
        sx += data_x(x), sy += data_y(y), ++n;
        far = std::max(far, std::hypot(data_x(x) - mx, data_y(y) - my));
      }
  ASSERT_GT(n, 0);
  const double cell = (w.x1 - w.x0) / bins;
  EXPECT_NEAR(sx / n, mx, cell);
  EXPECT_NEAR(sy / n, my, cell);
  EXPECT_LT(far, 0.1);

  // 12 nats is the default range: corners 15 to 26 nats down are the floor colour; the
  // bottom right, 8.5 nats down, is not.
  EXPECT_TRUE(near_colour(img.at(heat.x, heat.y), 68, 1, 84));
  EXPECT_TRUE(near_colour(img.at(heat.x + heat.w - 1, heat.y), 68, 1, 84));
  EXPECT_TRUE(near_colour(img.at(heat.x, heat.y + heat.h - 1), 68, 1, 84));
  EXPECT_FALSE(near_colour(img.at(heat.x + heat.w - 1, heat.y + heat.h - 1), 68, 1, 84));
  // 6 nats down (sqrt(3) to the left of the mean) is halfway up the scale: teal.
  const unsigned char* mid = pixel_of(mx - std::sqrt(3.0), my);
  EXPECT_NEAR(mid[0], 33, 6);
  EXPECT_NEAR(mid[1], 145, 6);
  EXPECT_NEAR(mid[2], 140, 6);

  // A wider range lifts the top right corner (14.9 nats down) off the floor.
  ddpm::plot::write_heatmap_png(path("wide.png"), grid, "", "", {}, "", 30);
  const Image wide = load(path("wide.png"));
  EXPECT_FALSE(near_colour(wide.at(heat.x + heat.w - 1, heat.y), 68, 1, 84));
  EXPECT_TRUE(near_colour(wide.at(heat.x, heat.y), 68, 1, 84));  // the lowest value (26 nats down)
}

TEST_F(Plot, HeatmapNonFiniteCellsAreBackgroundAndCounted) {
  const DensityWindow w{0, 1, 0, 1};
  const int bins = 32;
  auto make = [&](bool holes) {
    GridValues g{bins, w, {}};
    for (int r = 0; r < bins; ++r)
      for (int c = 0; c < bins; ++c) g.values.push_back(0.1 * c - 0.05 * r);
    if (holes) {
      for (int r = 10; r < 14; ++r)
        for (int c = 20; c < 24; ++c) g.values[std::size_t(r) * bins + c] = std::nan("");
      g.values[5 * bins + 5] = std::numeric_limits<double>::infinity();
      g.values[25 * bins + 3] = -std::numeric_limits<double>::infinity();
    }
    return g;
  };
  // The notes under the heat map are in muted ink: how far right do they reach?
  auto note_right = [](const Image& img, const Box& heat) {
    int right = -1;
    for (int y = heat.y + heat.h + 30; y < img.h; ++y)
      for (int x = 0; x < heat.x + heat.w; ++x)
        if (near_colour(img.at(x, y), 125, 125, 125)) right = std::max(right, x);
    return right;
  };

  ddpm::plot::write_heatmap_png(path("full.png"), make(false), "f", "f", {}, "");
  const Image full = load(path("full.png"));
  const Box heat = heat_box(full);
  ASSERT_EQ(heat.w, 512);
  EXPECT_EQ(note_right(full, heat), -1);

  ddpm::plot::write_heatmap_png(path("holes.png"), make(true), "f", "f", {}, "");
  const Image img = load(path("holes.png"));
  EXPECT_EQ(heat_box(img).x, heat.x);
  auto cell_pixel = [&](const Image& im, int r, int c) {
    return im.at(heat.x + c * heat.w / bins + heat.w / bins / 2, heat.y + r * heat.h / bins + heat.h / bins / 2);
  };
  for (int r = 10; r < 14; ++r)
    for (int c = 20; c < 24; ++c) EXPECT_TRUE(white(cell_pixel(img, r, c))) << r << ", " << c;
  EXPECT_TRUE(white(cell_pixel(img, 5, 5)));
  EXPECT_TRUE(white(cell_pixel(img, 25, 3)));
  // Their neighbours keep their colours, the same as without the holes.
  for (auto [r, c] : {std::pair{9, 20}, std::pair{14, 23}, std::pair{12, 19}, std::pair{12, 24}, std::pair{5, 6},
                      std::pair{25, 2}}) {
    EXPECT_TRUE(colourful(cell_pixel(img, r, c))) << r << ", " << c;
    EXPECT_TRUE(std::equal(cell_pixel(img, r, c), cell_pixel(img, r, c) + 3, cell_pixel(full, r, c)));
  }
  // A note counts them; with one hole it is shorter ("1 cell" against "18 cells").
  const int note18 = note_right(img, heat);
  EXPECT_GT(note18, heat.x);
  GridValues one = make(false);
  one.values[7] = std::nan("");
  ddpm::plot::write_heatmap_png(path("one.png"), one, "f", "f", {}, "");
  const int note1 = note_right(load(path("one.png")), heat);
  EXPECT_GT(note1, heat.x);
  EXPECT_LT(note1, note18);

  // No finite value at all: still a plot, no heat.
  GridValues none{4, w, std::vector<double>(16, std::nan(""))};
  ddpm::plot::write_heatmap_png(path("none.png"), none, "nothing", "f", {}, "");
  const Image empty = load(path("none.png"));
  EXPECT_EQ(empty.h, img.h);
  EXPECT_TRUE(white(empty.at(heat.x + heat.w / 4, heat.y + heat.h / 4)));
}

TEST_F(Plot, HeatmapPointsLandOnTheSameScaleInTheRightPanel) {
  const DensityWindow w{-1, 3, -2, 2};
  GridValues grid{8, w, {}};
  for (int i = 0; i < 64; ++i) grid.values.push_back(-0.3 * i);
  const std::vector<std::pair<float, float>> pts = {{0.f, 0.f}, {2.f, 1.f}, {-0.5f, -1.5f}, {2.5f, 1.5f}};
  Points xy;
  for (auto [x, y] : pts) xy.push_back(x), xy.push_back(y);
  for (float f : {10.f, 10.f, std::nanf(""), 0.f}) xy.push_back(f);  // outside the window; not finite
  ddpm::plot::write_heatmap_png(path("h.png"), grid, "values", "v", xy, "points");
  const Image img = load(path("h.png"));
  const Box heat = heat_box(img);
  ASSERT_EQ(heat.w, 512);
  ASSERT_EQ(heat.h, 512);
  const Box right = points_box(img, heat.y + 3, heat.y, heat.h);
  EXPECT_EQ(right.w, heat.w);  // the same scale
  EXPECT_GT(right.x, heat.x + heat.w + 40);

  std::vector<Blob> dots = blobs(crop(img, right), bluish);
  ASSERT_EQ(dots.size(), pts.size());
  std::sort(dots.begin(), dots.end(), [](const Blob& a, const Blob& b) { return a.cx < b.cx; });
  std::vector<std::pair<float, float>> by_x = pts;
  std::sort(by_x.begin(), by_x.end());
  for (std::size_t i = 0; i < dots.size(); ++i) {
    const double px = (by_x[i].first - w.x0) / (w.x1 - w.x0) * right.w;
    const double py = (w.y1 - by_x[i].second) / (w.y1 - w.y0) * right.h;
    EXPECT_NEAR(dots[i].cx, px, 0.5) << i;
    EXPECT_NEAR(dots[i].cy, py, 0.5) << i;
  }
  // The points are not drawn over the heat map: its pixels at their places are heat colours.
  for (auto [x, y] : pts) {
    const unsigned char* p =
        img.at(heat.x + int((x - w.x0) / (w.x1 - w.x0) * heat.w), heat.y + int((w.y1 - y) / (w.y1 - w.y0) * heat.h));
    EXPECT_TRUE(std::equal(p, p + 3, img.at(heat.x + int((x - w.x0) / (w.x1 - w.x0) * heat.w) + 3,
                                            heat.y + int((w.y1 - y) / (w.y1 - w.y0) * heat.h))))
        << "a dot on the heat map at " << x << ", " << y;
  }

  // Only the first 50,000 points are drawn.
  Points many;
  for (std::size_t i = 0; i < ddpm::plot::kHeatmapMaxPoints; ++i) many.insert(many.end(), {0.f, 0.f});
  many.insert(many.end(), {2.f, 1.f});
  ddpm::plot::write_heatmap_png(path("many.png"), grid, "values", "v", many, "points");
  EXPECT_EQ(blobs(crop(load(path("many.png")), right), bluish).size(), 1u);
  many.erase(many.begin(), many.begin() + 2);
  ddpm::plot::write_heatmap_png(path("many.png"), grid, "values", "v", many, "points");
  EXPECT_EQ(blobs(crop(load(path("many.png")), right), bluish).size(), 2u);
}

TEST_F(Plot, HeatmapOfANonSquareWindowKeepsEqualScales) {
  // A window twice as wide as tall sits centred in square panels; one value: the top colour.
  const DensityWindow w{0, 4, 0, 2};
  const GridValues grid{16, w, std::vector<double>(256, -3.0)};
  ddpm::plot::write_heatmap_png(path("h.png"), grid, "flat", "v", {2.f, 1.f}, "centre");
  const Image img = load(path("h.png"));
  const Box heat = heat_box(img);
  EXPECT_EQ(heat.w, 512);
  EXPECT_NEAR(heat.h, 256, 1);
  EXPECT_TRUE(near_colour(img.at(heat.x + heat.w / 2, heat.y + heat.h / 2), 253, 231, 37));
  const auto runs = frame_runs(img, heat.x + 3, false);  // the frame above and below
  ASSERT_GE(runs.size(), 2u);
  const int top = runs[0].second + 1, bottom = runs[1].first;
  EXPECT_EQ(bottom - top, 512);
  EXPECT_NEAR(heat.y - top, bottom - (heat.y + heat.h), 1);
  // The point at the window's centre is at the centre of the right panel.
  const Box right = points_box(img, top + 3, top, bottom - top);
  const auto dots = blobs(crop(img, right), bluish);
  ASSERT_EQ(dots.size(), 1u);
  EXPECT_NEAR(dots[0].cx, 256, 0.5);
  EXPECT_NEAR(dots[0].cy, 256, 0.5);
}

TEST_F(Plot, HeatmapRejectsBadInput) {
  const DensityWindow w{0, 1, 0, 1};
  const GridValues ok{4, w, std::vector<double>(16, 0.0)};
  auto expect_error = [&](const std::function<void()>& f, const std::vector<std::string>& words) {
    try {
      f();
      ADD_FAILURE() << "no exception; expected one naming " << words[0];
    } catch (const ddpm::Error& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
      for (const std::string& word : words) EXPECT_NE(what.find(word), std::string::npos) << what;
    }
  };
  const std::string out = path("h.png").string();
  auto draw = [&](const GridValues& g, const Points& xy = {}, double clip = 12) {
    return [=] { ddpm::plot::write_heatmap_png(out, g, "t", "v", xy, "p", clip); };
  };
  for (int bins : {0, -3, 4097})
    expect_error(draw(GridValues{bins, w, {}}), {out, "bins", "got " + std::to_string(bins)});
  expect_error(draw(GridValues{4, w, std::vector<double>(15, 0.0)}), {out, "15 values", "16"});
  expect_error(draw(GridValues{4, w, std::vector<double>(17, 0.0)}), {out, "17 values", "16"});
  const double inf = std::numeric_limits<double>::infinity();
  for (const DensityWindow& bad : {DensityWindow{1, 1, 0, 1}, DensityWindow{0, 1, 2, 1},
                                   DensityWindow{0, 1, 0, std::nan("")}, DensityWindow{0, inf, 0, 1},
                                   DensityWindow{-1e308, 1e308, 0, 1}}) {
    expect_error(draw(GridValues{4, bad, std::vector<double>(16, 0.0)}), {out, "window"});
    expect_error([&] { ddpm::plot::grid_cell_centres(4, bad); }, {"grid_cell_centres", "window"});
  }
  expect_error(draw(GridValues{4, DensityWindow{1, 1, 0, 1}, std::vector<double>(16, 0.0)}), {"window", "x 1..1"});
  expect_error(draw(ok, {}, 0), {out, "clip range", "got 0"});
  expect_error(draw(ok, {}, -1), {out, "clip range", "got -1"});
  expect_error(draw(ok, {}, std::nan("")), {out, "clip range", "nan"});
  expect_error(draw(ok, {0.f, 1.f, 2.f}), {out, "odd number"});
  expect_error([&] { ddpm::plot::grid_cell_centres(0, w); }, {"grid_cell_centres", "got 0"});
  expect_error([&] { ddpm::plot::grid_cell_centres(5000, w); }, {"grid_cell_centres", "got 5000"});
  EXPECT_EQ(files_in_dir(), 0u);

  // The ends of the range are fine, as is an unbounded clip range.
  for (int bins : {1, 4096}) {
    ddpm::plot::write_heatmap_png(out, GridValues{bins, w, std::vector<double>(std::size_t(bins) * bins, 1.0)},
                                  "t", "v", {}, "p");
    EXPECT_GT(load(path("h.png")).w, 1024) << bins;
  }
  ddpm::plot::write_heatmap_png(out, ok, "t", "v", {}, "p", inf);
  EXPECT_EQ(files_in_dir(), 1u);
}

TEST_F(Plot, UnwritablePathThrowsAndLeavesNoFile) {
  const std::string bad = (dir_ / "missing" / "plot.png").string();
  const Points xy = moons(100, 3);
  auto expect_fails = [&](const std::function<void()>& f) {
    try {
      f();
      ADD_FAILURE() << "no exception for " << bad;
    } catch (const ddpm::Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  };
  expect_fails([&] { ddpm::plot::write_scatter_png(bad, xy, "x"); });
  expect_fails([&] { ddpm::plot::write_density_png(bad, xy, "x", 50); });
  expect_fails([&] { ddpm::plot::write_panels_png(bad, {{"t=0", xy}}); });
  expect_fails([&] { ddpm::plot::write_loss_curve_png(bad, {1.f, 0.5f}, "x"); });
  expect_fails([&] {
    ddpm::plot::write_heatmap_png(bad, {2, {0, 1, 0, 1}, {0., 1., 2., 3.}}, "x", "v", xy, "y");
  });
  EXPECT_FALSE(fs::exists(dir_ / "missing"));
  EXPECT_EQ(files_in_dir(), 0u);
}

TEST_F(Plot, OddCoordinateCountThrows) {
  EXPECT_THROW(ddpm::plot::write_scatter_png(path("s.png"), {0.f, 1.f, 2.f}, ""), ddpm::Error);
  EXPECT_THROW(ddpm::plot::write_density_png(path("d.png"), {0.f}, ""), ddpm::Error);
  EXPECT_THROW(ddpm::plot::write_panels_png(path("p.png"), {{"t=0", {0.f}}}), ddpm::Error);
  EXPECT_EQ(files_in_dir(), 0u);
}

TEST_F(Plot, EmptyAndNonFiniteInputsStillMakeAPlot) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  Points mixed = moons(300, 4);
  mixed.insert(mixed.end(), {nan, 0.f, 1.f, inf, -inf, -inf, nan, nan});
  const Points broken = {nan, 1.f, inf, 2.f};
  const Points one = {3.f, -2.f};
  const Points huge = {-3e38f, 3e38f, 3e38f, -3e38f};

  for (const Points* xy : std::vector<const Points*>{&mixed, &broken, &one, &huge}) {
    ddpm::plot::write_scatter_png(path("s.png"), *xy, "scatter");
    ddpm::plot::write_density_png(path("d.png"), *xy, "density", 64);
    EXPECT_EQ(load(path("s.png")).w, 700);
    EXPECT_EQ(load(path("d.png")).h, 700);
  }
  ddpm::plot::write_scatter_png(path("s.png"), {}, "empty");
  ddpm::plot::write_density_png(path("d.png"), {}, "empty");
  ddpm::plot::write_panels_png(path("p.png"), {});
  ddpm::plot::write_panels_png(path("q.png"), {{"t=0", {}}, {"t=1", broken}});
  ddpm::plot::write_loss_curve_png(path("l0.png"), {}, "empty");
  ddpm::plot::write_loss_curve_png(path("l1.png"), {0.5f}, "one step");
  ddpm::plot::write_loss_curve_png(path("l2.png"), {nan, -1.f, 0.f, inf, 2.f, 1.f}, "odd values");
  ddpm::plot::write_loss_curve_png(path("l3.png"), {nan, 0.f}, "nothing positive");
  ddpm::plot::write_loss_curve_png(path("l4.png"), std::vector<float>(500, 0.25f), "flat");
  for (const char* name :
       {"s.png", "d.png", "p.png", "q.png", "l0.png", "l1.png", "l2.png", "l3.png", "l4.png"})
    EXPECT_GT(load(path(name)).w, 0) << name;
  // Only the plots themselves: no temporary files left beside them.
  EXPECT_EQ(files_in_dir(), 9u);
}

TEST_F(Plot, LargeInputs) {
  // Hundreds of thousands of dots, millions of histogram entries, a long loss history.
  const Points many = moons(300000, 5);
  ddpm::plot::write_scatter_png(path("s.png"), many, "300k samples");
  Points more;
  for (int k = 0; k < 5; ++k) {
    const Points part = moons(400000, unsigned(10 + k));
    more.insert(more.end(), part.begin(), part.end());
  }
  ddpm::plot::write_density_png(path("d.png"), more, "2M samples", 1000);
  std::vector<float> loss(1000000);
  for (std::size_t i = 0; i < loss.size(); ++i) loss[i] = 0.3f + 0.2f * float((i * 7919) % 101) / 101.f;
  ddpm::plot::write_loss_curve_png(path("l.png"), loss, "a million steps");
  EXPECT_EQ(load(path("s.png")).w, 700);
  EXPECT_EQ(load(path("d.png")).h, 700);
  EXPECT_EQ(load(path("l.png")).w, 900);
}

// Realistic figures. With DDPM_PLOT_SAMPLE_DIR set they are kept there for a look.
TEST_F(Plot, SampleFigures) {
  const char* keep = std::getenv("DDPM_PLOT_SAMPLE_DIR");
  const fs::path out = keep ? fs::path(keep) : dir_;
  fs::create_directories(out);

  const Points x0 = moons(1000, 21);
  ddpm::plot::write_scatter_png((out / "scatter.png").string(), x0, "DDPM samples");
  ddpm::plot::write_density_png((out / "density.png").string(), moons(200000, 22), "DDPM samples (n=200000)");

  // The forward process q(x_t | x_0) with a linear schedule, T = 100.
  std::vector<Panel> panels;
  std::mt19937 rng(23);
  std::normal_distribution<float> eps(0.f, 1.f);
  double abar = 1;
  for (int t = 0; t < 100; ++t) {
    const double beta = 1e-4 + (0.02 - 1e-4) * t / 99.0;
    abar *= 1 - beta;
    if (t % 25 == 0 || t == 99) {
      Panel p{"t=" + std::to_string(t), {}};
      for (std::size_t i = 0; i < x0.size(); ++i)
        p.points.push_back(float(std::sqrt(abar) * x0[i] + std::sqrt(1 - abar) * eps(rng)));
      panels.push_back(std::move(p));
    }
  }
  ddpm::plot::write_panels_png((out / "forward.png").string(), panels);

  std::lognormal_distribution<float> noise(0.f, 0.25f);
  std::vector<float> loss;
  for (int i = 0; i < 10000; ++i) loss.push_back((0.35f + 0.7f * std::exp(-i / 900.f)) * noise(rng));
  ddpm::plot::write_loss_curve_png((out / "loss.png").string(), loss, "training loss");

  // A model's log-density (a mixture of Gaussians along the moons) beside samples of the data.
  const Points data = moons(20000, 24);
  const ddpm::plot::DensityWindow window = ddpm::plot::density_window(data);
  const Points centres = ddpm::plot::grid_cell_centres(256, window);
  ddpm::plot::GridValues logp{256, window, {}};
  for (std::size_t i = 0; i < centres.size(); i += 2) {
    double sum = 0;
    for (int k = 0; k < 16; ++k) {
      const double a = 3.14159265 * (k % 8) / 7, s = 0.12;
      const double mx = k < 8 ? std::cos(a) : 1 - std::cos(a), my = k < 8 ? std::sin(a) : 0.5 - std::sin(a);
      const double dx = centres[i] - mx, dy = centres[i + 1] - my;
      sum += std::exp(-(dx * dx + dy * dy) / (2 * s * s)) / (2 * 3.14159265 * s * s * 16);
    }
    logp.values.push_back(std::log(sum));
  }
  ddpm::plot::write_heatmap_png((out / "heatmap.png").string(), logp, "model log-density", "log p(x), nats",
                                data, "held-out data (n=20000)");

  for (const char* name : {"scatter.png", "density.png", "forward.png", "loss.png", "heatmap.png"})
    EXPECT_GT(load(out / name).w, 0) << name;
}

}  // namespace
