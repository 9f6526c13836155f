// --x-embedding and --x-scale through the tools: the training tool writes the
// encoded model, the sampling tool samples it as the CPU backend does, and
// every flag that contradicts a checkpoint is a one-line usage error.
#include <gtest/gtest.h>

#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "host/cpu/cpu_backend.hpp"
#include "host/io/checkpoint.hpp"
#include "host/io/safetensors.hpp"
#include "host/io/samples_io.hpp"
#include "tests/tools/tool_runner.hpp"

namespace ddpm {
namespace {

using testing::run;
using testing::ScratchDir;

// Exit code `code`, and the last line of stderr an error naming `needle`.
void expect_usage_error(const std::string& bin, const std::string& args, const ScratchDir& dir, int code,
                        const std::string& needle) {
  SCOPED_TRACE(args);
  const auto r = run(bin, args, dir);
  EXPECT_EQ(r.exit_code, code) << r.err;
  std::string last;
  std::istringstream in(r.err);
  for (std::string line; std::getline(in, line);) last = line;
  EXPECT_NE(last.find("error: "), std::string::npos) << r.err;
  EXPECT_NE(last.find(needle), std::string::npos) << r.err;
}

class XEmbeddingTool : public ::testing::Test {
 protected:
  static constexpr const char* kModel = "--x-embedding sinusoidal --x-scale 20";
  static constexpr const char* kRun = "--batch 64 --T 40 --device cpu --loss-png '' --forward-png '' --loss-csv '' "
                                      "--checkpoint-every 10 ";
  static void SetUpTestSuite() {
    dir_ = new ScratchDir;
    made_ = run(DDPM_TRAIN_BIN, std::string(kRun) + "--steps 20 " + kModel, *dir_);
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override { ASSERT_EQ(made_.exit_code, 0) << made_.err; }
  static std::string ckpt() { return *dir_ / "ddpm_ckpt.safetensors"; }
  static inline ScratchDir* dir_ = nullptr;
  static inline testing::Result made_;
};

TEST_F(XEmbeddingTool, TrainsTheEncodedModelAndSamplesItAsTheBackendDoes) {
  const io::Checkpoint c = io::load_checkpoint(ckpt());
  EXPECT_EQ(c.meta.model.x_embedding, XEmbedding::kSinusoidal);
  EXPECT_EQ(c.meta.model.x_scale, 20.f);
  EXPECT_EQ(c.params.size(), kXEmbNet.param_count);
  EXPECT_EQ(io::read_safetensors(ckpt()).find("net.0.weight")->shape, (std::vector<int64_t>{128, 192}));
  ScratchDir dir;
  const int n = 150;
  const auto r = run(DDPM_SAMPLE_BIN, "--n 150 --seed 4 --png '' --out s.npy --ckpt " + ckpt(), dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<float> want(2 * n);
  cpu::sample(Schedule::linear(40), c.params.data(), 4, 0, n, want.data(), {}, cpu::CpuPrecision::kFp32,
              c.meta.model);
  const std::vector<float> got = io::read_samples(dir / "s.npy");
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * sizeof(float)));
  // Flags that agree with the checkpoint are accepted.
  EXPECT_EQ(run(DDPM_SAMPLE_BIN, std::string("--n 10 --png '' --out '' ") + kModel + " --ckpt " + ckpt(), dir).exit_code,
            0);
}

TEST_F(XEmbeddingTool, ResumesTheEncodedModelAsOneRun) {
  ScratchDir whole, part;
  ASSERT_EQ(run(DDPM_TRAIN_BIN, std::string(kRun) + "--steps 30 " + kModel, whole).exit_code, 0);
  const auto r = run(DDPM_TRAIN_BIN, std::string(kRun) + "--steps 30 --resume " + ckpt(), part);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::slurp(whole / "ddpm_ckpt.safetensors"), testing::slurp(part / "ddpm_ckpt.safetensors"));
}

TEST_F(XEmbeddingTool, ContradictingAndBadFlagsAreOneLineErrors) {
  ScratchDir dir;
  const std::string sample = "--n 10 --png '' --out s.npy --ckpt " + ckpt();
  expect_usage_error(DDPM_SAMPLE_BIN, sample + " --x-embedding none", dir, 2,
                     "--x-embedding none contradicts " + ckpt() + ", which has sinusoidal");
  expect_usage_error(DDPM_SAMPLE_BIN, sample + " --x-scale 25", dir, 2,
                     "--x-scale 25 contradicts " + ckpt() + ", which has x-scale 20");
  expect_usage_error(DDPM_TRAIN_BIN, std::string(kRun) + "--steps 30 --x-embedding none --resume " + ckpt(), dir, 2,
                     "--x-embedding none contradicts");
  expect_usage_error(DDPM_TRAIN_BIN, std::string(kRun) + "--steps 30 --x-scale 3 --resume " + ckpt(), dir, 2,
                     "--x-scale 3 contradicts");
  // The seed's model refuses the encoding's flags.
  io::Checkpoint plain;
  plain.params = cpu::init_params(1);
  io::save_checkpoint(dir / "plain.safetensors", plain);
  expect_usage_error(DDPM_SAMPLE_BIN, "--n 10 --png '' --out s.npy --ckpt plain.safetensors --x-embedding sinusoidal",
                     dir, 2, "--x-embedding sinusoidal contradicts plain.safetensors, which has none");
  expect_usage_error(DDPM_SAMPLE_BIN, "--n 10 --png '' --out s.npy --ckpt plain.safetensors --x-scale 25", dir, 2,
                     "which has no x-embedding");
  expect_usage_error(DDPM_TRAIN_BIN, "--steps 2 --batch 8 --x-scale 5", dir, 2, "--x-scale needs --x-embedding sinusoidal");
  for (const char* bad : {"--x-embedding fourier", "--x-scale 0", "--x-scale nan", "--x-scale -1", "--x-scale 1e9"})
    expect_usage_error(DDPM_TRAIN_BIN, std::string("--steps 2 --batch 8 --x-embedding sinusoidal ") + bad, dir, 2,
                       std::string(bad).substr(0, std::string(bad).find(' ')));
  // Nothing was written by any of them.
  for (const std::string& f : dir.files()) EXPECT_EQ(f, "plain.safetensors");
}

}  // namespace
}  // namespace ddpm
