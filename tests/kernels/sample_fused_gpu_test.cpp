// The fused samplers on a GPU through their driver, held to the emulation's
// checks; skipped with the reason where no CUDA device exists.
#include <gtest/gtest.h>

#include "host/gpu/device_memory.hpp"
#include "host/gpu/gpu_sampler.hpp"
#include "tests/gpu_util.hpp"
#include "tests/kernels/sample_fused_cases.hpp"

namespace ddpm::kernels {
namespace {

using fused_cases::Run;

struct OnDevice {
  std::vector<float> sample(const std::vector<float>& params, const Schedule& s, uint64_t seed, int64_t first,
                            int64_t n, const Run& run) {
    // Chunks of 100 points: the driver's double buffering is crossed several times.
    gpu::GpuSampler sampler(params.data(), s, run.config, run.precision, 100, run.model);
    std::vector<float> out(2 * n, std::nanf(""));
    sampler.sample(seed, first, n, out.data());
    return out;
  }
};

class SampleFusedGpu : public ::testing::TestWithParam<Precision> {
 protected:
  void SetUp() override {
    if (const std::string why = testing::no_device_reason(); !why.empty()) GTEST_SKIP() << why;
  }
  // fp32, tf32, bf16 (see sample_fused_emu_test.cpp for where the tensor-core bounds come from).
  double tol(double fp32, double tf32, double bf16) const {
    return GetParam() == Precision::kFp32 ? fp32 : GetParam() == Precision::kTf32 ? tf32 : bf16;
  }
  OnDevice backend;
};

// Bounds for tf32 / bf16 are the emulation's widened for tanh.approx, not yet measured on a GPU:
// the printed errors are what bench/NOTES.md records.
TEST_P(SampleFusedGpu, ShortChainMatchesTheCpuSampler) {
  fused_cases::short_chain_matches_the_cpu_sampler(backend, GetParam(), tol(1e-4, 1e-3, 1e-3));
}
// On the GPU the chain runs in full for every precision, and its error is printed:
// tanh.approx and the tensor cores are what emulation cannot show.
TEST_P(SampleFusedGpu, FullChainMatchesTheCpuSampler) {
  fused_cases::full_chain_matches_the_cpu_sampler(backend, GetParam(), tol(1e-3, 2e-2, 1e-1));
}
TEST_P(SampleFusedGpu, NetworkIsSeenAtFullStrength) {
  if (GetParam() == Precision::kFp32) {
    fused_cases::network_is_seen_at_full_strength(backend, GetParam(), 1e-5);
  } else {
    // tanh.approx (relative error 2^-11) stands in for the reference's exact SiLU here.
    fused_cases::network_rounds_as_the_tensor_cores_do(backend, GetParam(), tol(0, 1e-2, 5e-2), false);
  }
}
TEST_P(SampleFusedGpu, XEncodingMatchesTheCpuSampler) {
  fused_cases::x_encoding_matches_the_cpu_sampler(backend, GetParam(), tol(1e-4, 5e-2, 1e-1), tol(1e-4, 2e-2, 2e-1));
}
TEST_P(SampleFusedGpu, OtherSamplersMatchTheCpuSampler) {
  fused_cases::other_samplers_match_the_cpu_sampler(backend, GetParam(), tol(1e-4, 1e-3, 1e-3));
}
TEST_P(SampleFusedGpu, NoiseHasTheChainsMoments) {
  fused_cases::noise_has_the_chains_moments(backend, GetParam(), 500, 200000);
}
TEST_P(SampleFusedGpu, AnyRangeGivesTheSameBytes) { fused_cases::any_range_gives_the_same_bytes(backend, GetParam()); }

// Running out of GPU memory is reported in one line with what was asked and what was free
// (no GPU needed: the message alone; the allocation path runs in every GPU test).
TEST(DeviceMemory, OutOfMemoryMessageSaysWhatAndHowMuch) {
  const std::string m = gpu::out_of_memory_message("a chunk of samples (--chunk)", (std::size_t(3) << 30) + 1,
                                                   std::size_t(5) << 20, std::size_t(80) << 30);
  EXPECT_EQ(m, "out of GPU memory: a chunk of samples (--chunk) needs 3073 MiB, 5 MiB of 81920 MiB free");
  EXPECT_EQ(m.find('\n'), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Precisions, SampleFusedGpu,
                         ::testing::Values(Precision::kFp32, Precision::kTf32, Precision::kBf16),
                         [](const auto& info) { return std::string(name_of(info.param)); });

}  // namespace
}  // namespace ddpm::kernels
