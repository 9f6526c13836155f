// The tools' --device cuda paths end to end on the emulated device: the very
// sources of ddpm_cuda_sample, ddpm_cuda_train, ddpm_cuda_nll and ddpm_bench, linked to it
// (ddpm_*_emu), against the CPU tool's output; and what only a GPU run can
// meet: out of memory, a faulting kernel, a GPU too small for a precision,
// resuming and interrupting a GPU training run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <cstdio>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>
#include <nlohmann/json.hpp>

#include "host/io/checkpoint.hpp"
#include "host/io/samples_io.hpp"
#include "tests/tools/tool_runner.hpp"

namespace ddpm {
namespace {

using testing::Background;
using testing::Result;
using testing::ScratchDir;
using testing::wait_until;

const std::string kTrain = DDPM_TRAIN_EMU_BIN;
const std::string kSample = DDPM_SAMPLE_EMU_BIN;
const std::string kNll = DDPM_NLL_EMU_BIN;
const std::string kBench = DDPM_BENCH_EMU_BIN;

// Runs an emulated tool with environment settings for its device ("" for the default H200).
Result run_on(const std::string& env, const std::string& bin, const std::string& args, const ScratchDir& dir) {
  return testing::run("/usr/bin/env", env + " '" + bin + "' " + args, dir);
}

// One line on stderr, "tool: error: ..." containing `what`.
void expect_one_error_line(const Result& r, const std::string& what) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(testing::count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("error: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
}

uint64_t fresh_seed() { return std::random_device{}() % 1000000; }

// Largest |a - b| / (1 + |b|) over two equally long lists of values (a NaN: infinity), or two sample files.
double max_difference(const std::vector<float>& x, const std::vector<float>& y) {
  EXPECT_EQ(x.size(), y.size());
  double worst = 0;
  for (std::size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
    const double d = std::abs(double(x[i]) - y[i]) / (1 + std::abs(double(y[i])));
    worst = std::max(worst, std::isnan(d) ? INFINITY : d);
  }
  return worst;
}
double max_difference(const std::string& a, const std::string& b) {
  return max_difference(io::read_samples(a), io::read_samples(b));
}

// Fixtures make their shared inputs once; a failure there fails each test in
// SetUp (a failed SetUpTestSuite would show as skips, which CTest counts as such).
class EmuDeviceTools : public ::testing::Test {
 protected:
  // A briefly trained model, made by the CPU path of the same tool.
  static void SetUpTestSuite() {
    dir_ = new ScratchDir;
    made_ = testing::run(kTrain, "--device cpu --steps 200 --batch 128 --loss-png '' --forward-png '' "
                                 "--loss-csv '' --out model.safetensors",
                         *dir_);
    ckpt_ = *dir_ / "model.safetensors";
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override { ASSERT_EQ(made_.exit_code, 0) << made_.err; }
  static ScratchDir* dir_;
  static Result made_;
  static std::string ckpt_;
};
ScratchDir* EmuDeviceTools::dir_ = nullptr;
Result EmuDeviceTools::made_;
std::string EmuDeviceTools::ckpt_;

// The whole 500-step chain in fp32 over chunks of awkward sizes (the last
// partial), the pinned double buffers and the GPU's statistics, against the CPU.
TEST_F(EmuDeviceTools, SampleFp32MatchesTheCpuAcrossChunks) {
  ScratchDir dir;
  std::mt19937 rng(fresh_seed());
  const int n = 100 + int(rng() % 80), chunk = 30 + int(rng() % 40);
  const std::string common = "--ckpt " + ckpt_ + " --png '' --seed " + std::to_string(rng() % 1000) + " --n " +
                             std::to_string(n);
  SCOPED_TRACE(common + " --chunk " + std::to_string(chunk));
  const Result cpu = testing::run(kSample, common + " --device cpu --out cpu.npy", dir);
  ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
  const Result gpu =
      testing::run(kSample, common + " --device cuda --chunk " + std::to_string(chunk) + " --out gpu.npy", dir);
  ASSERT_EQ(gpu.exit_code, 0) << gpu.err;
  EXPECT_NE(gpu.err.find("GPU fp32"), std::string::npos) << gpu.err;
  EXPECT_NE(gpu.err.find("over " + std::to_string(n) + " points"), std::string::npos) << gpu.err;  // the GPU's moments
  EXPECT_LE(max_difference(dir / "gpu.npy", dir / "cpu.npy"), 1e-4);
}

// A model trained on a file samples in its units on the GPU too: every point the exact map
// x * std + mean of the GPU's normalized one, the GPU's moments printed in those units, and
// the density image binned over them.
TEST_F(EmuDeviceTools, SampleInAFilesUnits) {
  ScratchDir dir;
  io::Checkpoint c = io::load_checkpoint(ckpt_);
  c.meta.data_scale = io::CheckpointMeta::DataScale{{100, -50}, {10, 0.1}};
  io::save_checkpoint(dir / "scaled.safetensors", c);
  // The units map whatever the sampler draws: DDIM's short chain (the fp32 ancestral chain on the GPU
  // has its own test above) keeps this test cheap under the sanitizers.
  const std::string common =
      "--ckpt scaled.safetensors --png '' --device cuda --sampler ddim --steps 10 --chunk 50 --n 120 --seed " +
      std::to_string(fresh_seed());
  SCOPED_TRACE(common);
  const Result data = testing::run(kSample, common + " --density d.png --out data.npy", dir);
  ASSERT_EQ(data.exit_code, 0) << data.err;
  const Result norm = testing::run(kSample, common + " --units normalized --out norm.npy", dir);
  ASSERT_EQ(norm.exit_code, 0) << norm.err;
  const std::vector<float> x = io::read_samples(dir / "data.npy"), z = io::read_samples(dir / "norm.npy");
  ASSERT_EQ(x.size(), z.size());
  const double mean[2] = {100, -50}, sd[2] = {10, 0.1};
  for (std::size_t i = 0; i < x.size(); ++i)
    ASSERT_EQ(x[i], float(std::fma(double(z[i]), sd[i % 2], mean[i % 2]))) << i;
  double sum[2] = {0, 0};
  for (std::size_t i = 0; i < x.size(); ++i) sum[i % 2] += x[i];
  double got[2] = {NAN, NAN};
  const std::size_t at = data.err.find(": mean (");
  ASSERT_NE(at, std::string::npos) << data.err;
  ASSERT_EQ(std::sscanf(data.err.c_str() + at, ": mean (%lf, %lf)", &got[0], &got[1]), 2) << data.err;
  for (int d = 0; d < 2; ++d) EXPECT_NEAR(got[d], sum[d] / double(x.size() / 2), 1e-3 * sd[d]) << d;
  EXPECT_EQ(testing::slurp(dir / "d.png").substr(1, 3), "PNG");
}

// The tensor-core samplers (and fp32) through DDIM's short chain: each to its own rounding.
TEST_F(EmuDeviceTools, SampleDdimMatchesTheCpuInEveryPrecision) {
  ScratchDir dir;
  std::mt19937 rng(fresh_seed());
  const int n = 40 + int(rng() % 30);
  const std::string common = "--ckpt " + ckpt_ + " --png '' --sampler ddim --steps 4 --eta 1 --seed " +
                             std::to_string(rng() % 1000) + " --n " + std::to_string(n);
  const Result cpu = testing::run(kSample, common + " --device cpu --out cpu.npy", dir);
  ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
  for (const auto& [precision, tol] : {std::pair{"fp32", 1e-4}, {"tf32", 2e-2}, {"bf16", 1e-1}}) {
    SCOPED_TRACE(std::string(precision) + " " + common);
    const std::string out = std::string(precision) + ".npy";
    const Result gpu =
        testing::run(kSample, common + " --device cuda --chunk 16 --precision " + precision + " --out " + out, dir);
    ASSERT_EQ(gpu.exit_code, 0) << gpu.err;
    EXPECT_LE(max_difference(dir / out, dir / "cpu.npy"), tol);
  }
}

// The solvers in the persistent kernels through the tool: DPM-Solver++(2M),
// its SDE variant (noise drawn in the kernel) and Heun in every precision
// against the CPU, and GPU shards made with --first concatenating to the one
// run's file byte for byte.
TEST_F(EmuDeviceTools, SolversMatchTheCpuAndShardsConcatenate) {
  ScratchDir dir;
  std::mt19937 rng(fresh_seed());
  const int n = 40 + int(rng() % 30);
  for (const std::string sampler : {"--sampler dpmpp-2m --steps 5", "--sampler dpmpp-2m-sde --steps 5",
                                    "--sampler heun --steps 3"}) {
    const std::string common = "--ckpt " + ckpt_ + " --png '' " + sampler + " --seed " + std::to_string(rng() % 1000);
    SCOPED_TRACE(common);
    const Result cpu = testing::run(kSample, common + " --n " + std::to_string(n) + " --device cpu --out cpu.npy", dir);
    ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
    for (const auto& [precision, tol] : {std::pair{"fp32", 1e-4}, {"tf32", 2e-2}, {"bf16", 1e-1}}) {
      SCOPED_TRACE(precision);
      const std::string out = std::string(precision) + ".npy";
      const Result gpu = testing::run(kSample, common + " --n " + std::to_string(n) +
                                                   " --device cuda --chunk 16 --precision " + precision + " --out " + out,
                                      dir);
      ASSERT_EQ(gpu.exit_code, 0) << gpu.err;
      EXPECT_LE(max_difference(dir / out, dir / "cpu.npy"), tol);
    }
    std::string joined;
    for (const auto& [first, len] : {std::pair{0, 17}, {17, n - 17}}) {
      const Result r = testing::run(kSample, common + " --device cuda --first " + std::to_string(first) + " --n " +
                                                 std::to_string(len) + " --out shard.npy",
                                    dir);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      joined += testing::slurp(dir / "shard.npy").substr(128);
    }
    EXPECT_TRUE(testing::slurp(dir / "fp32.npy").substr(128) == joined);
  }
}

// ddpm_cuda_nll's GPU path (the fused likelihood kernels through GpuLikelihood) against its CPU path, on a
// tiny model (T = 40) with EMA weights: every mean of the report within 1e-4 relative, the standard errors
// and the ODE's error estimate within 1e-3, the counts equal. Both run the same float arithmetic per point
// (the bound's T weighted errors summed in the CPU's order, the RK4 table's stages), but the GPU's network
// sums in another order (the output layer by a warp's shuffle butterfly): each evaluation differs by float
// rounding, a few 1e-7 relative, and a point's sums of T terms or of the ODE's stages by up to ~1e-5 in
// the worst case. On the emulated device the normals are the host's (the fast intrinsics map to exact
// ones) and the means agree to ~1e-8; the bar is the one a GPU's run should meet too, where cuRAND's
// __sincosf and __logf move each normal by up to ~1e-5 (ddpm/rng.hpp). (A 0.1% error in the ODE's
// points, or the bound's noise drawn with another seed, fails it.) --grid draws its heat map from the
// GPU's ODE and sampler.
TEST(EmuDeviceNll, MatchesTheCpu) {
  ScratchDir dir;
  const Result made = testing::run(kTrain, "--device cpu --steps 60 --batch 64 --T 40 --ema 0.9 --loss-png '' "
                                           "--forward-png '' --loss-csv '' --out tiny.safetensors",
                                   dir);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const uint64_t seed = fresh_seed();
  for (const std::string what : {"--ode-steps 4", "--what bound --variance beta"}) {
    const std::string common = "--ckpt tiny.safetensors --n 50 --json --seed " + std::to_string(seed) + " " + what;
    SCOPED_TRACE(common);
    const Result cpu = testing::run(kNll, common + " --device cpu", dir);
    ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
    const Result gpu = testing::run(kNll, common + " --device cuda --out gpu.json", dir);
    ASSERT_EQ(gpu.exit_code, 0) << gpu.err;
    const nlohmann::json c = nlohmann::json::parse(cpu.out), g = nlohmann::json::parse(gpu.out);
    EXPECT_EQ(testing::slurp(dir / "gpu.json"), gpu.out);
    EXPECT_EQ(g.at("device"), "GPU fp32");
    EXPECT_EQ(g.at("weights"), "EMA");
    EXPECT_EQ(g.at("n"), 50);
    const auto close = [](const nlohmann::json& a, const nlohmann::json& b, double rel) {
      const double x = a.get<double>(), y = b.get<double>();
      EXPECT_LE(std::abs(x - y), rel * std::max(std::abs(y), 1e-3)) << x << " vs " << y;
    };
    ASSERT_EQ(c.contains("exact"), g.contains("exact"));
    ASSERT_TRUE(c.contains("bound") && g.contains("bound"));
    for (const char* part : {"total", "L_T", "L_steps", "L_0"}) {
      SCOPED_TRACE(part);
      close(g["bound"][part]["mean"], c["bound"][part]["mean"], 1e-4);
      close(g["bound"][part]["se"], c["bound"][part]["se"], 1e-3);
    }
    EXPECT_EQ(g["bound"]["evaluations"], c["bound"]["evaluations"]);
    EXPECT_EQ(g["bound"]["variance"], c["bound"]["variance"]);
    if (c.contains("exact")) {
      close(g["exact"]["nll"]["mean"], c["exact"]["nll"]["mean"], 1e-4);
      close(g["exact"]["nll"]["se"], c["exact"]["nll"]["se"], 1e-3);
      close(g["exact"]["ode_error"], c["exact"]["ode_error"], 1e-3);
      EXPECT_EQ(g["exact"]["evaluations"], c["exact"]["evaluations"]);
      EXPECT_EQ(g["exact"]["ode"], "rk4, 4 steps");
    }
  }
  const Result grid = testing::run(kNll, "--ckpt tiny.safetensors --n 50 --ode-steps 4 --device cuda --grid 8 "
                                         "--png heat.png",
                                   dir);
  ASSERT_EQ(grid.exit_code, 0) << grid.err;
  EXPECT_NE(grid.err.find("wrote heat.png (8 x 8 grid"), std::string::npos) << grid.err;
  EXPECT_EQ(testing::slurp(dir / "heat.png").substr(1, 3), "PNG");
  // The adaptive integrator is the CPU's alone.
  expect_one_error_line(testing::run(kNll, "--ckpt tiny.safetensors --device cuda --ode adaptive", dir),
                        "--ode adaptive runs on the CPU only");
}

// Running out of GPU memory: one line with what was asked, and the remedy; no file.
TEST_F(EmuDeviceTools, SampleOutOfMemoryIsOneLineSuggestingASmallerChunk) {
  ScratchDir dir;
  const Result r = run_on("DDPM_EMU_DEVICE_MEMORY=12M", kSample,
                          "--ckpt " + ckpt_ + " --device cuda --n 2000000 --png '' --out s.npy", dir);
  expect_one_error_line(r, "out of GPU memory: a chunk of 1048576 samples needs 8 MiB");
  EXPECT_NE(r.err.find("try a smaller --chunk"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "s.npy"));
}

// A kernel that faults: the run ends with one line naming the CUDA error, and leaves no file.
TEST_F(EmuDeviceTools, SampleKernelFaultIsOneLineAndLeavesNoFile) {
  ScratchDir dir;
  const Result r = run_on("DDPM_EMU_FAIL_LAUNCH=1", kSample,
                          "--ckpt " + ckpt_ + " --device cuda --n 30 --png '' --out s.npy", dir);
  expect_one_error_line(r, "cudaErrorLaunchFailure");
  EXPECT_EQ(dir.files(), std::vector<std::string>{});
}

// Any failed allocation (here the first, the weights') is one line naming what it was for.
TEST_F(EmuDeviceTools, SampleAllocationFailureIsOneLine) {
  ScratchDir dir;
  const Result r = run_on("DDPM_EMU_FAIL_ALLOC=1", kSample, "--ckpt " + ckpt_ + " --device cuda --n 30 --png ''", dir);
  expect_one_error_line(r, "out of GPU memory: the sampler's weights needs");
}

// The L4 offers 99 KB of shared memory per block; tf32 needs 134 KB.
TEST_F(EmuDeviceTools, SampleTf32IsRefusedWhereSharedMemoryIsShort) {
  ScratchDir dir;
  const Result r = run_on("DDPM_EMU_DEVICE=l4", kSample,
                          "--ckpt " + ckpt_ + " --device cuda --precision tf32 --n 30 --png '' --out s.npy", dir);
  expect_one_error_line(r, "precision tf32 needs");
  EXPECT_NE(r.err.find("this GPU offers 101376"), std::string::npos) << r.err;
  // fp32 fits there.
  const Result fp32 = run_on("DDPM_EMU_DEVICE=l4", kSample,
                             "--ckpt " + ckpt_ + " --device cuda --sampler ddim --steps 3 --n 30 --png '' --out s.npy",
                             dir);
  EXPECT_EQ(fp32.exit_code, 0) << fp32.err;
}

// A CUDA version as the tools print it: 13000 -> "13.0".
std::string cuda_version(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

TEST_F(EmuDeviceTools, NoDeviceIsOneLine) {
  ScratchDir dir;
  const std::string no_device = "--device cuda: the NVIDIA driver (CUDA " + cuda_version(CUDART_VERSION) +
                                ") finds no CUDA device";
  expect_one_error_line(run_on("DDPM_EMU_DEVICE=none", kSample, "--ckpt " + ckpt_ + " --device cuda --n 3", dir),
                        no_device);
  expect_one_error_line(run_on("DDPM_EMU_DEVICE=none", kTrain, "--device cuda --steps 2", dir), no_device);
}

// Why there is no GPU, in the first line a user reads: no driver at all, a driver older than the
// runtime (both are cudaErrorInsufficientDriver to CUDA), or a driver that finds no device.
TEST_F(EmuDeviceTools, TheFirstLineSaysWhyThereIsNoGpu) {
  const int older = (CUDART_VERSION / 1000 - 1) * 1000 + 20;  // the previous major version's x.2
  const struct {
    std::string env, line;
  } cases[] = {
      {"DDPM_EMU_DRIVER_VERSION=0", "no NVIDIA driver found (libcuda.so.1)"},
      {"DDPM_EMU_DRIVER_VERSION=" + std::to_string(older),
       "the NVIDIA driver (CUDA " + cuda_version(older) + ") is older than this build's CUDA runtime (" +
           cuda_version(CUDART_VERSION) + "): update the driver"},
      {"DDPM_EMU_DEVICE=none", "the NVIDIA driver (CUDA " + cuda_version(CUDART_VERSION) + ") finds no CUDA device"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.env);
    ScratchDir dir;
    // auto: one line on stderr, then the CPU does the work.
    const Result a = run_on(c.env, kSample, "--ckpt " + ckpt_ + " --n 3 --png '' --out s.npy", dir);
    EXPECT_EQ(a.exit_code, 0) << a.err;
    EXPECT_EQ(a.err.substr(0, a.err.find('\n') + 1), "ddpm_cuda_sample: " + c.line + "; using the CPU\n");
    EXPECT_TRUE(std::filesystem::exists(dir / "s.npy"));
    // cuda: the same reason as a one-line error, and no output.
    const Result forced = run_on(c.env, kSample, "--ckpt " + ckpt_ + " --device cuda --n 3 --png '' --out t.npy", dir);
    expect_one_error_line(forced, "--device cuda: " + c.line);
    EXPECT_FALSE(std::filesystem::exists(dir / "t.npy"));
  }
}

// ---- Training ----

const std::string kTrainArgs = "--batch 32 --log-every 0 --loss-png '' --forward-png '' ";

std::vector<std::string> train_argv(int steps, uint64_t seed, const std::string& out) {
  return {"--device", "cuda", "--steps", std::to_string(steps), "--seed", std::to_string(seed), "--batch", "32",
          "--checkpoint-every", "4", "--log-every", "0", "--loss-png", "", "--forward-png", "",
          "--loss-csv", "loss.csv", "--out", out};
}
std::string joined(const std::vector<std::string>& args) {
  std::string s;
  for (const std::string& a : args) s += " '" + a + "'";
  return s;
}

class EmuDeviceTraining : public ::testing::Test {
 protected:
  static constexpr int kSteps = 12;
  // The uninterrupted GPU run every other run is held to.
  static void SetUpTestSuite() {
    seed_ = fresh_seed();
    dir_ = new ScratchDir;
    made_ = testing::run(kTrain, joined(train_argv(kSteps, seed_, "whole.safetensors")), *dir_);
    if (made_.exit_code == 0) whole_ = io::load_checkpoint(*dir_ / "whole.safetensors");
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override { ASSERT_EQ(made_.exit_code, 0) << made_.err; }
  static uint64_t seed_;
  static ScratchDir* dir_;
  static Result made_;
  static io::Checkpoint whole_;
};
uint64_t EmuDeviceTraining::seed_ = 0;
ScratchDir* EmuDeviceTraining::dir_ = nullptr;
Result EmuDeviceTraining::made_;
io::Checkpoint EmuDeviceTraining::whole_;

TEST_F(EmuDeviceTraining, MatchesTheCpu) {
  ScratchDir dir;
  std::vector<std::string> args = train_argv(kSteps, seed_, "cpu.safetensors");
  args[1] = "cpu";
  const Result r = testing::run(kTrain, joined(args), dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LE(max_difference(whole_.params, io::load_checkpoint(dir / "cpu.safetensors").params), 1e-4);
}

// Starts the whole run in dir, sends `sig` once its first checkpoint (step 4)
// is written (the run is inside its loop), and returns its exit status.
int signal_after_first_checkpoint(const ScratchDir& dir, uint64_t seed, int steps, int sig) {
  Background bg(kTrain, train_argv(steps, seed, "ckpt.safetensors"), dir.path.string(), dir / "out.txt",
                dir / "err.txt");
  EXPECT_TRUE(bg.started());
  EXPECT_TRUE(wait_until([&] { return std::filesystem::exists(dir / "ckpt.safetensors"); }, 600));  // TSan is slow
  bg.signal(sig);
  return bg.wait();
}

// The same command line plus --resume: returns the finished run's weights.
std::vector<float> resume(const ScratchDir& dir, uint64_t seed, int steps) {
  std::vector<std::string> args = train_argv(steps, seed, "ckpt.safetensors");
  args.insert(args.end(), {"--resume", "ckpt.safetensors"});
  const Result r = testing::run(kTrain, joined(args), dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? io::load_checkpoint(dir / "ckpt.safetensors").params : std::vector<float>{};
}

// Killed (SIGKILL) after a checkpoint, resumed on the GPU: the whole run's weights.
TEST_F(EmuDeviceTraining, ResumesAfterAKill) {
  ScratchDir dir;
  signal_after_first_checkpoint(dir, seed_, kSteps, SIGKILL);
  EXPECT_EQ(resume(dir, seed_, kSteps), whole_.params);
}

// SIGINT stops the GPU run at a segment's end with a resumable checkpoint; resuming finishes it.
TEST_F(EmuDeviceTraining, SigintCheckpointsAndTheRunResumes) {
  ScratchDir dir;
  EXPECT_EQ(signal_after_first_checkpoint(dir, seed_, kSteps, SIGINT), 128 + SIGINT);
  const std::string err = testing::slurp(dir / "err.txt");
  EXPECT_NE(err.find("continue with --resume ckpt.safetensors"), std::string::npos) << err;
  EXPECT_EQ(resume(dir, seed_, kSteps), whole_.params);
}

// An absurd learning rate diverges on the GPU as on the CPU: stopped, said in one line.
TEST(EmuDeviceTrainingErrors, DivergenceStopsTheRun) {
  ScratchDir dir;
  const Result r = testing::run(kTrain, "--device cuda --steps 6 --lr 1e5 " + kTrainArgs + "--out d.safetensors", dir);
  expect_one_error_line(r, "loss became non-finite");
  EXPECT_NE(r.err.find("training stopped"), std::string::npos) << r.err;
}

// A kernel of the training step faults (the fifth to run: inside the first graph replays).
TEST(EmuDeviceTrainingErrors, KernelFaultIsOneLine) {
  ScratchDir dir;
  const Result r =
      run_on("DDPM_EMU_FAIL_LAUNCH=5", kTrain, "--device cuda --steps 8 " + kTrainArgs + "--out f.safetensors", dir);
  expect_one_error_line(r, "cudaErrorLaunchFailure");
  EXPECT_FALSE(std::filesystem::exists(dir / "f.safetensors"));
}

TEST(EmuDeviceTrainingErrors, OutOfMemoryIsOneLineSuggestingASmallerBatch) {
  ScratchDir dir;
  // The weights and tables fit in 4 MiB; a million-point batch does not.
  const Result r = run_on("DDPM_EMU_DEVICE_MEMORY=4M", kTrain,
                          "--device cuda --steps 2 --batch 1048576 --log-every 0 --loss-png '' --forward-png '' "
                          "--out t.safetensors",
                          dir);
  expect_one_error_line(r, "out of GPU memory: the training state needs 8 MiB");
  EXPECT_NE(r.err.find("try a smaller --batch"), std::string::npos) << r.err;
}

// The x encoding on the GPU: training and sampling in every precision match
// the CPU tool's (the tensor cores' precisions on a 4-step DDIM chain, as above).
TEST(EmuDeviceXEmbedding, TrainsAndSamplesAsTheCpuTool) {
  ScratchDir dir;
  const std::string train = "--steps 3 --T 6 --x-embedding sinusoidal " + kTrainArgs;
  const Result c = testing::run(kTrain, "--device cpu --out cpu.safetensors " + train, dir);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  const Result t = testing::run(kTrain, "--device cuda --out gpu.safetensors " + train, dir);
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const io::Checkpoint trained = io::load_checkpoint(dir / "gpu.safetensors");
  EXPECT_EQ(trained.meta.model.x_embedding, XEmbedding::kSinusoidal);
  EXPECT_LE(max_difference(trained.params, io::load_checkpoint(dir / "cpu.safetensors").params), 1e-4);
  const std::string args = "--n 90 --chunk 70 --png '' --ckpt cpu.safetensors --out ";
  ASSERT_EQ(testing::run(kSample, "--device cpu " + args + "cpu.npy", dir).exit_code, 0);
  const Result g = testing::run(kSample, "--device cuda " + args + "gpu.npy", dir);
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_LE(max_difference(dir / "gpu.npy", dir / "cpu.npy"), 1e-4);
  const std::string ddim = "--sampler ddim --steps 4 " + args;
  ASSERT_EQ(testing::run(kSample, "--device cpu " + ddim + "cpu4.npy", dir).exit_code, 0);
  for (const auto& [p, tol] : {std::pair{"tf32", 1e-3}, {"bf16", 1e-2}}) {
    const Result s = testing::run(kSample, "--device cuda --precision " + std::string(p) + " " + ddim + p + ".npy", dir);
    ASSERT_EQ(s.exit_code, 0) << s.err;
    EXPECT_LE(max_difference(dir / (std::string(p) + ".npy"), dir / "cpu4.npy"), tol) << p;
  }
  // bf16 with the x encoding fits an L4's 99 KB (sm_89, the smallest opt-in limit of the supported GPUs).
  const Result l4 = run_on("DDPM_EMU_DEVICE=l4", kSample, "--device cuda --precision bf16 " + ddim + "l4.npy", dir);
  ASSERT_EQ(l4.exit_code, 0) << l4.err;
  EXPECT_LE(max_difference(dir / "l4.npy", dir / "cpu4.npy"), 1e-2);
  // A third layer of tf32 fragments needs sm_90's shared memory: an A100's opt-in limit is short of it.
  const Result a100 = run_on("DDPM_EMU_DEVICE=a100", kSample, "--device cuda --precision tf32 " + args + "s.npy", dir);
  expect_one_error_line(a100, "precision tf32 with the x encoding needs 198672 bytes of shared memory per block");
  EXPECT_FALSE(std::filesystem::exists(dir / "s.npy"));
}

// ---- The benchmark's own setup: ceilings, timers, the L2 flush, checks ----
TEST(EmuDeviceBench, KernelSuiteRunsOnSmallSizes) {
  if (kBench.empty()) GTEST_SKIP() << "this build has no benchmarks (DDPM_BUILD_BENCH=OFF)";
  ScratchDir dir;
  const Result r = run_on("DDPM_EMU_DEVICE_MEMORY=256M", kBench,
                          "--only kernels --device cuda --sizes 64 --gemm-n 48 --warmup 0 --min-reps 1 --max-reps 1 "
                          "--min-time 0 --filter fp32 --json k.json",
                          dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("GPU kernels: NVIDIA H200 (emulated)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sample_fused fp32 T=500"), std::string::npos) << r.out;
  EXPECT_NE(testing::slurp(dir / "k.json").find("\"sgemm_fp32_tflops\""), std::string::npos);
}

// The end-to-end GPU jobs through the tool's drivers, for both models, on the
// CUDA cores and the tensor cores. Each row's TFLOP/s must be the napkin
// math's FLOPs over its own time (the same FLOPs in every precision), and only
// the seed's trained model keeps its samples, one file per precision.
TEST(EmuDeviceBench, EndToEndTimesTheGpuJobsOfBothModels) {
  if (kBench.empty()) GTEST_SKIP() << "this build has no benchmarks (DDPM_BUILD_BENCH=OFF)";
  ScratchDir dir;
  std::filesystem::create_directory(dir / "samples");
  const int64_t n = 8, steps = 500;
  const Result r = run_on("DDPM_EMU_DEVICE_MEMORY=256M", kBench,
                          "--only e2e --steps 2 --n 16 --gpu-n " + std::to_string(n) +
                              " --gpu-jobs 'fused fp32,fused bf16,fused-xemb fp32,fused-xemb bf16'"
                              " --samples-dir samples --json e.json",
                          dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json rows = nlohmann::json::parse(testing::slurp(dir / "e.json"))["gpu_sampler"]["rows"];
  ASSERT_EQ(rows.size(), 4u) << rows.dump();
  // Per point-step, the time term hoisted: layer 0's x part, two hidden layers, the output.
  const double seed_flop = 2.0 * (2 * 128 + 2 * 128 * 128 + 128 * 2);
  const double xemb_flop = 2.0 * (128 * 128 + 2 * 128 * 128 + 128 * 2);
  const std::pair<std::string, double> want[] = {{"fused fp32 8 x 500", seed_flop},
                                                 {"fused bf16 8 x 500", seed_flop},
                                                 {"fused-xemb fp32 8 x 500", xemb_flop},
                                                 {"fused-xemb bf16 8 x 500", xemb_flop}};
  for (std::size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(rows[i].dump());
    ASSERT_EQ(rows[i].value("job", ""), want[i].first);
    const double secs = rows[i].value("seconds", -1.0), tflops = rows[i].value("tflops", -1.0);
    ASSERT_GT(secs, 0);
    EXPECT_NEAR(tflops * secs * 1e12 / (double(n) * steps), want[i].second, 1e-6 * want[i].second);
  }
  EXPECT_EQ(io::read_samples(dir / "samples/fused_fp32.npy").size(), std::size_t(2 * n));
  EXPECT_EQ(io::read_samples(dir / "samples/fused_bf16.npy").size(), std::size_t(2 * n));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir / "samples"), {}), 2);
}

}  // namespace
}  // namespace ddpm
