// The EMA of the weights (ddpm/math.hpp) against the recurrence in double, and
// its warm-up against the weighted average it amounts to, in closed form.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "ddpm/math.hpp"

namespace ddpm {
namespace {

TEST(Ema, StepsFollowTheRecurrenceInDouble) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen(seed);
  std::normal_distribution<double> n(0, 1);
  std::uniform_real_distribution<double> u(0, 1);
  for (int trial = 0; trial < 1000; ++trial) {
    const double decay = trial == 0 ? 0.0 : trial == 1 ? 0.9999 : u(gen);
    const float d = float(decay), omd = float(1.0 - decay);
    float e = float(n(gen));
    double ed = e;
    for (int k = 0; k < 20; ++k) {
      const float p = float(n(gen));
      ema_update(e, p, d, omd);
      ed = decay * ed + (1 - decay) * p;  // e <- decay e + (1 - decay) p
      // Each step rounds d, 1 - d and three operations: a few float ulps of the magnitudes involved.
      ASSERT_NEAR(e, ed, 1e-6 * (1 + std::abs(ed)) * (k + 1)) << "decay " << decay << " step " << k;
    }
  }
  float e = 3.f;
  ema_update(e, -1.f, 0.f, 1.f);  // decay 0: the EMA is the weight itself
  EXPECT_EQ(e, -1.f);
}

// The warmed-up EMA after K updates as the weighted average it is, written
// without its recurrence. Until the cap, update k >= 2 has decay k / (k + 9)
// (diffusers' (1 + s) / (10 + s), s = k - 1) and update 1 decay 0, and the
// product of the decays telescopes: weight w_k of p_k in e_K is
//   w_k = 9 (k + 1)(k + 2) ... (k + 8) / ((K + 1)(K + 2) ... (K + 9))   (k >= 2)
//   w_1 = 2 * 3 * ... * 10            / ((K + 1)(K + 2) ... (K + 9))
// (they sum to 1: sum_k (k + 1)...(k + 8) telescopes too). From the first
// update c with c / (c + 9) >= cap, the decay is the cap:
//   e_K = cap^(K - c + 1) e_(c - 1) + sum_{k = c..K} (1 - cap) cap^(K - k) p_k.
// The starting value e_0 (the initial weights) has no share at all.
std::vector<double> warmed_up_average(double cap, const std::vector<double>& p) {
  const int64_t steps = int64_t(p.size());
  int64_t c = 2;
  while (double(c) / double(c + 9) < cap) ++c;
  std::vector<double> e(p.size());
  for (int64_t K = 1; K <= std::min(steps, c - 1); ++K) {
    const auto rising = [](int64_t from, int n) {  // from (from + 1) ... (from + n - 1)
      double r = 1;
      for (int i = 0; i < n; ++i) r *= double(from + i);
      return r;
    };
    const double denominator = rising(K + 1, 9);
    double sum = rising(2, 9) / denominator * p[0], weights = rising(2, 9) / denominator;
    for (int64_t k = 2; k <= K; ++k) {
      const double w = 9 * rising(k + 1, 8) / denominator;
      sum += w * p[std::size_t(k - 1)];
      weights += w;
    }
    EXPECT_NEAR(weights, 1.0, 1e-12) << "the reference's weights after " << K << " updates";
    e[std::size_t(K - 1)] = sum;
  }
  for (int64_t K = c; K <= steps; ++K) {
    double sum = std::pow(cap, double(K - c + 1)) * e[std::size_t(c - 2)];
    for (int64_t k = c; k <= K; ++k) sum += (1 - cap) * std::pow(cap, double(K - k)) * p[std::size_t(k - 1)];
    e[std::size_t(K - 1)] = sum;
  }
  return e;
}

TEST(Ema, WarmUpIsTheWeightedAverageOfTheWeightsSinceTheFirstUpdate) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen(seed);
  std::normal_distribution<double> n(0, 1);
  std::uniform_real_distribution<double> u(0.2, 0.97);
  constexpr int kUpdates = 400;
  // 0.999: capped only at update 8991, after the last one here; 0.1: capped at update 2.
  for (double cap : {0.0, 0.1, 0.999, 0.5, u(gen), u(gen), u(gen), u(gen)}) {
    SCOPED_TRACE("decay " + std::to_string(cap));
    std::vector<double> p(kUpdates);
    for (double& v : p) v = float(n(gen));  // the weights after each optimizer step, as floats
    const std::vector<double> want = warmed_up_average(cap, p);
    float e = 1000.f;  // the initial weights: far from every p, so that any share left of them shows
    for (int k = 1; k <= kUpdates; ++k) {
      const double d = ema_warmup_decay(cap, k);
      ema_update(e, float(p[std::size_t(k - 1)]), float(d), float(1.0 - d));
      // The float recurrence forgets its own rounding as it forgets old weights:
      // its error stays near an ulp (at most 9e-8 relative seen over many seeds).
      ASSERT_NEAR(e, want[std::size_t(k - 1)], 1e-6 * (1 + std::abs(want[std::size_t(k - 1)]))) << "update " << k;
    }
  }
  // The cap is never exceeded and is kept once reached.
  EXPECT_EQ(ema_warmup_decay(0.999, 1), 0.0);
  EXPECT_EQ(ema_warmup_decay(0.999, 2), 2.0 / 11.0);
  EXPECT_EQ(ema_warmup_decay(0.999, 1000000), 0.999);
  EXPECT_EQ(ema_warmup_decay(0.5, 8), 8.0 / 17.0);
  EXPECT_EQ(ema_warmup_decay(0.5, 9), 0.5);
  EXPECT_EQ(ema_warmup_decay(0.5, 10), 0.5);
}

}  // namespace
}  // namespace ddpm
