// The samplers on the CPU, tile by tile: each OpenMP task takes kTilePoints
// points through all reverse steps while their activations stay in cache, and
// writes them once at the end. The ancestral sampler (the seed's sample())
// runs all T steps; DDIM, DPM-Solver++(2M) and Heun a few. Whichever, the
// evaluations and their updates come from one table (sample_steps) built
// before the parallel loop, and each point carries x and one more 2-vector.
// Compiled once per instruction set (isa_target.hpp).
#include <algorithm>
#include <array>
#include <vector>

#include "ddpm/error.hpp"
#include "ddpm/math.hpp"
#include "ddpm/rng.hpp"
#include "host/cpu/isa_backend.hpp"
#include "host/cpu/mlp.hpp"
#include "host/cpu/isa_target.hpp"

DDPM_CPU_ISA_BEGIN
#include "host/cpu/layers.hpp"

namespace ddpm::cpu::DDPM_CPU_ISA {

namespace {

using simd::vf;

constexpr int kTilePoints = 48;  // whole micro-kernel tiles in both builds (6 and 8 rows)

// h1 = silu(x0 W0[:, 0] + x1 W0[:, 1] + e[t]) for n points (the seed's model).
void layer0_silu(int n, const float* x, const float* w0c0, const float* w0c1, const float* et, float* h1) {
  for (int i = 0; i < n; ++i) {
    const vf x0 = simd::set1(x[2 * i]), x1 = simd::set1(x[2 * i + 1]);
    for (int c = 0; c < kHidden; c += simd::kLanes) {
      const vf z = simd::fmadd(x0, simd::load(w0c0 + c), simd::fmadd(x1, simd::load(w0c1 + c), simd::load(et + c)));
      simd::store(h1 + std::size_t(i) * kHidden + c, simd::silu(z));
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

// eps_theta(x, t) for one tile of n <= kTilePoints points, in per-thread buffers.
struct TileNet {
  const float* params;
  const ModelConfig& model;
  const std::array<LayerShape, kNumLayers>& L;
  const float* e;  // layer 0's time terms, [T + 1][128]
  const SamplerWeights& w;
  CpuPrecision precision;
  std::vector<float> ax;  // the x encoding of a tile, [kTilePoints][128] (sinusoidal only)
  std::vector<float> h1, h2, h3;
  std::vector<uint32_t> a_bf16;  // a hidden layer's input in bf16 pairs

  TileNet(const float* params, const ModelConfig& model, const float* e, const SamplerWeights& w,
          CpuPrecision precision)
      : params(params), model(model), L(model.net().layers), e(e), w(w), precision(precision),
        ax(model.x_embedding == XEmbedding::kSinusoidal ? std::size_t(kTilePoints) * kXEmbInputs : 0),
        h1(std::size_t(kTilePoints) * kHidden), h2(h1.size()), h3(h1.size()),
        a_bf16(precision == CpuPrecision::kBf16 ? h1.size() / 2 : 0) {}

  void eps(int n, int t, const float* x, float* out) {
    const float* et = e + std::size_t(t) * kHidden;
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
};

}  // namespace

void sample(const Schedule& sched, const float* params, uint64_t seed, int64_t first, int64_t count, float* xy,
            const SamplerConfig& config, CpuPrecision precision, const ModelConfig& model) {
  if (first < 0 || count < 0) throw Error("sample: negative range");
  validate_model(model);
  const std::vector<SampleStep> steps = sample_steps(sched, config);  // validates the configuration
  const std::vector<float> e = layer0_time_terms(model.net(), params, sched.T);
  const SamplerWeights weights(model.net(), params, precision);
  const int64_t tiles = (count + kTilePoints - 1) / kTilePoints;

#pragma omp parallel
  {
    TileNet net(params, model, e.data(), weights, precision);
    float x[2 * kTilePoints], eps[2 * kTilePoints], carried[2 * kTilePoints];
    NormalPairs rng[kTilePoints];
#pragma omp for schedule(dynamic)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t p0 = tile * kTilePoints;
      const int n = int(std::min<int64_t>(kTilePoints, count - p0));
      for (int i = 0; i < n; ++i) {
        philox_init(&rng[i].state, seed, Stream::kSample, uint64_t(first + p0 + i));
        rng[i].have_second_half = false;
        rng[i].next(x[2 * i], x[2 * i + 1]);  // x_T ~ N(0, I)
      }
      std::fill_n(carried, 2 * n, 0.f);
      for (const SampleStep& step : steps) {
        net.eps(n, step.t, x, eps);
        for (int i = 0; i < n; ++i) {
          float z0 = 0.f, z1 = 0.f;
          if (step.noise) rng[i].next(z0, z1);
          x[2 * i] = sample_update(x[2 * i], eps[2 * i], z0, carried[2 * i], step);
          x[2 * i + 1] = sample_update(x[2 * i + 1], eps[2 * i + 1], z1, carried[2 * i + 1], step);
        }
      }
      std::copy_n(x, 2 * n, xy + 2 * p0);
    }
  }
}

}  // namespace ddpm::cpu::DDPM_CPU_ISA

DDPM_CPU_ISA_END
