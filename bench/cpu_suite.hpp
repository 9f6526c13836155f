// The CPU suite's parts: what each instruction-set build of cpu_kernels.cpp
// provides (namespaces avx2 and avx512), and what they share. cpu_suite.cpp
// runs the builds this CPU has. Internal header of ddpm_bench.
#pragma once

#include <vector>

#include "bench/suites.hpp"

namespace ddpm::bench {

double physical_memory_bytes();

namespace avx2 {
double fma_peak_gflops();
double bf16_peak_gflops();  // 0: no bf16 in this build
std::vector<Result> run_cpu_kernels(const Options& o, const Ceilings& c);
}  // namespace avx2

namespace avx512 {
double fma_peak_gflops();
double bf16_peak_gflops();  // 0 where the CPU lacks AVX512_BF16
std::vector<Result> run_cpu_kernels(const Options& o, const Ceilings& c);
}  // namespace avx512

}  // namespace ddpm::bench
