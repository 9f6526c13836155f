// Checkpoints: safetensors with the seed's PyTorch names (net.0.weight [128,66],
// net.0.bias [128], net.2.*, net.4.*, net.6.weight [2,128], net.6.bias [2]), so
// safetensors.torch.load_file + EpsNet.load_state_dict reads them, and back.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ddpm/config.hpp"

namespace ddpm::io {

inline constexpr int kCheckpointFormatVersion = 1;

struct CheckpointMeta {
  int format_version = kCheckpointFormatVersion;
  int T = kT;
  double beta_1 = kBeta1, beta_T = kBetaT;
  std::string schedule = "linear";  // "linear" or "cosine"
  int emb_dim = kEmbDim, hidden = kHidden;
  int64_t steps = 0;          // optimizer steps trained
  uint64_t seed = kDefaultSeed;
  float last_loss = 0.f;
  // The training run's settings, stored as metadata keys "run.<name>" so a
  // resumed run continues with exactly them (the training tool owns the names).
  std::map<std::string, std::string> run;
};

// What training needs to continue bit-identically from meta.steps: the Adam
// moments and the loss of every step so far. (The random streams need no
// state: batch k draws Philox items of step k, see ddpm/rng.hpp.)
struct TrainingState {
  std::vector<float> adam_m, adam_v;  // kParamCount each, the layout of params
  std::vector<float> losses;          // meta.steps values, step 1 first
};

// Tensors: net.{0,2,4,6}.{weight,bias} (params); ema.net.* (the EMA of the
// weights, when training kept one); optim.exp_avg.net.*, optim.exp_avg_sq.net.*
// and train.losses [steps] (the training state, in files written to resume).
struct Checkpoint {
  std::vector<float> params;  // flat buffer, layout of ddpm/params.hpp
  std::vector<float> ema;     // same layout; empty when there is none
  std::optional<TrainingState> training;
  CheckpointMeta meta;
};

// Atomic write of params (kParamCount floats) and metadata.
void save_checkpoint(const std::string& path, const Checkpoint& ckpt);
// Validates the file (see read_safetensors), that the eight net.* tensors
// exist with their shapes, that each optional group (ema.*; the training state)
// is complete or absent, and the metadata (format version, T in 1..kMaxT,
// 0 < beta_1 <= beta_T < 1, schedule linear or cosine, emb_dim and hidden
// equal to this build's); throws ddpm::Error otherwise. Every metadata key
// save_checkpoint writes must be present, except in a file with no metadata
// at all (absent or empty "__metadata__"), as
// safetensors.torch.save_file(model.state_dict(), path) writes: that one gets
// the defaults of CheckpointMeta (ddpm/config.hpp: T = 500, the linear betas
// 1e-4..0.02, steps 0). Unknown keys are ignored.
Checkpoint load_checkpoint(const std::string& path);

}  // namespace ddpm::io
