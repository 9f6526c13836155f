// The likelihood's kernels (see likelihood.hpp and ddpm/likelihood.hpp).
//
// vlb_sums_kernel: the fused sampler's block (kFusedPoints points, activations
// in shared memory) and its network evaluator (fused_eps_theta), with the
// chain replaced by the bound's loop: per point and t = 1..T,
//   (eps_0, eps_1) = the next pair of the point's stream (pair t - 1)
//   x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps      (q_sample)
//   err = w_t |eps - eps_theta(x_t, t)|^2                         (vlb_weighted_error)
// err of t = 1 is the decoder's, those of t = 2..T are added to `steps` in
// that order, as the CPU backend adds them (host/cpu/likelihood_loops.hpp).
//
// ode_end_states_kernel: per stage of the RK4 table, eps_theta(x, tau) and the
// divergence d eps_0 / d x_0 + d eps_1 / d x_1 by forward-mode tangents: beside
// each activation row h of a point, its tangents dh/dx_0 and dh/dx_1, through
//   layer 0  z = x_0 W0[:, 0] + x_1 W0[:, 1] + e(tau),  h = silu(z),
//            dh/dx_j = silu'(z) W0[:, j]
//            (x encoding: z = emb_x(x) W0x^T + e(tau), the encoding's tangent
//            d/dx_d sin(a) = s f cos(a), d/dx_d cos(a) = -s f sin(a) with
//            a = (s x_d) f, then as a hidden layer)
//   hidden   z = h W^T + b,  h' = silu(z),  dh'/dx_j = silu'(z) (dh/dx_j W^T)
//   output   eps = h3 W3^T + b3,  J[:, j] = W3 dh3/dx_j,  div = J_00 + J_11.
// Sixteen threads own a point, each its 8 units of all three rows, so a
// point's rows never leave its warp: __syncwarp orders them, and the output
// layer's sums over the 16 threads are a butterfly of shuffles, whose result
// is the same bits in every lane (each stage adds a + b in one lane and b + a
// in its partner: addition commutes exactly), so every lane of the point
// keeps the same OdeState and needs no broadcast.
#pragma once

#include "ddpm/likelihood.hpp"
#include "ddpm/math.hpp"
#include "ddpm/rng.hpp"
#include "ddpm/smem.hpp"
#include "kernels/fused_net.cuh"
#include "kernels/likelihood.hpp"

namespace ddpm::kernels {

// ---- The bound ----

__global__ void __launch_bounds__(kFusedThreads, kFusedMinBlocksPerSm)
    vlb_sums_kernel(VlbNet vlb, uint64_t seed, int64_t first, int64_t n, const float* __restrict__ x0,
                    VlbSums* __restrict__ out) {
  float* ha = dynamic_smem<float>();                // [P][stride] activations, ping
  float* hb = ha + kFusedPoints * kFusedRowStride;  // pong
  float* xs = hb + kFusedPoints * kFusedRowStride;  // [P][2] the points x_t
  float* eps = xs + 2 * kFusedPoints;               // [P][2] eps_theta(x_t, t)
  const FusedSamplerNet& net = vlb.net;
  const int tid = threadIdx.x;
  const int tp = tid / (kHidden / 8), to = tid % (kHidden / 8);  // points tp*4.., outputs to*8..
  static_assert(kFusedThreads % kEmbHalf == 0);                   // fused_eps_theta's encoding loop
  const float x_freq = net.wt0x != nullptr ? net.x_freq.freq[tid % kEmbHalf] : 0.f;
  const int64_t tiles = (n + kFusedPoints - 1) / kFusedPoints;

  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int64_t p0 = tile * kFusedPoints;
    const int count = int(n - p0 < kFusedPoints ? n - p0 : kFusedPoints);
    // Thread p < count owns point p: its stream, its x_0 and its sums.
    NormalPairs rng{};
    float a0 = 0.f, a1 = 0.f;
    VlbSums sums{0.f, 0.f};
    if (tid < count) {
      philox_init(&rng.state, seed, Stream::kLikelihood, uint64_t(first + p0 + tid));
      a0 = x0[2 * (p0 + tid)];
      a1 = x0[2 * (p0 + tid) + 1];
    }
    for (int t = 1; t <= vlb.T; ++t) {
      const VlbTerm term = vlb.terms[t];
      float e0 = 0.f, e1 = 0.f;
      if (tid < count) {
        rng.next(e0, e1);  // pair t - 1
        xs[2 * tid] = q_sample(a0, e0, term.forward);
        xs[2 * tid + 1] = q_sample(a1, e1, term.forward);
      } else if (tid < kFusedPoints) {
        xs[2 * tid] = xs[2 * tid + 1] = 0.f;  // padding rows of a partial tile: computed, never stored
      }
      __syncthreads();
      fused_eps_theta(net, net.e1 + t * kHidden, xs, eps, ha, hb, x_freq, tid, tp, to);
      // eps visible to its owners. The next step rewrites xs (read by this
      // step's layer 0) and eps (read below) only after this barrier and those
      // inside fused_eps_theta: no barrier at the step's end.
      __syncthreads();
      if (tid < count) {
        const float err = vlb_weighted_error(e0, e1, eps[2 * tid], eps[2 * tid + 1], term.weight);
        if (t == 1) sums.decoder = err;
        else sums.steps += err;
      }
    }
    if (tid < count) out[p0 + tid] = sums;
  }
}

// ---- The ODE ----

// One layer's sums for the thread's 8 units o = 8 to + j over its point's
// three rows ([kOdeRows][kOdeRowStride] in shared memory):
//   acc[r][j] = sum_k rows[r][k] W[o][k]   (wt = W^T, [128][128])
// each the k-ordered FMA chain from zero, as the CPU backend's and the fused
// sampler's sums (the bias is the caller's, on the value row only).
__device__ __forceinline__ void ode_layer_sums(const float* rows, const float* __restrict__ wt, int to,
                                               float (&acc)[kOdeRows][8]) {
#pragma unroll
  for (int r = 0; r < kOdeRows; ++r)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[r][j] = 0.f;
  for (int k = 0; k < kHidden; k += 4) {
    float4 a[kOdeRows];
#pragma unroll
    for (int r = 0; r < kOdeRows; ++r) a[r] = *reinterpret_cast<const float4*>(rows + r * kOdeRowStride + k);
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      const float4 wa = __ldg(reinterpret_cast<const float4*>(wt + (k + kk) * kHidden + to * 8));
      const float4 wb = __ldg(reinterpret_cast<const float4*>(wt + (k + kk) * kHidden + to * 8 + 4));
      const float w[8] = {wa.x, wa.y, wa.z, wa.w, wb.x, wb.y, wb.z, wb.w};
#pragma unroll
      for (int r = 0; r < kOdeRows; ++r) {
        const float v = kk == 0 ? a[r].x : kk == 1 ? a[r].y : kk == 2 ? a[r].z : a[r].w;
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[r][j] = fmaf(v, w[j], acc[r][j]);
      }
    }
  }
}

// The epilogue of a layer with pre-activation z = acc[0][j] + bias[o] and
// tangent sums acc[1..2][j]: h = silu(z), dh/dx_b = silu'(z) acc[1 + b][j].
__device__ __forceinline__ void ode_epilogue(float (&acc)[kOdeRows][8], const float* __restrict__ bias, int to) {
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const float z = acc[0][j] + __ldg(bias + to * 8 + j);
    const float g = silu_grad(z);
    acc[0][j] = silu(z);
    acc[1][j] *= g;
    acc[2][j] *= g;
  }
}

// Writes the thread's 8 units of the three rows.
__device__ __forceinline__ void ode_store_rows(float* rows, const float (&v)[kOdeRows][8], int to) {
#pragma unroll
  for (int r = 0; r < kOdeRows; ++r) {
    float* dst = rows + r * kOdeRowStride + to * 8;
    *reinterpret_cast<float4*>(dst) = make_float4(v[r][0], v[r][1], v[r][2], v[r][3]);
    *reinterpret_cast<float4*>(dst + 4) = make_float4(v[r][4], v[r][5], v[r][6], v[r][7]);
  }
}

__global__ void __launch_bounds__(kOdeThreads, 2)
    ode_end_states_kernel(OdeNet ode, int64_t n, const float* __restrict__ x0, float* __restrict__ out) {
  const FusedSamplerNet& net = ode.net;
  constexpr unsigned kAll = 0xffffffffu;
  const int tid = threadIdx.x;
  const int pl = tid / kOdeThreadsPerPoint;  // the thread's point in the block's tile
  const int to = tid % kOdeThreadsPerPoint;  // its units 8 to .. 8 to + 7
  float* rows = dynamic_smem<float>() + pl * kOdeRows * kOdeRowStride;
  const bool encoded = net.wt0x != nullptr;
  // The x encoding: this thread fills coordinate d = to / 8's values of
  // frequencies 4 q .. 4 q + 3 (q = to % 8), their sines at units 64 d + 4 q..
  // and cosines 32 units later; the host's frequencies, read once.
  const int enc_d = to / 8, enc_q = to % 8;
  float freq[4] = {0.f, 0.f, 0.f, 0.f};
  if (encoded)
#pragma unroll
    for (int i = 0; i < 4; ++i) freq[i] = net.x_freq.freq[4 * enc_q + i];
  const int64_t tiles = (n + kOdePoints - 1) / kOdePoints;

  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int64_t p = tile * kOdePoints + pl;
    // A warp whose two points both lie past n has nothing to do; it leaves the
    // tile as a whole (warp-uniform: nothing here waits across warps).
    if (tile * kOdePoints + (pl & ~1) >= n) continue;
    const bool valid = p < n;  // the warp's second point may be padding: computed from 0, never stored
    OdeState st{};
    if (valid) {
      st.y[0] = x0[2 * p];
      st.y[1] = x0[2 * p + 1];
    }
    for (int k = 0; k < ode.num_stages; ++k) {
      const OdeStage stage = ode.stages[k];
      const float* et = net.e1 + std::size_t(k) * kHidden;
      float x[2];
      ode_stage_input(st, stage, x[0], x[1]);
      float v[kOdeRows][8];
      __syncwarp();  // every lane has read the rows of the last stage's layer 2
      if (encoded) {
        // The encoding and its tangents as layer 0's three input rows (the
        // tangent along the other coordinate is 0), then layer 0 as a hidden one.
        // (Selects, not v[1 + enc_d]: a register array indexed at run time would live in local memory.)
        const float xd = enc_d == 0 ? x[0] : x[1];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          float sn, cs;
          sincosf(x_embedding_arg(xd, net.x_scale, freq[i]), &sn, &cs);
          const float sf = net.x_scale * freq[i];  // d a / d x_d
          v[0][i] = sn;
          v[0][4 + i] = cs;
          v[1][i] = enc_d == 0 ? sf * cs : 0.f;
          v[1][4 + i] = enc_d == 0 ? -sf * sn : 0.f;
          v[2][i] = enc_d == 1 ? sf * cs : 0.f;
          v[2][4 + i] = enc_d == 1 ? -sf * sn : 0.f;
        }
#pragma unroll
        for (int r = 0; r < kOdeRows; ++r) {
          float* dst = rows + r * kOdeRowStride + enc_d * kEmbDim + 4 * enc_q;
          *reinterpret_cast<float4*>(dst) = make_float4(v[r][0], v[r][1], v[r][2], v[r][3]);
          *reinterpret_cast<float4*>(dst + kEmbHalf) = make_float4(v[r][4], v[r][5], v[r][6], v[r][7]);
        }
        __syncwarp();
        ode_layer_sums(rows, net.wt0x, to, v);
        ode_epilogue(v, et, to);
        __syncwarp();  // the encoding's rows are read: overwritten below
      } else {
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const int o = to * 8 + j;
          const float w0 = __ldg(net.w0c0 + o), w1 = __ldg(net.w0c1 + o);
          const float z = fmaf(x[0], w0, fmaf(x[1], w1, __ldg(et + o)));  // the fused sampler's order
          const float g = silu_grad(z);
          v[0][j] = silu(z);
          v[1][j] = g * w0;
          v[2][j] = g * w1;
        }
      }
      ode_store_rows(rows, v, to);
      __syncwarp();
      ode_layer_sums(rows, net.wt1, to, v);
      ode_epilogue(v, net.b1, to);
      __syncwarp();  // every lane has read layer 1's inputs
      ode_store_rows(rows, v, to);
      __syncwarp();
      ode_layer_sums(rows, net.wt2, to, v);
      ode_epilogue(v, net.b2, to);
      // The output layer over the thread's 8 units, then over the point's 16
      // threads (lanes 16 h .. 16 h + 15 of the warp: xor by 8, 4, 2, 1 stays
      // within them): eps_0, eps_1 and the diagonal J_00, J_11.
      float s[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const float w3a = __ldg(net.w3 + to * 8 + j), w3b = __ldg(net.w3 + kHidden + to * 8 + j);
        s[0] = fmaf(v[0][j], w3a, s[0]);
        s[1] = fmaf(v[0][j], w3b, s[1]);
        s[2] = fmaf(v[1][j], w3a, s[2]);
        s[3] = fmaf(v[2][j], w3b, s[3]);
      }
#pragma unroll
      for (int m = kOdeThreadsPerPoint / 2; m >= 1; m /= 2)
#pragma unroll
        for (int c = 0; c < 4; ++c) s[c] += __shfl_xor_sync(kAll, s[c], m);
      ode_stage_update(st, stage, s[0] + __ldg(net.b3), s[1] + __ldg(net.b3 + 1), s[2] + s[3]);
    }
    if (valid && to == 0) {
      out[3 * p] = st.y[0];
      out[3 * p + 1] = st.y[1];
      out[3 * p + 2] = st.l;
    }
  }
}

}  // namespace ddpm::kernels
