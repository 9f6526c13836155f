// Checks of the fused sampler, written once for both backends:
// Backend::sample(params, sched, seed, first, n, grid) returns n x 2 points.
// The reference is the CPU sampler, which draws the same noise.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "host/cpu/cpu_backend.hpp"
#include "kernels/sample_fused.hpp"
#include "tests/kernels/reverse_step_cases.hpp"

namespace ddpm::kernels::fused_cases {

using cases::expect_close;

inline std::vector<double> cpu_sample(const std::vector<float>& params, const Schedule& s, uint64_t seed,
                                      int64_t first, int64_t n) {
  std::vector<float> xy(2 * n);
  cpu::sample(s, params.data(), seed, first, n, xy.data());
  return {xy.begin(), xy.end()};
}

// Three tiles, the last partial, on two persistent blocks; a short chain.
template <class Backend>
void short_chain_matches_the_cpu_sampler(Backend& b, double tol) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = Schedule::linear(12);
  const std::vector<float> params = cpu::init_params(seed);
  const int64_t n = 2 * kFusedPoints + 22, first = 5000;
  expect_close(b.sample(params, s, seed, first, n, 2), cpu_sample(params, s, seed, first, n), tol);
}

// The seed's full 500-step chain for one tile, on trained-looking weights (scaled up so
// activations leave SiLU's linear part), against the CPU sampler.
template <class Backend>
void full_chain_matches_the_cpu_sampler(Backend& b, double tol) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = Schedule::linear();
  std::vector<float> params = cpu::init_params(seed);
  for (float& p : params) p *= 3.f;
  const int64_t n = kFusedPoints;
  expect_close(b.sample(params, s, seed, 0, n, 1), cpu_sample(params, s, seed, 0, n), tol);
}

// Large betas make x_{t-1} depend on eps_theta with a coefficient near 1, so the
// network's arithmetic (each layer, each unit) is seen at full strength.
template <class Backend>
void network_is_seen_at_full_strength(Backend& b, double tol) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = Schedule::linear(2, 0.5, 0.9);
  std::vector<float> params = cpu::init_params(seed);
  for (float& p : params) p *= 3.f;
  const int64_t n = 2 * kFusedPoints;
  expect_close(b.sample(params, s, seed, 0, n, 2), cpu_sample(params, s, seed, 0, n), tol);
}

// Point i's result does not depend on the launch it is in: a range starting mid-tile
// gives the same bytes as the same points inside a larger range.
template <class Backend>
void any_range_gives_the_same_bytes(Backend& b) {
  const uint64_t seed = std::random_device{}();
  const Schedule s = Schedule::linear(8);
  const std::vector<float> params = cpu::init_params(seed ^ 7);
  const std::vector<float> whole = b.sample(params, s, seed, 0, 3 * kFusedPoints, 2);
  const int64_t first = kFusedPoints + 5, n = kFusedPoints + 9;
  const std::vector<float> part = b.sample(params, s, seed, first, n, 1);
  EXPECT_EQ(0, std::memcmp(part.data(), whole.data() + 2 * first, 2 * n * sizeof(float)));
}

}  // namespace ddpm::kernels::fused_cases
