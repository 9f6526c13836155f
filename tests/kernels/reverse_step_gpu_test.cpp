// The reverse-process kernels on a GPU through their launchers, held to the
// emulation's checks; skipped with the reason where no CUDA device exists.
#include <gtest/gtest.h>

#include "kernels/reverse_step.hpp"
#include "tests/kernels/reverse_step_cases.hpp"
#include "tests/gpu_util.hpp"

namespace ddpm::kernels {
namespace {

struct OnDevice {
  void init(std::vector<float>& x, std::vector<float>& carried, int64_t n, uint64_t seed, int64_t first) {
    testing::DeviceBuffer<float> dx(x), dc(carried);
    launch_sample_init(dx.get(), dc.get(), n, seed, first, nullptr);
    dx.download(x);
    dc.download(carried);
  }
  void step(std::vector<float>& x, std::vector<float>& carried, const std::vector<float>& eps, int64_t n,
            const SampleStep& step, int index, uint64_t seed, int64_t first) {
    testing::DeviceBuffer<float> dx(x), dc(carried), de(eps);
    launch_reverse_step(dx.get(), dc.get(), de.get(), n, step, index, seed, first, nullptr);
    dx.download(x);
    dc.download(carried);
  }
};

class ReverseStepGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = testing::no_device_reason(); !why.empty()) GTEST_SKIP() << why;
  }
  OnDevice backend;
};

// nvcc contracts to FMA and cuRAND's device Box-Muller uses the GPU's math: a few ulps apart.
TEST_F(ReverseStepGpu, InitDrawsPairZero) { cases::init_draws_pair_zero(backend, 1e-5); }
TEST_F(ReverseStepGpu, OneStepMatchesTheFormula) { cases::one_step_matches_the_formula(backend, 1e-5); }
TEST_F(ReverseStepGpu, ShortChainMatchesTheCpuSampler) { cases::short_chain_matches_the_cpu_sampler(backend, 1e-4); }

}  // namespace
}  // namespace ddpm::kernels
