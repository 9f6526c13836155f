#include <cmath>

#include "ddpm/rng.hpp"
#include "host/cpu/cpu_backend.hpp"

namespace ddpm::cpu {

// nn.Linear.reset_parameters: kaiming_uniform_(a = sqrt(5)) on the weight gives
// bound = sqrt(6 / ((1 + a^2) fan_in)) = 1 / sqrt(fan_in); the bias uses the same bound.
std::vector<float> init_params(uint64_t seed, const ModelConfig& model) {
  const NetLayout& net = model.net();
  std::vector<float> p(net.param_count);
  uint64_t tensor = 0;
  auto fill = [&](std::size_t offset, std::size_t count, int fan_in) {
    Philox st;
    philox_init(&st, seed, Stream::kInit, tensor++);
    const float bound = 1.f / std::sqrt(float(fan_in));
    for (std::size_t i = 0; i < count; ++i) p[offset + i] = bound * (2.f * curand_uniform(&st) - 1.f);
  };
  for (const LayerShape& l : net.layers) {
    fill(l.weight, std::size_t(l.in) * l.out, l.in);
    fill(l.bias, std::size_t(l.out), l.in);
  }
  return p;
}

TrainState TrainState::fresh(uint64_t seed, const ModelConfig& model) {
  TrainState s;
  s.params = init_params(seed, model);
  s.adam_m.assign(s.params.size(), 0.f);
  s.adam_v.assign(s.params.size(), 0.f);
  return s;
}

}  // namespace ddpm::cpu
