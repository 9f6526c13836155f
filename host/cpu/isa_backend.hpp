// The entry points each instruction-set build of the backend provides
// (train.cpp, sample.cpp and likelihood.cpp, compiled per ISA: isa_target.hpp), gathered in one
// table per build; cpu_isa.cpp calls through the selected one. Internal header.
#pragma once

#include "host/cpu/cpu_backend.hpp"

namespace ddpm::cpu {

struct IsaBackend {
  void (*train)(const Schedule&, const TrainConfig&, TrainState&, const StepCallback&);
  float (*loss_and_grad)(const Schedule&, const float* params, const float* x0, const float* eps, const int* t,
                         int n, float* grad, const ModelConfig&);
  void (*eps_forward)(const float* params, const float* x, const int* t, int n, float* eps_out, const ModelConfig&);
  void (*sample)(const Schedule&, const float* params, uint64_t seed, int64_t first, int64_t count, float* xy,
                 const SamplerConfig&, CpuPrecision, const ModelConfig&);
  void (*eps_jacobian)(const float* params, const float* x, float tau, int n, float* eps, float* jac,
                       const ModelConfig&);
  void (*vlb_sums)(const Schedule&, const float* params, const VlbTable&, uint64_t seed, int64_t first,
                   int64_t count, const float* x0, VlbSums* out, const ModelConfig&);
  void (*ode_end_states)(const float* params, const OdeTable&, int64_t count, const float* x0, float* out,
                         const ModelConfig&);
  void (*ode_end_states_adaptive)(const Schedule&, const float* params, int64_t count, const float* x0, double rtol,
                                  double atol, float* out, int64_t* evals, const ModelConfig&);
};

namespace avx2 {
extern const IsaBackend kBackend;
}
namespace avx512 {
extern const IsaBackend kBackend;
}

// The table of the instruction set in use (active_cpu_isa()).
const IsaBackend& isa_backend();

#if defined(DDPM_CPU_ISA)
namespace DDPM_CPU_ISA {
void train(const Schedule& sched, const TrainConfig& config, TrainState& state, const StepCallback& on_step);
float loss_and_grad(const Schedule& sched, const float* params, const float* x0, const float* eps, const int* t,
                    int n, float* grad, const ModelConfig& model);
void eps_forward(const float* params, const float* x, const int* t, int n, float* eps_out, const ModelConfig& model);
void sample(const Schedule& sched, const float* params, uint64_t seed, int64_t first, int64_t count, float* xy,
            const SamplerConfig& config, CpuPrecision precision, const ModelConfig& model);
void eps_jacobian(const float* params, const float* x, float tau, int n, float* eps, float* jac,
                  const ModelConfig& model);
void vlb_sums(const Schedule& sched, const float* params, const VlbTable& table, uint64_t seed, int64_t first,
              int64_t count, const float* x0, VlbSums* out, const ModelConfig& model);
void ode_end_states(const float* params, const OdeTable& table, int64_t count, const float* x0, float* out,
                    const ModelConfig& model);
void ode_end_states_adaptive(const Schedule& sched, const float* params, int64_t count, const float* x0, double rtol,
                             double atol, float* out, int64_t* evals, const ModelConfig& model);
}  // namespace DDPM_CPU_ISA
#endif

}  // namespace ddpm::cpu
