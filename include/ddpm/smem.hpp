// Dynamic shared memory, the one way kernels of this project reach it.
//
//   float* tile = ddpm::dynamic_smem<float>();
//
// returns the start of the block's dynamic shared memory (the bytes passed as
// the third launch parameter), aligned to 16 bytes. It replaces
// `extern __shared__ float tile[];`, which the host emulation used by the
// tests (tests/emu/) cannot express: there the call returns a heap buffer of
// exactly the launch's size, so AddressSanitizer sees every access past its
// end. dynamic_smem_bytes() is that size, for bounds assertions.
#pragma once

#include <cstddef>

#if defined(__CUDACC__)

namespace ddpm {

template <class T>
__device__ __forceinline__ T* dynamic_smem() {
  extern __shared__ __align__(16) unsigned char ddpm_dynamic_smem_[];
  return reinterpret_cast<T*>(ddpm_dynamic_smem_);
}

__device__ __forceinline__ std::size_t dynamic_smem_bytes() {
  unsigned bytes;
  asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(bytes));
  return bytes;
}

}  // namespace ddpm

#elif defined(DDPM_EMULATION)

#if !defined(DDPM_CUDA_EMU_HPP)
#error "DDPM_EMULATION is defined but tests/emu/cuda_emu.hpp was not included first"
#endif

namespace ddpm {

template <class T>
inline T* dynamic_smem() {
  return reinterpret_cast<T*>(::emu::dynamic_shared_memory());
}

inline std::size_t dynamic_smem_bytes() { return ::emu::dynamic_shared_memory_bytes(); }

}  // namespace ddpm

#endif
