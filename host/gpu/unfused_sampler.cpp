#include "host/gpu/unfused_sampler.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "ddpm/cuda_check.hpp"
#include "ddpm/error.hpp"
#include "ddpm/nvtx.hpp"
#include "ddpm/params.hpp"
#include "host/gpu/cublas_loader.hpp"
#include "host/gpu/device_memory.hpp"
#include "host/gpu/sampler_tables.hpp"
#include "kernels/reverse_step.hpp"
#include "kernels/sample_unfused.hpp"

namespace ddpm::gpu {

struct UnfusedSampler::Device {
  // First: where cuBLAS cannot be loaded, the sampler fails before it allocates anything.
  const CublasApi& api = cublas();
  DeviceAllocations mem;
  cublasHandle_t blas = nullptr;
  cudaStream_t stream = nullptr;
  int64_t chunk = 0;
  std::vector<SampleStep> steps;
  const float *w0c0 = nullptr, *w0c1 = nullptr, *e1 = nullptr, *w1 = nullptr, *b1 = nullptr, *w2 = nullptr,
              *b2 = nullptr, *w3 = nullptr, *b3 = nullptr;
  const float* w0 = nullptr;  // W0 [128][192] with the x encoding; null otherwise
  float x_scale = 0.f;
  const float* x_freq = nullptr;  // [kEmbHalf] the encoding's frequencies (the CPU's), with w0
  float *x = nullptr, *carried = nullptr, *eps = nullptr, *ha = nullptr, *hb = nullptr, *ax = nullptr;

  const float* upload(const float* host, std::size_t count) {
    return mem.upload(host, count, "the sampler's weights", stream);
  }
  ~Device() {
    if (blas) api.destroy(blas);
    if (stream) cudaStreamDestroy(stream);
  }

  // out (n x 128) = in (n x 128) W[:, :128]^T, W [128][ldw] row-major as in the
  // parameter buffer (ldw 128, or 192 for layer 0 with the x encoding, whose
  // first 128 columns are x's). Column-major, out^T = W in^T: W's rows are
  // in-major, so it enters as op T.
  void linear(const float* in, const float* w, float* out, int64_t n, int ldw = kHidden) const {
    const float one = 1.f, zero = 0.f;
    cublas_check(api.sgemm(blas, CUBLAS_OP_T, CUBLAS_OP_N, kHidden, int(n), kHidden, &one, w, ldw, in, kHidden, &zero,
                           out, kHidden),
                 "cublasSgemm");
  }
};

UnfusedSampler::UnfusedSampler(const float* params, const Schedule& sched, const SamplerConfig& config,
                               int64_t chunk, const ModelConfig& model)
    : d_(std::make_unique<Device>()) {
  NvtxRange range("UnfusedSampler::upload");
  if (chunk < 1) throw Error("UnfusedSampler: chunk " + std::to_string(chunk) + " < 1");
  Device& d = *d_;
  const SamplerTables t(params, sched, config, model);
  const auto& L = model.net().layers;
  d.chunk = chunk;
  d.steps = t.steps;
  DDPM_CUDA_CHECK(cudaStreamCreateWithFlags(&d.stream, cudaStreamNonBlocking));
  d.w0c0 = d.upload(t.w0c0.data(), t.w0c0.size());
  d.w0c1 = d.upload(t.w0c1.data(), t.w0c1.size());
  d.e1 = d.upload(t.e1.data(), t.e1.size());
  d.w1 = d.upload(params + L[1].weight, std::size_t(kHidden) * kHidden);
  d.b1 = d.upload(params + L[1].bias, kHidden);
  d.w2 = d.upload(params + L[2].weight, std::size_t(kHidden) * kHidden);
  d.b2 = d.upload(params + L[2].bias, kHidden);
  d.w3 = d.upload(params + L[3].weight, 2 * std::size_t(kHidden));
  d.b3 = d.upload(params + L[3].bias, 2);
  if (model.x_embedding == XEmbedding::kSinusoidal) {
    d.w0 = d.upload(params + L[0].weight, std::size_t(L[0].in) * kHidden);
    d.x_scale = model.x_scale;
    d.x_freq = d.upload(t.x_freq.freq, kEmbHalf);
  }
  const std::string what = "the activations of a chunk of " + std::to_string(chunk) + " samples";
  const char* remedy = "try a smaller --chunk";
  d.x = d.mem.alloc<float>(2 * std::size_t(chunk), what, remedy);
  d.carried = d.mem.alloc<float>(2 * std::size_t(chunk), what, remedy);
  d.eps = d.mem.alloc<float>(2 * std::size_t(chunk), what, remedy);
  d.ha = d.mem.alloc<float>(std::size_t(chunk) * kHidden, what, remedy);
  d.hb = d.mem.alloc<float>(std::size_t(chunk) * kHidden, what, remedy);
  if (d.w0) d.ax = d.mem.alloc<float>(std::size_t(chunk) * kXEmbInputs, what, remedy);
  cublas_check(d.api.create(&d.blas), "cublasCreate");
  cublas_check(d.api.set_stream(d.blas, d.stream), "cublasSetStream");
  // FP32 products without TF32 (the default math mode's SGEMM; CUBLAS_PEDANTIC_MATH,
  // which cuBLAS documents as possibly slower, would flatter the fused kernels).
  cublas_check(d.api.set_math_mode(d.blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
}

UnfusedSampler::~UnfusedSampler() = default;

void UnfusedSampler::sample(uint64_t seed, int64_t first, int64_t count, float* xy) {
  NvtxRange range("UnfusedSampler::sample");
  if (first < 0 || count < 0) throw Error("UnfusedSampler: negative range");
  Device& d = *d_;
  for (int64_t done = 0; done < count; done += d.chunk) {
    const int64_t n = std::min(d.chunk, count - done), base = first + done;
    kernels::launch_sample_init(d.x, d.carried, n, seed, base, d.stream);
    for (int k = 0; k < int(d.steps.size()); ++k) {
      const SampleStep& step = d.steps[k];
      const float* e1t = d.e1 + std::size_t(step.t) * kHidden;
      if (d.w0) {
        kernels::launch_x_embedding(d.x, n, d.x_scale, d.x_freq, d.ax, d.stream);
        d.linear(d.ax, d.w0, d.ha, n, kXEmbNet.in0());
        kernels::launch_bias_silu(d.ha, n, e1t, d.stream);
      } else {
        kernels::launch_layer0_silu(d.x, n, d.w0c0, d.w0c1, e1t, d.ha, d.stream);
      }
      d.linear(d.ha, d.w1, d.hb, n);
      kernels::launch_bias_silu(d.hb, n, d.b1, d.stream);
      d.linear(d.hb, d.w2, d.ha, n);
      kernels::launch_bias_silu(d.ha, n, d.b2, d.stream);
      kernels::launch_output_layer(d.ha, n, d.w3, d.b3, d.eps, d.stream);
      kernels::launch_reverse_step(d.x, d.carried, d.eps, n, step, k, seed, base, d.stream);
    }
    DDPM_CUDA_CHECK(cudaMemcpyAsync(xy + 2 * done, d.x, 2 * std::size_t(n) * sizeof(float), cudaMemcpyDeviceToHost,
                                    d.stream));
    DDPM_CUDA_CHECK(cudaStreamSynchronize(d.stream));
  }
}

}  // namespace ddpm::gpu
