#include "host/gpu/gpu_sampler.hpp"

#include <algorithm>
#include <vector>

#include "ddpm/cuda_check.hpp"
#include "ddpm/nvtx.hpp"
#include "host/gpu/sampler_tables.hpp"
#include "kernels/sample_fused.hpp"

namespace ddpm::gpu {

namespace {
constexpr int64_t kChunkPoints = int64_t(1) << 20;

template <class T>
T* upload(const std::vector<T>& host) {
  T* p = nullptr;
  DDPM_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p), host.size() * sizeof(T)));
  DDPM_CUDA_CHECK(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return p;
}
}  // namespace

struct GpuSampler::Device {
  std::vector<void*> owned;
  kernels::FusedSamplerNet net{};
  float* out = nullptr;
  int grid = 0;

  template <class T>
  const T* keep(const std::vector<T>& host) {
    T* p = upload(host);
    owned.push_back(p);
    return p;
  }
  ~Device() {
    for (void* p : owned) cudaFree(p);
  }
};

GpuSampler::GpuSampler(const float* params, const Schedule& sched) : d_(std::make_unique<Device>()), T_(sched.T) {
  NvtxRange range("GpuSampler::upload");
  const SamplerTables t(params, sched);
  d_->net = {d_->keep(t.w0c0), d_->keep(t.w0c1), d_->keep(t.e1), d_->keep(t.wt1), d_->keep(t.b1),
             d_->keep(t.wt2),  d_->keep(t.b2),   d_->keep(t.w3), d_->keep(t.b3),  d_->keep(t.coef)};
  DDPM_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&d_->out), 2 * kChunkPoints * sizeof(float)));
  d_->owned.push_back(d_->out);
  int device = 0, sms = 0;
  DDPM_CUDA_CHECK(cudaGetDevice(&device));
  DDPM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  d_->grid = 2 * sms;  // persistent: two resident blocks per SM where shared memory allows
}

GpuSampler::~GpuSampler() = default;

void GpuSampler::sample(uint64_t seed, int64_t first, int64_t count, float* xy) {
  for (int64_t done = 0; done < count; done += kChunkPoints) {
    const int64_t len = std::min(kChunkPoints, count - done);
    const int grid = std::min(d_->grid, kernels::fused_tiles(len));
    kernels::launch_sample_fused(d_->net, T_, seed, first + done, len, d_->out, grid, nullptr);
    DDPM_CUDA_CHECK(cudaMemcpy(xy + 2 * done, d_->out, 2 * len * sizeof(float), cudaMemcpyDeviceToHost));
  }
}

}  // namespace ddpm::gpu
