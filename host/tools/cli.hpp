// What the command-line tools share: one-line errors, exit codes, flag
// validation. (Device choice is in device.hpp.)
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

#include "ddpm/datasets.hpp"
#include "ddpm/error.hpp"
#include "ddpm/params.hpp"

namespace ddpm::tools {

// A bad command line found after parsing: exits 2 like CLI11's own errors.
struct UsageError : Error {
  using Error::Error;
};

// A run stopped by SIGINT or SIGTERM after saving what it could: run_tool
// prints the message (not as an error) and exits with 128 + signal.
struct Interrupted : Error {
  Interrupted(const std::string& message, int signal_number) : Error(message), signal(signal_number) {}
  int signal;
};

// Parses, then runs body(); prints "<tool>: error: <message>" on one line for
// command-line errors and UsageError (exit 2) and for any other exception
// (exit 1); --help exits 0. Installs the interrupt handlers (interrupt.hpp).
int run_tool(const std::string& tool, CLI::App& app, int argc, char** argv, const std::function<void()>& body);

// Validators CLI11 lacks: unsigned decimal integers (CLI11 would wrap "-1"
// around to 2^64 - 1 and read "010" as octal), and finite floating-point values.
extern const CLI::Validator kUnsigned;
extern const CLI::Validator kFinite;

// --cpu-isa auto|avx2|avx512: the CPU backend's instruction-set build
// (host/cpu/cpu_backend.hpp). Left empty, DDPM_CPU_ISA decides, else the
// widest the CPU has; the tool applies it with cpu::select_cpu_isa.
void add_cpu_isa_option(CLI::App& app, std::string& isa);

// --x-embedding none|sinusoidal and --x-scale: the model variant (ddpm/params.hpp).
// The training tool chooses it with them; elsewhere the checkpoint holds it and
// the flags, given, must agree.
struct ModelFlags {
  std::string x_embedding = "none";
  float x_scale = kXScale;
};
void add_model_options(CLI::App& app, ModelFlags& flags, bool from_checkpoint);
// The model the flags choose; UsageError for --x-scale without --x-embedding sinusoidal.
ModelConfig model_from_flags(const CLI::App& app, const ModelFlags& flags);
// UsageError when a flag given contradicts `stored`, the model of the checkpoint `path`.
void check_model_flags(const CLI::App& app, const ModelFlags& flags, const ModelConfig& stored,
                       const std::string& path);

// Fails now, with the path in the message, if `path` cannot be written, so a
// long run does not end in an error. Leaves nothing behind.
void check_writable(const std::string& path);

// What `--data` names: a built-in set (moons, circles, ...) or a user's .npy
// or .csv file of N x 2 points, loaded and checked (ddpm::check_points).
struct DataChoice {
  std::string spec;            // as given
  Dataset dataset = Dataset::kMoons;
  std::vector<float> points;   // the file's points, interleaved (x, y); empty for a built-in set
  DataSource source() const { return {dataset, points.data(), int64_t(points.size() / 2)}; }
};
// Throws UsageError for a name that is neither a built-in set nor a .npy/.csv
// path, ddpm::Error for a file that cannot be read or holds bad points.
DataChoice load_data(const std::string& spec);

// Whether stderr is a terminal (progress bars) .
bool stderr_is_terminal();

}  // namespace ddpm::tools
