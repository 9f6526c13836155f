// EpsNet's layers on the CPU, as fused row-block primitives that the trainer
// and the sampler compose; compiled once per instruction set (isa_target.hpp).
// Internal header: include it after DDPM_CPU_ISA_BEGIN.
//
// Activations are row-major [rows][width]. The hidden layers store, beside
// h = silu(z), the derivative g = silu'(z), so the backward pass needs no exp.
#pragma once

#include "host/cpu/simd.hpp"

namespace ddpm::cpu::DDPM_CPU_ISA {

// Layer-0 input rows [x part, emb_0..emb_63] (66 or 192 columns, params.hpp),
// zero-padded to whole micro-kernel tiles so that the weight gradient
// dW0 = dZ1^T A0 runs on whole tiles.
constexpr int in0_padded(const NetLayout& net) { return (net.in0() + simd::kTileN - 1) / simd::kTileN * simd::kTileN; }

// The x part of layer 0's input with the sinusoidal encoding (math.hpp's
// x_embedding): row r of a ([rows][lda]) gets [emb_x(x_r0), emb_x(x_r1)], 128
// values, from x ([rows][2]) at the given scale.
void x_embedding_rows(int rows, const float* x, float scale, float* a, int64_t lda);

// h = silu(A W^T + b) and g = silu'(A W^T + b) for `rows` rows (g may be null).
// A: [rows][lda] with `in` valid columns; wt: [in][128]; h, g: [rows][128].
void linear_silu(int rows, const float* A, int64_t lda, int in, const float* wt, const float* bias,
                 float* h, float* g);

// out = h3 W3^T + b3 for `rows` rows: [rows][128] -> [rows][2]; w3 [2][128].
void output_layer(int rows, const float* h3, const float* w3, const float* b3, float* out);

// dZ_prev = (dZ W) * g_prev for `rows` rows; W row-major [128][128] (the layer's
// own weight), dZ, g_prev, dZ_prev: [rows][128].
void backward_hidden(int rows, const float* dz, const float* w, const float* g_prev, float* dz_prev);

// dZ3 = (dout W3) * g3: [rows][2] -> [rows][128].
void backward_output(int rows, const float* dout, const float* w3, const float* g3, float* dz3);

// dW[o][k] = sum_r dZ[r][o] A[r][k] for o in [o0, o1), k < in, and db[o] = sum_r dZ[r][o],
// summed in a fixed order of row blocks (deterministic). dZ: [n][out]; A: [n][lda]
// with lda >= `in` rounded up to simd::kTileN.
void weight_grad(int n, const float* dz, int out, const float* A, int64_t lda, int in, int o0, int o1,
                 float* dw, float* db);

#if DDPM_CPU_ISA_AVX512
// ---- The sampler's bf16 hidden layers (AVX512_BF16), as the GPU's bf16 mode:
// both operands of the 128 x 128 products rounded to bf16 (nearest even), the
// products summed in fp32; bias, SiLU and everything else in fp32. ----

// A hidden layer's W (row-major [128][128]) as gemm_bf16's B operand, W^T in
// pairs along k: word (kp, o) = (W[o][2 kp], W[o][2 kp + 1]), [64][128] words.
void pack_weight_bf16(const float* w, uint32_t* packed);

// h = silu(A W^T + b): A [rows][64 words] (bf16 pairs), w_packed from
// pack_weight_bf16, h fp32 [rows][128].
void linear_silu_bf16(int rows, const uint32_t* A, const uint32_t* w_packed, const float* bias, float* h);
#endif

}  // namespace ddpm::cpu::DDPM_CPU_ISA
