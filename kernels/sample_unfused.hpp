// The network of the unfused sampling path, step by step around cuBLAS: the
// cross-check of the fused samplers and their benchmark baseline. Per step t:
//
//   layer0_silu   h1 = silu(x0 W0[:, 0] + x1 W0[:, 1] + e1[t])     n x 128
//     or, with the x encoding: x_embedding  a = emb_x(x)  n x 128, then
//   cuBLAS SGEMM  z1 = a W0[:, :128]^T;  bias_silu  h1 = silu(z1 + e1[t])
//   cuBLAS SGEMM  z2 = h1 W1^T;   bias_silu  h2 = silu(z2 + b1)
//   cuBLAS SGEMM  z3 = h2 W2^T;   bias_silu  h3 = silu(z3 + b2)
//   output_layer  eps = h3 W3^T + b3                                n x 2
//   reverse_step  (kernels/reverse_step.*)
//
// Every activation makes a round trip through global memory: what the fused
// kernels avoid. Plain C++: included by the nvcc-compiled launchers and by host tests.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ddpm/config.hpp"

namespace ddpm::kernels {

inline constexpr int kUnfusedBlock = 256;
inline constexpr int kOutputWarps = kUnfusedBlock / 32;  // output_layer: one warp per point

inline int elementwise_grid(int64_t elements) { return int((elements + kUnfusedBlock - 1) / kUnfusedBlock); }
inline int output_layer_grid(int64_t n) { return int((n + kOutputWarps - 1) / kOutputWarps); }

// h1 (n x 128) from x (n x 2); e1t is layer 0's time term at the step's t [128].
void launch_layer0_silu(const float* x, int64_t n, const float* w0c0, const float* w0c1, const float* e1t,
                        float* h1, cudaStream_t stream);
// a (n x 128) = [emb_x(x_0), emb_x(x_1)] of x (n x 2) at `scale` (math.hpp's x_embedding),
// freq_j = freq[j] (device memory, kEmbHalf floats: the host's x_embedding_frequencies).
void launch_x_embedding(const float* x, int64_t n, float scale, const float* freq, float* a, cudaStream_t stream);
// h <- silu(h + bias) for h n x 128, row-major.
void launch_bias_silu(float* h, int64_t n, const float* bias, cudaStream_t stream);
// eps (n x 2) = h3 W3^T + b3, W3 [2][128].
void launch_output_layer(const float* h3, int64_t n, const float* w3, const float* b3, float* eps,
                         cudaStream_t stream);

}  // namespace ddpm::kernels
