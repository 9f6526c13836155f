// The persistent fused sampler kernel (FP32 SIMT). Per step t = T..1:
//   h1 = silu(x0 W0[:,0] + x1 W0[:,1] + e1[t])        (layer 0, time term precomputed)
//   h2 = silu(h1 W1^T + b1),  h3 = silu(h2 W2^T + b2)  (4 x 8 register tile per thread)
//   eps = h3 W3^T + b3
//   x  <- (x - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t) + sqrt(gamma_t) z
// Each C element is the k-ordered FMA chain from zero plus the bias, as in the
// CPU backend, so the two differ only in exp and in the output layer's sum order.
#pragma once

#include "ddpm/math.hpp"
#include "ddpm/rng.hpp"
#include "ddpm/smem.hpp"
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

__global__ void __launch_bounds__(kFusedThreads)
    sample_fused_kernel(FusedSamplerNet net, int T, uint64_t seed, int64_t first, int64_t n, float* __restrict__ out) {
  float* ha = dynamic_smem<float>();                    // [P][stride] activations, ping
  float* hb = ha + kFusedPoints * kFusedRowStride;      // pong
  float* xs = hb + kFusedPoints * kFusedRowStride;      // [P][2] the points x_t
  float* eps = xs + 2 * kFusedPoints;                   // [P][2] eps_theta(x_t, t)
  const int tid = threadIdx.x;
  const int tp = tid / (kHidden / 8), to = tid % (kHidden / 8);  // points tp*4.., outputs to*8..
  const int64_t tiles = (n + kFusedPoints - 1) / kFusedPoints;

  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int64_t p0 = tile * kFusedPoints;
    const int count = int(n - p0 < kFusedPoints ? n - p0 : kFusedPoints);
    // Thread p < count owns point p's random stream for the whole chain.
    NormalPairs rng{};
    if (tid < count) {
      philox_init(&rng.state, seed, Stream::kSample, uint64_t(first + p0 + tid));
      rng.next(xs[2 * tid], xs[2 * tid + 1]);  // x_T ~ N(0, I)
    } else if (tid < kFusedPoints) {
      xs[2 * tid] = xs[2 * tid + 1] = 0.f;  // padding rows of a partial tile: computed, never stored
    }
    __syncthreads();

    for (int t = T; t >= 1; --t) {
      const float* et = net.e1 + t * kHidden;
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
      __syncthreads();
      if (tid < count) {
        float z0 = 0.f, z1 = 0.f;
        if (t > 1) rng.next(z0, z1);
        const ReverseCoef c = net.coef[t];
        xs[2 * tid] = reverse_step(xs[2 * tid], eps[2 * tid], z0, c);
        xs[2 * tid + 1] = reverse_step(xs[2 * tid + 1], eps[2 * tid + 1], z1, c);
      }
      __syncthreads();
    }
    if (tid < count) {
      out[2 * (p0 + tid)] = xs[2 * tid];
      out[2 * (p0 + tid) + 1] = xs[2 * tid + 1];
    }
    __syncthreads();  // the next tile reuses xs
  }
}

}  // namespace ddpm::kernels
