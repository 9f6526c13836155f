// The reverse-process kernels in emulation: their CUDA source run on the CPU.
#include "kernels/reverse_step.cuh"
#include "tests/kernels/reverse_step_cases.hpp"

namespace ddpm::kernels {
namespace {

struct Emulated {
  void init(std::vector<float>& x, std::vector<float>& carried, int64_t n, uint64_t seed, int64_t first) {
    emu::launch(sample_init_kernel, reverse_step_grid(n), kReverseStepBlock, 0, x.data(), carried.data(), n, seed,
                first);
  }
  void step(std::vector<float>& x, std::vector<float>& carried, const std::vector<float>& eps, int64_t n,
            const SampleStep& step, int index, uint64_t seed, int64_t first) {
    emu::launch(reverse_step_kernel, reverse_step_grid(n), kReverseStepBlock, 0, x.data(), carried.data(),
                eps.data(), n, step, index, seed, first);
  }
};

// Same compiler, same shared functions: the emulated kernels reproduce the CPU bit for bit.
TEST(ReverseStepEmu, InitDrawsPairZero) {
  Emulated b;
  cases::init_draws_pair_zero(b, 0.0);
}
TEST(ReverseStepEmu, OneStepMatchesTheFormula) {
  Emulated b;
  cases::one_step_matches_the_formula(b, 0.0);
}
// The CPU sampler hoists layer 0's time term; eps_forward does not: float rounding apart.
TEST(ReverseStepEmu, ShortChainMatchesTheCpuSampler) {
  Emulated b;
  cases::short_chain_matches_the_cpu_sampler(b, 1e-4);
}

}  // namespace
}  // namespace ddpm::kernels
