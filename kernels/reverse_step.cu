// Launchers of the step-by-step reverse process (nvcc only).
#include "ddpm/cuda_check.hpp"
#include "ddpm/launch.hpp"
#include "ddpm/nvtx.hpp"
#include "kernels/reverse_step.cuh"

namespace ddpm::kernels {

void launch_sample_init(float* x, float* carried, int64_t n, uint64_t seed, int64_t first, cudaStream_t stream) {
  NvtxRange range("sample_init");
  if (n == 0) return;
  ddpm::launch_kernel(sample_init_kernel, reverse_step_grid(n), kReverseStepBlock, 0, stream, x, carried, n, seed,
                      first);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

void launch_reverse_step(float* x, float* carried, const float* eps, int64_t n, const SampleStep& step, int index,
                         uint64_t seed, int64_t first, cudaStream_t stream) {
  NvtxRange range("reverse_step");
  if (n == 0) return;
  ddpm::launch_kernel(reverse_step_kernel, reverse_step_grid(n), kReverseStepBlock, 0, stream, x, carried, eps, n,
                      step, index, seed, first);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

}  // namespace ddpm::kernels
