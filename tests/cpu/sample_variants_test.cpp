// The CPU sampler's variants beside the seed's: DDIM (any eta, S <= T steps),
// the beta variance, DPM-Solver++(2M) and Heun on every timestep spacing, on
// the linear and the cosine schedule, each against a double-precision chain
// with the same Philox draws.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "ddpm/error.hpp"
#include "ddpm/rng.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "tests/cpu/reference.hpp"

namespace ddpm {
namespace {

uint64_t fresh_seed() {
  const uint64_t seed = std::random_device{}() * 0x100000000ull + std::random_device{}();
  std::printf("random seed %llu\n", static_cast<unsigned long long>(seed));
  return seed;
}

// alpha_bar_t, t = 0..T, of the named schedule from its closed form, in double.
std::vector<double> alpha_bar_ref(const std::string& name, int T) {
  const double pi = std::acos(-1.0);
  auto f = [&](int t) {
    const double c = std::cos((double(t) / T + 0.008) / 1.008 * pi / 2);
    return c * c;
  };
  std::vector<double> ab(T + 1, 1.0);
  for (int t = 1; t <= T; ++t) {
    const double beta = name == "cosine" ? std::min(1 - f(t) / f(t - 1), 0.999)
                                         : (T == 1 ? 1e-4 : 1e-4 + (0.02 - 1e-4) * (t - 1) / (T - 1));
    ab[t] = ab[t - 1] * (1 - beta);
  }
  return ab;
}

// Point `index`'s Philox stream after its first pair, x_T, the start of every chain.
NormalPairs start_point(uint64_t seed, int64_t index, double x[2]) {
  NormalPairs rng{};
  philox_init(&rng.state, seed, Stream::kSample, uint64_t(index));
  float a, b;
  rng.next(a, b);
  x[0] = a;
  x[1] = b;
  return rng;
}

// The sampler's chain in double for point `index`, as Song et al. (2021) write
// DDIM: x_T is the stream's first normal pair; from tau_k to the next lower
// tau (0 after tau_1), with tau_i = round(i T / S), the k-th step adds sigma z
// with z the stream's next pair, except the last.
void ddim_reference(const Schedule& s, const std::vector<float>& p, uint64_t seed, int64_t index, int S,
                    double eta, double xy[2]) {
  const std::vector<double> ab = alpha_bar_ref(s.name, s.T);
  std::vector<int> tau = {0};
  for (int i = 1; i <= S; ++i) tau.push_back(int(std::floor(double(i) * s.T / S + 0.5)));
  double x[2];
  NormalPairs rng = start_point(seed, index, x);
  for (int i = S; i >= 1; --i) {
    const int t = tau[i], prev = tau[i - 1];
    double e[2];
    ref::eps_theta(p.data(), x[0], x[1], t, e);
    const double sigma = eta * std::sqrt((1 - ab[prev]) / (1 - ab[t])) * std::sqrt(1 - ab[t] / ab[prev]);
    float z[2] = {0, 0};
    if (prev > 0 && eta > 0) rng.next(z[0], z[1]);
    for (int d = 0; d < 2; ++d) {
      const double x0_pred = (x[d] - std::sqrt(1 - ab[t]) * e[d]) / std::sqrt(ab[t]);
      x[d] = std::sqrt(ab[prev]) * x0_pred + std::sqrt(1 - ab[prev] - sigma * sigma) * e[d] + sigma * z[d];
    }
  }
  xy[0] = x[0];
  xy[1] = x[1];
}

// DPM-Solver++(2M) in double for point `index`, as Lu et al. (2022),
// Algorithm 2, write it in the data prediction x0 = (x - sigma eps) / alpha:
// alpha = sqrt(ab), sigma = sqrt(1 - ab), lambda = log(alpha / sigma); from t_i
// to t_{i+1}: x = sigma_{i+1} / sigma_i x - alpha_{i+1} (e^{-h} - 1) D with
// D = x0_i on the first step, (1 + 1/(2r)) x0_i - 1/(2r) x0_{i-1} after it,
// and the last step, to t = 0, x = x0 (first order, as diffusers ends).
// With sde, the SDE variant: x = sigma_{i+1} / sigma_i e^{-h} x + alpha_{i+1}
// (1 - e^{-2h}) D + sigma_{i+1} sqrt(1 - e^{-2h}) z, z the stream's next pair
// on every step but the last.
void dpmpp_2m_reference(const Schedule& s, const std::vector<float>& p, uint64_t seed, int64_t index, int S,
                        Spacing spacing, double xy[2], bool sde = false) {
  const std::vector<double> ab = alpha_bar_ref(s.name, s.T);
  std::vector<int> tau = sampler_timesteps(s, S, spacing);
  tau.push_back(0);
  double x[2], x0_prev[2] = {0, 0}, h_prev = 0;
  NormalPairs rng = start_point(seed, index, x);
  const auto lambda = [&](int t) { return std::log(std::sqrt(ab[t]) / std::sqrt(1 - ab[t])); };
  for (int i = 0; i < S; ++i) {
    const int t = tau[i], next = tau[i + 1];
    double e[2];
    ref::eps_theta(p.data(), x[0], x[1], t, e);
    float z[2] = {0, 0};
    if (sde && next > 0) rng.next(z[0], z[1]);
    for (int d = 0; d < 2; ++d) {
      const double x0 = (x[d] - std::sqrt(1 - ab[t]) * e[d]) / std::sqrt(ab[t]);
      if (next == 0) {
        x[d] = x0;
      } else {
        const double h = lambda(next) - lambda(t);
        double D = x0;
        if (i > 0) {
          const double r = h_prev / h;
          D = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * x0_prev[d];
        }
        if (sde)
          x[d] = std::sqrt(1 - ab[next]) / std::sqrt(1 - ab[t]) * std::exp(-h) * x[d] +
                 std::sqrt(ab[next]) * (1 - std::exp(-2 * h)) * D +
                 std::sqrt(1 - ab[next]) * std::sqrt(1 - std::exp(-2 * h)) * z[d];
        else
          x[d] = std::sqrt(1 - ab[next]) / std::sqrt(1 - ab[t]) * x[d] - std::sqrt(ab[next]) * (std::exp(-h) - 1) * D;
      }
      x0_prev[d] = x0;
    }
    if (next > 0) h_prev = lambda(next) - lambda(t);
  }
  xy[0] = x[0];
  xy[1] = x[1];
}

// Heun in double for point `index`, as Karras et al. (2022), Algorithm 1 with
// no churn, writes it in x~ = x / sqrt(ab) and sigma = sqrt((1 - ab) / ab),
// with D(x~; sigma) = x~ - sigma eps_theta(sqrt(ab) x~, t) so that
// d = (x~ - D) / sigma = eps_theta: an Euler step to sigma_{i+1}, then, unless
// sigma_{i+1} = 0, the trapezoid with the slope there.
void heun_reference(const Schedule& s, const std::vector<float>& p, uint64_t seed, int64_t index, int S,
                    Spacing spacing, double xy[2]) {
  const std::vector<double> ab = alpha_bar_ref(s.name, s.T);
  std::vector<int> tau = sampler_timesteps(s, S, spacing);
  tau.push_back(0);
  const auto sigma = [&](int t) { return std::sqrt((1 - ab[t]) / ab[t]); };
  double xt[2];
  start_point(seed, index, xt);
  for (double& v : xt) v /= std::sqrt(ab[s.T]);  // x~_0
  for (int i = 0; i < S; ++i) {
    const int t = tau[i], next = tau[i + 1];
    double d1[2], d2[2], pred[2];
    ref::eps_theta(p.data(), std::sqrt(ab[t]) * xt[0], std::sqrt(ab[t]) * xt[1], t, d1);
    for (int c = 0; c < 2; ++c) pred[c] = xt[c] + (sigma(next) - sigma(t)) * d1[c];
    if (next == 0) {
      xt[0] = pred[0];
      xt[1] = pred[1];
      break;
    }
    ref::eps_theta(p.data(), std::sqrt(ab[next]) * pred[0], std::sqrt(ab[next]) * pred[1], next, d2);
    for (int c = 0; c < 2; ++c) xt[c] += (sigma(next) - sigma(t)) * 0.5 * (d1[c] + d2[c]);
  }
  xy[0] = xt[0];
  xy[1] = xt[1];
}

// The ancestral chain in double with sigma_t^2 = beta_t (t > 1; none at t = 1).
void beta_variance_reference(const Schedule& s, const std::vector<float>& p, uint64_t seed, int64_t index,
                             double xy[2]) {
  const std::vector<double> ab = alpha_bar_ref(s.name, s.T);
  double x[2];
  NormalPairs rng = start_point(seed, index, x);
  for (int t = s.T; t >= 1; --t) {
    double e[2];
    ref::eps_theta(p.data(), x[0], x[1], t, e);
    float z[2] = {0, 0};
    if (t > 1) rng.next(z[0], z[1]);
    const double beta = 1 - ab[t] / ab[t - 1];
    for (int d = 0; d < 2; ++d)
      x[d] = (x[d] - beta / std::sqrt(1 - ab[t]) * e[d]) / std::sqrt(1 - beta) + (t > 1 ? std::sqrt(beta) : 0) * z[d];
  }
  xy[0] = x[0];
  xy[1] = x[1];
}

std::vector<float> run(const Schedule& s, const std::vector<float>& p, uint64_t seed, int64_t first, int n,
                       const SamplerConfig& c) {
  std::vector<float> xy(2 * n, std::nanf(""));
  cpu::sample(s, p.data(), seed, first, n, xy.data(), c);
  return xy;
}

SamplerConfig solver(SamplerKind kind, int steps, Spacing spacing) {
  SamplerConfig c{kind, steps};
  c.spacing = spacing;
  return c;
}

SamplerConfig ddim(int steps, double eta) { return {SamplerKind::kDdim, steps, eta, Variance::kPosterior}; }

bool same_bytes(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Every coordinate within rel * (1 + |want|) of the double chain.
template <class Ref>
void expect_matches(const std::vector<float>& got, int64_t first, double rel, Ref&& reference) {
  double worst = 0;
  for (int i = 0; i < int(got.size() / 2); ++i) {
    double want[2];
    reference(first + i, want);
    for (int d = 0; d < 2; ++d) {
      const double err = std::abs(got[2 * i + d] - want[d]) / (1 + std::abs(want[d]));
      worst = std::max(worst, err);
      ASSERT_LE(err, rel) << "point " << i << " coordinate " << d << ": " << got[2 * i + d] << " vs " << want[d];
    }
  }
  std::printf("largest relative error %.3g\n", worst);
}

TEST(CpuSampleDdim, EtaOneOverAllStepsIsTheAncestralChain) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const std::vector<float> p = cpu::init_params(seed);
  for (const Schedule& s : {Schedule::linear(), Schedule::cosine(200)}) {
    SCOPED_TRACE(s.name);
    const int n = 53;
    const std::vector<float> ancestral = run(s, p, seed, 77, n, {});
    const std::vector<float> d = run(s, p, seed, 77, n, ddim(s.T, 1.0));
    double worst = 0;
    for (int k = 0; k < 2 * n; ++k) {
      // Same z at each t; only the float rounding of the folded update differs, which
      // 500 steps grow to about 1e-5 (a different z would differ by about 1).
      const double err = std::abs(d[k] - ancestral[k]) / (1 + std::abs(ancestral[k]));
      worst = std::max(worst, err);
      ASSERT_LE(err, 1e-4) << "element " << k << ": " << d[k] << " vs " << ancestral[k];
    }
    std::printf("%s: largest relative difference %.3g\n", s.name.c_str(), worst);
  }
}

TEST(CpuSampleDdim, EtaZeroIsDeterministicAndMatchesTheDoubleChain) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const std::vector<float> p = cpu::init_params(seed ^ 3);
  for (const Schedule& s : {Schedule::linear(100), Schedule::cosine(100)}) {
    for (int S : {1, 7, 20}) {
      SCOPED_TRACE(s.name + " S=" + std::to_string(S));
      const int n = 29;
      const std::vector<float> xy = run(s, p, seed, 1000, n, ddim(S, 0.0));
      // The reference draws no noise at all: only x_T enters.
      expect_matches(xy, 1000, 1e-4, [&](int64_t i, double want[2]) { ddim_reference(s, p, seed, i, S, 0.0, want); });
      EXPECT_TRUE(same_bytes(xy, run(s, p, seed, 1000, n, ddim(S, 0.0))));
    }
  }
}

TEST(CpuSampleDdim, NoisyStridedChainMatchesTheDoubleChain) {
  // S not dividing T: the k-th step's noise is the stream's pair k.
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const std::vector<float> p = cpu::init_params(seed ^ 5);
  std::mt19937 gen{uint32_t(seed)};
  const double eta = std::uniform_real_distribution<double>(0.2, 1.0)(gen);
  SCOPED_TRACE("eta " + std::to_string(eta));
  for (const Schedule& s : {Schedule::linear(60), Schedule::cosine(60)}) {
    SCOPED_TRACE(s.name);
    const int S = 11, n = 31;
    const std::vector<float> xy = run(s, p, seed, 5, n, ddim(S, eta));
    expect_matches(xy, 5, 1e-4, [&](int64_t i, double want[2]) { ddim_reference(s, p, seed, i, S, eta, want); });
  }
}

// The solvers on every spacing against their double chains: one evaluation
// per step (DPM-Solver++ and its SDE variant) or two (Heun), the carried
// 2-vector, the last step's first order; the ODE solvers deterministic given
// x_T, the SDE drawing the stream's pairs in order.
// The float chain's eps carries ~1e-6 of rounding, which the first step's x0
// prediction, (x - sqrt(1 - ab) eps) / sqrt(ab), multiplies by sigma_T =
// sqrt((1 - ab_T) / ab_T): 12 for the linear schedule, ~2000 for the cosine
// one's clipped last step, where a chain of one or two steps cannot damp it
// (seen: 1.2e-3 at S = 2). The tolerance grows with it.
TEST(CpuSampleSolvers, DpmSolverAndHeunMatchTheDoubleChains) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const std::vector<float> p = cpu::init_params(seed ^ 11);
  for (const Schedule& s : {Schedule::linear(100), Schedule::cosine(100)}) {
    const double tol = 1e-4 + 1e-6 * std::sqrt((1 - s.alpha_bar_double[s.T]) / s.alpha_bar_double[s.T]);
    for (Spacing sp : {Spacing::kUniform, Spacing::kKarras, Spacing::kLogSnr}) {
      for (int S : {1, 2, 9, 25}) {
        SCOPED_TRACE(s.name + " " + name_of(sp) + " S=" + std::to_string(S));
        const int n = 23;
        const std::vector<float> d = run(s, p, seed, 40, n, solver(SamplerKind::kDpmpp2m, S, sp));
        expect_matches(d, 40, tol,
                       [&](int64_t i, double want[2]) { dpmpp_2m_reference(s, p, seed, i, S, sp, want); });
        const std::vector<float> sde = run(s, p, seed, 40, n, solver(SamplerKind::kDpmpp2mSde, S, sp));
        expect_matches(sde, 40, tol,
                       [&](int64_t i, double want[2]) { dpmpp_2m_reference(s, p, seed, i, S, sp, want, true); });
        if (S > 1) {
          EXPECT_FALSE(same_bytes(sde, run(s, p, seed + 1, 40, n, solver(SamplerKind::kDpmpp2mSde, S, sp))));
        }
        const std::vector<float> h = run(s, p, seed, 40, n, solver(SamplerKind::kHeun, S, sp));
        expect_matches(h, 40, tol, [&](int64_t i, double want[2]) { heun_reference(s, p, seed, i, S, sp, want); });
        EXPECT_TRUE(same_bytes(h, run(s, p, seed, 40, n, solver(SamplerKind::kHeun, S, sp))));
      }
    }
  }
}

TEST(CpuSampleVariance, BetaChainMatchesTheDoubleChain) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const std::vector<float> p = cpu::init_params(seed ^ 7);
  for (const Schedule& s : {Schedule::linear(20), Schedule::cosine(20)}) {
    SCOPED_TRACE(s.name);
    const int n = 37;
    const SamplerConfig beta{SamplerKind::kDdpm, 0, 0.0, Variance::kBeta};
    const std::vector<float> xy = run(s, p, seed, 300, n, beta);
    expect_matches(xy, 300, 1e-4, [&](int64_t i, double want[2]) { beta_variance_reference(s, p, seed, i, want); });
    EXPECT_FALSE(same_bytes(xy, run(s, p, seed, 300, n, {})));
  }
}

TEST(CpuSample, DefaultConfigIsTheSeedsSamplerByteForByte) {
  const uint64_t seed = fresh_seed();
  const std::vector<float> p = cpu::init_params(seed ^ 9);
  for (const Schedule& s : {Schedule::linear(30), Schedule::cosine(30)}) {
    SCOPED_TRACE(s.name);
    const int n = 61;
    std::vector<float> plain(2 * n, std::nanf(""));
    cpu::sample(s, p.data(), seed, 11, n, plain.data());
    EXPECT_TRUE(same_bytes(plain, run(s, p, seed, 11, n, SamplerConfig{})));
    EXPECT_TRUE(same_bytes(plain, run(s, p, seed, 11, n, {SamplerKind::kDdpm, s.T, 0.0, Variance::kPosterior})));
  }
}

TEST(CpuSampleDdim, SameBytesForAnyChunking) {
  const uint64_t seed = fresh_seed();
  const Schedule s = Schedule::cosine(30);
  const std::vector<float> p = cpu::init_params(seed ^ 1);
  const int n = 211;
  for (const SamplerConfig& c : {ddim(13, 0.7), ddim(13, 0.0), ddim(30, 1.0),
                                 solver(SamplerKind::kDpmpp2m, 13, Spacing::kLogSnr),
                                 solver(SamplerKind::kHeun, 7, Spacing::kKarras)}) {
    SCOPED_TRACE(std::string(name_of(c.kind)) + " eta " + std::to_string(c.eta));
    const std::vector<float> whole = run(s, p, seed, 0, n, c);
    std::vector<float> parts(2 * n, std::nanf(""));
    // Uneven chunks starting mid-tile: point i always uses Philox item i.
    int64_t first = 0;
    for (int64_t len : {1, 47, 50, 13, 100}) {
      cpu::sample(s, p.data(), seed, first, len, parts.data() + 2 * first, c);
      first += len;
    }
    ASSERT_EQ(first, n);
    EXPECT_TRUE(same_bytes(whole, parts));
    EXPECT_FALSE(same_bytes(whole, run(s, p, seed + 1, 0, n, c)));
  }
}

TEST(CpuSample, InvalidConfigThrowsNamingTheValueAndWritesNothing) {
  const Schedule s = Schedule::linear(40);
  const std::vector<float> p = cpu::init_params(1);
  const struct {
    SamplerConfig config;
    std::string needle;
  } cases[] = {
      {ddim(41, 0), "steps 41"},
      {ddim(-2, 0), "steps -2"},
      {ddim(10, -0.25), "eta -0.25"},
      {ddim(10, std::nan("")), "eta nan"},
      {ddim(10, -INFINITY), "eta -inf"},
      {ddim(40, 5.0), "eta 5"},
      {{SamplerKind::kDdpm, 20, 0.0, Variance::kPosterior}, "steps 20"},
      {{SamplerKind::kDdpm, 0, 1.0, Variance::kPosterior}, "eta 1"},
      {{SamplerKind::kDdim, 0, 0.0, Variance::kBeta}, "variance beta"},
      {{SamplerKind::kDpmpp2m, 10, 0.5, Variance::kPosterior}, "eta 0.5"},
      {{SamplerKind::kHeun, 0, 0.0, Variance::kBeta}, "variance beta"},
      {solver(SamplerKind::kHeun, 41, Spacing::kKarras), "steps 41"},
      {solver(SamplerKind::kDdpm, 0, Spacing::kKarras), "timesteps karras"},
      {{SamplerKind::kDpmpp2mSde, 5, 1.0, Variance::kPosterior}, "eta 1"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.needle);
    std::vector<float> xy(8, std::nanf(""));
    try {
      cpu::sample(s, p.data(), 0, 0, 4, xy.data(), c.config);
      ADD_FAILURE() << "no ddpm::Error thrown";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(c.needle), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
    for (float v : xy) EXPECT_TRUE(std::isnan(v));
  }
}

}  // namespace
}  // namespace ddpm
