// The backend's two instruction-set builds: selection, and the same bytes from
// both (cpu_backend.hpp's promise), on fresh random weights and batches.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ddpm/error.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "tests/cpu/isa_guard.hpp"
#include "tests/cpu/model_variants.hpp"

namespace ddpm {
namespace {

using cpu::CpuIsa;

TEST(CpuIsa, AutoPicksTheWidestTheCpuHas) {
  const IsaGuard restore;
  const CpuIsa want = cpu::cpu_supports(CpuIsa::kAvx512) ? CpuIsa::kAvx512 : CpuIsa::kAvx2;
  EXPECT_EQ(cpu::select_cpu_isa("auto"), want);
  EXPECT_EQ(cpu::active_cpu_isa(), want);
  EXPECT_EQ(cpu::select_cpu_isa("avx2"), CpuIsa::kAvx2);
  EXPECT_EQ(cpu::active_cpu_isa(), CpuIsa::kAvx2);
  EXPECT_TRUE(cpu::cpu_supports(CpuIsa::kAvx2));
  if (!cpu::cpu_supports(CpuIsa::kAvx512)) {
    EXPECT_FALSE(cpu::cpu_supports_bf16());
    try {
      cpu::select_cpu_isa("avx512");
      FAIL() << "avx512 selected on a CPU without it";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("lacks AVX-512"), std::string::npos) << e.what();
    }
  }
}

TEST(CpuIsa, UnknownNamesAreRefusedByName) {
  const IsaGuard restore;
  for (const char* bad : {"avx3", "", "AVX2", "sse4"}) {
    try {
      cpu::select_cpu_isa(bad);
      FAIL() << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("\"" + std::string(bad) + "\""), std::string::npos) << e.what();
    }
  }
  try {
    cpu::cpu_precision_from_name("fp16");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"fp16\""), std::string::npos) << e.what();
  }
}

TEST(CpuIsa, Bf16IsRefusedOnTheAvx2Build) {
  const IsaGuard restore;
  cpu::select_cpu_isa("avx2");
  const std::vector<float> p = cpu::init_params(1);
  std::vector<float> xy(8);
  try {
    cpu::sample(Schedule::linear(3), p.data(), 1, 0, 4, xy.data(), {}, cpu::CpuPrecision::kBf16);
    FAIL() << "bf16 ran on the AVX2 build";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("AVX512_BF16"), std::string::npos) << e.what();
  }
}

// Runs f() under each build and returns the bytes it produced.
template <class F>
std::vector<std::vector<float>> under_each_build(F f) {
  const IsaGuard restore;
  std::vector<std::vector<float>> out;
  for (const char* isa : {"avx2", "avx512"}) {
    cpu::select_cpu_isa(isa);
    out.push_back(f());
  }
  return out;
}

void expect_same_bytes(const std::vector<std::vector<float>>& r) {
  ASSERT_EQ(r[0].size(), r[1].size());
  for (std::size_t i = 0; i < r[0].size(); ++i)
    ASSERT_EQ(0, std::memcmp(&r[0][i], &r[1][i], sizeof(float))) << "element " << i << ": avx2 " << r[0][i]
                                                                  << ", avx512 " << r[1][i];
}

class CpuIsaBuilds : public ::testing::TestWithParam<ModelConfig> {
 protected:
  void SetUp() override {
    if (!cpu::cpu_supports(CpuIsa::kAvx512)) GTEST_SKIP() << "this CPU lacks AVX-512: only one build can run";
  }
  const uint64_t seed = std::random_device{}();
  const ModelConfig model = GetParam();
};
INSTANTIATE_TEST_SUITE_P(Variants, CpuIsaBuilds, test::model_variants(), test::model_variant_name);

TEST_P(CpuIsaBuilds, TrainingGivesTheSameBytes) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = Schedule::linear();
  cpu::TrainConfig config;
  config.steps = 3;
  config.batch = 100 + int(seed % 50);  // ragged row blocks and tiles
  config.seed = seed;
  config.ema_decay = 0.9;
  config.model = model;
  expect_same_bytes(under_each_build([&] {
    cpu::TrainState state = cpu::TrainState::fresh(seed, model);
    std::vector<float> losses;
    cpu::train(s, config, state, [&](int64_t, float loss) { losses.push_back(loss); });
    for (const auto* v : {&state.params, &state.adam_m, &state.adam_v, &state.ema}) losses.insert(losses.end(), v->begin(), v->end());
    return losses;
  }));
}

TEST_P(CpuIsaBuilds, GradientAndForwardGiveTheSameBytes) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = Schedule::linear();
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  const int n = 37;
  std::vector<float> x0(2 * n), eps(2 * n);
  std::vector<int> t(n);
  for (float& v : x0) v = normal(gen);
  for (float& v : eps) v = normal(gen);
  for (int& v : t) v = 1 + int(gen() % s.T);
  const std::vector<float> p = cpu::init_params(seed, model);
  expect_same_bytes(under_each_build([&] {
    std::vector<float> grad(p.size(), std::nanf("")), out(2 * n, std::nanf(""));
    grad.push_back(cpu::loss_and_grad(s, p.data(), x0.data(), eps.data(), t.data(), n, grad.data(), model));
    cpu::eps_forward(p.data(), x0.data(), t.data(), n, out.data(), model);
    grad.insert(grad.end(), out.begin(), out.end());
    return grad;
  }));
}

TEST_P(CpuIsaBuilds, SamplingGivesTheSameBytes) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = Schedule::linear(40);
  std::vector<float> p = cpu::init_params(seed, model);
  for (float& v : p) v *= 3.f;  // activations well outside SiLU's linear part
  SamplerConfig ddim;
  ddim.kind = SamplerKind::kDdim;
  ddim.steps = 7;
  ddim.eta = 0.5;
  for (const SamplerConfig& config : {SamplerConfig{}, ddim}) {
    const int n = 101;
    expect_same_bytes(under_each_build([&] {
      std::vector<float> xy(2 * n, std::nanf(""));
      cpu::sample(s, p.data(), seed, 333, n, xy.data(), config, cpu::CpuPrecision::kFp32, model);
      return xy;
    }));
  }
}

}  // namespace
}  // namespace ddpm
