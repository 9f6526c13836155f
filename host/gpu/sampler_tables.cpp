#include "host/gpu/sampler_tables.hpp"

#include "ddpm/params.hpp"
#include "host/cpu/mlp.hpp"

namespace ddpm::gpu {

SamplerTables::SamplerTables(const float* params, const Schedule& sched, const SamplerConfig& config)
    : e1(cpu::layer0_time_terms(params, sched.T)),
      b1(params + kLayer1.bias, params + kLayer1.bias + kHidden),
      b2(params + kLayer2.bias, params + kLayer2.bias + kHidden),
      w3(params + kLayer3.weight, params + kLayer3.weight + 2 * kHidden),
      b3(params + kLayer3.bias, params + kLayer3.bias + 2),
      steps(sample_steps(sched, config)) {
  cpu::TransposedWeights wt;
  wt.refresh(params);
  w0c0.assign(wt.wt0.begin(), wt.wt0.begin() + kHidden);  // rows 0 and 1 of W0^T: W0's x columns
  w0c1.assign(wt.wt0.begin() + kHidden, wt.wt0.begin() + 2 * kHidden);
  wt1 = std::move(wt.wt1);
  wt2 = std::move(wt.wt2);
}

kernels::FusedSamplerNet SamplerTables::host_view() const {
  return {w0c0.data(), w0c1.data(), e1.data(), wt1.data(), b1.data(), wt2.data(),
          b2.data(),   w3.data(),   b3.data(), steps.data(), int(steps.size())};
}

}  // namespace ddpm::gpu
