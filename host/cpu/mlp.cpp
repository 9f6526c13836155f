#include "host/cpu/mlp.hpp"

#include <algorithm>

#include "ddpm/math.hpp"
#include "host/cpu/simd.hpp"

namespace ddpm::cpu {

using simd::Layout;
using simd::MatA;

TransposedWeights::TransposedWeights()
    : wt0(std::size_t(kInDim) * kHidden), wt1(std::size_t(kHidden) * kHidden), wt2(std::size_t(kHidden) * kHidden) {}

void TransposedWeights::refresh_row(const float* params, int row) {
  const int layer = row / kHidden, o = row % kHidden;
  const LayerShape& L = kLayers[layer];
  float* wt = layer == 0 ? wt0.data() : layer == 1 ? wt1.data() : wt2.data();
  const float* w = params + L.weight + std::size_t(o) * L.in;
  for (int k = 0; k < L.in; ++k) wt[std::size_t(k) * kHidden + o] = w[k];
}

void TransposedWeights::refresh(const float* params) {
  for (int row = 0; row < kRows; ++row) refresh_row(params, row);
}

std::vector<float> embedding_table(int T) {
  std::vector<float> table(std::size_t(T + 1) * kEmbDim);
  for (int t = 0; t <= T; ++t)
    for (int k = 0; k < kEmbDim; ++k) table[std::size_t(t) * kEmbDim + k] = timestep_embedding(t, k);
  return table;
}

// The time-dependent part of layer 0 for every step, computed once for all
// points since it depends only on t:  e[t] = W0[:, 2:66] emb(t) + b0.
std::vector<float> layer0_time_terms(const float* params, int T) {
  const std::vector<float> emb = embedding_table(T);
  const float* w = params + kLayer0.weight;
  std::vector<float> e(std::size_t(T + 1) * kHidden);
  for (int t = 1; t <= T; ++t)
    for (int o = 0; o < kHidden; ++o) {
      float s = params[kLayer0.bias + o];
      for (int k = 0; k < kEmbDim; ++k) s += w[std::size_t(o) * kInDim + kDataDim + k] * emb[std::size_t(t) * kEmbDim + k];
      e[std::size_t(t) * kHidden + o] = s;
    }
  return e;
}

void linear_silu(int rows, const float* A, int64_t lda, int in, const float* wt, const float* bias,
                 float* h, float* g) {
  // z = A W^T + b into h, then SiLU in place in a second pass over the cache-hot
  // tile: fusing the exp into the micro-kernel's epilogue bloats it past
  // inlining and halves its rate.
  simd::gemm(rows, kHidden, in, MatA<Layout::kRowMajor>{A, lda}, wt, kHidden, [h, bias](int r, int c, __m256 acc) {
    _mm256_storeu_ps(h + int64_t(r) * kHidden + c, _mm256_add_ps(acc, _mm256_loadu_ps(bias + c)));
  });
  const __m256 one = _mm256_set1_ps(1.f);
  for (int64_t i = 0; i < int64_t(rows) * kHidden; i += simd::kLanes) {
    const __m256 z = _mm256_loadu_ps(h + i);
    const __m256 s = simd::sigmoid(z);
    _mm256_storeu_ps(h + i, _mm256_mul_ps(z, s));
    // silu'(z) = s (1 + z (1 - s))
    if (g) _mm256_storeu_ps(g + i, _mm256_mul_ps(s, _mm256_fmadd_ps(z, _mm256_sub_ps(one, s), one)));
  }
}

void output_layer(int rows, const float* h3, const float* params, float* out) {
  const float* w = params + kLayer3.weight;
  const float* b = params + kLayer3.bias;
  for (int r = 0; r < rows; ++r) {
    const float* h = h3 + int64_t(r) * kHidden;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int k = 0; k < kHidden; k += simd::kLanes) {
      const __m256 hv = _mm256_loadu_ps(h + k);
      a0 = _mm256_fmadd_ps(hv, _mm256_loadu_ps(w + k), a0);
      a1 = _mm256_fmadd_ps(hv, _mm256_loadu_ps(w + kHidden + k), a1);
    }
    out[2 * r] = simd::hsum(a0) + b[0];
    out[2 * r + 1] = simd::hsum(a1) + b[1];
  }
}

void backward_hidden(int rows, const float* dz, const float* w, const float* g_prev, float* dz_prev) {
  simd::gemm(rows, kHidden, kHidden, MatA<Layout::kRowMajor>{dz, kHidden}, w, kHidden, [dz_prev, g_prev](int r, int c, __m256 acc) {
    const int64_t i = int64_t(r) * kHidden + c;
    _mm256_storeu_ps(dz_prev + i, _mm256_mul_ps(acc, _mm256_loadu_ps(g_prev + i)));
  });
}

void backward_output(int rows, const float* dout, const float* params, const float* g3, float* dz3) {
  const float* w = params + kLayer3.weight;
  for (int r = 0; r < rows; ++r) {
    const __m256 d0 = _mm256_set1_ps(dout[2 * r]), d1 = _mm256_set1_ps(dout[2 * r + 1]);
    for (int k = 0; k < kHidden; k += simd::kLanes) {
      const int64_t i = int64_t(r) * kHidden + k;
      const __m256 dh = _mm256_fmadd_ps(d1, _mm256_loadu_ps(w + kHidden + k), _mm256_mul_ps(d0, _mm256_loadu_ps(w + k)));
      _mm256_storeu_ps(dz3 + i, _mm256_mul_ps(dh, _mm256_loadu_ps(g3 + i)));
    }
  }
}

void weight_grad(int n, const float* dz, int out, const float* A, int64_t lda, int in, int o0, int o1,
                 float* dw, float* db) {
  // The batch is summed in blocks of kRowBlock rows, so that the micro-kernel's
  // B panel (kRowBlock x 16 floats) stays in L1 across all row tiles of dW;
  // block sums are added in block order (deterministic).
  constexpr int kRowBlock = 64;
  const int in_tiles = (in + simd::kTileN - 1) / simd::kTileN * simd::kTileN;  // within lda
  for (int r0 = 0; r0 < n; r0 += kRowBlock) {
    const bool first = r0 == 0;
    auto epilogue = [=](int o, int k, __m256 acc) {
      float* d = dw + int64_t(o0 + o) * in + k;
      if (k + simd::kLanes <= in) {
        _mm256_storeu_ps(d, first ? acc : _mm256_add_ps(acc, _mm256_loadu_ps(d)));
      } else {  // the last columns of layer 0's 66 (the rest is padding)
        alignas(32) float v[simd::kLanes];
        _mm256_store_ps(v, acc);
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

}  // namespace ddpm::cpu
