// ddpm_bench: the kernel microbenchmarks and the end-to-end jobs.
//
// Kernels (--only kernels): every CUDA kernel and the fused sampler, timed with
// CUDA events (bench/gpu_kernels.cpp), or, on a machine without a GPU, every
// kernel of the CPU backend one by one (bench/cpu_kernels.cpp); several sizes,
// the median of many runs after warm-up, fresh random inputs, each kernel
// checked against the CPU reference first, and each rate set against ceilings
// measured in the same run.
//
// End to end (--only e2e): the seed's two jobs on the CPU backend, beside the
// PyTorch peer (bench/peer/ddpm_torch.py) run in the same process tree, and
// against this machine's FMA peak measured in the same run; and the GPU
// sampler through its driver where a GPU exists.
//
// Napkin math (FLOPs count a multiply-add as 2):
//   forward per point      2 (66*128 + 128*128 + 128*128 + 128*2)      =  82,944
//   training per point     forward + dW (same again) + dX of layers 1..3
//                          2 (41,472 + 41,472 + 33,024)                 = 231,936
//   training step (512)    118.8 MFLOP;  5000 steps: 593.8 GFLOP
//   sampling per point-step (layer-0 time term hoisted out)
//                          2 (2*128 + 128*128*2 + 128*2)                =  66,560
//   10,000 points x 500 steps: 332.8 GFLOP
// Each kernel's own napkin math is beside its benchmark.
#include <cuda_runtime_api.h>
#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/suites.hpp"
#include "ddpm/config.hpp"
#include "ddpm/error.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/gpu/gpu_sampler.hpp"
#include "host/io/samples_io.hpp"
#if defined(DDPM_BENCH_CUBLAS)
#include "host/gpu/unfused_sampler.hpp"
#endif
#include "host/tools/cli.hpp"
#include "host/tools/device.hpp"

namespace {

using namespace ddpm;
using bench::measure_fma_peak_gflops;
using Clock = std::chrono::steady_clock;

constexpr double kTrainFlopPerPoint = 231936.0;
constexpr double kSampleFlopPerPointStep = 66560.0;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Row {
  std::string what, impl;
  double secs, rate, gflops;
  std::string rate_unit;
};

nlohmann::json run_peer(const std::string& what, int threads, int64_t steps, int64_t n) {
  const std::string json_path = "/tmp/ddpm_bench_peer_" + std::to_string(getpid()) + ".json";
  const std::string cmd = "/usr/bin/python3 " + std::string(DDPM_SOURCE_DIR) + "/bench/peer/ddpm_torch.py --what " +
                          what + " --threads " + std::to_string(threads) + " --steps " + std::to_string(steps) +
                          " --n " + std::to_string(n) + " --json " + json_path + " > /dev/null";
  if (std::system(cmd.c_str()) != 0) return nullptr;
  std::ifstream f(json_path);
  nlohmann::json j = nlohmann::json::parse(f, nullptr, false);
  std::remove(json_path.c_str());
  return j.is_discarded() ? nullptr : j;
}

// FP32 FMA peak of device 0 from its SM count and clock: 128 FP32 lanes per SM
// (Ampere GA10x, Ada, Hopper; GA100 has 64, so this overstates the A100's peak 2x).
double gpu_fp32_peak_tflops() {
  int sms = 0, khz = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0);
  return double(sms) * khz * 1e3 * 128 * 2 / 1e12;
}

// The fused sampler on the GPU through its driver (uploads, chunks, copies
// back), in each precision: n points x T steps, after a small warm-up run.
// With samples_dir, each job's points go to samples_dir/<file>.npy (fused_fp32,
// fused_tf32, fused_bf16, unfused_fp32) for ddpm_eval to judge.
nlohmann::json bench_gpu_sampler(std::FILE* tty, const Schedule& sched, const std::vector<float>& params, int64_t n,
                                 const std::string& samples_dir) {
  const double peak = gpu_fp32_peak_tflops();
  std::vector<float> xy(2 * std::size_t(n));
  nlohmann::json rows = nlohmann::json::array();
  std::fprintf(tty, "\n%-26s %10s %14s %10s %12s\n", "GPU job (tool's driver)", "wall s", "pt-steps/s", "TFLOP/s",
               "% FP32 peak");
  const std::string size = std::to_string(n) + " x " + std::to_string(sched.T);
  // make() builds a sampler (throwing ddpm::Error where this GPU cannot run it:
  // said, then skipped); one small warm-up run, then n points timed.
  auto time_job = [&](const std::string& job, const std::string& file, const char* precision, auto make) {
    try {
      auto sampler = make();
      sampler->sample(1, 0, std::min<int64_t>(n, 4096), xy.data());
      const auto t0 = Clock::now();
      sampler->sample(0, 0, n, xy.data());
      const double secs = seconds_since(t0);
      const double tflops = kSampleFlopPerPointStep * double(n) * sched.T / secs / 1e12;
      std::fprintf(tty, "%-26s %10.4f %14.4g %10.2f %11.1f%%\n", job.c_str(), secs, double(n) * sched.T / secs,
                   tflops, 100 * tflops / peak);
      rows.push_back({{"job", job}, {"precision", precision}, {"seconds", secs}, {"tflops", tflops}});
      if (!samples_dir.empty()) {
        io::SampleWriter w(samples_dir + "/" + file + ".npy", n);
        w.write(xy.data(), n);
        w.commit();
      }
    } catch (const Error& e) {
      std::fprintf(tty, "%-26s skipped: %s\n", job.c_str(), e.what());
      rows.push_back({{"job", job}, {"precision", precision}, {"skipped", e.what()}});
    }
  };
  for (const kernels::Precision p : {kernels::Precision::kFp32, kernels::Precision::kTf32, kernels::Precision::kBf16})
    time_job(std::string("fused ") + kernels::name_of(p) + " " + size, std::string("fused_") + kernels::name_of(p),
             kernels::name_of(p),
             [&] { return std::make_unique<gpu::GpuSampler>(params.data(), sched, SamplerConfig{}, p); });
#if defined(DDPM_BENCH_CUBLAS)
  // The baseline: the same chain step by step, SGEMMs on cuBLAS (host/gpu/unfused_sampler.*).
  time_job("unfused cuBLAS fp32 " + size, "unfused_fp32", "fp32",
           [&] { return std::make_unique<gpu::UnfusedSampler>(params.data(), sched); });
#endif
  return {{"rows", rows}, {"fp32_spec_peak_tflops", peak}};
}

// The kernel suite on `device` ("cpu" or "cuda"): the table on tty, the JSON returned.
nlohmann::json run_kernel_suite(std::FILE* tty, const bench::Options& o, const std::string& device, double fma_peak) {
  nlohmann::json j = {{"device", device}, {"rows", nlohmann::json::array()}};
  if (device == "cuda") {
    const bench::GpuSuite suite = bench::run_gpu_kernels(o);
    bench::print_table(
        tty, "GPU kernels: " + suite.info["name"].get<std::string>() + ", CUDA events, L2 flushed before each call",
        suite.ceilings, suite.rows);
    j["info"] = suite.info;
    j["ceilings"] = {{"compute_gflops", suite.ceilings.compute_gflops},
                     {"compute", suite.ceilings.compute_what},
                     {"bandwidth_gbs", suite.ceilings.bandwidth_gbs},
                     {"bandwidth", suite.ceilings.bandwidth_what}};
    for (const bench::Result& r : suite.rows) j["rows"].push_back(r.to_json(suite.ceilings));
    return j;
  }
  const bench::CpuBandwidth bw = bench::measure_cpu_bandwidth();
  bench::Ceilings c;
  c.compute_gflops = fma_peak;
  c.compute_what = "FMA peak, 12 AVX2 chains per thread";
  c.bandwidth_gbs = std::max(bw.copy_gbs, bw.triad_gbs);
  c.bandwidth_what = bw.triad_gbs >= bw.copy_gbs ? "STREAM triad" : "STREAM copy";
  const std::vector<bench::Result> rows = bench::run_cpu_kernels(o, c);
  const double peak_after = measure_fma_peak_gflops();
  bench::print_table(tty,
                     "CPU kernels: " + std::to_string(omp_get_max_threads()) + " threads, inputs rotated through " +
                         std::to_string(int(bench::cpu_rotation_bytes() / (1 << 20))) + " MB",
                     c, rows);
  // A shared machine's speed drifts: a peak that moved during the run says the fractions are approximate.
  if (std::abs(peak_after / fma_peak - 1) > 0.15)
    std::fprintf(tty,
                 "note: the FMA peak moved from %.1f to %.1f GFLOP/s during the run: the machine was not quiet, "
                 "the fractions are approximate\n",
                 fma_peak, peak_after);
  j["ceilings"] = {{"compute_gflops", c.compute_gflops},  {"compute", c.compute_what},
                   {"bandwidth_gbs", c.bandwidth_gbs},    {"bandwidth", c.bandwidth_what},
                   {"stream_copy_gbs", bw.copy_gbs},      {"stream_triad_gbs", bw.triad_gbs},
                   {"fma_peak_after_gflops", peak_after}, {"rotation_bytes", bench::cpu_rotation_bytes()}};
  j["threads"] = omp_get_max_threads();
  for (const bench::Result& r : rows) j["rows"].push_back(r.to_json(c));
  return j;
}

std::string utc_now() {
  char buf[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

// The seed's two jobs on the CPU backend (and the peer's, with --peer), then
// the GPU sampler through its driver where a GPU exists. Table on tty; the
// results into j.
void run_end_to_end(std::FILE* tty, int64_t steps, int64_t n, bool peer, bool have_gpu, int64_t gpu_n,
                    const std::string& samples_dir, double peak, nlohmann::json& j) {
  const Schedule sched = Schedule::linear();
  std::vector<Row> rows;

  cpu::TrainConfig cfg;
  cfg.steps = 20;  // warm-up
  cpu::TrainState warm = cpu::TrainState::fresh(1);
  cpu::train(sched, cfg, warm);
  cfg.steps = steps;
  cpu::TrainState st = cpu::TrainState::fresh(0);
  float last = 0;
  auto t0 = Clock::now();
  cpu::train(sched, cfg, st, [&](int64_t, float loss) { last = loss; });
  double secs = seconds_since(t0);
  rows.push_back({"train " + std::to_string(steps) + " x 512", "ddpm (cpu)", secs, steps / secs,
                  kTrainFlopPerPoint * 512 * steps / secs / 1e9, "steps/s"});
  std::fprintf(tty, "ddpm train: final loss %.4f\n", last);

  std::vector<float> xy(2 * std::size_t(n));
  t0 = Clock::now();
  cpu::sample(sched, st.params.data(), 0, 0, n, xy.data());
  secs = seconds_since(t0);
  rows.push_back({"sample " + std::to_string(n) + " x 500", "ddpm (cpu)", secs, n * 500.0 / secs,
                  kSampleFlopPerPointStep * n * 500 / secs / 1e9, "pt-steps/s"});

  if (peer) {
    for (int threads : {1, 2}) {
      const std::string impl = "pytorch " + std::to_string(threads) + "T";
      if (auto pj = run_peer("train", threads, steps, n); !pj.is_null()) {
        const double s = pj["train_seconds"];
        rows.push_back({rows[0].what, impl, s, steps / s, kTrainFlopPerPoint * 512 * steps / s / 1e9, "steps/s"});
      } else {
        std::fprintf(tty, "peer (train, %d threads) failed to run\n", threads);
      }
      if (auto pj = run_peer("sample", threads, steps, n); !pj.is_null()) {
        const double s = pj["sample_seconds"];
        rows.push_back(
            {rows[1].what, impl, s, n * 500.0 / s, kSampleFlopPerPointStep * n * 500 / s / 1e9, "pt-steps/s"});
      } else {
        std::fprintf(tty, "peer (sample, %d threads) failed to run\n", threads);
      }
    }
  }

  std::fprintf(tty, "\nEnd to end: threads %d, measured FP32 FMA peak %.1f GFLOP/s\n", omp_get_max_threads(), peak);
  std::fprintf(tty, "%-22s %-14s %10s %14s %10s %8s %12s\n", "job", "impl", "wall s", "rate", "GFLOP/s", "% peak",
               "ddpm speedup");
  j["fma_peak_gflops"] = peak;
  j["threads"] = omp_get_max_threads();
  j["rows"] = nlohmann::json::array();
  for (const Row& r : rows) {
    const Row& ours = r.what == rows[0].what ? rows[0] : rows[1];
    std::fprintf(tty, "%-22s %-14s %10.3f %10.4g %-3s %10.1f %7.1f%% %11.2fx\n", r.what.c_str(), r.impl.c_str(), r.secs,
                 r.rate, r.rate_unit == "steps/s" ? "/s" : "p/s", r.gflops, 100 * r.gflops / peak, r.secs / ours.secs);
    j["rows"].push_back({{"job", r.what},
                         {"impl", r.impl},
                         {"seconds", r.secs},
                         {"rate", r.rate},
                         {"rate_unit", r.rate_unit},
                         {"gflops", r.gflops},
                         {"fraction_of_peak", r.gflops / peak}});
  }
  if (have_gpu) j["gpu_sampler"] = bench_gpu_sampler(tty, sched, st.params, gpu_n, samples_dir);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t steps = kTrainSteps, n = 10000;
  bool peer = false;
  int64_t gpu_n = 1000000;
  std::string json_out, only = "all", device = "auto", samples_dir;
  bench::Options o;
  o.sizes = {512, 4096, 65536, 1 << 20};
  CLI::App app{
      "Benchmarks: every kernel (the GPU's, or the CPU backend's where there is no GPU) against ceilings "
      "measured in the same run; training and sampling end to end, beside the PyTorch peer",
      "ddpm_bench"};
  app.option_defaults()->always_capture_default();
  app.add_option("--only", only, "what to run: the kernel microbenchmarks, the end-to-end jobs, or all")
      ->check(CLI::IsMember({"all", "kernels", "e2e"}));
  app.add_option("--device", device,
                 "the kernels' suite: cuda (CUDA events), cpu (the CPU backend), auto (cuda where a GPU exists)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_option("--sizes", o.sizes, "kernels: points (rows) per call, comma-separated")
      ->delimiter(',')
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  app.add_option("--filter", o.filter, "kernels: only those whose name contains this");
  app.add_option("--warmup", o.warmup, "kernels: untimed calls first")->check(CLI::Range(0, 1000));
  app.add_option("--min-reps", o.min_reps, "kernels: timed calls, at least")->check(CLI::Range(1, 100000));
  app.add_option("--max-reps", o.max_reps, "kernels: timed calls, at most")->check(CLI::Range(1, 100000));
  app.add_option("--min-time", o.min_time, "kernels: seconds of timed calls per case, at least (within --max-reps)")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--max-run-seconds", o.max_run_seconds, "kernels: skip a case whose one call is estimated longer")
      ->check(CLI::Range(1e-3, 3600.0));
  app.add_option("--rotate", o.rotate, "CPU kernels: input sets rotated through (0: enough to overflow the caches)")
      ->check(CLI::Range(0, 1024));
  app.add_option("--gemm-n", o.gemm_n,
                 "GPU kernels: the cuBLAS ceiling GEMMs are n x n x n (0: 8192, or 4096 under 3 GiB free)")
      ->check(CLI::Range(0, 32768));
  app.add_option("--steps", steps, "end to end: training steps at batch 512")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  app.add_option("--n", n, "end to end: points to sample (500 steps each)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  app.add_flag("--peer", peer,
               "end to end: also run bench/peer/ddpm_torch.py (Debian's python3-torch) with 1 and 2 threads");
  app.add_option("--gpu-n", gpu_n, "end to end: points for the GPU sampler through its driver (where a GPU exists)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 32));
  app.add_option("--samples-dir", samples_dir,
                 "end to end: write each GPU job's samples there as <job>.npy (fused_fp32, fused_tf32, fused_bf16, "
                 "unfused_fp32), for ddpm_eval")
      ->check(CLI::ExistingDirectory);
  app.add_option(
         "--json", json_out,
         "also write the results as JSON to this file; without one (or '-'): JSON on stdout, the tables on stderr")
      ->expected(0, 1);
  return tools::run_tool("ddpm_bench", app, argc, argv, [&] {
    if (o.min_reps > o.max_reps) throw tools::UsageError("--min-reps must not exceed --max-reps");
    if (app.count("--json") && json_out.empty()) json_out = "-";  // --json without a file
    if (!json_out.empty() && json_out != "-") tools::check_writable(json_out);
    std::FILE* tty = json_out == "-" ? stderr : stdout;
    std::string reason;
    const bool have_gpu = tools::cuda_device_count(&reason) > 0;
    if (device == "cuda" && !have_gpu) throw Error("--device cuda: " + reason);
    const std::string kernels_on = device == "auto" ? (have_gpu ? "cuda" : "cpu") : device;
    if (!have_gpu)
      std::fprintf(tty, "ddpm_bench: no GPU (%s): timing the CPU backend%s\n", reason.c_str(),
                   only == "e2e" ? " only" : "'s kernels instead of the GPU's");
    nlohmann::json out = {{"date", utc_now()}};
    if (!have_gpu) out["no_gpu_reason"] = reason;
    // The CPU's FMA peak, for the CPU kernels and the end-to-end jobs.
    const bool need_peak = only != "kernels" || kernels_on == "cpu";
    const double peak = need_peak ? measure_fma_peak_gflops() : 0;
    if (only != "e2e") out["kernels"] = run_kernel_suite(tty, o, kernels_on, peak);
    if (only != "kernels") run_end_to_end(tty, steps, n, peer, have_gpu, gpu_n, samples_dir, peak, out);
    if (json_out == "-")
      std::cout << out.dump(2) << std::endl;
    else if (!json_out.empty())
      std::ofstream(json_out) << out.dump(2) << "\n";
  });
}
