// The training loop on the CPU: the seed's step (get_batch, t ~ U{1..T},
// q_sample, eps_theta, MSE, backward, Adam) in one OpenMP region per step.
//
//   rows phase   (parallel over fixed 64-row blocks): draw the batch, normalize,
//                q_sample, forward through the four layers, MSE gradient,
//                backward to dZ1 -- every row independent of every other;
//   weights phase (parallel over output-row tiles): dW = dZ^T A and db summed
//                over the batch in a fixed order, then Adam (and the EMA of
//                the weights, when kept) over the flat buffer and the refresh
//                of W^T.
// The work split never changes a sum's order, so results are bit-identical for
// any thread count. Compiled once per instruction set (isa_target.hpp).
#include <algorithm>
#include <string>
#include <vector>

#include "ddpm/error.hpp"
#include "ddpm/math.hpp"
#include "host/cpu/batch.hpp"
#include "host/cpu/isa_backend.hpp"
#include "host/cpu/mlp.hpp"
#include "host/cpu/isa_target.hpp"

DDPM_CPU_ISA_BEGIN
#include "host/cpu/layers.hpp"

namespace ddpm::cpu::DDPM_CPU_ISA {

namespace {

constexpr int kRowBlock = 64;                  // rows per task in the rows phase
constexpr int kOutTile = 2 * simd::kTileM;     // weight-gradient output rows per task (two micro-kernel tiles)

// Activations and gradients of one batch of the model `model`.
struct Workspace {
  int n;
  const ModelConfig model;
  const NetLayout& net;
  const int lda0;  // layer 0's input row stride
  std::vector<float> x0, eps, a0, out, dout;
  std::vector<int> t;
  std::vector<float> h[3], g[3], dz[3];
  std::vector<double> block_loss;
  std::vector<float> grad;

  Workspace(int batch, const ModelConfig& model)
      : n(batch), model(model), net(model.net()), lda0(in0_padded(net)) {
    x0.resize(2 * std::size_t(n));
    eps.resize(2 * std::size_t(n));
    out.resize(2 * std::size_t(n));
    dout.resize(2 * std::size_t(n));
    t.resize(n);
    a0.assign(std::size_t(n) * lda0, 0.f);
    for (int l = 0; l < 3; ++l) {
      h[l].resize(std::size_t(n) * kHidden);
      g[l].resize(std::size_t(n) * kHidden);
      dz[l].resize(std::size_t(n) * kHidden);
    }
    block_loss.resize((n + kRowBlock - 1) / kRowBlock);
    grad.resize(net.param_count);
  }
};

// Layer-0 input rows [x part, emb(t)] for rows [r0, r1), from their points
// x ([r1 - r0][2]): x itself, or its sinusoidal encoding.
void layer0_inputs(const float* emb, const float* x, Workspace& w, int r0, int r1) {
  const bool encoded = w.model.x_embedding == XEmbedding::kSinusoidal;
  float* a0 = w.a0.data() + std::size_t(r0) * w.lda0;
  if (encoded) x_embedding_rows(r1 - r0, x, w.model.x_scale, a0, w.lda0);
  for (int r = r0; r < r1; ++r) {
    float* a = a0 + std::size_t(r - r0) * w.lda0;
    if (!encoded) std::copy_n(x + 2 * std::size_t(r - r0), kDataDim, a);
    std::copy_n(emb + std::size_t(w.t[r]) * kEmbDim, kEmbDim, a + w.net.x_inputs);
  }
}

// Layer-0 input rows [x_t, emb(t)] from x0, eps and t (q_sample fused in).
void build_inputs(const Schedule& sched, const float* emb, Workspace& w, int r0, int r1) {
  float xt[2 * kRowBlock];
  for (int r = r0; r < r1; ++r) {
    const ForwardCoef c = sched.forward[w.t[r]];
    xt[2 * (r - r0)] = q_sample(w.x0[2 * r], w.eps[2 * r], c);
    xt[2 * (r - r0) + 1] = q_sample(w.x0[2 * r + 1], w.eps[2 * r + 1], c);
  }
  layer0_inputs(emb, xt, w, r0, r1);
}

// Forward through the four layers for rows [r0, r1).
void forward_rows(const float* params, const TransposedWeights& wt, Workspace& w, int r0, int r1) {
  const int rows = r1 - r0;
  const std::size_t o = std::size_t(r0) * kHidden;
  const auto& L = w.net.layers;
  linear_silu(rows, w.a0.data() + std::size_t(r0) * w.lda0, w.lda0, L[0].in, wt.wt0.data(), params + L[0].bias,
              w.h[0].data() + o, w.g[0].data() + o);
  linear_silu(rows, w.h[0].data() + o, kHidden, kHidden, wt.wt1.data(), params + L[1].bias,
              w.h[1].data() + o, w.g[1].data() + o);
  linear_silu(rows, w.h[1].data() + o, kHidden, kHidden, wt.wt2.data(), params + L[2].bias,
              w.h[2].data() + o, w.g[2].data() + o);
  output_layer(rows, w.h[2].data() + o, params + L[3].weight, params + L[3].bias, w.out.data() + 2 * std::size_t(r0));
}

// loss = mean((out - eps)^2) over n*2 elements; dL/dout = 2 (out - eps) / (2n).
double mse_rows(Workspace& w, int r0, int r1) {
  double sum = 0;
  const float scale = 1.f / float(w.n);
  for (int i = 2 * r0; i < 2 * r1; ++i) {
    const float d = w.out[i] - w.eps[i];
    sum += double(d) * d;
    w.dout[i] = d * scale;
  }
  return sum;
}

// Backward from dout to dZ1 for rows [r0, r1).
void backward_rows(const float* params, Workspace& w, int r0, int r1) {
  const int rows = r1 - r0;
  const std::size_t o = std::size_t(r0) * kHidden;
  const auto& L = w.net.layers;
  backward_output(rows, w.dout.data() + 2 * std::size_t(r0), params + L[3].weight, w.g[2].data() + o,
                  w.dz[2].data() + o);
  backward_hidden(rows, w.dz[2].data() + o, params + L[2].weight, w.g[1].data() + o, w.dz[1].data() + o);
  backward_hidden(rows, w.dz[1].data() + o, params + L[1].weight, w.g[0].data() + o, w.dz[0].data() + o);
}

struct GradTask {
  int layer, o0, o1;
};

std::vector<GradTask> grad_tasks(const NetLayout& net) {
  std::vector<GradTask> tasks;
  for (int l = 0; l < kNumLayers; ++l)
    for (int o0 = 0; o0 < net.layers[l].out; o0 += kOutTile)
      tasks.push_back({l, o0, std::min(o0 + kOutTile, net.layers[l].out)});
  return tasks;
}

void run_grad_task(const GradTask& task, Workspace& w) {
  const LayerShape& L = w.net.layers[task.layer];
  // Layer l's dZ and its input activations A.
  const float* dz = task.layer == 3 ? w.dout.data() : w.dz[task.layer].data();
  const float* A = task.layer == 0 ? w.a0.data() : w.h[task.layer - 1].data();
  const int64_t lda = task.layer == 0 ? w.lda0 : kHidden;
  weight_grad(w.n, dz, L.out, A, lda, L.in, task.o0, task.o1, w.grad.data() + L.weight,
              w.grad.data() + L.bias);
}

// The gradient of the batch in w (x0 normalized, eps, t) into w.grad, and the
// per-block squared-error sums into w.block_loss. Orphaned work-sharing loops:
// every thread of the enclosing OpenMP parallel region must call this.
void gradient_phases(const Schedule& sched, const float* emb, const float* params, const TransposedWeights& wt,
                     const std::vector<GradTask>& tasks, Workspace& w) {
  const int blocks = int(w.block_loss.size());
#pragma omp for schedule(static)
  for (int b = 0; b < blocks; ++b) {
    const int r0 = b * kRowBlock, r1 = std::min(w.n, r0 + kRowBlock);
    build_inputs(sched, emb, w, r0, r1);
    forward_rows(params, wt, w, r0, r1);
    w.block_loss[b] = mse_rows(w, r0, r1);
    backward_rows(params, w, r0, r1);
  }
#pragma omp for schedule(dynamic)
  for (std::size_t i = 0; i < tasks.size(); ++i) run_grad_task(tasks[i], w);
}

float mean_loss(const Workspace& w) {
  double sum = 0;
  for (double l : w.block_loss) sum += l;
  return float(sum / (2.0 * w.n));
}

}  // namespace

void train(const Schedule& sched, const TrainConfig& config, TrainState& state, const StepCallback& on_step) {
  validate_training(config, state);
  const bool ema = config.ema_decay.has_value();
  if (ema && state.ema.empty()) state.ema = state.params;
  const DataSource data = config.data();
  const int n = config.batch;
  const int T = sched.T;
  const std::vector<float> emb = embedding_table(T);
  const std::vector<GradTask> tasks = grad_tasks(config.model.net());
  const int blocks = (n + kRowBlock - 1) / kRowBlock;
  Workspace w(n, config.model);
  TransposedWeights wt(w.net);
  wt.refresh(state.params.data());
  const std::size_t param_count = w.net.param_count;
  float* params = state.params.data();
  float* ema_params = state.ema.data();

  for (int64_t s = 0; s < config.steps; ++s) {
    const uint64_t step = uint64_t(state.step);
    const int64_t k = state.step + 1;  // Adam's step number
    const AdamStep adam = AdamStep::at(k, double(config.lr) * config.lr_schedule.factor(k));
    // This step's EMA decay (it changes during the warm-up); both from double, as AdamStep's 1 - beta.
    const double ema_decay = ema ? config.ema_decay_at(k) : 0.0;
    const float decay = float(ema_decay), one_minus_decay = float(1.0 - ema_decay);
    BatchStats stats{};
#pragma omp parallel
    {
#pragma omp for schedule(static)
      for (int b = 0; b < blocks; ++b)
        draw_batch_rows(config.seed, step, n, T, b * kRowBlock, std::min(n, (b + 1) * kRowBlock),
                        w.x0.data(), w.eps.data(), w.t.data(), data);
#pragma omp single
      stats = batch_stats(w.x0.data(), n);
#pragma omp for schedule(static)
      for (int b = 0; b < blocks; ++b)
        normalize_rows(stats, b * kRowBlock, std::min(n, (b + 1) * kRowBlock), w.x0.data());
      gradient_phases(sched, emb.data(), params, wt, tasks, w);
      if (ema) {
#pragma omp for schedule(static)
        for (std::size_t i = 0; i < param_count; ++i) {
          adam_update(params[i], state.adam_m[i], state.adam_v[i], w.grad[i], adam);
          ema_update(ema_params[i], params[i], decay, one_minus_decay);
        }
      } else {
#pragma omp for schedule(static)
        for (std::size_t i = 0; i < param_count; ++i)
          adam_update(params[i], state.adam_m[i], state.adam_v[i], w.grad[i], adam);
      }
#pragma omp for schedule(static)
      for (int row = 0; row < TransposedWeights::kRows; ++row) wt.refresh_row(params, row);
    }
    ++state.step;
    if (on_step) on_step(state.step, mean_loss(w));
  }
}

namespace {
// Workspace holding x0, eps and t of a given batch, and the embedding table it needs.
Workspace workspace_for(const float* x0, const float* eps, const int* t, int n, int T, const ModelConfig& model,
                        std::vector<float>& emb) {
  validate_model(model);
  for (int r = 0; r < n; ++r)
    if (t[r] < 0 || t[r] > T) throw Error("timestep " + std::to_string(t[r]) + " outside 0.." + std::to_string(T));
  emb = embedding_table(T);
  Workspace w(n, model);
  std::copy_n(x0, 2 * std::size_t(n), w.x0.begin());
  std::copy_n(eps, 2 * std::size_t(n), w.eps.begin());
  std::copy_n(t, std::size_t(n), w.t.begin());
  return w;
}
}  // namespace

float loss_and_grad(const Schedule& sched, const float* params, const float* x0, const float* eps, const int* t,
                    int n, float* grad, const ModelConfig& model) {
  std::vector<float> emb;
  Workspace w = workspace_for(x0, eps, t, n, sched.T, model, emb);
  TransposedWeights wt(w.net);
  wt.refresh(params);
  const std::vector<GradTask> tasks = grad_tasks(w.net);
#pragma omp parallel
  gradient_phases(sched, emb.data(), params, wt, tasks, w);
  std::copy(w.grad.begin(), w.grad.end(), grad);
  return mean_loss(w);
}

void eps_forward(const float* params, const float* x, const int* t, int n, float* eps_out, const ModelConfig& model) {
  validate_model(model);
  int T = 0;
  for (int i = 0; i < n; ++i) {
    if (t[i] < 0) throw Error("timestep " + std::to_string(t[i]) + " is negative");
    T = std::max(T, t[i]);
  }
  const std::vector<float> emb = embedding_table(T);
  Workspace w(n, model);
  TransposedWeights wt(w.net);
  wt.refresh(params);
  std::copy_n(t, std::size_t(n), w.t.begin());
  layer0_inputs(emb.data(), x, w, 0, n);
  forward_rows(params, wt, w, 0, n);
  std::copy(w.out.begin(), w.out.end(), eps_out);
}

const IsaBackend kBackend = {&train,    &loss_and_grad,  &eps_forward,   &sample,
                             &eps_jacobian, &vlb_sums, &ode_end_states, &ode_end_states_adaptive};

}  // namespace ddpm::cpu::DDPM_CPU_ISA

DDPM_CPU_ISA_END
