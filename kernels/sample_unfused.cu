// Launchers of the unfused sampling path's kernels (nvcc only).
#include "ddpm/cuda_check.hpp"
#include "ddpm/launch.hpp"
#include "ddpm/nvtx.hpp"
#include "kernels/sample_unfused.cuh"

namespace ddpm::kernels {

void launch_layer0_silu(const float* x, int64_t n, const float* w0c0, const float* w0c1, const float* e1t,
                        float* h1, cudaStream_t stream) {
  NvtxRange range("layer0_silu");
  if (n == 0) return;
  ddpm::launch_kernel(layer0_silu_kernel, elementwise_grid(n * kHidden), kUnfusedBlock, 0, stream, x, n, w0c0, w0c1,
                      e1t, h1);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

void launch_x_embedding(const float* x, int64_t n, float scale, const float* freq, float* a, cudaStream_t stream) {
  NvtxRange range("x_embedding");
  if (n == 0) return;
  ddpm::launch_kernel(x_embedding_kernel, elementwise_grid(n * kDataDim * kEmbHalf), kUnfusedBlock, 0, stream, x, n,
                      scale, freq, a);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

void launch_bias_silu(float* h, int64_t n, const float* bias, cudaStream_t stream) {
  NvtxRange range("bias_silu");
  if (n == 0) return;
  ddpm::launch_kernel(bias_silu_kernel, elementwise_grid(n * kHidden), kUnfusedBlock, 0, stream, h, n, bias);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

void launch_output_layer(const float* h3, int64_t n, const float* w3, const float* b3, float* eps,
                         cudaStream_t stream) {
  NvtxRange range("output_layer");
  if (n == 0) return;
  ddpm::launch_kernel(output_layer_kernel, output_layer_grid(n), kUnfusedBlock, 0, stream, h3, n, w3, b3, eps);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

}  // namespace ddpm::kernels
