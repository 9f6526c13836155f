// The model's elementwise math, written once for the CPU backend and the
// CUDA kernels (both call these functions).
#pragma once

#include <cmath>

#include "ddpm/config.hpp"
#include "ddpm/schedule.hpp"

namespace ddpm {

// ---- Sinusoidal timestep embedding (the seed's timestep_embedding) ----
//   freq_j = exp(-j * ln(10000) / (half - 1)),  j = 0..half-1
//   emb(t) = [sin(t * freq_0..half-1), cos(t * freq_0..half-1)]
// Computed in float32 as the seed does. Host only (plain inline, not DDPM_HD):
// the device's expf may be 2 ulp from the host's (CUDA's documented bound), so
// the kernels read tables the host built with these functions (the time
// embedding: cpu::embedding_table, cpu::layer0_time_terms; the x encoding's
// frequencies: x_embedding_frequencies below), and the GPU sees the CPU's bits.
inline float embedding_frequency(int j) {
  return expf(-float(j) * (9.210340371976184f / float(kEmbHalf - 1)));  // ln(10000)
}

// t is a whole step but for the probability-flow ODE, whose time is real
// (likelihood.hpp); whole steps up to 2^24 are exact floats.
inline float timestep_embedding(float t, int k) {
  const int j = k < kEmbHalf ? k : k - kEmbHalf;
  const float arg = t * embedding_frequency(j);
  return k < kEmbHalf ? sinf(arg) : cosf(arg);
}

// ---- Sinusoidal encoding of x (--x-embedding sinusoidal) ----
// Each coordinate x_d through the timestep embedding's frequencies at scale s,
// Fourier features as tiny-diffusion's input embedding:
//   emb_x(x_d)_k = sin(a_j) for k < 32, cos(a_j) for k >= 32,  a_j = (s x_d) freq_j
// and layer 0 reads [emb_x(x_0), emb_x(x_1), emb(t)] (params.hpp). The argument
// is rounded as written: s x_d once, then times freq_j (embedding_frequency(j)).
// freq_j reaches the kernels from the host (XEmbeddingFrequencies): at
// s |x| ~ 100 the device expf's 2 ulp would move a_j by up to 2.4e-5, and the
// GPU's bounds against the CPU assume both encode the same arguments.
DDPM_HD float x_embedding_arg(float x, float scale, float freq) { return (scale * x) * freq; }

// The x encoding's kEmbHalf frequencies, as the host computes them once for
// the CPU backend and the GPU drivers alike (the very same floats); a struct
// so that it travels by value in a kernel's parameters.
struct XEmbeddingFrequencies {
  float freq[kEmbHalf];
};
inline XEmbeddingFrequencies x_embedding_frequencies() {
  XEmbeddingFrequencies f{};
  for (int j = 0; j < kEmbHalf; ++j) f.freq[j] = embedding_frequency(j);
  return f;
}

inline float x_embedding(float x, float scale, int k) {
  const int j = k < kEmbHalf ? k : k - kEmbHalf;
  const float arg = x_embedding_arg(x, scale, embedding_frequency(j));
  return k < kEmbHalf ? sinf(arg) : cosf(arg);
}

// ---- SiLU: silu(z) = z * sigmoid(z) ----
DDPM_HD float sigmoid(float z) { return 1.f / (1.f + expf(-z)); }
DDPM_HD float silu(float z) { return z * sigmoid(z); }
// The same through one special-function operation: z sigmoid(z) = z (1 + tanh(z / 2)) / 2.
// On the GPU tanh is tanh.approx.f32 (max relative error 2^-10.987, PTX ISA),
// which halves the SFU work of expf plus a division: the tensor-core sampler's
// SiLU. Elsewhere it is tanhf.
DDPM_HD float silu_tanh(float z) {
  const float h = 0.5f * z;
#if defined(__CUDA_ARCH__)
  float th;
  asm("tanh.approx.f32 %0, %1;" : "=f"(th) : "f"(h));
  return fmaf(h, th, h);
#else
  return fmaf(h, tanhf(h), h);
#endif
}
// d/dz silu(z) = s + z s (1 - s) = s (1 + z (1 - s)),  s = sigmoid(z)
DDPM_HD float silu_grad(float z) {
  const float s = sigmoid(z);
  return s * (1.f + z * (1.f - s));
}

// ---- Forward process (q_sample): x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps ----
DDPM_HD float q_sample(float x0, float eps, ForwardCoef c) {
  return c.sqrt_alpha_bar * x0 + c.sqrt_one_minus_alpha_bar * eps;
}

// ---- Reverse update (ancestral sampling with the posterior variance) ----
//   x_{t-1} = (x_t - beta_t / sqrt(1 - alpha_bar_t) * eps_theta) / sqrt(alpha_t) + sqrt(gamma_t) z
DDPM_HD float reverse_step(float x, float eps_pred, float z, ReverseCoef c) {
  return (x - c.eps_coef * eps_pred) * c.inv_sqrt_alpha + c.sigma * z;
}

// ---- The linear update of DDIM and the ODE solvers, see LinearCoef ----
//   x' = x_coef x + eps_coef eps + sigma z + a_coef a
// DDIM (Song et al. 2021): x_prev = sqrt(a_p) (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)
// + sqrt(1 - a_p - sigma^2) eps + sigma z, with a_coef = 0 (the term then adds an exact 0).
DDPM_HD float linear_step(float x, float eps_pred, float z, float a, const LinearCoef& c) {
  return c.x_coef * x + c.eps_coef * eps_pred + c.sigma * z + c.a_coef * a;
}

// ---- One step of any sampler (see SampleStep) ----
// Returns x'; `a` is the coordinate's carried value, updated in place
// (a' = carry_x x + carry_eps eps; it stays 0 for the ancestral sampler and DDIM).
DDPM_HD float sample_update(float x, float eps_pred, float z, float& a, const SampleStep& s) {
  if (!s.linear) return reverse_step(x, eps_pred, z, s.reverse);
  const float next = linear_step(x, eps_pred, z, a, s.lin);
  a = s.lin.carry_x * x + s.lin.carry_eps * eps_pred;
  return next;
}

// ---- Adam (PyTorch's torch.optim.Adam, default hyper-parameters) ----
//   m <- beta1 m + (1 - beta1) g,  v <- beta2 v + (1 - beta2) g^2
//   p <- p - lr / (1 - beta1^k) * m / (sqrt(v) / sqrt(1 - beta2^k) + eps)
// at step k = 1, 2, ...; AdamStep carries the step's scalars, computed once.
struct AdamStep {
  float beta1, beta2, eps;
  float one_minus_beta1, one_minus_beta2;  // from double: 1.f - 0.999f is 1e-5 off
  float step_size;      // lr / (1 - beta1^k)
  float inv_sqrt_bc2;   // 1 / sqrt(1 - beta2^k)

  // Hyper-parameters in double, as PyTorch holds them, rounded to float once.
  static AdamStep at(long long k, double lr, double beta1 = kAdamBeta1, double beta2 = kAdamBeta2,
                     double eps = kAdamEps) {
    const double bc1 = 1.0 - std::pow(beta1, double(k));
    const double bc2 = 1.0 - std::pow(beta2, double(k));
    return {float(beta1), float(beta2), float(eps), float(1.0 - beta1), float(1.0 - beta2),
            float(lr / bc1), float(1.0 / std::sqrt(bc2))};
  }
};

DDPM_HD void adam_update(float& p, float& m, float& v, float g, const AdamStep& s) {
  m = s.beta1 * m + s.one_minus_beta1 * g;
  v = s.beta2 * v + s.one_minus_beta2 * g * g;
  p -= s.step_size * m / (sqrtf(v) * s.inv_sqrt_bc2 + s.eps);
}

// ---- Exponential moving average of the weights, after each optimizer step ----
//   e <- decay e + (1 - decay) p
// one_minus_decay is 1 - decay rounded from double (as Adam's 1 - beta), not 1.f - decay.
DDPM_HD void ema_update(float& e, float p, float decay, float one_minus_decay) {
  e = decay * e + one_minus_decay * p;
}

// The EMA's warm-up: the decay used after optimizer step k (counted from 1),
// as diffusers' EMAModel without use_ema_warmup, with s = k - 1 updates before:
//   decay_k = 0                                 (k = 1: the first update copies the weights)
//   decay_k = min(decay, (1 + s) / (10 + s))    (k >= 2)
// This form rather than the power form 1 - (1 + s)^-p: its 1 - decay_k =
// 9 / (10 + s) averages over about the last ninth of the steps taken, whatever
// the run's length, until the cap; so a short run averages the same share of
// its steps as a long one, and the initial (random) weights get no share at
// all, where a constant decay d leaves them d^k of the average (0.999 after
// 2500 steps: 8%). The power form's window, s^p, is a share that shrinks as
// the run grows, and its p would have to be chosen per length. Host only: the
// trainers round it (and 1 - it, from double, as ema_update's arguments) once
// per step.
inline double ema_warmup_decay(double decay, long long k) {
  if (k <= 1) return 0.0;
  const double s = double(k - 1);
  const double warm = (1.0 + s) / (10.0 + s);
  return warm < decay ? warm : decay;
}

}  // namespace ddpm
