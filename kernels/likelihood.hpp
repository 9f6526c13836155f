// The likelihood's fused kernels (ddpm/likelihood.hpp), fp32 SIMT:
//
//   vlb_sums_kernel   the bound: per point, T evaluations of eps_theta at
//                     x_t = q_sample(x_0, eps_t, t) in order t = 1..T, eps_t
//                     the pair t - 1 of the point's own Philox stream
//                     (Stream::kLikelihood), their weighted squared errors
//                     summed into VlbSums. The fused sampler's network
//                     evaluator and block shape (kFusedPoints points, 256
//                     threads, activations in shared memory).
//   ode_end_states_kernel  the probability-flow ODE: the RK4 table's stages,
//                     each an evaluation of eps_theta and of its divergence
//                     by forward-mode tangents along x_0 and x_1 through the
//                     same MLP; out (y_T0, y_T1, l) per point.
//
// Both are persistent (each block loops over tiles) and write each point once
// at the end; a point's result depends on nothing but the point (and its item
// first + i for the bound), so any chunking gives the same bytes.
// Plain C++: included by the nvcc-compiled launchers and by host tests.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "ddpm/config.hpp"
#include "ddpm/likelihood.hpp"
#include "kernels/sample_fused.hpp"

namespace ddpm::kernels {

// ---- The bound ----
// The network as the fused sampler reads it (net.steps / num_steps unused:
// null, 0), with net.e1 the time terms of t = 0..T, and the bound's table.
struct VlbNet {
  FusedSamplerNet net;
  const VlbTerm* terms;  // t = 0..T (entry 0 unused): x_t's coefficients and w_t
  int T;
};
// The fused sampler's fp32 shape: kFusedPoints points per block, kFusedThreads
// threads, two activation buffers in dynamic shared memory.
inline constexpr FusedShape kVlbShape{kFusedPoints, kFusedThreads, kFusedSmemBytes};

// ---- The ODE ----
// The network with net.e1 the time terms of each stage ([num_stages][128]:
// row k = W0[:, x part:] emb(stages[k].tau) + b0), and the RK4 table.
struct OdeNet {
  FusedSamplerNet net;
  const OdeStage* stages;
  int num_stages;
};
// Each thread owns one point's three rows (the activation and its tangents
// along x_0 and x_1) for 8 of the 128 units: 16 threads per point, so a
// point's rows are all within one warp (two points per warp, no block-wide
// barrier), and the epilogue (silu, silu', the tangents times silu') stays in
// the thread. 16 points per block of 256 threads.
inline constexpr int kOdeThreads = 256;
inline constexpr int kOdeThreadsPerPoint = kHidden / 8;
inline constexpr int kOdePoints = kOdeThreads / kOdeThreadsPerPoint;
inline constexpr int kOdeRows = 3;                    // h, dh/dx_0, dh/dx_1
inline constexpr int kOdeRowStride = kFusedRowStride;  // 132: the two points of a warp on other banks
inline constexpr std::size_t kOdeSmemBytes = std::size_t(kOdePoints) * kOdeRows * kOdeRowStride * sizeof(float);
inline constexpr FusedShape kOdeShape{kOdePoints, kOdeThreads, kOdeSmemBytes};
static_assert(kOdeThreadsPerPoint == 16 && kOdePoints == 16, "two points per warp, 8 units per thread");

enum class LikelihoodKernel { kVlb, kOde };
constexpr FusedShape likelihood_shape(LikelihoodKernel k) { return k == LikelihoodKernel::kVlb ? kVlbShape : kOdeShape; }
inline int likelihood_blocks_for(LikelihoodKernel k, int64_t n) {
  const int per = likelihood_shape(k).points_per_block;
  return int((n + per - 1) / per);
}

// The most blocks of the kernel resident on the current device at once (SMs x
// blocks per SM): the persistent grid. Sets the kernel's dynamic shared memory
// limit; throws ddpm::Error when the device cannot run it.
int likelihood_max_grid(LikelihoodKernel k);

// The bound's sums of n points x0 (n x 2, device memory), point i drawing its
// eps from Philox item first + i of Stream::kLikelihood under `seed`, into out
// (n), on `grid` persistent blocks.
void launch_vlb_sums(const VlbNet& net, uint64_t seed, int64_t first, int64_t n, const float* x0, VlbSums* out,
                     int grid, cudaStream_t stream);

// The RK4 table's end states of n points x0 (n x 2) into out (n x 3: y_T0, y_T1, l).
void launch_ode_end_states(const OdeNet& net, int64_t n, const float* x0, float* out, int grid,
                           cudaStream_t stream);

}  // namespace ddpm::kernels
