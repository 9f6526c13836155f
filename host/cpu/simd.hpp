// AVX2 building blocks of the CPU backend: a register-blocked matrix product
// with a fused epilogue, and a vectorized exp for SiLU. Internal header.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace ddpm::cpu::simd {

inline constexpr int kLanes = 8;    // floats per __m256
inline constexpr int kTileN = 16;   // columns of C per micro-kernel (two registers)
inline constexpr int kTileM = 6;    // rows of C per micro-kernel: 12 accumulators + 2 B + 1 A registers

// exp(x) for x in [-87, 88]: 2^n * p(r), x = n ln2 + r, |r| <= ln2 / 2, p a degree-6
// Taylor polynomial (relative error below 2e-7 on that interval).
inline __m256 exp(__m256 x) {
  x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3f)), _mm256_set1_ps(-87.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);  // ln2 split hi + lo
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.f / 720.f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 120.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 24.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 6.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  const __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
}

// 1 / d for d >= 1: the 12-bit hardware estimate refined by one Newton step,
// r' = r (2 - d r), to about 2^-22 relative -- a quarter of a divide's cost.
inline __m256 reciprocal(__m256 d) {
  const __m256 r = _mm256_rcp_ps(d);
  return _mm256_mul_ps(r, _mm256_fnmadd_ps(d, r, _mm256_set1_ps(2.f)));
}

// sigmoid(z) = 1 / (1 + exp(-z))
inline __m256 sigmoid(__m256 z) {
  return reciprocal(_mm256_add_ps(_mm256_set1_ps(1.f), exp(_mm256_sub_ps(_mm256_setzero_ps(), z))));
}

inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 h = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps(h, h, 1)));
}

// The A operand in one of its two layouts: row-major, A(r, k) = data[r * ld + k]
// (activations times W^T), or column-major, A(r, k) = data[k * ld + r] (dZ^T
// times activations, for weight gradients). The layout is a compile-time
// choice: with a run-time stride the compiler cannot keep the six row
// addresses in registers, and the kernel loses half its rate.
enum class Layout { kRowMajor, kColMajor };

template <Layout L>
struct MatA {
  const float* data;
  int64_t ld;
};

// MR x 16 block of C = A B for rows m0..m0+MR and columns n0..n0+16, handed
// to epi(row, col, 8 values) twice per row. B is row-major [K][ldb]. Each C
// element is the k-ordered FMA chain from zero, whatever MR is, so a row's
// result never depends on which other rows share its tile.
template <int MR, Layout L, class Epilogue>
inline void micro_kernel(MatA<L> A, int m0, const float* B, int64_t ldb, int K, int n0, Epilogue& epi) {
  // Every loop over r is unrolled: one that is not makes GCC keep acc in
  // memory and store all twelve accumulators on every k (half the rate).
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  const float* a = L == Layout::kRowMajor ? A.data + int64_t(m0) * A.ld : A.data + m0;
  for (int k = 0; k < K; ++k) {
    const float* b = B + int64_t(k) * ldb + n0;
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + kLanes);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const float* ark = L == Layout::kRowMajor ? a + int64_t(r) * A.ld + k : a + int64_t(k) * A.ld + r;
      const __m256 av = _mm256_broadcast_ss(ark);
      acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    epi(m0 + r, n0, acc[r][0]);
    epi(m0 + r, n0 + kLanes, acc[r][1]);
  }
}

// C[M][N] = A[M][K] B[K][N] through micro-kernels; N a multiple of 16.
// Column blocks outermost so a K x 16 panel of B stays in L1 across row tiles.
template <Layout L, class Epilogue>
inline void gemm(int M, int N, int K, MatA<L> A, const float* B, int64_t ldb, Epilogue&& epi) {
  for (int n0 = 0; n0 < N; n0 += kTileN) {
    int m0 = 0;
    for (; m0 + kTileM <= M; m0 += kTileM) micro_kernel<kTileM>(A, m0, B, ldb, K, n0, epi);
    switch (M - m0) {
      case 5: micro_kernel<5>(A, m0, B, ldb, K, n0, epi); break;
      case 4: micro_kernel<4>(A, m0, B, ldb, K, n0, epi); break;
      case 3: micro_kernel<3>(A, m0, B, ldb, K, n0, epi); break;
      case 2: micro_kernel<2>(A, m0, B, ldb, K, n0, epi); break;
      case 1: micro_kernel<1>(A, m0, B, ldb, K, n0, epi); break;
      default: break;
    }
  }
}

}  // namespace ddpm::cpu::simd
