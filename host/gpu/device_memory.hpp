// Device allocations of the GPU drivers. Running out of GPU memory is the one
// CUDA failure a user causes (a large --batch, another process on the GPU), so
// it gets its own one-line message with what was asked for and what was free.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <string>

#include "ddpm/cuda_check.hpp"
#include "ddpm/error.hpp"

namespace ddpm::gpu {

inline std::string out_of_memory_message(const std::string& what, std::size_t bytes, std::size_t free_bytes,
                                         std::size_t total_bytes) {
  auto mib = [](std::size_t b) { return std::to_string((b + (1u << 20) - 1) >> 20) + " MiB"; };
  return "out of GPU memory: " + what + " needs " + mib(bytes) + ", " + mib(free_bytes) + " of " +
         mib(total_bytes) + " free";
}

// cudaMalloc of count T (at least one), for `what`; throws ddpm::Error.
template <class T>
T* device_alloc(std::size_t count, const std::string& what) {
  const std::size_t bytes = std::max<std::size_t>(count, 1) * sizeof(T);
  T* p = nullptr;
  const cudaError_t status = cudaMalloc(reinterpret_cast<void**>(&p), bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear it
    std::size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    throw Error(out_of_memory_message(what, bytes, free_bytes, total_bytes));
  }
  DDPM_CUDA_CHECK(status);
  return p;
}

}  // namespace ddpm::gpu
