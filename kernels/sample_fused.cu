// Launcher of the persistent fused sampler (nvcc only).
#include "ddpm/cuda_check.hpp"
#include "ddpm/nvtx.hpp"
#include "kernels/sample_fused.cuh"

namespace ddpm::kernels {

void launch_sample_fused(const FusedSamplerNet& net, int T, uint64_t seed, int64_t first, int64_t n, float* out,
                         int grid, cudaStream_t stream) {
  NvtxRange range("sample_fused");
  if (n == 0) return;
  // Above the 48 KB default: opt in (sm_80 allows 163 KB, sm_86/89 99 KB, sm_90 227 KB).
  DDPM_CUDA_CHECK(cudaFuncSetAttribute(sample_fused_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       int(kFusedSmemBytes)));
  sample_fused_kernel<<<grid, kFusedThreads, kFusedSmemBytes, stream>>>(net, T, seed, first, n, out);
  DDPM_CUDA_CHECK_LAUNCH();
}

}  // namespace ddpm::kernels
