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
