#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ddpm/moons.hpp"
#include "host/cpu/batch.hpp"
#include "host/cpu/cpu_backend.hpp"

namespace ddpm {
namespace {

TEST(Moons, GridMatchesScikitLearnsDefinition) {
  for (int n : {2, 3, 7, 512, 1001}) {
    const int n_out = n / 2, n_in = n - n_out;
    for (int i = 0; i < n; ++i) {
      float x, y;
      moons_grid_point(i, n, x, y);
      const bool outer = i < n_out;
      const int j = outer ? i : i - n_out, cnt = outer ? n_out : n_in;
      const double a = cnt > 1 ? M_PI * j / (cnt - 1) : 0.0;
      ASSERT_NEAR(x, outer ? std::cos(a) : 1 - std::cos(a), 1e-6);
      ASSERT_NEAR(y, outer ? std::sin(a) : 1 - std::sin(a) - 0.5, 1e-6);
    }
  }
}

TEST(Moons, BatchIsNormalizedAndNoisyAroundTheCurves) {
  const uint64_t seed = std::random_device{}();
  const int n = 4096, T = 500;
  std::vector<float> raw(2 * n), eps(2 * n), x0(2 * n);
  std::vector<int> t(n);
  cpu::draw_batch_rows(seed, 3, n, T, 0, n, raw.data(), eps.data(), t.data());
  // Distance to each curve's circle: noise of std 0.05 around radius 1.
  double sq = 0;
  for (int i = 0; i < n; ++i) {
    const bool outer = i < n / 2;
    const double cx = outer ? 0 : 1, cy = outer ? 0 : 0.5;
    const double r = std::hypot(raw[2 * i] - cx, raw[2 * i + 1] - cy) - 1;
    sq += r * r;
  }
  EXPECT_NEAR(std::sqrt(sq / n), 0.05, 0.005);
  // eps ~ N(0, 1); t ~ U{1..T}.
  double es = 0, ess = 0, ts = 0;
  for (int i = 0; i < 2 * n; ++i) es += eps[i], ess += double(eps[i]) * eps[i];
  for (int i = 0; i < n; ++i) {
    ASSERT_GE(t[i], 1);
    ASSERT_LE(t[i], T);
    ts += t[i];
  }
  EXPECT_NEAR(es / (2 * n), 0, 5 / std::sqrt(2.0 * n));
  EXPECT_NEAR(ess / (2 * n), 1, 5 * std::sqrt(2.0 / (2 * n)));
  EXPECT_NEAR(ts / n, 250.5, 5 * 144.3 / std::sqrt(n));

  cpu::train_batch(seed, 3, n, T, x0.data(), eps.data(), t.data());
  for (int d = 0; d < 2; ++d) {
    double s = 0, ss = 0;
    for (int i = 0; i < n; ++i) s += x0[2 * i + d];
    const double mean = s / n;
    for (int i = 0; i < n; ++i) ss += (x0[2 * i + d] - mean) * (x0[2 * i + d] - mean);
    EXPECT_NEAR(mean, 0, 1e-6);
    EXPECT_NEAR(std::sqrt(ss / (n - 1)), 1, 1e-6);  // unbiased, as torch.std
  }
}

TEST(ForwardProcess, SnapshotsSpreadTowardsTheStandardNormal) {
  const Schedule s = Schedule::linear();
  const auto snaps = cpu::forward_process(s, 5, 2000, {0, 25, 50, 100, 500});
  ASSERT_EQ(snaps.size(), 5u);
  // t = 0 is the data itself (alpha_bar_0 = 1); t = T is close to N(0, I): unit variance, no structure.
  for (std::size_t k = 0; k < snaps.size(); ++k) {
    double ss = 0;
    for (float v : snaps[k]) ss += double(v) * v;
    EXPECT_NEAR(ss / 4000, 1.0, 0.08) << k;
  }
  EXPECT_EQ(snaps[0], cpu::forward_process(s, 5, 2000, {0})[0]);
}

}  // namespace
}  // namespace ddpm
