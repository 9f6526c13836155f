// The likelihood on the CPU (ddpm/likelihood.hpp): the bound's T evaluations
// per point and the probability-flow ODE's stages, tile by tile through the
// samplers' network evaluator (tile_net.hpp), as sample.cpp runs its chains.
// Compiled once per instruction set (isa_target.hpp).
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <vector>

#include "ddpm/error.hpp"
#include "ddpm/likelihood.hpp"
#include "host/cpu/isa_backend.hpp"
#include "host/cpu/likelihood_loops.hpp"
#include "host/cpu/isa_target.hpp"

DDPM_CPU_ISA_BEGIN
#include "host/cpu/layers.hpp"
#include "host/cpu/tile_net.hpp"

namespace ddpm::cpu::DDPM_CPU_ISA {

void eps_jacobian(const float* params, const float* x, float tau, int n, float* eps, float* jac,
                  const ModelConfig& model) {
  validate_model(model);
  const SamplerWeights weights(model.net(), params, CpuPrecision::kFp32);
  float et[kHidden];
  layer0_time_term(model.net(), params, tau, et);
  TileNet net(params, model, nullptr, weights, CpuPrecision::kFp32);
  for (int p0 = 0; p0 < n; p0 += kTilePoints) {
    const int m = std::min(kTilePoints, n - p0);
    net.eps_jacobian(m, et, x + 2 * p0, eps + 2 * p0, jac + 4 * p0);
  }
}

// The bound's Net over the backend's evaluator.
struct VlbNet {
  TileNet& net;
  void eps(int n, int t, const float* x, float* out) { net.eps(n, t, x, out); }
};

// The RK4 table's Net: stage k's time terms are row k of e.
struct OdeNet {
  TileNet& net;
  const float* e;
  void eps_jacobian(int n, int stage, const float* x, float* eps, float* jac) {
    net.eps_jacobian(n, e + std::size_t(stage) * kHidden, x, eps, jac);
  }
};

// The adaptive integrator's Field: one point at a real sigma, its time terms computed per evaluation.
struct PointField {
  TileNet& net;
  const Schedule& sched;
  const NetLayout& layout;
  const float* params;
  void eval(double sigma, const float x[2], float eps[2], float& div) {
    float et[kHidden], jac[4];
    layer0_time_term(layout, params, float(timestep_of_sigma(sched, sigma)), et);
    net.eps_jacobian(1, et, x, eps, jac);
    div = jac[0] + jac[3];
  }
};

static_assert(kTilePoints == kLikelihoodTile);

void vlb_sums(const Schedule& sched, const float* params, const VlbTable& table, uint64_t seed, int64_t first,
              int64_t count, const float* x0, VlbSums* out, const ModelConfig& model) {
  if (first < 0 || count < 0) throw Error("likelihood: negative range");
  if (int(table.terms.size()) != sched.T + 1) throw Error("likelihood: the bound's table is not the schedule's");
  validate_model(model);
  const std::vector<float> e = layer0_time_terms(model.net(), params, sched.T);
  const SamplerWeights weights(model.net(), params, CpuPrecision::kFp32);
  const int64_t tiles = (count + kTilePoints - 1) / kTilePoints;
#pragma omp parallel
  {
    TileNet net(params, model, e.data(), weights, CpuPrecision::kFp32);
    VlbNet vlb{net};
#pragma omp for schedule(dynamic)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t p0 = tile * kTilePoints;
      vlb_tile(vlb, table, sched.T, seed, uint64_t(first + p0), int(std::min<int64_t>(kTilePoints, count - p0)),
               x0 + 2 * p0, out + p0);
    }
  }
}

void ode_end_states(const float* params, const OdeTable& table, int64_t count, const float* x0, float* out,
                    const ModelConfig& model) {
  if (count < 0) throw Error("likelihood: negative range");
  validate_model(model);
  const std::vector<float> e = ode_time_terms(model.net(), params, table);
  const SamplerWeights weights(model.net(), params, CpuPrecision::kFp32);
  const int64_t tiles = (count + kTilePoints - 1) / kTilePoints;
#pragma omp parallel
  {
    TileNet net(params, model, nullptr, weights, CpuPrecision::kFp32);
    OdeNet ode{net, e.data()};
#pragma omp for schedule(dynamic)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t p0 = tile * kTilePoints;
      ode_tile(ode, table, int(std::min<int64_t>(kTilePoints, count - p0)), x0 + 2 * p0, out + 3 * p0);
    }
  }
}

void ode_end_states_adaptive(const Schedule& sched, const float* params, int64_t count, const float* x0, double rtol,
                             double atol, float* out, int64_t* evals, const ModelConfig& model) {
  if (count < 0) throw Error("likelihood: negative range");
  // Float evaluations carry ~1e-7 of noise: below 1e-9 the error estimate
  // would be noise and the step would shrink without end.
  if (!(rtol >= 1e-9 && rtol <= 1) || !(atol >= 1e-9 && atol <= 1))
    throw Error("likelihood: tolerances rtol " + schedule_detail::number(rtol) + ", atol " +
                schedule_detail::number(atol) + " not in 1e-9..1");
  validate_model(model);
  const SamplerWeights weights(model.net(), params, CpuPrecision::kFp32);
  const double sigma_T = schedule_sigma(sched, sched.T);
  std::atomic<bool> stalled{false};  // no exception may leave the parallel region
#pragma omp parallel
  {
    TileNet net(params, model, nullptr, weights, CpuPrecision::kFp32);
    PointField field{net, sched, model.net(), params};
#pragma omp for schedule(dynamic, 4)
    for (int64_t p = 0; p < count; ++p) {
      const AdaptiveResult r = ode_adaptive_point(field, sigma_T, x0 + 2 * p, rtol, atol);
      out[3 * p] = r.y[0];
      out[3 * p + 1] = r.y[1];
      out[3 * p + 2] = r.l;
      if (evals) evals[p] = r.evals;
      if (r.stalled) stalled = true;
    }
  }
  if (stalled)
    throw Error("likelihood: the adaptive ODE did not finish (step below 1e-12 or 100,000 steps) with rtol " +
                schedule_detail::number(rtol) + ", atol " + schedule_detail::number(atol));
}

}  // namespace ddpm::cpu::DDPM_CPU_ISA

DDPM_CPU_ISA_END
