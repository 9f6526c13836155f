// What the command-line tools share: device choice, one-line errors, and
// flag validation.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace ddpm::tools {

enum class Device { kCpu, kCuda };

// Number of CUDA devices (0 when there is no driver or no GPU); why, in `reason`.
int cuda_device_count(std::string* reason = nullptr);

// --device auto|cpu|cuda. `has_cuda_path` says whether this tool has a CUDA
// implementation in this build. auto says what it picked in one line on
// stderr; cuda without a GPU (or without a CUDA path) throws ddpm::Error.
Device choose_device(const std::string& flag, bool has_cuda_path, const std::string& tool);

// Runs body(); prints "<tool>: error: <message>" on one line for ddpm::Error and
// std::exception (exit 1) and for command-line errors (exit 2); --help exits 0.
int run_tool(const std::string& tool, CLI::App& app, int argc, char** argv, const std::function<void()>& body);

// Validators CLI11 lacks: unsigned integers written without a sign (CLI11 would
// wrap "-1" around to 2^64 - 1), and finite floating-point values.
extern const CLI::Validator kUnsigned;
extern const CLI::Validator kFinite;

// Fails now, with the path in the message, if `path` cannot be written, so a
// long run does not end in an error. Leaves nothing behind.
void check_writable(const std::string& path);

// Whether stderr is a terminal (progress bars) .
bool stderr_is_terminal();

}  // namespace ddpm::tools
