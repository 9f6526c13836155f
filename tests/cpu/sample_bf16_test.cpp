// The CPU sampler's bf16 mode (AVX512_BF16), checked by the same cases as the
// GPU's tensor-core samplers (tests/kernels/sample_fused_cases.hpp): against
// the double-precision chain with bf16 operands, and against the fp32 sampler.
#include "tests/cpu/isa_guard.hpp"
#include "tests/kernels/sample_fused_cases.hpp"

namespace ddpm::kernels {
namespace {

using fused_cases::Run;

struct CpuBf16 {
  std::vector<float> sample(const std::vector<float>& params, const Schedule& s, uint64_t seed, int64_t first,
                            int64_t n, const Run& run) {
    std::vector<float> out(2 * n, std::nanf(""));
    cpu::sample(s, params.data(), seed, first, n, out.data(), run.config, cpu::CpuPrecision::kBf16);
    return out;
  }
};

class CpuSampleBf16 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cpu::cpu_supports_bf16()) GTEST_SKIP() << "this CPU lacks AVX512_BF16";
    cpu::select_cpu_isa("avx512");
  }
  IsaGuard restore;
  CpuBf16 b;
};

// The CPU's SiLU is exact to float, so nearly every element agrees with the
// rounded chain to float rounding; the rest differ by an activation rounded
// the other way at a bf16 boundary.
TEST_F(CpuSampleBf16, NetworkRoundsAsTheBf16ChainDoes) {
  fused_cases::network_rounds_as_the_tensor_cores_do(b, Precision::kBf16, 1.5e-2, true);
}
TEST_F(CpuSampleBf16, ShortChainMatchesTheFp32Sampler) {
  fused_cases::short_chain_matches_the_cpu_sampler(b, Precision::kBf16, 1e-4);
}
TEST_F(CpuSampleBf16, OtherSamplersMatchTheFp32Sampler) {
  fused_cases::other_samplers_match_the_cpu_sampler(b, Precision::kBf16, 2e-4);
}
TEST_F(CpuSampleBf16, AnyRangeGivesTheSameBytes) { fused_cases::any_range_gives_the_same_bytes(b, Precision::kBf16); }

}  // namespace
}  // namespace ddpm::kernels
