#include <algorithm>

#include "ddpm/math.hpp"
#include "host/cpu/mlp.hpp"
#include "host/cpu/isa_target.hpp"

DDPM_CPU_ISA_BEGIN
#include "host/cpu/layers.hpp"

namespace ddpm::cpu::DDPM_CPU_ISA {

using simd::kLanes;
using simd::Layout;
using simd::MatA;
using simd::vf;

void linear_silu(int rows, const float* A, int64_t lda, int in, const float* wt, const float* bias,
                 float* h, float* g) {
  // z = A W^T + b into h, then SiLU in place in a second pass over the cache-hot
  // tile: fusing the exp into the micro-kernel's epilogue bloats it past
  // inlining and halves its rate.
  simd::gemm(rows, kHidden, in, MatA<Layout::kRowMajor>{A, lda}, wt, kHidden, [h, bias](int r, int c, vf acc) {
    simd::store(h + int64_t(r) * kHidden + c, simd::add(acc, simd::load(bias + c)));
  });
  for (int64_t i = 0; i < int64_t(rows) * kHidden; i += kLanes) {
    const vf z = simd::load(h + i);
    if (g) {
      vf grad;
      simd::store(h + i, simd::silu_and_grad(z, grad));
      simd::store(g + i, grad);
    } else {
      simd::store(h + i, simd::silu(z));
    }
  }
}

void x_embedding_rows(int rows, const float* x, float scale, float* a, int64_t lda) {
  // The frequencies the GPU drivers hand their kernels too (math.hpp).
  static const XEmbeddingFrequencies freq = x_embedding_frequencies();
  for (int r = 0; r < rows; ++r)
    for (int d = 0; d < kDataDim; ++d) {
      const vf xs = simd::set1(scale * x[2 * r + d]);  // rounded once, as x_embedding_arg
      float* row = a + int64_t(r) * lda + d * kEmbDim;
      for (int j = 0; j < kEmbHalf; j += kLanes) {
        vf s, c;
        simd::sincos(simd::mul(xs, simd::load(freq.freq + j)), s, c);
        simd::store(row + j, s);
        simd::store(row + kEmbHalf + j, c);
      }
    }
}

void output_layer(int rows, const float* h3, const float* w, const float* b, float* out) {
  // Eight lanes in both builds, each summing every eighth product in k order,
  // then the same tree: the one sum whose order would otherwise follow the
  // vector width, so AVX2 and AVX-512 give the same bytes. (Two outputs per
  // row: a wider vector would not pay here.)
  for (int r = 0; r < rows; ++r) {
    const float* h = h3 + int64_t(r) * kHidden;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int k = 0; k < kHidden; k += 8) {
      const __m256 hv = _mm256_loadu_ps(h + k);
      a0 = _mm256_fmadd_ps(hv, _mm256_loadu_ps(w + k), a0);
      a1 = _mm256_fmadd_ps(hv, _mm256_loadu_ps(w + kHidden + k), a1);
    }
    out[2 * r] = simd::hsum8(a0) + b[0];
    out[2 * r + 1] = simd::hsum8(a1) + b[1];
  }
}

void backward_hidden(int rows, const float* dz, const float* w, const float* g_prev, float* dz_prev) {
  simd::gemm(rows, kHidden, kHidden, MatA<Layout::kRowMajor>{dz, kHidden}, w, kHidden, [dz_prev, g_prev](int r, int c, vf acc) {
    const int64_t i = int64_t(r) * kHidden + c;
    simd::store(dz_prev + i, simd::mul(acc, simd::load(g_prev + i)));
  });
}

void backward_output(int rows, const float* dout, const float* w, const float* g3, float* dz3) {
  for (int r = 0; r < rows; ++r) {
    const vf d0 = simd::set1(dout[2 * r]), d1 = simd::set1(dout[2 * r + 1]);
    for (int k = 0; k < kHidden; k += kLanes) {
      const int64_t i = int64_t(r) * kHidden + k;
      const vf dh = simd::fmadd(d1, simd::load(w + kHidden + k), simd::mul(d0, simd::load(w + k)));
      simd::store(dz3 + i, simd::mul(dh, simd::load(g3 + i)));
    }
  }
}

void weight_grad(int n, const float* dz, int out, const float* A, int64_t lda, int in, int o0, int o1,
                 float* dw, float* db) {
  // The batch is summed in blocks of kRowBlock rows, so that the micro-kernel's
  // B panel (kRowBlock x kTileN floats) stays in L1 across all row tiles of dW;
  // block sums are added in block order (deterministic).
  constexpr int kRowBlock = 64;
  const int in_tiles = (in + simd::kTileN - 1) / simd::kTileN * simd::kTileN;  // within lda
  for (int r0 = 0; r0 < n; r0 += kRowBlock) {
    const bool first = r0 == 0;
    auto epilogue = [=](int o, int k, vf acc) {
      float* d = dw + int64_t(o0 + o) * in + k;
      if (k + kLanes <= in) {
        simd::store(d, first ? acc : simd::add(acc, simd::load(d)));
      } else {  // the last columns of layer 0's 66 (the rest is padding)
        alignas(64) float v[kLanes];
        simd::store(v, acc);
        for (int j = 0; k + j < in; ++j) d[j] = first ? v[j] : d[j] + v[j];
      }
    };
    // dW^T rows are dZ's columns: A(o, r) = dz[r * out + o].
    simd::gemm(o1 - o0, in_tiles, std::min(kRowBlock, n - r0), MatA<Layout::kColMajor>{dz + int64_t(r0) * out + o0, out},
               A + int64_t(r0) * lda, lda, epilogue);
  }
  // db[o] = sum_r dZ[r][o], each sum in row order; rows outer so the sums of
  // different o are independent chains rather than one long dependent one.
  std::fill(db + o0, db + o1, 0.f);
  for (int r = 0; r < n; ++r)
    for (int o = o0; o < o1; ++o) db[o] += dz[int64_t(r) * out + o];
}

#if DDPM_CPU_ISA_AVX512
void pack_weight_bf16(const float* w, uint32_t* packed) {
  constexpr int kPairs = kHidden / 2;
  uint32_t row[kPairs];
  for (int o = 0; o < kHidden; ++o) {
    simd::to_bf16(kHidden, w + int64_t(o) * kHidden, row);
    for (int kp = 0; kp < kPairs; ++kp) packed[int64_t(kp) * kHidden + o] = row[kp];
  }
}

void linear_silu_bf16(int rows, const uint32_t* A, const uint32_t* w_packed, const float* bias, float* h) {
  simd::gemm_bf16(rows, kHidden, kHidden / 2, A, kHidden / 2, w_packed, kHidden, [h, bias](int r, int c, vf acc) {
    simd::store(h + int64_t(r) * kHidden + c, simd::add(acc, simd::load(bias + c)));
  });
  for (int64_t i = 0; i < int64_t(rows) * kHidden; i += kLanes) simd::store(h + i, simd::silu(simd::load(h + i)));
}
#endif

}  // namespace ddpm::cpu::DDPM_CPU_ISA

DDPM_CPU_ISA_END
