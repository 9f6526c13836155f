// The forward-process kernel on a GPU, held to the emulation's checks; skipped
// with the reason where no CUDA device exists.
#include <gtest/gtest.h>

#include "kernels/forward_process.hpp"
#include "tests/gpu_util.hpp"
#include "tests/kernels/forward_process_cases.hpp"

namespace ddpm::kernels {
namespace {

struct OnDevice {
  std::vector<float> run(uint64_t seed, int n, DataSource data, const std::vector<ForwardCoef>& coefs,
                         const std::vector<float>& file) {
    testing::DeviceBuffer<ForwardCoef> dc(coefs);
    testing::DeviceBuffer<float> df(file), dout(std::vector<float>(coefs.size() * 2 * n, NAN));
    if (data.dataset == Dataset::kFile) data.points = df.get();
    launch_forward_process(seed, n, data, dc.get(), int(coefs.size()), dout.get(), nullptr);
    std::vector<float> out(coefs.size() * 2 * n);
    dout.download(out);
    return out;
  }
};

TEST(ForwardProcessGpu, SnapshotsMatchTheCpu) {
  if (const std::string why = testing::no_device_reason(); !why.empty()) GTEST_SKIP() << why;
  OnDevice b;
  forward_cases::snapshots_match_the_cpu(b, 2000);
}

}  // namespace
}  // namespace ddpm::kernels
