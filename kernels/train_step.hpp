// The fused training step: the seed's whole step (get_batch, t ~ U{1..T},
// q_sample, eps_theta, MSE, backward, Adam) in three kernels, with nothing on
// the host between them, so a step can be captured once in a CUDA graph and
// replayed.
//
//   1. train_batch_kernel   one thread per row: the row's Philox draws
//                           (draw_train_row), its data point (batch_point),
//                           eps and t; per-block partial sums and centred
//                           sums of squares of x0; the last block to finish
//                           merges the partials in block order into the
//                           batch's mean and 1 / std (double, as batch_stats).
//   2. train_rows_kernel    persistent; a block takes tiles of kTrainTileRows
//                           rows through normalization, q_sample, the four
//                           layers, the loss, the backward pass and the weight
//                           gradients with every activation in shared memory,
//                           and accumulates its tiles' gradients into its own
//                           slice of a partial-gradient buffer (no atomics).
//   3. train_adam_kernel    over the flat buffer: the sum of the blocks'
//                           partial gradients in block order, Adam, the EMA of
//                           the weights (when kept), the transposed copies of
//                           W0..W2 the forward pass reads; the last block
//                           writes the step's loss and advances the device's
//                           step counter.
//
// The embedding table emb[t][k], t = 0..T, is the CPU's (cpu::embedding_table,
// built once per run on the host): the device's expf and sinf differ from the
// host's by up to 2 ulp, which at t ~ 500 moves t * freq by ~1e-4, and the
// two backends should feed the network the same bits. For the same reason the
// x encoding's frequencies are the host's (TrainNetView::x_freq).
//
// Every sum has a fixed order for a fixed grid, so a run is bit-reproducible
// on a given GPU (what resume needs). The step number, the Adam scalars of
// step k (a table built on the host with AdamStep::at, so bit-identical to the
// CPU's) and the loss slot are all found from the device's step counter, so
// the captured launches need no host work per step.
//
// Plain C++: included by the nvcc-compiled launchers and by host tests.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "ddpm/config.hpp"
#include "ddpm/datasets.hpp"
#include "ddpm/math.hpp"
#include "ddpm/params.hpp"
#include "ddpm/schedule.hpp"

namespace ddpm::kernels {

// ---- Launch shapes ----
inline constexpr int kTrainBatchThreads = 256;  // rows per block of the batch kernel, one per thread
inline constexpr int kTrainThreads = 256;       // 8 warps per block of the rows kernel
inline constexpr int kTrainWarps = kTrainThreads / 32;
// Rows per tile. Warp w owns rows w * kTrainRowsPerWarp.., lane l the four
// outputs 4l..4l+3 of every 128-wide layer, so a layer is one 2 x 4 register
// tile per thread and every activation read is a shared-memory broadcast.
// 16 rows keep a block's activations in 52 KB (every sm_80+ part can opt in),
// and give batch 512 thirty-two blocks: the step is latency-bound, so more
// blocks each doing less is what shortens it.
inline constexpr int kTrainTileRows = 16;
inline constexpr int kTrainRowsPerWarp = kTrainTileRows / kTrainWarps;
static_assert(kTrainRowsPerWarp * kTrainWarps == kTrainTileRows);
static_assert(kHidden == 4 * 32, "a lane owns four outputs of a hidden layer");
inline constexpr int kAdamThreads = 256;

// What differs between the model variants (params.hpp), all compile-time: the
// rows and Adam kernels are instantiated once per variant. With the x
// encoding, layer 0 reads [emb_x(x_t0), emb_x(x_t1), emb(t)], 192 inputs.
template <XEmbedding E>
struct TrainShape {
  static constexpr int kIn0 = net_of(E).in0();           // 66 or 192
  static constexpr int kXInputs = net_of(E).x_inputs;    // layer 0's columns from x: 2 or 128
  // Layer-0 input rows, padded to 16 bytes (66 -> 68).
  static constexpr int kA0Stride = (kIn0 + 3) / 4 * 4;
  // The flat-buffer offsets the kernels use (integral constants, usable in device code).
  static constexpr std::size_t kW0 = net_of(E).layers[0].weight, kB0 = net_of(E).layers[0].bias;
  static constexpr std::size_t kW1 = net_of(E).layers[1].weight, kB1 = net_of(E).layers[1].bias;
  static constexpr std::size_t kW2 = net_of(E).layers[2].weight, kB2 = net_of(E).layers[2].bias;
  static constexpr std::size_t kW3 = net_of(E).layers[3].weight, kB3 = net_of(E).layers[3].bias;
  static constexpr std::size_t kParams = net_of(E).param_count;
  // Shared memory of the rows kernel, in floats: a0 [P][stride], h1..h3 and
  // g1..g3 (silu and silu' of each hidden layer) [P][128] each, then per row
  // eps and dL/d out (2 each); the last doubles: the warps' squared-error sums.
  static constexpr std::size_t kSmemA0 = 0;
  static constexpr std::size_t kSmemH = kSmemA0 + std::size_t(kTrainTileRows) * kA0Stride;
  static constexpr std::size_t kSmemG = kSmemH + 3 * std::size_t(kTrainTileRows) * kHidden;
  static constexpr std::size_t kSmemEps = kSmemG + 3 * std::size_t(kTrainTileRows) * kHidden;
  static constexpr std::size_t kSmemDout = kSmemEps + 2 * std::size_t(kTrainTileRows);
  static constexpr std::size_t kSmemLoss = kSmemDout + 2 * std::size_t(kTrainTileRows);  // in floats, 8-aligned
  static_assert(kSmemLoss % 2 == 0, "double alignment");
  static constexpr std::size_t kSmemBytes = kSmemLoss * sizeof(float) + kTrainWarps * sizeof(double);
};
using SeedTrainShape = TrainShape<XEmbedding::kNone>;

// The seed's model's shape under the names the kernel tests use.
inline constexpr int kA0Stride = SeedTrainShape::kA0Stride;
inline constexpr std::size_t kTrainSmemBytes = SeedTrainShape::kSmemBytes;
inline constexpr std::size_t kW0 = SeedTrainShape::kW0, kB0 = SeedTrainShape::kB0;
inline constexpr std::size_t kW1 = SeedTrainShape::kW1, kB1 = SeedTrainShape::kB1;
inline constexpr std::size_t kW2 = SeedTrainShape::kW2, kB2 = SeedTrainShape::kB2;
inline constexpr std::size_t kW3 = SeedTrainShape::kW3, kB3 = SeedTrainShape::kB3;
inline constexpr std::size_t kParams = SeedTrainShape::kParams;

inline int train_batch_blocks(int n) { return (n + kTrainBatchThreads - 1) / kTrainBatchThreads; }
inline int train_tiles(int n) { return (n + kTrainTileRows - 1) / kTrainTileRows; }
// The rows kernel's grid: one block per tile up to `max_blocks` (the SM count:
// the partial-gradient buffer, max_blocks x 167 KB (232 KB with the x
// encoding), then stays in L2).
inline int train_rows_grid(int n, int max_blocks) {
  const int tiles = train_tiles(n);
  return tiles < max_blocks ? tiles : max_blocks;
}
inline int train_adam_grid(XEmbedding e = XEmbedding::kNone) {
  return int((net_of(e).param_count + kAdamThreads - 1) / kAdamThreads);
}

// ---- What the kernels exchange (device pointers; host pointers in emulation) ----

// One batch block's share of the statistics: its rows' coordinate sums and
// sums of squares about its own mean (merged as Chan et al. do).
struct BatchStatsPartial {
  double sum[2], m2[2];
};
// The batch's mean and 1 / unbiased std per coordinate (cpu::BatchStats' meaning).
struct TrainBatchStats {
  double mean[2], inv_std[2];
};

// The training batch of the current step: raw rows (before normalization), eps, t.
struct TrainBatch {
  float* x0;   // [n][2]
  float* eps;  // [n][2]
  int* t;      // [n]
};

// The network as the rows kernel reads it: the flat buffer (W row-major for
// the backward pass, biases, W3) and W^T of layers 0..2 for the forward pass;
// the model variant picks the kernels' instantiation.
struct TrainNetView {
  const float* params;  // the variant's layout
  const float* wt0;     // W0^T [66][128], or [192][128] with the x encoding
  const float* wt1;     // W1^T [128][128]
  const float* wt2;     // W2^T [128][128]
  ModelConfig model{};
  // The x encoding's frequencies, the host's (x_embedding_frequencies, as the
  // CPU trainer's; zeros: every x encodes as x = 0). By value in the kernel's
  // parameters: a lane reads its one frequency once per launch, and a graph
  // captures it with the launch, with no buffer to allocate or upload.
  XEmbeddingFrequencies x_freq{};
};

// The optimizer's state: the flat buffer and its transposed copies (written),
// the Adam moments, and the EMA of the weights (null: not kept).
struct TrainOptState {
  float* params;
  float* wt0;
  float* wt1;
  float* wt2;
  float* adam_m;
  float* adam_v;
  float* ema;             // null: no EMA
  float ema_decay;        // decay and 1 - decay (rounded from double, as the CPU's)
  float ema_one_minus_decay;
  XEmbedding x_embedding = XEmbedding::kNone;  // the layout of every buffer above
};

// Where the step is: the device's count of steps taken, and the table of
// per-step scalars indexed by (count - first_step).
struct TrainStepClock {
  int64_t* step;            // steps taken; the last Adam block adds one
  int64_t first_step;       // the step count that table[0] and losses[0] belong to
  const AdamStep* adam;     // adam[j]: the scalars of Adam step first_step + j + 1
  float* losses;            // losses[j]: the loss of that step
};

// ---- Launchers (nvcc only; each opens an NVTX range and checks its launch) ----

// Raises the rows kernels' dynamic shared-memory limit (both variants). Call
// once before launching (and before any graph capture: it is not a stream operation).
void configure_train_kernels();

// Kernel 1: the batch of step *clock.step into `batch`, its statistics into *stats.
// partials: train_batch_blocks(n) entries; done: a zeroed counter (left zeroed).
void launch_train_batch(uint64_t seed, const int64_t* step, int n, int T, const DataSource& data,
                        const TrainBatch& batch, BatchStatsPartial* partials, unsigned* done, TrainBatchStats* stats,
                        cudaStream_t stream);

// Kernel 2 on `grid` blocks (train_rows_grid), the instantiation of net.model's
// variant: partial gradients grad_partial[block][params of the variant] and
// squared-error sums loss_partial[block].
// activations (tests only; null otherwise): [n][3 * 128 + 2] = h1, h2, h3, eps_theta.
void launch_train_rows(const TrainNetView& net, const TrainBatch& batch, const TrainBatchStats* stats,
                       const ForwardCoef* coef, const float* emb, int n, int grid, float* grad_partial,
                       double* loss_partial, float* activations, cudaStream_t stream);

// Kernel 3: sums `partials` partial gradients, updates opt, writes the loss
// (sum of loss_partial / (2n)) and advances the step. grad (tests only; null
// otherwise) receives the summed gradient. done: a zeroed counter (left zeroed).
void launch_train_adam(const TrainOptState& opt, const float* grad_partial, const double* loss_partial, int partials,
                       int n, const TrainStepClock& clock, unsigned* done, float* grad, cudaStream_t stream);

}  // namespace ddpm::kernels
