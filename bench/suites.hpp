// ddpm_bench's kernel suites: the CPU backend's kernels one by one
// (cpu_kernels.cpp) and the CUDA kernels with CUDA events (gpu_kernels.cpp),
// each against ceilings measured in the same run.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_util.hpp"

namespace ddpm::bench {

// FP32 FMA rate of all OpenMP threads, 12 independent FMA chains per thread,
// for each vector width the CPU backend is built for (0: not on this CPU), and
// the bf16 dot-product rate (vdpbf16ps) the bf16 sampler runs on.
struct FmaPeaks {
  double avx2 = 0, avx512 = 0, bf16 = 0;
};
FmaPeaks measure_fma_peaks();
// The widest of them: the FP32 ceiling of the build the backend picks by default.
double measure_fma_peak_gflops();

// STREAM-style memory bandwidth of all threads over arrays far larger than
// the caches: copy (b = a, 8 bytes per element) and triad (a = b + s c, 12),
// counted without write-allocate traffic, as STREAM counts them.
struct CpuBandwidth {
  double copy_gbs = 0, triad_gbs = 0;
};
CpuBandwidth measure_cpu_bandwidth();

// The memory the CPU kernels' input sets rotate through: 8x the last-level cache, at least 256 MB.
double cpu_rotation_bytes();

// Every CPU kernel at every size of o.sizes that fits the time and memory
// limits, in each instruction-set build the CPU has (rows tagged [avx2],
// [avx512]), each row against its own width's peak.
std::vector<Result> run_cpu_kernels(const Options& o, const Ceilings& c);

struct GpuSuite {
  Ceilings ceilings;
  nlohmann::json info;  // the device and every ceiling measured
  std::vector<Result> rows;
};
// The CUDA kernels and the fused sampler on device 0, checked against the CPU
// backend first. Throws ddpm::Error if a kernel disagrees with its reference.
GpuSuite run_gpu_kernels(const Options& o);

}  // namespace ddpm::bench
