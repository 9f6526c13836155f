// The unfused path on a GPU: its kernels held to the emulation's checks, and
// the whole cuBLAS chain against the CPU sampler and the fused fp32 kernel.
// Skipped with the reason where no CUDA device exists.
#include <gtest/gtest.h>

#include "host/gpu/gpu_sampler.hpp"
#include "host/gpu/unfused_sampler.hpp"
#include "kernels/sample_unfused.hpp"
#include "tests/gpu_util.hpp"
#include "tests/kernels/sample_fused_cases.hpp"
#include "tests/kernels/sample_unfused_cases.hpp"

namespace ddpm::kernels {
namespace {

using testing::DeviceBuffer;

struct OnDevice {
  std::vector<float> layer0(const std::vector<float>& x, int64_t n, const std::vector<float>& w0c0,
                            const std::vector<float>& w0c1, const std::vector<float>& e1t) {
    DeviceBuffer<float> dx(x), d0(w0c0), d1(w0c1), de(e1t), dh(std::vector<float>(std::size_t(n) * kHidden, NAN));
    launch_layer0_silu(dx.get(), n, d0.get(), d1.get(), de.get(), dh.get(), nullptr);
    std::vector<float> h(std::size_t(n) * kHidden);
    dh.download(h);
    return h;
  }
  std::vector<float> x_embedding(const std::vector<float>& x, int64_t n, float scale,
                                 const XEmbeddingFrequencies& freq) {
    DeviceBuffer<float> dx(x), df(std::vector<float>(freq.freq, freq.freq + kEmbHalf)),
        da(std::vector<float>(std::size_t(n) * kXEmbInputs, NAN));
    launch_x_embedding(dx.get(), n, scale, df.get(), da.get(), nullptr);
    std::vector<float> a(std::size_t(n) * kXEmbInputs);
    da.download(a);
    return a;
  }
  std::vector<float> bias_silu(std::vector<float> h, int64_t n, const std::vector<float>& bias) {
    DeviceBuffer<float> dh(h), db(bias);
    launch_bias_silu(dh.get(), n, db.get(), nullptr);
    dh.download(h);
    return h;
  }
  std::vector<float> output(const std::vector<float>& h3, int64_t n, const std::vector<float>& w3,
                            const std::vector<float>& b3) {
    DeviceBuffer<float> dh(h3), dw(w3), db(b3), de(std::vector<float>(2 * n, NAN));
    launch_output_layer(dh.get(), n, dw.get(), db.get(), de.get(), nullptr);
    std::vector<float> eps(2 * n);
    de.download(eps);
    return eps;
  }
};

// The whole unfused chain through fused_cases' checks (chunks of 100 points).
struct UnfusedChain {
  std::vector<float> sample(const std::vector<float>& params, const Schedule& s, uint64_t seed, int64_t first,
                            int64_t n, const fused_cases::Run& run) {
    gpu::UnfusedSampler sampler(params.data(), s, run.config, 100, run.model);
    std::vector<float> out(2 * n, std::nanf(""));
    sampler.sample(seed, first, n, out.data());
    return out;
  }
};

class SampleUnfusedGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = testing::no_device_reason(); !why.empty()) GTEST_SKIP() << why;
  }
  OnDevice kernels;
  UnfusedChain chain;
};

TEST_F(SampleUnfusedGpu, Layer0MatchesTheFormula) { unfused_cases::layer0_matches_the_formula(kernels, 1001); }
TEST_F(SampleUnfusedGpu, XEmbeddingMatchesTheFormula) {
  unfused_cases::x_embedding_matches_the_formula(kernels, 1001);
}
// sincosf's documented 2 ulp on the GPU: within the 1e-6 of the emulation's bound.
TEST_F(SampleUnfusedGpu, XEmbeddingReadsTheGivenFrequencies) {
  unfused_cases::x_embedding_reads_the_given_frequencies(kernels, 1001);
}
TEST_F(SampleUnfusedGpu, XEncodingChainMatchesTheCpuSampler) {
  fused_cases::x_encoding_matches_the_cpu_sampler(chain, Precision::kFp32, 1e-4, 1e-4);
}
TEST_F(SampleUnfusedGpu, BiasSiluMatchesTheFormula) { unfused_cases::bias_silu_matches_the_formula(kernels, 1001); }
TEST_F(SampleUnfusedGpu, OutputLayerMatchesTheFormula) {
  unfused_cases::output_layer_matches_the_formula(kernels, 1001);
}
TEST_F(SampleUnfusedGpu, ShortChainMatchesTheCpuSampler) {
  fused_cases::short_chain_matches_the_cpu_sampler(chain, Precision::kFp32, 1e-4);
}
TEST_F(SampleUnfusedGpu, FullChainMatchesTheCpuSampler) {
  fused_cases::full_chain_matches_the_cpu_sampler(chain, Precision::kFp32, 1e-3);
}
TEST_F(SampleUnfusedGpu, OtherSamplersMatchTheCpuSampler) {
  fused_cases::other_samplers_match_the_cpu_sampler(chain, Precision::kFp32, 1e-4);
}
TEST_F(SampleUnfusedGpu, NoiseHasTheChainsMoments) {
  fused_cases::noise_has_the_chains_moments(chain, Precision::kFp32, 500, 100000);
}

// The two GPU paths share only include/ddpm/'s math: 10,000 points of the seed's
// chain on trained-looking weights agree to float rounding.
TEST_F(SampleUnfusedGpu, AgreesWithTheFusedKernel) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = Schedule::linear();
  std::vector<float> params = cpu::init_params(seed);
  for (float& v : params) v *= 3.f;
  const int64_t n = 10000;
  std::vector<float> fused(2 * n), unfused(2 * n);
  gpu::GpuSampler(params.data(), s).sample(seed, 0, n, fused.data());
  gpu::UnfusedSampler(params.data(), s).sample(seed, 0, n, unfused.data());
  fused_cases::expect_close(unfused, std::vector<double>(fused.begin(), fused.end()), 1e-3);
}

}  // namespace
}  // namespace ddpm::kernels
