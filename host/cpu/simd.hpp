// The CPU backend's building blocks, written once over a vector of kLanes
// floats: 8 in the AVX2 build, 16 in the AVX-512 one (isa_target.hpp). A
// register-blocked matrix product with a fused epilogue, and exp / sigmoid for
// SiLU. Internal header: include it after DDPM_CPU_ISA_BEGIN.
#pragma once

#include "host/cpu/isa_target.hpp"

namespace ddpm::cpu::DDPM_CPU_ISA::simd {

#if DDPM_CPU_ISA_AVX512
using vf = __m512;
using vi = __m512i;
inline constexpr int kLanes = 16;
// 8 x 32 tiles: 16 of the 32 registers accumulate; 8 divides the trainer's
// 64-row blocks and the sampler's 48-point tiles, so there is no ragged tile.
inline constexpr int kTileM = 8;
inline vf load(const float* p) { return _mm512_loadu_ps(p); }
inline void store(float* p, vf v) { _mm512_storeu_ps(p, v); }
inline vf set1(float x) { return _mm512_set1_ps(x); }
inline vf zero() { return _mm512_setzero_ps(); }
inline vf add(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
inline vf mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline vf min(vf a, vf b) { return _mm512_min_ps(a, b); }
inline vf max(vf a, vf b) { return _mm512_max_ps(a, b); }
inline vf fmadd(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }    // a b + c
inline vf fnmadd(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a b
inline vf round_nearest(vf x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline vi to_int(vf x) { return _mm512_cvtps_epi32(x); }
inline vi add_i(vi a, int b) { return _mm512_add_epi32(a, _mm512_set1_epi32(b)); }
inline vi sub_i(int a, vi b) { return _mm512_sub_epi32(_mm512_set1_epi32(a), b); }
inline vi shl_i(vi a, int s) { return _mm512_slli_epi32(a, s); }
inline vi bits(vf x) { return _mm512_castps_si512(x); }
inline vf floats(vi x) { return _mm512_castsi512_ps(x); }
inline vi and_i(vi a, int b) { return _mm512_and_si512(a, _mm512_set1_epi32(b)); }
inline vf xor_bits(vf a, vi b) { return floats(_mm512_xor_si512(bits(a), b)); }
// a where q's lane is zero, b elsewhere
inline vf select_zero(vi q, vf a, vf b) { return _mm512_mask_blend_ps(_mm512_test_epi32_mask(q, q), a, b); }
#else
using vf = __m256;
using vi = __m256i;
inline constexpr int kLanes = 8;
inline constexpr int kTileM = 6;  // 6 x 16 tiles: 12 accumulators + 2 B + 1 A of the 16 registers
inline vf load(const float* p) { return _mm256_loadu_ps(p); }
inline void store(float* p, vf v) { _mm256_storeu_ps(p, v); }
inline vf set1(float x) { return _mm256_set1_ps(x); }
inline vf zero() { return _mm256_setzero_ps(); }
inline vf add(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
inline vf mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline vf min(vf a, vf b) { return _mm256_min_ps(a, b); }
inline vf max(vf a, vf b) { return _mm256_max_ps(a, b); }
inline vf fmadd(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline vf fnmadd(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
inline vf round_nearest(vf x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline vi to_int(vf x) { return _mm256_cvtps_epi32(x); }
inline vi add_i(vi a, int b) { return _mm256_add_epi32(a, _mm256_set1_epi32(b)); }
inline vi sub_i(int a, vi b) { return _mm256_sub_epi32(_mm256_set1_epi32(a), b); }
inline vi shl_i(vi a, int s) { return _mm256_slli_epi32(a, s); }
inline vi bits(vf x) { return _mm256_castps_si256(x); }
inline vf floats(vi x) { return _mm256_castsi256_ps(x); }
inline vi and_i(vi a, int b) { return _mm256_and_si256(a, _mm256_set1_epi32(b)); }
inline vf xor_bits(vf a, vi b) { return floats(_mm256_xor_si256(bits(a), b)); }
inline vf select_zero(vi q, vf a, vf b) {
  return _mm256_blendv_ps(b, a, floats(_mm256_cmpeq_epi32(q, _mm256_setzero_si256())));
}
#endif
inline constexpr int kTileN = 2 * kLanes;  // columns of C per micro-kernel: two registers

// exp(x) for x in [-87, 88]: 2^n * p(r), x = n ln2 + r, |r| <= ln2 / 2, p a degree-6
// Taylor polynomial (relative error below 2e-7 on that interval). Only IEEE
// operations, so both builds give the same bits on every CPU.
inline vf exp(vf x) {
  x = max(min(x, set1(88.3f)), set1(-87.3f));
  const vf n = round_nearest(mul(x, set1(1.44269504088896341f)));
  vf r = fnmadd(n, set1(0.693359375f), x);  // ln2 split hi + lo
  r = fnmadd(n, set1(-2.12194440e-4f), r);
  vf p = set1(1.f / 720.f);
  p = fmadd(p, r, set1(1.f / 120.f));
  p = fmadd(p, r, set1(1.f / 24.f));
  p = fmadd(p, r, set1(1.f / 6.f));
  p = fmadd(p, r, set1(0.5f));
  p = fmadd(p, r, set1(1.f));
  p = fmadd(p, r, set1(1.f));
  return mul(p, floats(shl_i(add_i(to_int(n), 127), 23)));
}

// 1 / d for d in [1, 2^120]: the exponent-flipping
// estimate 0x7EF311C3 - bits(d) (relative error below 1/8), then three Newton
// steps r' = r (2 - d r), each squaring the error: 2^-3, 2^-6, 2^-12, 2^-24.
// Not the hardware's rcp estimate, whose bits differ between AVX2's 12-bit
// and AVX-512's 14-bit tables and between vendors: this gives the same bits
// everywhere.
inline vf reciprocal(vf d) {
  vf r = floats(sub_i(0x7EF311C3, bits(d)));
  r = mul(r, fnmadd(d, r, set1(2.f)));
  r = mul(r, fnmadd(d, r, set1(2.f)));
  return mul(r, fnmadd(d, r, set1(2.f)));
}

// sigmoid(z) = 1 / (1 + exp(-z)), with -z capped at 80 so the reciprocal's
// estimate stays a normal number (below z = -80, silu(z) is under 1e-33 anyway).
inline vf sigmoid(vf z) { return reciprocal(add(set1(1.f), exp(min(sub(zero(), z), set1(80.f))))); }

// silu(z) = z sigmoid(z), and silu'(z) = s (1 + z (1 - s)) beside it.
inline vf silu(vf z) { return mul(z, sigmoid(z)); }
inline vf silu_and_grad(vf z, vf& grad) {
  const vf s = sigmoid(z), one = set1(1.f);
  grad = mul(s, fmadd(z, sub(one, s), one));
  return mul(z, s);
}

// sin(x) and cos(x) for |x| < 2^15 (the x-encoding's arguments reach a few
// hundred): x = n pi/2 + r with pi/2 split in three (the first two parts have
// so few bits that n times them is exact), |r| <= pi/4, then Cephes' minimax
// polynomials for sin and cos on that interval (errors of a few 1e-8), swapped
// and negated by the quadrant n mod 4. Only IEEE operations, so both builds
// give the same bits on every CPU.
inline void sincos(vf x, vf& sin_out, vf& cos_out) {
  const vf n = round_nearest(mul(x, set1(0.636619772367581343f)));  // 2 / pi
  vf r = fnmadd(n, set1(1.5703125f), x);
  r = fnmadd(n, set1(4.837512969970703125e-4f), r);
  r = fnmadd(n, set1(7.54978995489188216e-8f), r);
  const vf r2 = mul(r, r);
  vf ps = set1(-1.9515295891e-4f);
  ps = fmadd(ps, r2, set1(8.3321608736e-3f));
  ps = fmadd(ps, r2, set1(-1.6666654611e-1f));
  const vf s = fmadd(mul(ps, r2), r, r);  // r + r^3 p(r^2)
  vf pc = set1(2.443315711809948e-5f);
  pc = fmadd(pc, r2, set1(-1.388731625493765e-3f));
  pc = fmadd(pc, r2, set1(4.166664568298827e-2f));
  const vf c = fmadd(mul(pc, r2), r2, fnmadd(set1(0.5f), r2, set1(1.f)));  // 1 - r^2/2 + r^4 q(r^2)
  // Quadrant q: (sin, cos) = (s, c), (c, -s), (-s, -c), (-c, s) for q = 0..3.
  const vi q = to_int(n);
  const vi odd = and_i(q, 1);
  const vf sw_s = select_zero(odd, s, c), sw_c = select_zero(odd, c, s);
  sin_out = xor_bits(sw_s, shl_i(and_i(q, 2), 30));
  cos_out = xor_bits(sw_c, shl_i(and_i(add_i(q, 1), 2), 30));
}

// The sum of eight lanes, as a fixed tree: halves added until one lane is left.
inline float hsum8(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 h = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps(h, h, 1)));
}

// The A operand in one of its two layouts: row-major, A(r, k) = data[r * ld + k]
// (activations times W^T), or column-major, A(r, k) = data[k * ld + r] (dZ^T
// times activations, for weight gradients). The layout is a compile-time
// choice: with a run-time stride the compiler cannot keep the row addresses in
// registers, and the kernel loses half its rate.
enum class Layout { kRowMajor, kColMajor };

template <Layout L>
struct MatA {
  const float* data;
  int64_t ld;
};

// MR x kTileN block of C = A B for rows m0..m0+MR and columns n0..n0+kTileN,
// handed to epi(row, col, kLanes values) twice per row. B is row-major [K][ldb].
// Each C element is the k-ordered FMA chain from zero, whatever MR and the
// vector width are, so a row's result never depends on which other rows share
// its tile, and the AVX2 and AVX-512 builds compute the same products.
template <int MR, Layout L, class Epilogue>
inline void micro_kernel(MatA<L> A, int m0, const float* B, int64_t ldb, int K, int n0, Epilogue& epi) {
  // Every loop over r is unrolled: one that is not makes GCC keep acc in
  // memory and store every accumulator on every k (half the rate).
  vf acc[MR][2];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = zero();
  const float* a = L == Layout::kRowMajor ? A.data + int64_t(m0) * A.ld : A.data + m0;
  for (int k = 0; k < K; ++k) {
    const float* b = B + int64_t(k) * ldb + n0;
    const vf b0 = load(b);
    const vf b1 = load(b + kLanes);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const float* ark = L == Layout::kRowMajor ? a + int64_t(r) * A.ld + k : a + int64_t(k) * A.ld + r;
      const vf av = set1(*ark);
      acc[r][0] = fmadd(av, b0, acc[r][0]);
      acc[r][1] = fmadd(av, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    epi(m0 + r, n0, acc[r][0]);
    epi(m0 + r, n0 + kLanes, acc[r][1]);
  }
}

// The last rows = M mod kTileM of a column block, by a kernel of exactly that height.
template <int MR, Layout L, class Epilogue>
inline void ragged_tile(int rows, MatA<L> A, int m0, const float* B, int64_t ldb, int K, int n0, Epilogue& epi) {
  if constexpr (MR > 0) {
    if (rows == MR) micro_kernel<MR>(A, m0, B, ldb, K, n0, epi);
    else ragged_tile<MR - 1>(rows, A, m0, B, ldb, K, n0, epi);
  }
}

// C[M][N] = A[M][K] B[K][N] through micro-kernels; N a multiple of kTileN.
// Column blocks outermost so a K x kTileN panel of B stays in L1 across row tiles.
template <Layout L, class Epilogue>
inline void gemm(int M, int N, int K, MatA<L> A, const float* B, int64_t ldb, Epilogue&& epi) {
  for (int n0 = 0; n0 < N; n0 += kTileN) {
    int m0 = 0;
    for (; m0 + kTileM <= M; m0 += kTileM) micro_kernel<kTileM>(A, m0, B, ldb, K, n0, epi);
    ragged_tile<kTileM - 1>(M - m0, A, m0, B, ldb, K, n0, epi);
  }
}


#if DDPM_CPU_ISA_AVX512
// ---- bf16 products (AVX512_BF16; only where the CPU has it) ----
// A bf16 operand is stored as 32-bit words, each the pair (v[2j], v[2j + 1])
// along k, low half first: vdpbf16ps multiplies pairs and adds both products
// to an fp32 accumulator, acc += a0 b0 + a1 b1, so K = 128 takes 64 steps.

// Rounds `count` floats (a multiple of 32) to bf16, nearest even, into count / 2 words.
inline void to_bf16(int64_t count, const float* x, uint32_t* pairs) {
  for (int64_t i = 0; i < count; i += 32) {
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
    _mm512_storeu_si512(pairs + i / 2, (__m512i)v);
  }
}

// MR x 32 block of C = A B, A: bf16 pairs [rows][lda words], B: bf16 pairs
// [Kp][ldb words] (word (kp, n) holds B[2 kp][n] and B[2 kp + 1][n]).
template <int MR, class Epilogue>
inline void micro_kernel_bf16(const uint32_t* A, int64_t lda, int m0, const uint32_t* B, int64_t ldb, int Kp, int n0,
                              Epilogue& epi) {
  vf acc[MR][2];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = zero();
  const uint32_t* a = A + int64_t(m0) * lda;
  for (int kp = 0; kp < Kp; ++kp) {
    const uint32_t* b = B + int64_t(kp) * ldb + n0;
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + kLanes);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(int(a[int64_t(r) * lda + kp]));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    epi(m0 + r, n0, acc[r][0]);
    epi(m0 + r, n0 + kLanes, acc[r][1]);
  }
}

template <int MR, class Epilogue>
inline void ragged_tile_bf16(int rows, const uint32_t* A, int64_t lda, int m0, const uint32_t* B, int64_t ldb, int Kp,
                             int n0, Epilogue& epi) {
  if constexpr (MR > 0) {
    if (rows == MR) micro_kernel_bf16<MR>(A, lda, m0, B, ldb, Kp, n0, epi);
    else ragged_tile_bf16<MR - 1>(rows, A, lda, m0, B, ldb, Kp, n0, epi);
  }
}

// C[M][N] = A[M][2 Kp] B[2 Kp][N] in bf16 with fp32 sums; N a multiple of 32.
template <class Epilogue>
inline void gemm_bf16(int M, int N, int Kp, const uint32_t* A, int64_t lda, const uint32_t* B, int64_t ldb,
                      Epilogue&& epi) {
  for (int n0 = 0; n0 < N; n0 += kTileN) {
    int m0 = 0;
    for (; m0 + kTileM <= M; m0 += kTileM) micro_kernel_bf16<kTileM>(A, lda, m0, B, ldb, Kp, n0, epi);
    ragged_tile_bf16<kTileM - 1>(M - m0, A, lda, m0, B, ldb, Kp, n0, epi);
  }
}
#endif

}  // namespace ddpm::cpu::DDPM_CPU_ISA::simd
