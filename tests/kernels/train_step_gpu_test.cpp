// The fused training step on a GPU: each kernel through its launcher on
// device memory, held to the emulation's checks, and the driver (GpuTrainer)
// against the CPU's train(); skipped with the reason where no CUDA device exists.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "host/cpu/mlp.hpp"
#include "host/gpu/gpu_trainer.hpp"
#include "tests/gpu_util.hpp"
#include "tests/kernels/train_step_cases.hpp"

namespace ddpm::kernels {
namespace {

using namespace train_cases;
using testing::DeviceBuffer;

template <class T>
std::vector<T> poisoned_vector(std::size_t n) {
  std::vector<T> v(n);
  std::memset(static_cast<void*>(v.data()), 0xff, n * sizeof(T));  // NaN for floats and doubles
  return v;
}

int sm_count() {
  int device = 0, sms = 0;
  DDPM_CUDA_CHECK(cudaGetDevice(&device));
  DDPM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return sms;
}

struct OnDevice {
  OnDevice() { configure_train_kernels(); }

  BatchOut batch(uint64_t seed, uint64_t step, int n, int T, const DataSource& data) {
    DeviceBuffer<float> x0(poisoned_vector<float>(2 * n)), eps(poisoned_vector<float>(2 * n));
    DeviceBuffer<int> t(std::vector<int>(n, -1));
    DeviceBuffer<BatchStatsPartial> partials(poisoned_vector<BatchStatsPartial>(train_batch_blocks(n)));
    DeviceBuffer<TrainBatchStats> stats(poisoned_vector<TrainBatchStats>(1));
    DeviceBuffer<unsigned> done(std::vector<unsigned>{0});
    DeviceBuffer<int64_t> dstep(std::vector<int64_t>{int64_t(step)});
    std::vector<float> points(data.points, data.points + 2 * data.count);
    DeviceBuffer<float> dpoints(points.empty() ? std::vector<float>{0.f} : points);
    DataSource dev_data = data;
    dev_data.points = data.dataset == Dataset::kFile ? dpoints.get() : nullptr;
    launch_train_batch(seed, dstep.get(), n, T, dev_data, TrainBatch{x0.get(), eps.get(), t.get()}, partials.get(),
                       done.get(), stats.get(), nullptr);
    BatchOut out;
    out.x0.resize(2 * n);
    out.eps.resize(2 * n);
    out.t.resize(n);
    x0.download(out.x0);
    eps.download(out.eps);
    t.download(out.t);
    stats.download(&out.stats);
    std::vector<unsigned> d(1);
    done.download(d);
    EXPECT_EQ(d[0], 0u);
    return out;
  }

  RowsOut rows(const RowsIn& in) {
    const std::size_t count = in.model.net().param_count;
    cpu::TransposedWeights wt(in.model.net());
    wt.refresh(in.params.data());
    DeviceBuffer<float> params(in.params), wt0(wt.wt0), wt1(wt.wt1), wt2(wt.wt2);
    DeviceBuffer<float> x0(in.x0), eps(in.eps);
    DeviceBuffer<int> t(in.t);
    DeviceBuffer<TrainBatchStats> stats(std::vector<TrainBatchStats>{in.stats});
    DeviceBuffer<ForwardCoef> coef(in.sched->forward);
    DeviceBuffer<float> emb(cpu::embedding_table(in.sched->T));
    DeviceBuffer<float> grad(poisoned_vector<float>(std::size_t(in.grid) * count));
    DeviceBuffer<double> loss(poisoned_vector<double>(in.grid));
    DeviceBuffer<float> act(poisoned_vector<float>(std::size_t(in.n) * (3 * kHidden + 2)));
    launch_train_rows(TrainNetView{params.get(), wt0.get(), wt1.get(), wt2.get(), in.model, in.x_freq},
                      TrainBatch{x0.get(), eps.get(), t.get()}, stats.get(), coef.get(), emb.get(), in.n, in.grid,
                      grad.get(), loss.get(), act.get(), nullptr);
    RowsOut out;
    out.grad_partial.resize(std::size_t(in.grid) * count);
    out.loss_partial.resize(in.grid);
    out.activations.resize(std::size_t(in.n) * (3 * kHidden + 2));
    grad.download(out.grad_partial);
    loss.download(out.loss_partial);
    act.download(out.activations);
    return out;
  }

  AdamOut adam(const AdamIn& in) {
    DeviceBuffer<float> params(in.opt.params), wt0(in.opt.wt0), wt1(in.opt.wt1), wt2(in.opt.wt2), m(in.opt.m),
        v(in.opt.v), ema(in.opt.ema.empty() ? std::vector<float>{0.f} : in.opt.ema);
    DeviceBuffer<float> partial(in.grad_partial);
    DeviceBuffer<double> loss_partial(in.loss_partial);
    DeviceBuffer<float> grad(poisoned_vector<float>(kParamCount)), losses(poisoned_vector<float>(in.table.size()));
    DeviceBuffer<AdamStep> table(in.table);
    DeviceBuffer<int64_t> step(std::vector<int64_t>{in.step});
    DeviceBuffer<unsigned> done(std::vector<unsigned>{0});
    const TrainOptState opt{params.get(), wt0.get(), wt1.get(), wt2.get(), m.get(), v.get(),
                            in.opt.ema.empty() ? nullptr : ema.get(), in.ema_decay, in.ema_one_minus_decay};
    launch_train_adam(opt, partial.get(), loss_partial.get(), in.partials, in.n,
                      TrainStepClock{step.get(), in.first_step, table.get(), losses.get()}, done.get(), grad.get(),
                      nullptr);
    AdamOut out;
    out.opt = in.opt;
    params.download(out.opt.params);
    wt0.download(out.opt.wt0);
    wt1.download(out.opt.wt1);
    wt2.download(out.opt.wt2);
    m.download(out.opt.m);
    v.download(out.opt.v);
    if (!in.opt.ema.empty()) ema.download(out.opt.ema);
    out.grad.resize(kParamCount);
    out.losses.resize(in.table.size());
    grad.download(out.grad);
    losses.download(out.losses);
    step.download(&out.step);
    return out;
  }

  // Through the driver: every step's loss, copied once at the end.
  std::vector<float> train(const Schedule& s, const cpu::TrainConfig& config, cpu::TrainState& state) {
    gpu::GpuTrainer trainer(s, config, state);
    trainer.run(config.steps);
    std::vector<float> losses = trainer.losses(state.step + 1, config.steps);
    trainer.download(state);
    return losses;
  }
};

class TrainStepGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = testing::no_device_reason(); !why.empty()) GTEST_SKIP() << why;
  }
};

// The device's curand_normal4 (log, sincos) and the datasets' sinf/cosf are a
// few ulps from the host's: rows to 1e-5; t is drawn from integer words: exact.
TEST_F(TrainStepGpu, BatchIsTheCpuDraw) {
  OnDevice b;
  for (Dataset d : {Dataset::kMoons, Dataset::kSwissRoll, Dataset::kCheckerboard, Dataset::kFile})
    batch_matches_the_cpu_draw(b, d, 1e-5, 1e-5);
}
// nvcc contracts and its expf differs by ulps: the emulation's tolerances hold
// (observed there: largest gradient error / scale ~5e-6, allowed 5e-5).
TEST_F(TrainStepGpu, RowsMatchTheReference) {
  OnDevice b;
  rows_match_the_reference(b, 100, 3, 1e-5, 5e-5);
  rows_match_the_reference(b, 512, train_rows_grid(512, sm_count()), 1e-5, 5e-5);
}
// The x encoding's instantiation, with the host's frequencies and with a table
// planted in the parameters (the emulation's bounds; the encoding's arguments
// are the host's bits, sincosf's 2 ulp apart).
TEST_F(TrainStepGpu, XEncodingRowsMatchTheReference) {
  OnDevice b;
  rows_match_the_reference(b, 100, 3, 1e-5, 5e-5, ModelConfig{XEmbedding::kSinusoidal, kXScale});
}
TEST_F(TrainStepGpu, XEncodingRowsReadTheHostsFrequencies) {
  OnDevice b;
  x_encoding_rows_read_the_hosts_frequencies(b, 100, 3, 1e-5, 5e-5);
}
TEST_F(TrainStepGpu, RowsAreDeterministic) {
  OnDevice b;
  rows_are_deterministic(b, 512, train_rows_grid(512, sm_count()));
}
TEST_F(TrainStepGpu, AdamMatchesTheReference) {
  OnDevice b;
  adam_matches_the_reference(b, false);
}
TEST_F(TrainStepGpu, AdamWithEmaMatchesTheReference) {
  OnDevice b;
  adam_matches_the_reference(b, true);
}
// 50 steps at the seed's batch through GpuTrainer (graph replays) against the
// CPU. The batches differ by ulps (device Philox normals), exp by ulps, sums
// in order: the losses agree to 1e-4 relative and the weights to 1e-4
// (lr = 1e-3 per step; Adam's sign-like early updates bound the drift).
TEST_F(TrainStepGpu, FiftyStepsMatchTheCpuTrainer) {
  OnDevice b;
  steps_match_the_cpu_trainer(b, kBatch, 50, 1e-4, 1e-4);
}

// The same with the x encoding (its own instantiation of the rows and Adam kernels).
TEST_F(TrainStepGpu, FiftyStepsOfTheXEncodingMatchTheCpuTrainer) {
  OnDevice b;
  steps_match_the_cpu_trainer(b, kBatch, 50, 1e-4, 1e-4, ModelConfig{XEmbedding::kSinusoidal, kXScale});
}

// The driver replays bit-identically: 50 steps in one run equal 30 steps,
// a download, a new trainer from that state, and 20 more (what resume does).
TEST_F(TrainStepGpu, ResumedRunIsBitIdentical) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = Schedule::linear();
  cpu::TrainConfig config;
  config.seed = seed;
  config.ema_decay = 0.99;
  config.steps = 50;
  cpu::TrainState whole = cpu::TrainState::fresh(seed), parts = whole;
  {
    gpu::GpuTrainer t(s, config, whole);
    t.run(50);
    t.download(whole);
  }
  config.steps = 30;
  {
    gpu::GpuTrainer t(s, config, parts);
    t.run(30);
    t.download(parts);
  }
  config.steps = 20;
  {
    gpu::GpuTrainer t(s, config, parts);
    t.run(20);
    t.download(parts);
  }
  EXPECT_EQ(whole.step, 50);
  EXPECT_EQ(parts.step, 50);
  EXPECT_EQ(0, std::memcmp(whole.params.data(), parts.params.data(), kParamCount * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(whole.adam_m.data(), parts.adam_m.data(), kParamCount * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(whole.adam_v.data(), parts.adam_v.data(), kParamCount * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(whole.ema.data(), parts.ema.data(), kParamCount * sizeof(float)));
}

// train() logs at the multiples of log_every and at the last step, with the
// losses that losses() returns for those steps.
TEST_F(TrainStepGpu, TrainLogsAtTheLogPoints) {
  const Schedule s = Schedule::linear();
  cpu::TrainConfig config;
  config.steps = 45;
  cpu::TrainState state = cpu::TrainState::fresh(7);
  state.step = 3;
  gpu::GpuTrainer t(s, config, state);
  std::vector<std::pair<int64_t, float>> logged;
  t.train(20, [&](int64_t step, float loss) { logged.emplace_back(step, loss); });
  ASSERT_EQ(logged.size(), 3u);
  EXPECT_EQ(logged[0].first, 20);
  EXPECT_EQ(logged[1].first, 40);
  EXPECT_EQ(logged[2].first, 48);
  const std::vector<float> all = t.losses(4, 45);
  for (const auto& [step, loss] : logged) EXPECT_EQ(loss, all[std::size_t(step - 4)]) << "step " << step;
  for (float l : all) EXPECT_TRUE(std::isfinite(l));
  EXPECT_THROW(t.run(1), Error);
}

// The seed's full run (5000 steps, batch 512) on both: the loss curves agree
// in shape (each 250-step window's mean within 5%) and in the final value
// (the mean of the last 500 losses within 3%). The runs drift apart in the
// weights (float rounding amplified by 5000 Adam steps), not in what they learn.
TEST_F(TrainStepGpu, FullRunLossCurveMatchesTheCpu) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = Schedule::linear();
  cpu::TrainConfig config;
  config.seed = seed;
  cpu::TrainState gpu_state = cpu::TrainState::fresh(seed), cpu_state = gpu_state;
  OnDevice b;
  const std::vector<float> got = b.train(s, config, gpu_state);
  std::vector<float> want;
  cpu::train(s, config, cpu_state, [&](int64_t, float loss) { want.push_back(loss); });
  ASSERT_EQ(got.size(), want.size());
  auto window_mean = [](const std::vector<float>& v, std::size_t a, std::size_t b) {
    double sum = 0;
    for (std::size_t i = a; i < b; ++i) sum += v[i];
    return sum / double(b - a);
  };
  constexpr std::size_t kWindow = 250;
  for (std::size_t a = 0; a + kWindow <= got.size(); a += kWindow) {
    const double g = window_mean(got, a, a + kWindow), w = window_mean(want, a, a + kWindow);
    EXPECT_NEAR(g, w, 0.05 * w) << "steps " << a + 1 << ".." << a + kWindow;
  }
  const double g = window_mean(got, got.size() - 500, got.size()), w = window_mean(want, want.size() - 500, want.size());
  EXPECT_NEAR(g, w, 0.03 * w) << "final loss";
  std::printf("final loss (mean of the last 500 steps): GPU %.5f, CPU %.5f\n", g, w);
}

}  // namespace
}  // namespace ddpm::kernels
