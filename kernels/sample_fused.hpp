// The fused sampler: a whole reverse chain (the ancestral sampler's T steps or
// DDIM's S) in one persistent kernel, in three precisions:
//
//   fp32  FP32 SIMT, SiLU with expf: the reference the others are held to.
//         Each block takes kFusedPoints points through every step with their
//         activations in shared memory.
//   tf32, bf16  the two 128 x 128 layers on tensor cores (mma.sync m16n8k8 /
//         m16n8k16, FP32 accumulation), the weights staged once per block in
//         shared memory as B fragments, each warp's 16 points and all their
//         activations in registers for the whole chain, SiLU through one
//         tanh.approx. Layer 0 and the output layer stay FP32.
//
// Either way each point's Philox stream lives in a register of the thread
// that owns the point, and the point is written once at the end.
// Plain C++: included by the nvcc-compiled launchers and by host tests.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ddpm/config.hpp"
#include "ddpm/error.hpp"
#include "ddpm/math.hpp"
#include "ddpm/schedule.hpp"

namespace ddpm::kernels {

enum class Precision { kFp32, kTf32, kBf16 };

inline const char* name_of(Precision p) {
  return p == Precision::kTf32 ? "tf32" : p == Precision::kBf16 ? "bf16" : "fp32";
}
// "fp32" | "tf32" | "bf16"; throws ddpm::Error otherwise.
inline Precision precision_from_name(std::string_view name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "tf32") return Precision::kTf32;
  if (name == "bf16") return Precision::kBf16;
  throw Error("precision: unknown \"" + std::string(name) + "\" (fp32, tf32 or bf16)");
}

// The network and the chain as the fused kernels read them (device pointers,
// or host pointers in emulation).
struct FusedSamplerNet {
  const float* w0c0;        // W0[:, 0] [128] (the seed's model)
  const float* w0c1;        // W0[:, 1] [128]
  const float* e1;          // [(T + 1)][128]: W0[:, x part:] emb(t) + b0, computed once per run
  const float* wt1;         // W1^T [128][128]
  const float* b1;          // [128]
  const float* wt2;         // W2^T [128][128]
  const float* b2;          // [128]
  const float* w3;          // W3 [2][128]
  const float* b3;          // [2]
  const SampleStep* steps;  // the chain, in the order it runs (sample_steps)
  int num_steps;
  // The sinusoidal x encoding (--x-embedding sinusoidal; null for the seed's
  // model): layer 0 is then h1 = silu(emb_x(x) W0[:, :128]^T + e1[t]), a third
  // 128 x 128 product (on the tensor cores in tf32 and bf16) over math.hpp's
  // x_embedding of x_scale * x.
  const float* wt0x = nullptr;  // W0[:, :128]^T [128][128]
  float x_scale = 0.f;
  // freq_j of the encoding, the host's (x_embedding_frequencies; zeros for the
  // seed's model). By value in the kernel's parameters: a thread reads its
  // frequencies once per launch into registers (fp32: one, tf32 / bf16: eight),
  // so no table needs a device allocation or an upload for 128 bytes.
  XEmbeddingFrequencies x_freq{};
};

// ---- fp32: kFusedPoints points per block, activations in shared memory ----
inline constexpr int kFusedPoints = 64;                // points per block
inline constexpr int kFusedThreads = 256;              // each computes 4 points x 8 outputs of a layer
// Two blocks per SM (16 warps) hide the fp32 sampler's latencies; __launch_bounds__
// holds ptxas to the 128 registers a thread that allows (65536 / (2 x 256)), so a
// register more cannot silently halve the occupancy.
inline constexpr int kFusedMinBlocksPerSm = 2;
inline constexpr int kFusedRowStride = kHidden + 4;    // padded activation rows: no bank conflicts
inline constexpr std::size_t kFusedSmemBytes =
    (2 * std::size_t(kFusedPoints) * kFusedRowStride + 4 * std::size_t(kFusedPoints)) * sizeof(float);
static_assert(kFusedThreads == (kFusedPoints / 4) * (kHidden / 8), "one 4 x 8 output tile per thread");

// ---- tf32 / bf16: each warp takes kMmaRows points (the m of m16n8kK) at a time ----
inline constexpr int kMmaWarps = 8;
inline constexpr int kMmaThreads = 32 * kMmaWarps;
inline constexpr int kMmaRows = 16;
inline constexpr int kMmaNTiles = kHidden / 8;  // n-tiles of 8 output units
constexpr int mma_k(Precision p) { return p == Precision::kBf16 ? 16 : 8; }
// One layer's B fragments: (128 / k) k-steps x 16 n-tiles x 32 lanes x 2 registers.
constexpr std::size_t mma_fragment_words(Precision p) {
  return std::size_t(kHidden / mma_k(p)) * kMmaNTiles * 32 * 2;
}
// After both layers' fragments: w0c0, w0c1 (the seed's layer 0 on x; not with the x
// encoding, whose layer 0 is a GEMM), b1, b2 (128 each), W3 (256), b3 (2, padded to 4);
// with the x encoding, then layer 0's fragments (W0[:, :128]).
inline constexpr std::size_t kMmaSmemFloats = 6 * std::size_t(kHidden) + 4;
constexpr std::size_t mma_smem_floats(bool x_encoding) { return kMmaSmemFloats - (x_encoding ? 2 * kHidden : 0); }
// tf32: 128 KB + 3 KB (fits sm_80's and sm_90's opt-in limit, not sm_86/89's 99 KB); bf16: 64 KB + 3 KB.
// The x encoding adds a third layer's fragments and drops w0c0/w0c1: tf32 194 KB (sm_90
// only), bf16 98 KB (every sm_80+ part, sm_86/89's 99 KB included).
constexpr std::size_t mma_smem_bytes(Precision p, bool x_encoding = false) {
  return (x_encoding ? 3 : 2) * mma_fragment_words(p) * sizeof(uint32_t) + mma_smem_floats(x_encoding) * sizeof(float);
}
// The smallest opt-in shared memory per block of the supported GPUs (sm_86 and sm_89: 99 KB).
inline constexpr std::size_t kSmallestOptInSmemBytes = 101376;
static_assert(mma_smem_bytes(Precision::kBf16, true) <= kSmallestOptInSmemBytes,
              "bf16 with the x encoding must fit every sm_80+ GPU's shared memory");

// Points one block takes at a time, and its threads and shared memory.
struct FusedShape {
  int points_per_block;
  int threads;
  std::size_t smem_bytes;
};
constexpr FusedShape fused_shape(Precision p, bool x_encoding = false) {
  return p == Precision::kFp32 ? FusedShape{kFusedPoints, kFusedThreads, kFusedSmemBytes}
                               : FusedShape{kMmaRows * kMmaWarps, kMmaThreads, mma_smem_bytes(p, x_encoding)};
}
inline int fused_blocks_for(Precision p, int64_t n) {
  const int per = fused_shape(p).points_per_block;
  return int((n + per - 1) / per);
}

// The most blocks of the kernel of precision p (for the x encoding's model or
// the seed's) resident on the current device at once (SMs x blocks per SM):
// the persistent grid. Sets the kernel's dynamic shared memory limit; throws
// ddpm::Error naming what is missing when the device cannot run it (shared
// memory, compute capability below 8.0).
int fused_max_grid(Precision p, bool x_encoding = false);

// Points [first, first + n) of the sample set drawn with `seed` into out (n x 2),
// on `grid` persistent blocks (each loops over its tiles).
void launch_sample_fused(Precision p, const FusedSamplerNet& net, uint64_t seed, int64_t first, int64_t n,
                         float* out, int grid, cudaStream_t stream);

}  // namespace ddpm::kernels
