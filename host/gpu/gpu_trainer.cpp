#include "host/gpu/gpu_trainer.hpp"

#include <algorithm>
#include <cstdio>
#include <string>

#include "ddpm/cuda_check.hpp"
#include "ddpm/error.hpp"
#include "ddpm/math.hpp"
#include "ddpm/nvtx.hpp"
#include "host/cpu/mlp.hpp"
#include "host/gpu/device_memory.hpp"
#include "kernels/train_step.hpp"

namespace ddpm::gpu {

namespace {

// Steps per captured graph: replaying one graph of 16 steps costs one host
// call per 16 steps (~3 us each) while the device runs 48 kernels back to back.
constexpr int kGraphSteps = 16;

}  // namespace

struct GpuTrainer::Device {
  DeviceAllocations mem;
  cudaStream_t stream = nullptr;
  cudaGraphExec_t many = nullptr, one = nullptr;
  int n = 0, T = 0, grid = 0;
  std::size_t params = 0;  // floats in the flat buffer (the model's layout)
  uint64_t seed = 0;
  DataSource data{};
  kernels::TrainBatch batch{};
  kernels::TrainNetView net{};
  kernels::TrainOptState opt{};
  kernels::TrainStepClock clock{};
  kernels::BatchStatsPartial* stats_partial = nullptr;
  kernels::TrainBatchStats* stats = nullptr;
  unsigned* done = nullptr;  // [2]: the batch kernel's and the Adam kernel's
  ForwardCoef* coef = nullptr;
  float* emb = nullptr;
  float* grad_partial = nullptr;
  double* loss_partial = nullptr;
  std::vector<double> ema_warmup;  // the EMA decay of each warm-up step from first_step + 1 on

  template <class T>
  T* alloc(std::size_t count, const std::string& remedy = "") {
    return mem.alloc<T>(count, "the training state", remedy);
  }
  template <class T>
  T* upload(const std::vector<T>& host) {
    return mem.upload(host, "the training state", stream);
  }

  // One training step's three launches, onto `stream`, with the optimizer
  // state `o` (opt, or a copy with that step's EMA decay).
  void enqueue_step(const kernels::TrainOptState& o) const {
    kernels::launch_train_batch(seed, clock.step, n, T, data, batch, stats_partial, done, stats, stream);
    kernels::launch_train_rows(net, batch, stats, coef, emb, n, grid, grad_partial, loss_partial, nullptr, stream);
    kernels::launch_train_adam(o, grad_partial, loss_partial, grid, n, clock, done + 1, nullptr, stream);
  }

  cudaGraphExec_t capture(int steps) const {
    cudaGraph_t graph = nullptr;
    DDPM_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    for (int s = 0; s < steps; ++s) enqueue_step(opt);
    DDPM_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    DDPM_CUDA_CHECK(status);
    return exec;
  }

  ~Device() {
    if (many != nullptr) cudaGraphExecDestroy(many);
    if (one != nullptr) cudaGraphExecDestroy(one);
    if (stream != nullptr) cudaStreamDestroy(stream);
  }
};

GpuTrainer::GpuTrainer(const Schedule& sched, const cpu::TrainConfig& config, const cpu::TrainState& state)
    : d_(std::make_unique<Device>()), first_step_(state.step), total_(config.steps) {
  NvtxRange range("GpuTrainer::upload");
  cpu::validate_training(config, state);
  cpu::TrainState start = state;
  if (config.ema_decay && start.ema.empty()) start.ema = start.params;  // as cpu::train starts the EMA
  Device& d = *d_;
  d.n = config.batch;
  d.T = sched.T;
  d.params = config.model.net().param_count;
  d.seed = config.seed;
  int device = 0, sms = 0;
  DDPM_CUDA_CHECK(cudaGetDevice(&device));
  DDPM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  d.grid = kernels::train_rows_grid(d.n, sms);
  kernels::configure_train_kernels();
  DDPM_CUDA_CHECK(cudaStreamCreateWithFlags(&d.stream, cudaStreamNonBlocking));

  // The network and the optimizer's state.
  cpu::TransposedWeights wt(config.model.net());
  wt.refresh(start.params.data());
  d.opt.params = d.upload(start.params);
  d.opt.wt0 = d.upload(wt.wt0);
  d.opt.wt1 = d.upload(wt.wt1);
  d.opt.wt2 = d.upload(wt.wt2);
  d.opt.adam_m = d.upload(start.adam_m);
  d.opt.adam_v = d.upload(start.adam_v);
  if (config.ema_decay) {
    d.opt.ema = d.upload(start.ema);
    d.opt.ema_decay = float(*config.ema_decay);  // both from double, as the CPU's
    d.opt.ema_one_minus_decay = float(1.0 - *config.ema_decay);
    // The warm-up's steps: those whose decay is not yet the final one (it
    // rises to it and then stays), from the CPU's own function.
    if (config.ema_warmup)
      for (int64_t k = first_step_ + 1; k <= first_step_ + total_ && config.ema_decay_at(k) != *config.ema_decay; ++k)
        d.ema_warmup.push_back(config.ema_decay_at(k));
  }
  d.opt.x_embedding = config.model.x_embedding;
  // The x encoding's frequencies: the CPU trainer's own (see kernels/train_step.hpp).
  d.net = {d.opt.params, d.opt.wt0, d.opt.wt1, d.opt.wt2, config.model, x_embedding_frequencies()};

  // The data and the batch.
  d.data = config.data();
  if (d.data.dataset == Dataset::kFile) d.data.points = d.upload(config.points);
  const std::string by_batch = "try a smaller --batch";  // what --batch sizes (the gradients' partials too)
  d.batch = {d.alloc<float>(2 * std::size_t(d.n), by_batch), d.alloc<float>(2 * std::size_t(d.n), by_batch),
             d.alloc<int>(d.n, by_batch)};
  d.stats_partial = d.alloc<kernels::BatchStatsPartial>(kernels::train_batch_blocks(d.n), by_batch);
  d.stats = d.alloc<kernels::TrainBatchStats>(1);
  d.done = d.alloc<unsigned>(2);
  DDPM_CUDA_CHECK(cudaMemsetAsync(d.done, 0, 2 * sizeof(unsigned), d.stream));
  d.coef = d.upload(sched.forward);
  d.emb = d.upload(cpu::embedding_table(sched.T));  // the CPU's own table (see kernels/train_step.hpp)
  d.grad_partial = d.alloc<float>(std::size_t(d.grid) * d.params, by_batch);
  d.loss_partial = d.alloc<double>(d.grid, by_batch);

  // The clock: the step counter, each step's Adam scalars, each step's loss.
  std::vector<AdamStep> adam(std::size_t(std::max<int64_t>(total_, 0)));
  for (int64_t j = 0; j < total_; ++j) {
    const int64_t k = first_step_ + j + 1;
    adam[std::size_t(j)] = AdamStep::at(k, double(config.lr) * config.lr_schedule.factor(k));
  }
  d.clock.step = d.alloc<int64_t>(1);
  DDPM_CUDA_CHECK(cudaMemcpyAsync(d.clock.step, &first_step_, sizeof(int64_t), cudaMemcpyHostToDevice, d.stream));
  d.clock.first_step = first_step_;
  d.clock.adam = d.upload(adam);
  d.clock.losses = d.alloc<float>(std::size_t(std::max<int64_t>(total_, 0)));

  // Every upload above is on d.stream, before the graphs' replays.
  d.many = d.capture(kGraphSteps);
  d.one = d.capture(1);
}

GpuTrainer::~GpuTrainer() = default;

int GpuTrainer::rows_grid() const { return d_->grid; }

void GpuTrainer::run(int64_t steps) {
  if (steps < 0 || steps > total_ - done_)
    throw Error("GpuTrainer::run: " + std::to_string(steps) + " steps asked, " + std::to_string(total_ - done_) +
                " left of the configured " + std::to_string(total_));
  NvtxRange range("GpuTrainer::run");
  int64_t left = steps;
  // The EMA's warm-up: every step has a decay of its own, and a graph replays
  // the kernel parameters it captured, so these steps are launched one by one
  // with their decay in the Adam kernel's parameters (rounded from double as
  // the CPU rounds it); the graphs, captured with the final decay, take over after.
  const Device& d = *d_;
  for (; left > 0 && std::size_t(done_) < d.ema_warmup.size(); --left, ++done_) {
    kernels::TrainOptState o = d.opt;
    const double decay = d.ema_warmup[std::size_t(done_)];
    o.ema_decay = float(decay);
    o.ema_one_minus_decay = float(1.0 - decay);
    d.enqueue_step(o);
  }
  done_ += left;
  for (; left >= kGraphSteps; left -= kGraphSteps) DDPM_CUDA_CHECK(cudaGraphLaunch(d.many, d.stream));
  for (; left > 0; --left) DDPM_CUDA_CHECK(cudaGraphLaunch(d.one, d.stream));
}

std::vector<float> GpuTrainer::losses(int64_t first, int64_t count) const {
  if (count < 0 || first <= first_step_ || first + count - 1 > step())
    throw Error("GpuTrainer::losses: steps " + std::to_string(first) + ".." + std::to_string(first + count - 1) +
                " are not among the steps taken (" + std::to_string(first_step_ + 1) + ".." +
                std::to_string(step()) + ")");
  NvtxRange range("GpuTrainer::losses");
  std::vector<float> out(static_cast<std::size_t>(count));
  if (count == 0) return out;
  DDPM_CUDA_CHECK(cudaMemcpyAsync(out.data(), d_->clock.losses + (first - first_step_ - 1),
                                  std::size_t(count) * sizeof(float), cudaMemcpyDeviceToHost, d_->stream));
  DDPM_CUDA_CHECK(cudaStreamSynchronize(d_->stream));
  return out;
}

void GpuTrainer::train(int64_t log_every, const cpu::StepCallback& on_log) {
  while (done_ < total_) {
    // Up to the next multiple of log_every (absolute step numbers, as the CPU's callback sees them).
    int64_t next = total_ - done_;
    if (log_every > 0) next = std::min(next, log_every - step() % log_every);
    run(next);
    if (on_log && (done_ == total_ || (log_every > 0 && step() % log_every == 0)))
      on_log(step(), losses(step(), 1)[0]);
  }
}

void GpuTrainer::download(cpu::TrainState& state) const {
  NvtxRange range("GpuTrainer::download");
  const Device& d = *d_;
  auto fetch = [&](std::vector<float>& host, const float* dev) {
    host.resize(d.params);
    DDPM_CUDA_CHECK(cudaMemcpyAsync(host.data(), dev, d.params * sizeof(float), cudaMemcpyDeviceToHost, d.stream));
  };
  fetch(state.params, d.opt.params);
  fetch(state.adam_m, d.opt.adam_m);
  fetch(state.adam_v, d.opt.adam_v);
  if (d.opt.ema != nullptr) fetch(state.ema, d.opt.ema);
  DDPM_CUDA_CHECK(cudaStreamSynchronize(d.stream));
  state.step = step();
}

}  // namespace ddpm::gpu
