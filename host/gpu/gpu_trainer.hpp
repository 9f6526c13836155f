// The thin GPU driver of the fused training step (kernels/train_step.*).
//
//   GpuTrainer trainer(sched, config, state);   // uploads; Adam scalars of every step
//   trainer.run(1000);                          // enqueues 1000 steps: graph replays, no sync
//   float l = trainer.losses(trainer.step(), 1)[0];  // copies one loss (synchronizes)
//   trainer.download(state);                    // params, Adam moments, EMA, step
//
// A step is three kernels (batch + statistics, rows, gradient reduction +
// Adam); a CUDA graph holds kGraphSteps consecutive steps and is replayed. The
// step counter, the per-step Adam scalars (AdamStep::at of the learning-rate
// schedule, built once on the host for the whole run, as the CPU's train()
// computes them) and the per-step losses live on the device, so a replay
// needs nothing from the host; only the EMA's warm-up steps (config.ema_warmup),
// each with a decay of its own, are launched one by one. The random streams are
// the CPU backend's (Philox item step * batch + row of Stream::kTrainBatch), so
// from the same state both backends see the same batches.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "ddpm/schedule.hpp"
#include "host/cpu/cpu_backend.hpp"

namespace ddpm::gpu {

class GpuTrainer {
 public:
  // Validates as cpu::train does, uploads `state` (an empty state.ema starts
  // as a copy of the parameters when config.ema_decay is set) and prepares
  // steps state.step + 1 .. state.step + config.steps, for either model
  // variant (config.model). Throws ddpm::Error.
  GpuTrainer(const Schedule& sched, const cpu::TrainConfig& config, const cpu::TrainState& state);
  ~GpuTrainer();
  GpuTrainer(const GpuTrainer&) = delete;
  GpuTrainer& operator=(const GpuTrainer&) = delete;

  // Enqueues `steps` more steps (at most the config's remaining steps); returns
  // without waiting for them.
  void run(int64_t steps);

  // Steps taken, counting the state's own (enqueued; final once synchronized).
  int64_t step() const { return first_step_ + done_; }

  // The losses of steps first .. first + count - 1 (numbered from 1 as
  // cpu::StepCallback numbers them, within this trainer's steps). Synchronizes.
  std::vector<float> losses(int64_t first, int64_t count) const;

  // Runs every remaining step; calls on_log(step, loss) after each step that
  // is a multiple of log_every and after the last, copying only those losses
  // (one synchronization per log point; log_every <= 0: only the last).
  void train(int64_t log_every, const cpu::StepCallback& on_log);

  // Parameters, Adam moments, the EMA (when kept) and the step count into
  // `state`, in the flat layout the checkpoints use. Synchronizes.
  void download(cpu::TrainState& state) const;

  // Blocks of the rows kernel (= partial gradients summed per step).
  int rows_grid() const;

 private:
  struct Device;
  std::unique_ptr<Device> d_;
  int64_t first_step_ = 0;  // state.step at construction
  int64_t total_ = 0;       // config.steps
  int64_t done_ = 0;        // steps enqueued
};

}  // namespace ddpm::gpu
