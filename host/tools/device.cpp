#include "host/tools/device.hpp"

#include <cuda_runtime_api.h>

#include <cstdio>

#include "ddpm/cuda_check.hpp"
#include "ddpm/error.hpp"

namespace ddpm::tools {

int cuda_device_count(std::string* reason) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err == cudaSuccess && count > 0) {
    if (reason) reason->clear();
    return count;
  }
  if (reason) *reason = no_cuda_device_reason(err);
  return 0;
}

Device choose_device(const std::string& flag, CudaPath path, const std::string& tool) {
  if (flag == "cpu") return Device::kCpu;
  std::string reason;
  const int gpus = cuda_device_count(&reason);
  if (flag == "cuda") {
    if (gpus == 0) throw Error("--device cuda: " + reason);
    if (path == CudaPath::kNone)
      throw Error("--device cuda: " + tool + " has no CUDA path in this build yet; use --device cpu");
    return Device::kCuda;
  }
  if (gpus > 0 && path == CudaPath::kValidated) {
    std::fprintf(stderr, "%s: %d GPU%s found; using the GPU\n", tool.c_str(), gpus, gpus > 1 ? "s" : "");
    return Device::kCuda;
  }
  const char* why = gpus == 0                        ? reason.c_str()
                    : path == CudaPath::kOnRequest ? "the CUDA path runs with --device cuda until validated on a GPU"
                                                   : "this build has no CUDA path for this tool yet";
  std::fprintf(stderr, "%s: %s; using the CPU\n", tool.c_str(), why);
  return Device::kCpu;
}

}  // namespace ddpm::tools
