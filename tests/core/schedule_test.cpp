#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <utility>

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


std::mt19937 fresh_gen() {
  const unsigned seed = std::random_device{}();
  std::printf("random seed %u\n", seed);
  return std::mt19937(seed);
}

// Asserts that `what` throws ddpm::Error with a one-line message containing every needle.
template <class F>
::testing::AssertionResult throws_naming(F&& what, std::initializer_list<std::string> needles) {
  try {
    what();
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (msg.find('\n') != std::string::npos) return ::testing::AssertionFailure() << "multi-line: " << msg;
    for (const std::string& n : needles)
      if (msg.find(n) == std::string::npos) return ::testing::AssertionFailure() << "\"" << n << "\" not in: " << msg;
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "no ddpm::Error thrown";
}

// f(t) of the cosine schedule in double, straight from Nichol & Dhariwal (2021), eq. 17.
double cosine_f_ref(int t, int T) {
  const double pi = std::acos(-1.0), s = 0.008;
  const double c = std::cos((double(t) / T + s) / (1 + s) * pi / 2);
  return c * c;
}

// Every table of s against its definition from the betas (checked separately):
// alpha_bar by a sum of logs, independent of the schedule's product.
void expect_tables_follow_betas(const Schedule& s) {
  ASSERT_EQ(s.beta.size(), std::size_t(s.T) + 1);
  EXPECT_EQ(s.beta[0], 0.f);
  EXPECT_EQ(s.alpha_bar[0], 1.f);
  EXPECT_EQ(s.alpha_bar_double[0], 1.0);
  double log_ab = 0;
  for (int t = 1; t <= s.T; ++t) {
    SCOPED_TRACE("t=" + std::to_string(t));
    const double beta = s.beta_double[t];
    ASSERT_EQ(s.beta[t], float(beta));
    const double ab_prev = std::exp(log_ab);
    log_ab += std::log1p(-beta);
    const double ab = std::exp(log_ab);
    ASSERT_NEAR(s.alpha[t], 1 - beta, 1e-7);
    ASSERT_NEAR(s.alpha_bar_double[t], ab, 1e-12 * ab);
    ASSERT_NEAR(s.alpha_bar[t], ab, 1e-6 * ab);
    const double gamma = (1 - ab_prev) / (1 - ab) * beta;
    ASSERT_NEAR(s.posterior_variance[t], gamma, 1e-6 * gamma + 1e-12);
    ASSERT_NEAR(s.forward[t].sqrt_alpha_bar, std::sqrt(ab), 1e-6 * std::sqrt(ab));
    ASSERT_NEAR(s.forward[t].sqrt_one_minus_alpha_bar, std::sqrt(1 - ab), 1e-6);
    ASSERT_NEAR(s.reverse[t].inv_sqrt_alpha, 1 / std::sqrt(1 - beta), 1e-6 / std::sqrt(1 - beta));
    ASSERT_NEAR(s.reverse[t].eps_coef, beta / std::sqrt(1 - ab), 1e-6 * beta / std::sqrt(1 - ab));
    ASSERT_NEAR(s.reverse[t].sigma, t > 1 ? std::sqrt(gamma) : 0.0, 1e-6 * std::sqrt(gamma));
  }
}

TEST(Schedule, CosineAgainstItsClosedForm) {
  auto gen = fresh_gen();
  std::vector<int> sizes = {1, 2, 3, 500, 1000, 4000};
  for (int i = 0; i < 4; ++i) sizes.push_back(std::uniform_int_distribution<int>(1, 5000)(gen));
  for (int T : sizes) {
    SCOPED_TRACE("T=" + std::to_string(T));
    const Schedule s = Schedule::cosine(T);
    ASSERT_EQ(s.T, T);
    EXPECT_EQ(s.name, "cosine");
    const double f0 = cosine_f_ref(0, T);
    int clipped = 0;
    for (int t = 1; t <= T; ++t) {
      const double ab = cosine_f_ref(t, T) / f0, ab_prev = cosine_f_ref(t - 1, T) / f0;
      const double raw = 1 - ab / ab_prev;
      const double beta = std::min(raw, 0.999);
      clipped += raw > 0.999;
      ASSERT_NEAR(s.beta_double[t], beta, 1e-12 * beta + 1e-15) << "t=" << t;
      // Up to the clip, the product of the alphas telescopes to f(t) / f(0).
      if (t < T) {
        ASSERT_NEAR(s.alpha_bar_double[t], ab, 1e-11 * ab) << "t=" << t;
      }
    }
    // f(T) = cos^2(pi / 2) = 0: the clip always bites at t = T, and only there.
    EXPECT_EQ(clipped, 1);
    EXPECT_EQ(s.beta[T], 0.999f);
    EXPECT_EQ(s.beta_double[T], 0.999);
    EXPECT_NEAR(s.alpha_bar_double[T], 0.001 * s.alpha_bar_double[T - 1], 1e-15 * s.alpha_bar_double[T - 1]);
    EXPECT_EQ(s.beta_1, s.beta_double[1]);
    EXPECT_EQ(s.beta_T, 0.999);
    expect_tables_follow_betas(s);
  }
}

TEST(Schedule, LinearTablesFollowTheirBetas) {
  auto gen = fresh_gen();
  const int T = std::uniform_int_distribution<int>(1, 3000)(gen);
  SCOPED_TRACE("T=" + std::to_string(T));
  const Schedule s = Schedule::linear(T, 1e-4, 0.02);  // in double: the defaults are floats
  EXPECT_EQ(s.name, "linear");
  for (int t = 1; t <= T; ++t)
    ASSERT_NEAR(s.beta_double[t], T == 1 ? 1e-4 : 1e-4 + (0.02 - 1e-4) * (t - 1) / (T - 1), 1e-12) << t;
  expect_tables_follow_betas(s);
}

template <class V>
bool same_bytes(const V& a, const V& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0;
}

TEST(Schedule, ByNameBuildsTheNamedScheduleOrThrows) {
  auto gen = fresh_gen();
  const int T = std::uniform_int_distribution<int>(1, 2000)(gen);
  const double b1 = std::uniform_real_distribution<double>(1e-5, 1e-3)(gen);
  const double bT = std::uniform_real_distribution<double>(b1, 0.05)(gen);
  SCOPED_TRACE("T=" + std::to_string(T));
  const Schedule lin = Schedule::by_name("linear", T, b1, bT), want_lin = Schedule::linear(T, b1, bT);
  EXPECT_EQ(lin.name, "linear");
  EXPECT_EQ(lin.beta_1, b1);
  EXPECT_EQ(lin.beta_T, bT);
  EXPECT_TRUE(same_bytes(lin.beta, want_lin.beta) && same_bytes(lin.alpha_bar, want_lin.alpha_bar) &&
              same_bytes(lin.reverse, want_lin.reverse) && same_bytes(lin.forward, want_lin.forward));
  // The linear parameters do not reach the cosine schedule.
  const Schedule cos = Schedule::by_name("cosine", T, b1, bT), want_cos = Schedule::cosine(T);
  EXPECT_EQ(cos.name, "cosine");
  EXPECT_TRUE(same_bytes(cos.beta, want_cos.beta) && same_bytes(cos.alpha_bar, want_cos.alpha_bar) &&
              same_bytes(cos.reverse, want_cos.reverse) && same_bytes(cos.forward, want_cos.forward));
  EXPECT_TRUE(throws_naming([] { Schedule::by_name("cosin"); }, {"\"cosin\""}));
  EXPECT_TRUE(throws_naming([] { Schedule::by_name(""); }, {"\"\""}));
  EXPECT_TRUE(throws_naming([] { Schedule::by_name("Linear"); }, {"\"Linear\""}));
  EXPECT_TRUE(throws_naming([] { Schedule::by_name("cosine", 0); }, {"T 0"}));
  EXPECT_TRUE(throws_naming([] { Schedule::by_name("linear", kMaxT + 1); }, {"T " + std::to_string(kMaxT + 1)}));
  EXPECT_TRUE(throws_naming([] { Schedule::by_name("linear", 10, 0.0, 0.02); }, {"beta_1 0,"}));
  EXPECT_TRUE(throws_naming([] { Schedule::by_name("linear", 10, 0.03, 0.02); }, {"beta_1 0.03", "beta_T 0.02"}));
  EXPECT_TRUE(throws_naming([] { Schedule::by_name("linear", 10, 1e-4, 1.0); }, {"beta_T 1"}));
  EXPECT_TRUE(throws_naming([] { Schedule::by_name("linear", 10, std::nan(""), 0.02); }, {"beta_1 nan"}));
}

// tau_i = round(i T / S), halves up, evaluated in double (i T / S is exact at a half).
std::vector<int> ddim_timesteps_ref(int T, int S) {
  std::vector<int> tau;
  for (int i = S; i >= 1; --i) tau.push_back(int(std::floor(double(i) * T / S + 0.5)));
  return tau;
}

void expect_valid_timesteps(const std::vector<int>& tau, int T, int S) {
  ASSERT_EQ(tau.size(), std::size_t(S));
  EXPECT_EQ(tau.front(), T);
  EXPECT_GE(tau.back(), 1);
  for (int k = 1; k < S; ++k) ASSERT_LT(tau[k], tau[k - 1]) << "k=" << k;  // strictly decreasing, so distinct
  EXPECT_EQ(tau, ddim_timesteps_ref(T, S));
}

TEST(DdimTimesteps, EvenlySpacedDecreasingAndEndingAtT) {
  EXPECT_EQ(ddim_timesteps(500, 1), std::vector<int>{500});
  EXPECT_EQ(ddim_timesteps(1, 1), std::vector<int>{1});
  EXPECT_EQ(ddim_timesteps(10, 3), (std::vector<int>{10, 7, 3}));  // 10/3, 20/3 round to 3, 7
  EXPECT_EQ(ddim_timesteps(10, 4), (std::vector<int>{10, 8, 5, 3}));  // 2.5 and 7.5 round up
  std::vector<int> all(500);
  for (int k = 0; k < 500; ++k) all[k] = 500 - k;
  EXPECT_EQ(ddim_timesteps(500, 500), all);
  auto gen = fresh_gen();
  for (int trial = 0; trial < 200; ++trial) {
    const int T = std::uniform_int_distribution<int>(1, kMaxT)(gen);
    const int S = std::uniform_int_distribution<int>(1, std::min(T, trial < 100 ? 100 : T))(gen);
    SCOPED_TRACE("T=" + std::to_string(T) + " S=" + std::to_string(S));
    expect_valid_timesteps(ddim_timesteps(T, S), T, S);
  }
  for (int T : {1, 2, 7, 500})
    for (int S = 1; S <= T; ++S) {
      SCOPED_TRACE("T=" + std::to_string(T) + " S=" + std::to_string(S));
      expect_valid_timesteps(ddim_timesteps(T, S), T, S);
    }
  EXPECT_TRUE(throws_naming([] { ddim_timesteps(500, 0); }, {"steps 0"}));
  EXPECT_TRUE(throws_naming([] { ddim_timesteps(500, 501); }, {"steps 501", "500"}));
  EXPECT_TRUE(throws_naming([] { ddim_timesteps(500, -3); }, {"steps -3"}));
}

TEST(SamplerTables, BetaVarianceReplacesOnlySigma) {
  auto gen = fresh_gen();
  const int T = std::uniform_int_distribution<int>(2, 1000)(gen);
  SCOPED_TRACE("T=" + std::to_string(T));
  for (const Schedule& s : {Schedule::linear(T), Schedule::cosine(T)}) {
    EXPECT_TRUE(same_bytes(reverse_coefs(s, Variance::kPosterior), s.reverse));
    const std::vector<ReverseCoef> c = reverse_coefs(s, Variance::kBeta);
    ASSERT_EQ(c.size(), s.reverse.size());
    EXPECT_EQ(c[1].sigma, 0.f);  // no noise at t = 1 either way
    for (int t = 1; t <= T; ++t) {
      ASSERT_EQ(c[t].inv_sqrt_alpha, s.reverse[t].inv_sqrt_alpha);
      ASSERT_EQ(c[t].eps_coef, s.reverse[t].eps_coef);
      if (t == 1) continue;
      ASSERT_NEAR(c[t].sigma, std::sqrt(double(s.beta[t])), 1e-6 * c[t].sigma) << "t=" << t;
      ASSERT_GE(c[t].sigma, s.reverse[t].sigma) << "t=" << t;  // gamma_t < beta_t, equal in float near 1
    }
  }
  EXPECT_EQ(variance_from_name("posterior"), Variance::kPosterior);
  EXPECT_EQ(variance_from_name("beta"), Variance::kBeta);
  EXPECT_TRUE(throws_naming([] { variance_from_name("betas"); }, {"\"betas\""}));
  EXPECT_EQ(sampler_kind_from_name("ddpm"), SamplerKind::kDdpm);
  EXPECT_EQ(sampler_kind_from_name("ddim"), SamplerKind::kDdim);
  EXPECT_EQ(sampler_kind_from_name("dpmpp-2m"), SamplerKind::kDpmpp2m);
  EXPECT_EQ(sampler_kind_from_name("heun"), SamplerKind::kHeun);
  EXPECT_EQ(sampler_kind_from_name("dpmpp-2m-sde"), SamplerKind::kDpmpp2mSde);
  EXPECT_TRUE(throws_naming([] { sampler_kind_from_name("DDIM"); }, {"\"DDIM\""}));
  EXPECT_TRUE(throws_naming([] { sampler_kind_from_name("dpm++"); }, {"\"dpm++\"", "heun"}));
  EXPECT_EQ(spacing_from_name("uniform"), Spacing::kUniform);
  EXPECT_EQ(spacing_from_name("karras"), Spacing::kKarras);
  EXPECT_EQ(spacing_from_name("logsnr"), Spacing::kLogSnr);
  EXPECT_EQ(spacing_from_name("default"), Spacing::kDefault);
  EXPECT_TRUE(throws_naming([] { spacing_from_name("log-snr"); }, {"\"log-snr\""}));
  EXPECT_STREQ(name_of(Variance::kBeta), "beta");
  EXPECT_STREQ(name_of(SamplerKind::kDdim), "ddim");
}

TEST(SamplerTables, DdimStepsFollowTheTimestepsAndTheirCoefficients) {
  auto gen = fresh_gen();
  const int T = std::uniform_int_distribution<int>(1, 1000)(gen);
  const int S = std::uniform_int_distribution<int>(1, T)(gen);
  const double eta = std::uniform_real_distribution<double>(0, 1)(gen);
  SCOPED_TRACE("T=" + std::to_string(T) + " S=" + std::to_string(S) + " eta=" + std::to_string(eta));
  for (const Schedule& s : {Schedule::linear(T), Schedule::cosine(T)}) {
    for (double e : {eta, 0.0}) {
      const std::vector<DdimStep> steps = ddim_steps(s, S, e);
      const std::vector<int> tau = ddim_timesteps_ref(T, S);
      ASSERT_EQ(steps.size(), std::size_t(S));
      for (int k = 0; k < S; ++k) {
        const DdimStep& st = steps[k];
        ASSERT_EQ(st.t, tau[k]);
        ASSERT_EQ(st.prev, k + 1 < S ? tau[k + 1] : 0);
        ASSERT_EQ(st.noise, e > 0 && k + 1 < S);
        const LinearCoef c = LinearCoef::ddim(s.alpha_bar_double[st.t], s.alpha_bar_double[st.prev], e);
        ASSERT_TRUE(same_bytes(std::vector<LinearCoef>{st.coef}, std::vector<LinearCoef>{c})) << "k=" << k;
        if (e == 0 || st.prev == 0) {
          ASSERT_EQ(st.coef.sigma, 0.f) << "k=" << k;
        }
      }
    }
  }
}

TEST(SamplerConfig, InvalidConfigsThrowNamingTheValue) {
  const Schedule s = Schedule::linear(50);
  auto with = [&](SamplerKind kind, int steps, double eta, Variance v = Variance::kPosterior) {
    return [=, &s] { validate_sampler(SamplerConfig{kind, steps, eta, v}, s); };
  };
  using K = SamplerKind;
  EXPECT_NO_THROW(with(K::kDdpm, 0, 0)());
  EXPECT_NO_THROW(with(K::kDdpm, 50, 0, Variance::kBeta)());
  EXPECT_NO_THROW(with(K::kDdim, 0, 0)());
  EXPECT_NO_THROW(with(K::kDdim, 1, 1)());
  EXPECT_NO_THROW(with(K::kDdim, 17, 0.3)());
  EXPECT_TRUE(throws_naming(with(K::kDdim, -1, 0), {"steps -1", "1..50"}));
  EXPECT_TRUE(throws_naming(with(K::kDdim, 51, 0), {"steps 51", "1..50"}));
  EXPECT_TRUE(throws_naming(with(K::kDdpm, 51, 0), {"steps 51"}));
  EXPECT_TRUE(throws_naming(with(K::kDdpm, 10, 0), {"steps 10", "ddim"}));
  EXPECT_TRUE(throws_naming(with(K::kDdim, 10, -0.5), {"eta -0.5"}));
  EXPECT_TRUE(throws_naming(with(K::kDdim, 10, std::nan("")), {"eta nan"}));
  EXPECT_TRUE(throws_naming(with(K::kDdim, 10, INFINITY), {"eta inf"}));
  EXPECT_TRUE(throws_naming(with(K::kDdpm, 0, 0.5), {"eta 0.5", "ddim"}));
  EXPECT_TRUE(throws_naming(with(K::kDdim, 0, 0, Variance::kBeta), {"variance beta"}));
  // eta > 1 is accepted while sigma^2 <= 1 - alpha_bar_prev; at S = T that needs eta^2 <= (1 - a_t) / beta_t.
  EXPECT_NO_THROW(with(K::kDdim, 5, 1.01)());
  EXPECT_TRUE(throws_naming(with(K::kDdim, 50, 3), {"eta 3", "too large"}));
  EXPECT_TRUE(throws_naming([&] { ddim_steps(s, 50, 3); }, {"eta 3"}));
  EXPECT_TRUE(throws_naming([&] { ddim_steps(s, 50, -1); }, {"eta -1"}));
}

// The Karras and log-SNR timesteps against a brute-force search: the
// continuous targets written out again in double from alpha_bar's closed form,
// each timestep the nearest (or, where two targets share one, moved down by
// the fewest steps that keep them distinct), T first, strictly descending, >= 1.
TEST(SamplerTimesteps, KarrasAndLogSnrTakeTheNearestDistinctTimesteps) {
  auto gen = fresh_gen();
  for (int trial = 0; trial < 40; ++trial) {
    const int T = trial < 2 ? 500 : std::uniform_int_distribution<int>(1, 1000)(gen);
    const int S = trial == 0 ? 20 : trial == 1 ? T : std::uniform_int_distribution<int>(1, T)(gen);
    for (const Schedule& s : {Schedule::linear(T), Schedule::cosine(T)}) {
      std::vector<double> ab(T + 1, 1.0), log_sigma(T + 1);
      for (int t = 1; t <= T; ++t) {
        ab[t] = ab[t - 1] * (1 - s.beta_double[t]);
        log_sigma[t] = std::log(std::sqrt((1 - ab[t]) / ab[t]));
      }
      for (Spacing sp : {Spacing::kKarras, Spacing::kLogSnr}) {
        SCOPED_TRACE(s.name + " " + name_of(sp) + " T=" + std::to_string(T) + " S=" + std::to_string(S));
        const std::vector<int> tau = sampler_timesteps(s, S, sp);
        ASSERT_EQ(tau.size(), std::size_t(S));
        ASSERT_EQ(tau[0], T);
        for (int i = 0; i < S; ++i) {
          ASSERT_GE(tau[i], 1);
          if (i > 0) {
            ASSERT_LT(tau[i], tau[i - 1]);
          }
          const double u = S == 1 ? 0.0 : double(i) / (S - 1);
          double target;
          if (sp == Spacing::kKarras) {
            const double smax = std::exp(log_sigma[T]), smin = std::exp(log_sigma[1]);
            target = std::log(std::pow(std::pow(smax, 1 / 7.0) + u * (std::pow(smin, 1 / 7.0) - std::pow(smax, 1 / 7.0)), 7.0));
          } else {
            target = log_sigma[T] + u * (log_sigma[1] - log_sigma[T]);
          }
          int nearest = 1;
          for (int t = 1; t <= T; ++t)
            if (std::abs(log_sigma[t] - target) < std::abs(log_sigma[nearest] - target) - 1e-12) nearest = t;
          // Moved only where it had to be: below the previous one, or up to leave room for the rest.
          const int hi = i == 0 ? T : tau[i - 1] - 1, lo = S - i;
          ASSERT_EQ(tau[i], std::clamp(nearest, lo, hi)) << "i=" << i << " target " << target;
        }
      }
      EXPECT_EQ(sampler_timesteps(s, S, Spacing::kUniform), ddim_timesteps(T, S));
    }
  }
  const Schedule s = Schedule::linear(50);
  EXPECT_TRUE(throws_naming([&] { sampler_timesteps(s, 0, Spacing::kKarras); }, {"steps 0", "1..50"}));
  EXPECT_TRUE(throws_naming([&] { sampler_timesteps(s, 51, Spacing::kLogSnr); }, {"steps 51"}));
}

// Runs a sampler's step table in double on eps(x, t), from x_T = 1.
template <class Eps>
double run_table(const std::vector<SampleStep>& steps, Eps&& eps) {
  double x = 1.0, a = 0.0;
  for (const SampleStep& st : steps) {
    const double e = eps(x, st.t);
    const LinearCoef& c = st.lin;
    const double next = double(c.x_coef) * x + double(c.eps_coef) * e + double(c.a_coef) * a;
    a = double(c.carry_x) * x + double(c.carry_eps) * e;
    x = next;
  }
  return x;
}

// The solvers' tables against a closed form. For data N(0, s^2) the optimal
// eps-predictor is linear, eps*(x, t) = sqrt(1 - ab_t) x / (ab_t s^2 + 1 - ab_t),
// and the probability-flow ODE keeps x_t / sqrt(ab_t s^2 + 1 - ab_t) fixed,
// so it takes x_T = 1 to x_0 = s / sqrt(ab_T s^2 + 1 - ab_T). DDIM (Euler in
// Karras et al.'s variables) converges at first order, DPM-Solver++(2M) and
// Heun at second: the error falls about 2x and 4x as S doubles. A sign or a
// ratio wrong in a coefficient breaks the order or the limit. The cosine
// schedule's sigma spans 10^-2..10^3 (its clipped last beta): it reaches the
// asymptotic range later, so it is run at S = 40 and 80 (at 20 and 40, with
// s near 0.3, DPM-Solver++ on Karras steps fell only 1.2x).
TEST(SolverTables, ConvergeToTheGaussianOdeSolutionAtTheirOrder) {
  auto gen = fresh_gen();
  const double s2 = std::pow(std::uniform_real_distribution<double>(0.3, 1.5)(gen), 2);
  SCOPED_TRACE("s^2 = " + std::to_string(s2));
  for (const Schedule& sched : {Schedule::linear(), Schedule::cosine(1000)}) {
    const auto eps = [&](double x, int t) {
      const double ab = sched.alpha_bar_double[t];
      return std::sqrt(1 - ab) * x / (ab * s2 + 1 - ab);
    };
    const double ab_T = sched.alpha_bar_double[sched.T], exact = std::sqrt(s2 / (ab_T * s2 + 1 - ab_T));
    for (const auto& [kind, order] : {std::pair{SamplerKind::kDdim, 1}, {SamplerKind::kDpmpp2m, 2}, {SamplerKind::kHeun, 2}}) {
      for (Spacing sp : {Spacing::kKarras, Spacing::kLogSnr}) {
        SCOPED_TRACE(sched.name + " " + name_of(kind) + " " + name_of(sp));
        const int S = sched.name == "cosine" ? 40 : 20;
        double err[2];
        for (int k = 0; k < 2; ++k) {
          SamplerConfig c{kind, S << k};
          c.spacing = sp;
          err[k] = std::abs(run_table(sample_steps(sched, c), eps) - exact) / exact;
        }
        std::printf("%s %s %s: relative error %.3g at S = %d, %.3g at S = %d\n", sched.name.c_str(), name_of(kind),
                    name_of(sp), err[0], S, err[1], 2 * S);
        EXPECT_LT(err[1], order == 1 ? 0.1 : 0.03);
        if (order == 1) {
          EXPECT_GT(err[0] / err[1], 1.6);
          EXPECT_LT(err[0] / err[1], 2.6);
        } else {
          EXPECT_GT(err[0] / err[1], 3.0);
        }
      }
    }
  }
}

// The ODE solvers' tables: the evaluations each makes, at which timesteps,
// and that they draw no noise; Heun's corrector evaluates where its step ends.
TEST(SolverTables, EvaluationsAndTimesteps) {
  const Schedule s = Schedule::linear();
  for (int S : {1, 2, 12, 25, 500}) {
    for (Spacing sp : {Spacing::kUniform, Spacing::kKarras, Spacing::kLogSnr}) {
      SCOPED_TRACE(std::string(name_of(sp)) + " S=" + std::to_string(S));
      const std::vector<int> tau = sampler_timesteps(s, S, sp);
      SamplerConfig d{SamplerKind::kDpmpp2m, S}, h{SamplerKind::kHeun, S};
      d.spacing = h.spacing = sp;
      const std::vector<SampleStep> dpmpp = sample_steps(s, d), heun = sample_steps(s, h);
      ASSERT_EQ(dpmpp.size(), std::size_t(S));
      ASSERT_EQ(heun.size(), std::size_t(2 * S - 1));
      for (int i = 0; i < S; ++i) {
        EXPECT_EQ(dpmpp[i].t, tau[i]);
        EXPECT_EQ(heun[2 * i].t, tau[i]);
        if (i + 1 < S) {
          EXPECT_EQ(heun[2 * i + 1].t, tau[i + 1]);
        }
      }
      for (const auto* steps : {&dpmpp, &heun})
        for (const SampleStep& st : *steps) {
          EXPECT_TRUE(st.linear);
          EXPECT_FALSE(st.noise);
          EXPECT_EQ(st.lin.sigma, 0.f);
        }
      // The last step of either lands on x_0 with nothing carried over.
      EXPECT_EQ(dpmpp.back().lin.a_coef, 0.f);
      EXPECT_EQ(heun.back().lin.a_coef, 0.f);
    }
  }
  // Each sampler's default spacing is the one it names.
  for (SamplerKind k : {SamplerKind::kDdim, SamplerKind::kDpmpp2m, SamplerKind::kDpmpp2mSde, SamplerKind::kHeun}) {
    SamplerConfig given{k, 9};
    given.spacing = default_spacing(k);
    const std::vector<SampleStep> a = sample_steps(s, SamplerConfig{k, 9}), b = sample_steps(s, given);
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].t, b[i].t);
  }
  EXPECT_EQ(default_spacing(SamplerKind::kDdim), Spacing::kUniform);
  EXPECT_EQ(default_spacing(SamplerKind::kDpmpp2m), Spacing::kLogSnr);
  EXPECT_EQ(default_spacing(SamplerKind::kHeun), Spacing::kKarras);
  // The SDE variant draws noise on every step but the last; its deterministic part is the ODE solver's limit.
  const std::vector<SampleStep> sde = sample_steps(s, SamplerConfig{SamplerKind::kDpmpp2mSde, 12});
  for (std::size_t i = 0; i < sde.size(); ++i) {
    EXPECT_EQ(sde[i].noise, i + 1 < sde.size());
    EXPECT_EQ(sde[i].lin.sigma > 0, i + 1 < sde.size());
  }
  EXPECT_EQ(sampler_steps(SamplerConfig{SamplerKind::kDpmpp2m}, 500), kDpmpp2mDefaultSteps);
  EXPECT_EQ(sampler_steps(SamplerConfig{SamplerKind::kHeun}, 500), kHeunDefaultSteps);
  EXPECT_EQ(sampler_steps(SamplerConfig{SamplerKind::kHeun}, 5), 5);
  EXPECT_EQ(sampler_steps(SamplerConfig{SamplerKind::kDdim}, 500), 500);
}

TEST(SolverConfig, InvalidConfigsThrowNamingTheValue) {
  const Schedule s = Schedule::linear(50);
  SamplerConfig c{SamplerKind::kDpmpp2m, 10, 0.5};
  EXPECT_TRUE(throws_naming([&] { validate_sampler(c, s); }, {"eta 0.5", "ddim"}));
  c = {SamplerKind::kHeun, 10, 0.0, Variance::kBeta};
  EXPECT_TRUE(throws_naming([&] { validate_sampler(c, s); }, {"variance beta", "ddpm"}));
  c = {SamplerKind::kHeun, 51};
  EXPECT_TRUE(throws_naming([&] { validate_sampler(c, s); }, {"steps 51", "1..50"}));
  c = {SamplerKind::kDdpm};
  c.spacing = Spacing::kKarras;
  EXPECT_TRUE(throws_naming([&] { validate_sampler(c, s); }, {"timesteps karras"}));
  c = {SamplerKind::kDdim, 10};
  c.spacing = Spacing::kLogSnr;
  EXPECT_NO_THROW(validate_sampler(c, s));
}

}  // namespace
}  // namespace ddpm
