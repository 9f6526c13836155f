#include "host/gpu/gpu_sampler.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "ddpm/cuda_check.hpp"
#include "ddpm/error.hpp"
#include "ddpm/nvtx.hpp"
#include "host/gpu/device_memory.hpp"
#include "host/gpu/sampler_tables.hpp"

namespace ddpm::gpu {

struct GpuSampler::Device {
  DeviceAllocations mem;
  kernels::FusedSamplerNet net{};
  kernels::Precision precision = kernels::Precision::kFp32;
  int64_t chunk = 0;
  int max_grid = 0;
  cudaStream_t stream = nullptr;
  float* out[2] = {nullptr, nullptr};   // device, one chunk each
  float* host[2] = {nullptr, nullptr};  // pinned, one chunk each
  cudaEvent_t ready[2] = {nullptr, nullptr};

  ~Device() {
    for (int b = 0; b < 2; ++b) {
      if (host[b]) cudaFreeHost(host[b]);
      if (ready[b]) cudaEventDestroy(ready[b]);
    }
    if (stream) cudaStreamDestroy(stream);
  }
};

GpuSampler::GpuSampler(const float* params, const Schedule& sched, const SamplerConfig& config,
                       kernels::Precision precision, int64_t chunk, const ModelConfig& model)
    : d_(std::make_unique<Device>()) {
  NvtxRange range("GpuSampler::upload");
  if (chunk < 1) throw Error("GpuSampler: chunk " + std::to_string(chunk) + " < 1");
  const SamplerTables t(params, sched, config, model);
  Device& d = *d_;
  d.precision = precision;
  d.chunk = chunk;
  // Throws if this GPU cannot run the precision (for tf32 with the x encoding: sm_90's shared memory).
  d.max_grid = kernels::fused_max_grid(precision, model.x_embedding != XEmbedding::kNone);
  DDPM_CUDA_CHECK(cudaStreamCreateWithFlags(&d.stream, cudaStreamNonBlocking));
  auto keep = [&](const auto& host) { return d.mem.upload(host, "the sampler's weights", d.stream); };
  d.net = {keep(t.w0c0), keep(t.w0c1), keep(t.e1),    keep(t.wt1),         keep(t.b1),
           keep(t.wt2),  keep(t.b2),   keep(t.w3),    keep(t.b3),          keep(t.steps),
           int(t.steps.size()), t.wt0x.empty() ? nullptr : keep(t.wt0x), t.x_scale, t.x_freq};
  for (int b = 0; b < 2; ++b) {
    d.out[b] = d.mem.alloc<float>(2 * std::size_t(chunk), "a chunk of " + std::to_string(chunk) + " samples",
                                  "try a smaller --chunk");
    DDPM_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&d.host[b]), 2 * std::size_t(chunk) * sizeof(float)));
    DDPM_CUDA_CHECK(cudaEventCreateWithFlags(&d.ready[b], cudaEventDisableTiming));
  }
}

GpuSampler::~GpuSampler() = default;

void GpuSampler::sample_chunks(uint64_t seed, int64_t first, int64_t count, const Sink& sink) {
  NvtxRange range("GpuSampler::sample");
  if (first < 0 || count < 0) throw Error("GpuSampler: negative range");
  Device& d = *d_;
  struct Pending {
    int buffer;
    int64_t first, count;
  };
  auto hand_over = [&](const Pending& p) {
    DDPM_CUDA_CHECK(cudaEventSynchronize(d.ready[p.buffer]));
    sink(Chunk{d.host[p.buffer], d.out[p.buffer], p.first, p.count});  // d.out[b] is reused only after this
  };
  bool pending = false;
  Pending last{};
  for (int64_t done = 0, k = 0; done < count; ++k) {
    const int b = int(k % 2);
    const int64_t len = std::min(d.chunk, count - done);
    const int grid = std::min(d.max_grid, kernels::fused_blocks_for(d.precision, len));
    // Buffer b last held chunk k - 2, already handed over: reuse it.
    kernels::launch_sample_fused(d.precision, d.net, seed, first + done, len, d.out[b], grid, d.stream);
    DDPM_CUDA_CHECK(cudaMemcpyAsync(d.host[b], d.out[b], 2 * std::size_t(len) * sizeof(float),
                                    cudaMemcpyDeviceToHost, d.stream));
    DDPM_CUDA_CHECK(cudaEventRecord(d.ready[b], d.stream));
    if (pending) hand_over(last);  // chunk k - 1, while chunk k computes
    last = {b, first + done, len};
    pending = true;
    done += len;
  }
  if (pending) hand_over(last);
}

void GpuSampler::sample(uint64_t seed, int64_t first, int64_t count, float* xy) {
  sample_chunks(seed, first, count, [&](const Chunk& c) {
    std::memcpy(xy + 2 * (c.first - first), c.host, 2 * std::size_t(c.count) * sizeof(float));
  });
}

}  // namespace ddpm::gpu
