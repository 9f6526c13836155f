// The emulated CUDA device: the CUDA runtime and cuBLAS calls the project's
// host code makes, implemented on the CPU (cuda_runtime_emu.cpp,
// cublas_emu.cpp), so that the launchers, the GPU drivers and the tools'
// --device cuda paths run in tests on machines without a GPU. Kernels run
// through the emulation harness (cuda_emu.hpp).
//
// It honours only the ordering CUDA guarantees, so a missing synchronization
// shows up as a wrong result or a ThreadSanitizer report:
//   - each stream is a thread of its own that runs its work in issue order,
//     asynchronously to the host;
//   - the legacy default stream waits for the earlier work of every blocking
//     stream, and they for its earlier work; non-blocking streams wait for
//     nothing but their own work;
//   - cudaMemcpy from pageable host memory to the device stages the source
//     and returns; the copy lands later (DDPM_EMU_DMA_DELAY_MS, default 10),
//     on the legacy stream;
//   - device memory starts as 0xff bytes (NaN as float), as unwritten memory
//     holds garbage on a GPU;
//   - kernels are serialized device-wide (their __shared__ statics exist once),
//     in whatever order the streams' threads reach them.
//
// It is configured by the environment, so that a tool run as a child process
// gets the same device a test asks for:
//   DDPM_EMU_DEVICE         h200 (default), a100, l4, or none (no device)
//   DDPM_EMU_DEVICE_MEMORY  bytes of device memory (default 4 GiB; K, M, G suffixes)
//   DDPM_EMU_FAIL_ALLOC     N: the Nth cudaMalloc fails with cudaErrorMemoryAllocation
//   DDPM_EMU_FAIL_LAUNCH    N: the Nth kernel to run faults (a sticky cudaErrorLaunchFailure)
//   DDPM_EMU_DMA_DELAY_MS   how late a pageable upload lands (default 10)
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <functional>
#include <string>

namespace emu::device {

// cuBLAS: the math mode of the last GEMM run (cuBLAS's cublasMath_t value), -1 before any.
int last_gemm_math_mode();

namespace detail {
// The launch path of ddpm::launch_kernel under the emulation (cuda_emu.hpp's
// emu::launch_on): checks the configuration against the function's attributes
// and the device (a bad one sets the last error, as a launch does), then runs
// `body` on the stream, or records it into the stream's graph during capture.
void enqueue_launch(cudaStream_t stream, const void* func, dim3 grid, dim3 block, std::size_t dynamic_smem,
                    std::function<void()> body);
// Runs `op` on `stream` in its order (cuBLAS's GEMMs).
void enqueue(cudaStream_t stream, std::function<void()> op);
}  // namespace detail

}  // namespace emu::device
