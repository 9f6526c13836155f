// The reverse update (any sampler's, see SampleStep) as step-by-step
// kernels, for the unfused sampling path (network on cuBLAS, this update
// between the GEMMs) and as the reference the fused sampler is checked against.
// Plain C++: included by the nvcc-compiled launchers and by host tests.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ddpm/schedule.hpp"

namespace ddpm::kernels {

inline constexpr int kReverseStepBlock = 256;

inline int reverse_step_grid(int64_t n) { return int((n + kReverseStepBlock - 1) / kReverseStepBlock); }

// x_T ~ N(0, I) for points [first, first + n) of the sample set (pair 0 of
// each point's stream), and their carried 2-vectors (SampleStep) zeroed.
void launch_sample_init(float* x, float* carried, int64_t n, uint64_t seed, int64_t first, cudaStream_t stream);

// x <- the next point of the chain: step `index` (0-based, in the order
// sample_steps lists them) for n points from eps_theta(x, step.t) (eps: n x 2),
// and their carried 2-vectors (n x 2). Its noise, when step.noise, is pair
// index + 1 of each point's stream.
void launch_reverse_step(float* x, float* carried, const float* eps, int64_t n, const SampleStep& step, int index,
                         uint64_t seed, int64_t first, cudaStream_t stream);

}  // namespace ddpm::kernels
