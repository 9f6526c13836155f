// ddpm_bench: end-to-end CPU benchmarks of the seed's two jobs, beside the
// PyTorch peer (bench/peer/ddpm_torch.py) run in the same process tree, and
// against this machine's FMA peak measured in the same run.
//
// Napkin math (FLOPs count a multiply-add as 2):
//   forward per point      2 (66*128 + 128*128 + 128*128 + 128*2)      =  82,944
//   training per point     forward + dW (same again) + dX of layers 1..3
//                          2 (41,472 + 41,472 + 33,024)                 = 231,936
//   training step (512)    118.8 MFLOP;  5000 steps: 593.8 GFLOP
//   sampling per point-step (layer-0 time term hoisted out)
//                          2 (2*128 + 128*128*2 + 128*2)                =  66,560
//   10,000 points x 500 steps: 332.8 GFLOP
#include <cuda_runtime_api.h>
#include <immintrin.h>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <unistd.h>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ddpm/config.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/gpu/gpu_sampler.hpp"
#include "host/tools/cli.hpp"
#include "host/tools/device.hpp"

namespace {

using namespace ddpm;
using Clock = std::chrono::steady_clock;

constexpr double kTrainFlopPerPoint = 231936.0;
constexpr double kSampleFlopPerPointStep = 66560.0;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Peak FP32 FMA rate of all threads: 12 independent AVX2 FMA chains per thread.
double measure_fma_peak_gflops() {
  const long iters = 20'000'000;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    float sink = 0;
#pragma omp parallel reduction(+ : sink)
    {
      __m256 acc[12];
      for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(float(i + omp_get_thread_num()));
      const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
      for (long k = 0; k < iters; ++k)
        for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
      __m256 s = acc[0];
      for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
      alignas(32) float v[8];
      _mm256_store_ps(v, s);
      sink += v[0];
    }
    const double secs = seconds_since(t0);
    if (sink == 12345.f) std::puts("");
    best = std::max(best, double(iters) * 12 * 16 * omp_get_max_threads() / secs / 1e9);
  }
  return best;
}

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

// The fused sampler on the GPU: n points x T steps, after a small warm-up run.
void bench_gpu_sampler(const Schedule& sched, const std::vector<float>& params, int64_t n) {
  gpu::GpuSampler sampler(params.data(), sched);
  std::vector<float> xy(2 * std::size_t(n));
  sampler.sample(1, 0, std::min<int64_t>(n, 4096), xy.data());
  const auto t0 = Clock::now();
  sampler.sample(0, 0, n, xy.data());
  const double secs = seconds_since(t0);
  const double tflops = kSampleFlopPerPointStep * double(n) * sched.T / secs / 1e12;
  const double peak = gpu_fp32_peak_tflops();
  std::printf("\n%-26s %10s %14s %10s %12s\n", "GPU job", "wall s", "pt-steps/s", "TFLOP/s", "% FP32 peak");
  std::printf("%-26s %10.4f %14.4g %10.2f %11.1f%%\n", ("fused fp32 " + std::to_string(n) + " x " +
              std::to_string(sched.T)).c_str(), secs, double(n) * sched.T / secs, tflops, 100 * tflops / peak);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t steps = kTrainSteps, n = 10000;
  bool peer = false;
  int64_t gpu_n = 1000000;
  std::string json_out;
  CLI::App app{"CPU benchmarks: training and sampling, beside the PyTorch peer", "ddpm_bench"};
  app.option_defaults()->always_capture_default();
  app.add_option("--steps", steps, "training steps at batch 512")->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  app.add_option("--n", n, "points to sample (500 steps each)")->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  app.add_flag("--peer", peer, "also run bench/peer/ddpm_torch.py (Debian's python3-torch) with 1 and 2 threads");
  app.add_option("--json", json_out, "also write the results as JSON");
  app.add_option("--gpu-n", gpu_n, "points for the GPU sampler benchmark (where a GPU exists)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 32));
  return tools::run_tool("ddpm_bench", app, argc, argv, [&] {
    std::string reason;
    const bool have_gpu = tools::cuda_device_count(&reason) > 0;
    if (!have_gpu) std::printf("%s: timing the CPU backend only\n", reason.c_str());
    const double peak = measure_fma_peak_gflops();
    std::printf("threads %d, measured FP32 FMA peak %.1f GFLOP/s\n", omp_get_max_threads(), peak);
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
    std::printf("ddpm train: final loss %.4f\n", last);

    std::vector<float> xy(2 * std::size_t(n));
    t0 = Clock::now();
    cpu::sample(sched, st.params.data(), 0, 0, n, xy.data());
    secs = seconds_since(t0);
    rows.push_back({"sample " + std::to_string(n) + " x 500", "ddpm (cpu)", secs, n * 500.0 / secs,
                    kSampleFlopPerPointStep * n * 500 / secs / 1e9, "pt-steps/s"});

    if (peer) {
      for (int threads : {1, 2}) {
        const std::string impl = "pytorch " + std::to_string(threads) + "T";
        if (auto j = run_peer("train", threads, steps, n); !j.is_null()) {
          const double s = j["train_seconds"];
          rows.push_back({rows[0].what, impl, s, steps / s, kTrainFlopPerPoint * 512 * steps / s / 1e9, "steps/s"});
        } else {
          std::printf("peer (train, %d threads) failed to run\n", threads);
        }
        if (auto j = run_peer("sample", threads, steps, n); !j.is_null()) {
          const double s = j["sample_seconds"];
          rows.push_back({rows[1].what, impl, s, n * 500.0 / s, kSampleFlopPerPointStep * n * 500 / s / 1e9,
                          "pt-steps/s"});
        } else {
          std::printf("peer (sample, %d threads) failed to run\n", threads);
        }
      }
    }

    std::printf("\n%-22s %-14s %10s %14s %10s %8s %12s\n", "job", "impl", "wall s", "rate", "GFLOP/s", "% peak",
                "ddpm speedup");
    nlohmann::json out = {{"fma_peak_gflops", peak}, {"threads", omp_get_max_threads()}, {"rows", nlohmann::json::array()}};
    for (const Row& r : rows) {
      const Row& ours = r.what == rows[0].what ? rows[0] : rows[1];
      std::printf("%-22s %-14s %10.3f %10.4g %-3s %10.1f %7.1f%% %11.2fx\n", r.what.c_str(), r.impl.c_str(), r.secs,
                  r.rate, r.rate_unit == "steps/s" ? "/s" : "p/s", r.gflops, 100 * r.gflops / peak, r.secs / ours.secs);
      out["rows"].push_back({{"job", r.what}, {"impl", r.impl}, {"seconds", r.secs}, {"rate", r.rate},
                             {"rate_unit", r.rate_unit}, {"gflops", r.gflops}, {"fraction_of_peak", r.gflops / peak}});
    }
    if (!json_out.empty()) std::ofstream(json_out) << out.dump(2) << "\n";
    if (have_gpu) bench_gpu_sampler(sched, st.params, gpu_n);
  });
}
