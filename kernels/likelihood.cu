// Launchers of the likelihood's persistent kernels (nvcc only).
#include <string>

#include "ddpm/cuda_check.hpp"
#include "ddpm/error.hpp"
#include "ddpm/launch.hpp"
#include "ddpm/nvtx.hpp"
#include "kernels/likelihood.cuh"

namespace ddpm::kernels {

namespace {

const char* name_of(LikelihoodKernel k) { return k == LikelihoodKernel::kVlb ? "vlb_sums" : "ode_end_states"; }

// The bound's kernel needs the fused sampler's 68 KB, above the 48 KB default: opt in.
template <class Kernel>
void allow_smem(Kernel kernel, LikelihoodKernel k) {
  DDPM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       int(likelihood_shape(k).smem_bytes)));
}

template <class Kernel>
int max_grid(Kernel kernel, LikelihoodKernel k) {
  const FusedShape shape = likelihood_shape(k);
  int device = 0, sms = 0, smem_optin = 0;
  DDPM_CUDA_CHECK(cudaGetDevice(&device));
  DDPM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  DDPM_CUDA_CHECK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  if (shape.smem_bytes > std::size_t(smem_optin))
    throw Error(std::string("likelihood: ") + name_of(k) + " needs " + std::to_string(shape.smem_bytes) +
                " bytes of shared memory per block; this GPU offers " + std::to_string(smem_optin));
  allow_smem(kernel, k);
  int per_sm = 0;
  DDPM_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, shape.threads, shape.smem_bytes));
  if (per_sm < 1) throw Error(std::string("likelihood: ") + name_of(k) + " does not fit on an SM");
  return per_sm * sms;
}

}  // namespace

int likelihood_max_grid(LikelihoodKernel k) {
  return k == LikelihoodKernel::kVlb ? max_grid(vlb_sums_kernel, k) : max_grid(ode_end_states_kernel, k);
}

void launch_vlb_sums(const VlbNet& net, uint64_t seed, int64_t first, int64_t n, const float* x0, VlbSums* out,
                     int grid, cudaStream_t stream) {
  NvtxRange range("vlb_sums fp32");
  if (n == 0) return;
  allow_smem(vlb_sums_kernel, LikelihoodKernel::kVlb);
  ddpm::launch_kernel(vlb_sums_kernel, grid, kVlbShape.threads, kVlbShape.smem_bytes, stream, net, seed, first, n, x0,
                      out);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

void launch_ode_end_states(const OdeNet& net, int64_t n, const float* x0, float* out, int grid,
                           cudaStream_t stream) {
  NvtxRange range("ode_end_states fp32");
  if (n == 0) return;
  ddpm::launch_kernel(ode_end_states_kernel, grid, kOdeShape.threads, kOdeShape.smem_bytes, stream, net, n, x0,
                      out);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

}  // namespace ddpm::kernels
