// Which instruction-set build of the backend runs (cpu_backend.hpp), and the
// backend's entry points, which call through it.
#include <atomic>
#include <cstdlib>
#include <string>

#include "ddpm/error.hpp"
#include "host/cpu/isa_backend.hpp"

namespace ddpm::cpu {

namespace {

CpuIsa widest_supported() { return cpu_supports(CpuIsa::kAvx512) ? CpuIsa::kAvx512 : CpuIsa::kAvx2; }

CpuIsa parse(std::string_view name, const char* what) {
  CpuIsa isa;
  if (name == "auto") isa = widest_supported();
  else if (name == "avx2") isa = CpuIsa::kAvx2;
  else if (name == "avx512") isa = CpuIsa::kAvx512;
  else throw Error(std::string(what) + " must be auto, avx2 or avx512, got \"" + std::string(name) + "\"");
  if (!cpu_supports(isa))
    throw Error(std::string(what) + " " + std::string(name) + ": this CPU lacks AVX-512 (F, BW, DQ, VL)");
  return isa;
}

// -1 until the first call decides (from DDPM_CPU_ISA, or the widest).
std::atomic<int> g_isa{-1};

}  // namespace

const char* name_of(CpuIsa isa) { return isa == CpuIsa::kAvx512 ? "avx512" : "avx2"; }

bool cpu_supports(CpuIsa isa) {
  // GCC's checks include the OS's consent (XCR0) to the registers' state.
  if (isa == CpuIsa::kAvx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}

bool cpu_supports_bf16() { return cpu_supports(CpuIsa::kAvx512) && __builtin_cpu_supports("avx512bf16"); }

CpuIsa active_cpu_isa() {
  int isa = g_isa.load(std::memory_order_relaxed);
  if (isa < 0) {
    const char* env = std::getenv("DDPM_CPU_ISA");
    isa = int(env && *env ? parse(env, "DDPM_CPU_ISA") : widest_supported());
    g_isa.store(isa, std::memory_order_relaxed);
  }
  return CpuIsa(isa);
}

CpuIsa select_cpu_isa(std::string_view name) {
  const CpuIsa isa = parse(name, "--cpu-isa");
  g_isa.store(int(isa), std::memory_order_relaxed);
  return isa;
}

const char* name_of(CpuPrecision precision) { return precision == CpuPrecision::kBf16 ? "bf16" : "fp32"; }

CpuPrecision cpu_precision_from_name(std::string_view name) {
  if (name == "fp32") return CpuPrecision::kFp32;
  if (name == "bf16") return CpuPrecision::kBf16;
  throw Error("precision on the CPU must be fp32 or bf16, got \"" + std::string(name) + "\"");
}

const IsaBackend& isa_backend() { return active_cpu_isa() == CpuIsa::kAvx512 ? avx512::kBackend : avx2::kBackend; }

void train(const Schedule& sched, const TrainConfig& config, TrainState& state, const StepCallback& on_step) {
  isa_backend().train(sched, config, state, on_step);
}

float loss_and_grad(const Schedule& sched, const float* params, const float* x0, const float* eps, const int* t,
                    int n, float* grad, const ModelConfig& model) {
  return isa_backend().loss_and_grad(sched, params, x0, eps, t, n, grad, model);
}

void eps_forward(const float* params, const float* x, const int* t, int n, float* eps_out, const ModelConfig& model) {
  isa_backend().eps_forward(params, x, t, n, eps_out, model);
}

void sample(const Schedule& sched, const float* params, uint64_t seed, int64_t first, int64_t count, float* xy,
            const SamplerConfig& config, CpuPrecision precision, const ModelConfig& model) {
  if (precision == CpuPrecision::kBf16 && !(active_cpu_isa() == CpuIsa::kAvx512 && cpu_supports_bf16()))
    throw Error(std::string("--precision bf16 on the CPU needs AVX512_BF16 and --cpu-isa avx512; ") +
                (cpu_supports_bf16() ? "avx2 is selected" : "this CPU lacks AVX512_BF16"));
  isa_backend().sample(sched, params, seed, first, count, xy, config, precision, model);
}

void eps_jacobian(const float* params, const float* x, float tau, int n, float* eps, float* jac,
                  const ModelConfig& model) {
  isa_backend().eps_jacobian(params, x, tau, n, eps, jac, model);
}

void vlb_sums(const Schedule& sched, const float* params, const VlbTable& table, uint64_t seed, int64_t first,
              int64_t count, const float* x0, VlbSums* out, const ModelConfig& model) {
  isa_backend().vlb_sums(sched, params, table, seed, first, count, x0, out, model);
}

void ode_end_states(const float* params, const OdeTable& table, int64_t count, const float* x0, float* out,
                    const ModelConfig& model) {
  isa_backend().ode_end_states(params, table, count, x0, out, model);
}

void ode_end_states_adaptive(const Schedule& sched, const float* params, int64_t count, const float* x0, double rtol,
                             double atol, float* out, int64_t* evals, const ModelConfig& model) {
  isa_backend().ode_end_states_adaptive(sched, params, count, x0, rtol, atol, out, evals, model);
}

}  // namespace ddpm::cpu
