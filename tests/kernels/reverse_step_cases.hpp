// Checks of the step-by-step reverse-process kernels, written once for both
// backends: Backend::init(x, n, seed, first) and Backend::step(x, eps, n, t, T,
// coef, seed, first) run the kernels (emulated on the CPU, or on a GPU) on host
// vectors. The reference is the CPU sampler's own arithmetic with its
// sequential NormalPairs streams.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "ddpm/math.hpp"
#include "ddpm/rng.hpp"
#include "host/cpu/cpu_backend.hpp"

namespace ddpm::kernels::cases {

// |got - want| <= tol * (1 + |want|), every element; tol 0 demands equality.
inline void expect_close(const std::vector<float>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (!(std::abs(got[i] - want[i]) <= tol * (1 + std::abs(want[i]))) && ++bad <= 5)
      ADD_FAILURE() << "element " << i << ": got " << got[i] << ", want " << want[i];
  EXPECT_EQ(bad, 0);
}

// The i-th point's pair p, drawn sequentially as the CPU sampler does.
inline void sequential_pair(uint64_t seed, uint64_t item, uint64_t p, float& a, float& b) {
  NormalPairs rng{};
  philox_init(&rng.state, seed, Stream::kSample, item);
  for (uint64_t k = 0; k <= p; ++k) rng.next(a, b);
}

template <class Backend>
void init_draws_pair_zero(Backend& backend, double tol) {
  const uint64_t seed = std::random_device{}();
  const int64_t n = 700, first = 123456789;  // three blocks, the last partial
  std::vector<float> x(2 * n, std::nanf(""));
  backend.init(x, n, seed, first);
  std::vector<double> want(2 * n);
  for (int64_t i = 0; i < n; ++i) {
    float a, b;
    sequential_pair(seed, uint64_t(first + i), 0, a, b);
    want[2 * i] = a;
    want[2 * i + 1] = b;
  }
  expect_close(x, want, tol);
}

// Steps of the ancestral chain (first, middle, the last noisy one, the last)
// and of a noisy DDIM chain, each against the update's formula with the
// point's own noise pair drawn sequentially.
template <class Backend>
void one_step_matches_the_formula(Backend& backend, double tol) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0, 1);
  const Schedule s = Schedule::linear();
  SamplerConfig ddim;
  ddim.kind = SamplerKind::kDdim;
  ddim.steps = 10;
  ddim.eta = 0.7;
  const std::vector<SampleStep> ancestral = sample_steps(s, {}), ddim_steps = sample_steps(s, ddim);
  const int64_t n = 600, first = 1000;
  const std::pair<const std::vector<SampleStep>*, int> cases[] = {
      {&ancestral, 0}, {&ancestral, s.T - 317}, {&ancestral, s.T - 2}, {&ancestral, s.T - 1},
      {&ddim_steps, 0}, {&ddim_steps, 4}, {&ddim_steps, 9}};
  for (const auto& [steps, index] : cases) {
    const SampleStep& step = (*steps)[index];
    SCOPED_TRACE(std::string(step.ddim ? "ddim" : "ddpm") + " t=" + std::to_string(step.t));
    std::vector<float> x(2 * n), eps(2 * n);
    for (auto& v : x) v = normal(gen);
    for (auto& v : eps) v = normal(gen);
    std::vector<double> want(2 * n);
    for (int64_t i = 0; i < n; ++i) {
      float z0 = 0, z1 = 0;
      if (step.noise) sequential_pair(seed, uint64_t(first + i), uint64_t(index) + 1, z0, z1);
      if (step.ddim) {
        want[2 * i] = ddim_step(x[2 * i], eps[2 * i], z0, step.ddim_coef);
        want[2 * i + 1] = ddim_step(x[2 * i + 1], eps[2 * i + 1], z1, step.ddim_coef);
      } else {
        want[2 * i] = reverse_step(x[2 * i], eps[2 * i], z0, step.reverse);
        want[2 * i + 1] = reverse_step(x[2 * i + 1], eps[2 * i + 1], z1, step.reverse);
      }
    }
    backend.step(x, eps, n, step, index, seed, first);
    expect_close(x, want, tol);
  }
  // The ancestral chain's pair index is sample_noise_pair's.
  EXPECT_EQ(uint64_t(s.T - 317) + 1, sample_noise_pair(317, s.T));
}

// A whole chain, kernels between CPU evaluations of eps_theta, against the CPU sampler.
template <class Backend>
void short_chain_matches_the_cpu_sampler(Backend& backend, double tol) {
  const uint64_t seed = std::random_device{}();
  const Schedule s = Schedule::linear(12);
  const std::vector<float> params = cpu::init_params(seed);
  const int64_t n = 300, first = 77;
  std::vector<float> x(2 * n), eps(2 * n), cpu_xy(2 * n);
  std::vector<int> t_all(n);
  backend.init(x, n, seed, first);
  const std::vector<SampleStep> steps = sample_steps(s, {});
  for (int k = 0; k < int(steps.size()); ++k) {
    std::fill(t_all.begin(), t_all.end(), steps[k].t);
    cpu::eps_forward(params.data(), x.data(), t_all.data(), int(n), eps.data());
    backend.step(x, eps, n, steps[k], k, seed, first);
  }
  cpu::sample(s, params.data(), seed, first, n, cpu_xy.data());
  expect_close(x, std::vector<double>(cpu_xy.begin(), cpu_xy.end()), tol);
}

}  // namespace ddpm::kernels::cases
