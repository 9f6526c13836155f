// The command line of ddpm_cuda_train, apart from the tool so that tests and
// the command-line fuzzer parse exactly what the tool parses.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

#include "ddpm/config.hpp"

namespace ddpm::tools {

struct TrainOptions {
  int64_t steps = kTrainSteps;
  int batch = kBatch;
  // float, as the seed's constants are: "--lr 0.001" is then exactly the default.
  float lr = kLearningRate;
  int T = kT;
  float beta_1 = kBeta1, beta_T = kBetaT;
  uint64_t seed = kDefaultSeed;
  std::string device = "auto";
  std::string out = "ddpm_ckpt.safetensors";
  std::string loss_csv = "ddpm_loss.csv";
  std::string loss_png = "ddpm_loss.png";
  std::string forward_png = "ddpm_forward.png";
  int64_t log_every = kLogEvery;
  int64_t checkpoint_every = 0;  // 0: only the final checkpoint
  std::string resume;
  bool print_schedule = false;
};

// Binds every flag of the tool to o.
void add_train_options(CLI::App& app, TrainOptions& o);
// What the flags cannot check one by one, after parsing; throws UsageError.
void check_train_options(const CLI::App& app, const TrainOptions& o);

}  // namespace ddpm::tools
