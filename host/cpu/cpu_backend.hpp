// The CPU backend: the seed's whole pipeline on the host, fused and threaded
// (OpenMP over fixed row blocks, so results do not depend on the thread count).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "ddpm/config.hpp"
#include "ddpm/params.hpp"
#include "ddpm/schedule.hpp"

namespace ddpm::cpu {

// PyTorch's nn.Linear initialization: weights and biases uniform in
// +-1/sqrt(fan_in), drawn from Philox (Stream::kInit) with the given seed.
std::vector<float> init_params(uint64_t seed);

// get_batch(n) of the seed for training step `step`: make_moons(n, noise) with
// Philox noise, normalized per batch, x = (x - mean) / std (unbiased std, as
// torch.std); also the row's t in 1..T and eps. Outputs: x0, eps: n*2; t: n.
void train_batch(uint64_t seed, uint64_t step, int n, int T, float* x0, float* eps, int* t);

struct TrainConfig {
  int64_t steps = kTrainSteps;
  int batch = kBatch;
  float lr = kLearningRate;
  uint64_t seed = kDefaultSeed;
};

// Parameters and Adam moments (same layout), and the number of steps taken.
struct TrainState {
  std::vector<float> params, adam_m, adam_v;
  int64_t step = 0;
  static TrainState fresh(uint64_t seed);
};

// One training step per call of the callback: (step counted from 1, loss).
using StepCallback = std::function<void(int64_t step, float loss)>;

// Runs config.steps steps from state.step on; batch k uses Philox items of step k.
void train(const Schedule& sched, const TrainConfig& config, TrainState& state,
           const StepCallback& on_step = {});

// The seed's loss on one batch, mse(eps_theta(q_sample(x0, t, eps), t), eps),
// and its gradient with respect to every parameter (grad: kParamCount floats).
float loss_and_grad(const Schedule& sched, const float* params, const float* x0, const float* eps,
                    const int* t, int n, float* grad);

// Forward pass of eps_theta(x, t) for n points, each with its own t.
void eps_forward(const float* params, const float* x, const int* t, int n, float* eps_out);

// The ancestral sampler: points [first, first + count) of the sample set drawn
// with `seed`. Point i uses Philox item i of Stream::kSample, so any chunking
// gives the same bytes. xy: count*2 floats.
void sample(const Schedule& sched, const float* params, uint64_t seed, int64_t first,
            int64_t count, float* xy);

// The forward process: one batch of n points (make_moons, normalized) at each
// of the given timesteps, noise from Stream::kForwardProcess. Returns one
// interleaved (x, y) vector per timestep.
std::vector<std::vector<float>> forward_process(const Schedule& sched, uint64_t seed, int n,
                                                const std::vector<int>& timesteps);

}  // namespace ddpm::cpu
