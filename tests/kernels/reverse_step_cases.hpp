// Checks of the step-by-step reverse-process kernels, written once for both
// backends: Backend::init(x, carried, n, seed, first) and Backend::step(x,
// carried, eps, n, step, index, seed, first) run the kernels (emulated on the
// CPU, or on a GPU) on host vectors. The reference is the CPU sampler's own arithmetic with its
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
  std::vector<float> x(2 * n, std::nanf("")), carried(2 * n, std::nanf(""));
  backend.init(x, carried, n, seed, first);
  std::vector<double> want(2 * n);
  for (int64_t i = 0; i < n; ++i) {
    float a, b;
    sequential_pair(seed, uint64_t(first + i), 0, a, b);
    want[2 * i] = a;
    want[2 * i + 1] = b;
  }
  expect_close(x, want, tol);
  expect_close(carried, std::vector<double>(2 * n, 0.0), 0.0);
}

// Steps of the ancestral chain (first, middle, the last noisy one, the last)
// and of a noisy DDIM chain, each against the update's formula with the
// point's own noise pair drawn sequentially; and of DPM-Solver++(2M) and Heun,
// whose linear update also reads and writes the carried 2-vector, against the
// same update written out in double.
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
  SamplerConfig dpmpp{SamplerKind::kDpmpp2m, 8}, heun{SamplerKind::kHeun, 6};
  heun.spacing = Spacing::kKarras;
  const std::vector<SampleStep> ancestral = sample_steps(s, {}), ddim_steps = sample_steps(s, ddim),
                                dpmpp_steps = sample_steps(s, dpmpp), heun_steps = sample_steps(s, heun);
  const int64_t n = 600, first = 1000;
  const std::pair<const std::vector<SampleStep>*, int> cases[] = {
      {&ancestral, 0},   {&ancestral, s.T - 317}, {&ancestral, s.T - 2}, {&ancestral, s.T - 1},
      {&ddim_steps, 0},  {&ddim_steps, 4},        {&ddim_steps, 9},      {&dpmpp_steps, 0},
      {&dpmpp_steps, 3}, {&dpmpp_steps, 7},       {&heun_steps, 0},      {&heun_steps, 1},
      {&heun_steps, 10}};
  for (const auto& [steps, index] : cases) {
    const SampleStep& step = (*steps)[index];
    SCOPED_TRACE(std::string(step.linear ? "linear" : "ancestral") + " step " + std::to_string(index) +
                 " t=" + std::to_string(step.t));
    std::vector<float> x(2 * n), eps(2 * n), carried(2 * n);
    for (auto& v : x) v = normal(gen);
    for (auto& v : eps) v = normal(gen);
    for (auto& v : carried) v = normal(gen);
    std::vector<double> want(2 * n), want_carried(carried.begin(), carried.end());
    for (int64_t i = 0; i < n; ++i) {
      float z[2] = {0, 0};
      if (step.noise) sequential_pair(seed, uint64_t(first + i), uint64_t(index) + 1, z[0], z[1]);
      for (int64_t j = 2 * i; j < 2 * i + 2; ++j) {
        const double xj = x[j], ej = eps[j], zj = z[j - 2 * i];
        if (step.linear) {
          const LinearCoef& c = step.lin;
          want[j] = double(c.x_coef) * xj + double(c.eps_coef) * ej + double(c.sigma) * zj +
                    double(c.a_coef) * carried[j];
          want_carried[j] = double(c.carry_x) * xj + double(c.carry_eps) * ej;
        } else {
          want[j] = reverse_step(x[j], eps[j], float(zj), step.reverse);
        }
      }
    }
    backend.step(x, carried, eps, n, step, index, seed, first);
    // The double reference is rounded once; the kernel's float sum of four terms
    // a few times, each relative to the largest term.
    expect_close(x, want, std::max(tol, 1e-6 * (step.linear ? 8.0 : 0.0)));
    expect_close(carried, want_carried, std::max(tol, step.linear ? 1e-6 : 0.0));
  }
  // The ancestral chain's pair index is sample_noise_pair's.
  EXPECT_EQ(uint64_t(s.T - 317) + 1, sample_noise_pair(317, s.T));
}

// Whole chains of the ancestral sampler, DPM-Solver++(2M) and Heun, kernels
// between CPU evaluations of eps_theta, against the CPU sampler.
template <class Backend>
void short_chain_matches_the_cpu_sampler(Backend& backend, double tol) {
  const uint64_t seed = std::random_device{}();
  const Schedule s = Schedule::linear(12);
  const std::vector<float> params = cpu::init_params(seed);
  const int64_t n = 300, first = 77;
  SamplerConfig dpmpp{SamplerKind::kDpmpp2m, 5}, heun{SamplerKind::kHeun, 4};
  dpmpp.spacing = Spacing::kLogSnr;
  for (const SamplerConfig& config : {SamplerConfig{}, dpmpp, heun}) {
    SCOPED_TRACE(name_of(config.kind));
    std::vector<float> x(2 * n), carried(2 * n), eps(2 * n), cpu_xy(2 * n);
    std::vector<int> t_all(n);
    backend.init(x, carried, n, seed, first);
    const std::vector<SampleStep> steps = sample_steps(s, config);
    for (int k = 0; k < int(steps.size()); ++k) {
      std::fill(t_all.begin(), t_all.end(), steps[k].t);
      cpu::eps_forward(params.data(), x.data(), t_all.data(), int(n), eps.data());
      backend.step(x, carried, eps, n, steps[k], k, seed, first);
    }
    cpu::sample(s, params.data(), seed, first, n, cpu_xy.data(), config);
    expect_close(x, std::vector<double>(cpu_xy.begin(), cpu_xy.end()), tol);
  }
}

}  // namespace ddpm::kernels::cases
