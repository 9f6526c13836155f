// The harness's own test kernels: launch shapes (shared by the CUDA launchers,
// the emulated launches and the checks) and the launchers' declarations.
// Plain C++: included by nvcc-compiled launchers and host-compiled tests alike.
//
// Every launcher takes device pointers, launches on `stream` and checks the
// launch; it does not synchronize.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace ddpm::harness {

// Block reduction: each block sums a grid-strided slice of the input.
inline constexpr int kReduceBlock = 256;
inline constexpr int kReduceGrid = 4;

// Block-wide inclusive scan from warp shuffles, and a kernel that records the
// result of every warp primitive.
inline constexpr int kScanBlock = 128;
inline constexpr int kScanGrid = 2;
inline constexpr int kWarpOpsBlock = 64;
inline constexpr int kWarpOpsGrid = 2;
enum WarpOp : int {  // one output row per operation, kWarpOpsBlock * kWarpOpsGrid entries each
  kShflXorSum,       // butterfly sum over the warp (every lane)
  kShflDownSum,      // tree sum (lane 0 holds the total)
  kShflBroadcast,    // value of lane (blockIdx.x * 5 + 3) % 32
  kShflWidth8,       // __shfl_sync(..., src = 2, width = 8)
  kShflUpWidth16,    // __shfl_up_sync(..., 3, width = 16)
  kShflXorWidth4,    // __shfl_xor_sync(..., 3, width = 4)... summed with own value
  kBallotOdd,        // __ballot_sync over "value is odd"
  kAnyAbove,         // __any_sync(value > 90)
  kAllNonNegative,   // __all_sync(value >= 0)
  kMatchAny,         // __match_any_sync(value % 4)
  kReduceAdd,        // __reduce_add_sync
  kSyncthreadsCount, // __syncthreads_count(value odd)
  kWarpOpCount
};

// Tiled matrix product C (M x N) = A (M x K) * B (K x N), row-major.
inline constexpr int kTile = 16;

// Tensor-core fragment products: one warp per block, each block its own problem.
//   tf32: D (16x8) = A (16 x kMmaTf32K) * B (kMmaTf32K x 8) + C
//   bf16: D (16x8) = A (16 x kMmaBf16K) * B (kMmaBf16K x 8) + C
inline constexpr int kMmaProblems = 2;
inline constexpr int kMmaTf32K = 32;
inline constexpr int kMmaBf16K = 32;
// Probe layouts: one product per element of A, of B and of C, each with that
// element set to one; kProbe*Count products of 16x8 floats each.
inline constexpr int kProbeTf32Count = 16 * 8 + 8 * 8 + 16 * 8;
inline constexpr int kProbeBf16Count = 16 * 16 + 16 * 8 + 16 * 8;

// Atomics under contention.
inline constexpr int kAtomicsBlock = 256;
inline constexpr int kAtomicsGrid = 4;
inline constexpr int kAtomicsThreads = kAtomicsBlock * kAtomicsGrid;
inline constexpr int kHistogramBins = 8;
inline constexpr unsigned kIncLimit = 99;
struct AtomicsOut {
  int histogram[kHistogramBins];  // global atomicAdd after a shared-memory histogram
  float float_sum;                // atomicAdd(float)
  double double_sum;              // atomicAdd(double)
  unsigned long long u64_sum;     // atomicAdd(unsigned long long)
  int cas_sum;                    // an add built from an atomicCAS loop
  int max;                        // atomicMax
  int min;                        // atomicMin
  unsigned inc;                   // atomicInc(kIncLimit): wraps
  int sub;                        // atomicSub
  unsigned or_bits;               // atomicOr
  unsigned xor_bits;              // atomicXor
  unsigned and_bits;              // atomicAnd
  int exchanged;                  // atomicExch: the last thread's id
};

// Neighbour exchange through shared memory, with and without the barrier.
inline constexpr int kNeighborBlock = 128;
inline constexpr int kNeighborGrid = 2;

// Launchers (harness_kernels.cu).
void launch_block_reduce_sum(const float* in, float* out, int n, cudaStream_t stream);
void launch_block_reduce_sum_dynamic(const float* in, float* out, int n, cudaStream_t stream);
void launch_block_scan(const int* in, int* out, cudaStream_t stream);
void launch_warp_ops(const int* in, int* out, cudaStream_t stream);
void launch_tiled_matmul(const float* a, const float* b, float* c, int m, int n, int k, cudaStream_t stream);
void launch_mma_tf32(const float* a, const float* b, const float* c, float* d, bool wrong_layout,
                     cudaStream_t stream);
void launch_mma_bf16(const float* a, const float* b, const float* c, float* d, bool wrong_layout,
                     cudaStream_t stream);
void launch_mma_tf32_probe(float* d, cudaStream_t stream);
void launch_mma_bf16_probe(float* d, cudaStream_t stream);
void launch_atomics(const int* in, AtomicsOut* out, int* exchange_old, cudaStream_t stream);
void launch_neighbor_synced(const float* in, float* out, cudaStream_t stream);

}  // namespace ddpm::harness
