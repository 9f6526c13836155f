#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ddpm/schedule.hpp"

namespace ddpm {
namespace {

TEST(Schedule, LinearBetasMatchTorchLinspaceEndpoints) {
  const Schedule s = Schedule::linear();
  ASSERT_EQ(s.T, 500);
  ASSERT_EQ(s.beta.size(), 501u);
  EXPECT_EQ(s.beta[0], 0.f);
  EXPECT_EQ(s.alpha[0], 1.f);
  EXPECT_EQ(s.alpha_bar[0], 1.f);  // alpha_bar[0] = 1
  EXPECT_FLOAT_EQ(s.beta[1], 1e-4f);
  EXPECT_FLOAT_EQ(s.beta[500], 0.02f);
  // Even spacing: beta_t - beta_{t-1} = (0.02 - 1e-4) / 499 for every t.
  for (int t = 2; t <= 500; ++t) EXPECT_NEAR(s.beta[t] - s.beta[t - 1], (0.02 - 1e-4) / 499, 2e-9) << t;
}

TEST(Schedule, ClosedFormsAtRandomSizes) {
  std::mt19937 gen(std::random_device{}());
  for (int trial = 0; trial < 5; ++trial) {
    const int T = std::uniform_int_distribution<int>(1, 2000)(gen);
    const double b1 = std::uniform_real_distribution<double>(1e-5, 1e-3)(gen);
    const double bT = std::uniform_real_distribution<double>(b1, 0.05)(gen);
    SCOPED_TRACE("T=" + std::to_string(T));
    const Schedule s = Schedule::linear(T, b1, bT);
    // alpha_bar_t = exp(sum log(1 - beta_i)), evaluated independently of the product.
    double log_ab = 0;
    for (int t = 1; t <= T; ++t) {
      const double beta = T == 1 ? b1 : b1 + (bT - b1) * (t - 1) / (T - 1);
      const double ab_prev = std::exp(log_ab);
      log_ab += std::log1p(-beta);
      const double ab = std::exp(log_ab);
      ASSERT_NEAR(s.beta[t], beta, 1e-9 + 1e-7 * beta);
      ASSERT_NEAR(s.alpha[t], 1 - beta, 1e-7);
      ASSERT_NEAR(s.alpha_bar[t], ab, 1e-6 * ab + 1e-12);
      const double gamma = (1 - ab_prev) / (1 - ab) * beta;
      ASSERT_NEAR(s.posterior_variance[t], gamma, 1e-6 * gamma + 1e-12);
      ASSERT_NEAR(s.forward[t].sqrt_alpha_bar, std::sqrt(ab), 1e-6);
      ASSERT_NEAR(s.forward[t].sqrt_one_minus_alpha_bar, std::sqrt(1 - ab), 1e-6);
      ASSERT_NEAR(s.reverse[t].inv_sqrt_alpha, 1 / std::sqrt(1 - beta), 1e-6);
      ASSERT_NEAR(s.reverse[t].eps_coef, beta / std::sqrt(1 - ab), 1e-6 * beta / std::sqrt(1 - ab));
      ASSERT_NEAR(s.reverse[t].sigma, t > 1 ? std::sqrt(gamma) : 0.0, 1e-6);
    }
  }
}

TEST(Schedule, PosteriorVarianceIsBelowBetaAndZeroAtOne) {
  const Schedule s = Schedule::linear();
  EXPECT_EQ(s.posterior_variance[1], 0.f);
  for (int t = 2; t <= s.T; ++t) {
    EXPECT_GT(s.posterior_variance[t], 0.f);
    EXPECT_LT(s.posterior_variance[t], s.beta[t]);
  }
}

}  // namespace
}  // namespace ddpm
