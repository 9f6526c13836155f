// The likelihood's kernels in emulation: their CUDA source run on the CPU.
#include <cmath>
#include <vector>

#include "host/cpu/mlp.hpp"
#include "host/gpu/sampler_tables.hpp"
#include "kernels/likelihood.cuh"
#include "tests/kernels/likelihood_cases.hpp"

namespace ddpm::kernels {
namespace {

using likelihood_cases::Run;

struct Emulated {
  std::vector<VlbSums> vlb(const std::vector<float>& params, const Schedule& s, const VlbTable& table, uint64_t seed,
                           int64_t first, int64_t n, const float* x0, const Run& run) {
    const gpu::SamplerTables tables(params.data(), s, {}, run.model);
    VlbNet net{tables.host_view(), table.terms.data(), s.T};
    net.net.steps = nullptr;  // the bound's kernel has no chain
    net.net.num_steps = 0;
    std::vector<VlbSums> out(std::size_t(n), VlbSums{std::nanf(""), std::nanf("")});
    emu::launch(vlb_sums_kernel, run.grid, kVlbShape.threads, kVlbShape.smem_bytes, net, seed, first, n, x0,
                out.data());
    return out;
  }

  std::vector<float> ode(const std::vector<float>& params, const Schedule& s, const OdeTable& table, int64_t n,
                         const float* x0, const Run& run) {
    const gpu::SamplerTables tables(params.data(), s, {}, run.model);
    // Each stage's time terms, as the driver computes them.
    std::vector<float> e(table.stages.size() * kHidden);
    for (std::size_t k = 0; k < table.stages.size(); ++k)
      cpu::layer0_time_term(run.model.net(), params.data(), table.stages[k].tau, e.data() + k * kHidden);
    OdeNet net{tables.host_view(), table.stages.data(), int(table.stages.size())};
    net.net.e1 = e.data();
    net.net.steps = nullptr;
    net.net.num_steps = 0;
    std::vector<float> out(3 * std::size_t(n), std::nanf(""));
    emu::launch(ode_end_states_kernel, run.grid, kOdeShape.threads, kOdeShape.smem_bytes, net, n, x0, out.data());
    return out;
  }
};

const ModelConfig kSeedModel{};
const ModelConfig kXEncoding{XEmbedding::kSinusoidal, kXScale};

// Against the CPU backend: the same draws and sums in the same order; the
// network's arithmetic differs only in exp (the backend's vectorized exp, here
// expf), sincos with the x encoding, and the order of the output layer's sums.
// Against double: float rounding of the whole chain of evaluations.
TEST(LikelihoodEmu, BoundMatchesTheReferences) {
  Emulated b;
  likelihood_cases::bound_matches_the_references(b, kSeedModel, 1e-5, 1e-4);
}
TEST(LikelihoodEmu, BoundOfTheXEncodingMatchesTheCpuBackend) {
  Emulated b;
  likelihood_cases::bound_matches_the_references(b, kXEncoding, 1e-5, 0);
}
TEST(LikelihoodEmu, BoundDrawsPairTMinus1OfThePointsStream) {
  Emulated b;
  likelihood_cases::bound_draws_pair_t_minus_1_of_the_points_stream(b, 0);  // the same float operations
}
TEST(LikelihoodEmu, OdeMatchesTheReferences) {
  Emulated b;
  likelihood_cases::ode_matches_the_references(b, kSeedModel, 1e-5, 1e-4);
}
TEST(LikelihoodEmu, OdeOfTheXEncodingMatchesTheCpuBackend) {
  Emulated b;
  likelihood_cases::ode_matches_the_references(b, kXEncoding, 1e-5, 0, 1.f);
}
TEST(LikelihoodEmu, OneEvaluationGivesEpsAndTheDivergence) {
  Emulated b;
  likelihood_cases::one_evaluation_gives_eps_and_the_divergence(b, kSeedModel, 1e-5, 1e-4);
}
TEST(LikelihoodEmu, OneEvaluationOfTheXEncodingGivesEpsAndTheDivergence) {
  Emulated b;
  likelihood_cases::one_evaluation_gives_eps_and_the_divergence(b, kXEncoding, 3e-5, 0);
}
TEST(LikelihoodEmu, AnyRangeGivesTheSameBytes) {
  Emulated b;
  likelihood_cases::any_range_gives_the_same_bytes(b, kSeedModel);
  likelihood_cases::any_range_gives_the_same_bytes(b, kXEncoding);
}

}  // namespace
}  // namespace ddpm::kernels
