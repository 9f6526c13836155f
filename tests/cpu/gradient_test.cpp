#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "host/cpu/cpu_backend.hpp"
#include "tests/cpu/model_variants.hpp"
#include "tests/cpu/reference.hpp"

namespace ddpm {
namespace {

struct RandomBatch {
  std::vector<float> x0, eps;
  std::vector<int> t;
};

RandomBatch random_batch(std::mt19937& gen, int n, int T) {
  std::normal_distribution<float> normal(0, 1);
  std::uniform_int_distribution<int> ut(1, T);
  RandomBatch b;
  for (int i = 0; i < 2 * n; ++i) b.x0.push_back(normal(gen)), b.eps.push_back(normal(gen));
  for (int i = 0; i < n; ++i) b.t.push_back(ut(gen));
  return b;
}

class CpuModel : public ::testing::TestWithParam<ModelConfig> {};
INSTANTIATE_TEST_SUITE_P(Variants, CpuModel, test::model_variants(), test::model_variant_name);

TEST_P(CpuModel, ForwardMatchesTheDoubleReferenceOnEveryOutput) {
  const ModelConfig model = GetParam();
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen(seed);
  const std::vector<float> p = cpu::init_params(seed, model);
  ASSERT_EQ(p.size(), model.net().param_count);
  // 131 rows: not a multiple of any tile, so every remainder path runs.
  const RandomBatch b = random_batch(gen, 131, 500);
  std::vector<float> out(2 * 131, std::nanf(""));
  cpu::eps_forward(p.data(), b.x0.data(), b.t.data(), 131, out.data(), model);
  for (int r = 0; r < 131; ++r) {
    double want[2];
    ref::eps_theta(p.data(), b.x0[2 * r], b.x0[2 * r + 1], b.t[r], want, model);
    for (int d = 0; d < 2; ++d) ASSERT_NEAR(out[2 * r + d], want[d], 2e-5) << "row " << r;
  }
}

// The backward pass against central finite differences of the double reference, for every parameter.
TEST_P(CpuModel, BackwardAgainstFiniteDifferencesOnEveryParameter) {
  const ModelConfig model = GetParam();
  const std::size_t count = model.net().param_count;
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen(seed);
  const Schedule sched = Schedule::linear();
  const int n = 3;
  const RandomBatch b = random_batch(gen, n, sched.T);
  const std::vector<float> p = cpu::init_params(seed, model);
  std::vector<float> grad(count, std::nanf(""));
  const float loss =
      cpu::loss_and_grad(sched, p.data(), b.x0.data(), b.eps.data(), b.t.data(), n, grad.data(), model);
  std::vector<double> pd(p.begin(), p.end());
  EXPECT_NEAR(loss, ref::loss(sched, pd.data(), b.x0.data(), b.eps.data(), b.t.data(), n, model), 1e-5);

  const double h = 1e-5;
  std::vector<double> fd(count);
  double max_fd = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const double keep = pd[i];
    pd[i] = keep + h;
    const double up = ref::loss(sched, pd.data(), b.x0.data(), b.eps.data(), b.t.data(), n, model);
    pd[i] = keep - h;
    const double down = ref::loss(sched, pd.data(), b.x0.data(), b.eps.data(), b.t.data(), n, model);
    pd[i] = keep;
    fd[i] = (up - down) / (2 * h);
    max_fd = std::max(max_fd, std::abs(fd[i]));
  }
  ASSERT_GT(max_fd, 1e-3);
  int bad = 0;
  for (std::size_t i = 0; i < count; ++i)
    if (!(std::abs(grad[i] - fd[i]) <= 1e-5 * max_fd + 1e-3 * std::abs(fd[i])) && ++bad < 10)
      ADD_FAILURE() << "param " << i << ": backward " << grad[i] << ", finite difference " << fd[i];
  EXPECT_EQ(bad, 0);
}

}  // namespace
}  // namespace ddpm
