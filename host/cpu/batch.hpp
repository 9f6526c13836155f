// The training batch in pieces, so the trainer can draw rows in parallel and
// normalize after one reduction. Internal header of the CPU backend.
#pragma once

#include <cstdint>

#include "ddpm/datasets.hpp"

namespace ddpm::cpu {

// Rows [r0, r1) of an n-row batch of `data` (make_moons(n) by default) with
// Philox noise, before normalization; also eps and t. Row i draws Philox item
// step * n + i of Stream::kTrainBatch only.
void draw_batch_rows(uint64_t seed, uint64_t step, int n, int T, int r0, int r1, float* x0, float* eps, int* t,
                     const DataSource& data = {});

struct BatchStats {
  double mean[2], inv_std[2];
};
// Mean and 1 / unbiased std of each coordinate, summed in row order (1 / std
// taken as 1 for a coordinate with no spread).
BatchStats batch_stats(const float* x0, int n);
void normalize_rows(const BatchStats& s, int r0, int r1, float* x0);

}  // namespace ddpm::cpu
