// Launcher of the forward-process kernel (nvcc only).
#include "ddpm/cuda_check.hpp"
#include "ddpm/launch.hpp"
#include "ddpm/nvtx.hpp"
#include "kernels/forward_process.cuh"

namespace ddpm::kernels {

void launch_forward_process(uint64_t seed, int n, const DataSource& data, const ForwardCoef* coef, int snapshots,
                            float* out, cudaStream_t stream) {
  NvtxRange range("forward_process");
  if (n == 0 || snapshots == 0) return;
  ddpm::launch_kernel(forward_process_kernel, 1, kForwardThreads, 0, stream, seed, n, data, coef, snapshots, out);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

}  // namespace ddpm::kernels
