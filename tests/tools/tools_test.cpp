#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <utility>
#include <sstream>

#include "tests/tools/tool_runner.hpp"

namespace ddpm {
namespace {

using testing::run;
using testing::ScratchDir;

// The error is one line, the last, naming `needle`; the only other line allowed is --device auto's choice.
void expect_one_error_line(const std::string& err, const std::string& needle) {
  std::vector<std::string> lines;
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("error: "), std::string::npos) << err;
  EXPECT_NE(lines.back().find(needle), std::string::npos) << err;
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) EXPECT_NE(lines[i].find(": device: "), std::string::npos) << err;
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
}

TEST(TrainTool, UnwritableOutputIsOneLineAndLeavesNothing) {
  expect_clean_failure(DDPM_TRAIN_BIN, "--steps 2 --batch 8 --out missing_dir/ckpt.safetensors", 1, "missing_dir");
}

TEST(TrainTool, CudaWithoutAGpuIsAClearError) {
  ScratchDir dir;
  if (testing::run("/bin/sh", "-c 'command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null'", dir).exit_code == 0)
    GTEST_SKIP() << "a GPU is present";
  expect_clean_failure(DDPM_TRAIN_BIN, "--device cuda --steps 2", 1, "CUDA device");
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

TEST_F(SampleTool, WritesScatterAndDensityImages) {
  ScratchDir dir;
  const auto r = run(DDPM_SAMPLE_BIN, "--n 300 --density d.png --png s.png --out s.csv --ckpt " + ckpt_, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::slurp(dir / "d.png").substr(1, 3), "PNG");
  EXPECT_EQ(testing::slurp(dir / "s.png").substr(1, 3), "PNG");
  EXPECT_EQ(testing::slurp(dir / "s.csv").substr(0, 4), "x,y\n");
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

}  // namespace
}  // namespace ddpm
