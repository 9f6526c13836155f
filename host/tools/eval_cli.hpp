// The command line of ddpm_eval, apart from the tool so that tests and the
// command-line fuzzer parse exactly what the tool parses.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

#include "ddpm/config.hpp"

namespace ddpm::tools {

struct EvalOptions {
  std::string samples;
  uint64_t seed = kDefaultSeed;
  bool json = false;
  std::string out;
  std::string data = "moons";  // a built-in set or a .npy/.csv file: what the samples should look like
  std::string units = "data";  // a file's samples: data (the file's units) | normalized
};

// Binds every flag of the tool to o.
void add_eval_options(CLI::App& app, EvalOptions& o);
// What the flags cannot check one by one, after parsing; throws UsageError.
void check_eval_options(const CLI::App& app, const EvalOptions& o);

}  // namespace ddpm::tools
