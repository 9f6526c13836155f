// The persistent fused sampler kernels. Per step of the chain (timestep t):
//   h1 = silu(x0 W0[:,0] + x1 W0[:,1] + e1[t])        (layer 0, time term precomputed;
//        with the x encoding: silu(emb_x(x) W0[:, :128]^T + e1[t]))
//   h2 = silu(h1 W1^T + b1),  h3 = silu(h2 W2^T + b2)
//   eps = h3 W3^T + b3
//   x  <- (x - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t) + sqrt(gamma_t) z
//        (the seed's ancestral step; or the linear update of DDIM, DPM-Solver++(2M)
//        or Heun, with the point's carried 2-vector in the owner's registers: sample_update)
// fp32 (sample_fused_kernel): a 4 x 8 register tile per thread, each C element
// the k-ordered FMA chain from zero plus the bias, as in the CPU backend, so
// the two differ only in exp and in the output layer's sum order (the network:
// fused_eps_theta, kernels/fused_net.cuh).
// tf32 / bf16 (sample_fused_mma_kernel): see below.
#pragma once

#include "ddpm/math.hpp"
#include "ddpm/mma.hpp"
#include "ddpm/rng.hpp"
#include "ddpm/smem.hpp"
#include "kernels/fused_net.cuh"
#include "kernels/sample_fused.hpp"

namespace ddpm::kernels {

__global__ void __launch_bounds__(kFusedThreads, kFusedMinBlocksPerSm)
    sample_fused_kernel(FusedSamplerNet net, uint64_t seed, int64_t first, int64_t n, float* __restrict__ out) {
  float* ha = dynamic_smem<float>();                    // [P][stride] activations, ping
  float* hb = ha + kFusedPoints * kFusedRowStride;      // pong
  float* xs = hb + kFusedPoints * kFusedRowStride;      // [P][2] the points x_t
  float* eps = xs + 2 * kFusedPoints;                   // [P][2] eps_theta(x_t, t)
  const int tid = threadIdx.x;
  const int tp = tid / (kHidden / 8), to = tid % (kHidden / 8);  // points tp*4.., outputs to*8..
  // The x encoding's frequency of this thread (the host's, from the parameters):
  // its loop below steps by a multiple of 32.
  static_assert(kFusedThreads % kEmbHalf == 0);
  const float x_freq = net.wt0x != nullptr ? net.x_freq.freq[tid % kEmbHalf] : 0.f;
  const int64_t tiles = (n + kFusedPoints - 1) / kFusedPoints;

  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int64_t p0 = tile * kFusedPoints;
    const int count = int(n - p0 < kFusedPoints ? n - p0 : kFusedPoints);
    // Thread p < count owns point p's random stream for the whole chain.
    NormalPairs rng{};
    float carried0 = 0.f, carried1 = 0.f;  // the solver's carried 2-vector of point tid (SampleStep)
    if (tid < count) {
      philox_init(&rng.state, seed, Stream::kSample, uint64_t(first + p0 + tid));
      rng.next(xs[2 * tid], xs[2 * tid + 1]);  // x_T ~ N(0, I)
    } else if (tid < kFusedPoints) {
      xs[2 * tid] = xs[2 * tid + 1] = 0.f;  // padding rows of a partial tile: computed, never stored
    }
    __syncthreads();

    for (int s = 0; s < net.num_steps; ++s) {
      const SampleStep step = net.steps[s];
      fused_eps_theta(net, net.e1 + step.t * kHidden, xs, eps, ha, hb, x_freq, tid, tp, to);
      __syncthreads();
      if (tid < count) {
        float z0 = 0.f, z1 = 0.f;
        if (step.noise) rng.next(z0, z1);
        xs[2 * tid] = sample_update(xs[2 * tid], eps[2 * tid], z0, carried0, step);
        xs[2 * tid + 1] = sample_update(xs[2 * tid + 1], eps[2 * tid + 1], z1, carried1, step);
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


// ---- tf32 / bf16: the hidden layers on tensor cores, everything in registers ----
//
// Each warp takes 16 points (the rows of an m16n8kK tile) through the whole
// chain. A lane holds its points' activations in the C-fragment layout of
// m16n8: for n-tile j (units 8j..8j+7), rows g = lane / 4 and g + 8, units
// 8j + 2 tig and 8j + 2 tig + 1 (tig = lane % 4), 64 floats in h[16][4].
// Layer 0 computes its outputs straight into that layout, and each hidden
// layer's C fragments become the next layer's A fragments without leaving
// the registers:
//   bf16 (k = 16): A's k-block ks is C's n-tiles 2 ks and 2 ks + 1, element
//     for element (a0 = (g, 2tig | 2tig+1) of block ks = n-tile 2ks's c0|c1, ...).
//   tf32 (k = 8): A reads columns tig and tig + 4 of block ks, C holds units
//     2 tig and 2 tig + 1 of n-tile ks. A product does not care in which order
//     it visits k, so logical row kl of k-block ks is unit 8 ks + unit_of_row(kl)
//     (kl < 4: 2 kl, else 2 (kl - 4) + 1) for A and B alike: B's rows are
//     staged in that order, and A is n-tile ks's {c0, c2, c1, c3}.
// The output layer (N = 2) is FP32: each lane sums its 32 units for rows g
// and g + 8, and the quad (the 4 lanes of a row) adds its partial sums by
// shuffles. Lane tig = 0 owns point g of the tile, lane tig = 1 point g + 8:
// their x and Philox streams stay in registers for the whole chain.

template <Precision P>
struct MmaOps;

template <>
struct MmaOps<Precision::kTf32> {
  static constexpr int kK = 8;
  __device__ __forceinline__ static int unit_of_row(int kl) { return kl < 4 ? 2 * kl : 2 * (kl - 4) + 1; }
  __device__ __forceinline__ static void a_fragment(const float (&h)[kMmaNTiles][4], int ks, uint32_t (&a)[4]) {
    a[0] = to_tf32(h[ks][0]);
    a[1] = to_tf32(h[ks][2]);
    a[2] = to_tf32(h[ks][1]);
    a[3] = to_tf32(h[ks][3]);
  }
  // Register r of `lane`'s B fragment at (ks, nt): B[k][n] = W[n][k] = wt[k][n].
  __device__ __forceinline__ static uint32_t b_word(const float* __restrict__ wt, int ks, int nt, int lane, int r) {
    const MmaCoord c = mma_layout::b_m16n8k8_tf32(lane, r);
    return to_tf32(wt[(ks * kK + unit_of_row(c.row)) * kHidden + nt * 8 + c.col]);
  }
  __device__ __forceinline__ static void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    mma_m16n8k8_tf32(d, a, b, d);
  }
};

template <>
struct MmaOps<Precision::kBf16> {
  static constexpr int kK = 16;
  __device__ __forceinline__ static void a_fragment(const float (&h)[kMmaNTiles][4], int ks, uint32_t (&a)[4]) {
    a[0] = pack_bf16x2(h[2 * ks][0], h[2 * ks][1]);
    a[1] = pack_bf16x2(h[2 * ks][2], h[2 * ks][3]);
    a[2] = pack_bf16x2(h[2 * ks + 1][0], h[2 * ks + 1][1]);
    a[3] = pack_bf16x2(h[2 * ks + 1][2], h[2 * ks + 1][3]);
  }
  __device__ __forceinline__ static uint32_t b_word(const float* __restrict__ wt, int ks, int nt, int lane, int r) {
    const MmaCoord lo = mma_layout::b_m16n8k16_bf16(lane, 2 * r), hi = mma_layout::b_m16n8k16_bf16(lane, 2 * r + 1);
    return pack_bf16x2(wt[(ks * kK + lo.row) * kHidden + nt * 8 + lo.col],
                       wt[(ks * kK + hi.row) * kHidden + nt * 8 + hi.col]);
  }
  __device__ __forceinline__ static void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    mma_m16n8k16_bf16(d, a, b, d);
  }
};

// h <- silu(h W^T + b) for the warp's 16 rows; `frags` are W's B fragments,
// [k-step][n-tile][lane] pairs of registers.
template <Precision P>
__device__ __forceinline__ void mma_hidden_layer(const uint32_t* __restrict__ frags, const float* __restrict__ bias,
                                                 float (&h)[kMmaNTiles][4], int lane) {
  using Ops = MmaOps<P>;
  const int tig = lane & 3;
  float acc[kMmaNTiles][4];
#pragma unroll
  for (int nt = 0; nt < kMmaNTiles; ++nt) {  // C starts as the bias of its columns
    acc[nt][0] = acc[nt][2] = bias[nt * 8 + 2 * tig];
    acc[nt][1] = acc[nt][3] = bias[nt * 8 + 2 * tig + 1];
  }
  const uint2* b = reinterpret_cast<const uint2*>(frags) + lane;
#pragma unroll
  for (int ks = 0; ks < kHidden / Ops::kK; ++ks) {
    uint32_t a[4];
    Ops::a_fragment(h, ks, a);
#pragma unroll
    for (int nt = 0; nt < kMmaNTiles; ++nt) {
      const uint2 w = b[(ks * kMmaNTiles + nt) * 32];
      const uint32_t bw[2] = {w.x, w.y};
      Ops::mma(acc[nt], a, bw);
    }
  }
#pragma unroll
  for (int nt = 0; nt < kMmaNTiles; ++nt)
#pragma unroll
    for (int i = 0; i < 4; ++i) h[nt][i] = silu_tanh(acc[nt][i]);
}

template <Precision P>
__global__ void __launch_bounds__(kMmaThreads, 1)
    sample_fused_mma_kernel(FusedSamplerNet net, uint64_t seed, int64_t first, int64_t n, float* __restrict__ out) {
  using Ops = MmaOps<P>;
  constexpr int kWords = int(mma_fragment_words(P));
  constexpr unsigned kAll = 0xffffffffu;
  const bool x_encoding = net.wt0x != nullptr;
  uint32_t* frag1 = dynamic_smem<uint32_t>();
  uint32_t* frag2 = frag1 + kWords;
  float* floats = reinterpret_cast<float*>(frag2 + kWords);
  // The seed's layer 0 on x (unused with the x encoding, which has no room for it on sm_86/89).
  float* w0c0 = x_encoding ? nullptr : floats;
  float* w0c1 = x_encoding ? nullptr : floats + kHidden;
  float* b1 = floats + (x_encoding ? 0 : 2 * kHidden);
  float* b2 = b1 + kHidden;
  float* w3 = b2 + kHidden;  // [2][128]
  float* b3 = w3 + 2 * kHidden;
  // The x encoding's layer 0 (W0[:, :128]), after the floats; null for the seed's model.
  uint32_t* frag0 = x_encoding ? reinterpret_cast<uint32_t*>(floats + mma_smem_floats(true)) : nullptr;

  // Stage the weights once: word i is register (i & 1) of lane (i >> 1) & 31 in fragment i >> 6.
  for (int i = threadIdx.x; i < kWords; i += blockDim.x) {
    const int r = i & 1, lane = (i >> 1) & 31, frag = i >> 6;
    frag1[i] = Ops::b_word(net.wt1, frag / kMmaNTiles, frag % kMmaNTiles, lane, r);
    frag2[i] = Ops::b_word(net.wt2, frag / kMmaNTiles, frag % kMmaNTiles, lane, r);
    if (frag0 != nullptr) frag0[i] = Ops::b_word(net.wt0x, frag / kMmaNTiles, frag % kMmaNTiles, lane, r);
  }
  for (int i = threadIdx.x; i < kHidden; i += blockDim.x) {
    if (!x_encoding) {
      w0c0[i] = net.w0c0[i];
      w0c1[i] = net.w0c1[i];
    }
    b1[i] = net.b1[i];
    b2[i] = net.b2[i];
    w3[i] = net.w3[i];
    w3[kHidden + i] = net.w3[kHidden + i];
  }
  if (threadIdx.x < 2) b3[threadIdx.x] = net.b3[threadIdx.x];
  __syncthreads();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2, tig = lane & 3, quad = lane & ~3;
  // The x encoding's eight frequencies of this lane, (8 jj + 2 tig + c) for jj < 4, c < 2
  // (see below): the host's, from the parameters.
  float x_freq[4][2] = {};
  if (frag0 != nullptr)
#pragma unroll
    for (int jj = 0; jj < 4; ++jj)
#pragma unroll
      for (int c = 0; c < 2; ++c) x_freq[jj][c] = net.x_freq.freq[jj * 8 + 2 * tig + c];
  const int row = g + 8 * tig;  // the point of the tile this lane owns, when tig < 2
  const int64_t tiles = (n + kMmaRows - 1) / kMmaRows;
  for (int64_t tile = int64_t(blockIdx.x) * kMmaWarps + warp; tile < tiles;
       tile += int64_t(gridDim.x) * kMmaWarps) {
    const int64_t p = tile * kMmaRows + row;
    const bool owner = tig < 2 && p < n;  // rows past n are computed (zeros), never drawn or stored
    NormalPairs rng{};
    float x0 = 0.f, x1 = 0.f, carried0 = 0.f, carried1 = 0.f;
    if (owner) {
      philox_init(&rng.state, seed, Stream::kSample, uint64_t(first + p));
      rng.next(x0, x1);  // x_T ~ N(0, I)
    }
    for (int s = 0; s < net.num_steps; ++s) {
      const SampleStep step = net.steps[s];
      // Layer 0, in the C layout: rows g (owned by lane quad) and g + 8 (lane quad + 1).
      const float xg0 = __shfl_sync(kAll, x0, quad), xg1 = __shfl_sync(kAll, x1, quad);
      const float xh0 = __shfl_sync(kAll, x0, quad + 1), xh1 = __shfl_sync(kAll, x1, quad + 1);
      const float* et = net.e1 + step.t * kHidden;
      float h[kMmaNTiles][4];
      if (frag0 != nullptr) {
        // The x encoding in the C layout, as layer 0's A: unit u = 64 d + k is
        // value k of coordinate d's encoding; the sin of frequency j (k = j < 32)
        // sits in n-tile u / 8 and its cos (k = j + 32) four n-tiles later, in
        // the same lane, so one sincosf gives both.
#pragma unroll
        for (int j = 0; j < kMmaNTiles; ++j) {
          if ((j / 4) % 2 == 1) continue;  // the cos n-tiles, filled with their sin n-tile
          const int d = j / 8;
#pragma unroll
          for (int c = 0; c < 2; ++c) {
            const float f = x_freq[j % 4][c];  // frequency (j % 4) 8 + 2 tig + c
            sincosf(x_embedding_arg(d == 0 ? xg0 : xg1, net.x_scale, f), &h[j][c], &h[j + 4][c]);
            sincosf(x_embedding_arg(d == 0 ? xh0 : xh1, net.x_scale, f), &h[j][2 + c], &h[j + 4][2 + c]);
          }
        }
        mma_hidden_layer<P>(frag0, et, h, lane);  // silu(emb_x W0[:, :128]^T + e1[t])
      } else {
#pragma unroll
        for (int j = 0; j < kMmaNTiles; ++j)
#pragma unroll
          for (int c = 0; c < 2; ++c) {
            const int u = j * 8 + 2 * tig + c;
            const float e = __ldg(et + u);
            h[j][c] = silu_tanh(fmaf(xg0, w0c0[u], fmaf(xg1, w0c1[u], e)));
            h[j][2 + c] = silu_tanh(fmaf(xh0, w0c0[u], fmaf(xh1, w0c1[u], e)));
          }
      }
      mma_hidden_layer<P>(frag1, b1, h, lane);
      mma_hidden_layer<P>(frag2, b2, h, lane);
      // Output layer: partial sums over this lane's 32 units, then over the quad.
      float eg0 = 0.f, eg1 = 0.f, eh0 = 0.f, eh1 = 0.f;
#pragma unroll
      for (int j = 0; j < kMmaNTiles; ++j)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int u = j * 8 + 2 * tig + c;
          eg0 = fmaf(h[j][c], w3[u], eg0);
          eg1 = fmaf(h[j][c], w3[kHidden + u], eg1);
          eh0 = fmaf(h[j][2 + c], w3[u], eh0);
          eh1 = fmaf(h[j][2 + c], w3[kHidden + u], eh1);
        }
#pragma unroll
      for (int m = 1; m <= 2; m *= 2) {
        eg0 += __shfl_xor_sync(kAll, eg0, m);
        eg1 += __shfl_xor_sync(kAll, eg1, m);
        eh0 += __shfl_xor_sync(kAll, eh0, m);
        eh1 += __shfl_xor_sync(kAll, eh1, m);
      }
      if (owner) {
        const float eps0 = (tig == 0 ? eg0 : eh0) + b3[0], eps1 = (tig == 0 ? eg1 : eh1) + b3[1];
        float z0 = 0.f, z1 = 0.f;
        if (step.noise) rng.next(z0, z1);
        x0 = sample_update(x0, eps0, z0, carried0, step);
        x1 = sample_update(x1, eps1, z1, carried1, step);
      }
    }
    if (owner) {
      out[2 * p] = x0;
      out[2 * p + 1] = x1;
    }
  }
}

}  // namespace ddpm::kernels
