// The kernels of the fused training step (FP32 SIMT), see train_step.hpp.
//
// The step, per row r of the batch (Ho et al. 2020, Algorithm 1):
//   x0_r  = (x_r - mean) / std                       (per-batch normalization)
//   a0_r  = [sqrt(abar_t) x0_r + sqrt(1 - abar_t) eps_r, emb(t_r)]
//           (with the x encoding: [emb_x(x_t0), emb_x(x_t1), emb(t_r)], math.hpp)
//   z1 = a0 W0^T + b0,  h1 = silu(z1),  g1 = silu'(z1);  likewise h2, h3
//   out = h3 W3^T + b3,  L = sum_r |out_r - eps_r|^2 / (2n)
//   dout = (out - eps) / n
//   dz3 = (dout W3) * g3,  dz2 = (dz3 W2) * g2,  dz1 = (dz2 W1) * g1
//   dW3 = dout^T h3,  dW2 = dz3^T h2,  dW1 = dz2^T h1,  dW0 = dz1^T a0,  db_l = sum_r dz_l
// (x_t is not a parameter: layer 0 needs no input gradient.) Each product is
// the k-ordered FMA chain from zero, then the bias, as in the CPU backend.
#pragma once

#include "ddpm/datasets.hpp"
#include "ddpm/math.hpp"
#include "ddpm/rng.hpp"
#include "ddpm/smem.hpp"
#include "kernels/train_step.hpp"

namespace ddpm::kernels {

// ---- Small helpers ----

__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ void store4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }

// h = silu(z) and g = silu'(z) = s (1 + z (1 - s)) from one sigmoid s (as silu and silu_grad).
__device__ __forceinline__ void silu_and_grad(float z, float& h, float& g) {
  const float s = sigmoid(z);
  h = z * s;
  g = s * (1.f + z * (1.f - s));
}

// The sums of a and b over the block, in a fixed order (lane 0's butterfly,
// then the warps in order), returned to every thread. red: 2 x (warps) doubles.
__device__ __forceinline__ void block_sum_pair(double& a, double& b, double* red) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  for (int offset = 16; offset > 0; offset /= 2) {
    a += __shfl_xor_sync(0xffffffffu, a, offset);
    b += __shfl_xor_sync(0xffffffffu, b, offset);
  }
  if (lane == 0) {
    red[warp] = a;
    red[warps + warp] = b;
  }
  __syncthreads();
  a = 0;
  b = 0;
  for (int w = 0; w < warps; ++w) {
    a += red[w];
    b += red[warps + w];
  }
  __syncthreads();  // red is reused by the next call
}

// ---- Kernel 1: the batch and its statistics ----
//
// Row i draws exactly what cpu::draw_batch_rows draws (Philox item
// step * n + i of Stream::kTrainBatch, the words only for sets other than
// moons) and places the point with the same batch_point. Block b's rows give
// S_b = sum x and M2_b = sum (x - S_b / c_b)^2; the last block merges them in
// block order (Chan, Golub and LeVeque):
//   mean = sum_b S_b / n,  M2 = sum_b [M2_b + c_b (S_b / c_b - mean)^2],
//   1 / std = 1 / sqrt(M2 / (n - 1))   (1 when M2 = 0, as batch_stats)
// all in double, so the statistics agree with the CPU's two-pass row-order
// sums to ~1e-16 relative, far below the float the rows are rounded to.
__global__ void __launch_bounds__(kTrainBatchThreads)
    train_batch_kernel(uint64_t seed, const int64_t* __restrict__ step, int n, int T, DataSource data,
                       TrainBatch batch, BatchStatsPartial* __restrict__ partials, unsigned* __restrict__ done,
                       TrainBatchStats* __restrict__ stats) {
  __shared__ double red[2 * (kTrainBatchThreads / 32)];
  __shared__ bool is_last;
  const int tid = threadIdx.x;
  const int base = blockIdx.x * kTrainBatchThreads;
  const int i = base + tid;
  const bool valid = i < n;
  float x = 0.f, y = 0.f;
  if (valid) {
    const uint64_t s = uint64_t(*step);
    PointRandom r{};
    const TrainDraw d = data.dataset != Dataset::kMoons ? draw_train_row(seed, s, n, i, T, r.word)
                                                        : draw_train_row(seed, s, n, i, T);
    r.normal[0] = d.noise_x;
    r.normal[1] = d.noise_y;
    batch_point(data, i, n, r, x, y);
    batch.x0[2 * i] = x;
    batch.x0[2 * i + 1] = y;
    batch.eps[2 * i] = d.eps_x;
    batch.eps[2 * i + 1] = d.eps_y;
    batch.t[i] = d.t;
  }
  const int count = n - base < kTrainBatchThreads ? n - base : kTrainBatchThreads;
  double sx = valid ? double(x) : 0.0, sy = valid ? double(y) : 0.0;
  block_sum_pair(sx, sy, red);
  const double mx = sx / count, my = sy / count;
  double qx = valid ? (double(x) - mx) * (double(x) - mx) : 0.0;
  double qy = valid ? (double(y) - my) * (double(y) - my) : 0.0;
  block_sum_pair(qx, qy, red);
  if (tid == 0) {
    partials[blockIdx.x] = BatchStatsPartial{{sx, sy}, {qx, qy}};
    __threadfence();  // release: the partial is visible before the ticket is taken
    is_last = atomicAdd(done, 1u) == gridDim.x - 1;
    __threadfence();  // acquire: the partials of the blocks whose tickets came first are visible after it
  }
  __syncthreads();
  if (!is_last) return;

  // The last block: every partial is written. __ldcg reads them from L2,
  // past this SM's L1, which other blocks' writes do not update.
  const int blocks = gridDim.x;
  double tx = 0, ty = 0;
  for (int b = tid; b < blocks; b += kTrainBatchThreads) {
    tx += __ldcg(&partials[b].sum[0]);
    ty += __ldcg(&partials[b].sum[1]);
  }
  block_sum_pair(tx, ty, red);
  const double mean_x = tx / n, mean_y = ty / n;
  double m2x = 0, m2y = 0;
  for (int b = tid; b < blocks; b += kTrainBatchThreads) {
    const int c = n - b * kTrainBatchThreads < kTrainBatchThreads ? n - b * kTrainBatchThreads : kTrainBatchThreads;
    const double dx = __ldcg(&partials[b].sum[0]) / c - mean_x, dy = __ldcg(&partials[b].sum[1]) / c - mean_y;
    m2x += __ldcg(&partials[b].m2[0]) + c * dx * dx;
    m2y += __ldcg(&partials[b].m2[1]) + c * dy * dy;
  }
  block_sum_pair(m2x, m2y, red);
  if (tid == 0) {
    TrainBatchStats s;
    s.mean[0] = mean_x;
    s.mean[1] = mean_y;
    s.inv_std[0] = m2x > 0 ? 1.0 / sqrt(m2x / (n - 1)) : 1.0;
    s.inv_std[1] = m2y > 0 ? 1.0 / sqrt(m2y / (n - 1)) : 1.0;
    *stats = s;
    *done = 0;  // ready for the next step's launch
  }
}

// ---- Kernel 2: forward, loss and backward of a tile, weight gradients of the block ----

// A hidden layer's forward pass for the warp's rows: z = A W^T + b (K inputs),
// h = silu(z), g = silu'(z); lane l owns outputs 4l..4l+3.
template <int K, int LDA>
__device__ __forceinline__ void train_forward_layer(const float* __restrict__ A, const float* __restrict__ wt,
                                                    const float* __restrict__ bias, float* __restrict__ h,
                                                    float* __restrict__ g, int r0, int lane) {
  float4 acc[kTrainRowsPerWarp];
#pragma unroll
  for (int i = 0; i < kTrainRowsPerWarp; ++i) acc[i] = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 4
  for (int k = 0; k < K; ++k) {
    const float4 w = __ldg(reinterpret_cast<const float4*>(wt + k * kHidden) + lane);
#pragma unroll
    for (int i = 0; i < kTrainRowsPerWarp; ++i) {
      const float a = A[(r0 + i) * LDA + k];  // one address for the warp: a broadcast
      acc[i].x = fmaf(a, w.x, acc[i].x);
      acc[i].y = fmaf(a, w.y, acc[i].y);
      acc[i].z = fmaf(a, w.z, acc[i].z);
      acc[i].w = fmaf(a, w.w, acc[i].w);
    }
  }
  const float4 b = __ldg(reinterpret_cast<const float4*>(bias) + lane);
#pragma unroll
  for (int i = 0; i < kTrainRowsPerWarp; ++i) {
    float4 hv, gv;
    silu_and_grad(acc[i].x + b.x, hv.x, gv.x);
    silu_and_grad(acc[i].y + b.y, hv.y, gv.y);
    silu_and_grad(acc[i].z + b.z, hv.z, gv.z);
    silu_and_grad(acc[i].w + b.w, hv.w, gv.w);
    store4(h + (r0 + i) * kHidden + 4 * lane, hv);
    store4(g + (r0 + i) * kHidden + 4 * lane, gv);
  }
}

// A hidden layer's backward pass for the warp's rows, in place:
// dz_prev = (dz W) * g_prev, written over g_prev (each element reads only its own g).
__device__ __forceinline__ void train_backward_layer(const float* __restrict__ dz, const float* __restrict__ w,
                                                     float* __restrict__ g_prev, int r0, int lane) {
  float4 acc[kTrainRowsPerWarp];
#pragma unroll
  for (int i = 0; i < kTrainRowsPerWarp; ++i) acc[i] = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 4
  for (int o = 0; o < kHidden; ++o) {
    const float4 wv = __ldg(reinterpret_cast<const float4*>(w + o * kHidden) + lane);  // W[o][4l..4l+3]
#pragma unroll
    for (int i = 0; i < kTrainRowsPerWarp; ++i) {
      const float d = dz[(r0 + i) * kHidden + o];
      acc[i].x = fmaf(d, wv.x, acc[i].x);
      acc[i].y = fmaf(d, wv.y, acc[i].y);
      acc[i].z = fmaf(d, wv.z, acc[i].z);
      acc[i].w = fmaf(d, wv.w, acc[i].w);
    }
  }
#pragma unroll
  for (int i = 0; i < kTrainRowsPerWarp; ++i) {
    float* gp = g_prev + (r0 + i) * kHidden + 4 * lane;
    const float4 gv = load4(gp);
    store4(gp, make_float4(acc[i].x * gv.x, acc[i].y * gv.y, acc[i].z * gv.z, acc[i].w * gv.w));
  }
}

// The tile's share of a 128-output layer's weight and bias gradients, added
// to the block's partial (stored on the block's first tile):
//   dW[o][k] += sum_r dz[r][o] A[r][k],  db[o] += sum_r dz[r][o]   (rows in order)
// for IN columns k of A (row stride LDA) and of dW (row stride LDW); db only
// when `db` is not null. Thread: outputs o0..o0+7 (o0 = 8 (tid / 16)), inputs
// k = tid % 16 + 16 j.
template <int IN, int LDA, int LDW = IN>
__device__ __forceinline__ void train_weight_grad(const float* __restrict__ dz, const float* __restrict__ A,
                                                  float* __restrict__ dw, float* __restrict__ db, bool first,
                                                  int tid) {
  constexpr int kCols = (IN + 15) / 16;
  const int o0 = 8 * (tid / 16), tk = tid % 16;
  float acc[8][kCols];
  float bacc[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    bacc[i] = 0.f;
#pragma unroll
    for (int j = 0; j < kCols; ++j) acc[i][j] = 0.f;
  }
  for (int r = 0; r < kTrainTileRows; ++r) {
    const float4 d0 = load4(dz + r * kHidden + o0), d1 = load4(dz + r * kHidden + o0 + 4);
    const float d[8] = {d0.x, d0.y, d0.z, d0.w, d1.x, d1.y, d1.z, d1.w};
#pragma unroll
    for (int j = 0; j < kCols; ++j) {
      const int k = tk + 16 * j;
      const float a = k < IN ? A[r * LDA + k] : 0.f;
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[i][j] = fmaf(d[i], a, acc[i][j]);
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) bacc[i] += d[i];
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) {
#pragma unroll
    for (int j = 0; j < kCols; ++j) {
      const int k = tk + 16 * j;
      if (k < IN) {
        float* p = dw + (o0 + i) * LDW + k;
        *p = first ? acc[i][j] : *p + acc[i][j];
      }
    }
    if (tk == 0 && db != nullptr) db[o0 + i] = first ? bacc[i] : db[o0 + i] + bacc[i];
  }
}

// One block per SM (the grid is at most the SM count): minimum 1 lets ptxas
// use 155 registers and keep the 8 x 8 weight-gradient tiles out of local memory
// (capped at 128 it spilled ~100 bytes). One instantiation per model variant.
template <XEmbedding E>
__global__ void __launch_bounds__(kTrainThreads, 1)
    train_rows_kernel(TrainNetView net, TrainBatch batch, const TrainBatchStats* __restrict__ stats,
                      const ForwardCoef* __restrict__ coef, const float* __restrict__ emb, int n,
                      float* __restrict__ grad_partial, double* __restrict__ loss_partial,
                      float* __restrict__ activations) {
  using S = TrainShape<E>;
  constexpr int kA0Stride = S::kA0Stride;
  constexpr std::size_t kW0 = S::kW0, kB0 = S::kB0, kW1 = S::kW1, kB1 = S::kB1, kW2 = S::kW2, kB2 = S::kB2,
                        kW3 = S::kW3, kB3 = S::kB3, kParams = S::kParams;
  float* smem = dynamic_smem<float>();
  float* a0 = smem + S::kSmemA0;
  float* h1 = smem + S::kSmemH;
  float* h2 = h1 + kTrainTileRows * kHidden;
  float* h3 = h2 + kTrainTileRows * kHidden;
  float* g1 = smem + S::kSmemG;  // later dz1
  float* g2 = g1 + kTrainTileRows * kHidden;  // later dz2
  float* g3 = g2 + kTrainTileRows * kHidden;  // later dz3
  float* eps_s = smem + S::kSmemEps;
  float* dout_s = smem + S::kSmemDout;  // x_t of the warp's rows until the output layer (the x encoding's input)
  double* warp_loss = reinterpret_cast<double*>(smem + S::kSmemLoss);

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int r0 = warp * kTrainRowsPerWarp;  // the warp's rows within the tile
  // The x encoding's frequency of this lane (a lane always takes the same one,
  // kEmbHalf = 32): the host's, from the parameters.
  static_assert(kEmbHalf == 32);
  const float x_freq = E == XEmbedding::kSinusoidal ? net.x_freq.freq[lane] : 0.f;
  const TrainBatchStats st = *stats;
  const float scale = 1.f / float(n);       // dL/d out = 2 (out - eps) / (2n)
  const float* p = net.params;
  float* grad = grad_partial + std::size_t(blockIdx.x) * kParams;
  const int tiles = (n + kTrainTileRows - 1) / kTrainTileRows;
  double loss = 0;  // lane 0: the warp's squared errors over all its tiles
  if (int(blockIdx.x) >= tiles)  // a grid larger than train_rows_grid's: this block's partial is zero
    for (std::size_t i = tid; i < kParams; i += kTrainThreads) grad[i] = 0.f;

  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const bool first = tile == int(blockIdx.x);
    const int row0 = tile * kTrainTileRows;

    // Layer-0 inputs of the warp's rows. Rows past n (the last tile) are
    // zeros with t = 0: finite activations, and dout = 0 keeps them out of
    // every gradient.
    if (lane < kTrainRowsPerWarp) {
      const int r = r0 + lane, row = row0 + r;
      float xt0 = 0.f, xt1 = 0.f, e0 = 0.f, e1 = 0.f;
      if (row < n) {
        const int t = batch.t[row];
        e0 = batch.eps[2 * row];
        e1 = batch.eps[2 * row + 1];
        // normalize_rows: (x - mean) / std in double, rounded once
        const float x0 = float((double(batch.x0[2 * row]) - st.mean[0]) * st.inv_std[0]);
        const float x1 = float((double(batch.x0[2 * row + 1]) - st.mean[1]) * st.inv_std[1]);
        const ForwardCoef c = coef[t];
        xt0 = q_sample(x0, e0, c);
        xt1 = q_sample(x1, e1, c);
      }
      if constexpr (E == XEmbedding::kSinusoidal) {
        dout_s[2 * r] = xt0;
        dout_s[2 * r + 1] = xt1;
      } else {
        a0[r * kA0Stride] = xt0;
        a0[r * kA0Stride + 1] = xt1;
      }
      eps_s[2 * r] = e0;
      eps_s[2 * r + 1] = e1;
    }
    if constexpr (E == XEmbedding::kSinusoidal) {
      // The x encoding of the warp's rows, one (row, coordinate, frequency) per
      // iteration, sin and cos from one sincosf.
      __syncwarp();
      for (int e = lane; e < kTrainRowsPerWarp * kDataDim * kEmbHalf; e += 32) {
        const int r = r0 + e / (kDataDim * kEmbHalf), d = e / kEmbHalf % kDataDim, j = e % kEmbHalf;  // j = lane
        float sn, cs;
        sincosf(x_embedding_arg(dout_s[2 * r + d], net.model.x_scale, x_freq), &sn, &cs);
        a0[r * kA0Stride + d * kEmbDim + j] = sn;
        a0[r * kA0Stride + d * kEmbDim + kEmbHalf + j] = cs;
      }
    }
    for (int e = lane; e < kTrainRowsPerWarp * kEmbDim; e += 32) {
      const int r = r0 + e / kEmbDim, k = e % kEmbDim, row = row0 + r;
      const int t = row < n ? batch.t[row] : 0;
      a0[r * kA0Stride + S::kXInputs + k] = __ldg(emb + t * kEmbDim + k);
    }
    __syncwarp();  // from here to the weight gradients a warp reads only its own rows

    train_forward_layer<S::kIn0, kA0Stride>(a0, net.wt0, p + kB0, h1, g1, r0, lane);
    __syncwarp();
    train_forward_layer<kHidden, kHidden>(h1, net.wt1, p + kB1, h2, g2, r0, lane);
    __syncwarp();
    train_forward_layer<kHidden, kHidden>(h2, net.wt2, p + kB2, h3, g3, r0, lane);
    __syncwarp();

    // Output layer: lane l's share of out[r][c] over inputs 4l..4l+3, then
    // the warp's butterfly; lane 0's sums are the ones used (every lane's
    // are the full sum, but in different orders).
    const float4 w30 = __ldg(reinterpret_cast<const float4*>(p + kW3) + lane);
    const float4 w31 = __ldg(reinterpret_cast<const float4*>(p + kW3 + kHidden) + lane);
#pragma unroll
    for (int i = 0; i < kTrainRowsPerWarp; ++i) {
      const int r = r0 + i, row = row0 + r;
      const float4 hv = load4(h3 + r * kHidden + 4 * lane);
      float o0 = fmaf(hv.w, w30.w, fmaf(hv.z, w30.z, fmaf(hv.y, w30.y, hv.x * w30.x)));
      float o1 = fmaf(hv.w, w31.w, fmaf(hv.z, w31.z, fmaf(hv.y, w31.y, hv.x * w31.x)));
      for (int offset = 16; offset > 0; offset /= 2) {
        o0 += __shfl_xor_sync(0xffffffffu, o0, offset);
        o1 += __shfl_xor_sync(0xffffffffu, o1, offset);
      }
      if (lane == 0) {
        o0 += __ldg(p + kB3);
        o1 += __ldg(p + kB3 + 1);
        const float d0 = o0 - eps_s[2 * r], d1 = o1 - eps_s[2 * r + 1];
        const bool valid = row < n;
        dout_s[2 * r] = valid ? d0 * scale : 0.f;
        dout_s[2 * r + 1] = valid ? d1 * scale : 0.f;
        if (valid) {
          loss += double(d0) * d0 + double(d1) * d1;
          if (activations != nullptr) {
            activations[std::size_t(row) * (3 * kHidden + 2) + 3 * kHidden] = o0;
            activations[std::size_t(row) * (3 * kHidden + 2) + 3 * kHidden + 1] = o1;
          }
        }
      }
      if (activations != nullptr && row < n) {  // rows of 386 floats: not 16-byte aligned, so scalar stores
        float* act = activations + std::size_t(row) * (3 * kHidden + 2);
        for (int j = 0; j < 4; ++j) {
          const int k = 4 * lane + j;
          act[k] = h1[r * kHidden + k];
          act[kHidden + k] = h2[r * kHidden + k];
          act[2 * kHidden + k] = h3[r * kHidden + k];
        }
      }
    }
    __syncwarp();

    // dz3 = (dout W3) * g3, over g3.
#pragma unroll
    for (int i = 0; i < kTrainRowsPerWarp; ++i) {
      const int r = r0 + i;
      const float d0 = dout_s[2 * r], d1 = dout_s[2 * r + 1];
      float* gp = g3 + r * kHidden + 4 * lane;
      const float4 gv = load4(gp);
      store4(gp, make_float4(fmaf(d1, w31.x, d0 * w30.x) * gv.x, fmaf(d1, w31.y, d0 * w30.y) * gv.y,
                             fmaf(d1, w31.z, d0 * w30.z) * gv.z, fmaf(d1, w31.w, d0 * w30.w) * gv.w));
    }
    __syncwarp();
    train_backward_layer(g3, p + kW2, g2, r0, lane);  // dz2 over g2
    __syncwarp();
    train_backward_layer(g2, p + kW1, g1, r0, lane);  // dz1 over g1
    __syncthreads();  // the weight gradients read every row of the tile

    if constexpr (E == XEmbedding::kSinusoidal) {
      // 192 columns in two passes (x's 128, then emb(t)'s 64), each thread's
      // tile no larger than a hidden layer's.
      train_weight_grad<kXEmbInputs, kA0Stride, S::kIn0>(g1, a0, grad + kW0, grad + kB0, first, tid);
      train_weight_grad<kEmbDim, kA0Stride, S::kIn0>(g1, a0 + kXEmbInputs, grad + kW0 + kXEmbInputs, nullptr, first,
                                                     tid);
    } else {
      train_weight_grad<S::kIn0, kA0Stride>(g1, a0, grad + kW0, grad + kB0, first, tid);
    }
    train_weight_grad<kHidden, kHidden>(g2, h1, grad + kW1, grad + kB1, first, tid);
    train_weight_grad<kHidden, kHidden>(g3, h2, grad + kW2, grad + kB2, first, tid);
    {  // dW3[c][k] = sum_r dout[r][c] h3[r][k]: one element per thread; db3 on threads 0, 1
      const int c = tid / kHidden, k = tid % kHidden;
      float acc = 0.f, bacc = 0.f;
      for (int r = 0; r < kTrainTileRows; ++r) {
        acc = fmaf(dout_s[2 * r + c], h3[r * kHidden + k], acc);
        bacc += dout_s[2 * r + tid % 2];
      }
      float* dw = grad + kW3 + c * kHidden + k;
      *dw = first ? acc : *dw + acc;
      if (tid < 2) grad[kB3 + tid] = first ? bacc : grad[kB3 + tid] + bacc;
    }
    __syncthreads();  // the next tile overwrites the activations
  }

  if (lane == 0) warp_loss[warp] = loss;
  __syncthreads();
  if (tid == 0) {
    double sum = 0;
    for (int w = 0; w < kTrainWarps; ++w) sum += warp_loss[w];
    loss_partial[blockIdx.x] = sum;
  }
}

// ---- Kernel 3: gradient reduction, Adam, EMA, transposed weights, loss, step ----
//
//   g = sum_b partial_b  (b = 0, 1, ... in order)
//   Adam step k = *step + 1 with the scalars adam[*step - first_step]
//   ema <- decay ema + (1 - decay) p      (when kept)
//   W_l^T[k][o] = W_l[o][k] for l = 0..2  (what the next forward pass reads)
template <XEmbedding E>
__global__ void __launch_bounds__(kAdamThreads)
    train_adam_kernel(TrainOptState opt, const float* __restrict__ grad_partial,
                      const double* __restrict__ loss_partial, int partials, int n, TrainStepClock clock,
                      unsigned* __restrict__ done, float* __restrict__ grad_out) {
  using S = TrainShape<E>;
  constexpr std::size_t kW0 = S::kW0, kB0 = S::kB0, kW1 = S::kW1, kB1 = S::kB1, kW2 = S::kW2, kB2 = S::kB2,
                        kParams = S::kParams;
  __shared__ bool is_last;
  const int64_t j = *clock.step - clock.first_step;
  const AdamStep s = clock.adam[j];
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < kParams;
       i += std::size_t(gridDim.x) * blockDim.x) {
    float g = grad_partial[i];
    for (int b = 1; b < partials; ++b) g += grad_partial[std::size_t(b) * kParams + i];
    if (grad_out != nullptr) grad_out[i] = g;
    float w = opt.params[i], m = opt.adam_m[i], v = opt.adam_v[i];
    adam_update(w, m, v, g, s);
    opt.params[i] = w;
    opt.adam_m[i] = m;
    opt.adam_v[i] = v;
    if (opt.ema != nullptr) {
      float e = opt.ema[i];
      ema_update(e, w, opt.ema_decay, opt.ema_one_minus_decay);
      opt.ema[i] = e;
    }
    if (i < kB0) {
      const std::size_t q = i - kW0;
      opt.wt0[(q % S::kIn0) * kHidden + q / S::kIn0] = w;
    } else if (i >= kW1 && i < kB1) {
      const std::size_t q = i - kW1;
      opt.wt1[(q % kHidden) * kHidden + q / kHidden] = w;
    } else if (i >= kW2 && i < kB2) {
      const std::size_t q = i - kW2;
      opt.wt2[(q % kHidden) * kHidden + q / kHidden] = w;
    }
  }
  // Every block has read *step (before the barrier); the last to finish
  // writes the loss and advances the step.
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();  // release: this block's reads of *step are done before its ticket
    is_last = atomicAdd(done, 1u) == gridDim.x - 1;
    __threadfence();  // acquire: the other blocks' reads are ordered before the write of *step below
  }
  __syncthreads();
  if (is_last && threadIdx.x == 0) {
    double sum = 0;
    for (int b = 0; b < partials; ++b) sum += loss_partial[b];
    clock.losses[j] = float(sum / (2.0 * n));  // as the CPU's mean_loss
    *clock.step += 1;
    *done = 0;
  }
}

}  // namespace ddpm::kernels
