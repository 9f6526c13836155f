// What the fused sampler kernel reads, built once per run on the host from
// the flat parameter buffer, the schedule and the sampler's configuration: the
// transposed hidden weights, layer 0's time term for every timestep, the x
// encoding's frequencies, and the chain's steps with their coefficients.
#pragma once

#include <vector>

#include "ddpm/math.hpp"
#include "ddpm/params.hpp"
#include "ddpm/schedule.hpp"
#include "kernels/sample_fused.hpp"

namespace ddpm::gpu {

struct SamplerTables {
  std::vector<float> w0c0, w0c1, e1, wt1, b1, wt2, b2, w3, b3;
  std::vector<float> wt0x;  // W0[:, :128]^T with the x encoding; empty otherwise
  float x_scale = 0.f;
  // The encoding's frequencies, the CPU backend's own (x_embedding_frequencies),
  // with the x encoding; zeros otherwise.
  XEmbeddingFrequencies x_freq{};
  std::vector<SampleStep> steps;

  // params laid out as model.net(). Throws ddpm::Error for a configuration
  // validate_sampler rejects.
  SamplerTables(const float* params, const Schedule& sched, const SamplerConfig& config = {},
                const ModelConfig& model = {});
  // Pointers into these host vectors (what the emulated kernel reads).
  kernels::FusedSamplerNet host_view() const;
};

}  // namespace ddpm::gpu
