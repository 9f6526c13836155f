// Launchers of the fused training step (nvcc only).
#include "ddpm/cuda_check.hpp"
#include "ddpm/launch.hpp"
#include "ddpm/nvtx.hpp"
#include "kernels/train_step.cuh"

namespace ddpm::kernels {

void configure_train_kernels() {
  // 52 KB of activations (60 KB with the x encoding): above the 48 KB default,
  // within every sm_80+ part's opt-in limit.
  DDPM_CUDA_CHECK(cudaFuncSetAttribute(train_rows_kernel<XEmbedding::kNone>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       int(TrainShape<XEmbedding::kNone>::kSmemBytes)));
  DDPM_CUDA_CHECK(cudaFuncSetAttribute(train_rows_kernel<XEmbedding::kSinusoidal>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       int(TrainShape<XEmbedding::kSinusoidal>::kSmemBytes)));
}

void launch_train_batch(uint64_t seed, const int64_t* step, int n, int T, const DataSource& data,
                        const TrainBatch& batch, BatchStatsPartial* partials, unsigned* done, TrainBatchStats* stats,
                        cudaStream_t stream) {
  NvtxRange range("train_batch");
  ddpm::launch_kernel(train_batch_kernel, train_batch_blocks(n), kTrainBatchThreads, 0, stream, seed, step, n, T, data,
                      batch, partials, done, stats);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

void launch_train_rows(const TrainNetView& net, const TrainBatch& batch, const TrainBatchStats* stats,
                       const ForwardCoef* coef, const float* emb, int n, int grid, float* grad_partial,
                       double* loss_partial, float* activations, cudaStream_t stream) {
  NvtxRange range("train_rows");
  if (net.model.x_embedding == XEmbedding::kSinusoidal)
    ddpm::launch_kernel(train_rows_kernel<XEmbedding::kSinusoidal>, grid, kTrainThreads,
                        TrainShape<XEmbedding::kSinusoidal>::kSmemBytes, stream, net, batch, stats, coef, emb, n,
                        grad_partial, loss_partial, activations);
  else
    ddpm::launch_kernel(train_rows_kernel<XEmbedding::kNone>, grid, kTrainThreads,
                        TrainShape<XEmbedding::kNone>::kSmemBytes, stream, net, batch, stats, coef, emb, n,
                        grad_partial, loss_partial, activations);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

void launch_train_adam(const TrainOptState& opt, const float* grad_partial, const double* loss_partial, int partials,
                       int n, const TrainStepClock& clock, unsigned* done, float* grad, cudaStream_t stream) {
  NvtxRange range("train_adam");
  if (opt.x_embedding == XEmbedding::kSinusoidal)
    ddpm::launch_kernel(train_adam_kernel<XEmbedding::kSinusoidal>, train_adam_grid(opt.x_embedding), kAdamThreads, 0,
                        stream, opt, grad_partial, loss_partial, partials, n, clock, done, grad);
  else
    ddpm::launch_kernel(train_adam_kernel<XEmbedding::kNone>, train_adam_grid(), kAdamThreads, 0, stream, opt,
                        grad_partial, loss_partial, partials, n, clock, done, grad);
  DDPM_CUDA_CHECK_LAUNCH(stream);
}

}  // namespace ddpm::kernels
