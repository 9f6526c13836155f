// One way to launch a kernel, for both builds: the triple-chevron launch under
// nvcc; in the emulated build (tests/emu/device), the emulated device's
// stream, so that the launchers themselves run in tests without a GPU. Kernel
// arguments are converted to the kernel's parameter types and copied at the
// launch, as CUDA copies them.
//
// Launchers (kernels/<family>.cu) only: the caller checks the launch with
// DDPM_CUDA_CHECK_LAUNCH(stream) afterwards.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>

namespace ddpm {

template <class... Params, class... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t dynamic_smem, cudaStream_t stream,
                   Args&&... args) {
#if defined(DDPM_EMULATION)
  ::emu::launch_on(stream, kernel, grid, block, dynamic_smem, std::forward<Args>(args)...);
#else
  kernel<<<grid, block, dynamic_smem, stream>>>(std::forward<Args>(args)...);
#endif
}

}  // namespace ddpm
