// Launchers of the harness's test kernels, compiled by nvcc only.
#include "harness_kernels.cuh"

#include "ddpm/cuda_check.hpp"
#include "ddpm/nvtx.hpp"

namespace ddpm::harness {

void launch_block_reduce_sum(const float* in, float* out, int n, cudaStream_t stream) {
  NvtxRange range("harness::block_reduce_sum");
  block_reduce_sum<kReduceBlock><<<kReduceGrid, kReduceBlock, 0, stream>>>(in, out, n);
  DDPM_CUDA_CHECK_LAUNCH();
}

void launch_block_reduce_sum_dynamic(const float* in, float* out, int n, cudaStream_t stream) {
  NvtxRange range("harness::block_reduce_sum_dynamic");
  block_reduce_sum_dynamic<<<kReduceGrid, kReduceBlock, kReduceBlock * sizeof(float), stream>>>(in, out, n);
  DDPM_CUDA_CHECK_LAUNCH();
}

void launch_block_scan(const int* in, int* out, cudaStream_t stream) {
  NvtxRange range("harness::block_scan");
  block_scan<<<kScanGrid, kScanBlock, 0, stream>>>(in, out);
  DDPM_CUDA_CHECK_LAUNCH();
}

void launch_warp_ops(const int* in, int* out, cudaStream_t stream) {
  NvtxRange range("harness::warp_ops");
  warp_ops<<<kWarpOpsGrid, kWarpOpsBlock, 0, stream>>>(in, out);
  DDPM_CUDA_CHECK_LAUNCH();
}

void launch_tiled_matmul(const float* a, const float* b, float* c, int m, int n, int k, cudaStream_t stream) {
  NvtxRange range("harness::tiled_matmul");
  const dim3 grid((n + kTile - 1) / kTile, (m + kTile - 1) / kTile);
  tiled_matmul<kTile><<<grid, dim3(kTile, kTile), 0, stream>>>(a, b, c, m, n, k);
  DDPM_CUDA_CHECK_LAUNCH();
}

void launch_mma_tf32(const float* a, const float* b, const float* c, float* d, bool wrong_layout,
                     cudaStream_t stream) {
  NvtxRange range("harness::mma_tf32_product");
  if (wrong_layout) {
    mma_tf32_product<true><<<kMmaProblems, 32, 0, stream>>>(a, b, c, d);
  } else {
    mma_tf32_product<false><<<kMmaProblems, 32, 0, stream>>>(a, b, c, d);
  }
  DDPM_CUDA_CHECK_LAUNCH();
}

void launch_mma_bf16(const float* a, const float* b, const float* c, float* d, bool wrong_layout,
                     cudaStream_t stream) {
  NvtxRange range("harness::mma_bf16_product");
  if (wrong_layout) {
    mma_bf16_product<true><<<kMmaProblems, 32, 0, stream>>>(a, b, c, d);
  } else {
    mma_bf16_product<false><<<kMmaProblems, 32, 0, stream>>>(a, b, c, d);
  }
  DDPM_CUDA_CHECK_LAUNCH();
}

void launch_mma_tf32_probe(float* d, cudaStream_t stream) {
  NvtxRange range("harness::mma_tf32_probe");
  mma_tf32_probe<<<1, 32, 0, stream>>>(d);
  DDPM_CUDA_CHECK_LAUNCH();
}

void launch_mma_bf16_probe(float* d, cudaStream_t stream) {
  NvtxRange range("harness::mma_bf16_probe");
  mma_bf16_probe<<<1, 32, 0, stream>>>(d);
  DDPM_CUDA_CHECK_LAUNCH();
}

void launch_atomics(const int* in, AtomicsOut* out, int* exchange_old, cudaStream_t stream) {
  NvtxRange range("harness::atomics_contention");
  atomics_contention<<<kAtomicsGrid, kAtomicsBlock, 0, stream>>>(in, out, exchange_old);
  DDPM_CUDA_CHECK_LAUNCH();
}

void launch_neighbor_synced(const float* in, float* out, cudaStream_t stream) {
  NvtxRange range("harness::neighbor_sum");
  neighbor_sum<true><<<kNeighborGrid, kNeighborBlock, 0, stream>>>(in, out);
  DDPM_CUDA_CHECK_LAUNCH();
}

}  // namespace ddpm::harness
