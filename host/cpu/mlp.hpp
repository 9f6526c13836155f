// EpsNet's layers on the CPU, as fused row-block primitives that the trainer
// and the sampler compose. Internal header of the CPU backend.
//
// Activations are row-major [rows][width]. The hidden layers store, beside
// h = silu(z), the derivative g = silu'(z), so the backward pass needs no exp.
#pragma once

#include <cstdint>
#include <vector>

#include "ddpm/config.hpp"
#include "ddpm/params.hpp"

namespace ddpm::cpu {

// Layer-0 input rows [x0, x1, emb_0..emb_63], zero-padded to a multiple of 16
// so that the weight gradient dW0 = dZ1^T A0 runs on whole micro-kernel tiles.
inline constexpr int kIn0Padded = 80;
static_assert(kIn0Padded >= kInDim && kIn0Padded % 16 == 0);

// W^T of the three hidden-input layers ([in][out], the micro-kernel's B operand),
// refreshed from the flat buffer after every optimizer step.
struct TransposedWeights {
  std::vector<float> wt0, wt1, wt2;
  TransposedWeights();
  void refresh(const float* params);
  // Row o (0 <= o < 3 * 128) of the three layers' W: layer o / 128, output o % 128.
  void refresh_row(const float* params, int o);
  static constexpr int kRows = 3 * kHidden;
};

// Embedding table emb[t][k] for t = 0..T.
std::vector<float> embedding_table(int T);

// The time-dependent part of layer 0 for every step, e[t] = W0[:, 2:66] emb(t) + b0,
// t = 0..T ([T + 1][128]; row 0 unused): computed once for all points of a sampling run.
std::vector<float> layer0_time_terms(const float* params, int T);

// h = silu(A W^T + b) and g = silu'(A W^T + b) for `rows` rows (g may be null).
// A: [rows][lda] with `in` valid columns; wt: [in][128]; h, g: [rows][128].
void linear_silu(int rows, const float* A, int64_t lda, int in, const float* wt, const float* bias,
                 float* h, float* g);

// out = h3 W3^T + b3 for `rows` rows: [rows][128] -> [rows][2].
void output_layer(int rows, const float* h3, const float* params, float* out);

// dZ_prev = (dZ W) * g_prev for `rows` rows; W row-major [128][128] (the layer's
// own weight), dZ, g_prev, dZ_prev: [rows][128].
void backward_hidden(int rows, const float* dz, const float* w, const float* g_prev, float* dz_prev);

// dZ3 = (dout W3) * g3: [rows][2] -> [rows][128].
void backward_output(int rows, const float* dout, const float* params, const float* g3, float* dz3);

// dW[o][k] = sum_r dZ[r][o] A[r][k] for o in [o0, o1), k < in, and db[o] = sum_r dZ[r][o],
// summed in a fixed order of row blocks (deterministic). dZ: [n][out]; A: [n][lda].
void weight_grad(int n, const float* dz, int out, const float* A, int64_t lda, int in, int o0, int o1,
                 float* dw, float* db);

}  // namespace ddpm::cpu
