// The data sets' generators (ddpm/datasets.hpp) against their definitions in
// double, and the Philox draws that feed them (ddpm/rng.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <string>

#include "ddpm/datasets.hpp"
#include "ddpm/error.hpp"
#include "ddpm/rng.hpp"
#include "tests/core/dataset_reference.hpp"

namespace ddpm {
namespace {

using ref::kPiD;
using ref::want_base_point;

uint64_t fresh_seed() { return (uint64_t(std::random_device{}()) << 32) | std::random_device{}(); }

// The first `count` 32-bit outputs of an item's Philox subsequence, one at a time.
std::vector<uint32_t> outputs(uint64_t seed, Stream s, uint64_t item, int count) {
  Philox st;
  philox_init(&st, seed, s, item);
  std::vector<uint32_t> out(count);
  for (uint32_t& w : out) w = curand(&st);
  return out;
}

TEST(DatasetNames, RoundTripAndRejectOtherStrings) {
  std::set<std::string> seen;
  for (Dataset d : kBuiltinDatasets) {
    EXPECT_EQ(builtin_dataset(dataset_name(d)), d) << dataset_name(d);
    EXPECT_TRUE(seen.insert(dataset_name(d)).second) << dataset_name(d);
    EXPECT_NE(builtin_dataset_names().find(dataset_name(d)), std::string::npos) << dataset_name(d);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"moons", "circles", "swissroll", "8gaussians", "checkerboard", "spiral"}));
  for (const char* other : {"", "moon", "Moons", "file", "points.npy", "moons ", "8-gaussians", "spirals"})
    EXPECT_FALSE(builtin_dataset(other).has_value()) << other;
  EXPECT_EQ(std::string(dataset_name(Dataset::kFile)), "file");
}

TEST(DatasetWords, UniformsAreExactOnTheirGrids) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Philox a, b;
  philox_init(&a, seed, Stream::kEvalReference, 3);
  philox_init(&b, seed, Stream::kEvalReference, 3);
  for (int i = 0; i < 100000; ++i) {
    const uint32_t w = curand(&a);
    // cuRAND's own conversion of the same word, bit for bit.
    ASSERT_EQ(curand_uniform_of(w), curand_uniform(&b)) << w;
    const double u = uniform_01(w);
    ASSERT_EQ(u, double(w >> 9) / 8388608.0) << w;  // k / 2^23, exactly
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
  EXPECT_EQ(uniform_01(0u), 0.f);
  EXPECT_EQ(double(uniform_01(0xffffffffu)), 1.0 - 1.0 / 8388608.0);
  EXPECT_GT(curand_uniform_of(0u), 0.f);
  EXPECT_EQ(curand_uniform_of(0xffffffffu), 1.f);
}

TEST(DatasetWords, FileIndexReachesEveryIndexInOrder) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 gen(seed);
  for (int64_t count : {int64_t(1), int64_t(2), int64_t(7), int64_t(1000), int64_t(gen() % 100000 + 1),
                        kMaxFilePoints}) {
    SCOPED_TRACE("count " + std::to_string(count));
    EXPECT_EQ(file_index(0u, count), 0);
    EXPECT_EQ(file_index(0xffffffffu, count), count - 1);
    // Index j begins at the smallest word w with w count >= j 2^32: reached, and preceded by j - 1.
    for (int k = 0; k < 2000; ++k) {
      const int64_t j = k < count ? k : int64_t(gen() % uint64_t(count));
      if (j == 0) continue;
      const uint64_t first = (uint64_t(j) * (uint64_t(1) << 32) + uint64_t(count) - 1) / uint64_t(count);
      ASSERT_EQ(file_index(uint32_t(first), count), j);
      ASSERT_EQ(file_index(uint32_t(first - 1), count), j - 1);
    }
  }
}

TEST(Circles, GridMatchesScikitLearnsDefinition) {
  for (int n : {2, 3, 7, 512, 1001}) {
    const int n_out = n / 2, n_in = n - n_out;
    for (int i = 0; i < n; ++i) {
      float x = NAN, y = NAN;
      circles_grid_point(i, n, x, y);
      const bool outer = i < n_out;
      const int j = outer ? i : i - n_out, cnt = outer ? n_out : n_in;
      const double a = 2 * kPiD * j / cnt, r = outer ? 1.0 : 0.5;  // linspace(0, 2 pi, cnt, endpoint=False)
      ASSERT_NEAR(x, r * std::cos(a), 1e-6) << n << " " << i;
      ASSERT_NEAR(y, r * std::sin(a), 1e-6) << n << " " << i;
    }
  }
}

TEST(Datasets, TrueBasePointsFollowTheirDefinitions) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (Dataset d : kBuiltinDatasets) {
    SCOPED_TRACE(dataset_name(d));
    for (uint64_t item = 0; item < 20000; ++item) {
      const std::vector<uint32_t> w = outputs(seed, Stream::kEvalReference, item, 3);
      PointRandom r{{NAN, NAN}, {w[0], w[1], w[2]}};
      float x = NAN, y = NAN;
      true_base_point(d, r, x, y);
      double wx = NAN, wy = NAN;
      want_base_point(d, w.data(), wx, wy);
      // float sin/cos of an angle up to 4.5 pi: ~1e-6 relative on the radius t of the swiss roll.
      const double tol = 2e-6 * (1 + std::abs(wx) + std::abs(wy)) * (d == Dataset::kSwissRoll ? 10 : 1);
      ASSERT_NEAR(x, wx, tol) << item;
      ASSERT_NEAR(y, wy, tol) << item;
    }
  }
}

TEST(Datasets, EightGaussiansCentresAreExact) {
  for (int k = 0; k < 8; ++k) {
    float x = NAN, y = NAN;
    eight_gaussians_centre(k, x, y);
    EXPECT_NEAR(x, 4 * std::cos(k * kPiD / 4), 1e-6) << k;
    EXPECT_NEAR(y, 4 * std::sin(k * kPiD / 4), 1e-6) << k;
    if (k % 2 == 0) {
      EXPECT_TRUE(x == 0.f || y == 0.f) << k;  // exact zeros on the axes
    }
    // The centre is word 0's top three bits.
    PointRandom r{{0, 0}, {uint32_t(k) << 29, 0, 0}};
    float cx = NAN, cy = NAN;
    true_base_point(Dataset::kEightGaussians, r, cx, cy);
    EXPECT_EQ(cx, x);
    EXPECT_EQ(cy, y);
  }
}

TEST(Datasets, CheckerboardPointsAreExactAndOnlyInOccupiedCells) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen{uint32_t(seed)};
  // Random words, and the words at every cell boundary of both uniforms.
  std::vector<uint32_t> words;
  for (int i = 0; i < 200000; ++i) words.push_back(gen());
  for (uint64_t edge = 0; edge <= 4; ++edge)
    for (int64_t off : {-513, -512, -1, 0, 1, 511, 512}) {
      const int64_t v = int64_t(edge << 30) + off;
      if (v >= 0 && v <= 0xffffffffll) words.push_back(uint32_t(v));
    }
  int64_t cells[4][4] = {};
  for (std::size_t i = 0; i < words.size(); ++i) {
    const uint32_t w[3] = {words[i], words[(i * 7 + 3) % words.size()], words[(i * 13 + 5) % words.size()]};
    PointRandom r{{0, 0}, {w[0], w[1], w[2]}};
    float x = NAN, y = NAN;
    true_base_point(Dataset::kCheckerboard, r, x, y);
    double wx = NAN, wy = NAN;
    want_base_point(Dataset::kCheckerboard, w, wx, wy);
    ASSERT_EQ(double(x), wx) << w[0] << " " << w[1] << " " << w[2];  // exact: no rounding into a neighbour
    ASSERT_EQ(double(y), wy) << w[0] << " " << w[1] << " " << w[2];
    ASSERT_GE(x, -4.f);
    ASSERT_LT(x, 4.f);
    ASSERT_GE(y, -4.f);
    ASSERT_LT(y, 4.f);
    const int c = int(std::floor(x / 2)), row = int(std::floor(y / 2));
    ASSERT_EQ((c + row + 4) % 2, 0) << x << " " << y;  // never an empty cell
    ++cells[c + 2][row + 2];
  }
  for (int c = 0; c < 4; ++c)
    for (int row = 0; row < 4; ++row)
      if ((c + row) % 2 == 0) {
        EXPECT_GT(cells[c][row], 20000) << c << " " << row;  // ~1/8 of 200000 each
      }
}

TEST(Datasets, SpiralPointsFollowTheDefinitionOnBothArms) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const int n = 200000;
  int64_t second = 0, inner_half = 0;
  double worst = 0;
  for (int i = 0; i < n; ++i) {
    const std::vector<uint32_t> w = outputs(seed, Stream::kTrainBatch, uint64_t(i), 3);
    PointRandom r{{NAN, NAN}, {w[0], w[1], w[2]}};
    float x = NAN, y = NAN;
    true_base_point(Dataset::kSpiral, r, x, y);
    // The definition in double from the same words: r = 0.5 + 3 u (u = the top 23 bits / 2^23),
    // theta = 1.5 turns * 2 pi (r - 0.5) / 3, the second arm (top bit of word 1) at theta + pi.
    const double u = double(w[0] >> 9) / 8388608.0, radius = 0.5 + 3 * u;
    const int arm = int(w[1] >> 31);
    const double theta = 1.5 * 2 * kPiD * (radius - 0.5) / 3.0 + kPiD * arm;
    const double wx = radius * std::cos(theta), wy = radius * std::sin(theta);
    // float: the angle (up to 3 pi) rounds by up to ~1e-6, times the radius, plus sinf/cosf
    // (at most 1.8e-6 over 2e7 draws).
    worst = std::max({worst, std::abs(x - wx), std::abs(y - wy)});
    ASSERT_NEAR(x, wx, 2e-6 * (1 + radius)) << i;
    ASSERT_NEAR(y, wy, 2e-6 * (1 + radius)) << i;
    const double rr = std::hypot(double(x), double(y));
    ASSERT_GE(rr, 0.5 - 1e-6) << i;
    ASSERT_LT(rr, 3.5 + 1e-6) << i;
    second += arm;
    inner_half += radius < 2.0;
    // The other arm is the exact negation of this one.
    PointRandom other = r;
    other.word[1] ^= 0x80000000u;
    float ox = NAN, oy = NAN;
    true_base_point(Dataset::kSpiral, other, ox, oy);
    ASSERT_EQ(ox, -x) << i;
    ASSERT_EQ(oy, -y) << i;
  }
  const double se = 5 * std::sqrt(0.25 / n);  // 5 standard errors of a fraction
  EXPECT_NEAR(double(second) / n, 0.5, se);       // both arms, half each
  EXPECT_NEAR(double(inner_half) / n, 0.5, se);   // the radius uniform on [0.5, 3.5]
  RecordProperty("max_abs_error", std::to_string(worst));
}

TEST(Datasets, BatchPointIsTheBasePlusNoiseOrAFilePoint) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen{uint32_t(seed)};
  std::normal_distribution<float> z;
  const std::vector<float> file = {1.5f, -2.f, 3.f, 4.f, -0.25f, 8.f};
  for (int trial = 0; trial < 2000; ++trial) {
    const int n = 2 + int(gen() % 600), i = int(gen() % uint32_t(n));
    PointRandom r{{z(gen), z(gen)}, {uint32_t(gen()), uint32_t(gen()), uint32_t(gen())}};
    for (Dataset d : kBuiltinDatasets) {
      float bx = NAN, by = NAN, x = NAN, y = NAN;
      batch_base_point(d, i, n, r, bx, by);
      batch_point(DataSource{d, file.data(), 3}, i, n, r, x, y);  // built-in sets ignore the points
      const float s = dataset_noise(d);
      ASSERT_EQ(x, bx + s * r.normal[0]) << dataset_name(d);
      ASSERT_EQ(y, by + s * r.normal[1]) << dataset_name(d);
      float gx = NAN, gy = NAN;
      if (d == Dataset::kMoons) moons_grid_point(i, n, gx, gy);
      else if (d == Dataset::kCircles) circles_grid_point(i, n, gx, gy);
      else true_base_point(d, r, gx, gy);
      ASSERT_EQ(bx, gx) << dataset_name(d);
      ASSERT_EQ(by, gy) << dataset_name(d);
    }
    float x = NAN, y = NAN;
    batch_point(DataSource{Dataset::kFile, file.data(), 3}, i, n, r, x, y);
    const int64_t j = file_index(r.word[0], 3);
    ASSERT_EQ(x, file[2 * j]);
    ASSERT_EQ(y, file[2 * j + 1]);
  }
  EXPECT_EQ(dataset_noise(Dataset::kMoons), kMoonsNoise);
  EXPECT_EQ(dataset_noise(Dataset::kCircles), 0.05f);
  EXPECT_EQ(dataset_noise(Dataset::kSwissRoll), 1.0f);
  EXPECT_EQ(dataset_noise(Dataset::kEightGaussians), 0.5f);
  EXPECT_EQ(dataset_noise(Dataset::kCheckerboard), 0.f);
  EXPECT_EQ(dataset_noise(Dataset::kSpiral), 0.08f);
}

// The message of the ddpm::Error that f throws ("" when it throws none).
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Datasets, CheckPointsNamesTheBadValue) {
  auto check = [](std::vector<float> xy) {
    return error_of([&] { check_points(xy.data(), int64_t(xy.size()), "pts.csv"); });
  };
  EXPECT_EQ(check({0.f, 1.f, 2.f, 3.f}), "");
  EXPECT_EQ(check({}), "pts.csv: 0 points; a data set needs at least 2");
  EXPECT_EQ(check({1.f, 2.f}), "pts.csv: 1 point; a data set needs at least 2");
  EXPECT_EQ(check({1.f, 2.f, 3.f}), "pts.csv: odd number of coordinates (3)");
  const std::string nan = check({0.f, 1.f, 2.f, 3.f, 4.f, NAN});
  EXPECT_EQ(nan.rfind("pts.csv: point 2 has a non-finite y coordinate (", 0), 0u) << nan;
  EXPECT_NE(check({INFINITY, 1.f, 2.f, 3.f}).find("point 0 has a non-finite x"), std::string::npos);
  const std::string flat_x = check({0.5f, 1.f, 0.5f, 3.f, 0.5f, -2.f});
  EXPECT_EQ(flat_x.rfind("pts.csv: every point has x = 0.5", 0), 0u) << flat_x;
  EXPECT_NE(flat_x.find("zero variance"), std::string::npos) << flat_x;
  EXPECT_NE(check({0.f, -7.f, 1.f, -7.f}).find("every point has y = -7"), std::string::npos);
  for (const std::string& m : {nan, flat_x}) EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

TEST(RngWords, TrainRowWordsExtendTheDrawWithoutChangingIt) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 gen(seed);
  for (int trial = 0; trial < 2000; ++trial) {
    const uint64_t step = gen() % 100000;
    const int batch = 2 + int(gen() % 5000), row = int(gen() % uint64_t(batch)), T = 1 + int(gen() % 1000);
    const TrainDraw a = draw_train_row(seed, step, batch, row, T);
    uint32_t words[3] = {0, 0, 0};
    const TrainDraw b = draw_train_row(seed, step, batch, row, T, words);
    ASSERT_EQ(std::memcmp(&a, &b, sizeof a), 0);
    // Outputs 0..3 feed the four normals, output 4 is t, 5..7 are the words.
    const std::vector<uint32_t> out = outputs(seed, Stream::kTrainBatch, step * uint64_t(batch) + uint64_t(row), 8);
    ASSERT_EQ(b.t, uniform_int(out[4], 1, T));
    for (int k = 0; k < 3; ++k) ASSERT_EQ(words[k], out[5 + k]) << k;
    Philox st;
    philox_init(&st, seed, Stream::kTrainBatch, step * uint64_t(batch) + uint64_t(row));
    const float4 n = curand_normal4(&st);
    ASSERT_EQ(a.noise_x, n.x);
    ASSERT_EQ(a.eps_y, n.w);
  }
}

TEST(RngWords, DrawWordsAreTheItemsFirstOutputs) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (uint64_t item : {0ull, 1ull, 12345ull, (1ull << 48) - 1}) {
    uint32_t w[3] = {0, 0, 0};
    draw_words(seed, Stream::kForwardData, item, w);
    const std::vector<uint32_t> out = outputs(seed, Stream::kForwardData, item, 3);
    for (int k = 0; k < 3; ++k) EXPECT_EQ(w[k], out[k]);
  }
  // A stream of its own: different from the forward process's normals of the same item.
  EXPECT_NE(outputs(seed, Stream::kForwardData, 5, 3), outputs(seed, Stream::kForwardProcess, 5, 3));
}

}  // namespace
}  // namespace ddpm
