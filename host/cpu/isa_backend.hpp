// The entry points each instruction-set build of the backend provides
// (train.cpp and sample.cpp, compiled per ISA: isa_target.hpp), gathered in one
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
}  // namespace DDPM_CPU_ISA
#endif

}  // namespace ddpm::cpu
