// numpy, PyTorch and safetensors' own writer: they read what we write and we
// read what they write. Skipped when the Python interpreter (python.hpp) lacks
// the module; tools/install_deps.sh installs them all, so CI never skips.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "ddpm/params.hpp"
#include "host/io/checkpoint.hpp"
#include "host/io/samples_io.hpp"
#include "io_test_util.hpp"
#include "python.hpp"
#include "state_dict_bytes.hpp"

namespace ddpm::io {
namespace {

using test::read_bytes;
using test::same_bits;
using test::TempDir;
using test::throws_error;
using test::write_bytes;

using test_python::python;
using test_python::python_has;
using test_python::quoted;
using test_python::run;
using test_python::script;

std::vector<float> raw_floats(const std::string& path) {
  const std::string bytes = read_bytes(path);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

TEST(IoInterop, NumpyReadsOurSampleFiles) {
  DDPM_NEED_PYTHON_MODULE("numpy");
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const int64_t n = 500 + int64_t(rng() % 500), chunk = 97;
  const std::vector<float> xy = test::random_floats(rng, std::size_t(2 * n));
  for (const char* name : {"s.npy", "s.csv"}) {
    SampleWriter w(dir.file(name), n);
    for (int64_t first = 0; first < n; first += chunk) w.write(xy.data() + 2 * first, std::min(chunk, n - first));
    w.commit();
  }
  write_bytes(dir.file("s.raw"), test::float_bytes(xy));
  EXPECT_EQ(run(quoted(python()) + " " + quoted(script("numpy_interop.py")) + " check " + quoted(dir.file("s.npy")) +
                " " + quoted(dir.file("s.csv")) + " " + quoted(dir.file("s.raw"))),
            0);
}

TEST(IoInterop, WeReadNumpyFiles) {
  DDPM_NEED_PYTHON_MODULE("numpy");
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  TempDir dir;
  ASSERT_EQ(run(quoted(python()) + " " + quoted(script("numpy_interop.py")) + " write " + quoted(dir.path()) + " " +
                std::to_string(seed)),
            0);
  const std::vector<float> f32 = raw_floats(dir.file("f32.raw"));
  EXPECT_TRUE(same_bits(f32, read_samples(dir.file("f32.npy"))));
  EXPECT_TRUE(same_bits(f32, read_samples(dir.file("np.csv"))));
  const std::string raw64 = read_bytes(dir.file("f64.raw"));
  std::vector<float> f64(raw64.size() / sizeof(double));
  for (std::size_t i = 0; i < f64.size(); ++i) {
    double d = 0;
    std::memcpy(&d, raw64.data() + i * sizeof(double), sizeof d);
    f64[i] = float(d);
  }
  EXPECT_TRUE(same_bits(f64, read_samples(dir.file("f64.npy"))));
  EXPECT_TRUE(throws_error([&] { read_samples(dir.file("fortran.npy")); }, {"fortran_order True"}));
}

TEST(IoInterop, TorchLoadsOurCheckpointAndWritesOneWeRead) {
  DDPM_NEED_PYTHON_MODULE("torch");
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  Checkpoint ours;
  std::normal_distribution<float> normal(0.f, 0.1f);
  ours.params.resize(kParamCount);
  for (float& p : ours.params) p = normal(rng);
  ours.params[0] = -0.f;
  ours.params[1] = std::numeric_limits<float>::denorm_min();
  ours.meta.steps = 5000;
  save_checkpoint(dir.file("ours.safetensors"), ours);
  write_bytes(dir.file("ours.f32"), test::float_bytes(ours.params));

  ASSERT_EQ(run(quoted(python()) + " " + quoted(script("torch_interop.py")) + " " +
                quoted(dir.file("ours.safetensors")) + " " + quoted(dir.file("ours.f32")) + " " +
                quoted(dir.file("torch.safetensors")) + " " + quoted(dir.file("torch.f32")) + " " +
                std::to_string(seed)),
            0);
  const Checkpoint theirs = load_checkpoint(dir.file("torch.safetensors"));
  EXPECT_TRUE(same_bits(raw_floats(dir.file("torch.f32")), theirs.params));
  EXPECT_EQ(theirs.meta.T, kT);
  EXPECT_EQ(theirs.meta.steps, 0);
  EXPECT_EQ(theirs.meta.hidden, kHidden);
}

// What a PyTorch user's file must give: the weights bit for bit, the default
// settings, and the metadata keys listed as ignored (sorted).
void expect_plain_state_dict(const std::string& path, const std::vector<float>& params,
                             const std::vector<std::string>& ignored) {
  SCOPED_TRACE(path);
  const Checkpoint c = load_checkpoint(path);
  EXPECT_TRUE(same_bits(params, c.params));
  EXPECT_TRUE(c.ema.empty());
  EXPECT_FALSE(c.training.has_value());
  EXPECT_EQ(c.meta.T, kT);
  EXPECT_EQ(c.meta.beta_1, double(kBeta1));
  EXPECT_EQ(c.meta.beta_T, double(kBetaT));
  EXPECT_EQ(c.meta.schedule, "linear");
  EXPECT_EQ(c.meta.steps, 0);
  EXPECT_FALSE(c.meta.data_scale.has_value());
  EXPECT_TRUE(c.meta.run.empty());
  EXPECT_EQ(c.ignored_metadata, ignored);
}

// Our metadata, every key valid but T (the Python script's OURS).
const test_state_dict::Metadata kOursWithBadT = {
    {"format", "ddpm-cuda"}, {"format_version", "1"}, {"T", "0"},        {"beta_1", "0.0001"},
    {"beta_T", "0.02"},      {"schedule", "linear"},  {"emb_dim", "64"}, {"hidden", "128"},
    {"steps", "0"},          {"seed", "0"},           {"last_loss", "0"}};

TEST(IoInterop, StateDictFilesAsSafetensorsWritesThemLoadWithTheDefaults) {
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const std::vector<float> params = test::random_floats(rng, kParamCount);
  const auto put = [&](const std::string& name, const test_state_dict::Metadata& meta) {
    write_bytes(dir.file(name), test_state_dict::state_dict_bytes(params, meta));
    return dir.file(name);
  };
  expect_plain_state_dict(put("plain.safetensors", {}), params, {});
  expect_plain_state_dict(put("pt.safetensors", {{"format", "pt"}}), params, {"format"});
  expect_plain_state_dict(put("other.safetensors", {{"producer", "numpy"}, {"T", "7"}, {"run.data-std-x", "nan"}}),
                          params, {"T", "producer", "run.data-std-x"});
  const std::string bad = put("bad_T.safetensors", kOursWithBadT);
  EXPECT_TRUE(throws_error([&] { load_checkpoint(bad); }, {bad + ": T = 0 is outside 1..100000"}));
}

TEST(IoInterop, SafetensorsOwnWriterFilesLoadWithTheDefaults) {
  DDPM_NEED_PYTHON_MODULE("safetensors.numpy");
  const uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  TempDir dir;
  ASSERT_EQ(test_python::run_script("safetensors_api.py", quoted(dir.path()) + " " + std::to_string(seed)), 0);
  const std::vector<float> params = raw_floats(dir.file("params.f32"));
  ASSERT_EQ(params.size(), kParamCount);
  expect_plain_state_dict(dir.file("plain.safetensors"), params, {});
  expect_plain_state_dict(dir.file("pt.safetensors"), params, {"format"});
  expect_plain_state_dict(dir.file("other.safetensors"), params, {"T", "beta_1", "producer", "run.data-std-x"});
  EXPECT_TRUE(throws_error([&] { load_checkpoint(dir.file("bad_T.safetensors")); },
                           {dir.file("bad_T.safetensors") + ": T = 0 is outside 1..100000"}));
  // The same bytes as built here (the order of several metadata keys is the writer's hash map's:
  // there only the header's length and the data are compared).
  EXPECT_EQ(read_bytes(dir.file("plain.safetensors")), test_state_dict::state_dict_bytes(params, {}));
  EXPECT_EQ(read_bytes(dir.file("pt.safetensors")), test_state_dict::state_dict_bytes(params, {{"format", "pt"}}));
  const std::string other = read_bytes(dir.file("other.safetensors"));
  const std::string built = test_state_dict::state_dict_bytes(
      params, {{"producer", "numpy"}, {"T", "7"}, {"run.data-std-x", "nan"}, {"beta_1", "not a number"}});
  EXPECT_EQ(other.substr(0, 8), built.substr(0, 8));
  EXPECT_EQ(other.size(), built.size());
  EXPECT_EQ(other.substr(other.size() - kParamCount * 4), built.substr(built.size() - kParamCount * 4));
  EXPECT_EQ(read_bytes(dir.file("bad_T.safetensors")).size(),
            test_state_dict::state_dict_bytes(params, kOursWithBadT).size());
}

}  // namespace
}  // namespace ddpm::io
