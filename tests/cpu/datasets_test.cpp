// Training batches and forward-process points of every data set, against the
// sets' definitions in double (tests/core/dataset_reference.hpp) and Philox
// outputs drawn here.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "ddpm/datasets.hpp"
#include "ddpm/error.hpp"
#include "ddpm/rng.hpp"
#include "host/cpu/batch.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "tests/core/dataset_reference.hpp"

namespace ddpm {
namespace {

uint64_t fresh_seed() { return (uint64_t(std::random_device{}()) << 32) | std::random_device{}(); }

// One batch before normalization, its eps and t; every output poisoned first.
struct RawBatch {
  std::vector<float> x0, eps;
  std::vector<int> t;
};
RawBatch draw_raw(uint64_t seed, uint64_t step, int n, int T, const DataSource& data) {
  RawBatch b{std::vector<float>(2 * std::size_t(n), NAN), std::vector<float>(2 * std::size_t(n), NAN),
             std::vector<int>(std::size_t(n), -1)};
  // In two pieces, as the trainer's row blocks draw them.
  cpu::draw_batch_rows(seed, step, n, T, 0, n / 3, b.x0.data(), b.eps.data(), b.t.data(), data);
  cpu::draw_batch_rows(seed, step, n, T, n / 3, n, b.x0.data(), b.eps.data(), b.t.data(), data);
  return b;
}

// The normalized batch as train_batch returns it.
std::vector<float> normalized(uint64_t seed, uint64_t step, int n, int T, const DataSource& data) {
  std::vector<float> x0(2 * std::size_t(n), NAN), eps(2 * std::size_t(n), NAN);
  std::vector<int> t(std::size_t(n), -1);
  cpu::train_batch(seed, step, n, T, x0.data(), eps.data(), t.data(), data);
  return x0;
}

// (x - mean) / std of each coordinate in double, std the unbiased one.
std::vector<double> normalize_in_double(const std::vector<float>& raw) {
  const std::size_t n = raw.size() / 2;
  std::vector<double> out(raw.size());
  for (int d = 0; d < 2; ++d) {
    double mean = 0, ss = 0;
    for (std::size_t i = 0; i < n; ++i) mean += raw[2 * i + d];
    mean /= double(n);
    for (std::size_t i = 0; i < n; ++i) ss += (raw[2 * i + d] - mean) * (raw[2 * i + d] - mean);
    const double sd = std::sqrt(ss / double(n - 1));
    for (std::size_t i = 0; i < n; ++i) out[2 * i + d] = (raw[2 * i + d] - mean) / sd;
  }
  return out;
}

TEST(DatasetBatch, MoonsRowsAreTheSeedsBytes) {
  const uint64_t seed = fresh_seed(), step = fresh_seed() % 100000;
  SCOPED_TRACE("seed " + std::to_string(seed) + " step " + std::to_string(step));
  const int n = 1001, T = 500;
  const RawBatch b = draw_raw(seed, step, n, T, {});
  const RawBatch named = draw_raw(seed, step, n, T, DataSource{Dataset::kMoons});
  for (int i = 0; i < n; ++i) {
    // The seed's row: make_moons' grid point plus noise * the first two normals of the row's
    // curand_normal4, eps the other two, t from the next word.
    Philox st;
    philox_init(&st, seed, Stream::kTrainBatch, step * n + i);
    const float4 z = curand_normal4(&st);
    const int t = uniform_int(curand(&st), 1, T);
    float gx, gy;
    moons_grid_point(i, n, gx, gy);
    ASSERT_EQ(b.x0[2 * i], gx + kMoonsNoise * z.x) << i;
    ASSERT_EQ(b.x0[2 * i + 1], gy + kMoonsNoise * z.y) << i;
    ASSERT_EQ(b.eps[2 * i], z.z) << i;
    ASSERT_EQ(b.eps[2 * i + 1], z.w) << i;
    ASSERT_EQ(b.t[i], t) << i;
  }
  EXPECT_EQ(b.x0, named.x0);
  EXPECT_EQ(normalized(seed, step, n, T, {}), normalized(seed, step, n, T, DataSource{Dataset::kMoons}));
}

TEST(DatasetBatch, EveryRowFollowsItsSetsDefinition) {
  const uint64_t seed = fresh_seed(), step = fresh_seed() % 100000;
  SCOPED_TRACE("seed " + std::to_string(seed) + " step " + std::to_string(step));
  const int n = 777, T = 321;
  for (Dataset d : kBuiltinDatasets) {
    SCOPED_TRACE(dataset_name(d));
    const RawBatch b = draw_raw(seed, step, n, T, DataSource{d});
    for (int i = 0; i < n; ++i) {
      // Outputs 0..3: the normals (noise, eps), 4: t, 5..7: the words.
      Philox st;
      philox_init(&st, seed, Stream::kTrainBatch, step * n + i);
      const float4 z = curand_normal4(&st);
      const int t = uniform_int(curand(&st), 1, T);
      const uint32_t w[3] = {curand(&st), curand(&st), curand(&st)};
      double x, y;
      ref::want_batch_base_point(d, i, n, w, x, y);
      x += ref::want_noise(d) * z.x;
      y += ref::want_noise(d) * z.y;
      // float sin/cos and the float t of the swiss roll (|t| up to 14.2).
      const double tol = (d == Dataset::kSwissRoll ? 2e-5 : 2e-6) * (1 + std::abs(x) + std::abs(y));
      ASSERT_NEAR(b.x0[2 * i], x, tol) << i;
      ASSERT_NEAR(b.x0[2 * i + 1], y, tol) << i;
      ASSERT_EQ(b.eps[2 * i], z.z) << i;
      ASSERT_EQ(b.eps[2 * i + 1], z.w) << i;
      ASSERT_EQ(b.t[i], t) << i;
    }
  }
}

// Sample mean and variance of one coordinate, and the standard error of that variance.
struct SampleStats {
  double mean, var, var_se;
};
SampleStats stats_of(const std::vector<float>& xy, int d) {
  const std::size_t n = xy.size() / 2;
  double mean = 0, m2 = 0, m4 = 0;
  for (std::size_t i = 0; i < n; ++i) mean += xy[2 * i + d];
  mean /= double(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double c = xy[2 * i + d] - mean;
    m2 += c * c;
    m4 += c * c * c * c;
  }
  m2 /= double(n);
  m4 /= double(n);
  return {mean, m2, std::sqrt((m4 - m2 * m2) / double(n))};
}

TEST(DatasetBatch, RawStatisticsMatchThePopulation) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const int n = 40000;
  for (Dataset d : kBuiltinDatasets) {
    SCOPED_TRACE(dataset_name(d));
    const RawBatch b = draw_raw(seed, 1, n, 500, DataSource{d});
    const ref::Moments2 want = ref::want_population_moments(d);
    for (int c = 0; c < 2; ++c) {
      const SampleStats s = stats_of(b.x0, c);
      // The grids of moons and circles are not i.i.d.; their sample moments are only closer.
      EXPECT_NEAR(s.mean, want.mean[c], 5 * std::sqrt(want.var[c] / n)) << "axis " << c;
      EXPECT_NEAR(s.var, want.var[c], 5 * s.var_se + 2 * want.var[c] / n) << "axis " << c;
    }
  }
}

TEST(DatasetBatch, RawPointsHaveTheirSetsShape) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const int n = 40000;
  {  // circles: the first half at radius 1, the rest at 0.5, radial noise of std 0.05
    const RawBatch b = draw_raw(seed, 2, n, 500, DataSource{Dataset::kCircles});
    double sq[2] = {0, 0};
    for (int i = 0; i < n; ++i) {
      const int inner = i >= n / 2;
      const double r = std::hypot(b.x0[2 * i], b.x0[2 * i + 1]) - (inner ? 0.5 : 1.0);
      sq[inner] += r * r;
    }
    for (int k = 0; k < 2; ++k) EXPECT_NEAR(std::sqrt(sq[k] / (n / 2)), 0.05, 0.002) << "circle " << k;
  }
  {  // 8 gaussians: each centre an eighth of the rows, distance^2 to it 2 * 0.5^2 on average
    const RawBatch b = draw_raw(seed, 3, n, 500, DataSource{Dataset::kEightGaussians});
    std::vector<int> count(8, 0);
    double d2 = 0;
    for (int i = 0; i < n; ++i) {
      double best = INFINITY;
      int k_best = -1;
      for (int k = 0; k < 8; ++k) {
        const double dx = b.x0[2 * i] - 4 * std::cos(k * ref::kPiD / 4);
        const double dy = b.x0[2 * i + 1] - 4 * std::sin(k * ref::kPiD / 4);
        if (dx * dx + dy * dy < best) best = dx * dx + dy * dy, k_best = k;
      }
      ++count[k_best];
      d2 += best;
    }
    for (int k = 0; k < 8; ++k) EXPECT_NEAR(count[k], n / 8.0, 5 * std::sqrt(n * 7.0 / 64)) << "centre " << k;
    EXPECT_NEAR(d2 / n, 0.5, 0.02);  // centres 3 apart: nearly no point is nearer another centre
  }
  {  // checkerboard: only the 8 cells with an even column + row, each an eighth
    const RawBatch b = draw_raw(seed, 4, n, 500, DataSource{Dataset::kCheckerboard});
    int cells[4][4] = {};
    for (int i = 0; i < n; ++i) {
      const float x = b.x0[2 * i], y = b.x0[2 * i + 1];
      ASSERT_TRUE(x >= -4 && x < 4 && y >= -4 && y < 4) << x << " " << y;
      const int c = int(std::floor(x / 2)), r = int(std::floor(y / 2));
      ASSERT_EQ((c + r + 4) % 2, 0) << x << " " << y;
      ++cells[c + 2][r + 2];
    }
    for (int c = 0; c < 4; ++c)
      for (int r = 0; r < 4; ++r) {
        if ((c + r) % 2 == 0) {
          EXPECT_NEAR(cells[c][r], n / 8.0, 5 * std::sqrt(n * 7.0 / 64)) << c << " " << r;
        }
      }
  }
  {  // spiral: half the rows on each arm, noise of std 0.08 around it, the radius uniform on [0.5, 3.5]
    const RawBatch b = draw_raw(seed, 6, n, 500, DataSource{Dataset::kSpiral});
    const int checked = 4000;
    int on_arm[2] = {0, 0}, inside = 0;
    double sq = 0;
    for (int i = 0; i < checked; ++i) {
      // Nearest point of either arm by a fine search over the radius (the arms are 1 apart).
      double best = INFINITY;
      int arm_best = -1;
      for (int arm = 0; arm < 2; ++arm)
        for (int k = 0; k <= 6000; ++k) {
          double ax, ay;
          ref::spiral_arm(arm, 0.5 + 3.0 * k / 6000, ax, ay);
          const double dx = b.x0[2 * i] - ax, dy = b.x0[2 * i + 1] - ay;
          if (dx * dx + dy * dy < best) best = dx * dx + dy * dy, arm_best = arm;
        }
      ++on_arm[arm_best];
      sq += best;
      inside += std::hypot(b.x0[2 * i], b.x0[2 * i + 1]) < 2.0;
    }
    for (int arm = 0; arm < 2; ++arm) EXPECT_NEAR(on_arm[arm], checked / 2.0, 5 * std::sqrt(checked / 4.0)) << arm;
    EXPECT_NEAR(inside, checked / 2.0, 5 * std::sqrt(checked / 4.0));
    // The normal component of N(0, 0.08^2 I): rms 0.08, a little less at the ends.
    const double rms = std::sqrt(sq / checked);
    EXPECT_GT(rms, 0.07);
    EXPECT_LT(rms, 0.085);
  }
  {  // swiss roll: t = |b| is uniform on [1.5 pi, 4.5 pi]; the noise of std 1 around the spiral
    const RawBatch b = draw_raw(seed, 5, n, 500, DataSource{Dataset::kSwissRoll});
    double sq = 0;
    const int checked = 2000;
    for (int i = 0; i < checked; ++i) {
      // Nearest spiral point by a fine search over t, then the distance to it.
      double best = INFINITY;
      for (int k = 0; k <= 3000; ++k) {
        const double t = 1.5 * ref::kPiD + 3 * ref::kPiD * k / 3000;
        const double dx = b.x0[2 * i] - t * std::cos(t), dy = b.x0[2 * i + 1] - t * std::sin(t);
        best = std::min(best, dx * dx + dy * dy);
      }
      sq += best;
    }
    // Distance to a curve of noise N(0, I): the normal component, rms ~ 1 (less near the ends).
    const double rms = std::sqrt(sq / checked);
    EXPECT_GT(rms, 0.8);
    EXPECT_LT(rms, 1.05);
  }
}

TEST(DatasetBatch, NormalizedPerBatchForEverySet) {
  const uint64_t seed = fresh_seed(), step = fresh_seed() % 1000;
  SCOPED_TRACE("seed " + std::to_string(seed) + " step " + std::to_string(step));
  std::mt19937 gen{uint32_t(seed)};
  std::normal_distribution<float> z;
  std::vector<float> file(2 * 53);
  for (float& v : file) v = 3.f + 10.f * z(gen);
  std::vector<DataSource> sources;
  for (Dataset d : kBuiltinDatasets) sources.push_back({d});
  sources.push_back({Dataset::kFile, file.data(), 53});
  for (int n : {2, 3, 100, 513}) {
    for (const DataSource& data : sources) {
      SCOPED_TRACE(std::string(dataset_name(data.dataset)) + " n " + std::to_string(n));
      const RawBatch raw = draw_raw(seed, step, n, 500, data);
      const std::vector<float> x0 = normalized(seed, step, n, 500, data);
      const std::vector<double> want = normalize_in_double(raw.x0);
      bool spread = true;  // two rows of a file may be the same point
      for (int d = 0; d < 2; ++d) spread = spread && raw.x0[d] != raw.x0[2 * (n - 1) + d];
      if (n == 2 && !spread) continue;
      for (std::size_t i = 0; i < x0.size(); ++i) ASSERT_NEAR(x0[i], want[i], 1e-5 * (1 + std::abs(want[i]))) << i;
      for (int d = 0; d < 2; ++d) {
        double s = 0, ss = 0;
        for (int i = 0; i < n; ++i) s += x0[2 * i + d];
        for (int i = 0; i < n; ++i) ss += (x0[2 * i + d] - s / n) * (x0[2 * i + d] - s / n);
        EXPECT_NEAR(s / n, 0, 1e-6);
        EXPECT_NEAR(std::sqrt(ss / (n - 1)), 1, 1e-6);  // unbiased, as torch.std
      }
    }
  }
}

TEST(DatasetBatch, FileRowsArePointsOfTheFileAndReachEveryOne) {
  const uint64_t seed = fresh_seed(), step = fresh_seed() % 1000;
  SCOPED_TRACE("seed " + std::to_string(seed) + " step " + std::to_string(step));
  std::mt19937 gen{uint32_t(seed)};
  std::uniform_real_distribution<float> u(-50, 50);
  const int count = 37, n = 2000;
  std::vector<float> file(2 * count);
  for (float& v : file) v = u(gen);
  const DataSource data{Dataset::kFile, file.data(), count};
  const RawBatch b = draw_raw(seed, step, n, 500, data);
  std::vector<int> hits(count, 0);
  for (int i = 0; i < n; ++i) {
    // Row i is point floor(w count / 2^32) of the file, w the row's output 5.
    Philox st;
    philox_init(&st, seed, Stream::kTrainBatch, step * n + i);
    for (int k = 0; k < 5; ++k) curand(&st);
    const int64_t j = int64_t((uint64_t(curand(&st)) * count) >> 32);
    ASSERT_EQ(b.x0[2 * i], file[2 * j]) << i;
    ASSERT_EQ(b.x0[2 * i + 1], file[2 * j + 1]) << i;
    ++hits[j];
  }
  for (int j = 0; j < count; ++j) EXPECT_NEAR(hits[j], double(n) / count, 5 * std::sqrt(double(n) / count)) << j;
}

TEST(DatasetBatch, ABatchOfOneRepeatedFilePointIsCentredNotNaN) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const std::vector<float> file = {1.f, 2.f, 5.f, -3.f};
  const DataSource data{Dataset::kFile, file.data(), 2};
  int found = 0;
  for (uint64_t step = 0; step < 200 && found < 3; ++step) {  // each step repeats a point with probability 1/2
    const RawBatch raw = draw_raw(seed, step, 2, 500, data);
    if (raw.x0[0] != raw.x0[2]) continue;
    ++found;
    for (float v : normalized(seed, step, 2, 500, data)) ASSERT_EQ(v, 0.f) << step;
  }
  EXPECT_EQ(found, 3);
}

TEST(DatasetBatch, RejectsABadFileSource) {
  std::vector<float> x0(4), eps(4);
  std::vector<int> t(2);
  const std::vector<float> one = {1.f, 2.f}, nan = {1.f, 2.f, NAN, 0.f};
  for (const DataSource& bad : {DataSource{Dataset::kFile}, DataSource{Dataset::kFile, one.data(), 1},
                                DataSource{Dataset::kFile, nan.data(), 2}}) {
    EXPECT_THROW(cpu::train_batch(0, 0, 2, 500, x0.data(), eps.data(), t.data(), bad), Error);
    EXPECT_THROW(cpu::forward_process(Schedule::linear(), 0, 10, {0}, bad), Error);
  }
}

TEST(DatasetForwardProcess, SnapshotZeroIsTheSetsNormalizedBatch) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule sched = Schedule::linear();
  const int n = 600;
  std::vector<float> file(2 * 11);
  for (std::size_t k = 0; k < file.size(); ++k) file[k] = float(k * k % 7) - 2.5f * float(k % 2);
  std::vector<DataSource> sources;
  for (Dataset d : kBuiltinDatasets) sources.push_back({d});
  sources.push_back({Dataset::kFile, file.data(), 11});
  for (const DataSource& data : sources) {
    SCOPED_TRACE(dataset_name(data.dataset));
    const auto snaps = cpu::forward_process(sched, seed, n, {0, sched.T}, data);
    ASSERT_EQ(snaps.size(), 2u);
    // Point i: normals = pair 0 of its kForwardProcess stream, words = outputs 0..2 of kForwardData item i.
    std::vector<float> raw(2 * n);
    for (int i = 0; i < n; ++i) {
      Philox st;
      philox_init(&st, seed, Stream::kForwardProcess, uint64_t(i));
      const float4 z = curand_normal4(&st);
      Philox sw;
      philox_init(&sw, seed, Stream::kForwardData, uint64_t(i));
      const uint32_t w[3] = {curand(&sw), curand(&sw), curand(&sw)};
      double x, y;
      if (data.dataset == Dataset::kFile) {
        const int64_t j = int64_t((uint64_t(w[0]) * 11) >> 32);
        x = file[2 * j];
        y = file[2 * j + 1];
      } else {
        ref::want_batch_base_point(data.dataset, i, n, w, x, y);
        x += ref::want_noise(data.dataset) * z.x;
        y += ref::want_noise(data.dataset) * z.y;
      }
      raw[2 * i] = float(x);
      raw[2 * i + 1] = float(y);
    }
    const std::vector<double> want = normalize_in_double(raw);
    for (std::size_t k = 0; k < want.size(); ++k) ASSERT_NEAR(snaps[0][k], want[k], 1e-4 * (1 + std::abs(want[k]))) << k;
    // At t = T the data is nearly gone: unit variance.
    double ss = 0;
    for (float v : snaps[1]) ss += double(v) * v;
    EXPECT_NEAR(ss / (2 * n), 1.0, 0.15);
  }
  // Moons: the seed's figure, bit for bit: grid point + noise * pair 0.
  const auto moons = cpu::forward_process(sched, seed, n, {0});
  std::vector<float> raw(2 * n);
  for (int i = 0; i < n; ++i) {
    Philox st;
    philox_init(&st, seed, Stream::kForwardProcess, uint64_t(i));
    const float4 z = curand_normal4(&st);
    float gx, gy;
    moons_grid_point(i, n, gx, gy);
    raw[2 * i] = gx + kMoonsNoise * z.x;
    raw[2 * i + 1] = gy + kMoonsNoise * z.y;
  }
  cpu::normalize_rows(cpu::batch_stats(raw.data(), n), 0, n, raw.data());
  EXPECT_EQ(moons[0], raw);
}

}  // namespace
}  // namespace ddpm
