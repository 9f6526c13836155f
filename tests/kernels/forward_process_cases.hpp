// Checks of the forward-process kernel, written once for both backends:
// Backend::run(seed, n, data, coefs) returns snapshots x n x 2. The reference
// is cpu::forward_process, which draws the same numbers.
#pragma once

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "host/cpu/cpu_backend.hpp"
#include "tests/kernels/reverse_step_cases.hpp"

namespace ddpm::kernels::forward_cases {

// The seed's figure (t = 0, T/20, T/10, T/5, T) for moons, circles, the
// checkerboard and a user's file, at a size that is not a multiple of the block.
template <class Backend>
void snapshots_match_the_cpu(Backend& b, int n) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Schedule s = Schedule::linear();
  const std::vector<int> ts = {0, s.T / 20, s.T / 10, s.T / 5, s.T};
  std::vector<ForwardCoef> coefs;
  for (int t : ts) coefs.push_back(s.forward[t]);
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(3.f, 2.f);
  std::vector<float> file(2 * 37);
  for (float& v : file) v = normal(gen);
  for (const Dataset d : {Dataset::kMoons, Dataset::kCircles, Dataset::kCheckerboard, Dataset::kFile}) {
    SCOPED_TRACE(dataset_name(d));
    DataSource data{d};
    if (d == Dataset::kFile) {
      data.points = file.data();
      data.count = 37;
    }
    const auto want = cpu::forward_process(s, seed, n, ts, data);
    std::vector<double> flat;
    for (const auto& snap : want) flat.insert(flat.end(), snap.begin(), snap.end());
    cases::expect_close(b.run(seed, n, data, coefs, file), flat, 1e-5);
  }
}

}  // namespace ddpm::kernels::forward_cases
