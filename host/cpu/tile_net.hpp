// The network evaluator of the CPU backend's chains: eps_theta for one tile
// of points at a time, in per-thread buffers, and with forward-mode tangents
// its Jacobian in x. The samplers (sample.cpp) and the likelihood
// (likelihood.cpp) run their tables through it. Compiled once per instruction
// set: include it after layers.hpp, inside DDPM_CPU_ISA_BEGIN.
#pragma once

#include <array>
#include <vector>

#include "ddpm/math.hpp"
#include "host/cpu/mlp.hpp"

namespace ddpm::cpu::DDPM_CPU_ISA {

namespace {

using simd::vf;

constexpr int kTilePoints = 48;  // whole micro-kernel tiles in both builds (6 and 8 rows)

// h1 = silu(z), z = x0 W0[:, 0] + x1 W0[:, 1] + e[t], for n points (the seed's
// model); with kTangents also g1 = silu'(z) and the tangents of h1 along x_0
// and x_1, t_j = g1 W0[:, j].
template <bool kTangents = false>
void layer0_silu(int n, const float* x, const float* w0c0, const float* w0c1, const float* et, float* h1,
                 float* g1 = nullptr, float* t0 = nullptr, float* t1 = nullptr) {
  for (int i = 0; i < n; ++i) {
    const vf x0 = simd::set1(x[2 * i]), x1 = simd::set1(x[2 * i + 1]);
    for (int c = 0; c < kHidden; c += simd::kLanes) {
      const vf z = simd::fmadd(x0, simd::load(w0c0 + c), simd::fmadd(x1, simd::load(w0c1 + c), simd::load(et + c)));
      const std::size_t at = std::size_t(i) * kHidden + c;
      if constexpr (kTangents) {
        vf g;
        simd::store(h1 + at, simd::silu_and_grad(z, g));
        simd::store(g1 + at, g);
        simd::store(t0 + at, simd::mul(g, simd::load(w0c0 + c)));
        simd::store(t1 + at, simd::mul(g, simd::load(w0c1 + c)));
      } else {
        simd::store(h1 + at, simd::silu(z));
      }
    }
  }
}

// The weights as the sampler reads them: W^T in fp32, and for bf16 the hidden
// layers packed in pairs (layers.hpp).
struct SamplerWeights {
  TransposedWeights wt;
  std::vector<uint32_t> w1_bf16, w2_bf16;
  SamplerWeights(const NetLayout& net, const float* params, CpuPrecision precision) : wt(net) {
    wt.refresh(params);
#if DDPM_CPU_ISA_AVX512
    if (precision == CpuPrecision::kBf16) {
      w1_bf16.resize(std::size_t(kHidden) * kHidden / 2);
      w2_bf16.resize(w1_bf16.size());
      pack_weight_bf16(params + net.layers[1].weight, w1_bf16.data());
      pack_weight_bf16(params + net.layers[2].weight, w2_bf16.data());
    }
#else
    (void)precision;
#endif
  }
};

// eps_theta(x, t) for one tile of n <= kTilePoints points, in per-thread
// buffers; eps_jacobian also carries the tangents along x_0 and x_1.
struct TileNet {
  const float* params;
  const ModelConfig& model;
  const std::array<LayerShape, kNumLayers>& L;
  const float* e;  // layer 0's time terms, [T + 1][128] (may be null for eps_at and eps_jacobian alone)
  const SamplerWeights& w;
  CpuPrecision precision;
  std::vector<float> ax;  // the x encoding of a tile, [kTilePoints][128] (sinusoidal only)
  std::vector<float> h1, h2, h3;
  std::vector<uint32_t> a_bf16;  // a hidden layer's input in bf16 pairs
  // Forward mode (eps_jacobian): silu' of each hidden layer, two tangents per layer, the
  // encoding's tangents; allocated on the first call.
  std::vector<float> g1, g2, g3, tan[2][3], ax_tan[2];

  TileNet(const float* params, const ModelConfig& model, const float* e, const SamplerWeights& w,
          CpuPrecision precision)
      : params(params), model(model), L(model.net().layers), e(e), w(w), precision(precision),
        ax(model.x_embedding == XEmbedding::kSinusoidal ? std::size_t(kTilePoints) * kXEmbInputs : 0),
        h1(std::size_t(kTilePoints) * kHidden), h2(h1.size()), h3(h1.size()),
        a_bf16(precision == CpuPrecision::kBf16 ? h1.size() / 2 : 0) {}

  void eps(int n, int t, const float* x, float* out) { eps_at(n, e + std::size_t(t) * kHidden, x, out); }

  // The same with layer 0's time term given (et: [128], W0[:, x part:] emb(t) + b0).
  void eps_at(int n, const float* et, const float* x, float* out) {
    if (model.x_embedding == XEmbedding::kSinusoidal) {
      // Layer 0 is a K = 128 product over the encoding, the time term its bias:
      // h1 = silu(emb_x(x) W0[:, :128]^T + e[t]).
      x_embedding_rows(n, x, model.x_scale, ax.data(), kXEmbInputs);
      linear_silu(n, ax.data(), kXEmbInputs, kXEmbInputs, w.wt.wt0.data(), et, h1.data(), nullptr);
    } else {
      const float* w0c0 = w.wt.wt0.data();            // W0[:, 0]: row 0 of W0^T
      const float* w0c1 = w.wt.wt0.data() + kHidden;  // W0[:, 1]
      layer0_silu(n, x, w0c0, w0c1, et, h1.data());
    }
    const float* w3 = params + L[3].weight;
    const float* b3 = params + L[3].bias;
#if DDPM_CPU_ISA_AVX512
    if (precision == CpuPrecision::kBf16) {
      simd::to_bf16(int64_t(n) * kHidden, h1.data(), a_bf16.data());
      linear_silu_bf16(n, a_bf16.data(), w.w1_bf16.data(), params + L[1].bias, h2.data());
      simd::to_bf16(int64_t(n) * kHidden, h2.data(), a_bf16.data());
      linear_silu_bf16(n, a_bf16.data(), w.w2_bf16.data(), params + L[2].bias, h3.data());
      output_layer(n, h3.data(), w3, b3, out);
      return;
    }
#endif
    linear_silu(n, h1.data(), kHidden, kHidden, w.wt.wt1.data(), params + L[1].bias, h2.data(), nullptr);
    linear_silu(n, h2.data(), kHidden, kHidden, w.wt.wt2.data(), params + L[2].bias, h3.data(), nullptr);
    output_layer(n, h3.data(), w3, b3, out);
  }

  // eps_theta(x, .) and its Jacobian (jac[4 i + 2 a + b] = d eps_a / d x_b) in
  // fp32, forward mode: beside each layer's h = silu(z) its tangents along x_b,
  // dh = silu'(z) (dh_prev W^T), which is backward_hidden's product with W^T
  // for W; the output layer's tangent is the Jacobian's column b.
  void eps_jacobian(int n, const float* et, const float* x, float* out, float* jac) {
    if (g1.empty()) {
      for (auto* v : {&g1, &g2, &g3}) v->resize(h1.size());
      for (auto& dir : tan)
        for (auto& v : dir) v.resize(h1.size());
      if (model.x_embedding == XEmbedding::kSinusoidal)
        for (auto& v : ax_tan) v.assign(std::size_t(kTilePoints) * kXEmbInputs, 0.f);
    }
    if (model.x_embedding == XEmbedding::kSinusoidal) {
      x_embedding_rows(n, x, model.x_scale, ax.data(), kXEmbInputs);
      linear_silu(n, ax.data(), kXEmbInputs, kXEmbInputs, w.wt.wt0.data(), et, h1.data(), g1.data());
      // d/dx_b of emb_x(x_b): s f_j cos(a_j) for the sine half, -s f_j sin(a_j) for the
      // cosine half (a_j = s x_b f_j), read back from the encoding; 0 in x_{1-b}'s columns.
      static const XEmbeddingFrequencies freq = x_embedding_frequencies();
      for (int b = 0; b < kDataDim; ++b)
        for (int i = 0; i < n; ++i) {
          const float* row = ax.data() + std::size_t(i) * kXEmbInputs + b * kEmbDim;
          float* d = ax_tan[b].data() + std::size_t(i) * kXEmbInputs + b * kEmbDim;
          for (int j = 0; j < kEmbHalf; ++j) {
            const float sf = model.x_scale * freq.freq[j];
            d[j] = sf * row[kEmbHalf + j];
            d[kEmbHalf + j] = -sf * row[j];
          }
        }
      for (int b = 0; b < kDataDim; ++b)
        backward_hidden(n, ax_tan[b].data(), w.wt.wt0.data(), g1.data(), tan[b][0].data());
    } else {
      layer0_silu<true>(n, x, w.wt.wt0.data(), w.wt.wt0.data() + kHidden, et, h1.data(), g1.data(),
                        tan[0][0].data(), tan[1][0].data());
    }
    linear_silu(n, h1.data(), kHidden, kHidden, w.wt.wt1.data(), params + L[1].bias, h2.data(), g2.data());
    linear_silu(n, h2.data(), kHidden, kHidden, w.wt.wt2.data(), params + L[2].bias, h3.data(), g3.data());
    for (int b = 0; b < kDataDim; ++b) {
      backward_hidden(n, tan[b][0].data(), w.wt.wt1.data(), g2.data(), tan[b][1].data());
      backward_hidden(n, tan[b][1].data(), w.wt.wt2.data(), g3.data(), tan[b][2].data());
    }
    const float* w3 = params + L[3].weight;
    output_layer(n, h3.data(), w3, params + L[3].bias, out);
    static constexpr float kNoBias[2] = {0.f, 0.f};
    float col[2 * kTilePoints];
    for (int b = 0; b < kDataDim; ++b) {
      output_layer(n, tan[b][2].data(), w3, kNoBias, col);
      for (int i = 0; i < n; ++i) {
        jac[4 * i + b] = col[2 * i];          // d eps_0 / d x_b
        jac[4 * i + 2 + b] = col[2 * i + 1];  // d eps_1 / d x_b
      }
    }
  }
};

}  // namespace

}  // namespace ddpm::cpu::DDPM_CPU_ISA
