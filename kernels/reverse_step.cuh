// Kernels of the step-by-step reverse process: one thread per point, the
// point's Philox stream indexed by its global index (so any chunking of the
// sample set draws the same noise as the CPU sampler and the fused kernel).
#pragma once

#include "ddpm/math.hpp"
#include "ddpm/rng.hpp"
#include "kernels/reverse_step.hpp"

namespace ddpm::kernels {

__global__ void __launch_bounds__(kReverseStepBlock)
    sample_init_kernel(float* __restrict__ x, float* __restrict__ carried, int64_t n, uint64_t seed, int64_t first) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float a, b;
  normal_pair_at(seed, Stream::kSample, uint64_t(first + i), 0, a, b);
  x[2 * i] = a;
  x[2 * i + 1] = b;
  carried[2 * i] = carried[2 * i + 1] = 0.f;
}

// x_{t-1} = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_t) + sqrt(gamma_t) z
// (or the linear update of DDIM and the ODE solvers, which also updates the
// point's carried 2-vector): step `index` of the chain draws its z as pair index + 1
// (sample_noise_pair(t, T) = T - t + 1 for the ancestral chain; pair k for DDIM's k-th step).
__global__ void __launch_bounds__(kReverseStepBlock)
    reverse_step_kernel(float* __restrict__ x, float* __restrict__ carried, const float* __restrict__ eps, int64_t n,
                        SampleStep step, int index, uint64_t seed, int64_t first) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float z0 = 0.f, z1 = 0.f;
  if (step.noise) normal_pair_at(seed, Stream::kSample, uint64_t(first + i), uint64_t(index) + 1, z0, z1);
  x[2 * i] = sample_update(x[2 * i], eps[2 * i], z0, carried[2 * i], step);
  x[2 * i + 1] = sample_update(x[2 * i + 1], eps[2 * i + 1], z1, carried[2 * i + 1], step);
}

}  // namespace ddpm::kernels
