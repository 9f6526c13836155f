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
#include "host/cpu/tile_net.hpp"

namespace ddpm::cpu::DDPM_CPU_ISA {

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
