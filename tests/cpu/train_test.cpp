#include <gtest/gtest.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "ddpm/error.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "tests/cpu/model_variants.hpp"
#include "tests/cpu/reference.hpp"

namespace ddpm {
namespace {

class CpuTrainModel : public ::testing::TestWithParam<ModelConfig> {};
INSTANTIATE_TEST_SUITE_P(Variants, CpuTrainModel, test::model_variants(), test::model_variant_name);

TEST_P(CpuTrainModel, OneStepIsAdamOnTheGradientOfTheSeedsBatch) {
  const ModelConfig model = GetParam();
  const uint64_t seed = std::random_device{}();
  const Schedule sched = Schedule::linear();
  cpu::TrainConfig cfg;
  cfg.steps = 1;
  cfg.batch = 100;
  cfg.seed = seed;
  cfg.model = model;
  cpu::TrainState st = cpu::TrainState::fresh(seed, model);
  const std::vector<float> p0 = st.params;
  float logged = -1;
  cpu::train(sched, cfg, st, [&](int64_t step, float loss) { EXPECT_EQ(step, 1); logged = loss; });

  std::vector<float> x0(200), eps(200), grad(p0.size(), std::nanf(""));
  std::vector<int> t(100);
  cpu::train_batch(seed, 0, 100, sched.T, x0.data(), eps.data(), t.data());
  std::vector<double> pd(p0.begin(), p0.end());
  EXPECT_NEAR(logged, ref::loss(sched, pd.data(), x0.data(), eps.data(), t.data(), 100, model), 1e-5);
  cpu::loss_and_grad(sched, p0.data(), x0.data(), eps.data(), t.data(), 100, grad.data(), model);
  for (std::size_t i = 0; i < p0.size(); ++i) {
    // Adam's first step: p - lr * g / (|g| + eps) with bias correction = p - lr * sign(g).
    const double g = grad[i];
    const double want = p0[i] - 1e-3 * g / (std::abs(g) + 1e-8);
    ASSERT_NEAR(st.params[i], want, 1e-6) << i;
    ASSERT_NEAR(st.adam_m[i], 0.1 * g, 1e-7 + 1e-6 * std::abs(g)) << i;
  }
  EXPECT_EQ(st.step, 1);
}

TEST_P(CpuTrainModel, BitIdenticalForAnyThreadCountAndSplit) {
  const Schedule sched = Schedule::linear();
  cpu::TrainConfig cfg;
  cfg.steps = 4;
  cfg.batch = 77;
  cfg.seed = std::random_device{}();
  cfg.model = GetParam();
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  cpu::TrainState one = cpu::TrainState::fresh(cfg.seed, cfg.model);
  cpu::train(sched, cfg, one);
  omp_set_num_threads(3);
  cpu::TrainState three = cpu::TrainState::fresh(cfg.seed, cfg.model);
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

uint64_t fresh_seed() { return (uint64_t(std::random_device{}()) << 32) | std::random_device{}(); }

// state after `steps` steps of cfg, in calls of `chunk` steps each.
cpu::TrainState run(const Schedule& sched, cpu::TrainConfig cfg, int64_t steps, int64_t chunk) {
  cpu::TrainState st = cpu::TrainState::fresh(cfg.seed);
  for (int64_t done = 0; done < steps; done += chunk) {
    cfg.steps = std::min(chunk, steps - done);
    cpu::train(sched, cfg, st);
  }
  return st;
}

TEST(CpuTrainEma, FollowsTheWeightsAndLeavesThemAlone) {
  const Schedule sched = Schedule::linear();
  cpu::TrainConfig cfg;
  cfg.batch = 64;
  cfg.seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(cfg.seed));
  const double decay = 0.5 + 0.45 * double(cfg.seed % 1000) / 1000;  // in [0.5, 0.95)
  cfg.ema_decay = decay;
  // Step by step, keeping the weights after each step.
  cpu::TrainState st = cpu::TrainState::fresh(cfg.seed);
  std::vector<double> ema(st.params.begin(), st.params.end());  // starts at the initial weights
  cfg.steps = 1;
  for (int k = 0; k < 4; ++k) {
    std::fill(st.ema.begin(), st.ema.end(), NAN);  // poisoned; must be rewritten from the kept value
    if (k > 0) st.ema = std::vector<float>(ema.begin(), ema.end());
    cpu::train(sched, cfg, st);
    ASSERT_EQ(st.ema.size(), kParamCount);
    for (std::size_t i = 0; i < kParamCount; ++i) {
      ema[i] = decay * ema[i] + (1 - decay) * double(st.params[i]);  // e <- decay e + (1 - decay) p
      ASSERT_NEAR(st.ema[i], ema[i], 1e-6 * (1 + std::abs(ema[i]))) << "step " << k + 1 << " element " << i;
    }
  }
  // The weights and Adam's moments are those of training without an EMA, bit for bit.
  cpu::TrainConfig plain = cfg;
  plain.ema_decay.reset();
  const cpu::TrainState without = run(sched, plain, 4, 4);
  EXPECT_EQ(st.params, without.params);
  EXPECT_EQ(st.adam_m, without.adam_m);
  EXPECT_EQ(st.adam_v, without.adam_v);
  EXPECT_TRUE(without.ema.empty());
  // In one call the EMA is the same as step by step from the rounded floats kept above.
  const cpu::TrainState at_once = run(sched, cfg, 4, 4);
  EXPECT_EQ(at_once.params, st.params);
  for (std::size_t i = 0; i < kParamCount; ++i)
    ASSERT_NEAR(at_once.ema[i], ema[i], 1e-6 * (1 + std::abs(ema[i]))) << i;
}

// With ema_warmup, update k uses diffusers' warmed-up decay: 0 for k = 1, then
// min(decay, k / (k + 9)) -- here the literal values, for decay 0.25 (reached at
// k = 3: 3 / 12). The step number is the state's: a run in parts warms up as
// one run does.
TEST(CpuTrainEma, WarmsUpWhenAsked) {
  const Schedule sched = Schedule::linear();
  cpu::TrainConfig cfg;
  cfg.batch = 64;
  cfg.seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(cfg.seed));
  cfg.ema_decay = 0.25;
  cfg.ema_warmup = true;
  const double decays[] = {0.0, 2.0 / 11.0, 0.25, 0.25, 0.25};
  cpu::TrainState st = cpu::TrainState::fresh(cfg.seed);
  // Far from the weights: the first update must leave none of it.
  st.ema = st.params;
  for (float& e : st.ema) e += 100.f;
  std::vector<double> ema(st.ema.begin(), st.ema.end());
  cfg.steps = 1;
  for (int k = 0; k < 5; ++k) {
    cpu::train(sched, cfg, st);
    const double d = decays[k];
    for (std::size_t i = 0; i < kParamCount; ++i) {
      ema[i] = d * ema[i] + (1 - d) * double(st.params[i]);
      ASSERT_NEAR(st.ema[i], ema[i], 1e-6 * (1 + std::abs(ema[i]))) << "step " << k + 1 << " element " << i;
    }
  }
  // In one call, from the initial weights (which the first update replaces): the same.
  const cpu::TrainState at_once = run(sched, cfg, 5, 5);
  EXPECT_EQ(at_once.params, st.params);
  for (std::size_t i = 0; i < kParamCount; ++i)
    ASSERT_NEAR(at_once.ema[i], ema[i], 1e-6 * (1 + std::abs(ema[i]))) << i;
  // Without the warm-up the first updates keep a share of the initial weights.
  cpu::TrainConfig constant = cfg;
  constant.ema_warmup = false;
  EXPECT_NE(run(sched, constant, 5, 5).ema, at_once.ema);
}

TEST(CpuTrainEma, DecayZeroIsTheWeightsAndBadDecaysAreRejected) {
  const Schedule sched = Schedule::linear();
  cpu::TrainConfig cfg;
  cfg.batch = 32;
  cfg.steps = 2;
  cfg.seed = fresh_seed();
  cfg.ema_decay = 0.0;
  cpu::TrainState st = cpu::TrainState::fresh(cfg.seed);
  cpu::train(sched, cfg, st);
  EXPECT_EQ(st.ema, st.params);
  for (double bad : {1.0, -0.01, 1.5, double(NAN)}) {
    cfg.ema_decay = bad;
    cpu::TrainState s = cpu::TrainState::fresh(0);
    EXPECT_THROW(cpu::train(sched, cfg, s), Error) << bad;
  }
  cfg.ema_decay = 0.9;
  st.ema.resize(10);
  EXPECT_THROW(cpu::train(sched, cfg, st), Error);
}

// lr_k / lr by the definition, written with cos^2: (1 + cos(pi p)) / 2 = cos^2(pi p / 2).
double want_factor(bool cosine, int64_t total, double f, int64_t warmup, int64_t k) {
  if (warmup > 0 && k <= warmup) return double(k) / double(warmup);
  if (!cosine) return 1.0;
  const double p = k >= total ? 1.0 : double(k - warmup) / double(total - warmup);
  const double c = std::cos(3.14159265358979323846 * p / 2);
  return f + (1 - f) * c * c;
}

TEST(CpuTrainLr, ScheduleFactorsMatchTheClosedForm) {
  struct Case {
    bool cosine;
    int64_t total;
    double f;
    int64_t warmup;
  };
  std::mt19937_64 gen(fresh_seed());
  const Case random_case{true, int64_t(gen() % 100000) + 200, double(gen() % 1000) / 1000, int64_t(gen() % 100)};
  for (const Case& c : {Case{false, 0, 0, 0}, Case{true, 1000, 0.1, 0}, Case{true, 500, 0.0, 50},
                        Case{false, 0, 0, 10}, Case{true, 2, 0.5, 1}, random_case}) {
    SCOPED_TRACE("cosine " + std::to_string(c.cosine) + " K " + std::to_string(c.total) + " f " +
                 std::to_string(c.f) + " W " + std::to_string(c.warmup));
    cpu::LrSchedule s;
    s.cosine = c.cosine;
    s.total_steps = c.total;
    s.final_fraction = c.f;
    s.warmup_steps = c.warmup;
    const int64_t ks[] = {1, 2, 3, c.warmup, c.warmup + 1, c.warmup + 2, (c.total + c.warmup) / 2, c.total - 1,
                          c.total, c.total + 1, c.total + 1000};
    for (int64_t k : ks) {
      if (k < 1) continue;
      EXPECT_NEAR(s.factor(k), want_factor(c.cosine, c.total, c.f, c.warmup, k), 1e-14) << "k " << k;
    }
    if (c.cosine) {
      EXPECT_NEAR(s.factor(c.total), c.f, 1e-15);
    }
    if (c.warmup > 0) {
      EXPECT_EQ(s.factor(c.warmup), 1.0);
    }
  }
  EXPECT_EQ(cpu::LrSchedule{}.factor(1), 1.0);
  EXPECT_EQ(cpu::LrSchedule{}.factor(123456789), 1.0);
}

TEST(CpuTrainLr, AdamTakesTheScheduledRate) {
  // Adam's first step moves every weight by lr_1 * g / (|g| + eps): with a warm-up of W steps, lr_1 = lr / W.
  const Schedule sched = Schedule::linear();
  cpu::TrainConfig cfg;
  cfg.steps = 1;
  cfg.batch = 50;
  cfg.seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(cfg.seed));
  cfg.lr_schedule.warmup_steps = 4;
  cpu::TrainState st = cpu::TrainState::fresh(cfg.seed);
  const std::vector<float> p0 = st.params;
  cpu::train(sched, cfg, st);
  std::vector<float> x0(100), eps(100), grad(kParamCount);
  std::vector<int> t(50);
  cpu::train_batch(cfg.seed, 0, 50, sched.T, x0.data(), eps.data(), t.data());
  cpu::loss_and_grad(sched, p0.data(), x0.data(), eps.data(), t.data(), 50, grad.data());
  for (std::size_t i = 0; i < kParamCount; ++i) {
    const double g = grad[i];
    ASSERT_NEAR(st.params[i], p0[i] - 1e-3 / 4 * g / (std::abs(g) + 1e-8), 1e-6) << i;
  }
}

TEST(CpuTrainLr, DecayChangesTrainingAndAFlatScheduleDoesNot) {
  const Schedule sched = Schedule::linear();
  cpu::TrainConfig cfg;
  cfg.batch = 64;
  cfg.seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(cfg.seed));
  const cpu::TrainState constant = run(sched, cfg, 6, 6);
  cpu::TrainConfig flat = cfg;  // a cosine from lr to lr: factor 1 at every step
  flat.lr_schedule.cosine = true;
  flat.lr_schedule.total_steps = 6;
  flat.lr_schedule.final_fraction = 1.0;
  EXPECT_EQ(run(sched, flat, 6, 6).params, constant.params);
  cpu::TrainConfig decayed = flat;
  decayed.lr_schedule.final_fraction = 0.1;
  const cpu::TrainState d = run(sched, decayed, 6, 6);
  EXPECT_NE(d.params, constant.params);
  // Step 1 runs at the full rate (p = 1/6, factor 0.94): the schedule is applied, not its end value.
  EXPECT_NE(run(sched, decayed, 1, 1).params, run(sched, cfg, 1, 1).params);
}

TEST(CpuTrainLr, RejectsBadSchedules) {
  const Schedule sched = Schedule::linear();
  auto rejects = [&](cpu::LrSchedule s) {
    cpu::TrainConfig cfg;
    cfg.steps = 1;
    cfg.batch = 8;
    cfg.lr_schedule = s;
    cpu::TrainState st = cpu::TrainState::fresh(0);
    EXPECT_THROW(cpu::train(sched, cfg, st), Error);
  };
  rejects({true, 0, 0.1, 0});      // no length
  rejects({true, 100, 0.1, 100});  // nothing after the warm-up
  rejects({true, 100, -0.1, 0});
  rejects({true, 100, 1.1, 0});
  rejects({true, 100, double(NAN), 0});
  rejects({false, 0, 0, -1});
}

TEST(CpuTrain, ResumesBitIdenticallyWithEveryOption) {
  const Schedule sched = Schedule::linear();
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen{uint32_t(seed)};
  std::normal_distribution<float> z;
  std::vector<float> file(2 * 40);
  for (float& v : file) v = z(gen);
  for (Dataset d : {Dataset::kSwissRoll, Dataset::kCheckerboard, Dataset::kFile}) {
    SCOPED_TRACE(dataset_name(d));
    cpu::TrainConfig cfg;
    cfg.batch = 70;
    cfg.seed = seed;
    cfg.dataset = d;
    if (d == Dataset::kFile) cfg.points = file;
    cfg.ema_decay = 0.99;
    cfg.lr_schedule = {true, 6, 0.05, 2};
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const cpu::TrainState one = run(sched, cfg, 6, 6);
    omp_set_num_threads(3);
    const cpu::TrainState parts = run(sched, cfg, 6, 4);  // 4 + 2 steps
    omp_set_num_threads(threads);
    EXPECT_EQ(one.params, parts.params);
    EXPECT_EQ(one.adam_v, parts.adam_v);
    EXPECT_EQ(one.ema, parts.ema);
    cpu::TrainConfig moons_plain;
    moons_plain.batch = 70;
    moons_plain.seed = seed;
    EXPECT_NE(one.params, run(sched, moons_plain, 6, 6).params);
  }
}

TEST(CpuTrain, FirstStepOnAUsersPointsUsesTheirBatch) {
  const Schedule sched = Schedule::linear();
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  cpu::TrainConfig cfg;
  cfg.steps = 1;
  cfg.batch = 90;
  cfg.seed = seed;
  cfg.dataset = Dataset::kFile;
  for (int i = 0; i < 25; ++i) {
    cfg.points.push_back(float(i % 5) * 3.f - 1.f);
    cfg.points.push_back(float(i / 5) * 0.5f + 7.f);
  }
  cpu::TrainState st = cpu::TrainState::fresh(seed);
  float logged = -1;
  cpu::train(sched, cfg, st, [&](int64_t, float loss) { logged = loss; });
  std::vector<float> x0(180), eps(180);
  std::vector<int> t(90);
  cpu::train_batch(seed, 0, 90, sched.T, x0.data(), eps.data(), t.data(), cfg.data());
  const std::vector<float> init = cpu::init_params(seed);
  const std::vector<double> p0(init.begin(), init.end());
  EXPECT_NEAR(logged, ref::loss(sched, p0.data(), x0.data(), eps.data(), t.data(), 90), 1e-5);
}

TEST(CpuTrain, RejectsABadUsersFile) {
  cpu::TrainConfig cfg;
  cfg.dataset = Dataset::kFile;
  cpu::TrainState st = cpu::TrainState::fresh(0);
  for (const std::vector<float>& bad : {std::vector<float>{}, std::vector<float>{1.f, 2.f},
                                        std::vector<float>{1.f, 2.f, 3.f, NAN}, std::vector<float>{1.f, 2.f, 1.f, 3.f}}) {
    cfg.points = bad;
    EXPECT_THROW(cpu::train(Schedule::linear(), cfg, st), Error);
  }
}

TEST(CpuTrain, RejectsABatchTooSmallForItsStd) {
  cpu::TrainConfig cfg;
  cfg.batch = 1;
  cpu::TrainState st = cpu::TrainState::fresh(0);
  EXPECT_THROW(cpu::train(Schedule::linear(), cfg, st), std::runtime_error);
}

}  // namespace
}  // namespace ddpm
