// The GPU twins of the emulation tests: the same kernels, launched by their
// nvcc-compiled launchers on a real device and held to the same checks
// (harness_cases.hpp). Where no CUDA device is present every test is skipped
// with the reason. Agreement here is what makes the emulation's verdicts
// (the tensor-core lane mappings above all) trustworthy.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ddpm/cuda_check.hpp"
#include "harness_cases.hpp"
#include "tests/gpu_util.hpp"

#if defined(__SANITIZE_ADDRESS__)
// The CUDA driver maps memory where AddressSanitizer's shadow gap would be.
extern "C" const char* __asan_default_options() { return "protect_shadow_gap=0"; }
#endif

namespace ddpm::harness {
namespace {

using testing::DeviceBuffer;

void finish() { DDPM_CUDA_CHECK(cudaDeviceSynchronize()); }

class GpuBackend final : public Backend {
 public:
  void block_reduce_sum(const std::vector<float>& in, std::vector<float>& out, bool dynamic_smem) override {
    DeviceBuffer<float> d_in(in), d_out(out.size());
    const int n = static_cast<int>(in.size());
    if (dynamic_smem) {
      launch_block_reduce_sum_dynamic(d_in.get(), d_out.get(), n, nullptr);
    } else {
      launch_block_reduce_sum(d_in.get(), d_out.get(), n, nullptr);
    }
    finish();
    d_out.download(out);
  }
  void block_scan(const std::vector<int>& in, std::vector<int>& out) override {
    DeviceBuffer<int> d_in(in), d_out(out.size());
    launch_block_scan(d_in.get(), d_out.get(), nullptr);
    finish();
    d_out.download(out);
  }
  void warp_ops(const std::vector<int>& in, std::vector<int>& out) override {
    DeviceBuffer<int> d_in(in), d_out(out.size());
    launch_warp_ops(d_in.get(), d_out.get(), nullptr);
    finish();
    d_out.download(out);
  }
  void tiled_matmul(const std::vector<float>& a, const std::vector<float>& b, std::vector<float>& c, int m, int n,
                    int k) override {
    DeviceBuffer<float> d_a(a), d_b(b), d_c(c.size());
    launch_tiled_matmul(d_a.get(), d_b.get(), d_c.get(), m, n, k, nullptr);
    finish();
    d_c.download(c);
  }
  void mma(MmaKind kind, bool wrong_layout, const std::vector<float>& a, const std::vector<float>& b,
           const std::vector<float>& c, std::vector<float>& d) override {
    DeviceBuffer<float> d_a(a), d_b(b), d_c(c), d_d(d.size());
    if (kind == MmaKind::kTf32) {
      launch_mma_tf32(d_a.get(), d_b.get(), d_c.get(), d_d.get(), wrong_layout, nullptr);
    } else {
      launch_mma_bf16(d_a.get(), d_b.get(), d_c.get(), d_d.get(), wrong_layout, nullptr);
    }
    finish();
    d_d.download(d);
  }
  void mma_probe(MmaKind kind, std::vector<float>& d) override {
    DeviceBuffer<float> d_d(d.size());
    if (kind == MmaKind::kTf32) {
      launch_mma_tf32_probe(d_d.get(), nullptr);
    } else {
      launch_mma_bf16_probe(d_d.get(), nullptr);
    }
    finish();
    d_d.download(d);
  }
  void atomics(const std::vector<int>& in, AtomicsOut& out, std::vector<int>& exchange_old) override {
    DeviceBuffer<int> d_in(in), d_old(exchange_old.size());
    DeviceBuffer<AtomicsOut> d_out(1);
    d_out.upload(&out);
    launch_atomics(d_in.get(), d_out.get(), d_old.get(), nullptr);
    finish();
    d_out.download(&out);
    d_old.download(exchange_old);
  }
  void neighbor_sum(const std::vector<float>& in, std::vector<float>& out) override {
    DeviceBuffer<float> d_in(in), d_out(out.size());
    launch_neighbor_synced(d_in.get(), d_out.get(), nullptr);
    finish();
    d_out.download(out);
  }
};

class EmuGpuTwin : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = testing::no_device_reason(); !why.empty()) GTEST_SKIP() << why;
  }
  GpuBackend backend_;
};

TEST_F(EmuGpuTwin, BlockReduceStaticShared) { checks::check_block_reduce(backend_, false); }
TEST_F(EmuGpuTwin, BlockReduceDynamicShared) { checks::check_block_reduce(backend_, true); }
TEST_F(EmuGpuTwin, WarpShuffleBlockScan) { checks::check_block_scan(backend_); }
TEST_F(EmuGpuTwin, WarpPrimitives) { checks::check_warp_ops(backend_); }
TEST_F(EmuGpuTwin, TiledMatmulThroughSharedMemory) { checks::check_tiled_matmul(backend_); }
TEST_F(EmuGpuTwin, AtomicsUnderContention) { checks::check_atomics(backend_); }
TEST_F(EmuGpuTwin, NeighborSumWithBarrier) { checks::check_neighbor_sum(backend_); }
TEST_F(EmuGpuTwin, Tf32ProductMatchesPlainProduct) { checks::check_mma_product(backend_, MmaKind::kTf32); }
TEST_F(EmuGpuTwin, Bf16ProductMatchesPlainProduct) { checks::check_mma_product(backend_, MmaKind::kBf16); }
TEST_F(EmuGpuTwin, Tf32EveryLaneMapping) { checks::check_mma_probe(backend_, MmaKind::kTf32); }
TEST_F(EmuGpuTwin, Bf16EveryLaneMapping) { checks::check_mma_probe(backend_, MmaKind::kBf16); }
TEST_F(EmuGpuTwin, Tf32WrongLaneMappingFails) { checks::check_mma_wrong_layout_detected(backend_, MmaKind::kTf32); }
TEST_F(EmuGpuTwin, Bf16WrongLaneMappingFails) { checks::check_mma_wrong_layout_detected(backend_, MmaKind::kBf16); }

}  // namespace
}  // namespace ddpm::harness
