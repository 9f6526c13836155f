// The forward-process kernel in emulation: its CUDA source run on the CPU.
#include "kernels/forward_process.cuh"
#include "tests/kernels/forward_process_cases.hpp"

namespace ddpm::kernels {
namespace {

struct Emulated {
  std::vector<float> run(uint64_t seed, int n, const DataSource& data, const std::vector<ForwardCoef>& coefs,
                         const std::vector<float>& /*file: host memory serves as is*/) {
    std::vector<float> out(coefs.size() * 2 * n, std::nanf(""));
    emu::launch(forward_process_kernel, 1, kForwardThreads, 0, seed, n, data, coefs.data(), int(coefs.size()),
                out.data());
    return out;
  }
};

// The batch statistics are summed in another order than the CPU's: a last-bit apart.
TEST(ForwardProcessEmu, SnapshotsMatchTheCpu) {
  Emulated b;
  forward_cases::snapshots_match_the_cpu(b, 1500);
}

}  // namespace
}  // namespace ddpm::kernels
