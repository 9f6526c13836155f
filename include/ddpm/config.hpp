// The seed's constants, in one place, named as in Ho et al. (2020) and the
// two-moons tutorial. Shapes are compile-time constants; T, the beta range,
// the batch, the learning rate and the step count are run-time defaults.
#pragma once

#include <cstddef>
#include <cstdint>

// Functions shared by host C++ and CUDA device code. Host builds see plain
// `inline`; nvcc sees `__host__ __device__`.
#if defined(__CUDACC__)
#define DDPM_HD __host__ __device__ __forceinline__
#else
#define DDPM_HD inline
#endif

namespace ddpm {

// ---- Network shape (EpsNet: 2+64 -> 128 -> 128 -> 128 -> 2, SiLU) ----
inline constexpr int kDataDim = 2;                  // x in R^2
inline constexpr int kEmbDim = 64;                  // sinusoidal timestep embedding
inline constexpr int kEmbHalf = kEmbDim / 2;        // sin half, then cos half
inline constexpr int kInDim = kDataDim + kEmbDim;   // 66: concat(x, emb(t))
inline constexpr int kHidden = 128;                 // width of the three hidden layers
inline constexpr int kNumLayers = 4;                // Linear layers net.0, net.2, net.4, net.6

// ---- Diffusion schedule defaults ----
inline constexpr int kT = 500;          // number of diffusion steps T
inline constexpr float kBeta1 = 1e-4f;  // beta_1 (linear schedule start)
inline constexpr float kBetaT = 0.02f;  // beta_T (linear schedule end)
inline constexpr int kMaxT = 100000;    // largest T the tools accept

// ---- Data and training defaults ----
inline constexpr float kMoonsNoise = 0.05f;  // make_moons(noise=0.05)
inline constexpr int kBatch = 512;           // points per training batch
inline constexpr float kLearningRate = 1e-3f;
inline constexpr int kTrainSteps = 5000;
inline constexpr int kLogEvery = 1000;       // "step N loss L" cadence of the seed

// ---- Adam, PyTorch's defaults ----
inline constexpr double kAdamBeta1 = 0.9;
inline constexpr double kAdamBeta2 = 0.999;
inline constexpr double kAdamEps = 1e-8;

// ---- Sampling and plotting defaults ----
inline constexpr int64_t kSampleCount = 2000;  // sample(n=2000)
inline constexpr int kForwardPoints = 2000;    // get_batch(2000) in plot_forward_process

inline constexpr uint64_t kDefaultSeed = 0;

}  // namespace ddpm
