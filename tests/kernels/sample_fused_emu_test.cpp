// The fused sampler kernel in emulation: its CUDA source run on the CPU.
#include "host/gpu/sampler_tables.hpp"
#include "kernels/sample_fused.cuh"
#include "tests/kernels/sample_fused_cases.hpp"

namespace ddpm::kernels {
namespace {

struct Emulated {
  std::vector<float> sample(const std::vector<float>& params, const Schedule& s, uint64_t seed, int64_t first,
                            int64_t n, int grid) {
    const gpu::SamplerTables tables(params.data(), s);
    std::vector<float> out(2 * n, std::nanf(""));
    emu::launch(sample_fused_kernel, grid, kFusedThreads, kFusedSmemBytes, tables.host_view(), s.T, seed, first, n,
                out.data());
    return out;
  }
};

// The CPU sampler's SiLU is a vectorized exp; the kernel's is expf; the output
// layer sums in another order: float rounding apart, growing along the chain.
TEST(SampleFusedEmu, ShortChainMatchesTheCpuSampler) {
  Emulated b;
  fused_cases::short_chain_matches_the_cpu_sampler(b, 1e-4);
}
TEST(SampleFusedEmu, FullChainMatchesTheCpuSampler) {
  Emulated b;
  fused_cases::full_chain_matches_the_cpu_sampler(b, 1e-3);
}
TEST(SampleFusedEmu, NetworkIsSeenAtFullStrength) {
  Emulated b;
  fused_cases::network_is_seen_at_full_strength(b, 1e-5);
}
TEST(SampleFusedEmu, AnyRangeGivesTheSameBytes) {
  Emulated b;
  fused_cases::any_range_gives_the_same_bytes(b);
}

}  // namespace
}  // namespace ddpm::kernels
