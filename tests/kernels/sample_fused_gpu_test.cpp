// The fused sampler on a GPU through its driver, held to the emulation's
// checks; skipped with the reason where no CUDA device exists.
#include <gtest/gtest.h>

#include "host/gpu/gpu_sampler.hpp"
#include "tests/gpu_util.hpp"
#include "tests/kernels/sample_fused_cases.hpp"

namespace ddpm::kernels {
namespace {

struct OnDevice {
  std::vector<float> sample(const std::vector<float>& params, const Schedule& s, uint64_t seed, int64_t first,
                            int64_t n, int /*grid: the driver picks it*/) {
    gpu::GpuSampler sampler(params.data(), s);
    std::vector<float> out(2 * n, std::nanf(""));
    sampler.sample(seed, first, n, out.data());
    return out;
  }
};

class SampleFusedGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = testing::no_device_reason(); !why.empty()) GTEST_SKIP() << why;
  }
  OnDevice backend;
};

TEST_F(SampleFusedGpu, ShortChainMatchesTheCpuSampler) { fused_cases::short_chain_matches_the_cpu_sampler(backend, 1e-4); }
TEST_F(SampleFusedGpu, FullChainMatchesTheCpuSampler) { fused_cases::full_chain_matches_the_cpu_sampler(backend, 1e-3); }
TEST_F(SampleFusedGpu, NetworkIsSeenAtFullStrength) { fused_cases::network_is_seen_at_full_strength(backend, 1e-5); }
TEST_F(SampleFusedGpu, AnyRangeGivesTheSameBytes) { fused_cases::any_range_gives_the_same_bytes(backend); }

}  // namespace
}  // namespace ddpm::kernels
