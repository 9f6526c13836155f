#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ddpm/math.hpp"
#include "ddpm/rng.hpp"

namespace ddpm {
namespace {

std::mt19937 fresh_gen() {
  const unsigned seed = std::random_device{}();
  std::printf("random seed %u\n", seed);
  return std::mt19937(seed);
}

TEST(Embedding, MatchesTheSeedsFormulaInDouble) {
  for (int t = 0; t <= 500; ++t)
    for (int k = 0; k < kEmbDim; ++k) {
      const int j = k % kEmbHalf;
      const double freq = std::exp(-j * std::log(10000.0) / (kEmbHalf - 1));
      const double want = k < kEmbHalf ? std::sin(t * freq) : std::cos(t * freq);
      // float32 argument t * freq carries ~t * 6e-8 absolute error, as in the seed.
      ASSERT_NEAR(timestep_embedding(t, k), want, 1e-6 + 1e-7 * t) << "t=" << t << " k=" << k;
    }
  EXPECT_FLOAT_EQ(embedding_frequency(0), 1.f);
  EXPECT_NEAR(embedding_frequency(kEmbHalf - 1), 1e-4, 1e-9);
}

// The x encoding: the timestep embedding's frequencies applied to scale * x,
// sin for k < 32 and cos after, against double at fresh points and scales.
TEST(XEmbedding, MatchesTheFormulaInDouble) {
  auto gen = fresh_gen();
  std::normal_distribution<float> normal(0.f, 2.f);
  std::uniform_real_distribution<float> scales(0.5f, 50.f);
  for (int i = 0; i < 2000; ++i) {
    const float x = normal(gen), scale = scales(gen);
    for (int k = 0; k < kEmbDim; ++k) {
      const int j = k % kEmbHalf;
      const double a = double(scale) * x * std::exp(-j * std::log(10000.0) / (kEmbHalf - 1));
      const double want = k < kEmbHalf ? std::sin(a) : std::cos(a);
      // The float argument carries ~2 ulp: 2.5e-7 |scale x| absolute.
      ASSERT_NEAR(x_embedding(x, scale, k), want, 1e-6 + 2.5e-7 * std::abs(double(scale) * x))
          << "x=" << x << " scale=" << scale << " k=" << k;
    }
  }
  EXPECT_EQ(x_embedding(0.f, 25.f, 0), 0.f);
  EXPECT_EQ(x_embedding(0.f, 25.f, kEmbHalf), 1.f);
}

TEST(Silu, ValueAndDerivativeAgainstDoubleAndFiniteDifferences) {
  auto gen = fresh_gen();
  std::uniform_real_distribution<double> u(-20, 20);
  for (int i = 0; i < 10000; ++i) {
    const double z = u(gen);
    const double s = 1 / (1 + std::exp(-z));
    ASSERT_NEAR(silu(float(z)), z * s, 1e-6 * (1 + std::abs(z)));
    const double h = 1e-6;
    const double fd = ((z + h) / (1 + std::exp(-(z + h))) - (z - h) / (1 + std::exp(-(z - h)))) / (2 * h);
    ASSERT_NEAR(silu_grad(float(z)), fd, 1e-5) << z;
  }
}

TEST(Adam, ThreeStepsAgainstHandComputation) {
  auto gen = fresh_gen();
  std::normal_distribution<double> n(0, 1);
  const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  float p = float(n(gen)), m = 0, v = 0;
  double pd = p, md = 0, vd = 0;
  for (int k = 1; k <= 3; ++k) {
    const double g = n(gen);
    adam_update(p, m, v, float(g), AdamStep::at(k, float(lr)));
    // torch.optim.Adam: bias-corrected moments.
    md = b1 * md + (1 - b1) * g;
    vd = b2 * vd + (1 - b2) * g * g;
    const double mhat = md / (1 - std::pow(b1, k)), vhat = vd / (1 - std::pow(b2, k));
    pd -= lr * mhat / (std::sqrt(vhat) + eps);
    // m sums gradients of either sign: float rounding is relative to |g| (~1), not to |m|.
    ASSERT_NEAR(m, md, 1e-6 * std::abs(md) + 3e-7);
    ASSERT_NEAR(v, vd, 1e-6 * vd + 1e-12);
    ASSERT_NEAR(p, pd, 1e-6 * std::abs(pd) + 3e-7);
  }
  // First step of Adam moves every parameter by lr * sign(g) (up to eps).
  float q = 0.5f, mq = 0, vq = 0;
  adam_update(q, mq, vq, -3.f, AdamStep::at(1, 1e-3f));
  EXPECT_NEAR(q, 0.501f, 1e-7);
}

TEST(ReverseStep, MatchesTheSeedsUpdate) {
  auto gen = fresh_gen();
  std::normal_distribution<double> n(0, 1);
  const Schedule s = Schedule::linear();
  for (int t = 1; t <= s.T; ++t) {
    const double x = n(gen), e = n(gen), z = n(gen);
    const double beta = s.beta[t], alpha = 1 - beta, ab = s.alpha_bar[t], ab_prev = s.alpha_bar[t - 1];
    double want = (x - beta / std::sqrt(1 - ab) * e) / std::sqrt(alpha);
    if (t > 1) want += std::sqrt((1 - ab_prev) / (1 - ab) * beta) * z;
    ASSERT_NEAR(reverse_step(float(x), float(e), float(z), s.reverse[t]), want, 2e-5 * (1 + std::abs(want)))
        << "t=" << t;
  }
}

// x_prev of DDIM in double, unfolded as Song et al. (2021), eq. 12, write it.
double ddim_ref(double x, double eps, double z, double ab_t, double ab_prev, double eta) {
  const double x0_pred = (x - std::sqrt(1 - ab_t) * eps) / std::sqrt(ab_t);
  const double sigma = eta * std::sqrt((1 - ab_prev) / (1 - ab_t)) * std::sqrt(1 - ab_t / ab_prev);
  return std::sqrt(ab_prev) * x0_pred + std::sqrt(1 - ab_prev - sigma * sigma) * eps + sigma * z;
}

TEST(DdimStep, MatchesTheUpdateInDoubleOnRandomInputs) {
  auto gen = fresh_gen();
  std::normal_distribution<double> n(0, 1);
  std::uniform_real_distribution<double> u(0, 1);
  for (int i = 0; i < 100000; ++i) {
    // alpha_bar over the range the schedules reach, log-uniform down to 1e-8; prev = 0 a tenth of the time.
    const double ab_t = std::exp(std::log(1e-8) * u(gen));
    const double ab_prev = i % 10 == 0 ? 1.0 : ab_t + (1 - ab_t) * u(gen);
    if (ab_prev <= ab_t) continue;
    const double eta = i % 3 == 0 ? 0.0 : i % 3 == 1 ? 1.0 : u(gen);
    const double x = n(gen) * 3, e = n(gen), z = n(gen);
    const LinearCoef c = LinearCoef::ddim(ab_t, ab_prev, eta);
    const double want = ddim_ref(float(x), float(e), float(z), ab_t, ab_prev, eta);
    // float rounding of each term, relative to the largest term (x0_pred may cancel).
    const double scale = std::sqrt(ab_prev / ab_t) * (std::abs(x) + std::abs(e)) + std::abs(z) + 1;
    ASSERT_NEAR(linear_step(float(x), float(e), float(z), 0.f, c), want, 4e-7 * scale)
        << "ab_t=" << ab_t << " ab_prev=" << ab_prev << " eta=" << eta;
    if (ab_prev == 1.0 || eta == 0) {
      ASSERT_EQ(c.sigma, 0.f);
    }
  }
}

TEST(DdimStep, EtaOneOverOneStepIsTheAncestralStep) {
  // With prev = t - 1 and eta = 1: sigma^2 = gamma_t, x_coef = 1 / sqrt(alpha_t),
  // eps_coef = -beta_t / (sqrt(alpha_t) sqrt(1 - alpha_bar_t)).
  auto gen = fresh_gen();
  std::normal_distribution<double> n(0, 1);
  for (const Schedule& s : {Schedule::linear(), Schedule::cosine(1000)}) {
    SCOPED_TRACE(s.name);
    for (int t = 1; t <= s.T; ++t) {
      const LinearCoef c = LinearCoef::ddim(s.alpha_bar_double[t], s.alpha_bar_double[t - 1], 1.0);
      const ReverseCoef r = s.reverse[t];
      ASSERT_NEAR(c.x_coef, r.inv_sqrt_alpha, 2e-7 * r.inv_sqrt_alpha) << "t=" << t;
      // The fold subtracts nearly equal terms near t = 1, where 1 - alpha_bar_{t-1} is small.
      ASSERT_NEAR(c.eps_coef, -r.eps_coef * r.inv_sqrt_alpha, 1e-6 * r.eps_coef * r.inv_sqrt_alpha) << "t=" << t;
      ASSERT_NEAR(c.sigma, r.sigma, 2e-7 * r.sigma) << "t=" << t;
      const float x = float(n(gen)), e = float(n(gen)), z = float(n(gen));
      const float a = linear_step(x, e, z, 0.f, c), b = reverse_step(x, e, z, r);
      ASSERT_NEAR(a, b, 1e-6 * (std::abs(x) + std::abs(e)) * r.inv_sqrt_alpha + 1e-6) << "t=" << t;
    }
  }
}

TEST(QSample, MarginalMeanAndVarianceOverManyDraws) {
  const Schedule s = Schedule::linear();
  const uint64_t seed = std::random_device{}();
  for (int t : {1, 25, 100, 250, 500}) {
    const float x0 = 1.3f;
    const int n = 200000;
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i += 2) {
      Philox st;
      philox_init(&st, seed, Stream::kForwardProcess, uint64_t(i));
      const float4 e = curand_normal4(&st);
      for (float eps : {e.x, e.y}) {
        const double xt = q_sample(x0, eps, s.forward[t]);
        sum += xt;
        sq += xt * xt;
      }
    }
    const double mean = sum / n, var = sq / n - mean * mean;
    const double want_mean = std::sqrt(double(s.alpha_bar[t])) * x0, want_var = 1 - double(s.alpha_bar[t]);
    // 5 standard errors.
    EXPECT_NEAR(mean, want_mean, 5 * std::sqrt(want_var / n)) << "t=" << t;
    EXPECT_NEAR(var, want_var, 5 * want_var * std::sqrt(2.0 / n)) << "t=" << t;
  }
}

}  // namespace
}  // namespace ddpm
