// The CPU backend: the seed's whole pipeline on the host, fused and threaded
// (OpenMP over fixed row blocks, so results do not depend on the thread count).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "ddpm/config.hpp"
#include "ddpm/datasets.hpp"
#include "ddpm/likelihood.hpp"
#include "ddpm/params.hpp"
#include "ddpm/schedule.hpp"

namespace ddpm::cpu {

// ---- Instruction sets ----
// The hot code is built twice: for AVX2 + FMA, which every CPU this project
// runs on has, and for AVX-512 (F, BW, DQ, VL; Skylake-SP, Ice Lake, Zen 4 and
// later). A process runs one, chosen at start-up: the widest the CPU has, or
// the one the environment variable DDPM_CPU_ISA names (auto|avx2|avx512), or
// the one select_cpu_isa() names. The two give the same bytes in fp32: every
// sum runs in the same order in both (the output layer's dot products in eight
// lanes in both); they differ in speed only. The bf16 sampler needs AVX512_BF16.
enum class CpuIsa { kAvx2, kAvx512 };
const char* name_of(CpuIsa isa);
bool cpu_supports(CpuIsa isa);
bool cpu_supports_bf16();
// The instruction set the backend's calls run on now.
CpuIsa active_cpu_isa();
// "auto" (the widest this CPU has), "avx2" or "avx512"; returns the one now in
// use. Throws ddpm::Error naming the value for an unknown name or an
// instruction set this CPU lacks. Not to be called while the backend runs.
CpuIsa select_cpu_isa(std::string_view name);

// The sampler's arithmetic: fp32 throughout, or bf16 products as the GPU's bf16
// mode (the 128 x 128 hidden layers' operands rounded to bf16, fp32 sums,
// everything else fp32; AVX512_BF16 only).
enum class CpuPrecision { kFp32, kBf16 };
const char* name_of(CpuPrecision precision);
// "fp32" or "bf16"; throws ddpm::Error naming anything else.
CpuPrecision cpu_precision_from_name(std::string_view name);

// PyTorch's nn.Linear initialization: weights and biases uniform in
// +-1/sqrt(fan_in), drawn from Philox (Stream::kInit) with the given seed;
// model.net().param_count floats.
std::vector<float> init_params(uint64_t seed, const ModelConfig& model = {});

// get_batch(n) of the seed for training step `step`: n rows of `data`
// (make_moons(n, noise) by default) with Philox noise, normalized per batch,
// x = (x - mean) / std (unbiased std, as torch.std); also the row's t in 1..T
// and eps. Outputs: x0, eps: n*2; t: n. Throws ddpm::Error for a bad file source.
void train_batch(uint64_t seed, uint64_t step, int n, int T, float* x0, float* eps, int* t,
                 const DataSource& data = {});

// The learning rate of optimizer step k = 1, 2, ... as a multiple of lr; it
// depends on k and these settings only, so a run resumed at any step continues
// bit-identically. With W = warmup_steps, K = total_steps, f = final_fraction:
//   warm-up  (k <= W):  k / W
//   cosine   (k > W):   f + (1 - f) (1 + cos(pi p)) / 2,  p = min(1, (k - W) / (K - W))
//   constant (k > W):   1  (the default, with W = 0: the seed's constant lr)
struct LrSchedule {
  bool cosine = false;
  int64_t total_steps = 0;    // K: the whole run's steps (not those of one resumed part)
  double final_fraction = 0;  // f in [0, 1]: the cosine's lr at step K, over lr
  int64_t warmup_steps = 0;   // W >= 0 (W < K with the cosine)
  double factor(int64_t k) const;
};

struct TrainConfig {
  int64_t steps = kTrainSteps;
  int batch = kBatch;
  float lr = kLearningRate;
  uint64_t seed = kDefaultSeed;
  Dataset dataset = Dataset::kMoons;
  std::vector<float> points;         // Dataset::kFile: the user's points, interleaved (x, y)
  std::optional<double> ema_decay;   // EMA of the weights with this decay in [0, 1); none by default
  // The EMA's decay warms up to ema_decay (ddpm/math.hpp, ema_warmup_decay).
  // Off by default (the constant decay from the first step); ddpm_cuda_train
  // turns it on with every --ema.
  bool ema_warmup = false;
  LrSchedule lr_schedule;            // constant lr by default
  ModelConfig model;                 // the seed's model by default
  DataSource data() const { return {dataset, points.data(), int64_t(points.size() / 2)}; }
  // The EMA's decay after optimizer step k (from 1): ema_decay, or its warm-up
  // with ema_warmup; the one place both backends take it from (0 without ema_decay).
  double ema_decay_at(int64_t k) const;
};

// Parameters and Adam moments (same layout, the model's NetLayout), the EMA of
// the parameters (same layout; empty while no EMA is kept), and the number of
// steps taken.
struct TrainState {
  std::vector<float> params, adam_m, adam_v, ema;
  int64_t step = 0;
  static TrainState fresh(uint64_t seed, const ModelConfig& model = {});
};

// One training step per call of the callback: (step counted from 1, loss).
using StepCallback = std::function<void(int64_t step, float loss)>;

// A model's settings: the x-encoding's scale positive and finite; throws
// ddpm::Error naming the bad value.
void validate_model(const ModelConfig& model);

// The checks train() makes of its config and state (any backend's trainer
// makes them); throws ddpm::Error naming the bad value.
void validate_training(const TrainConfig& config, const TrainState& state);

// Runs config.steps steps from state.step on; batch k uses Philox items of step k.
// With config.ema_decay, after each Adam update k ema <- decay ema + (1 - decay) params,
// decay = config.ema_decay_at(k); an empty state.ema starts as a copy of
// state.params (the initial weights of a fresh run, which the warm-up's first
// update replaces). Without it, state.ema is left as it is. Throws ddpm::Error for a
// bad config or state.
void train(const Schedule& sched, const TrainConfig& config, TrainState& state,
           const StepCallback& on_step = {});

// The seed's loss on one batch, mse(eps_theta(q_sample(x0, t, eps), t), eps),
// and its gradient with respect to every parameter (grad: model.net().param_count floats).
float loss_and_grad(const Schedule& sched, const float* params, const float* x0, const float* eps,
                    const int* t, int n, float* grad, const ModelConfig& model = {});

// Forward pass of eps_theta(x, t) for n points, each with its own t.
void eps_forward(const float* params, const float* x, const int* t, int n, float* eps_out,
                 const ModelConfig& model = {});

// Points [first, first + count) of the sample set drawn with `seed`, by the
// sampler `config` names (ddpm/schedule.hpp): by default the ancestral sampler
// with the posterior variance, the seed's sample(). Point i uses Philox item i
// of Stream::kSample, so any chunking gives the same bytes. xy: count*2 floats.
// Throws ddpm::Error on a negative range, a bad config (see validate_sampler),
// or bf16 on a CPU without AVX512_BF16 (or with avx2 selected).
// `params` is laid out as model.net(). With bf16, layer 0 stays fp32 (the x
// encoding's K = 128 product included).
void sample(const Schedule& sched, const float* params, uint64_t seed, int64_t first,
            int64_t count, float* xy, const SamplerConfig& config = {},
            CpuPrecision precision = CpuPrecision::kFp32, const ModelConfig& model = {});

// ---- The likelihood (ddpm/likelihood.hpp) ----

// eps_theta(x, tau) and its Jacobian d eps / d x for n points at one real time
// tau, by forward-mode tangents along x_0 and x_1: jac[4 i + 2 a + b] = d eps_a / d x_b.
void eps_jacobian(const float* params, const float* x, float tau, int n, float* eps, float* jac,
                  const ModelConfig& model = {});

// The bound's sums (VlbSums) of points [first, first + count) of a held-out
// set, x0 (count * 2, the model's normalized units) its points first..: point
// first + i draws the eps of every step from Philox item first + i of
// Stream::kLikelihood under `seed`, so any chunking gives the same bytes.
void vlb_sums(const Schedule& sched, const float* params, const VlbTable& table, uint64_t seed, int64_t first,
              int64_t count, const float* x0, VlbSums* out, const ModelConfig& model = {});

// The probability-flow ODE's end state of each of count points x0 (count * 2)
// through the RK4 table: out[3 i..] = (y_T0, y_T1, l) (ode_log_likelihood
// turns it into log p). Deterministic, and independent of chunking.
void ode_end_states(const float* params, const OdeTable& table, int64_t count, const float* x0, float* out,
                    const ModelConfig& model = {});

// The same ODE with an adaptive step (Dormand and Prince's 5(4) pair, per
// point, in r as the RK4 table): a step is taken when its local error estimate
// in (y, l) is within atol + rtol |state|. Also returns each point's number of
// evaluations (evals may be null). Throws ddpm::Error for tolerances outside
// 1e-9..1 (float evaluations carry ~1e-7 of noise), or when a point's step
// falls below 1e-12 or takes 100,000 steps.
void ode_end_states_adaptive(const Schedule& sched, const float* params, int64_t count, const float* x0,
                             double rtol, double atol, float* out, int64_t* evals, const ModelConfig& model = {});

// The forward process: one batch of n points of `data` (make_moons by
// default, normalized per batch) at each of the given timesteps, noise from
// Stream::kForwardProcess. Returns one interleaved (x, y) vector per timestep.
std::vector<std::vector<float>> forward_process(const Schedule& sched, uint64_t seed, int n,
                                                const std::vector<int>& timesteps, const DataSource& data = {});

}  // namespace ddpm::cpu
