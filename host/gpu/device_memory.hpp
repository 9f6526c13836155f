// Device allocations of the GPU drivers. Running out of GPU memory is the one
// CUDA failure a user causes (a large --batch, another process on the GPU), so
// it gets its own one-line message with what was asked for and what was free.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "ddpm/cuda_check.hpp"
#include "ddpm/error.hpp"

namespace ddpm::gpu {

// remedy: what the user can change, if anything ("try a smaller --chunk").
inline std::string out_of_memory_message(const std::string& what, std::size_t bytes, std::size_t free_bytes,
                                         std::size_t total_bytes, const std::string& remedy = "") {
  auto mib = [](std::size_t b) { return std::to_string((b + (1u << 20) - 1) >> 20) + " MiB"; };
  return "out of GPU memory: " + what + " needs " + mib(bytes) + ", " + mib(free_bytes) + " of " +
         mib(total_bytes) + " free" + (remedy.empty() ? "" : "; " + remedy);
}

// cudaMalloc of count T (at least one), for `what`; throws ddpm::Error.
template <class T>
T* device_alloc(std::size_t count, const std::string& what, const std::string& remedy = "") {
  const std::size_t bytes = std::max<std::size_t>(count, 1) * sizeof(T);
  T* p = nullptr;
  const cudaError_t status = cudaMalloc(reinterpret_cast<void**>(&p), bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear it
    std::size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    throw Error(out_of_memory_message(what, bytes, free_bytes, total_bytes, remedy));
  }
  DDPM_CUDA_CHECK(status);
  return p;
}

// A driver's device buffers, allocated one by one and freed together.
class DeviceAllocations {
 public:
  DeviceAllocations() = default;
  ~DeviceAllocations() {
    for (void* p : owned_) cudaFree(p);  // nothing to report from a destructor
  }
  DeviceAllocations(const DeviceAllocations&) = delete;
  DeviceAllocations& operator=(const DeviceAllocations&) = delete;

  template <class T>
  T* alloc(std::size_t count, const std::string& what, const std::string& remedy = "") {
    T* p = device_alloc<T>(count, what, remedy);
    owned_.push_back(p);
    return p;
  }
  // A copy of count host values, made on `stream`: the driver's kernels on that
  // stream see it. (A cudaMemcpy from pageable memory runs on the legacy default
  // stream and may return before it lands, which a non-blocking stream's
  // kernels do not wait for.) The host values may go once this returns.
  template <class T>
  T* upload(const T* host, std::size_t count, const std::string& what, cudaStream_t stream) {
    T* p = alloc<T>(count, what);
    DDPM_CUDA_CHECK(cudaMemcpyAsync(p, host, count * sizeof(T), cudaMemcpyHostToDevice, stream));
    return p;
  }
  template <class T>
  T* upload(const std::vector<T>& host, const std::string& what, cudaStream_t stream) {
    return upload(host.data(), host.size(), what, stream);
  }

 private:
  std::vector<void*> owned_;
};

}  // namespace ddpm::gpu
