// The plots are checked by decoding the written PNG: image sizes, where dots land,
// the colour of a histogram cell, the shared scale of panels, the smoothed loss
// line, and that failures throw without leaving files behind. A density image drawn
// from a precomputed grid is byte for byte the one drawn from the points.
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
    for (int i = 0; i < n; ++i) panels.push_back({"t=" + std::to_string(25 * i), moons(200, unsigned(i))});
    const std::string name = "p" + std::to_string(n) + ".png";
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

  for (const char* name : {"scatter.png", "density.png", "forward.png", "loss.png"})
    EXPECT_GT(load(out / name).w, 0) << name;
}

}  // namespace
