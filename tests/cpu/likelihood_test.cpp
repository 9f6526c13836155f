// The likelihood (ddpm/likelihood.hpp) on the CPU backend, against closed
// forms and double-precision references written from the definitions:
//   - the network's Jacobian against central differences of a double network;
//   - every term of the bound against the Gaussian KL and the decoder's density
//     computed in double from mu_q's x_0-form (not the eps-form the code uses);
//   - eps_theta = 0 (a zeroed output layer): the bound's expectation and the
//     ODE's likelihood, log N(x_0; 0, (1 + sigma_T^2) I), in closed form;
//   - the optimal predictor for Gaussian data N(0, s^2 I), eps*(x_t) =
//     sqrt(1 - ab) x_t / (ab s^2 + 1 - ab), through the loops' test seam: the
//     bound's expectation and the ODE's likelihood in closed form;
//   - chunking, threads and the two integrators' agreement.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "ddpm/likelihood.hpp"
#include "ddpm/rng.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/cpu/likelihood_loops.hpp"
#include "tests/cpu/model_variants.hpp"
#include "tests/cpu/reference.hpp"

namespace ddpm {
namespace {

std::vector<float> random_points(std::mt19937& gen, int n, double s) {
  std::normal_distribution<float> z(0.f, float(s));
  std::vector<float> x(2 * std::size_t(n));
  for (float& v : x) v = z(gen);
  return x;
}

class Likelihood : public ::testing::TestWithParam<ModelConfig> {};
INSTANTIATE_TEST_SUITE_P(Variants, Likelihood, test::model_variants(), test::model_variant_name);

// The forward-mode Jacobian against central differences (h = 1e-5, in double)
// of the double network (its x encoding's argument in double too: the float
// argument's rounding is not differentiable), at random real times, for 50 points (a whole tile
// and a partial one); the eps beside it against the double network.
TEST_P(Likelihood, JacobianMatchesFiniteDifferencesOfTheDoubleNetwork) {
  const ModelConfig model = GetParam();
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen{uint32_t(seed)};
  const std::vector<float> p = cpu::init_params(seed, model);
  for (const float tau : {0.37f, 1.f, 123.4f, 499.9f}) {
    const int n = 50;
    const std::vector<float> x = random_points(gen, n, 1.5);
    std::vector<float> eps(2 * n, NAN), jac(4 * n, NAN);
    cpu::eps_jacobian(p.data(), x.data(), tau, n, eps.data(), jac.data(), model);
    double worst = 0;
    for (int i = 0; i < n; ++i) {
      double e[2], plus[2], minus[2], fd[4], scale = 1;
      ref::eps_theta(p.data(), x[2 * i], x[2 * i + 1], tau, e, model, /*smooth=*/true);
      for (int b = 0; b < 2; ++b) {
        const double h = 1e-5;
        double xp[2] = {x[2 * i], x[2 * i + 1]}, xm[2] = {x[2 * i], x[2 * i + 1]};
        xp[b] += h;
        xm[b] -= h;
        ref::eps_theta(p.data(), xp[0], xp[1], tau, plus, model, true);
        ref::eps_theta(p.data(), xm[0], xm[1], tau, minus, model, true);
        for (int a = 0; a < 2; ++a) fd[2 * a + b] = (plus[a] - minus[a]) / (2 * h);
      }
      for (double v : fd) scale = std::max(scale, std::abs(v));
      for (int a = 0; a < 2; ++a) ASSERT_NEAR(eps[2 * i + a], e[a], 2e-5 * (1 + std::abs(e[a]))) << "tau " << tau << " i " << i;
      for (int k = 0; k < 4; ++k) {
        ASSERT_NEAR(jac[4 * i + k], fd[k], 1e-4 * scale) << "tau " << tau << " point " << i << " entry " << k;
        worst = std::max(worst, std::abs(jac[4 * i + k] - fd[k]) / scale);
      }
    }
    std::printf("  tau %g: max |J - finite differences| / max |J| = %.2g\n", tau, worst);
  }
}

// Each term of the bound of a random network against its definition in double:
// KL(N(mu_q, gamma_t I) || N(mu_theta, sigma_t^2 I)) with the posterior mean in
// its x_0-form, mu_q = sqrt(ab_{t-1}) beta_t / (1 - ab_t) x_0 + sqrt(alpha_t)
// (1 - ab_{t-1}) / (1 - ab_t) x_t, the decoder's -log N(x_0; mu_theta(x_1, 1),
// beta_1 I) and L_T, for both variances, on the same eps draws.
TEST_P(Likelihood, EveryTermMatchesTheGaussianKlInDouble) {
  const ModelConfig model = GetParam();
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen{uint32_t(seed)};
  const std::vector<float> p = cpu::init_params(seed, model);
  const Schedule s = Schedule::linear(40, 1e-3, 0.2);
  const int n = 5;
  const std::vector<float> x0 = random_points(gen, n, 1.0);
  for (Variance variance : {Variance::kPosterior, Variance::kBeta}) {
    SCOPED_TRACE(name_of(variance));
    const VlbTable table = vlb_table(s, variance);
    std::vector<VlbSums> got(n, VlbSums{NAN, NAN});
    cpu::vlb_sums(s, p.data(), table, seed, 7, n, x0.data(), got.data(), model);
    for (int i = 0; i < n; ++i) {
      NormalPairs rng{};
      philox_init(&rng.state, seed, Stream::kLikelihood, 7 + i);
      double steps = 0, decoder = 0;
      for (int t = 1; t <= s.T; ++t) {
        float z[2];
        rng.next(z[0], z[1]);
        const double beta = s.beta_double[t], alpha = 1 - beta, ab = s.alpha_bar_double[t],
                     ab_prev = s.alpha_bar_double[t - 1];
        double xt[2], e[2];
        for (int d = 0; d < 2; ++d) xt[d] = std::sqrt(ab) * x0[2 * i + d] + std::sqrt(1 - ab) * z[d];
        ref::eps_theta(p.data(), xt[0], xt[1], t, e, model);
        const double gamma = (1 - ab_prev) / (1 - ab) * beta;
        const double var = t == 1 || variance == Variance::kBeta ? beta : gamma;
        for (int d = 0; d < 2; ++d) {
          const double mu_theta = (xt[d] - beta / std::sqrt(1 - ab) * e[d]) / std::sqrt(alpha);
          if (t == 1) {
            decoder += 0.5 * std::log(2 * M_PI * var) + (x0[2 * i + d] - mu_theta) * (x0[2 * i + d] - mu_theta) / (2 * var);
          } else {
            const double mu_q = std::sqrt(ab_prev) * beta / (1 - ab) * x0[2 * i + d] +
                                std::sqrt(alpha) * (1 - ab_prev) / (1 - ab) * xt[d];
            steps += 0.5 * (std::log(var / gamma) + (gamma + (mu_q - mu_theta) * (mu_q - mu_theta)) / var - 1);
          }
        }
      }
      double prior = 0;
      const double abT = s.alpha_bar_double[s.T];
      for (int d = 0; d < 2; ++d)
        prior += 0.5 * (-std::log(1 - abT) + (1 - abT) + abT * x0[2 * i + d] * x0[2 * i + d] - 1);
      EXPECT_NEAR(table.step_constant + got[i].steps, steps, 1e-4 * (1 + std::abs(steps))) << "point " << i;
      EXPECT_NEAR(table.decoder_constant + got[i].decoder, decoder, 1e-4 * (1 + std::abs(decoder))) << "point " << i;
      EXPECT_NEAR(table.prior_kl(x0[2 * i], x0[2 * i + 1]), prior, 1e-12 * (1 + prior)) << "point " << i;
    }
  }
}

// A zeroed output layer predicts eps = 0 everywhere (exactly, in float too).
std::vector<float> zero_predictor(uint64_t seed, const ModelConfig& model) {
  std::vector<float> p = cpu::init_params(seed, model);
  const LayerShape& out = model.net().layers[3];
  std::fill(p.begin() + out.weight, p.begin() + out.bias + out.out, 0.f);
  return p;
}

// With eps_theta = 0 each term is w_t |eps_t|^2 plus its constant: per point
// the same draws summed in double, and in expectation E|eps|^2 = 2, so the
// mean bound over many points is L_T + the constants + 2 sum_t w_t.
TEST_P(Likelihood, BoundOfTheZeroPredictorIsItsClosedForm) {
  const ModelConfig model = GetParam();
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen{uint32_t(seed)};
  const std::vector<float> p = zero_predictor(seed, model);
  const Schedule s = Schedule::linear(100, 1e-3, 0.05);
  const VlbTable table = vlb_table(s, Variance::kPosterior);
  const int n = 4000;
  const std::vector<float> x0 = random_points(gen, n, 1.0);
  std::vector<VlbSums> got(n, VlbSums{NAN, NAN});
  cpu::vlb_sums(s, p.data(), table, seed, 0, n, x0.data(), got.data(), model);
  double sum_w = 0;
  for (int t = 1; t <= s.T; ++t) {
    const double beta = s.beta_double[t], ab = s.alpha_bar_double[t], ab_prev = s.alpha_bar_double[t - 1];
    const double var = t == 1 ? beta : (1 - ab_prev) / (1 - ab) * beta;
    sum_w += beta * beta / (2 * var * (1 - beta) * (1 - ab));
  }
  double mean = 0, mean_sq = 0, expected = 0;
  for (int i = 0; i < n; ++i) {
    NormalPairs rng{};
    philox_init(&rng.state, seed, Stream::kLikelihood, i);
    double steps = 0, decoder = 0;
    for (int t = 1; t <= s.T; ++t) {
      float z[2];
      rng.next(z[0], z[1]);
      const double w = table.terms[t].weight;
      (t == 1 ? decoder : steps) += w * (double(z[0]) * z[0] + double(z[1]) * z[1]);
    }
    ASSERT_NEAR(got[i].steps, steps, 1e-5 * steps) << "point " << i;
    ASSERT_NEAR(got[i].decoder, decoder, 1e-6 * decoder) << "point " << i;
    const double total = table.prior_kl(x0[2 * i], x0[2 * i + 1]) + table.step_constant + table.decoder_constant +
                         got[i].steps + got[i].decoder;
    mean += total / n;
    mean_sq += total * total / n;
    expected += (table.prior_kl(x0[2 * i], x0[2 * i + 1]) + table.step_constant + table.decoder_constant + 2 * sum_w) / n;
  }
  const double se = std::sqrt((mean_sq - mean * mean) / (n - 1));
  std::printf("  mean bound %.5f, closed form %.5f, standard error %.2g\n", mean, expected, se);
  EXPECT_NEAR(mean, expected, 5 * se);
}

// With eps_theta = 0 the flow leaves y = x_0 and l = 0, exactly: log p is the
// density of N(0, (1 + sigma_T^2) I) at x_0.
TEST_P(Likelihood, OdeOfTheZeroPredictorIsThePriorsPullBack) {
  const ModelConfig model = GetParam();
  const uint64_t seed = std::random_device{}();
  std::mt19937 gen{uint32_t(seed)};
  const std::vector<float> p = zero_predictor(seed, model);
  const Schedule s = Schedule::linear();
  const OdeTable table = ode_rk4_table(s, 8);
  const int n = 60;
  const std::vector<float> x0 = random_points(gen, n, 2.0);
  std::vector<float> out(3 * n, NAN);
  cpu::ode_end_states(p.data(), table, n, x0.data(), out.data(), model);
  const double v = 1 + table.sigma_T * table.sigma_T;
  for (int i = 0; i < n; ++i) {
    const double r2 = double(x0[2 * i]) * x0[2 * i] + double(x0[2 * i + 1]) * x0[2 * i + 1];
    const double want = -r2 / (2 * v) - std::log(2 * M_PI * v);
    EXPECT_NEAR(ode_log_likelihood(out[3 * i], out[3 * i + 1], out[3 * i + 2], table.sigma_T), want, 1e-9 * (1 + std::abs(want)))
        << "point " << i << " seed " << seed;
  }
}

// ---- The optimal predictor of Gaussian data, through the loops' seam ----

struct GaussianOptimum {
  const Schedule& sched;
  double s2;  // the data's variance per coordinate
  // eps*(x, ab) = sqrt(1 - ab) x / (ab s^2 + 1 - ab): linear in x, so its Jacobian is that factor times I.
  double factor(double ab) const { return std::sqrt(1 - ab) / (ab * s2 + 1 - ab); }
  // The bound's Net: whole steps t.
  void eps(int n, int t, const float* x, float* out) {
    const double c = factor(sched.alpha_bar_double[t]);
    for (int i = 0; i < 2 * n; ++i) out[i] = float(c * x[i]);
  }
  // The RK4 table's Net: the stage's sigma, ab = 1 / (1 + sigma^2).
  const OdeTable* table = nullptr;
  void eps_jacobian(int n, int stage, const float* x, float* eps, float* jac) {
    const double sigma = table->stages[stage].sigma;
    field(sigma, n, x, eps, jac);
  }
  // The adaptive integrator's Field.
  void eval(double sigma, const float x[2], float eps[2], float& div) {
    float jac[4];
    field(sigma, 1, x, eps, jac);
    div = jac[0] + jac[3];
  }
  void field(double sigma, int n, const float* x, float* eps, float* jac) const {
    const double c = factor(1 / (1 + sigma * sigma));
    for (int i = 0; i < n; ++i) {
      eps[2 * i] = float(c * x[2 * i]);
      eps[2 * i + 1] = float(c * x[2 * i + 1]);
      jac[4 * i] = jac[4 * i + 3] = float(c);
      jac[4 * i + 1] = jac[4 * i + 2] = 0.f;
    }
  }
};

// The flow of eps* scales y by sqrt((s^2 + sigma^2) / s^2) (it keeps x_t /
// sqrt(ab s^2 + 1 - ab) fixed), so with the prior N(0, I) at sigma_T
//   log p(x_0) = log N(x_T; 0, I) - log(1 + sigma_T^2) + log((s^2 + sigma_T^2) / s^2),
//   x_T = x_0 sqrt((s^2 + sigma_T^2) / s^2) / sqrt(1 + sigma_T^2)
// (d = 2). Both integrators must reach it; RK4 at fourth order.
TEST(LikelihoodSeam, OdeOfTheGaussianOptimumIsItsClosedForm) {
  std::mt19937 gen(std::random_device{}());
  const double s2 = std::pow(std::uniform_real_distribution<double>(0.2, 1.5)(gen), 2);
  SCOPED_TRACE("s^2 = " + std::to_string(s2));
  const Schedule sched = Schedule::linear();
  const int n = 40;
  const std::vector<float> x0 = random_points(gen, n, std::sqrt(s2));
  const double sT2 = std::pow(schedule_sigma(sched, sched.T), 2);
  auto closed_form = [&](int i) {
    const double grow = std::sqrt((s2 + sT2) / s2) / std::sqrt(1 + sT2);
    const double a = x0[2 * i] * grow, b = x0[2 * i + 1] * grow;
    return -(a * a + b * b) / 2 - std::log(2 * M_PI) - std::log(1 + sT2) + std::log((s2 + sT2) / s2);
  };
  double err[3] = {};
  const int steps[3] = {16, 32, 64};
  for (int k = 0; k < 3; ++k) {
    const OdeTable table = ode_rk4_table(sched, steps[k]);
    GaussianOptimum net{sched, s2, &table};
    std::vector<float> out(3 * n, NAN);
    cpu::ode_tile(net, table, n, x0.data(), out.data());
    for (int i = 0; i < n; ++i)
      err[k] = std::max(err[k], std::abs(ode_log_likelihood(out[3 * i], out[3 * i + 1], out[3 * i + 2], table.sigma_T) -
                                         closed_form(i)));
  }
  GaussianOptimum field{sched, s2};
  double adaptive_err = 0;
  int64_t evals = 0;
  for (int i = 0; i < n; ++i) {
    const cpu::AdaptiveResult r = cpu::ode_adaptive_point(field, schedule_sigma(sched, sched.T), &x0[2 * i], 1e-6, 1e-6);
    ASSERT_FALSE(r.stalled);
    adaptive_err = std::max(adaptive_err, std::abs(ode_log_likelihood(r.y[0], r.y[1], r.l, std::sqrt(sT2)) - closed_form(i)));
    evals += r.evals;
  }
  std::printf("  max |log p - closed form|: RK4 %.2g (16 steps), %.2g (32), %.2g (64); adaptive %.2g (%.0f evaluations a point)\n",
              err[0], err[1], err[2], adaptive_err, double(evals) / n);
  EXPECT_LT(err[2], 5e-4);  // seen: 1e-5..1.5e-4 over 80 draws, the truncation error
  EXPECT_GT(err[0] / err[1], 10.0);  // fourth order: 16x per halving, asymptotically
  EXPECT_LT(adaptive_err, 1e-4);
}

// The bound of eps* for data N(0, s^2 I): given x_0, eps - eps*(x_t) =
// (1 - c sqrt(1 - ab)) eps - c sqrt(ab) x_0 with c = sqrt(1 - ab) / (ab s^2 +
// 1 - ab), so E|eps - eps*|^2 = 2 (1 - c sqrt(1 - ab))^2 + c^2 ab |x_0|^2, and
// the mean bound over the points is the closed form's mean over the same
// points, to within the eps draws' standard error. Over x_0 too, its
// expectation is at or above the data's entropy (the bound is at or above
// -log p_theta, whose mean under q is at least h(q)). The gap is about a nat:
// the fixed variance gamma_t is not the true reverse variance, which at small t
// exceeds it by a factor near 1 + 1 / (t - 1), costing about (1/2) sum_k (1/k -
// log(1 + 1/k)) = Euler's gamma / 2 per coordinate there alone.
TEST(LikelihoodSeam, BoundOfTheGaussianOptimumIsItsClosedForm) {
  std::mt19937 gen(std::random_device{}());
  const uint64_t seed = gen();
  const double s2 = std::pow(std::uniform_real_distribution<double>(0.2, 1.5)(gen), 2);
  SCOPED_TRACE("s^2 = " + std::to_string(s2) + ", seed " + std::to_string(seed));
  const Schedule sched = Schedule::linear();
  const VlbTable table = vlb_table(sched, Variance::kPosterior);
  const int n = 4 * cpu::kLikelihoodTile;
  const std::vector<float> x0 = random_points(gen, n, std::sqrt(s2));
  GaussianOptimum net{sched, s2};
  std::vector<VlbSums> got(n, VlbSums{NAN, NAN});
  for (int p0 = 0; p0 < n; p0 += cpu::kLikelihoodTile)
    cpu::vlb_tile(net, table, sched.T, seed, p0, cpu::kLikelihoodTile, x0.data() + 2 * p0, got.data() + p0);
  double mean = 0, mean_sq = 0, expected = 0, expected_over_q = 0;
  for (int i = 0; i < n; ++i) {
    const double r2 = double(x0[2 * i]) * x0[2 * i] + double(x0[2 * i + 1]) * x0[2 * i + 1];
    const double constants = table.step_constant + table.decoder_constant;
    const double total = table.prior_kl(x0[2 * i], x0[2 * i + 1]) + constants + got[i].steps + got[i].decoder;
    double want = table.prior_kl(x0[2 * i], x0[2 * i + 1]) + constants;
    for (int t = 1; t <= sched.T; ++t) {
      const double ab = sched.alpha_bar_double[t], c = net.factor(ab);
      want += table.terms[t].weight * (2 * std::pow(1 - c * std::sqrt(1 - ab), 2) + c * c * ab * r2);
    }
    mean += total / n;
    mean_sq += total * total / n;
    expected += want / n;
  }
  // Over x_0 ~ N(0, s^2 I) as well: |x_0|^2 -> 2 s^2.
  const double abT = table.alpha_bar_T;
  expected_over_q = table.prior_kl(0, 0) + 0.5 * abT * 2 * s2 + table.step_constant + table.decoder_constant;
  for (int t = 1; t <= sched.T; ++t) {
    const double ab = sched.alpha_bar_double[t], c = net.factor(ab);
    expected_over_q += table.terms[t].weight * (2 * std::pow(1 - c * std::sqrt(1 - ab), 2) + c * c * ab * 2 * s2);
  }
  const double entropy = std::log(2 * M_PI * M_E * s2);
  const double se = std::sqrt((mean_sq - mean * mean) / (n - 1));
  std::printf("  mean bound %.5f, closed form %.5f (standard error %.2g); over q: %.5f nats, entropy %.5f, gap %.4f\n",
              mean, expected, se, expected_over_q, entropy, expected_over_q - entropy);
  EXPECT_NEAR(mean, expected, 5 * se);
  EXPECT_GE(expected_over_q, entropy);
}

// The bound and the ODE do not depend on how the points are chunked or on the
// number of threads: the same bytes.
TEST_P(Likelihood, NeitherDependsOnChunkingOrThreads) {
  const ModelConfig model = GetParam();
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen{uint32_t(seed)};
  const std::vector<float> p = cpu::init_params(seed, model);
  const Schedule s = Schedule::linear(30);
  const VlbTable vlb = vlb_table(s, Variance::kPosterior);
  const OdeTable ode = ode_rk4_table(s, 3);
  const int n = 101, split = 37;
  const std::vector<float> x0 = random_points(gen, n, 1.0);
  auto run = [&](int threads, int cut) {
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
    std::vector<VlbSums> sums(n, VlbSums{NAN, NAN});
    std::vector<float> ends(3 * n, NAN);
    cpu::vlb_sums(s, p.data(), vlb, seed, 5, cut, x0.data(), sums.data(), model);
    cpu::vlb_sums(s, p.data(), vlb, seed, 5 + cut, n - cut, x0.data() + 2 * cut, sums.data() + cut, model);
    cpu::ode_end_states(p.data(), ode, cut, x0.data(), ends.data(), model);
    cpu::ode_end_states(p.data(), ode, n - cut, x0.data() + 2 * cut, ends.data() + 3 * cut, model);
    omp_set_num_threads(before);
    return std::pair{sums, ends};
  };
  const auto [sums_one, ends_one] = run(1, 0);
  const auto [sums_two, ends_two] = run(2, split);
  EXPECT_EQ(std::memcmp(sums_one.data(), sums_two.data(), sizeof(VlbSums) * n), 0);
  EXPECT_EQ(std::memcmp(ends_one.data(), ends_two.data(), sizeof(float) * 3 * n), 0);
  for (int i = 0; i < n; ++i) ASSERT_TRUE(std::isfinite(sums_one[i].steps) && std::isfinite(ends_one[3 * i + 2]));
}

// The adaptive integrator and a fine RK4 table reach the same log p on a
// random network; tolerances that float evaluations cannot meet are an error.
TEST_P(Likelihood, AdaptiveAgreesWithAFineTable) {
  const ModelConfig model = GetParam();
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen{uint32_t(seed)};
  const std::vector<float> p = cpu::init_params(seed, model);
  const Schedule s = Schedule::linear();
  const int n = 6;
  const std::vector<float> x0 = random_points(gen, n, 1.0);
  const OdeTable fine = ode_rk4_table(s, 256);
  std::vector<float> table_out(3 * n, NAN), adaptive_out(3 * n, NAN);
  std::vector<int64_t> evals(n, -1);
  cpu::ode_end_states(p.data(), fine, n, x0.data(), table_out.data(), model);
  cpu::ode_end_states_adaptive(s, p.data(), n, x0.data(), 1e-6, 1e-6, adaptive_out.data(), evals.data(), model);
  for (int i = 0; i < n; ++i) {
    const double a = ode_log_likelihood(table_out[3 * i], table_out[3 * i + 1], table_out[3 * i + 2], fine.sigma_T);
    const double b = ode_log_likelihood(adaptive_out[3 * i], adaptive_out[3 * i + 1], adaptive_out[3 * i + 2], fine.sigma_T);
    EXPECT_NEAR(a, b, 1e-3) << "point " << i;
    EXPECT_GT(evals[i], 6);
  }
  try {
    cpu::ode_end_states_adaptive(s, p.data(), 1, x0.data(), 1e-15, 1e-6, adaptive_out.data(), nullptr, model);
    ADD_FAILURE() << "a tolerance of 1e-15 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rtol 1e-15"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cpu::ode_end_states_adaptive(s, p.data(), 1, x0.data(), 0, 1e-6, adaptive_out.data(), nullptr, model), Error);
}

}  // namespace
}  // namespace ddpm
