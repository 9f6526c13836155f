// Checks of the fused samplers, written once for both backends:
// Backend::sample(params, sched, seed, first, n, run) returns n x 2 points.
// The reference is the CPU sampler, which draws the same noise.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "ddpm/params.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/cpu/mlp.hpp"
#include "kernels/sample_fused.hpp"
#include "tests/cpu/reference.hpp"
#include "tests/kernels/reverse_step_cases.hpp"

namespace ddpm::kernels::fused_cases {

// expect_close, printing the largest error found: what bench/NOTES.md quotes
// as each precision's error against the CPU chain.
inline void expect_close(const std::vector<float>& got, const std::vector<double>& want, double tol) {
  double worst = 0;
  for (std::size_t i = 0; i < got.size() && i < want.size(); ++i)
    worst = std::max(worst, std::abs(got[i] - want[i]) / (1 + std::abs(want[i])));
  std::printf("  max |got - cpu| / (1 + |cpu|) = %.3g (tolerance %.3g)\n", worst, tol);
  cases::expect_close(got, want, tol);
}

struct Run {
  Precision precision = Precision::kFp32;
  SamplerConfig config{};
  int grid = 2;  // persistent blocks (emulation; the driver picks its own)
  ModelConfig model{};
  // The x encoding's frequencies planted in the kernel's parameters in place of
  // the host's (x_embedding_reads_the_hosts_frequencies; a backend that launches
  // the kernel itself honours it); null: the host's.
  const XEmbeddingFrequencies* x_freq = nullptr;
};

// Points each block of the precision takes at a time.
inline int64_t block_points(Precision p) { return fused_shape(p).points_per_block; }
// Whether a run is of the x encoding's model.
inline bool x_encoding(const Run& run) { return run.model.x_embedding != XEmbedding::kNone; }

inline std::vector<double> cpu_sample(const std::vector<float>& params, const Schedule& s, uint64_t seed,
                                      int64_t first, int64_t n, const SamplerConfig& config = {},
                                      const ModelConfig& model = {}) {
  std::vector<float> xy(2 * n);
  cpu::sample(s, params.data(), seed, first, n, xy.data(), config, cpu::CpuPrecision::kFp32, model);
  return {xy.begin(), xy.end()};
}

inline uint64_t fresh_seed() { return std::random_device{}(); }

// Operand rounding of the tensor cores, written here apart from the kernels':
// tf32 keeps 10 mantissa bits, rounding to nearest with ties away from zero
// (cvt.rna); bf16 keeps 7, to nearest even.
inline double round_operand(float v, Precision p) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  if (p == Precision::kTf32) u = (u + 0x1000u) & 0xffffe000u;
  else if (p == Precision::kBf16) u = ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16) << 16;
  float r;
  std::memcpy(&r, &u, sizeof r);
  return r;
}

// The chain in double with the kernel's roundings and nothing else: the
// tensor-core layers' inputs and weights rounded as the tensor cores round
// them (the hidden layers, and with the x encoding layer 0 too, its inputs
// the encoding of the float x), sums and SiLU exact, the same noise. What a
// tensor-core kernel must reproduce to float rounding; a misplaced fragment
// element costs O(1). (fp32: no operand rounding, the chain in double.)
// x_freq: the x encoding's frequencies (null: ref::x_embedding's own).
inline std::vector<double> rounded_chain(const std::vector<float>& params, const Schedule& s, uint64_t seed,
                                         int64_t first, int64_t n, Precision p, const ModelConfig& model = {},
                                         const float* x_freq = nullptr) {
  const auto& L = model.net().layers;
  const bool encoded = model.x_embedding == XEmbedding::kSinusoidal;
  const std::vector<float> e1 = cpu::layer0_time_terms(model.net(), params.data(), s.T);
  auto weight = [&](const LayerShape& l, int o, int k) { return params[l.weight + std::size_t(o) * l.in + k]; };
  std::vector<double> w0(kHidden * kHidden), w1(kHidden * kHidden), w2(kHidden * kHidden);
  for (int o = 0; o < kHidden; ++o)
    for (int k = 0; k < kHidden; ++k) {
      if (encoded) w0[o * kHidden + k] = round_operand(weight(L[0], o, k), p);
      w1[o * kHidden + k] = round_operand(weight(L[1], o, k), p);
      w2[o * kHidden + k] = round_operand(weight(L[2], o, k), p);
    }
  auto silu = [](double z) { return z / (1 + std::exp(-z)); };
  // out = silu(W in + bias) with in rounded as an operand.
  auto product = [&](const std::vector<double>& w, const float* bias, const double* in, double* out) {
    for (int o = 0; o < kHidden; ++o) {
      double acc = bias[o];
      for (int k = 0; k < kHidden; ++k) acc += w[o * kHidden + k] * round_operand(float(in[k]), p);
      out[o] = silu(acc);
    }
  };
  std::vector<double> xy(2 * n);
  for (int64_t i = 0; i < n; ++i) {
    NormalPairs rng{};
    philox_init(&rng.state, seed, Stream::kSample, uint64_t(first + i));
    float a, b;
    rng.next(a, b);
    double x[2] = {a, b}, ax[kXEmbInputs], h1[kHidden], h2[kHidden], h3[kHidden];
    for (const SampleStep& step : sample_steps(s, {})) {
      const float* et = e1.data() + std::size_t(step.t) * kHidden;
      if (encoded) {
        for (int d = 0; d < kDataDim; ++d)
          for (int k = 0; k < kEmbDim; ++k)
            ax[d * kEmbDim + k] = float(ref::x_embedding(float(x[d]), model.x_scale, k, x_freq));
        product(w0, et, ax, h1);
      } else {
        for (int u = 0; u < kHidden; ++u)
          h1[u] = silu(x[0] * weight(L[0], u, 0) + x[1] * weight(L[0], u, 1) + et[u]);
      }
      product(w1, params.data() + L[1].bias, h1, h2);
      product(w2, params.data() + L[2].bias, h2, h3);
      float z[2] = {0.f, 0.f};
      if (step.noise) rng.next(z[0], z[1]);
      for (int c = 0; c < 2; ++c) {
        double eps = params[L[3].bias + c];
        for (int k = 0; k < kHidden; ++k) eps += weight(L[3], c, k) * h3[k];
        const ReverseCoef& r = step.reverse;
        x[c] = (x[c] - double(r.eps_coef) * eps) * double(r.inv_sqrt_alpha) + double(r.sigma) * z[c];
      }
    }
    xy[2 * i] = x[0];
    xy[2 * i + 1] = x[1];
  }
  return xy;
}

// Three block tiles, the last partial, on two persistent blocks; a short chain.
template <class Backend>
void short_chain_matches_the_cpu_sampler(Backend& b, Precision p, double tol) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = Schedule::linear(4);
  const std::vector<float> params = cpu::init_params(seed);
  const int64_t n = 2 * block_points(p) + 22, first = 5000;
  expect_close(b.sample(params, s, seed, first, n, Run{p}), cpu_sample(params, s, seed, first, n), tol);
}

// The seed's full 500-step chain for one block's points, on trained-looking
// weights (scaled up so activations leave SiLU's linear part), against the CPU sampler.
template <class Backend>
void full_chain_matches_the_cpu_sampler(Backend& b, Precision p, double tol) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = Schedule::linear();
  std::vector<float> params = cpu::init_params(seed);
  for (float& v : params) v *= 3.f;
  const int64_t n = block_points(p);
  expect_close(b.sample(params, s, seed, 0, n, Run{p, {}, 1}), cpu_sample(params, s, seed, 0, n), tol);
}

// Large betas make x_{t-1} depend on eps_theta with a coefficient near 1, so the
// network's arithmetic (each layer, each unit, each fragment's lane mapping) is
// seen at full strength: a misplaced element costs O(1), rounding ~tol. Two
// steps of two blocks' points, on weights scaled up so activations leave
// SiLU's linear part.
struct FullStrength {
  uint64_t seed = fresh_seed();
  Schedule s = Schedule::linear(2, 0.5, 0.9);
  std::vector<float> params;
  int64_t n;

  explicit FullStrength(Precision p) : params(cpu::init_params(seed)), n(2 * block_points(p)) {
    for (float& v : params) v *= 3.f;
  }
};

template <class Backend>
void network_is_seen_at_full_strength(Backend& b, Precision p, double tol) {
  const FullStrength c(p);
  SCOPED_TRACE("seed " + std::to_string(c.seed));
  expect_close(b.sample(c.params, c.s, c.seed, 0, c.n, Run{p}), cpu_sample(c.params, c.s, c.seed, 0, c.n), tol);
}

// The same for a tensor-core precision against rounded_chain, to float rounding.
// `exact_silu`: the backend's SiLU is exact to float (emulation's tanhf, not
// the GPU's tanh.approx), so all but a few elements must agree to 1e-5.
template <class Backend>
void network_rounds_as_the_tensor_cores_do(Backend& b, Precision p, double tol, bool exact_silu) {
  const FullStrength c(p);
  SCOPED_TRACE("seed " + std::to_string(c.seed));
  const std::vector<float> got = b.sample(c.params, c.s, c.seed, 0, c.n, Run{p});
  const std::vector<double> want = rounded_chain(c.params, c.s, c.seed, 0, c.n, p);
  // An activation within float rounding of a rounding boundary may round the
  // other way in the kernel than here (expected for a few points among the
  // 2^17 roundings of this run, tf32 more often than bf16; up to 8% of the
  // elements seen): such an element is off by a fraction of an operand ulp
  // times a weight. Every other one agrees to float rounding, and a misplaced
  // fragment element would spoil them all.
  int off = 0;
  for (std::size_t i = 0; i < got.size(); ++i) off += !(std::abs(got[i] - want[i]) <= 1e-5 * (1 + std::abs(want[i])));
  std::printf("  %d of %zu elements beyond 1e-5\n", off, got.size());
  if (exact_silu) {
    EXPECT_LE(off, int(got.size() / 5));
  }
  expect_close(got, want, tol);
}

// DDIM (with noise), the beta variance, DPM-Solver++(2M), its SDE variant and
// Heun (their carried 2-vector in the owner's registers) run in the same
// kernel: S = 3 of T = 8.
template <class Backend>
void other_samplers_match_the_cpu_sampler(Backend& b, Precision p, double tol) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = Schedule::linear(8);
  const std::vector<float> params = cpu::init_params(seed);
  const int64_t n = block_points(p) + 3;
  SamplerConfig ddim;
  ddim.kind = SamplerKind::kDdim;
  ddim.steps = 3;
  ddim.eta = 0.5;
  SamplerConfig beta;
  beta.variance = Variance::kBeta;
  SamplerConfig dpmpp{SamplerKind::kDpmpp2m, 3}, sde{SamplerKind::kDpmpp2mSde, 3}, heun{SamplerKind::kHeun, 3};
  dpmpp.spacing = Spacing::kUniform;
  for (const SamplerConfig& c : {ddim, beta, dpmpp, sde, heun}) {
    SCOPED_TRACE(std::string(name_of(c.kind)) + " " + name_of(c.variance));
    expect_close(b.sample(params, s, seed, 7, n, Run{p, c}), cpu_sample(params, s, seed, 7, n, c), tol);
  }
}

// With every parameter zero, eps_theta = 0 and the chain is linear Gaussian:
// x_{t-1} = x_t / sqrt(alpha_t) + sigma_t z, so x_0 ~ N(0, v_0 I) with
// v_T = 1, v_{t-1} = v_t / alpha_t + sigma_t^2 (closed form, in double). The
// kernel's noise must give those moments at every scale, and its draws must
// be independent across points and coordinates. The same seed twice gives the
// same bytes; another seed other points.
template <class Backend>
void noise_has_the_chains_moments(Backend& b, Precision p, int T, int64_t n) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = Schedule::linear(T, 0.01, 0.3);
  const std::vector<float> zero(kParamCount, 0.f);
  double v = 1;
  for (int t = T; t >= 1; --t) v = v / double(s.alpha[t]) + double(s.reverse[t].sigma) * s.reverse[t].sigma;
  const std::vector<float> xy = b.sample(zero, s, seed, 0, n, Run{p});
  double mean[2] = {0, 0}, m2[2] = {0, 0}, cross = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int c = 0; c < 2; ++c) {
      mean[c] += xy[2 * i + c];
      m2[c] += double(xy[2 * i + c]) * xy[2 * i + c];
    }
    cross += double(xy[2 * i]) * xy[2 * i + 1];
  }
  // 5 standard errors: the mean's sqrt(v / n), the variance's v sqrt(2 / n), the covariance's v / sqrt(n).
  for (int c = 0; c < 2; ++c) {
    EXPECT_LT(std::abs(mean[c] / n), 5 * std::sqrt(v / n)) << "coordinate " << c;
    EXPECT_LT(std::abs(m2[c] / n / v - 1), 5 * std::sqrt(2.0 / n)) << "coordinate " << c << ", v_0 = " << v;
  }
  EXPECT_LT(std::abs(cross / n / v), 5 / std::sqrt(double(n)));
  EXPECT_EQ(b.sample(zero, s, seed, 0, n, Run{p}), xy);
  EXPECT_NE(b.sample(zero, s, seed + 1, 0, n, Run{p}), xy);
}

// The sinusoidal x encoding: its layer 0 seen at full strength (large betas,
// weights scaled up) over two block tiles, the second partial, then a DDIM
// chain with noise. In fp32 both against the CPU sampler of the same model, to
// float rounding (sincosf and the CPU's polynomial differ by it, which the
// encoding's scale of 25 amplifies); on the tensor cores the first against
// rounded_chain (a misplaced fragment element of layer 0 would cost O(1)),
// the second against the CPU sampler to the precision's own error.
template <class Backend>
void x_encoding_matches_the_cpu_sampler(Backend& b, Precision p, double tol, double ddim_tol) {
  const ModelConfig model{XEmbedding::kSinusoidal, kXScale};
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::vector<float> params = cpu::init_params(seed, model);
  for (float& v : params) v *= 3.f;
  const int64_t n = block_points(p) + 5;
  const Schedule full = Schedule::linear(2, 0.5, 0.9);
  expect_close(b.sample(params, full, seed, 0, n, Run{p, {}, 2, model}),
               p == Precision::kFp32 ? cpu_sample(params, full, seed, 0, n, {}, model)
                                     : rounded_chain(params, full, seed, 0, n, p, model),
               tol);
  SamplerConfig ddim;
  ddim.kind = SamplerKind::kDdim;
  ddim.steps = 3;
  ddim.eta = 0.5;
  const Schedule s = Schedule::linear(8);
  expect_close(b.sample(params, s, seed, 7, n, Run{p, ddim, 2, model}),
               cpu_sample(params, s, seed, 7, n, ddim, model), ddim_tol);
  SamplerConfig heun{SamplerKind::kHeun, 3};
  expect_close(b.sample(params, s, seed, 7, n, Run{p, heun, 2, model}),
               cpu_sample(params, s, seed, 7, n, heun, model), ddim_tol);
}

// The x encoding's frequencies are the host's, handed to the kernel in its
// parameters (the device's expf may be 2 ulp from the host's, CUDA's bound,
// and at s |x| ~ 100 that moves the encoding's arguments by ~1e-5). Emulation's
// expf is the host's, so only a table the host could not have computed tells
// whether the kernel reads it: every frequency scaled by 0.75, planted in the
// parameters, against rounded_chain encoding with that same table, over two
// block tiles, the second partial. One step at full strength (beta = 0.5:
// x_0 = 1.41 x_1 - 1.0 eps_theta; weights scaled up): a kernel computing its
// own frequencies misses by O(1), while the tensor cores' rounding is not
// amplified along a chain.
template <class Backend>
void x_encoding_reads_the_hosts_frequencies(Backend& b, Precision p, double tol) {
  const ModelConfig model{XEmbedding::kSinusoidal, kXScale};
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::vector<float> params = cpu::init_params(seed, model);
  for (float& v : params) v *= 3.f;
  XEmbeddingFrequencies planted = x_embedding_frequencies();
  for (float& f : planted.freq) f *= 0.75f;
  const int64_t n = block_points(p) + 5;
  const Schedule one = Schedule::linear(1, 0.5);
  Run run{p, {}, 2, model};
  run.x_freq = &planted;
  expect_close(b.sample(params, one, seed, 0, n, run), rounded_chain(params, one, seed, 0, n, p, model, planted.freq),
               tol);
}

// Point i's result does not depend on the launch it is in: a range starting mid-tile
// gives the same bytes as the same points inside a larger range, on another grid.
template <class Backend>
void any_range_gives_the_same_bytes(Backend& b, Precision p) {
  const uint64_t seed = fresh_seed();
  const Schedule s = Schedule::linear(2);
  const std::vector<float> params = cpu::init_params(seed ^ 7);
  const int64_t per = block_points(p);
  const std::vector<float> whole = b.sample(params, s, seed, 0, 3 * per, Run{p, {}, 2});
  const int64_t first = per + 5, n = per + 9;
  const std::vector<float> part = b.sample(params, s, seed, first, n, Run{p, {}, 1});
  EXPECT_EQ(0, std::memcmp(part.data(), whole.data() + 2 * first, 2 * n * sizeof(float)));
}

}  // namespace ddpm::kernels::fused_cases
