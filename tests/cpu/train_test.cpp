#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <random>

#include "host/cpu/cpu_backend.hpp"
#include "tests/cpu/reference.hpp"

namespace ddpm {
namespace {

TEST(CpuTrain, OneStepIsAdamOnTheGradientOfTheSeedsBatch) {
  const uint64_t seed = std::random_device{}();
  const Schedule sched = Schedule::linear();
  cpu::TrainConfig cfg;
  cfg.steps = 1;
  cfg.batch = 100;
  cfg.seed = seed;
  cpu::TrainState st = cpu::TrainState::fresh(seed);
  const std::vector<float> p0 = st.params;
  float logged = -1;
  cpu::train(sched, cfg, st, [&](int64_t step, float loss) { EXPECT_EQ(step, 1); logged = loss; });

  std::vector<float> x0(200), eps(200), grad(kParamCount);
  std::vector<int> t(100);
  cpu::train_batch(seed, 0, 100, sched.T, x0.data(), eps.data(), t.data());
  std::vector<double> pd(p0.begin(), p0.end());
  EXPECT_NEAR(logged, ref::loss(sched, pd.data(), x0.data(), eps.data(), t.data(), 100), 1e-5);
  cpu::loss_and_grad(sched, p0.data(), x0.data(), eps.data(), t.data(), 100, grad.data());
  for (std::size_t i = 0; i < kParamCount; ++i) {
    // Adam's first step: p - lr * g / (|g| + eps) with bias correction = p - lr * sign(g).
    const double g = grad[i];
    const double want = p0[i] - 1e-3 * g / (std::abs(g) + 1e-8);
    ASSERT_NEAR(st.params[i], want, 1e-6) << i;
    ASSERT_NEAR(st.adam_m[i], 0.1 * g, 1e-7 + 1e-6 * std::abs(g)) << i;
  }
  EXPECT_EQ(st.step, 1);
}

TEST(CpuTrain, BitIdenticalForAnyThreadCountAndSplit) {
  const Schedule sched = Schedule::linear();
  cpu::TrainConfig cfg;
  cfg.steps = 4;
  cfg.batch = 77;
  cfg.seed = std::random_device{}();
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  cpu::TrainState one = cpu::TrainState::fresh(cfg.seed);
  cpu::train(sched, cfg, one);
  omp_set_num_threads(3);
  cpu::TrainState three = cpu::TrainState::fresh(cfg.seed);
  cfg.steps = 2;
  cpu::train(sched, cfg, three);  // 2 + 2 steps: resuming continues the same streams
  cpu::train(sched, cfg, three);
  omp_set_num_threads(threads);
  EXPECT_EQ(one.params, three.params);
  EXPECT_EQ(one.adam_v, three.adam_v);
}

TEST(CpuTrain, LossFallsOverAShortRun) {
  const Schedule sched = Schedule::linear();
  cpu::TrainConfig cfg;
  cfg.steps = 300;
  cfg.seed = 1;
  cpu::TrainState st = cpu::TrainState::fresh(cfg.seed);
  double first = 0, last = 0;
  cpu::train(sched, cfg, st, [&](int64_t step, float loss) {
    if (step <= 20) first += loss / 20;
    if (step > 280) last += loss / 20;
  });
  EXPECT_GT(first, 0.6);
  EXPECT_LT(last, 0.75 * first);
}

TEST(CpuTrain, RejectsABatchTooSmallForItsStd) {
  cpu::TrainConfig cfg;
  cfg.batch = 1;
  cpu::TrainState st = cpu::TrainState::fresh(0);
  EXPECT_THROW(cpu::train(Schedule::linear(), cfg, st), std::runtime_error);
}

}  // namespace
}  // namespace ddpm
