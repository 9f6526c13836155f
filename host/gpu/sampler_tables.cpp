#include "host/gpu/sampler_tables.hpp"

#include "ddpm/params.hpp"
#include "host/cpu/mlp.hpp"

namespace ddpm::gpu {

SamplerTables::SamplerTables(const float* params, const Schedule& sched, const SamplerConfig& config,
                             const ModelConfig& model)
    : e1(cpu::layer0_time_terms(model.net(), params, sched.T)), steps(sample_steps(sched, config)) {
  const auto& L = model.net().layers;
  b1.assign(params + L[1].bias, params + L[1].bias + kHidden);
  b2.assign(params + L[2].bias, params + L[2].bias + kHidden);
  w3.assign(params + L[3].weight, params + L[3].weight + 2 * kHidden);
  b3.assign(params + L[3].bias, params + L[3].bias + 2);
  cpu::TransposedWeights wt(model.net());
  wt.refresh(params);
  // Rows 0 and 1 of W0^T: W0's first two columns, x's for the seed's model.
  w0c0.assign(wt.wt0.begin(), wt.wt0.begin() + kHidden);
  w0c1.assign(wt.wt0.begin() + kHidden, wt.wt0.begin() + 2 * kHidden);
  if (model.x_embedding == XEmbedding::kSinusoidal) {
    wt0x.assign(wt.wt0.begin(), wt.wt0.begin() + std::ptrdiff_t(kXEmbInputs) * kHidden);
    x_scale = model.x_scale;
    x_freq = x_embedding_frequencies();
  }
  wt1 = std::move(wt.wt1);
  wt2 = std::move(wt.wt2);
}

kernels::FusedSamplerNet SamplerTables::host_view() const {
  return {w0c0.data(), w0c1.data(), e1.data(),   wt1.data(),         b1.data(),
          wt2.data(),  b2.data(),   w3.data(),   b3.data(),          steps.data(),
          int(steps.size()), wt0x.empty() ? nullptr : wt0x.data(), x_scale, x_freq};
}

}  // namespace ddpm::gpu
