// What GPU tests share: the reason to skip where no usable device exists, and
// device memory mirroring a host vector.
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <vector>

#include "ddpm/cuda_check.hpp"

namespace ddpm::testing {

// Empty when device 0 can run the project's kernels (sm_80 or later);
// otherwise why not, for GTEST_SKIP.
inline std::string no_device_reason() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) return no_cuda_device_reason(err);
  cudaDeviceProp prop{};
  DDPM_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  if (prop.major < 8)
    return std::string("no CUDA device: ") + prop.name + " is sm_" + std::to_string(prop.major) +
           std::to_string(prop.minor) + ", the kernels need sm_80 or later";
  return "";
}

template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t count) : count_(count) {
    DDPM_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), count * sizeof(T)));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host.data()); }
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return data_; }
  void upload(const T* host) { DDPM_CUDA_CHECK(cudaMemcpy(data_, host, count_ * sizeof(T), cudaMemcpyHostToDevice)); }
  void download(T* host) const { DDPM_CUDA_CHECK(cudaMemcpy(host, data_, count_ * sizeof(T), cudaMemcpyDeviceToHost)); }
  void download(std::vector<T>& host) const { download(host.data()); }

 private:
  std::size_t count_;
  T* data_ = nullptr;
};

}  // namespace ddpm::testing
