// numpy and PyTorch read what we write and write what we read. Skipped when
// the Python interpreter (DDPM_TEST_PYTHON, default /usr/bin/python3) lacks
// the module.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "ddpm/params.hpp"
#include "host/io/checkpoint.hpp"
#include "host/io/samples_io.hpp"
#include "io_test_util.hpp"

namespace ddpm::io {
namespace {

using test::read_bytes;
using test::same_bits;
using test::TempDir;
using test::throws_error;
using test::write_bytes;

std::string python() {
  const char* env = std::getenv("DDPM_TEST_PYTHON");
  return env != nullptr && *env != '\0' ? env : "/usr/bin/python3";
}

std::string quoted(const std::string& s) {
  std::string q = "'";
  for (const char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The exit status of the command, or -1 when it did not exit normally.
int run(const std::string& command) {
  std::fflush(nullptr);
  const int status = std::system(command.c_str());
  return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool python_has(const char* module) {
  return run(quoted(python()) + " -c 'import " + std::string(module) + "' >/dev/null 2>&1") == 0;
}

std::string script(const char* name) { return std::string(DDPM_SOURCE_DIR) + "/tests/io/" + name; }

std::vector<float> raw_floats(const std::string& path) {
  const std::string bytes = read_bytes(path);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

TEST(IoInterop, NumpyReadsOurSampleFiles) {
  if (!python_has("numpy")) GTEST_SKIP() << python() << " cannot import numpy";
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
  if (!python_has("numpy")) GTEST_SKIP() << python() << " cannot import numpy";
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
  if (!python_has("torch")) GTEST_SKIP() << python() << " cannot import torch";
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

}  // namespace
}  // namespace ddpm::io
