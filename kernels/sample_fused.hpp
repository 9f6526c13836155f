// The fused sampler: the whole T-step ancestral chain in one persistent
// kernel. Each block takes kFusedPoints points through every step with their
// activations in shared memory and their Philox streams in registers, and
// writes them once at the end. This is the FP32 SIMT version: the reference
// that faster precision modes (TF32 / BF16 tensor cores) are checked against.
// Plain C++: included by the nvcc-compiled launcher and by host tests.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "ddpm/config.hpp"
#include "ddpm/schedule.hpp"

namespace ddpm::kernels {

inline constexpr int kFusedPoints = 64;                // points per block
inline constexpr int kFusedThreads = 256;              // each computes 4 points x 8 outputs of a layer
inline constexpr int kFusedRowStride = kHidden + 4;    // padded activation rows: no bank conflicts
inline constexpr std::size_t kFusedSmemBytes =
    (2 * std::size_t(kFusedPoints) * kFusedRowStride + 4 * std::size_t(kFusedPoints)) * sizeof(float);
static_assert(kFusedThreads == (kFusedPoints / 4) * (kHidden / 8), "one 4 x 8 output tile per thread");

// The network as the fused kernel reads it (device pointers, or host pointers in emulation).
struct FusedSamplerNet {
  const float* w0c0;       // W0[:, 0] [128]
  const float* w0c1;       // W0[:, 1] [128]
  const float* e1;         // [(T + 1)][128]: W0[:, 2:66] emb(t) + b0, computed once per run
  const float* wt1;        // W1^T [128][128]
  const float* b1;         // [128]
  const float* wt2;        // W2^T [128][128]
  const float* b2;         // [128]
  const float* w3;         // W3 [2][128]
  const float* b3;         // [2]
  const ReverseCoef* coef; // [(T + 1)]
};

inline int fused_tiles(int64_t n) { return int((n + kFusedPoints - 1) / kFusedPoints); }

// Points [first, first + n) of the sample set drawn with `seed` into out (n x 2),
// on `grid` persistent blocks (each loops over tiles).
void launch_sample_fused(const FusedSamplerNet& net, int T, uint64_t seed, int64_t first, int64_t n, float* out,
                         int grid, cudaStream_t stream);

}  // namespace ddpm::kernels
