// The unfused path's kernels in emulation: their CUDA source run on the CPU.
#include "kernels/sample_unfused.cuh"
#include "tests/kernels/sample_unfused_cases.hpp"

namespace ddpm::kernels {
namespace {

struct Emulated {
  std::vector<float> layer0(const std::vector<float>& x, int64_t n, const std::vector<float>& w0c0,
                            const std::vector<float>& w0c1, const std::vector<float>& e1t) {
    std::vector<float> h1(std::size_t(n) * kHidden, std::nanf(""));
    emu::launch(layer0_silu_kernel, elementwise_grid(n * kHidden), kUnfusedBlock, 0, x.data(), n, w0c0.data(),
                w0c1.data(), e1t.data(), h1.data());
    return h1;
  }
  std::vector<float> x_embedding(const std::vector<float>& x, int64_t n, float scale,
                                 const XEmbeddingFrequencies& freq) {
    std::vector<float> a(std::size_t(n) * kXEmbInputs, std::nanf(""));
    emu::launch(x_embedding_kernel, elementwise_grid(n * kDataDim * kEmbHalf), kUnfusedBlock, 0, x.data(), n, scale,
                freq.freq, a.data());
    return a;
  }
  std::vector<float> bias_silu(std::vector<float> h, int64_t n, const std::vector<float>& bias) {
    emu::launch(bias_silu_kernel, elementwise_grid(n * kHidden), kUnfusedBlock, 0, h.data(), n, bias.data());
    return h;
  }
  std::vector<float> output(const std::vector<float>& h3, int64_t n, const std::vector<float>& w3,
                            const std::vector<float>& b3) {
    std::vector<float> eps(2 * n, std::nanf(""));
    emu::launch(output_layer_kernel, output_layer_grid(n), kUnfusedBlock, 0, h3.data(), n, w3.data(), b3.data(),
                eps.data());
    return eps;
  }
};

TEST(SampleUnfusedEmu, Layer0MatchesTheFormula) {
  Emulated b;
  unfused_cases::layer0_matches_the_formula(b, 37);
}
TEST(SampleUnfusedEmu, XEmbeddingMatchesTheFormula) {
  Emulated b;
  unfused_cases::x_embedding_matches_the_formula(b, 37);
}
TEST(SampleUnfusedEmu, XEmbeddingReadsTheGivenFrequencies) {
  Emulated b;
  unfused_cases::x_embedding_reads_the_given_frequencies(b, 37);
}
TEST(SampleUnfusedEmu, BiasSiluMatchesTheFormula) {
  Emulated b;
  unfused_cases::bias_silu_matches_the_formula(b, 37);
}
TEST(SampleUnfusedEmu, OutputLayerMatchesTheFormula) {
  Emulated b;
  unfused_cases::output_layer_matches_the_formula(b, 37);
}

}  // namespace
}  // namespace ddpm::kernels
