// Which device a tool runs on: --device auto|cpu|cuda.
#pragma once

#include <string>

namespace ddpm::tools {

enum class Device { kCpu, kCuda };

// Number of CUDA devices (0 when there is no driver or no GPU); why, in `reason`.
int cuda_device_count(std::string* reason = nullptr);

// --device auto|cpu|cuda. `has_cuda_path` says whether this tool has a CUDA
// implementation in this build. auto says what it picked in one line on
// stderr; cuda without a GPU (or without a CUDA path) throws ddpm::Error.
Device choose_device(const std::string& flag, bool has_cuda_path, const std::string& tool);

}  // namespace ddpm::tools
