// Launchers of the persistent fused samplers (nvcc only).
#include <string>

#include "ddpm/cuda_check.hpp"
#include "ddpm/error.hpp"
#include "ddpm/launch.hpp"
#include "ddpm/nvtx.hpp"
#include "kernels/sample_fused.cuh"

namespace ddpm::kernels {

namespace {

// Above the 48 KB default: opt in (sm_80 allows 163 KB, sm_86/89 99 KB, sm_90 227 KB).
template <class Kernel>
void allow_smem(Kernel kernel, Precision p, bool x_encoding) {
  DDPM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       int(fused_shape(p, x_encoding).smem_bytes)));
}

template <class Kernel>
int max_grid(Kernel kernel, Precision p, bool x_encoding) {
  const FusedShape shape = fused_shape(p, x_encoding);
  int device = 0, major = 0, sms = 0, smem_optin = 0;
  DDPM_CUDA_CHECK(cudaGetDevice(&device));
  DDPM_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  DDPM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  DDPM_CUDA_CHECK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  if (p != Precision::kFp32 && major < 8)
    throw Error(std::string("precision ") + name_of(p) + " needs tensor cores of compute capability 8.0 or later");
  if (shape.smem_bytes > std::size_t(smem_optin))
    throw Error(std::string("precision ") + name_of(p) + (x_encoding ? " with the x encoding" : "") + " needs " +
                std::to_string(shape.smem_bytes) + " bytes of shared memory per block; this GPU offers " +
                std::to_string(smem_optin));
  allow_smem(kernel, p, x_encoding);
  int per_sm = 0;
  DDPM_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, shape.threads, shape.smem_bytes));
  if (per_sm < 1) throw Error(std::string("precision ") + name_of(p) + ": the kernel does not fit on an SM");
  return per_sm * sms;
}

}  // namespace

int fused_max_grid(Precision p, bool x_encoding) {
  switch (p) {
    case Precision::kTf32: return max_grid(sample_fused_mma_kernel<Precision::kTf32>, p, x_encoding);
    case Precision::kBf16: return max_grid(sample_fused_mma_kernel<Precision::kBf16>, p, x_encoding);
    default: return max_grid(sample_fused_kernel, p, x_encoding);
  }
}

void launch_sample_fused(Precision p, const FusedSamplerNet& net, uint64_t seed, int64_t first, int64_t n,
                         float* out, int grid, cudaStream_t stream) {
  NvtxRange range(p == Precision::kTf32   ? "sample_fused tf32"
                  : p == Precision::kBf16 ? "sample_fused bf16"
                                          : "sample_fused fp32");
  if (n == 0) return;
  const bool x_encoding = net.wt0x != nullptr;
  const FusedShape shape = fused_shape(p, x_encoding);
  switch (p) {
    case Precision::kTf32:
      allow_smem(sample_fused_mma_kernel<Precision::kTf32>, p, x_encoding);
      ddpm::launch_kernel(sample_fused_mma_kernel<Precision::kTf32>, grid, shape.threads, shape.smem_bytes, stream,
                          net, seed, first, n, out);
      break;
    case Precision::kBf16:
      allow_smem(sample_fused_mma_kernel<Precision::kBf16>, p, x_encoding);
      ddpm::launch_kernel(sample_fused_mma_kernel<Precision::kBf16>, grid, shape.threads, shape.smem_bytes, stream,
                          net, seed, first, n, out);
      break;
    default:
      allow_smem(sample_fused_kernel, p, x_encoding);
      ddpm::launch_kernel(sample_fused_kernel, grid, shape.threads, shape.smem_bytes, stream, net, seed, first, n, out);
  }
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

}  // namespace ddpm::kernels
