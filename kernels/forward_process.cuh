// The forward-process kernel (see forward_process.hpp).
//   x0 = get_batch(n), normalized: (x - mean) / std (std unbiased, as torch.std)
//   x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps
// Point i draws its data noise as pair 0 of its Stream::kForwardProcess pairs
// (and, beyond moons, its words from Stream::kForwardData item i); snapshot k
// draws pair k + 1, as the CPU's sequential stream does.
#pragma once

#include "ddpm/datasets.hpp"
#include "ddpm/math.hpp"
#include "ddpm/rng.hpp"
#include "kernels/forward_process.hpp"

namespace ddpm::kernels {

__global__ void __launch_bounds__(kForwardThreads)
    forward_process_kernel(uint64_t seed, int n, DataSource data, const ForwardCoef* __restrict__ coef,
                           int snapshots, float* __restrict__ out) {
  __shared__ double part[kForwardThreads / 32][2];
  __shared__ double stat[2][2];  // mean, then 1 / std, per coordinate
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  // x0, unnormalized, into snapshot 0's slot (every snapshot overwrites its own below).
  for (int i = tid; i < n; i += blockDim.x) {
    PointRandom r{};
    if (data.dataset != Dataset::kMoons) draw_words(seed, Stream::kForwardData, uint64_t(i), r.word);
    normal_pair_at(seed, Stream::kForwardProcess, uint64_t(i), 0, r.normal[0], r.normal[1]);
    batch_point(data, i, n, r, out[2 * i], out[2 * i + 1]);
  }
  __syncthreads();
  // Two passes in double, as batch_stats: the mean, then the centred sum of squares.
  for (int pass = 0; pass < 2; ++pass) {
    double s[2] = {0, 0};
    for (int i = tid; i < n; i += blockDim.x)
      for (int d = 0; d < 2; ++d) {
        const double v = out[2 * i + d];
        s[d] += pass == 0 ? v : (v - stat[0][d]) * (v - stat[0][d]);
      }
    for (int d = 0; d < 2; ++d) {
      for (int m = 16; m >= 1; m /= 2) s[d] += __shfl_xor_sync(0xffffffffu, s[d], m);
      if (lane == 0) part[warp][d] = s[d];
    }
    __syncthreads();
    if (tid < 2) {
      double total = 0;
      for (int w = 0; w < kForwardThreads / 32; ++w) total += part[w][tid];
      // A coordinate without spread is centred only, as batch_stats does.
      stat[pass][tid] = pass == 0 ? total / n : total > 0 ? 1.0 / sqrt(total / (n - 1)) : 1.0;
    }
    __syncthreads();
  }
  for (int i = tid; i < n; i += blockDim.x) {
    float x0[2];
    for (int d = 0; d < 2; ++d) x0[d] = float((out[2 * i + d] - stat[0][d]) * stat[1][d]);
    for (int k = 0; k < snapshots; ++k) {
      float e0, e1;
      normal_pair_at(seed, Stream::kForwardProcess, uint64_t(i), uint64_t(k) + 1, e0, e1);
      float* xt = out + 2 * (std::size_t(k) * n + i);
      xt[0] = q_sample(x0[0], e0, coef[k]);
      xt[1] = q_sample(x0[1], e1, coef[k]);
    }
  }
}

}  // namespace ddpm::kernels
