#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "ddpm/rng.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "tests/cpu/model_variants.hpp"
#include "tests/cpu/reference.hpp"

namespace ddpm {
namespace {

// The chain in double with the same Philox draws: x_T from the first normal pair, then one pair per step t > 1.
void reference_chain(const Schedule& s, const std::vector<float>& p, uint64_t seed, int64_t index, double xy[2],
                     const ModelConfig& model) {
  NormalPairs rng{};
  philox_init(&rng.state, seed, Stream::kSample, uint64_t(index));
  float a, b;
  rng.next(a, b);
  double x[2] = {a, b};
  for (int t = s.T; t >= 1; --t) {
    double e[2];
    ref::eps_theta(p.data(), x[0], x[1], t, e, model);
    float z0 = 0, z1 = 0;
    if (t > 1) rng.next(z0, z1);
    const double beta = s.beta[t], ab = s.alpha_bar[t], ab_prev = s.alpha_bar[t - 1];
    const double sigma = t > 1 ? std::sqrt((1 - ab_prev) / (1 - ab) * beta) : 0;
    x[0] = (x[0] - beta / std::sqrt(1 - ab) * e[0]) / std::sqrt(1 - beta) + sigma * z0;
    x[1] = (x[1] - beta / std::sqrt(1 - ab) * e[1]) / std::sqrt(1 - beta) + sigma * z1;
  }
  xy[0] = x[0];
  xy[1] = x[1];
}

class CpuSample : public ::testing::TestWithParam<ModelConfig> {};
INSTANTIATE_TEST_SUITE_P(Variants, CpuSample, test::model_variants(), test::model_variant_name);

TEST_P(CpuSample, ShortChainMatchesTheDoubleReference) {
  const ModelConfig model = GetParam();
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = Schedule::linear(20);
  const std::vector<float> p = cpu::init_params(seed, model);
  const int n = 53;
  std::vector<float> xy(2 * n, std::nanf(""));
  cpu::sample(s, p.data(), seed, 1000, n, xy.data(), {}, cpu::CpuPrecision::kFp32, model);
  for (int i = 0; i < n; ++i) {
    double want[2];
    reference_chain(s, p, seed, 1000 + i, want, model);
    ASSERT_NEAR(xy[2 * i], want[0], 1e-4 * (1 + std::abs(want[0]))) << i;
    ASSERT_NEAR(xy[2 * i + 1], want[1], 1e-4 * (1 + std::abs(want[1]))) << i;
  }
}

TEST_P(CpuSample, SameBytesForAnyChunking) {
  const ModelConfig model = GetParam();
  const uint64_t seed = std::random_device{}();
  const Schedule s = Schedule::linear(30);
  const std::vector<float> p = cpu::init_params(seed ^ 1, model);
  const int n = 211;
  const auto run = [&](uint64_t sd, int64_t first, int64_t len, float* xy) {
    cpu::sample(s, p.data(), sd, first, len, xy, {}, cpu::CpuPrecision::kFp32, model);
  };
  std::vector<float> whole(2 * n), parts(2 * n, std::nanf(""));
  run(seed, 0, n, whole.data());
  // Uneven chunks starting mid-tile: point i always uses Philox item i.
  int64_t first = 0;
  for (int64_t len : {1, 47, 50, 13, 100}) {
    run(seed, first, len, parts.data() + 2 * first);
    first += len;
  }
  ASSERT_EQ(first, n);
  EXPECT_EQ(0, std::memcmp(whole.data(), parts.data(), whole.size() * sizeof(float)));
  std::vector<float> other(2 * n);
  run(seed + 1, 0, n, other.data());
  EXPECT_NE(whole, other);
}

}  // namespace
}  // namespace ddpm
