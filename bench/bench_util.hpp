// What ddpm_bench's kernel suites share: the timing policy (warm-up, then
// repeated runs, the median), fresh random inputs, the ceilings measured in
// the same run, and the result rows with their table and JSON forms.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ddpm/nvtx.hpp"

namespace ddpm::bench {

struct Options {
  std::vector<int64_t> sizes;  // points (rows) per call
  std::string filter;          // run only kernels whose name contains this; empty: all
  int warmup = 2;              // untimed runs first: page faults, clocks, caches of code and tables
  int min_reps = 5;            // timed runs, at least ...
  int max_reps = 200;          // ... and at most
  double min_time = 0.3;       // seconds of timed runs per case: more reps while under this
  double max_run_seconds = 2;  // skip a case whose one run is estimated to take longer
  int rotate = 0;              // input sets to rotate through; 0: enough to overflow the caches
  int gemm_n = 0;              // the GPU's ceiling GEMMs: n x n x n; 0: 8192, or 4096 under 3 GiB free
  bool wants(const std::string& kernel) const { return filter.empty() || kernel.find(filter) != std::string::npos; }
};

// The limits one suite's kernels are held against, measured in the same run.
struct Ceilings {
  double compute_gflops = 0;  // the matrix/FMA rate
  std::string compute_what;
  double bandwidth_gbs = 0;  // the memory rate
  std::string bandwidth_what;
};

// One benchmarked case: a kernel at one size. FLOPs and bytes are per call and
// come from the napkin math beside each benchmark: useful FLOPs (a multiply-add
// is 2), and the bytes a call must move to or from memory if nothing were
// cached (compulsory traffic; the kernel may move more).
struct Result {
  std::string suite;  // "cpu" or "gpu"
  std::string kernel;
  int64_t size = 0;       // points (rows) per call
  double items = 0;       // work items per call (rows, point-steps, parameters)
  std::string item_unit;  // what an item is
  double flops = 0, bytes = 0;
  int sets = 1;                 // input sets rotated through
  std::vector<double> seconds;  // every timed run
  std::string skipped;          // why the case did not run; empty when it ran

  // This row's compute ceiling when it is not the suite's (tensor-core rows: the
  // cuBLAS GEMM of the same precision); 0: the suite's.
  double ceiling_gflops = 0;

  double median() const;
  double compute_ceiling(const Ceilings& c) const { return ceiling_gflops > 0 ? ceiling_gflops : c.compute_gflops; }
  double gflops() const { return flops / median() / 1e9; }
  double gbs() const { return bytes / median() / 1e9; }
  // The time the ceilings allow: the larger of compute and memory time.
  double floor_seconds(const Ceilings& c) const;
  bool memory_bound(const Ceilings& c) const { return bytes / c.bandwidth_gbs > flops / c.compute_gflops; }
  nlohmann::json to_json(const Ceilings& c) const;
};

// Prints the rows of one suite under a header naming its ceilings.
void print_table(std::FILE* out, const std::string& title, const Ceilings& c, const std::vector<Result>& rows);

// A buffer of floats left uninitialized (the caller fills it, on the threads
// that will use it: first touch places the pages).
struct Floats {
  std::unique_ptr<float[]> p;
  std::size_t n = 0;
  explicit Floats(std::size_t count = 0) : p(count ? new float[count] : nullptr), n(count) {}
  float* data() const { return p.get(); }
};

// Values of magnitude in [0.05, 1] x scale with random signs (all positive with
// `positive`): inputs that are never zero, so no kernel meets an easy case
// (zero operands, denormals, all-equal rows). Parallel, deterministic in `seed`.
void fill_random(float* p, std::size_t n, uint64_t seed, float scale = 1.f, bool positive = false);

// How many input sets of `set_bytes` to rotate through so that their sum
// exceeds `cache_bytes` (1 when one set already does), capped at 1024.
int rotation_sets(double set_bytes, double cache_bytes, int override_sets);

// The median of a sample (copied).
double median_of(std::vector<double> v);

// Repeated timings of one job summed up: the median, and the spread as the
// full range (min..max). The range, not the interquartile range: with the
// three to five rounds an end-to-end run affords, quartiles would be
// interpolated between the same few values and say less than the extremes.
struct Spread {
  int runs = 0;
  double median = 0, min = 0, max = 0;
};
Spread spread_of(const std::vector<double>& seconds);

// A peer's time over ours, each the median of its rounds (0 when either has none).
double ratio_of_medians(const std::vector<double>& peer_seconds, const std::vector<double>& ours_seconds);

// The same ratio round by round, peer_seconds[i] / ours_seconds[i], over the
// rounds both have: runs of the same round run within minutes of each other,
// so a slow phase of a shared machine tends to fall on both, and the range of
// these ratios says how far one round's ratio can stray from the median's.
std::vector<double> same_round_ratios(const std::vector<double>& peer_seconds, const std::vector<double>& ours_seconds);

// The order of an interleaved run of `variants` jobs, `rounds` times each:
// round by round, every variant once per round in the order given (ours,
// peer A, peer B, ours, peer A, ...), so that a machine whose speed drifts
// from one minute to the next slows every variant alike rather than the ones
// that happened to run last.
struct Slot {
  int round = 0, variant = 0;
};
std::vector<Slot> interleaved_order(int variants, int rounds);

// Warm-up calls (up to o.warmup, fewer once they have taken min_time: one
// call of a second warms as well as two), then timed calls until both
// min_reps and min_time are met (or max_reps), each inside NVTX ranges named
// by phase ("warmup", "timed") and by case, for Nsight. run(i) runs call i (i
// counts warm-up calls too, so that inputs rotate from the first call) and
// returns its seconds.
// Ceilings pass timed_phase "ceiling", so that a profiler filtering on
// "timed" sees the kernels alone.
template <class Run>
std::vector<double> repeat(const Options& o, const std::string& name, Run&& run, const char* timed_phase = "timed") {
  int i = 0;
  {
    NvtxRange phase("warmup");
    NvtxRange what(name.c_str());
    for (double spent = 0; i < o.warmup && (i == 0 || spent < o.min_time); ++i) spent += run(i);
  }
  std::vector<double> times;
  double total = 0;
  NvtxRange phase(timed_phase);
  NvtxRange what(name.c_str());
  while (int(times.size()) < o.max_reps && (int(times.size()) < o.min_reps || total < o.min_time)) {
    times.push_back(run(i++));
    total += times.back();
  }
  return times;
}

// "1.23 ms" etc.
std::string format_seconds(double s);

}  // namespace ddpm::bench
