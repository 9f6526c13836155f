// Checking CUDA runtime calls: every call that returns a cudaError_t goes
// through DDPM_CUDA_CHECK, which throws ddpm::Error naming the call, the file,
// the line and CUDA's own description of the failure. Kernel launches are
// followed by DDPM_CUDA_CHECK_LAUNCH(), which picks up launch-configuration
// errors through cudaGetLastError. Defining DDPM_CUDA_SYNC_CHECK makes it also
// synchronize the device, so that a fault inside the kernel is reported at
// its launch rather than at some later call (slow; for debugging).
//
// Host code only (nvcc's host pass or a host compiler with the CUDA runtime
// headers); kernels report nothing through it.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "ddpm/error.hpp"

namespace ddpm::detail {

[[noreturn]] inline void cuda_check_failed(cudaError_t status, const char* call, const char* file,
                                           int line) {
  std::string message = std::string(file) + ":" + std::to_string(line) + ": " + call + " failed: " +
                        cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")";
  throw Error(message);
}

}  // namespace ddpm::detail

namespace ddpm {

// Why cudaGetDeviceCount gave `status` (or a count of 0), in words a user can act on.
// CUDA answers cudaErrorInsufficientDriver both where no driver is installed
// (libcuda.so.1 missing) and where the driver is older than the runtime; the driver's
// version (0 when none is installed) tells the two apart.
inline std::string no_cuda_device_reason(cudaError_t status) {
  int driver = 0, runtime = 0;
  if (cudaDriverGetVersion(&driver) != cudaSuccess) driver = 0;
  if (cudaRuntimeGetVersion(&runtime) != cudaSuccess) runtime = 0;
  const auto version = [](int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); };
  if (driver == 0) return "no NVIDIA driver found (libcuda.so.1)";
  if (status == cudaErrorInsufficientDriver)
    return "the NVIDIA driver (CUDA " + version(driver) + ") is older than this build's CUDA runtime (" +
           version(runtime) + "): update the driver";
  if (status == cudaSuccess || status == cudaErrorNoDevice)
    return "the NVIDIA driver (CUDA " + version(driver) + ") finds no CUDA device";
  return std::string("no usable CUDA device: ") + cudaGetErrorString(status);
}

}  // namespace ddpm

#define DDPM_CUDA_CHECK(call)                                                   \
  do {                                                                          \
    const cudaError_t ddpm_cuda_status_ = (call);                               \
    if (ddpm_cuda_status_ != cudaSuccess) {                                     \
      ::ddpm::detail::cuda_check_failed(ddpm_cuda_status_, #call, __FILE__, __LINE__); \
    }                                                                           \
  } while (false)

#if defined(DDPM_CUDA_SYNC_CHECK)
namespace ddpm::detail {
inline void synchronize_unless_capturing(cudaStream_t stream) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  DDPM_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  if (capture == cudaStreamCaptureStatusNone) DDPM_CUDA_CHECK(cudaStreamSynchronize(stream));
}
}  // namespace ddpm::detail
#define DDPM_CUDA_CHECK_LAUNCH(stream)                         \
  do {                                                         \
    DDPM_CUDA_CHECK(cudaGetLastError());                       \
    ::ddpm::detail::synchronize_unless_capturing(stream);      \
  } while (false)
#else
#define DDPM_CUDA_CHECK_LAUNCH(stream) DDPM_CUDA_CHECK(cudaGetLastError())
#endif
