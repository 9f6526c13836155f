// The GPU drivers (host/gpu) on the emulated device: uploads, streams, pinned
// double buffers, chunking, cuBLAS and graph replay, against the CPU backend.
// Short schedules (T = 20) keep the emulated tensor cores quick; the chain's
// code is the same for any T.
#include <cublas_v2.h>
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "emu_device.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/gpu/gpu_sampler.hpp"
#include "host/gpu/gpu_trainer.hpp"
#include "host/gpu/unfused_sampler.hpp"
#include "tests/kernels/sample_fused_cases.hpp"

namespace ddpm {
namespace {

using kernels::Precision;
using kernels::fused_cases::cpu_sample;
using kernels::fused_cases::expect_close;
using kernels::fused_cases::fresh_seed;

struct Draw {
  uint64_t seed;
  int64_t first, n, chunk;
};

// A fresh seed, offset, size and chunk (n spans two to four chunks, the last partial).
Draw fresh_draw() {
  std::mt19937_64 rng(fresh_seed());
  const int64_t chunk = 16 + int64_t(rng() % 25);
  return {rng(), int64_t(rng() % 100000), 2 * chunk + 1 + int64_t(rng() % (2 * chunk - 1)), chunk};
}

// The weights go up on the sampler's own stream: with them on the legacy
// stream, the emulated device's late pageable copy leaves the first chunk's
// kernel reading NaN weights (and its step table garbage).
TEST(EmuDeviceDrivers, GpuSamplerMatchesTheCpuAcrossChunksInEveryPrecision) {
  const Schedule sched = Schedule::linear(20);
  for (const auto& [p, tol] : {std::pair{Precision::kFp32, 1e-5}, {Precision::kTf32, 1e-3}, {Precision::kBf16, 1e-2}}) {
    const Draw d = fresh_draw();
    const std::vector<float> params = cpu::init_params(d.seed);
    SCOPED_TRACE(std::string(kernels::name_of(p)) + " seed " + std::to_string(d.seed) + " n " + std::to_string(d.n) +
                 " chunk " + std::to_string(d.chunk));
    std::vector<float> got(2 * d.n, -7.f);  // poisoned: every element must be written
    gpu::GpuSampler(params.data(), sched, SamplerConfig{}, p, d.chunk).sample(d.seed, d.first, d.n, got.data());
    expect_close(got, cpu_sample(params, sched, d.seed, d.first, d.n), tol);
  }
}

// The kernel cases of tests/kernels through the driver, in chunks of 13 points
// (a point's bytes must not depend on where its chunk begins).
struct DriverBackend {
  std::vector<float> sample(const std::vector<float>& params, const Schedule& s, uint64_t seed, int64_t first,
                            int64_t n, const kernels::fused_cases::Run& run) {
    std::vector<float> xy(2 * n, -7.f);
    gpu::GpuSampler(params.data(), s, run.config, run.precision, 13, run.model).sample(seed, first, n, xy.data());
    return xy;
  }
};

TEST(EmuDeviceDrivers, GpuSamplerRunsDdimAndTheBetaVariance) {
  DriverBackend b;
  kernels::fused_cases::other_samplers_match_the_cpu_sampler(b, Precision::kFp32, 1e-5);
}

// (The tensor-core precisions' x encoding: tests/kernels, in emulation.)
TEST(EmuDeviceDrivers, GpuSamplerRunsTheXEncoding) {
  DriverBackend b;
  kernels::fused_cases::x_encoding_matches_the_cpu_sampler(b, Precision::kFp32, 1e-4, 1e-4);
}

TEST(EmuDeviceDrivers, GpuSamplerGivesAnyRangeTheSameBytes) {
  DriverBackend b;
  kernels::fused_cases::any_range_gives_the_same_bytes(b, Precision::kFp32);
}

// The unfused path's SGEMMs in cuBLAS's default math mode (TF32 off): not
// CUBLAS_PEDANTIC_MATH, which cuBLAS documents as possibly slower and which
// would flatter the fused kernels in the benchmarks.
TEST(EmuDeviceDrivers, UnfusedSamplerMatchesTheCpuInTheDefaultMathMode) {
  const Schedule sched = Schedule::linear(10);  // each step is three emulated SGEMMs
  const Draw d = fresh_draw();
  const std::vector<float> params = cpu::init_params(d.seed);
  std::vector<float> got(2 * d.n, -7.f);
  gpu::UnfusedSampler(params.data(), sched, SamplerConfig{}, d.chunk).sample(d.seed, d.first, d.n, got.data());
  expect_close(got, cpu_sample(params, sched, d.seed, d.first, d.n), 1e-4);
  EXPECT_EQ(emu::device::last_gemm_math_mode(), int(CUBLAS_DEFAULT_MATH));
}

// The same with the x encoding: its layer 0 as a fourth SGEMM, over W0's first
// 128 columns (a leading dimension of 192).
TEST(EmuDeviceDrivers, UnfusedSamplerRunsTheXEncoding) {
  struct Unfused {
    std::vector<float> sample(const std::vector<float>& params, const Schedule& s, uint64_t seed, int64_t first,
                              int64_t n, const kernels::fused_cases::Run& run) {
      std::vector<float> xy(2 * n, -7.f);
      gpu::UnfusedSampler(params.data(), s, run.config, 41, run.model).sample(seed, first, n, xy.data());
      return xy;
    }
  } b;
  kernels::fused_cases::x_encoding_matches_the_cpu_sampler(b, Precision::kFp32, 1e-4, 1e-4);
}

// Steps 1..3 of cfg on the CPU, then 4 more from there on both backends: a
// trainer started at step S > 0 (a resumed run) keeps absolute step numbers,
// and its graphs' replays give the CPU trainer's losses, weights and EMA.
void expect_gpu_trainer_continues_as_the_cpu(cpu::TrainConfig cfg) {
  SCOPED_TRACE("seed " + std::to_string(cfg.seed));
  const Schedule sched = Schedule::linear();
  cfg.steps = 3;
  cpu::TrainState start = cpu::TrainState::fresh(cfg.seed, cfg.model);
  cpu::train(sched, cfg, start);  // steps 1..3 on the CPU: Adam's moments past its sign-like first step
  cfg.steps = 4;                  // then steps 4..7 on both
  cpu::TrainState want = start;
  std::vector<float> want_losses;
  cpu::train(sched, cfg, want, [&](int64_t, float loss) { want_losses.push_back(loss); });

  gpu::GpuTrainer trainer(sched, cfg, start);
  trainer.run(4);
  ASSERT_EQ(trainer.step(), 7);
  const std::vector<float> losses = trainer.losses(4, 4);
  cpu::TrainState got = start;
  trainer.download(got);
  EXPECT_EQ(got.step, 7);
  ASSERT_EQ(got.params.size(), cfg.model.net().param_count);
  expect_close(losses, std::vector<double>(want_losses.begin(), want_losses.end()), 1e-4);
  expect_close(got.params, std::vector<double>(want.params.begin(), want.params.end()), 1e-4);
  if (cfg.ema_decay) expect_close(got.ema, std::vector<double>(want.ema.begin(), want.ema.end()), 1e-4);
}

TEST(EmuDeviceDrivers, GpuTrainerFromALaterStepMatchesTheCpu) {
  cpu::TrainConfig cfg;
  cfg.batch = 32;
  cfg.seed = fresh_seed();
  expect_gpu_trainer_continues_as_the_cpu(cfg);
}

// The x encoding's instantiation of the training kernels (its layer 0 of 192
// inputs, the encoding computed per row, the weight gradient in two passes),
// with an EMA and a batch of two and a half tiles.
TEST(EmuDeviceDrivers, GpuTrainerRunsTheXEncoding) {
  cpu::TrainConfig cfg;
  cfg.batch = 40;
  cfg.seed = fresh_seed();
  cfg.ema_decay = 0.9;
  cfg.model = {XEmbedding::kSinusoidal, kXScale};
  expect_gpu_trainer_continues_as_the_cpu(cfg);
}

// The EMA's warm-up (cfg.ema_warmup): its steps launched one by one, each with
// a decay of its own, then the graphs captured with the final decay. Decay 0.5
// is reached at step 9 (9 / 18): from step 3, steps 4..8 warm up and 9..40
// replay the 16-step graph twice. The EMA starts far from the weights, so
// that a decay off by a step shows after step 8 (the share left of the start
// is the product of the decays: 0.009 with the warm-up's, 0.03 with 0.5).
TEST(EmuDeviceDrivers, GpuTrainerWarmsUpTheEmaAsTheCpu) {
  cpu::TrainConfig cfg;
  cfg.batch = 32;
  cfg.seed = fresh_seed();
  cfg.ema_decay = 0.5;
  cfg.ema_warmup = true;
  SCOPED_TRACE("seed " + std::to_string(cfg.seed));
  const Schedule sched = Schedule::linear();
  cfg.steps = 3;
  cpu::TrainState start = cpu::TrainState::fresh(cfg.seed, cfg.model);
  cpu::train(sched, cfg, start);
  for (float& e : start.ema) e += 1.f;
  cfg.steps = 37;
  gpu::GpuTrainer trainer(sched, cfg, start);
  cpu::TrainState got = start, want = start;
  for (int64_t part : {5, 32}) {
    trainer.run(part);
    trainer.download(got);
    cpu::TrainConfig cpu_part = cfg;
    cpu_part.steps = part;
    cpu::train(sched, cpu_part, want);
    ASSERT_EQ(got.step, want.step);
    SCOPED_TRACE("after step " + std::to_string(got.step));
    expect_close(got.params, std::vector<double>(want.params.begin(), want.params.end()), 1e-4);
    expect_close(got.ema, std::vector<double>(want.ema.begin(), want.ema.end()), 1e-4);
  }
}

}  // namespace
}  // namespace ddpm
