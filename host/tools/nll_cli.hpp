// The command line of ddpm_cuda_nll, apart from the tool so that tests and
// the command-line fuzzer parse exactly what the tool parses.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

#include "ddpm/config.hpp"
#include "ddpm/likelihood.hpp"
#include "host/tools/cli.hpp"

namespace ddpm::tools {

struct NllOptions {
  std::string ckpt = "ddpm_ckpt.safetensors";
  std::string data;      // a built-in set or a .npy/.csv file; empty: the set the checkpoint was trained on
  int64_t n = 2000;      // held-out points (a file: its first n, or all of them)
  uint64_t seed = 1;     // the held-out draw and the bound's eps
  std::string device = "auto";
  std::string cpu_isa;   // empty: $DDPM_CPU_ISA, else auto
  std::string weights = "auto";       // auto (EMA when the checkpoint has it) | ema | raw
  std::string what = "both";          // both | bound | exact
  std::string variance = "posterior"; // the model's step variance in the bound
  std::string ode = "rk4";            // rk4 (fixed steps, the error by halving) | adaptive (CPU)
  int ode_steps = kOdeDefaultSteps;   // RK4 steps, even
  double rtol = 1e-5, atol = 1e-5;    // the adaptive integrator's tolerances
  bool json = false;
  std::string out;                    // also the JSON report to this file
  int grid = 0;                       // log p on a grid x grid heat map (0: none)
  std::string png = "ddpm_nll.png";   // the heat map, beside the model's samples
  ModelFlags model;                   // given, must agree with the checkpoint's
};

// Binds every flag of the tool to o.
void add_nll_options(CLI::App& app, NllOptions& o);
// What the flags cannot check one by one, after parsing; throws UsageError.
void check_nll_options(const CLI::App& app, const NllOptions& o);

}  // namespace ddpm::tools
