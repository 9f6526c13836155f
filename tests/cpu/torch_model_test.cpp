// The PyTorch module of each model variant (tests/io/torch_model.py, shown in
// the README) loads a checkpoint of ours with load_state_dict(strict=True) and
// computes the CPU backend's eps_theta. Skipped where Python lacks torch (a
// failure in CI, which installs it).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "host/cpu/cpu_backend.hpp"
#include "host/io/checkpoint.hpp"
#include "tests/cpu/model_variants.hpp"
#include "tests/io/io_test_util.hpp"
#include "tests/io/python.hpp"

namespace ddpm {
namespace {

class TorchModel : public ::testing::TestWithParam<ModelConfig> {};
INSTANTIATE_TEST_SUITE_P(Variants, TorchModel, test::model_variants(), test::model_variant_name);

template <class T>
void write_raw(const std::string& path, const std::vector<T>& v) {
  io::test::write_bytes(path, std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T)));
}

TEST_P(TorchModel, LoadsOurCheckpointAndComputesOurEps) {
  DDPM_NEED_PYTHON_MODULE("torch");
  const ModelConfig model = GetParam();
  const uint32_t seed = io::test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen(seed);
  io::test::TempDir dir;
  io::Checkpoint ckpt;
  ckpt.meta.model = model;
  ckpt.meta.model.x_scale = model.x_embedding == XEmbedding::kSinusoidal ? 5.f + float(gen() % 40) : kXScale;
  ckpt.params = cpu::init_params(seed, model);
  io::save_checkpoint(dir.file("ckpt.safetensors"), ckpt);

  const int n = 97;
  std::normal_distribution<float> normal(0.f, 1.5f);
  std::vector<float> x(2 * n);
  std::vector<int32_t> t(n);
  for (float& v : x) v = normal(gen);
  for (int32_t& v : t) v = 1 + int32_t(gen() % kT);
  write_raw(dir.file("x.f32"), x);
  write_raw(dir.file("t.i32"), t);
  ASSERT_EQ(test_python::run_script("torch_model.py", test_python::quoted(dir.file("ckpt.safetensors")) + " " +
                                                          test_python::quoted(dir.file("x.f32")) + " " +
                                                          test_python::quoted(dir.file("t.i32")) + " " +
                                                          test_python::quoted(dir.file("eps.f32"))),
            0);
  const std::string bytes = io::test::read_bytes(dir.file("eps.f32"));
  ASSERT_EQ(bytes.size(), 2 * n * sizeof(float));
  std::vector<float> theirs(2 * n), ours(2 * n, std::nanf(""));
  std::memcpy(theirs.data(), bytes.data(), bytes.size());
  cpu::eps_forward(ckpt.params.data(), x.data(), t.data(), n, ours.data(), ckpt.meta.model);
  // Torch computes the encoding's argument in float64, the engine rounds s x to
  // float first: up to ~1e-5 apart at the largest arguments.
  for (int i = 0; i < 2 * n; ++i) ASSERT_NEAR(ours[i], theirs[i], 1e-4) << "element " << i;
}

}  // namespace
}  // namespace ddpm
