// The thin GPU driver of the fused samplers: uploads the tables once, then
// draws any range of the sample set chunk by chunk, each chunk computing on
// the GPU while the previous one is handed to the caller.
//
//   GpuSampler sampler(params, sched, config, Precision::kBf16);
//   sampler.sample_chunks(seed, 0, n, [&](const GpuSampler::Chunk& c) { ... });
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "ddpm/params.hpp"
#include "ddpm/schedule.hpp"
#include "kernels/sample_fused.hpp"

namespace ddpm::gpu {

class GpuSampler {
 public:
  static constexpr int64_t kDefaultChunk = int64_t(1) << 20;  // 8 MiB of points per chunk

  // params laid out as model.net(). Throws ddpm::Error for a sampler
  // configuration validate_sampler rejects, a precision the GPU cannot run,
  // or too little GPU memory.
  GpuSampler(const float* params, const Schedule& sched, const SamplerConfig& config = {},
             kernels::Precision precision = kernels::Precision::kFp32, int64_t chunk = kDefaultChunk,
             const ModelConfig& model = {});
  ~GpuSampler();
  GpuSampler(const GpuSampler&) = delete;
  GpuSampler& operator=(const GpuSampler&) = delete;

  // One chunk of points, valid only during the sink's call: in host memory and
  // still in device memory (for statistics that stay on the GPU).
  struct Chunk {
    const float* host;
    const float* device;
    int64_t first, count;
  };
  // Points [first, first + count) drawn with `seed`, in chunks of at most
  // `chunk` points, in order. Chunk k + 1 computes while sink sees chunk k.
  using Sink = std::function<void(const Chunk&)>;
  void sample_chunks(uint64_t seed, int64_t first, int64_t count, const Sink& sink);

  // The same into host memory xy (count x 2).
  void sample(uint64_t seed, int64_t first, int64_t count, float* xy);

 private:
  struct Device;
  std::unique_ptr<Device> d_;
};

}  // namespace ddpm::gpu
