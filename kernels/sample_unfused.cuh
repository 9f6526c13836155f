// Kernels of the unfused sampling path (see sample_unfused.hpp).
#pragma once

#include "ddpm/math.hpp"
#include "ddpm/params.hpp"
#include "kernels/sample_unfused.hpp"

namespace ddpm::kernels {

// One thread per element of h1: coalesced writes, x's pair read by 128 neighbours (cached).
__global__ void __launch_bounds__(kUnfusedBlock)
    layer0_silu_kernel(const float* __restrict__ x, int64_t n, const float* __restrict__ w0c0,
                       const float* __restrict__ w0c1, const float* __restrict__ e1t, float* __restrict__ h1) {
  const int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n * kHidden) return;
  const int64_t p = e / kHidden;
  const int o = int(e % kHidden);
  h1[e] = silu(fmaf(x[2 * p], __ldg(w0c0 + o), fmaf(x[2 * p + 1], __ldg(w0c1 + o), __ldg(e1t + o))));
}

// One thread per (point, coordinate, frequency): sin and cos from one sincosf.
// freq: the host's kEmbHalf frequencies in global memory (x_embedding_frequencies,
// uploaded once per sampler), not the parameters: a warp's 32 lanes read 32
// different ones on every launch, one coalesced load from global memory where
// an indexed read of the parameter bank would be serialized 32 ways.
__global__ void __launch_bounds__(kUnfusedBlock)
    x_embedding_kernel(const float* __restrict__ x, int64_t n, float scale, const float* __restrict__ freq,
                       float* __restrict__ a) {
  const int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n * kDataDim * kEmbHalf) return;
  const int64_t p = e / (kDataDim * kEmbHalf);
  const int d = int(e / kEmbHalf % kDataDim), j = int(e % kEmbHalf);
  float sn, cs;
  sincosf(x_embedding_arg(x[2 * p + d], scale, __ldg(freq + j)), &sn, &cs);
  float* row = a + p * kXEmbInputs + d * kEmbDim;
  row[j] = sn;
  row[kEmbHalf + j] = cs;
}

__global__ void __launch_bounds__(kUnfusedBlock)
    bias_silu_kernel(float* __restrict__ h, int64_t n, const float* __restrict__ bias) {
  const int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n * kHidden) return;
  h[e] = silu(h[e] + __ldg(bias + e % kHidden));
}

// One warp per point: each lane takes 4 consecutive units (one 16-byte load of
// the row), then the warp sums by xor-shuffles.
__global__ void __launch_bounds__(kUnfusedBlock)
    output_layer_kernel(const float* __restrict__ h3, int64_t n, const float* __restrict__ w3,
                        const float* __restrict__ b3, float* __restrict__ eps) {
  static_assert(kHidden == 4 * 32, "one float4 per lane");
  const int64_t p = int64_t(blockIdx.x) * kOutputWarps + threadIdx.x / 32;
  if (p >= n) return;  // whole warps leave together: p is the same for all 32 lanes
  const int lane = threadIdx.x % 32;
  const float4 h = reinterpret_cast<const float4*>(h3 + p * kHidden)[lane];
  const float4 wa = __ldg(reinterpret_cast<const float4*>(w3) + lane);
  const float4 wb = __ldg(reinterpret_cast<const float4*>(w3 + kHidden) + lane);
  float s0 = fmaf(h.x, wa.x, fmaf(h.y, wa.y, fmaf(h.z, wa.z, h.w * wa.w)));
  float s1 = fmaf(h.x, wb.x, fmaf(h.y, wb.y, fmaf(h.z, wb.z, h.w * wb.w)));
#pragma unroll
  for (int m = 16; m >= 1; m /= 2) {
    s0 += __shfl_xor_sync(0xffffffffu, s0, m);
    s1 += __shfl_xor_sync(0xffffffffu, s1, m);
  }
  if (lane == 0) {
    eps[2 * p] = s0 + __ldg(b3);
    eps[2 * p + 1] = s1 + __ldg(b3 + 1);
  }
}

}  // namespace ddpm::kernels
