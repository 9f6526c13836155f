// The command line of ddpm_cuda_sample, apart from the tool so that tests and
// the command-line fuzzer parse exactly what the tool parses.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

#include "ddpm/config.hpp"
#include "host/tools/cli.hpp"

namespace ddpm::tools {

struct SampleOptions {
  int64_t n = kSampleCount;
  std::string ckpt = "ddpm_ckpt.safetensors";
  uint64_t seed = kDefaultSeed;
  std::string device = "auto";
  std::string cpu_isa;  // empty: $DDPM_CPU_ISA, else auto
  std::string out = "ddpm_samples.npy";
  std::string png = "ddpm_samples.png";
  std::string density = "ddpm_density.png";
  bool density_given = false;  // set by check_sample_options
  int64_t chunk = 0;           // 0: the device's (CPU 65,536 points, GPU 1,048,576)
  std::string precision = "fp32";  // fp32 | tf32 (GPU) | bf16 (GPU; CPU with AVX512_BF16)
  int64_t first = 0;                // the first point's index: points first..first + n - 1
  std::string sampler = "ddpm";     // ddpm | ddim | dpmpp-2m | heun
  int steps = 0;                    // S; 0: the sampler's default (default_sampler_steps)
  std::string timesteps = "default";  // default (the sampler's) | uniform | karras | logsnr (not ddpm)
  double eta = 0.0;                 // DDIM's noise scale
  std::string variance = "posterior";
  std::string weights = "auto";     // auto (EMA when the checkpoint has it) | ema | raw
  std::string schedule;             // empty: the checkpoint's; else must agree with it
  ModelFlags model;                 // given, must agree with the checkpoint's
  std::string units = "data";       // data (a training file's, when the checkpoint records them) | normalized
};

// Binds every flag of the tool to o.
void add_sample_options(CLI::App& app, SampleOptions& o);
// What the flags cannot check one by one, after parsing; throws UsageError.
void check_sample_options(const CLI::App& app, SampleOptions& o);

}  // namespace ddpm::tools
