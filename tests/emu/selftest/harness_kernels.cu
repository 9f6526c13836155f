// Launchers of the harness's test kernels, compiled by nvcc only.
#include "harness_kernels.cuh"

#include "ddpm/cuda_check.hpp"
#include "ddpm/launch.hpp"
#include "ddpm/nvtx.hpp"

namespace ddpm::harness {

void launch_block_reduce_sum(const float* in, float* out, int n, cudaStream_t stream) {
  NvtxRange range("harness::block_reduce_sum");
  ddpm::launch_kernel(block_reduce_sum<kReduceBlock>, kReduceGrid, kReduceBlock, 0, stream, in, out, n);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

void launch_block_reduce_sum_dynamic(const float* in, float* out, int n, cudaStream_t stream) {
  NvtxRange range("harness::block_reduce_sum_dynamic");
  ddpm::launch_kernel(block_reduce_sum_dynamic, kReduceGrid, kReduceBlock, kReduceBlock * sizeof(float), stream, in,
                      out, n);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

void launch_block_scan(const int* in, int* out, cudaStream_t stream) {
  NvtxRange range("harness::block_scan");
  ddpm::launch_kernel(block_scan, kScanGrid, kScanBlock, 0, stream, in, out);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

void launch_warp_ops(const int* in, int* out, cudaStream_t stream) {
  NvtxRange range("harness::warp_ops");
  ddpm::launch_kernel(warp_ops, kWarpOpsGrid, kWarpOpsBlock, 0, stream, in, out);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

void launch_tiled_matmul(const float* a, const float* b, float* c, int m, int n, int k, cudaStream_t stream) {
  NvtxRange range("harness::tiled_matmul");
  const dim3 grid((n + kTile - 1) / kTile, (m + kTile - 1) / kTile);
  ddpm::launch_kernel(tiled_matmul<kTile>, grid, dim3(kTile, kTile), 0, stream, a, b, c, m, n, k);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

void launch_mma_tf32(const float* a, const float* b, const float* c, float* d, bool wrong_layout,
                     cudaStream_t stream) {
  NvtxRange range("harness::mma_tf32_product");
  if (wrong_layout) {
    ddpm::launch_kernel(mma_tf32_product<true>, kMmaProblems, 32, 0, stream, a, b, c, d);
  } else {
    ddpm::launch_kernel(mma_tf32_product<false>, kMmaProblems, 32, 0, stream, a, b, c, d);
  }
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

void launch_mma_bf16(const float* a, const float* b, const float* c, float* d, bool wrong_layout,
                     cudaStream_t stream) {
  NvtxRange range("harness::mma_bf16_product");
  if (wrong_layout) {
    ddpm::launch_kernel(mma_bf16_product<true>, kMmaProblems, 32, 0, stream, a, b, c, d);
  } else {
    ddpm::launch_kernel(mma_bf16_product<false>, kMmaProblems, 32, 0, stream, a, b, c, d);
  }
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

void launch_mma_tf32_probe(float* d, cudaStream_t stream) {
  NvtxRange range("harness::mma_tf32_probe");
  ddpm::launch_kernel(mma_tf32_probe, 1, 32, 0, stream, d);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

void launch_mma_bf16_probe(float* d, cudaStream_t stream) {
  NvtxRange range("harness::mma_bf16_probe");
  ddpm::launch_kernel(mma_bf16_probe, 1, 32, 0, stream, d);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

void launch_atomics(const int* in, AtomicsOut* out, int* exchange_old, cudaStream_t stream) {
  NvtxRange range("harness::atomics_contention");
  ddpm::launch_kernel(atomics_contention, kAtomicsGrid, kAtomicsBlock, 0, stream, in, out, exchange_old);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

void launch_neighbor_synced(const float* in, float* out, cudaStream_t stream) {
  NvtxRange range("harness::neighbor_sum");
  ddpm::launch_kernel(neighbor_sum<true>, kNeighborGrid, kNeighborBlock, 0, stream, in, out);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

}  // namespace ddpm::harness
