// A debugging build, DDPM_CUDA_SYNC_CHECK (every launch synchronizes its
// stream, so a fault shows at its launch), of the training step's launchers
// and GpuTrainer: its graph capture must still work (a capture forbids
// synchronizing), and the replays give the CPU trainer's steps.
#include <gtest/gtest.h>

#include <vector>

#include "host/cpu/cpu_backend.hpp"
#include "host/gpu/gpu_trainer.hpp"
#include "tests/kernels/sample_fused_cases.hpp"

#if !defined(DDPM_CUDA_SYNC_CHECK)
#error "this test is built with DDPM_CUDA_SYNC_CHECK"
#endif

namespace ddpm {
namespace {

TEST(EmuDeviceSyncCheck, GpuTrainerCapturesItsGraphsAndMatchesTheCpu) {
  const Schedule sched = Schedule::linear();
  cpu::TrainConfig cfg;
  cfg.batch = 32;
  cfg.seed = kernels::fused_cases::fresh_seed();
  cfg.steps = 3;
  cpu::TrainState want = cpu::TrainState::fresh(cfg.seed), got = want;
  cpu::train(sched, cfg, want);
  gpu::GpuTrainer trainer(sched, cfg, got);
  trainer.run(3);
  trainer.download(got);
  kernels::fused_cases::expect_close(got.params, std::vector<double>(want.params.begin(), want.params.end()), 1e-4);
}

}  // namespace
}  // namespace ddpm
