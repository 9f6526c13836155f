// The fused sampler's fp32 network evaluator: eps_theta of a block's
// kFusedPoints points with their activations in shared memory, each thread a
// 4 x 8 register tile of a layer's outputs, each output the k-ordered FMA
// chain from zero plus the bias (as in the CPU backend). Shared by the kernels
// that evaluate the network on such a block: the fused sampler
// (sample_fused.cuh) and the likelihood's bound (likelihood.cuh). Device
// helpers only: a __global__ kernel here would be defined once per .cu that
// includes it.
#pragma once

#include "ddpm/math.hpp"
#include "kernels/sample_fused.hpp"

namespace ddpm::kernels {

// One hidden layer for the block's points: out = silu(in W^T + b), in/out [P][kFusedRowStride].
__device__ __forceinline__ void fused_hidden_layer(const float* __restrict__ in, float* __restrict__ out,
                                                   const float* __restrict__ wt, const float* __restrict__ bias,
                                                   int tp, int to) {
  float acc[4][8];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.f;
  for (int k = 0; k < kHidden; ++k) {
    float a[4], w[8];
#pragma unroll
    for (int i = 0; i < 4; ++i) a[i] = in[(tp * 4 + i) * kFusedRowStride + k];
#pragma unroll
    for (int j = 0; j < 8; ++j) w[j] = __ldg(wt + k * kHidden + to * 8 + j);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], w[j], acc[i][j]);
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int o = to * 8 + j;
      out[(tp * 4 + i) * kFusedRowStride + o] = silu(acc[i][j] + __ldg(bias + o));
    }
}

// eps_theta(x, t) of the block's kFusedPoints points: xs [P][2] in, eps [P][2]
// out, et = layer 0's time term of t ([128], W0[:, x part:] emb(t) + b0), ha
// and hb the two activation buffers [P][kFusedRowStride] (clobbered). x_freq:
// this thread's frequency of the x encoding (tid % 32; unused for the seed's
// model). Called by every thread of the block, after xs is written and a
// __syncthreads; eps is written when it returns, but not yet visible to other
// threads (the caller's next __syncthreads).
__device__ __forceinline__ void fused_eps_theta(const FusedSamplerNet& net, const float* __restrict__ et,
                                                const float* xs, float* eps, float* ha, float* hb, float x_freq,
                                                int tid, int tp, int to) {
  if (net.wt0x != nullptr) {
    // The x encoding into hb, one (point, coordinate, frequency) per
    // iteration, sin and cos from one sincosf; then layer 0 as the hidden
    // layers are, its bias the time term.
    for (int e = tid; e < kFusedPoints * kEmbDim; e += kFusedThreads) {
      const int p = e / kEmbDim, d = e / kEmbHalf % kDataDim, j = e % kEmbHalf;  // j = tid % 32
      float sn, cs;
      sincosf(x_embedding_arg(xs[2 * p + d], net.x_scale, x_freq), &sn, &cs);
      hb[p * kFusedRowStride + d * kEmbDim + j] = sn;
      hb[p * kFusedRowStride + d * kEmbDim + kEmbHalf + j] = cs;
    }
    __syncthreads();
    fused_hidden_layer(hb, ha, net.wt0x, et, tp, to);
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int p = tp * 4 + i;
      const float x0 = xs[2 * p], x1 = xs[2 * p + 1];
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int o = to * 8 + j;
        const float z = fmaf(x0, __ldg(net.w0c0 + o), fmaf(x1, __ldg(net.w0c1 + o), __ldg(et + o)));
        ha[p * kFusedRowStride + o] = silu(z);
      }
    }
  }
  __syncthreads();
  fused_hidden_layer(ha, hb, net.wt1, net.b1, tp, to);
  __syncthreads();
  fused_hidden_layer(hb, ha, net.wt2, net.b2, tp, to);
  __syncthreads();
  if (tid < 2 * kFusedPoints) {  // output layer: one dot product per (point, coordinate)
    const int p = tid / 2, c = tid % 2;
    float s = 0.f;
    for (int k = 0; k < kHidden; ++k) s = fmaf(ha[p * kFusedRowStride + k], __ldg(net.w3 + c * kHidden + k), s);
    eps[2 * p + c] = s + __ldg(net.b3 + c);
  }
}

}  // namespace ddpm::kernels
