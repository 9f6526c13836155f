// Checks of the unfused path's kernels, written once for both backends:
//   Backend::layer0(x, n, w0c0, w0c1, e1t) -> h1;  Backend::bias_silu(h, n, bias) -> h;
//   Backend::output(h3, n, w3, b3) -> eps;  Backend::x_embedding(x, n, scale, freq) -> a
//   (freq: the XEmbeddingFrequencies the kernel is handed).
// The reference is the same formula in double.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "ddpm/config.hpp"
#include "ddpm/math.hpp"
#include "ddpm/params.hpp"
#include "tests/cpu/reference.hpp"
#include "tests/kernels/reverse_step_cases.hpp"

namespace ddpm::kernels::unfused_cases {

using cases::expect_close;

inline std::vector<float> random_vector(std::mt19937& gen, std::size_t n, float scale) {
  std::normal_distribution<float> normal(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = normal(gen);
  return v;
}

inline double silu(double z) { return z / (1 + std::exp(-z)); }

// n points, not a multiple of the block's elements or warps.
template <class Backend>
void layer0_matches_the_formula(Backend& b, int64_t n) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen(seed);
  const auto x = random_vector(gen, 2 * n, 1.5f), w0c0 = random_vector(gen, kHidden, 1.f),
             w0c1 = random_vector(gen, kHidden, 1.f), e1t = random_vector(gen, kHidden, 1.f);
  std::vector<double> want(std::size_t(n) * kHidden);
  for (int64_t p = 0; p < n; ++p)
    for (int o = 0; o < kHidden; ++o)
      want[p * kHidden + o] = silu(double(x[2 * p]) * w0c0[o] + double(x[2 * p + 1]) * w0c1[o] + e1t[o]);
  expect_close(b.layer0(x, n, w0c0, w0c1, e1t), want, 1e-6);
}

// Every value of the x encoding against sin and cos in double of (s x) f_j at
// a random scale: the argument's float rounding (s x, then f_j, each to half
// an ulp, f_j from expf) allows 2e-7 |s x| beside the functions' own 1e-6.
template <class Backend>
void x_embedding_matches_the_formula(Backend& b, int64_t n) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen(seed);
  const auto x = random_vector(gen, 2 * n, 2.f);
  const float scale = std::uniform_real_distribution<float>(1.f, 40.f)(gen);
  const std::vector<float> got = b.x_embedding(x, n, scale, x_embedding_frequencies());
  ASSERT_EQ(got.size(), std::size_t(n) * kXEmbInputs);
  int bad = 0;
  for (int64_t p = 0; p < n; ++p)
    for (int d = 0; d < kDataDim; ++d)
      for (int k = 0; k < kEmbDim; ++k) {
        const double want = ref::x_embedding(x[2 * p + d], scale, k);
        const float v = got[p * kXEmbInputs + d * kEmbDim + k];
        if (!(std::abs(v - want) <= 1e-6 + 2e-7 * std::abs(double(scale) * x[2 * p + d])) && ++bad <= 5)
          ADD_FAILURE() << "point " << p << " coordinate " << d << " k " << k << ": got " << v << ", want " << want;
      }
  EXPECT_EQ(bad, 0);
}

// The frequencies are the ones the kernel is handed (the host's, whose expf
// the device's may miss by 2 ulp): emulation's expf is the host's, so a table
// the host could not have computed, every frequency scaled by 0.75, must be
// what the kernel encodes with. Against sin and cos in double of the same float
// argument (s x) f_j: only the functions' own error, 1e-6, where a kernel
// computing its own frequencies misses by O(1).
template <class Backend>
void x_embedding_reads_the_given_frequencies(Backend& b, int64_t n) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen(seed);
  const auto x = random_vector(gen, 2 * n, 2.f);
  const float scale = std::uniform_real_distribution<float>(1.f, 40.f)(gen);
  XEmbeddingFrequencies planted = x_embedding_frequencies();
  for (float& f : planted.freq) f *= 0.75f;
  const std::vector<float> got = b.x_embedding(x, n, scale, planted);
  ASSERT_EQ(got.size(), std::size_t(n) * kXEmbInputs);
  std::vector<double> want(got.size());
  for (int64_t p = 0; p < n; ++p)
    for (int d = 0; d < kDataDim; ++d)
      for (int k = 0; k < kEmbDim; ++k)
        want[p * kXEmbInputs + d * kEmbDim + k] = ref::x_embedding(x[2 * p + d], scale, k, planted.freq);
  expect_close(got, want, 1e-6);
}

template <class Backend>
void bias_silu_matches_the_formula(Backend& b, int64_t n) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen(seed);
  const auto h = random_vector(gen, std::size_t(n) * kHidden, 3.f), bias = random_vector(gen, kHidden, 1.f);
  std::vector<double> want(h.size());
  for (std::size_t e = 0; e < h.size(); ++e) want[e] = silu(double(h[e]) + bias[e % kHidden]);
  expect_close(b.bias_silu(h, n, bias), want, 1e-6);
}

template <class Backend>
void output_layer_matches_the_formula(Backend& b, int64_t n) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen(seed);
  const auto h3 = random_vector(gen, std::size_t(n) * kHidden, 1.f), w3 = random_vector(gen, 2 * kHidden, 0.1f),
             b3 = random_vector(gen, 2, 1.f);
  std::vector<double> want(2 * n);
  for (int64_t p = 0; p < n; ++p)
    for (int c = 0; c < 2; ++c) {
      double s = b3[c];
      for (int k = 0; k < kHidden; ++k) s += double(h3[p * kHidden + k]) * w3[c * kHidden + k];
      want[2 * p + c] = s;
    }
  expect_close(b.output(h3, n, w3, b3), want, 1e-5);
}

}  // namespace ddpm::kernels::unfused_cases
