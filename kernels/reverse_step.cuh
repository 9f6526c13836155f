// Kernels of the step-by-step reverse process: one thread per point, the
// point's Philox stream indexed by its global index (so any chunking of the
// sample set draws the same noise as the CPU sampler and the fused kernel).
#pragma once

#include "ddpm/math.hpp"
#include "ddpm/rng.hpp"
#include "kernels/reverse_step.hpp"

namespace ddpm::kernels {

__global__ void __launch_bounds__(kReverseStepBlock)
    sample_init_kernel(float* __restrict__ x, int64_t n, uint64_t seed, int64_t first) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float a, b;
  normal_pair_at(seed, Stream::kSample, uint64_t(first + i), 0, a, b);
  x[2 * i] = a;
  x[2 * i + 1] = b;
}

// x_{t-1} = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_t) + sqrt(gamma_t) z
__global__ void __launch_bounds__(kReverseStepBlock)
    reverse_step_kernel(float* __restrict__ x, const float* __restrict__ eps, int64_t n, int t, int T,
                        ReverseCoef coef, uint64_t seed, int64_t first) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float z0 = 0.f, z1 = 0.f;
  if (t > 1) normal_pair_at(seed, Stream::kSample, uint64_t(first + i), sample_noise_pair(t, T), z0, z1);
  x[2 * i] = reverse_step(x[2 * i], eps[2 * i], z0, coef);
  x[2 * i + 1] = reverse_step(x[2 * i + 1], eps[2 * i + 1], z1, coef);
}

}  // namespace ddpm::kernels
