// The thin GPU driver of the likelihood's kernels (kernels/likelihood.*):
// uploads the network once, then computes the bound's sums or the ODE's end
// states of any range of points, chunk by chunk (each chunk computing on the
// GPU while the previous one is handed back), with the same arguments and
// results as the CPU backend's cpu::vlb_sums and cpu::ode_end_states (fp32;
// equal to rounding: the device's expf, sincosf and FMA contraction).
//
//   GpuLikelihood lik(params, sched, model);
//   lik.vlb_sums(vlb_table(sched, variance), seed, first, count, x0, sums);
//   lik.ode_end_states(ode_rk4_table(sched, steps), count, x0, end_states);
#pragma once

#include <cstdint>
#include <memory>

#include "ddpm/likelihood.hpp"
#include "ddpm/params.hpp"
#include "ddpm/schedule.hpp"

namespace ddpm::gpu {

class GpuLikelihood {
 public:
  static constexpr int64_t kDefaultChunk = int64_t(1) << 20;  // points per launch

  // params laid out as model.net(), trained on sched. Throws ddpm::Error for a
  // GPU that cannot run the kernels, a bad chunk, or too little GPU memory.
  GpuLikelihood(const float* params, const Schedule& sched, const ModelConfig& model = {},
                int64_t chunk = kDefaultChunk);
  ~GpuLikelihood();
  GpuLikelihood(const GpuLikelihood&) = delete;
  GpuLikelihood& operator=(const GpuLikelihood&) = delete;

  // As cpu::vlb_sums: points [first, first + count) of a held-out set, x0
  // (count x 2) their coordinates, out (count) their sums. Throws ddpm::Error
  // for a negative range or a table of another schedule.
  void vlb_sums(const VlbTable& table, uint64_t seed, int64_t first, int64_t count, const float* x0, VlbSums* out);

  // As cpu::ode_end_states: out (count x 3) = (y_T0, y_T1, l) of each point x0
  // through the RK4 table. The table's time terms are computed and uploaded
  // when it differs from the last call's.
  void ode_end_states(const OdeTable& table, int64_t count, const float* x0, float* out);

 private:
  struct Device;
  std::unique_ptr<Device> d_;
};

}  // namespace ddpm::gpu
