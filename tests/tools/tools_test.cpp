#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <utility>
#include <sstream>

#include "ddpm/params.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/io/checkpoint.hpp"
#include "host/io/safetensors.hpp"
#include "host/io/samples_io.hpp"
#include "tests/io/python.hpp"
#include "tests/io/state_dict_bytes.hpp"
#include "tests/tools/tool_runner.hpp"

namespace ddpm {
namespace {

using testing::moments_of;
using testing::Moments2;
using testing::write_points;

using testing::run;
using testing::ScratchDir;

// The error is one line, the last, naming `needle`; the only other line allowed is --device auto's choice
// ("tool: <why>; using the CPU", or "...; using the GPU").
void expect_one_error_line(const std::string& err, const std::string& needle) {
  std::vector<std::string> lines;
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("error: "), std::string::npos) << err;
  EXPECT_NE(lines.back().find(needle), std::string::npos) << err;
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) EXPECT_NE(lines[i].find("; using the "), std::string::npos) << err;
  EXPECT_LE(lines.size(), 2u) << err;
}

// A bad value: exit code as given, exactly one line on stderr naming `needle`, nothing written.
void expect_clean_failure(const std::string& bin, const std::string& args, int code, const std::string& needle) {
  SCOPED_TRACE(bin + " " + args);
  ScratchDir dir;
  const auto r = run(bin, args, dir);
  EXPECT_EQ(r.exit_code, code);
  expect_one_error_line(r.err, needle);
  EXPECT_TRUE(dir.files().empty()) << "left behind: " << (dir.files().empty() ? "" : dir.files()[0]);
}

TEST(TrainTool, RejectsBadFlagValuesWithOneLine) {
  const std::string bin = DDPM_TRAIN_BIN;
  for (const char* bad : {"--steps abc", "--steps -5", "--steps 0", "--steps 99999999999999999999999", "--steps 1.5",
                          "--steps 010", "--steps 0x10"})
    expect_clean_failure(bin, bad, 2, "--steps");
  expect_clean_failure(bin, "--batch 1", 2, "--batch");
  expect_clean_failure(bin, "--batch 100000000", 2, "--batch");
  expect_clean_failure(bin, "--lr 0", 2, "--lr");
  expect_clean_failure(bin, "--lr -1e-3", 2, "--lr");
  expect_clean_failure(bin, "--lr nan", 2, "--lr");
  expect_clean_failure(bin, "--T 0", 2, "--T");
  expect_clean_failure(bin, "--T 1000000000", 2, "--T");
  expect_clean_failure(bin, "--seed -1", 2, "--seed");
  expect_clean_failure(bin, "--device tpu", 2, "--device");
  expect_clean_failure(bin, "--no-such-flag", 2, "no-such-flag");
  expect_clean_failure(bin, "--steps 2 --beta-1 0.5 --beta-T 0.1", 2, "beta");
  expect_clean_failure(bin, "--recipe turbo", 2, "turbo");
}

TEST(TrainTool, UnwritableOutputIsOneLineAndLeavesNothing) {
  expect_clean_failure(DDPM_TRAIN_BIN, "--steps 2 --batch 8 --out missing_dir/ckpt.safetensors", 1, "missing_dir");
}

TEST(TrainTool, CudaWithoutAGpuIsAClearError) {
  ScratchDir dir;
  if (testing::run("/bin/sh", "-c 'command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null'", dir).exit_code == 0)
    GTEST_SKIP() << "a GPU is present";
  expect_clean_failure(DDPM_TRAIN_BIN, "--device cuda --steps 2", 1, "--device cuda: ");
  // Why, in words to act on: no driver, a driver too old, or a driver without a device.
  const std::string err = run(DDPM_TRAIN_BIN, "--device cuda --steps 2", dir).err;
  EXPECT_TRUE(err.find("no NVIDIA driver found (libcuda.so.1)") != std::string::npos ||
              err.find("is older than this build's CUDA runtime") != std::string::npos ||
              err.find("finds no CUDA device") != std::string::npos)
      << err;
}

TEST(TrainTool, HelpListsEveryFlagWithItsDefault) {
  ScratchDir dir;
  const auto r = run(DDPM_TRAIN_BIN, "--help", dir);
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"--steps", "--batch", "--lr", "--T", "--seed", "--device", "--out", "--loss-csv",
                           "--loss-png", "--forward-png", "--print-schedule"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  for (const char* def : {"5000", "512", "0.001", "500", "auto", "ddpm_ckpt.safetensors"})
    EXPECT_NE(r.out.find(def), std::string::npos) << def;
}

TEST(TrainTool, PrintsTheScheduleAsCsv) {
  ScratchDir dir;
  const auto r = run(DDPM_TRAIN_BIN, "--print-schedule", dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::count_lines(r.out), 502);
  EXPECT_EQ(r.out.rfind("t,beta,alpha,alpha_bar,posterior_variance\n0,0,1,1,0\n1,9.99999975e-05,", 0), 0u) << r.out.substr(0, 120);
  EXPECT_NE(r.out.find("\n500,0.0199999996,0.980000019,"), std::string::npos);
}

TEST(TrainTool, SameSeedSameBytesAndAllOutputsWritten) {
  ScratchDir a, b;
  const std::string args = "--steps 30 --batch 64 --seed 9 --device cpu";
  ASSERT_EQ(run(DDPM_TRAIN_BIN, args, a).exit_code, 0);
  ASSERT_EQ(run(DDPM_TRAIN_BIN, args, b).exit_code, 0);
  for (const char* f : {"ddpm_ckpt.safetensors", "ddpm_loss.csv", "ddpm_loss.png", "ddpm_forward.png"}) {
    EXPECT_FALSE(testing::slurp(a / f).empty()) << f;
    EXPECT_EQ(testing::slurp(a / f), testing::slurp(b / f)) << f;
  }
  const std::string csv = testing::slurp(a / "ddpm_loss.csv");
  EXPECT_EQ(testing::count_lines(csv), 31);
  ScratchDir c;
  ASSERT_EQ(run(DDPM_TRAIN_BIN, "--steps 30 --batch 64 --seed 10 --device cpu", c).exit_code, 0);
  EXPECT_NE(testing::slurp(a / "ddpm_ckpt.safetensors"), testing::slurp(c / "ddpm_ckpt.safetensors"));
}

// --recipe R --steps N: the recipe's warm-up keeps its share of the run
// (quality: 200 of 10,000 steps, 2%, rounded to a step) and the cosine spans
// N; a flag given explicitly wins. The values written here are that rule by
// hand, read back from the run settings the checkpoint stores.
TEST(TrainTool, RecipeSchedulesScaleWithSteps) {
  const struct {
    const char* args;
    const char* warmup;
    const char* decay_steps;
  } cases[] = {
      {"--recipe quality --steps 50", "1", "50"},
      {"--recipe quality --steps 75", "2", "75"},    // 1.5, rounded up
      {"--recipe quality --steps 120", "2", "120"},  // 2.4, rounded down
      {"--recipe quality --steps 40 --warmup 7", "7", "40"},
      {"--recipe fast --steps 100", "2", "100"},     // fast: 2% too
      {"--recipe quality --steps 1", "0", "1"},
      {"--recipe seed --steps 30", "0", nullptr},    // the seed's: no warm-up, no cosine
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    ScratchDir dir;
    const auto r = run(DDPM_TRAIN_BIN,
                       std::string(c.args) +
                           " --batch 8 --T 10 --device cpu --log-every 0 --loss-csv '' --loss-png '' --forward-png ''",
                       dir);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const io::Checkpoint ckpt = io::load_checkpoint(dir / "ddpm_ckpt.safetensors");
    EXPECT_EQ(ckpt.meta.run.at("warmup"), c.warmup);
    const auto decay_steps = ckpt.meta.run.find("lr-decay-steps");
    if (c.decay_steps == nullptr)
      EXPECT_EQ(decay_steps, ckpt.meta.run.end());
    else if (decay_steps == ckpt.meta.run.end())
      ADD_FAILURE() << "no lr-decay-steps";
    else
      EXPECT_EQ(decay_steps->second, c.decay_steps);
  }
}

// Every --ema warms up as diffusers' EMAModel does: the first update has decay
// 0, so after one step the EMA is that step's weights exactly, whatever --ema.
TEST(TrainTool, EmaWarmsUpFromTheFirstStep) {
  ScratchDir dir;
  const auto r = run(DDPM_TRAIN_BIN,
                     "--steps 1 --batch 8 --T 10 --ema 0.9 --device cpu --loss-csv '' --loss-png '' --forward-png ''", dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const io::Checkpoint ckpt = io::load_checkpoint(dir / "ddpm_ckpt.safetensors");
  ASSERT_EQ(ckpt.ema.size(), ckpt.params.size());
  EXPECT_EQ(ckpt.ema, ckpt.params);
}

// --cpu-isa: both builds write the same checkpoint bytes (the CPU backend's
// promise); an unknown name is a usage error. Where the CPU lacks AVX-512,
// asking for it is a one-line error instead.
TEST(TrainTool, CpuIsaBuildsWriteTheSameCheckpoint) {
  const std::string args = "--steps 12 --batch 70 --seed 5 --device cpu --loss-png '' --forward-png '' --cpu-isa ";
  ScratchDir a, b;
  const auto ra = run(DDPM_TRAIN_BIN, args + "avx2", a);
  ASSERT_EQ(ra.exit_code, 0) << ra.err;
  EXPECT_NE(ra.err.find("CPU avx2"), std::string::npos) << ra.err;
  if (cpu::cpu_supports(cpu::CpuIsa::kAvx512)) {
    const auto rb = run(DDPM_TRAIN_BIN, args + "avx512", b);
    ASSERT_EQ(rb.exit_code, 0) << rb.err;
    EXPECT_NE(rb.err.find("CPU avx512"), std::string::npos) << rb.err;
    EXPECT_EQ(testing::slurp(a / "ddpm_ckpt.safetensors"), testing::slurp(b / "ddpm_ckpt.safetensors"));
  } else {
    expect_clean_failure(DDPM_TRAIN_BIN, args + "avx512", 1, "lacks AVX-512");
  }
  expect_clean_failure(DDPM_TRAIN_BIN, args + "avx3", 2, "--cpu-isa");
}

class SampleTool : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScratchDir;
    made_ = run(DDPM_TRAIN_BIN, "--steps 20 --batch 64 --T 40 --device cpu --loss-png '' --forward-png ''", *dir_);
    ckpt_ = *dir_ / "ddpm_ckpt.safetensors";
  }
  static void TearDownTestSuite() { delete dir_; }
  // Here, not in SetUpTestSuite: a failure there shows as skips, which CTest counts as such.
  void SetUp() override { ASSERT_EQ(made_.exit_code, 0) << made_.err; }
  static inline ScratchDir* dir_ = nullptr;
  static inline testing::Result made_;
  static inline std::string ckpt_;
};

TEST_F(SampleTool, RejectsBadInputWithOneLineAndLeavesNothing) {
  const std::string bin = DDPM_SAMPLE_BIN, ck = " --ckpt " + ckpt_;
  for (const char* bad : {"--n 0", "--n -3", "--n abc", "--n 1e99", "--n 010"}) expect_clean_failure(bin, bad + ck, 2, "--n");
  expect_clean_failure(bin, "--seed x" + ck, 2, "--seed");
  expect_clean_failure(bin, "--n 10 --ckpt missing.safetensors", 1, "missing.safetensors");
  expect_clean_failure(bin, "--n 10 --out samples.txt" + ck, 1, "samples.txt");
  expect_clean_failure(bin, "--n 10 --out no_dir/s.npy" + ck, 1, "no_dir");
  expect_clean_failure(bin, "--n 10 --png no_dir/s.png --out ''" + ck, 1, "no_dir");
  // A truncated checkpoint.
  ScratchDir dir;
  const std::string full = testing::slurp(ckpt_);
  for (std::size_t len : {std::size_t(0), std::size_t(5), std::size_t(100), full.size() / 2, full.size() - 1}) {
    const std::string cut = dir / "cut.safetensors";
    std::ofstream(cut, std::ios::binary).write(full.data(), std::streamsize(len));
    const auto r = run(bin, "--n 10 --ckpt " + cut, dir);
    EXPECT_EQ(r.exit_code, 1) << len;
    expect_one_error_line(r.err, "cut.safetensors");
    std::filesystem::remove(cut);
    EXPECT_TRUE(dir.files().empty());
  }
}

TEST_F(SampleTool, PrefixOfALargerRunIsTheSameBytes) {
  ScratchDir dir;
  ASSERT_EQ(run(DDPM_SAMPLE_BIN, "--n 1000 --chunk 300 --png '' --out big.npy --ckpt " + ckpt_, dir).exit_code, 0);
  ASSERT_EQ(run(DDPM_SAMPLE_BIN, "--n 77 --png '' --out small.npy --ckpt " + ckpt_, dir).exit_code, 0);
  ASSERT_EQ(run(DDPM_SAMPLE_BIN, "--n 77 --png '' --out small.csv --ckpt " + ckpt_, dir).exit_code, 0);
  const std::string big = testing::slurp(dir / "big.npy"), small = testing::slurp(dir / "small.npy");
  ASSERT_EQ(big.size(), 128u + 8000u);
  ASSERT_EQ(small.size(), 128u + 77u * 8u);
  EXPECT_EQ(0, std::memcmp(big.data() + 128, small.data() + 128, 77 * 8));
  EXPECT_EQ(testing::count_lines(testing::slurp(dir / "small.csv")), 78);
}

// Shards made apart with --first concatenate to the one run's file, byte for
// byte, for the seed's sampler and for the solvers (the SDE's noise included):
// point i's noise depends on i alone, and the carried state starts at zero.
TEST_F(SampleTool, ShardsConcatenateToTheOneRunFile) {
  ScratchDir dir;
  for (const std::string sampler : {"", " --sampler dpmpp-2m-sde --steps 7", " --sampler heun --steps 4"}) {
    SCOPED_TRACE(sampler);
    const std::string common = " --png '' --seed 3 --ckpt " + ckpt_ + sampler;
    ASSERT_EQ(run(DDPM_SAMPLE_BIN, "--n 500 --chunk 130 --out whole.npy" + common, dir).exit_code, 0);
    std::string joined;
    for (const auto& [first, n] : {std::pair{0, 170}, {170, 1}, {171, 329}}) {
      const auto r = run(DDPM_SAMPLE_BIN, "--first " + std::to_string(first) + " --n " + std::to_string(n) +
                                              " --chunk 64 --out shard.npy" + common, dir);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      joined += testing::slurp(dir / "shard.npy").substr(128);  // the data after the .npy header
    }
    const std::string whole = testing::slurp(dir / "whole.npy");
    ASSERT_EQ(whole.size(), 128u + 500u * 8u);
    EXPECT_TRUE(whole.substr(128) == joined);
    // Another first point is other points.
    ASSERT_EQ(run(DDPM_SAMPLE_BIN, "--first 1 --n 5 --out other.npy" + common, dir).exit_code, 0);
    EXPECT_NE(testing::slurp(dir / "other.npy").substr(128, 32), whole.substr(128, 32));
    EXPECT_EQ(testing::slurp(dir / "other.npy").substr(128, 32), whole.substr(136, 32));
  }
  expect_clean_failure(DDPM_SAMPLE_BIN, "--first -1 --n 5 --ckpt " + ckpt_, 2, "--first");
}

// The solvers' flags: what each sampler takes, one line naming what it does not.
TEST_F(SampleTool, SolverFlagsAndTheirErrors) {
  ScratchDir dir;
  const std::string ck = " --png '' --out s.npy --n 50 --ckpt " + ckpt_;
  const auto heun = run(DDPM_SAMPLE_BIN, "--sampler heun --steps 5" + ck, dir);
  ASSERT_EQ(heun.exit_code, 0) << heun.err;
  EXPECT_NE(heun.err.find("5 heun steps = 9 model evaluations"), std::string::npos) << heun.err;
  EXPECT_NE(heun.err.find("karras timesteps"), std::string::npos) << heun.err;
  const auto dpm = run(DDPM_SAMPLE_BIN, "--sampler dpmpp-2m --timesteps uniform" + ck, dir);
  ASSERT_EQ(dpm.exit_code, 0) << dpm.err;
  // The checkpoint's T = 40 is above the default 20 steps.
  EXPECT_NE(dpm.err.find("20 dpmpp-2m steps = 20 model evaluations"), std::string::npos) << dpm.err;
  EXPECT_NE(dpm.err.find("uniform timesteps"), std::string::npos) << dpm.err;
  const std::string bin = DDPM_SAMPLE_BIN;
  expect_clean_failure(bin, "--sampler dpmpp-2m --eta 0.5" + ck, 2, "--eta");
  expect_clean_failure(bin, "--sampler heun --variance beta" + ck, 2, "--variance");
  expect_clean_failure(bin, "--timesteps karras" + ck, 2, "--timesteps");
  expect_clean_failure(bin, "--sampler heun --timesteps sigma" + ck, 2, "--timesteps");
  expect_clean_failure(bin, "--sampler dpm" + ck, 2, "--sampler");
  expect_clean_failure(bin, "--sampler heun --steps 41" + ck, 2, "steps 41");
}

TEST_F(SampleTool, WritesScatterAndDensityImages) {
  ScratchDir dir;
  const auto r = run(DDPM_SAMPLE_BIN, "--n 300 --density d.png --png s.png --out s.csv --ckpt " + ckpt_, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::slurp(dir / "d.png").substr(1, 3), "PNG");
  EXPECT_EQ(testing::slurp(dir / "s.png").substr(1, 3), "PNG");
  EXPECT_EQ(testing::slurp(dir / "s.csv").substr(0, 4), "x,y\n");
}

// The CPU's choices: both builds write the same samples; bf16 (AVX512_BF16)
// stays within its rounding of fp32 on this short chain; tf32 and bf16 on the
// AVX2 build are one-line errors that leave nothing.
TEST_F(SampleTool, CpuIsaAndPrecisionChoices) {
  const std::string args = "--n 500 --png '' --device cpu --ckpt " + ckpt_;
  ScratchDir dir;
  ASSERT_EQ(run(DDPM_SAMPLE_BIN, args + " --cpu-isa avx2 --out avx2.npy", dir).exit_code, 0);
  const std::vector<float> fp32 = io::read_samples(dir / "avx2.npy");
  expect_clean_failure(DDPM_SAMPLE_BIN, args + " --precision tf32", 2, "--precision tf32");
  expect_clean_failure(DDPM_SAMPLE_BIN, args + " --precision bf16 --cpu-isa avx2", 1, "AVX512_BF16");
  if (!cpu::cpu_supports(cpu::CpuIsa::kAvx512)) GTEST_SKIP() << "this CPU lacks AVX-512: one build only";
  const auto r = run(DDPM_SAMPLE_BIN, args + " --cpu-isa avx512 --out avx512.npy", dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("CPU avx512 fp32"), std::string::npos) << r.err;
  EXPECT_EQ(testing::slurp(dir / "avx2.npy"), testing::slurp(dir / "avx512.npy"));
  if (!cpu::cpu_supports_bf16()) GTEST_SKIP() << "this CPU lacks AVX512_BF16";
  ASSERT_EQ(run(DDPM_SAMPLE_BIN, args + " --precision bf16 --out bf16.npy", dir).exit_code, 0);
  const std::vector<float> bf16 = io::read_samples(dir / "bf16.npy");
  ASSERT_EQ(bf16.size(), fp32.size());
  double worst = 0;
  for (std::size_t i = 0; i < bf16.size(); ++i) worst = std::max(worst, std::abs(double(bf16[i]) - fp32[i]) / (1 + std::abs(fp32[i])));
  EXPECT_GT(worst, 0) << "bf16 gave the fp32 bytes: the bf16 path did not run";
  EXPECT_LT(worst, 2e-2);
}

// On a GPU the tool's fused sampler gives the CPU's points in every precision,
// each to its own rounding (fp32's SIMT sums; tf32 / bf16's rounded operands
// on untrained weights); without a GPU, --device cuda is a one-line error.
TEST_F(SampleTool, CudaSamplesMatchTheCpuInEveryPrecision) {
  ScratchDir dir;
  const auto cpu = run(DDPM_SAMPLE_BIN, "--n 3000 --png '' --device cpu --out cpu.csv --ckpt " + ckpt_, dir);
  ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
  for (const auto& [precision, tol] : {std::pair{"fp32", 1e-3}, {"tf32", 2e-2}, {"bf16", 1e-1}}) {
    SCOPED_TRACE(precision);
    const std::string out = std::string(precision) + ".csv";
    const auto gpu = run(DDPM_SAMPLE_BIN, "--n 3000 --png '' --device cuda --precision " + std::string(precision) +
                                              " --out " + out + " --ckpt " + ckpt_,
                         dir);
    if (gpu.exit_code != 0 && gpu.err.find("--device cuda: no") != std::string::npos) {
      expect_one_error_line(gpu.err, "--device cuda");
      GTEST_SKIP() << gpu.err;
    }
    ASSERT_EQ(gpu.exit_code, 0) << gpu.err;
    std::istringstream a(testing::slurp(dir / "cpu.csv")), b(testing::slurp(dir / out));
    std::string la, lb;
    std::getline(a, la);
    std::getline(b, lb);
    int rows = 0, bad = 0;
    for (; std::getline(a, la) && std::getline(b, lb); ++rows) {
      float ax, ay, bx, by;
      ASSERT_EQ(std::sscanf(la.c_str(), "%f,%f", &ax, &ay), 2);
      ASSERT_EQ(std::sscanf(lb.c_str(), "%f,%f", &bx, &by), 2);
      bad += std::abs(ax - bx) > tol * (1 + std::abs(ax)) || std::abs(ay - by) > tol * (1 + std::abs(ay));
    }
    EXPECT_EQ(rows, 3000);
    EXPECT_EQ(bad, 0);
  }
}

// ---- Samples in a training file's units (--units) ----

uint32_t fresh_seed() { return std::random_device{}(); }

// A model trained on a file far from the origin and scaled unevenly: mean (100, -50), std (10, 0.1),
// two blobs so that the shape matters; drawn afresh each run.
class DataUnits : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScratchDir;
    seed_ = fresh_seed();
    std::mt19937 gen(seed_);
    std::normal_distribution<float> z;
    file_.resize(2 * 3000);
    for (std::size_t i = 0; i < file_.size() / 2; ++i) {
      const float side = (gen() & 1) ? 1.f : -1.f;
      file_[2 * i] = 100.f + 10.f * (side + 0.4f * z(gen));
      file_[2 * i + 1] = -50.f + 0.1f * (side * 0.5f + 0.4f * z(gen));
    }
    write_points(*dir_ / "pts.npy", file_);
    made_ = run(DDPM_TRAIN_BIN,
                "--data pts.npy --steps 600 --batch 256 --T 100 --device cpu --log-every 0 --loss-csv '' "
                "--loss-png '' --forward-png '' --out file.safetensors",
                *dir_);
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override { ASSERT_EQ(made_.exit_code, 0) << "seed " << seed_ << ": " << made_.err; }
  static std::string ckpt() { return *dir_ / "file.safetensors"; }
  static inline ScratchDir* dir_ = nullptr;
  static inline uint32_t seed_ = 0;
  static inline std::vector<float> file_;
  static inline testing::Result made_;
};

TEST_F(DataUnits, AFilesModelSamplesInTheFilesUnits) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  // The checkpoint records the file's mean and population std, as computed here.
  const io::Checkpoint c = io::load_checkpoint(ckpt());
  ASSERT_TRUE(c.meta.data_scale.has_value());
  const io::CheckpointMeta::DataScale s = *c.meta.data_scale;
  const Moments2 want = moments_of(file_);
  for (int d = 0; d < 2; ++d) {
    EXPECT_NEAR(s.mean[d], want.mean[d], 1e-12 * std::abs(want.mean[d])) << d;
    EXPECT_NEAR(s.std[d], want.sd[d], 1e-9 * want.sd[d]) << d;
  }
  ScratchDir dir;
  const std::string ck = " --ckpt " + ckpt();
  ASSERT_EQ(run(DDPM_SAMPLE_BIN, "--n 4000 --png '' --out data.npy --seed 4" + ck, dir).exit_code, 0);
  const auto norm = run(DDPM_SAMPLE_BIN, "--n 4000 --png '' --out norm.npy --seed 4 --units normalized" + ck, dir);
  ASSERT_EQ(norm.exit_code, 0) << norm.err;
  const std::vector<float> data = io::read_samples(dir / "data.npy"), normalized = io::read_samples(dir / "norm.npy");
  ASSERT_EQ(data.size(), normalized.size());
  // Element by element, the default is x * std + mean of the normalized output (in double, one fma).
  for (std::size_t i = 0; i < data.size(); ++i)
    ASSERT_EQ(data[i], float(std::fma(double(normalized[i]), s.std[i % 2], s.mean[i % 2]))) << i;
  // In the file's units: the samples' mean within a quarter of the file's std of the file's
  // mean, their std within a factor 1.5 of the file's; the normalized ones near 0 and 1.
  const Moments2 got = moments_of(data), unit = moments_of(normalized);
  for (int d = 0; d < 2; ++d) {
    EXPECT_NEAR(got.mean[d], want.mean[d], 0.25 * want.sd[d]) << d;
    EXPECT_GT(got.sd[d], want.sd[d] / 1.5) << d;
    EXPECT_LT(got.sd[d], want.sd[d] * 1.5) << d;
    EXPECT_NEAR(unit.mean[d], 0.0, 0.25) << d;
    EXPECT_GT(unit.sd[d], 1 / 1.5) << d;
    EXPECT_LT(unit.sd[d], 1.5) << d;
  }
  // ddpm_eval --data FILE reads the samples in the file's units by default, and the normalized
  // ones with --units normalized: the same report, to float rounding; read as the file's
  // units, the normalized ones miss the data entirely.
  const auto report = [&](const std::string& args) {
    const auto r = run(DDPM_EVAL_BIN, "--json --data " + (*dir_ / "pts.npy") + " " + args, dir);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
  };
  const nlohmann::json in_data = report("data.npy"), in_units = report("--units normalized norm.npy"),
                       wrong = report("norm.npy");
  ASSERT_FALSE(in_data.is_null() || in_units.is_null() || wrong.is_null());
  EXPECT_NEAR(in_data["samples"]["sliced_w1"].get<double>(), in_units["samples"]["sliced_w1"].get<double>(), 1e-5);
  EXPECT_NEAR(in_data["samples"]["precision"].get<double>(), in_units["samples"]["precision"].get<double>(), 0.01);
  EXPECT_GT(in_data["samples"]["precision"].get<double>(), 0.5);
  EXPECT_LT(wrong["samples"]["precision"].get<double>(), 0.05);
}

TEST_F(DataUnits, CheckpointsWithoutTheScaleSampleAsBefore) {
  ScratchDir dir;
  // The file's model with its scale removed samples what --units normalized gives, bit for bit.
  io::Checkpoint c = io::load_checkpoint(ckpt());
  c.meta.data_scale.reset();
  io::save_checkpoint(dir / "plain.safetensors", c);
  EXPECT_FALSE(io::load_checkpoint(dir / "plain.safetensors").meta.data_scale.has_value());
  ASSERT_EQ(run(DDPM_SAMPLE_BIN, "--n 500 --png '' --out a.npy --ckpt plain.safetensors", dir).exit_code, 0);
  ASSERT_EQ(run(DDPM_SAMPLE_BIN, "--n 500 --png '' --out b.npy --units normalized --ckpt " + ckpt(), dir).exit_code, 0);
  EXPECT_EQ(testing::slurp(dir / "a.npy"), testing::slurp(dir / "b.npy"));
  // A built-in set's model: both units are the normalized ones.
  ScratchDir moons;
  ASSERT_EQ(run(DDPM_TRAIN_BIN, "--steps 5 --batch 32 --T 30 --device cpu --loss-png '' --forward-png ''", moons)
                .exit_code,
            0);
  EXPECT_FALSE(io::load_checkpoint(moons / "ddpm_ckpt.safetensors").meta.data_scale.has_value());
  ASSERT_EQ(run(DDPM_SAMPLE_BIN, "--n 300 --png '' --out d.npy", moons).exit_code, 0);
  ASSERT_EQ(run(DDPM_SAMPLE_BIN, "--n 300 --png '' --out n.npy --units normalized", moons).exit_code, 0);
  EXPECT_EQ(testing::slurp(moons / "d.npy"), testing::slurp(moons / "n.npy"));
}

TEST_F(DataUnits, ACorruptScaleIsAOneLineError) {
  ScratchDir dir;
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"run.data-std-x", "nan"}, {"run.data-std-y", "0"}, {"run.data-std-x", "-10"},
           {"run.data-mean-y", "inf"}, {"run.data-std-y", ""}}) {
    SCOPED_TRACE(key + " = " + value);
    io::SafetensorsFile f = io::read_safetensors(ckpt());
    f.metadata[key] = value;
    io::write_safetensors(dir / "bad.safetensors", f);
    const auto r = run(DDPM_SAMPLE_BIN, "--n 10 --ckpt bad.safetensors", dir);
    EXPECT_EQ(r.exit_code, 1);
    expect_one_error_line(r.err, "metadata " + key + " = \"" + value + "\" is not a ");
    std::filesystem::remove(dir / "bad.safetensors");
    EXPECT_TRUE(dir.files().empty());
  }
  const auto r = run(DDPM_SAMPLE_BIN, "--n 10 --units meters --ckpt " + ckpt(), dir);
  EXPECT_EQ(r.exit_code, 2);
  expect_one_error_line(r.err, "--units");
}

// ---- Checkpoints written by PyTorch users: plain state dicts ----

// Samples of each file (bit for bit those of our checkpoint of the same weights with the
// default settings), and the note on stderr naming the ignored metadata keys, or none.
void expect_samples_as_ours(const ScratchDir& dir, const std::vector<float>& params,
                            const std::vector<std::pair<std::string, std::string>>& files_and_keys) {
  io::Checkpoint ours;
  ours.params = params;
  io::save_checkpoint(dir / "ours.safetensors", ours);
  ASSERT_EQ(run(DDPM_SAMPLE_BIN, "--n 100 --png '' --out ours.npy --ckpt ours.safetensors", dir).exit_code, 0);
  for (const auto& [file, keys] : files_and_keys) {
    SCOPED_TRACE(file);
    const auto r = run(DDPM_SAMPLE_BIN, "--n 100 --png '' --out theirs.npy --ckpt " + file, dir);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(testing::slurp(dir / "theirs.npy"), testing::slurp(dir / "ours.npy"));
    const std::string note = "ddpm_cuda_sample: note: " + file + ": metadata not in ddpm-cuda's format";
    if (keys.empty()) {
      EXPECT_EQ(r.err.find("note:"), std::string::npos) << r.err;
    } else {
      const std::size_t at = r.err.find(note);
      ASSERT_NE(at, std::string::npos) << r.err;
      const std::string line = r.err.substr(at, r.err.find('\n', at) - at);
      EXPECT_NE(line.find("read as a plain state dict with the default settings (T = 500"), std::string::npos) << line;
      EXPECT_NE(line.find("ignored keys: " + keys), std::string::npos) << line;
      EXPECT_EQ(r.err.find("note:", at + line.size()), std::string::npos) << r.err;  // one note
      EXPECT_EQ(r.err.find("note:"), at + std::strlen("ddpm_cuda_sample: ")) << r.err;
    }
  }
}

TEST(ForeignCheckpoints, StateDictFilesSampleWithTheDefaults) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen(seed);
  std::normal_distribution<float> z(0.f, 0.1f);
  std::vector<float> params(kParamCount);
  for (float& p : params) p = z(gen);
  ScratchDir dir;
  const auto put = [&](const std::string& name, const test_state_dict::Metadata& meta) {
    std::ofstream(dir / name, std::ios::binary) << test_state_dict::state_dict_bytes(params, meta);
  };
  put("plain.safetensors", {});
  put("pt.safetensors", {{"format", "pt"}});
  put("other.safetensors", {{"producer", "numpy"}, {"T", "7"}, {"run.data-std-x", "nan"}});
  expect_samples_as_ours(dir, params, {{"plain.safetensors", ""}, {"pt.safetensors", "format"},
                                       {"other.safetensors", "T, producer, run.data-std-x"}});
}

TEST(ForeignCheckpoints, SafetensorsOwnWriterFilesSampleWithTheDefaults) {
  DDPM_NEED_PYTHON_MODULE("safetensors.numpy");
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  ScratchDir dir;
  ASSERT_EQ(test_python::run_script("safetensors_api.py", test_python::quoted(dir.path.string()) + " " +
                                                             std::to_string(seed) + " >/dev/null"),
            0);
  const std::string raw = testing::slurp(dir / "params.f32");
  ASSERT_EQ(raw.size(), kParamCount * sizeof(float));
  std::vector<float> params(kParamCount);
  std::memcpy(params.data(), raw.data(), raw.size());
  expect_samples_as_ours(dir, params, {{"plain.safetensors", ""}, {"pt.safetensors", "format"},
                                       {"other.safetensors", "T, beta_1, producer, run.data-std-x"}});
  // A file that claims our format is held to it: a bad T is refused, in one line naming it.
  const auto r = run(DDPM_SAMPLE_BIN, "--n 10 --png '' --out s.npy --ckpt bad_T.safetensors", dir);
  EXPECT_EQ(r.exit_code, 1);
  expect_one_error_line(r.err, "bad_T.safetensors: T = 0 is outside 1..100000");
  EXPECT_FALSE(std::filesystem::exists(dir / "s.npy"));
}

}  // namespace
}  // namespace ddpm
