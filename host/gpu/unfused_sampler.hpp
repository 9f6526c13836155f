// The unfused GPU sampler: the chain step by step, the two 128 x 128 layers
// as cuBLAS SGEMMs between the elementwise kernels of kernels/sample_unfused.*
// and the update of kernels/reverse_step.*. Slower than the fused kernels by
// design; it shares no code with them beyond the math of include/ddpm/, which
// makes it their cross-check, and it is the baseline their speed is quoted against.
#pragma once

#include <cstdint>
#include <memory>

#include "ddpm/params.hpp"
#include "ddpm/schedule.hpp"

namespace ddpm::gpu {

class UnfusedSampler {
 public:
  // Points per pass: activations take 3 x 512 bytes per point (1.5 GiB at the
  // default; with the x encoding another 512).
  static constexpr int64_t kDefaultChunk = int64_t(1) << 20;

  // params laid out as model.net(). cuBLAS is opened on first use
  // (cublas_loader.hpp): where it cannot be, throws ddpm::Error naming the library.
  UnfusedSampler(const float* params, const Schedule& sched, const SamplerConfig& config = {},
                 int64_t chunk = kDefaultChunk, const ModelConfig& model = {});
  ~UnfusedSampler();
  UnfusedSampler(const UnfusedSampler&) = delete;
  UnfusedSampler& operator=(const UnfusedSampler&) = delete;

  // Points [first, first + count) drawn with `seed` into host memory xy (count x 2).
  void sample(uint64_t seed, int64_t first, int64_t count, float* xy);

 private:
  struct Device;
  std::unique_ptr<Device> d_;
};

}  // namespace ddpm::gpu
