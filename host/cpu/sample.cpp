// The samplers on the CPU, tile by tile: each OpenMP task takes kTilePoints
// points through all reverse steps while their activations stay in cache, and
// writes them once at the end. The ancestral sampler (the seed's sample())
// runs all T steps; DDIM runs S of them. Either way the steps and their
// coefficients come from one table (sample_steps) built before the parallel loop.
#include <algorithm>

#include "ddpm/error.hpp"
#include "ddpm/math.hpp"
#include "ddpm/rng.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/cpu/mlp.hpp"
#include "host/cpu/simd.hpp"

namespace ddpm::cpu {

namespace {

constexpr int kTilePoints = 48;  // eight 6-row micro-kernel tiles

// h1 = silu(x0 W0[:, 0] + x1 W0[:, 1] + e[t]) for n points.
void layer0_silu(int n, const float* x, const float* w0c0, const float* w0c1, const float* et, float* h1) {
  for (int i = 0; i < n; ++i) {
    const __m256 x0 = _mm256_set1_ps(x[2 * i]), x1 = _mm256_set1_ps(x[2 * i + 1]);
    for (int c = 0; c < kHidden; c += simd::kLanes) {
      const __m256 z = _mm256_fmadd_ps(x0, _mm256_loadu_ps(w0c0 + c),
                                       _mm256_fmadd_ps(x1, _mm256_loadu_ps(w0c1 + c), _mm256_loadu_ps(et + c)));
      _mm256_storeu_ps(h1 + std::size_t(i) * kHidden + c, _mm256_mul_ps(z, simd::sigmoid(z)));
    }
  }
}

// eps_theta(x, t) for one tile of n <= kTilePoints points, in per-thread buffers.
struct TileNet {
  const float* params;
  const float* e;  // layer 0's time terms, [T + 1][128]
  const TransposedWeights& wt;
  std::vector<float> h1, h2, h3;

  TileNet(const float* params, const float* e, const TransposedWeights& wt)
      : params(params), e(e), wt(wt), h1(std::size_t(kTilePoints) * kHidden), h2(h1.size()), h3(h1.size()) {}

  void eps(int n, int t, const float* x, float* out) {
    const float* w0c0 = wt.wt0.data();            // W0[:, 0]: row 0 of W0^T
    const float* w0c1 = wt.wt0.data() + kHidden;  // W0[:, 1]
    layer0_silu(n, x, w0c0, w0c1, e + std::size_t(t) * kHidden, h1.data());
    linear_silu(n, h1.data(), kHidden, kHidden, wt.wt1.data(), params + kLayer1.bias, h2.data(), nullptr);
    linear_silu(n, h2.data(), kHidden, kHidden, wt.wt2.data(), params + kLayer2.bias, h3.data(), nullptr);
    output_layer(n, h3.data(), params, out);
  }
};

}  // namespace

void sample(const Schedule& sched, const float* params, uint64_t seed, int64_t first, int64_t count, float* xy,
            const SamplerConfig& config) {
  if (first < 0 || count < 0) throw Error("sample: negative range");
  const std::vector<SampleStep> steps = sample_steps(sched, config);  // validates the configuration
  const std::vector<float> e = layer0_time_terms(params, sched.T);
  TransposedWeights wt;
  wt.refresh(params);
  const int64_t tiles = (count + kTilePoints - 1) / kTilePoints;

#pragma omp parallel
  {
    TileNet net(params, e.data(), wt);
    float x[2 * kTilePoints], eps[2 * kTilePoints];
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
      for (const SampleStep& step : steps) {
        net.eps(n, step.t, x, eps);
        for (int i = 0; i < n; ++i) {
          float z0 = 0.f, z1 = 0.f;
          if (step.noise) rng[i].next(z0, z1);
          x[2 * i] = sample_update(x[2 * i], eps[2 * i], z0, step);
          x[2 * i + 1] = sample_update(x[2 * i + 1], eps[2 * i + 1], z1, step);
        }
      }
      std::copy_n(x, 2 * n, xy + 2 * p0);
    }
  }
}

}  // namespace ddpm::cpu
