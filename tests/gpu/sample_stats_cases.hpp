// The checks of SampleStats, shared by its two builds: Thrust's CPP system on the
// host (sample_stats_test.cpp, always) and CUDA (sample_stats_gpu_test.cpp). Each
// build supplies a factory; the references are plain double-precision loops and
// plot::density_grid, cell for cell. Seeds are fresh each run and traced on failure.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ddpm/error.hpp"
#include "host/gpu/sample_stats.hpp"
#include "host/plot/plot.hpp"

namespace ddpm::testing {

using plot::DensityGrid;
using plot::DensityWindow;
using plot::Points;

// One build of SampleStats, fed chunks from host memory.
class StatsUnderTest {
 public:
  virtual ~StatsUnderTest() = default;
  virtual void add(const Points& chunk) = 0;  // all of chunk's pairs
  virtual gpu::SampleMoments moments() = 0;
  virtual DensityGrid histogram() = 0;
};
using StatsFactory = std::function<std::unique_ptr<StatsUnderTest>(int bins, const DensityWindow& window)>;

inline uint64_t fresh_seed() {
  std::random_device rd;
  return (uint64_t(rd()) << 32) | rd();
}

// What a chunk's memory holds past its last point: a read beyond n shows.
inline constexpr float kTailPoison[] = {std::numeric_limits<float>::quiet_NaN(), 1e30f, -7.f, 3.f};

// ---- Data ----

enum class Shape {
  kMixed,  // blobs of several scales, ~1% non-finite coordinates, a few far outliers
  kFar,    // one unit blob around (1e4, -3e4): naive sums of squares lose every digit
};

// Sizes that are multiples of nothing in particular, an empty chunk, a lone point.
inline std::vector<Points> random_chunks(uint64_t seed, Shape shape) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> sizes = {1, 0, 7, 1013, 65537, 120011, 2, 99991};
  std::uniform_int_distribution<int64_t> extra(3, 50000);
  for (int i = 0; i < 3; ++i) sizes.push_back(extra(rng));
  std::shuffle(sizes.begin(), sizes.end(), rng);

  std::normal_distribution<double> g(0.0, 1.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const double cx[] = {0.0, 2.5, -1.5}, cy[] = {0.0, 1.0, -2.0}, sd[] = {0.3, 0.05, 1.2};
  std::vector<Points> chunks;
  for (int64_t n : sizes) {
    Points c;
    c.reserve(std::size_t(2 * n));
    for (int64_t i = 0; i < n; ++i) {
      float x, y;
      if (shape == Shape::kFar) {
        x = float(1e4 + g(rng)), y = float(-3e4 + 0.5 * g(rng));
      } else {
        const int k = int(u(rng) * 3);
        x = float(cx[k] + sd[k] * g(rng)), y = float(cy[k] + sd[k] * 0.7 * g(rng) + 0.3 * sd[k] * g(rng));
        const double r = u(rng);
        if (r < 0.004)
          x = nan;
        else if (r < 0.006)
          y = inf;
        else if (r < 0.008)
          x = -inf, y = nan;
        else if (r < 0.010)
          y = -inf;
        else if (r < 0.0103)
          x = float(40 * g(rng)), y = float(40 * g(rng));  // outliers
      }
      c.push_back(x);
      c.push_back(y);
    }
    chunks.push_back(std::move(c));
  }
  return chunks;
}

inline Points concat(const std::vector<Points>& chunks) {
  Points all;
  for (const Points& c : chunks) all.insert(all.end(), c.begin(), c.end());
  return all;
}

// ---- References ----

// Two passes in double over the finite points; var and cov divide by n.
inline gpu::SampleMoments reference_moments(const Points& xy) {
  gpu::SampleMoments m;
  double sx = 0, sy = 0;
  float lo[2] = {std::numeric_limits<float>::max(), std::numeric_limits<float>::max()};
  float hi[2] = {-lo[0], -lo[1]};
  for (std::size_t i = 0; i + 1 < xy.size(); i += 2) {
    const float x = xy[i], y = xy[i + 1];
    if (!std::isfinite(x) || !std::isfinite(y)) {
      ++m.non_finite;
      continue;
    }
    ++m.n;
    sx += x, sy += y;
    lo[0] = std::min(lo[0], x), lo[1] = std::min(lo[1], y);
    hi[0] = std::max(hi[0], x), hi[1] = std::max(hi[1], y);
  }
  if (m.n == 0) return m;
  const double n = double(m.n), mx = sx / n, my = sy / n;
  double sxx = 0, syy = 0, sxy = 0;
  for (std::size_t i = 0; i + 1 < xy.size(); i += 2) {
    const float x = xy[i], y = xy[i + 1];
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    sxx += (x - mx) * (x - mx), syy += (y - my) * (y - my), sxy += (x - mx) * (y - my);
  }
  m.mean[0] = mx, m.mean[1] = my;
  m.var[0] = sxx / n, m.var[1] = syy / n, m.cov = sxy / n;
  m.min[0] = lo[0], m.min[1] = lo[1], m.max[0] = hi[0], m.max[1] = hi[1];
  return m;
}

// Means to 1e-12 relative (plus 1e-12 of a standard deviation), variances and the
// covariance to 1e-10 relative: sums of squares about zero would miss the latter by
// orders of magnitude for kFar, where (mean / std)^2 is 1e8 to 4e9. (Means summed in
// different orders differ by some sqrt(n) ulps: a few 1e-14 for n ~ 4e5.)
inline void expect_moments_match(const gpu::SampleMoments& got, const gpu::SampleMoments& want) {
  EXPECT_EQ(got.n, want.n);
  EXPECT_EQ(got.non_finite, want.non_finite);
  for (int d = 0; d < 2; ++d) {
    const double sd = std::sqrt(want.var[d]);
    EXPECT_NEAR(got.mean[d], want.mean[d], 1e-12 * (sd + std::fabs(want.mean[d]))) << "dim " << d;
    EXPECT_NEAR(got.var[d], want.var[d], 1e-10 * want.var[d]) << "dim " << d;
    EXPECT_EQ(got.min[d], want.min[d]) << "dim " << d;
    EXPECT_EQ(got.max[d], want.max[d]) << "dim " << d;
  }
  EXPECT_NEAR(got.cov, want.cov, 1e-10 * std::sqrt(want.var[0] * want.var[1])) << "cov";
}

inline void expect_grids_equal(const DensityGrid& got, const DensityGrid& want) {
  ASSERT_EQ(got.bins, want.bins);
  EXPECT_EQ(got.x0, want.x0);
  EXPECT_EQ(got.x1, want.x1);
  EXPECT_EQ(got.y0, want.y0);
  EXPECT_EQ(got.y1, want.y1);
  EXPECT_EQ(got.non_finite, want.non_finite);
  ASSERT_EQ(got.counts.size(), want.counts.size());
  int64_t differing = 0, first = -1;
  for (std::size_t i = 0; i < want.counts.size(); ++i)
    if (got.counts[i] != want.counts[i] && differing++ == 0) first = int64_t(i);
  EXPECT_EQ(differing, 0) << "first differing cell " << first << " (row " << first / want.bins << ", column "
                          << first % want.bins << "): " << (first >= 0 ? got.counts[std::size_t(first)] : 0)
                          << " vs " << (first >= 0 ? want.counts[std::size_t(first)] : 0);
}

inline std::unique_ptr<StatsUnderTest> fed(const StatsFactory& make, int bins, const DensityWindow& w,
                                           const std::vector<Points>& chunks) {
  auto stats = make(bins, w);
  for (const Points& c : chunks) stats->add(c);
  return stats;
}

// ---- The cases ----

// Random chunks over the image's own window: moments and every cell.
inline void check_random_chunks(const StatsFactory& make) {
  for (int rep = 0; rep < 3; ++rep) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    const std::vector<Points> chunks = random_chunks(seed, Shape::kMixed);
    const Points all = concat(chunks);
    const int bins = std::vector<int>{400, 333, 1, 4096}[std::size_t(rep + seed % 2)];
    SCOPED_TRACE("bins " + std::to_string(bins));
    const DensityWindow w = plot::density_window(all);
    const auto stats = fed(make, bins, w, chunks);
    expect_moments_match(stats->moments(), reference_moments(all));
    const DensityGrid want = plot::density_grid(all, bins);
    expect_grids_equal(stats->histogram(), want);
  }
}

// A window over part of the data, and points at any distance from it: they land in
// the edge cells exactly as the CPU bins them.
inline void check_points_outside_the_window(const StatsFactory& make) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::vector<Points> chunks = random_chunks(seed, Shape::kMixed);
  chunks.push_back(
      {1e30f, 0.f, -1e30f, 0.f, 0.f, 3e38f, 0.f, -3e38f, 3e38f, 3e38f, -3e38f, -3e38f, 1e-30f, -1e-30f});
  const Points all = concat(chunks);
  const DensityWindow w{-0.7, 1.9, -0.4, 0.9};  // not square, and cuts through the blobs
  for (int bins : {250, 37}) {
    const auto stats = fed(make, bins, w, chunks);
    const DensityGrid got = stats->histogram();
    const DensityGrid want = plot::density_grid(all, bins, w);
    expect_grids_equal(got, want);
    // The corners took the far points.
    const auto at = [&](int r, int c) { return got.counts[std::size_t(r) * bins + c]; };
    EXPECT_GT(at(0, 0), 0u);
    EXPECT_GT(at(0, bins - 1), 0u);
    EXPECT_GT(at(bins - 1, 0), 0u);
    EXPECT_GT(at(bins - 1, bins - 1), 0u);
    expect_moments_match(stats->moments(), reference_moments(all));
  }
}

// One blob far from the origin: the merge keeps the variance's digits.
inline void check_far_from_the_origin(const StatsFactory& make) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const std::vector<Points> chunks = random_chunks(seed, Shape::kFar);
  const Points all = concat(chunks);
  const auto stats = fed(make, 64, plot::density_window(all), chunks);
  const gpu::SampleMoments got = stats->moments(), want = reference_moments(all);
  expect_moments_match(got, want);
  EXPECT_NEAR(want.var[0], 1.0, 0.05);
  EXPECT_NEAR(want.var[1], 0.25, 0.02);
  expect_grids_equal(stats->histogram(), plot::density_grid(all, 64));
}

// The histogram is read between chunks without disturbing the sums; the window the
// moments' extremes give is exactly the one plot computes from the points.
inline void check_incremental_reads(const StatsFactory& make) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const std::vector<Points> chunks = random_chunks(seed, Shape::kMixed);
  const Points all = concat(chunks);
  const DensityWindow w = plot::density_window(all);
  auto stats = make(200, w);
  Points so_far;
  for (std::size_t k = 0; k < chunks.size(); ++k) {
    stats->add(chunks[k]);
    so_far.insert(so_far.end(), chunks[k].begin(), chunks[k].end());
    if (k % 3 == 1 || k + 1 == chunks.size()) {
      SCOPED_TRACE("after chunk " + std::to_string(k));
      expect_grids_equal(stats->histogram(), plot::density_grid(so_far, 200, w));
      expect_moments_match(stats->moments(), reference_moments(so_far));
    }
  }
  const gpu::SampleMoments m = stats->moments();
  const DensityWindow from_moments = plot::density_window(m.min[0], m.max[0], m.min[1], m.max[1]);
  EXPECT_EQ(from_moments.x0, w.x0);
  EXPECT_EQ(from_moments.x1, w.x1);
  EXPECT_EQ(from_moments.y0, w.y0);
  EXPECT_EQ(from_moments.y1, w.y1);
}

// Nothing finite: zero moments, an empty histogram that still counts what it left out.
inline void check_no_finite_points(const StatsFactory& make) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const DensityWindow w = plot::density_window({});
  auto stats = make(50, w);
  expect_grids_equal(stats->histogram(), plot::density_grid({}, 50, w));  // zeroed, not left as found
  stats->add({});
  stats->add({nan, 1.f, 2.f, inf, -inf, nan, nan, nan, 0.f, -inf});
  const gpu::SampleMoments m = stats->moments();
  EXPECT_EQ(m.n, 0);
  EXPECT_EQ(m.non_finite, 5);
  EXPECT_EQ(m.mean[0], 0.0);
  EXPECT_EQ(m.var[1], 0.0);
  EXPECT_EQ(m.cov, 0.0);
  const DensityGrid g = stats->histogram();
  EXPECT_EQ(g.non_finite, 5);
  EXPECT_EQ(std::count(g.counts.begin(), g.counts.end(), 0u), 50 * 50);
  // A lone point then lands alone.
  stats->add({0.25f, -0.5f});
  expect_grids_equal(
      stats->histogram(),
      plot::density_grid({nan, 1.f, 2.f, inf, -inf, nan, nan, nan, 0.f, -inf, 0.25f, -0.5f}, 50, w));
  EXPECT_EQ(stats->moments().n, 1);
  EXPECT_EQ(stats->moments().var[0], 0.0);
}

inline void check_bad_arguments(const StatsFactory& make) {
  const DensityWindow ok{0, 1, 0, 1};
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (int bins : {0, -1, 4097}) EXPECT_THROW(make(bins, ok), Error) << bins;
  for (const DensityWindow& w :
       {DensityWindow{1, 1, 0, 1}, DensityWindow{0, 1, 2, 1}, DensityWindow{nan, 1, 0, 1},
        DensityWindow{0, inf, 0, 1}, DensityWindow{-inf, inf, 0, 1}})
    EXPECT_THROW(make(10, w), Error);
  EXPECT_NO_THROW(make(4096, ok));
}

}  // namespace ddpm::testing
