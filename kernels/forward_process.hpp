// The forward process on the GPU (the training tool's figure): n points of a
// data set, normalized per batch, and q_sample of them at each snapshot
// timestep, drawing exactly the CPU's numbers (cpu::forward_process). One
// block does it all: the figure needs 2,000 points, and the batch statistics
// that every point waits for are then a block reduction, not a grid-wide one.
// Plain C++: included by the nvcc-compiled launcher and by host tests.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ddpm/datasets.hpp"
#include "ddpm/schedule.hpp"

namespace ddpm::kernels {

inline constexpr int kForwardThreads = 512;

// out: snapshots x n x 2, snapshot k at timestep t[k] with coefficients coef[k];
// data.points (kFile) in device memory.
void launch_forward_process(uint64_t seed, int n, const DataSource& data, const ForwardCoef* coef, int snapshots,
                            float* out, cudaStream_t stream);

}  // namespace ddpm::kernels
