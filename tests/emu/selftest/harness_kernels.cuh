// Small kernels that exercise the emulation harness: a block reduction, warp
// shuffles and votes, a tiled matrix product in shared memory, tensor-core
// fragment products, atomics under contention, and the planted defects the
// sanitizer builds must report. Plain CUDA, in the project's convention: the
// kernels live in this header, compiled by nvcc through harness_kernels.cu
// (the launchers) and by the host compiler in the emulated tests.
#pragma once

#include <cstdint>

#include "ddpm/mma.hpp"
#include "ddpm/smem.hpp"
#include "harness_kernels.hpp"

namespace ddpm::harness {

inline constexpr unsigned kFullMask = 0xffffffffu;

// ---- Block reduction ----

// out[blockIdx.x] = sum of in[blockIdx.x * kBlock + threadIdx.x + j * gridDim.x * kBlock].
template <int kBlock>
__global__ void __launch_bounds__(kBlock) block_reduce_sum(const float* __restrict__ in, float* __restrict__ out,
                                                           int n) {
  __shared__ float partial[kBlock];
  float acc = 0.0f;
  for (int i = blockIdx.x * kBlock + threadIdx.x; i < n; i += gridDim.x * kBlock) acc += in[i];
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int stride = kBlock / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = partial[0];
}

// The same with the block size and the scratch space given at launch
// (blockDim.x floats of dynamic shared memory; blockDim.x a power of two).
__global__ void block_reduce_sum_dynamic(const float* __restrict__ in, float* __restrict__ out, int n) {
  float* partial = ddpm::dynamic_smem<float>();
  const int block = static_cast<int>(blockDim.x);
  float acc = 0.0f;
  for (int i = blockIdx.x * block + threadIdx.x; i < n; i += gridDim.x * block) acc += in[i];
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int stride = block / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = partial[0];
}

// ---- Warp shuffles ----

// Inclusive scan of each block's kScanBlock integers: a shuffle scan per
// warp, then a shuffle scan of the warp totals by the first warp.
__global__ void __launch_bounds__(kScanBlock) block_scan(const int* __restrict__ in, int* __restrict__ out) {
  constexpr int kWarps = kScanBlock / 32;
  __shared__ int warp_totals[kWarps];
  const int i = blockIdx.x * kScanBlock + threadIdx.x;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;

  int v = in[i];
  for (int d = 1; d < 32; d *= 2) {
    const int y = __shfl_up_sync(kFullMask, v, d);
    if (lane >= d) v += y;
  }
  if (lane == 31) warp_totals[warp] = v;
  __syncthreads();
  if (warp == 0) {
    int t = lane < kWarps ? warp_totals[lane] : 0;
    for (int d = 1; d < 32; d *= 2) {
      const int y = __shfl_up_sync(kFullMask, t, d);
      if (lane >= d) t += y;
    }
    if (lane < kWarps) warp_totals[lane] = t;
  }
  __syncthreads();
  if (warp > 0) v += warp_totals[warp - 1];
  out[i] = v;
}

// Records what every warp primitive returns, one row of out per WarpOp.
__global__ void __launch_bounds__(kWarpOpsBlock) warp_ops(const int* __restrict__ in, int* __restrict__ out) {
  constexpr int n = kWarpOpsBlock * kWarpOpsGrid;
  const int i = blockIdx.x * kWarpOpsBlock + threadIdx.x;
  const int lane = threadIdx.x & 31;
  const int v = in[i];

  int s = v;
  for (int m = 16; m >= 1; m /= 2) s += __shfl_xor_sync(kFullMask, s, m);
  out[kShflXorSum * n + i] = s;

  int t = v;
  for (int d = 16; d >= 1; d /= 2) t += __shfl_down_sync(kFullMask, t, d);
  out[kShflDownSum * n + i] = t;

  out[kShflBroadcast * n + i] = __shfl_sync(kFullMask, v, (blockIdx.x * 5 + 3) % 32);
  out[kShflWidth8 * n + i] = __shfl_sync(kFullMask, v, 2, 8);
  out[kShflUpWidth16 * n + i] = __shfl_up_sync(kFullMask, v, 3, 16);
  out[kShflXorWidth4 * n + i] = v + __shfl_xor_sync(kFullMask, v, 4, 4);
  out[kBallotOdd * n + i] = static_cast<int>(__ballot_sync(kFullMask, v & 1));
  out[kAnyAbove * n + i] = __any_sync(kFullMask, v > 90);
  out[kAllNonNegative * n + i] = __all_sync(kFullMask, v >= 0);
  out[kMatchAny * n + i] = static_cast<int>(__match_any_sync(kFullMask, v % 4));
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  out[kReduceAdd * n + i] = __reduce_add_sync(kFullMask, v);
#else
  out[kReduceAdd * n + i] = s;  // __reduce_add_sync needs sm_80; the butterfly sum is the same
#endif
  out[kSyncthreadsCount * n + i] = __syncthreads_count(v & 1);
  (void)lane;
}

// ---- Tiled matrix product through shared memory ----

// C = A * B; a kTile x kTile block computes a kTile x kTile tile of C.
template <int kT>
__global__ void __launch_bounds__(kT* kT) tiled_matmul(const float* __restrict__ a, const float* __restrict__ b,
                                                      float* __restrict__ c, int m, int n, int k) {
  __shared__ float a_tile[kT][kT];
  __shared__ float b_tile[kT][kT + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int row = blockIdx.y * kT + ty;
  const int col = blockIdx.x * kT + tx;
  float acc = 0.0f;
  for (int k0 = 0; k0 < k; k0 += kT) {
    a_tile[ty][tx] = (row < m && k0 + tx < k) ? a[row * k + k0 + tx] : 0.0f;
    b_tile[ty][tx] = (k0 + ty < k && col < n) ? b[(k0 + ty) * n + col] : 0.0f;
    __syncthreads();
    for (int kk = 0; kk < kT; ++kk) acc += a_tile[ty][kk] * b_tile[kk][tx];
    __syncthreads();
  }
  if (row < m && col < n) c[row * n + col] = acc;
}

// ---- Tensor-core fragments ----
// The fragment loads below spell out the PTX ISA's lane mapping directly
// (groupID g = lane / 4, threadID_in_group t = lane % 4); they do not use
// ddpm::mma_layout, so that the emulation, the helpers and these loads are
// three independent readings of the documentation.

// The C and D fragments of m16n8 (both shapes): lane (g, t) holds, of the
// row-major 16 x 8 tile, (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1).
__device__ __forceinline__ int c_fragment_index(int g, int t, int r) {
  return (g + 8 * (r >> 1)) * 8 + 2 * t + (r & 1);
}
__device__ __forceinline__ void load_c_fragment(const float* tile, int g, int t, float (&f)[4]) {
  for (int r = 0; r < 4; ++r) f[r] = tile[c_fragment_index(g, t, r)];
}
__device__ __forceinline__ void store_c_fragment(float* tile, int g, int t, const float (&f)[4]) {
  for (int r = 0; r < 4; ++r) tile[c_fragment_index(g, t, r)] = f[r];
}

// D = A * B + C per block (problem blockIdx.x), K = kMmaTf32K, m16n8k8 steps.
// kWrongLayout swaps the a1 and a2 registers, a plausible mistake.
template <bool kWrongLayout>
__global__ void __launch_bounds__(32) mma_tf32_product(const float* __restrict__ a, const float* __restrict__ b,
                                                       const float* __restrict__ c, float* __restrict__ d) {
  constexpr int K = kMmaTf32K;
  a += blockIdx.x * 16 * K;
  b += blockIdx.x * K * 8;
  c += blockIdx.x * 16 * 8;
  d += blockIdx.x * 16 * 8;
  const int lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  float acc[4];
  load_c_fragment(c, g, t, acc);
  for (int k0 = 0; k0 < K; k0 += 8) {
    uint32_t af[4] = {ddpm::to_tf32(a[g * K + k0 + t]), ddpm::to_tf32(a[(g + 8) * K + k0 + t]),
                      ddpm::to_tf32(a[g * K + k0 + t + 4]), ddpm::to_tf32(a[(g + 8) * K + k0 + t + 4])};
    if (kWrongLayout) {
      const uint32_t tmp = af[1];
      af[1] = af[2];
      af[2] = tmp;
    }
    const uint32_t bf[2] = {ddpm::to_tf32(b[(k0 + t) * 8 + g]), ddpm::to_tf32(b[(k0 + t + 4) * 8 + g])};
    ddpm::mma_m16n8k8_tf32(acc, af, bf, acc);
  }
  store_c_fragment(d, g, t, acc);
}

// D = A * B + C per block, K = kMmaBf16K, m16n8k16 steps on bf16 inputs.
template <bool kWrongLayout>
__global__ void __launch_bounds__(32) mma_bf16_product(const float* __restrict__ a, const float* __restrict__ b,
                                                       const float* __restrict__ c, float* __restrict__ d) {
  constexpr int K = kMmaBf16K;
  a += blockIdx.x * 16 * K;
  b += blockIdx.x * K * 8;
  c += blockIdx.x * 16 * 8;
  d += blockIdx.x * 16 * 8;
  const int lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  float acc[4];
  load_c_fragment(c, g, t, acc);
  for (int k0 = 0; k0 < K; k0 += 16) {
    const int c0 = k0 + 2 * t;
    uint32_t af[4] = {ddpm::pack_bf16x2(a[g * K + c0], a[g * K + c0 + 1]),
                      ddpm::pack_bf16x2(a[(g + 8) * K + c0], a[(g + 8) * K + c0 + 1]),
                      ddpm::pack_bf16x2(a[g * K + c0 + 8], a[g * K + c0 + 9]),
                      ddpm::pack_bf16x2(a[(g + 8) * K + c0 + 8], a[(g + 8) * K + c0 + 9])};
    if (kWrongLayout) {
      const uint32_t tmp = af[1];
      af[1] = af[2];
      af[2] = tmp;
    }
    const uint32_t bf[2] = {ddpm::pack_bf16x2(b[c0 * 8 + g], b[(c0 + 1) * 8 + g]),
                            ddpm::pack_bf16x2(b[(c0 + 8) * 8 + g], b[(c0 + 9) * 8 + g])};
    ddpm::mma_m16n8k16_bf16(acc, af, bf, acc);
  }
  store_c_fragment(d, g, t, acc);
}

// Probe p (0 <= p < count) with one element set to one:
//   p < 128:        A = e(p / 8, p % 8),       B(k, n) = 8k + n + 1, C = 0
//   128 <= p < 192: A(m, k) = 8m + k + 1,      B = e(q / 8, q % 8),   C = 0   (q = p - 128)
//   192 <= p:       A = 0, B = 0,              C = e(q / 8, q % 8)            (q = p - 192)
// Every product is exact, so D shows exactly where each lane's registers land.
struct ProbeTf32 {
  int p;
  __device__ float a(int m, int k) const {
    if (p < 128) return (m == p / 8 && k == p % 8) ? 1.0f : 0.0f;
    if (p < 192) return static_cast<float>(8 * m + k + 1);
    return 0.0f;
  }
  __device__ float b(int k, int n) const {
    if (p < 128) return static_cast<float>(8 * k + n + 1);
    if (p < 192) return (k == (p - 128) / 8 && n == (p - 128) % 8) ? 1.0f : 0.0f;
    return 0.0f;
  }
  __device__ float c(int m, int n) const { return (p >= 192 && m == (p - 192) / 8 && n == (p - 192) % 8) ? 1.0f : 0.0f; }
};

__global__ void __launch_bounds__(32) mma_tf32_probe(float* __restrict__ d) {
  const int lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  for (int p = 0; p < kProbeTf32Count; ++p) {
    const ProbeTf32 probe{p};
    const uint32_t af[4] = {ddpm::to_tf32(probe.a(g, t)), ddpm::to_tf32(probe.a(g + 8, t)),
                            ddpm::to_tf32(probe.a(g, t + 4)), ddpm::to_tf32(probe.a(g + 8, t + 4))};
    const uint32_t bf[2] = {ddpm::to_tf32(probe.b(t, g)), ddpm::to_tf32(probe.b(t + 4, g))};
    const float cf[4] = {probe.c(g, 2 * t), probe.c(g, 2 * t + 1), probe.c(g + 8, 2 * t), probe.c(g + 8, 2 * t + 1)};
    float df[4];
    ddpm::mma_m16n8k8_tf32(df, af, bf, cf);
    store_c_fragment(d + p * 128, g, t, df);
  }
}

// As ProbeTf32 for m16n8k16: 256 A probes (A 16x16, B(k, n) = 8k + n + 1),
// 128 B probes (A(m, k) = 16m + k + 1), 128 C probes. All values are exact in bf16.
struct ProbeBf16 {
  int p;
  __device__ float a(int m, int k) const {
    if (p < 256) return (m == p / 16 && k == p % 16) ? 1.0f : 0.0f;
    if (p < 384) return static_cast<float>(16 * m + k + 1);
    return 0.0f;
  }
  __device__ float b(int k, int n) const {
    if (p < 256) return static_cast<float>(8 * k + n + 1);
    if (p < 384) return (k == (p - 256) / 8 && n == (p - 256) % 8) ? 1.0f : 0.0f;
    return 0.0f;
  }
  __device__ float c(int m, int n) const { return (p >= 384 && m == (p - 384) / 8 && n == (p - 384) % 8) ? 1.0f : 0.0f; }
};

__global__ void __launch_bounds__(32) mma_bf16_probe(float* __restrict__ d) {
  const int lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  for (int p = 0; p < kProbeBf16Count; ++p) {
    const ProbeBf16 probe{p};
    const uint32_t af[4] = {ddpm::pack_bf16x2(probe.a(g, 2 * t), probe.a(g, 2 * t + 1)),
                            ddpm::pack_bf16x2(probe.a(g + 8, 2 * t), probe.a(g + 8, 2 * t + 1)),
                            ddpm::pack_bf16x2(probe.a(g, 2 * t + 8), probe.a(g, 2 * t + 9)),
                            ddpm::pack_bf16x2(probe.a(g + 8, 2 * t + 8), probe.a(g + 8, 2 * t + 9))};
    const uint32_t bf[2] = {ddpm::pack_bf16x2(probe.b(2 * t, g), probe.b(2 * t + 1, g)),
                            ddpm::pack_bf16x2(probe.b(2 * t + 8, g), probe.b(2 * t + 9, g))};
    const float cf[4] = {probe.c(g, 2 * t), probe.c(g, 2 * t + 1), probe.c(g + 8, 2 * t), probe.c(g + 8, 2 * t + 1)};
    float df[4];
    ddpm::mma_m16n8k16_bf16(df, af, bf, cf);
    store_c_fragment(d + p * 128, g, t, df);
  }
}

// ---- Atomics under contention ----

// Every thread of the grid updates the same few words; *out starts as the
// host sets it (see the checks), exchange_old[i] receives atomicExch's old value.
__global__ void __launch_bounds__(kAtomicsBlock) atomics_contention(const int* __restrict__ in, AtomicsOut* out,
                                                                    int* __restrict__ exchange_old) {
  __shared__ int bins[kHistogramBins];
  const int tid = threadIdx.x;
  const int i = blockIdx.x * kAtomicsBlock + tid;
  if (tid < kHistogramBins) bins[tid] = 0;
  __syncthreads();

  const int v = in[i];
  atomicAdd(&bins[v % kHistogramBins], 1);
  atomicAdd(&out->float_sum, static_cast<float>(v));
  atomicAdd(&out->double_sum, 0.25 * v);
  atomicAdd(&out->u64_sum, static_cast<unsigned long long>(v) << 20);
  int assumed = 0;  // an add from compare-and-swap, starting from a guess
  for (;;) {
    const int old = atomicCAS(&out->cas_sum, assumed, assumed + v);
    if (old == assumed) break;
    assumed = old;
  }
  atomicMax(&out->max, v);
  atomicMin(&out->min, v);
  atomicInc(&out->inc, kIncLimit);
  atomicSub(&out->sub, v);
  atomicOr(&out->or_bits, 1u << (v % 32));
  atomicXor(&out->xor_bits, static_cast<unsigned>(v) * 2654435761u);
  atomicAnd(&out->and_bits, ~(1u << (v % 32)));
  exchange_old[i] = atomicExch(&out->exchanged, i);

  __syncthreads();
  if (tid < kHistogramBins) atomicAdd(&out->histogram[tid], bins[tid]);
}

// ---- Shared-memory neighbour exchange ----

// out[i] = in[i] + in[i + 1] within each block, staged in shared memory.
// Without the barrier a thread may read its neighbour's slot before the
// neighbour has written it: the race the ThreadSanitizer build must report.
template <bool kSynchronized>
__global__ void __launch_bounds__(kNeighborBlock) neighbor_sum(const float* __restrict__ in, float* __restrict__ out) {
  __shared__ float stage[kNeighborBlock];
  const int t = threadIdx.x;
  const int i = blockIdx.x * kNeighborBlock + t;
  stage[t] = in[i];
  if (kSynchronized) __syncthreads();
  out[i] = stage[t] + stage[(t + 1) % kNeighborBlock];
}

// ---- Planted out-of-bounds accesses (for the AddressSanitizer build) ----

// out[i] = 2 in[i] for every thread of the grid: the caller must launch
// exactly as many threads as there are elements.
__global__ void scale_unchecked(const float* __restrict__ in, float* __restrict__ out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  out[i] = 2.0f * in[i];
}

// Reverses each block's elements through a static shared buffer of kCapacity floats.
template <int kCapacity>
__global__ void reverse_static_shared(const float* __restrict__ in, float* __restrict__ out) {
  __shared__ float stage[kCapacity];
  const int t = threadIdx.x;
  const int i = blockIdx.x * blockDim.x + t;
  stage[t] = in[i];
  __syncthreads();
  out[i] = stage[blockDim.x - 1 - t];
}

// The same through dynamic shared memory (blockDim.x floats needed).
__global__ void reverse_dynamic_shared(const float* __restrict__ in, float* __restrict__ out) {
  float* stage = ddpm::dynamic_smem<float>();
  const int t = threadIdx.x;
  const int i = blockIdx.x * blockDim.x + t;
  stage[t] = in[i];
  __syncthreads();
  out[i] = stage[blockDim.x - 1 - t];
}

}  // namespace ddpm::harness
