// The thin GPU driver of the fused sampler: uploads the tables once, then
// draws any range of the sample set chunk by chunk.
#pragma once

#include <cstdint>
#include <memory>

#include "ddpm/schedule.hpp"

namespace ddpm::gpu {

class GpuSampler {
 public:
  GpuSampler(const float* params, const Schedule& sched);
  ~GpuSampler();
  GpuSampler(const GpuSampler&) = delete;
  GpuSampler& operator=(const GpuSampler&) = delete;

  // Points [first, first + count) drawn with `seed` into host memory xy (count x 2).
  void sample(uint64_t seed, int64_t first, int64_t count, float* xy);

 private:
  struct Device;
  std::unique_ptr<Device> d_;
  int T_;
};

}  // namespace ddpm::gpu
