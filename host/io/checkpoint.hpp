// Checkpoints: safetensors with the seed's PyTorch names (net.0.weight [128,66],
// or [128,192] with the x encoding, net.0.bias [128], net.2.*, net.4.*,
// net.6.weight [2,128], net.6.bias [2]), so safetensors.torch.load_file +
// EpsNet.load_state_dict reads them, and back.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ddpm/config.hpp"
#include "ddpm/params.hpp"

namespace ddpm::io {

inline constexpr int kCheckpointFormatVersion = 1;

struct CheckpointMeta {
  int format_version = kCheckpointFormatVersion;
  int T = kT;
  double beta_1 = kBeta1, beta_T = kBetaT;
  std::string schedule = "linear";  // "linear" or "cosine"
  int emb_dim = kEmbDim, hidden = kHidden;
  // The model variant: metadata keys x_embedding ("none" or "sinusoidal"; a file
  // without the key is "none") and x_scale (with "sinusoidal"). It fixes
  // net.0.weight's shape, [128, 66] or [128, 192].
  ModelConfig model;
  int64_t steps = 0;          // optimizer steps trained
  uint64_t seed = kDefaultSeed;
  float last_loss = 0.f;
  // The training run's settings, stored as metadata keys "run.<name>" so a
  // resumed run continues with exactly them (the training tool owns the names).
  std::map<std::string, std::string> run;
  // A model trained on a user's file learns its points normalized, (p - mean) / std;
  // these map its samples back to the file's units, x * std + mean. Stored as
  // run.data-mean-x, run.data-mean-y, run.data-std-x, run.data-std-y (%.17g);
  // absent for the built-in sets, whose samples stay in the normalized units.
  struct DataScale {
    double mean[2], std[2];
  };
  std::optional<DataScale> data_scale;
};

// What training needs to continue bit-identically from meta.steps: the Adam
// moments and the loss of every step so far. (The random streams need no
// state: batch k draws Philox items of step k, see ddpm/rng.hpp.)
struct TrainingState {
  std::vector<float> adam_m, adam_v;  // the layout of params each
  std::vector<float> losses;          // meta.steps values, step 1 first
};

// Tensors: net.{0,2,4,6}.{weight,bias} (params); ema.net.* (the EMA of the
// weights, when training kept one); optim.exp_avg.net.*, optim.exp_avg_sq.net.*
// and train.losses [steps] (the training state, in files written to resume).
struct Checkpoint {
  std::vector<float> params;  // flat buffer, meta.model.net()'s layout (ddpm/params.hpp)
  std::vector<float> ema;     // same layout; empty when there is none
  std::optional<TrainingState> training;
  CheckpointMeta meta;
  // A file not in our format (no "format": "ddpm-cuda"), read as a plain state
  // dict, and its metadata keys, which were ignored.
  bool plain_state_dict = false;
  std::vector<std::string> ignored_metadata;
};

// Atomic write of params (meta.model.net().param_count floats) and metadata.
void save_checkpoint(const std::string& path, const Checkpoint& ckpt);
// Validates the file (see read_safetensors), that the eight net.* tensors
// exist with their shapes, that each optional group (ema.*; the training state)
// is complete or absent, and the metadata (format version, T in 1..kMaxT,
// 0 < beta_1 <= beta_T < 1, schedule linear or cosine, emb_dim and hidden
// equal to this build's, the data scale's four keys all or none, each finite,
// the stds positive); throws ddpm::Error otherwise. A file whose metadata says
// "format": "ddpm-cuda" must hold every key save_checkpoint writes. Any other
// file is a plain state dict, as safetensors.torch.save_file(model.state_dict(),
// path) writes (no metadata) or save_model ({"format": "pt"}): it gets the
// defaults of CheckpointMeta (ddpm/config.hpp: T = 500, the linear betas
// 1e-4..0.02, steps 0), the model variant its net.0.weight's shape says (with
// [128, 192], the x encoding at the default scale 25), and its metadata keys are
// listed in ignored_metadata. Unknown keys of ours are ignored.
Checkpoint load_checkpoint(const std::string& path);

// One line telling that `path` was read as a plain state dict with the default
// settings, naming its ignored metadata keys (ckpt.ignored_metadata) and the
// assumed x scale, for the tools to print; "" for our own files and for a plain
// state dict of the seed's model without metadata.
std::string ignored_metadata_note(const std::string& path, const Checkpoint& ckpt);

}  // namespace ddpm::io
