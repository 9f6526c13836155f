// The likelihood's kernels on a GPU through their driver (host/gpu/gpu_likelihood),
// held to the emulation's checks; skipped with the reason where no CUDA device exists.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "ddpm/error.hpp"
#include "host/gpu/gpu_likelihood.hpp"
#include "tests/gpu_util.hpp"
#include "tests/kernels/likelihood_cases.hpp"

namespace ddpm::kernels {
namespace {

using likelihood_cases::Run;

// Chunks of 100 points: the driver's double buffering is crossed several times.
constexpr int64_t kChunk = 100;

// Fills the driver's device and pinned result buffers with NaN before a case
// runs, so that a point the kernel never writes shows (cudaMalloc may hand
// back memory holding an earlier run's right answers): two chunks of NaN
// points through a one-stage ODE, whose every result is NaN and which covers
// every float of both buffers (3 a point). It also leaves the driver holding
// another table than the case's, whose upload the case then exercises.
void poison(gpu::GpuLikelihood& lik) {
  OdeStage stage{};
  stage.tau = 1.f;
  stage.x_scale = 1.f;
  stage.out_coef = 1.f;
  stage.ends_step = true;
  OdeTable table;
  table.stages = {stage};
  const std::vector<float> nan_points(2 * 2 * kChunk, std::numeric_limits<float>::quiet_NaN());
  std::vector<float> out(3 * 2 * kChunk);
  lik.ode_end_states(table, 2 * kChunk, nan_points.data(), out.data());
  for (float v : out) ASSERT_TRUE(std::isnan(v));
}

struct OnDevice {
  std::vector<VlbSums> vlb(const std::vector<float>& params, const Schedule& s, const VlbTable& table, uint64_t seed,
                           int64_t first, int64_t n, const float* x0, const Run& run) {
    gpu::GpuLikelihood lik(params.data(), s, run.model, kChunk);
    poison(lik);
    std::vector<VlbSums> out(std::size_t(n), VlbSums{std::nanf(""), std::nanf("")});
    lik.vlb_sums(table, seed, first, n, x0, out.data());
    return out;
  }
  std::vector<float> ode(const std::vector<float>& params, const Schedule& s, const OdeTable& table, int64_t n,
                         const float* x0, const Run& run) {
    gpu::GpuLikelihood lik(params.data(), s, run.model, kChunk);
    poison(lik);
    std::vector<float> out(3 * std::size_t(n), std::nanf(""));
    lik.ode_end_states(table, n, x0, out.data());
    return out;
  }
};

const ModelConfig kSeedModel{};
const ModelConfig kXEncoding{XEmbedding::kSinusoidal, kXScale};

class LikelihoodGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = testing::no_device_reason(); !why.empty()) GTEST_SKIP() << why;
  }
  OnDevice backend;
};

// The bounds are the emulation's widened, not yet measured on a GPU (the
// printed errors are what to record): the device's normals differ from the
// host's by up to ~1e-5 (cuRAND's Box-Muller on __sincosf, ddpm/rng.hpp), its
// expf and sincosf by ulps, and nvcc contracts a * b + c into FMAs.
TEST_F(LikelihoodGpu, BoundMatchesTheReferences) {
  likelihood_cases::bound_matches_the_references(backend, kSeedModel, 1e-4, 2e-4);
}
TEST_F(LikelihoodGpu, BoundOfTheXEncodingMatchesTheCpuBackend) {
  likelihood_cases::bound_matches_the_references(backend, kXEncoding, 1e-4, 0);
}
TEST_F(LikelihoodGpu, BoundDrawsPairTMinus1OfThePointsStream) {
  likelihood_cases::bound_draws_pair_t_minus_1_of_the_points_stream(backend, 1e-4);
}
TEST_F(LikelihoodGpu, OdeMatchesTheReferences) {
  likelihood_cases::ode_matches_the_references(backend, kSeedModel, 5e-5, 2e-4);
}
TEST_F(LikelihoodGpu, OdeOfTheXEncodingMatchesTheCpuBackend) {
  likelihood_cases::ode_matches_the_references(backend, kXEncoding, 5e-5, 0, 1.f);
}
TEST_F(LikelihoodGpu, OneEvaluationGivesEpsAndTheDivergence) {
  likelihood_cases::one_evaluation_gives_eps_and_the_divergence(backend, kSeedModel, 5e-5, 2e-4);
}
TEST_F(LikelihoodGpu, OneEvaluationOfTheXEncodingGivesEpsAndTheDivergence) {
  likelihood_cases::one_evaluation_gives_eps_and_the_divergence(backend, kXEncoding, 1e-4, 0);
}
TEST_F(LikelihoodGpu, AnyRangeGivesTheSameBytes) {
  likelihood_cases::any_range_gives_the_same_bytes(backend, kSeedModel);
  likelihood_cases::any_range_gives_the_same_bytes(backend, kXEncoding);
}

// One driver, its tables changed between calls (the bound's variance, the
// ODE's steps) and changed back: each call against the CPU backend.
TEST_F(LikelihoodGpu, TablesChangeBetweenCalls) {
  const uint64_t seed = likelihood_cases::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = likelihood_cases::short_schedule();
  const std::vector<float> p = likelihood_cases::strong_params(seed, kSeedModel);
  const int64_t n = 150, first = 77;
  const std::vector<float> x0 = likelihood_cases::held_out_points(seed, n);
  gpu::GpuLikelihood lik(p.data(), s, kSeedModel, kChunk);
  for (const Variance v : {Variance::kPosterior, Variance::kBeta, Variance::kPosterior}) {
    const VlbTable table = vlb_table(s, v);
    std::vector<VlbSums> got(std::size_t(n), VlbSums{std::nanf(""), std::nanf("")});
    lik.vlb_sums(table, seed, first, n, x0.data(), got.data());
    likelihood_cases::expect_sums_close(got,
                                        likelihood_cases::to_double(likelihood_cases::cpu_vlb(
                                            p, s, table, seed, first, n, x0.data(), kSeedModel)),
                                        table, s.T, 1e-4, name_of(v));
  }
  for (const int steps : {3, 2, 3}) {
    const OdeTable table = ode_rk4_table(s, steps);
    std::vector<float> got(3 * std::size_t(n), std::nanf(""));
    lik.ode_end_states(table, n, x0.data(), got.data());
    const std::vector<float> cpu = likelihood_cases::cpu_ode(p, table, n, x0.data(), kSeedModel);
    likelihood_cases::expect_states_close(got, std::vector<double>(cpu.begin(), cpu.end()), 5e-5, "the CPU backend");
  }
}

// The CPU backend's refusals, word for word the same conditions.
TEST_F(LikelihoodGpu, RefusesWhatTheCpuBackendRefuses) {
  const Schedule s = likelihood_cases::short_schedule();
  const std::vector<float> p = cpu::init_params(1);
  gpu::GpuLikelihood lik(p.data(), s, kSeedModel, kChunk);
  std::vector<float> x0(2, 0.f), out(3);
  VlbSums sums{};
  EXPECT_THROW(lik.vlb_sums(vlb_table(s, Variance::kPosterior), 1, -1, 1, x0.data(), &sums), Error);
  EXPECT_THROW(lik.vlb_sums(vlb_table(s, Variance::kPosterior), 1, 0, -1, x0.data(), &sums), Error);
  EXPECT_THROW(lik.vlb_sums(vlb_table(Schedule::linear(21), Variance::kPosterior), 1, 0, 1, x0.data(), &sums), Error);
  EXPECT_THROW(lik.ode_end_states(ode_rk4_table(s, 1), -1, x0.data(), out.data()), Error);
  EXPECT_THROW(gpu::GpuLikelihood(p.data(), s, kSeedModel, 0), Error);
}

}  // namespace
}  // namespace ddpm::kernels
