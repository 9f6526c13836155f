// Random streams: cuRAND's Philox4x32-10 through curand_kernel.h, whose
// device functions also compile as host C++, so the CPU backend and the CUDA
// kernels draw the very same 32-bit words: every uniform draw (batch rows,
// timesteps, data noise indices) is bit-identical on both. The normals made
// from those words (cuRAND's Box-Muller, z = sqrt(-2 log u) sin/cos(2 pi v))
// agree to rounding only: on the device cuRAND takes __sincosf, the fast
// hardware sine and cosine (absolute error about 2^-21.4 on [-pi, pi], more
// on (pi, 2 pi) where its argument also lies) and the device's logf; on the
// host sinf, cosf and logf of the C library, which are within an ulp or two
// of exact (Rng.HostNormalsAreBoxMullerOfTheSameWords). A standard normal can
// therefore differ between them by about 1e-5 at most: the GPU tests compare
// with tolerances, and the CPU stays the reference.
//
// Every random quantity has its own Philox subsequence: the high 16 bits name
// the purpose (Stream), the low 48 bits the item (a sample point's global
// index, or step * batch + row in training). A point's draws therefore never
// depend on how the work is chunked, batched or threaded.
#pragma once

#include <curand_kernel.h>

#include <cstdint>

#include "ddpm/config.hpp"

// Under nvcc, cuRAND's functions are device-only, so the functions that draw
// are too; every host compiler sees plain inline functions.
#if defined(__CUDACC__)
#define DDPM_RNG __device__ __forceinline__
#else
#define DDPM_RNG inline
#endif

namespace ddpm {

using Philox = curandStatePhilox4_32_10_t;

enum class Stream : uint64_t {
  kInit = 1,             // parameter initialization, item = parameter tensor index
  kTrainBatch = 2,       // item = step * batch + row
  kSample = 3,           // item = the point's global index in the sample set
  kForwardProcess = 4,   // forward-process snapshots, item = point index
  kEvalReference = 5,    // reference draws of the true distribution in ddpm_eval
  kEvalFloor = 6,        // the noise floor's independent draws in ddpm_eval
  kForwardData = 7,      // forward-process figure: a point's data words (see datasets.hpp), item = point index
  kLikelihood = 8,       // the bound's eps of every step t (pair t - 1), item = the point's index
  kHeldOut = 9,          // ddpm_cuda_nll's held-out points of a built-in set, item = point index
};

inline constexpr uint64_t kStreamItemBits = 48;

DDPM_HD uint64_t subsequence(Stream s, uint64_t item) {
  return (uint64_t(s) << kStreamItemBits) | (item & ((uint64_t(1) << kStreamItemBits) - 1));
}

DDPM_RNG void philox_init(Philox* state, uint64_t seed, Stream s, uint64_t item) {
  curand_init(seed, subsequence(s, item), 0, state);
}

// Uniform integer in [lo, hi] from one 32-bit draw (multiply-shift; bias at most (hi-lo+1) / 2^32).
DDPM_HD int uniform_int(uint32_t u, int lo, int hi) {
  return lo + int((uint64_t(u) * uint64_t(hi - lo + 1)) >> 32);
}

// Standard normals consumed two at a time from curand_normal4.
struct NormalPairs {
  Philox state;
  float4 buf;
  bool have_second_half = false;

  DDPM_RNG void next(float& a, float& b) {
    if (have_second_half) {
      a = buf.z;
      b = buf.w;
      have_second_half = false;
    } else {
      buf = curand_normal4(&state);
      a = buf.x;
      b = buf.y;
      have_second_half = true;
    }
  }
};

// The p-th pair (p = 0, 1, ...) of the NormalPairs stream of `item`, drawn
// directly: Philox skips ahead in O(1) to the 4 p/2 -th 32-bit output, where
// the curand_normal4 that holds pair p begins. For step-by-step paths that
// cannot keep a NormalPairs per point across launches.
DDPM_RNG void normal_pair_at(uint64_t seed, Stream s, uint64_t item, uint64_t p, float& a, float& b) {
  Philox st;
  curand_init(seed, subsequence(s, item), 4 * (p / 2), &st);
  const float4 v = curand_normal4(&st);
  a = p % 2 ? v.z : v.x;
  b = p % 2 ? v.w : v.y;
}

// The first three 32-bit words of `item`'s subsequence (outputs 0..2).
DDPM_RNG void draw_words(uint64_t seed, Stream s, uint64_t item, uint32_t words[3]) {
  Philox st;
  philox_init(&st, seed, s, item);
  for (int k = 0; k < 3; ++k) words[k] = curand(&st);
}

// The sampler's use of a point's pairs: x_T is pair 0, the noise z of step t
// (T >= t >= 2) is pair T - t + 1; step 1 adds no noise.
DDPM_HD uint64_t sample_noise_pair(int t, int T) { return uint64_t(T - t + 1); }

// One training row's draws: make_moons' Gaussian noise (2), eps (2), t in 1..T.
struct TrainDraw {
  float noise_x, noise_y, eps_x, eps_y;
  int t;
};

DDPM_RNG TrainDraw draw_train_row(uint64_t seed, uint64_t step, int batch, int row, int T) {
  Philox st;
  philox_init(&st, seed, Stream::kTrainBatch, step * uint64_t(batch) + uint64_t(row));
  const float4 n = curand_normal4(&st);
  const uint32_t u = curand(&st);
  return {n.x, n.y, n.z, n.w, uniform_int(u, 1, T)};
}

// The same row's draws for a dataset that needs more than make_moons' two
// normals: the TrainDraw above, bit for bit (outputs 0..4 of the row's
// subsequence), and three more 32-bit words, outputs 5..7 (the rest of the
// Philox block that t came from). Adding them changes nothing drawn before.
DDPM_RNG TrainDraw draw_train_row(uint64_t seed, uint64_t step, int batch, int row, int T, uint32_t words[3]) {
  Philox st;
  philox_init(&st, seed, Stream::kTrainBatch, step * uint64_t(batch) + uint64_t(row));
  const float4 n = curand_normal4(&st);
  const uint32_t u = curand(&st);
  for (int k = 0; k < 3; ++k) words[k] = curand(&st);
  return {n.x, n.y, n.z, n.w, uniform_int(u, 1, T)};
}

}  // namespace ddpm
