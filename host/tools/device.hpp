// Which device a tool runs on: --device auto|cpu|cuda.
#pragma once

#include <string>

namespace ddpm::tools {

enum class Device { kCpu, kCuda };

// Number of CUDA devices (0 when there is no driver or no GPU); why, in `reason`.
int cuda_device_count(std::string* reason = nullptr);

// How far a tool's CUDA path has come in this build.
enum class CudaPath {
  kNone,        // none: --device cuda is an error
  kOnRequest,   // runs with --device cuda; auto keeps to the CPU (not yet validated on a GPU)
  kValidated,   // auto takes it when a GPU is present
};

// --device auto|cpu|cuda. auto says what it picked in one line on stderr;
// cuda without a GPU (or without a CUDA path) throws ddpm::Error.
Device choose_device(const std::string& flag, CudaPath path, const std::string& tool);

}  // namespace ddpm::tools
