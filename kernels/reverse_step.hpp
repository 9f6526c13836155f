// The reverse update of the ancestral sampler as step-by-step kernels, for
// the unfused sampling path (network on cuBLAS, this update between the
// GEMMs) and as the reference the fused sampler is checked against.
// Plain C++: included by the nvcc-compiled launchers and by host tests.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ddpm/schedule.hpp"

namespace ddpm::kernels {

inline constexpr int kReverseStepBlock = 256;

inline int reverse_step_grid(int64_t n) { return int((n + kReverseStepBlock - 1) / kReverseStepBlock); }

// x_T ~ N(0, I) for points [first, first + n) of the sample set (pair 0 of each point's stream).
void launch_sample_init(float* x, int64_t n, uint64_t seed, int64_t first, cudaStream_t stream);

// x <- x_{t-1}: one reverse step for n points from eps_theta(x_t, t) (eps: n x 2).
void launch_reverse_step(float* x, const float* eps, int64_t n, int t, int T, ReverseCoef coef, uint64_t seed,
                         int64_t first, cudaStream_t stream);

}  // namespace ddpm::kernels
