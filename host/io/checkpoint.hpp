// Checkpoints: safetensors with the seed's PyTorch names (net.0.weight [128,66],
// net.0.bias [128], net.2.*, net.4.*, net.6.weight [2,128], net.6.bias [2]), so
// safetensors.torch.load_file + EpsNet.load_state_dict reads them, and back.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ddpm/config.hpp"

namespace ddpm::io {

inline constexpr int kCheckpointFormatVersion = 1;

struct CheckpointMeta {
  int format_version = kCheckpointFormatVersion;
  int T = kT;
  double beta_1 = kBeta1, beta_T = kBetaT;
  std::string schedule = "linear";
  int emb_dim = kEmbDim, hidden = kHidden;
  int64_t steps = 0;          // optimizer steps trained
  uint64_t seed = kDefaultSeed;
  float last_loss = 0.f;
};

struct Checkpoint {
  std::vector<float> params;  // flat buffer, layout of ddpm/params.hpp
  CheckpointMeta meta;
};

// Atomic write of params (kParamCount floats) and metadata.
void save_checkpoint(const std::string& path, const Checkpoint& ckpt);
// Validates the file (see read_safetensors), that exactly the eight tensors
// exist with their shapes, and the metadata (format version, T in 1..kMaxT,
// 0 < beta_1 <= beta_T < 1, emb_dim and hidden equal to this build's);
// throws ddpm::Error otherwise. Every metadata key save_checkpoint writes must
// be present, except in a file with no metadata at all (absent or empty
// "__metadata__"), as safetensors.torch.save_file(model.state_dict(), path)
// writes: that one gets the defaults of CheckpointMeta (ddpm/config.hpp:
// T = 500, the linear betas 1e-4..0.02, steps 0). Unknown keys are ignored.
Checkpoint load_checkpoint(const std::string& path);

}  // namespace ddpm::io
