// The command line of ddpm_cuda_train, apart from the tool so that tests and
// the command-line fuzzer parse exactly what the tool parses.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

#include "ddpm/config.hpp"
#include "host/tools/cli.hpp"

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
  std::string cpu_isa;  // empty: $DDPM_CPU_ISA, else auto
  std::string out = "ddpm_ckpt.safetensors";
  std::string loss_csv = "ddpm_loss.csv";
  std::string loss_png = "ddpm_loss.png";
  std::string forward_png = "ddpm_forward.png";
  int64_t log_every = kLogEvery;
  int64_t checkpoint_every = 0;  // 0: only the final checkpoint
  std::string resume;
  std::string data = "moons";     // a built-in set or a .npy/.csv file
  std::string schedule = "linear";
  double ema = 0;                 // EMA decay; 0: no EMA
  std::string lr_decay = "none";  // none | cosine
  double lr_final = 0;            // cosine: the last step's lr over --lr
  int64_t warmup = 0;             // linear warm-up steps
  int64_t eval_every = 0;         // 0: no evaluation during training
  int64_t eval_n = 4000;
  std::string eval_png = "ddpm_eval.png";
  std::string recipe = "seed";
  ModelFlags model;
  bool print_schedule = false;
};

// Binds every flag of the tool to o.
void add_train_options(CLI::App& app, TrainOptions& o);

// A named set of training settings (--recipe): the seed's, the one that
// reaches the quality bar of bench/NOTES.md, or the one that reaches the same
// chain's quality in under 20 s on two cores (bench/NOTES.md, "The fast
// recipe"). Flags given explicitly win.
struct Recipe {
  const char* name;
  int64_t steps;
  int batch;
  float lr;
  double ema;
  const char* lr_decay;
  double lr_final;
  int64_t warmup;
};
const Recipe& recipe_named(const std::string& name);
// The recipe's warm-up for a run of `steps` steps: the same share of the run
// as at its own length (rounded to the nearest step).
int64_t scaled_warmup(const Recipe& r, int64_t steps);
// Sets every setting of o.recipe that was not given on the command line.
void apply_recipe(const CLI::App& app, TrainOptions& o);
// What the flags cannot check one by one, after parsing; throws UsageError.
void check_train_options(const CLI::App& app, const TrainOptions& o);

}  // namespace ddpm::tools
