// The CPU suite over the backend's instruction-set builds, and the machine's
// ceilings it is judged against (suites.hpp).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "bench/cpu_suite.hpp"
#include "host/cpu/cpu_backend.hpp"

namespace ddpm::bench {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The last-level cache of CPU 0 as Linux reports it (sysfs; 32 MB if absent).
double last_level_cache_bytes() {
  for (const char* path :
       {"/sys/devices/system/cpu/cpu0/cache/index3/size", "/sys/devices/system/cpu/cpu0/cache/index2/size"}) {
    if (std::FILE* f = std::fopen(path, "r")) {
      long long v = 0;
      char unit = 0;
      const int got = std::fscanf(f, "%lld%c", &v, &unit);
      std::fclose(f);
      if (got >= 1 && v > 0) return double(v) * (unit == 'K' ? 1024.0 : unit == 'M' ? 1048576.0 : 1.0);
    }
  }
  return 32.0 * (1 << 20);
}

}  // namespace

double physical_memory_bytes() { return double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE)); }

// Inputs rotate through 8x the last-level cache (at least 256 MB), so that no
// call finds its inputs left in cache by the previous ones: each reads them
// from DRAM. Eight times, not two: caches that resist thrashing keep part of
// a cyclic working set, about cache / total of it.
double cpu_rotation_bytes() { return std::max(256.0 * (1 << 20), 8 * last_level_cache_bytes()); }

FmaPeaks measure_fma_peaks() {
  FmaPeaks p;
  p.avx2 = avx2::fma_peak_gflops();
  if (cpu::cpu_supports(cpu::CpuIsa::kAvx512)) {
    p.avx512 = avx512::fma_peak_gflops();
    p.bf16 = avx512::bf16_peak_gflops();
  }
  return p;
}

double measure_fma_peak_gflops() {
  const FmaPeaks p = measure_fma_peaks();
  return std::max(p.avx2, p.avx512);
}

std::vector<Result> run_cpu_kernels(const Options& o, const Ceilings& c) {
  const cpu::CpuIsa saved = cpu::active_cpu_isa();
  std::vector<Result> rows;
  for (const cpu::CpuIsa isa : {cpu::CpuIsa::kAvx2, cpu::CpuIsa::kAvx512}) {
    if (!cpu::cpu_supports(isa)) continue;
    cpu::select_cpu_isa(cpu::name_of(isa));  // for the whole-path rows (cpu::train, cpu::sample)
    const bool wide = isa == cpu::CpuIsa::kAvx512;
    const double peak = wide ? avx512::fma_peak_gflops() : avx2::fma_peak_gflops();
    for (Result& r : wide ? avx512::run_cpu_kernels(o, c) : avx2::run_cpu_kernels(o, c)) {
      r.kernel += std::string(" [") + cpu::name_of(isa) + "]";
      if (r.ceiling_gflops == 0) r.ceiling_gflops = peak;  // each row against its own width's peak
      rows.push_back(std::move(r));
    }
  }
  cpu::select_cpu_isa(cpu::name_of(saved));
  return rows;
}

CpuBandwidth measure_cpu_bandwidth() {
  // Three arrays of 4x the last-level cache (at least 128 MB each). Best of 5, after one untimed pass.
  const int64_t n = int64_t(std::max(128.0 * (1 << 20), 4 * last_level_cache_bytes()) / sizeof(float));
  Floats a(n), b(n), cc(n);
  fill_random(a.data(), n, 1);
  fill_random(b.data(), n, 2);
  fill_random(cc.data(), n, 3);
  float *pa = a.data(), *pb = b.data(), *pc = cc.data();
  CpuBandwidth bw;
  for (int rep = 0; rep < 6; ++rep) {
    auto t0 = Clock::now();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) pb[i] = pa[i];
    const double copy = seconds_since(t0);
    const float s = 0.5f + 1e-3f * rep;
    t0 = Clock::now();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) pa[i] = pb[i] + s * pc[i];
    const double triad = seconds_since(t0);
    if (rep == 0) continue;
    bw.copy_gbs = std::max(bw.copy_gbs, 8.0 * n / copy / 1e9);
    bw.triad_gbs = std::max(bw.triad_gbs, 12.0 * n / triad / 1e9);
  }
  if (!std::isfinite(pa[n / 3])) std::puts("");
  return bw;
}


}  // namespace ddpm::bench
