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
// peers (bench/peer: Debian's PyTorch 1.13, and PyTorch 2 and JAX from the
// virtual environment of setup_peers.sh) run in the same process tree, and
// against this machine's FMA peak measured in the same run; --repeat rounds
// of each job, ours and the peers interleaved round by round, reported as the
// median and min..max of the rounds and as ratios of medians; and the GPU
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
//   with the x encoding (--x-embedding sinusoidal), layer 0's x part is a
//   K = 128 product:  2 (128*128 + 128*128*2 + 128*2)                   =  98,816
// Each kernel's own napkin math is beside its benchmark.
#include <cuda_runtime_api.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/suites.hpp"
#include "ddpm/config.hpp"
#include "ddpm/error.hpp"
#include "ddpm/params.hpp"
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

// Sampling FLOPs per point-step of a model variant (the napkin math above):
// layer 0's x part (the time term hoisted), the two hidden layers, the output.
constexpr double sample_flop_per_point_step(const NetLayout& net) {
  return 2.0 * (net.x_inputs * kHidden + 2 * kHidden * kHidden + kHidden * kDataDim);
}
constexpr double kSampleFlopPerPointStep = sample_flop_per_point_step(kSeedNet);
static_assert(kSampleFlopPerPointStep == 66560.0 && sample_flop_per_point_step(kXEmbNet) == 98816.0);

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

template <class T>
std::string format(const char* fmt, T v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

struct Row {
  std::string what, impl;
  double secs, rate, gflops;
  std::string rate_unit;
  double peak = 0;  // the ceiling of % peak: this row's own (bf16) where set, else the widest FP32 FMA peak
};

// Single quotes for /bin/sh: a path may hold spaces.
std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// One way of running a peer: an interpreter, a script, and the flags that make the variant.
struct PeerVariant {
  std::string peer;     // "torch-debian", "torch-pypi", "jax": the summary keeps the best run of each
  std::string variant;  // "eager", "fused Adam", "compile", "jit"
  std::string python, script, args;
  bool train = true, sample = true;
};

// Debian's torch 1.13 under /usr/bin/python3, then PyTorch 2 and JAX from the virtual
// environment of bench/peer/setup_peers.sh.
std::vector<PeerVariant> peer_variants(const std::string& venv) {
  const std::string dir = std::string(DDPM_SOURCE_DIR) + "/bench/peer/";
  const std::string py = venv + "/bin/python";
  return {
      {"torch-debian", "eager", "/usr/bin/python3", dir + "ddpm_torch.py", "", true, true},
      {"torch-pypi", "eager", py, dir + "ddpm_torch.py", "", true, true},
      // Sampling has no optimizer: its run would be the eager one again.
      {"torch-pypi", "fused Adam", py, dir + "ddpm_torch.py", "--adam fused", true, false},
      // The compiled model with the fused optimizer: the strongest training torch offers on the CPU.
      {"torch-pypi", "compile", py, dir + "ddpm_torch.py", "--compile default --adam fused", true, true},
      {"jax", "jit", py, dir + "ddpm_jax.py", "", true, true},
  };
}

// Whether `python` can import `module` (the peers' scripts need it).
bool can_import(const std::string& python, const std::string& module) {
  return std::system((shell_quote(python) + " -c 'import " + module + "' > /dev/null 2>&1").c_str()) == 0;
}

// Runs one peer job; its JSON, or null with the reason (the script's last line on stderr) in *error.
nlohmann::json run_peer(const PeerVariant& v, const std::string& what, int threads, int64_t steps, int64_t n,
                        std::string* error) {
  const std::string base = "/tmp/ddpm_bench_peer_" + std::to_string(getpid());
  const std::string json_path = base + ".json", err_path = base + ".err";
  // --threads is the whole thread setting: nothing inherited from the caller's environment overrides it.
  const std::string cmd = "env -u OMP_NUM_THREADS -u OPENBLAS_NUM_THREADS -u XLA_FLAGS " + shell_quote(v.python) + " " +
                          shell_quote(v.script) + " " + v.args + " --what " + what + " --threads " +
                          std::to_string(threads) + " --steps " + std::to_string(steps) + " --n " + std::to_string(n) +
                          " --json " + json_path + " > /dev/null 2> " + err_path;
  const int rc = std::system(cmd.c_str());
  std::string last, line;
  for (std::ifstream e(err_path); std::getline(e, line);)
    if (!line.empty()) last = line;
  std::remove(err_path.c_str());
  std::ifstream f(json_path);
  nlohmann::json j = rc == 0 ? nlohmann::json::parse(f, nullptr, false) : nlohmann::json();
  std::remove(json_path.c_str());
  if (j.is_discarded() || j.is_null()) {
    *error = last.empty() ? "exit status " + std::to_string(rc) : last;
    return nullptr;
  }
  return j;
}

// FP32 FMA peak of device 0 from its SM count and clock: 128 FP32 lanes per SM
// (Ampere GA10x, Ada, Hopper; GA100 has 64, so this overstates the A100's peak 2x).
double gpu_fp32_peak_tflops() {
  int sms = 0, khz = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0);
  return double(sms) * khz * 1e3 * 128 * 2 / 1e12;
}

// The GPU sampler jobs of the end-to-end run (--gpu-n, --samples-dir, --gpu-jobs).
struct GpuJobs {
  int64_t n = 1000000;
  std::string samples_dir;
  std::vector<std::string> only;  // names containing one of these; empty: every job
  bool wants(const std::string& job) const {
    return only.empty() ||
           std::any_of(only.begin(), only.end(), [&](const std::string& s) { return job.find(s) != std::string::npos; });
  }
};

// The fused sampler on the GPU through its driver (uploads, chunks, copies
// back), in each precision: n points x T steps, after a small warm-up run;
// then the same jobs for the x encoding's model (fresh weights: the time does
// not depend on them), labelled fused-xemb / unfused-xemb.
// With samples_dir, each job of the seed's trained model writes its points to
// samples_dir/<file>.npy (fused_fp32, fused_tf32, fused_bf16, unfused_fp32) for
// ddpm_eval to judge.
nlohmann::json bench_gpu_sampler(std::FILE* tty, const Schedule& sched, const std::vector<float>& params,
                                 const GpuJobs& jobs) {
  const int64_t n = jobs.n;
  const std::string& samples_dir = jobs.samples_dir;
  const double peak = gpu_fp32_peak_tflops();
  std::vector<float> xy(2 * std::size_t(n));
  nlohmann::json rows = nlohmann::json::array();
  std::fprintf(tty, "\n%-31s %10s %14s %10s %12s\n", "GPU job (tool's driver)", "wall s", "pt-steps/s", "TFLOP/s",
               "% FP32 peak");
  const std::string size = std::to_string(n) + " x " + std::to_string(sched.T);
  // make() builds a sampler (throwing ddpm::Error where this GPU cannot run it:
  // said, then skipped); one small warm-up run, then n points timed. An empty
  // file: the samples are not kept.
  auto time_job = [&](const std::string& job, const std::string& file, const char* precision, double flop_per_step,
                      auto make) {
    if (!jobs.wants(job)) return;
    try {
      auto sampler = make();
      sampler->sample(1, 0, std::min<int64_t>(n, 4096), xy.data());
      const auto t0 = Clock::now();
      sampler->sample(0, 0, n, xy.data());
      const double secs = seconds_since(t0);
      const double tflops = flop_per_step * double(n) * sched.T / secs / 1e12;
      std::fprintf(tty, "%-31s %10.4f %14.4g %10.2f %11.1f%%\n", job.c_str(), secs, double(n) * sched.T / secs,
                   tflops, 100 * tflops / peak);
      rows.push_back({{"job", job}, {"precision", precision}, {"seconds", secs}, {"tflops", tflops}});
      if (!samples_dir.empty() && !file.empty()) {
        io::SampleWriter w(samples_dir + "/" + file + ".npy", n);
        w.write(xy.data(), n);
        w.commit();
      }
    } catch (const Error& e) {
      std::fprintf(tty, "%-26s skipped: %s\n", job.c_str(), e.what());
      rows.push_back({{"job", job}, {"precision", precision}, {"skipped", e.what()}});
    }
  };
  // The seed's trained model (its samples kept), then the x encoding's with fresh weights.
  const ModelConfig xemb{XEmbedding::kSinusoidal};
  const std::vector<float> xemb_params = cpu::init_params(0, xemb);
  struct Model {
    const char* tag;  // job names: "fused<tag> fp32 ...", "unfused<tag> cuBLAS fp32 ..."
    ModelConfig config;
    const float* weights;
    bool keep_samples;
  };
  const Model models[] = {{"", ModelConfig{}, params.data(), true}, {"-xemb", xemb, xemb_params.data(), false}};
  for (const Model& m : models) {
    const double flop = sample_flop_per_point_step(m.config.net());
    for (const kernels::Precision p :
         {kernels::Precision::kFp32, kernels::Precision::kTf32, kernels::Precision::kBf16})
      time_job(std::string("fused") + m.tag + " " + kernels::name_of(p) + " " + size,
               m.keep_samples ? std::string("fused_") + kernels::name_of(p) : "", kernels::name_of(p), flop, [&] {
                 return std::make_unique<gpu::GpuSampler>(m.weights, sched, SamplerConfig{}, p,
                                                          gpu::GpuSampler::kDefaultChunk, m.config);
               });
#if defined(DDPM_BENCH_CUBLAS)
    // The baseline: the same chain step by step, SGEMMs on cuBLAS (host/gpu/unfused_sampler.*);
    // where cuBLAS cannot be loaded, its constructor throws the reason and the row says it.
    time_job(std::string("unfused") + m.tag + " cuBLAS fp32 " + size, m.keep_samples ? "unfused_fp32" : "", "fp32",
             flop, [&] {
               return std::make_unique<gpu::UnfusedSampler>(m.weights, sched, SamplerConfig{},
                                                            gpu::UnfusedSampler::kDefaultChunk, m.config);
             });
#endif
  }
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
  c.compute_what = "FP32 FMA peak of the widest build, 12 chains per thread; each row against its own build's";
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

// Which peers can run here: the variants whose interpreter imports what they need, and
// one line for each peer that cannot, saying how to get it.
std::vector<PeerVariant> available_peers(std::FILE* tty, const std::string& venv,
                                         const std::vector<std::string>& wanted, nlohmann::json& skipped) {
  auto wants = [&](const char* peer) { return std::find(wanted.begin(), wanted.end(), peer) != wanted.end(); };
  const std::string py = venv + "/bin/python", setup = "bench/peer/setup_peers.sh --venv " + shell_quote(venv);
  auto skip = [&](const std::string& why) {
    std::fprintf(tty, "peer: %s\n", why.c_str());
    skipped.push_back(why);
  };
  const bool debian = wants("torch-debian") && can_import("/usr/bin/python3", "torch");
  if (wants("torch-debian") && !debian)
    skip("Debian's PyTorch skipped: /usr/bin/python3 cannot import torch (apt-get install python3-torch)");
  bool torch2 = false, jax = false;
  if (!wants("torch-pypi") && !wants("jax")) {
    // Neither is asked for (--peers): the environment is not looked at.
  } else if (access(py.c_str(), X_OK) != 0) {
    const std::string which = wants("torch-pypi") && wants("jax") ? "PyTorch 2 and JAX"
                              : wants("jax")                      ? "JAX"
                                                                  : "PyTorch 2";
    skip(which + " skipped: no virtual environment at " + venv + " (make it with " + setup + ")");
  } else {
    torch2 = wants("torch-pypi") && can_import(py, "torch");
    jax = wants("jax") && can_import(py, "jax");
    if (wants("torch-pypi") && !torch2) skip("PyTorch 2 skipped: " + py + " cannot import torch (run " + setup + ")");
    if (wants("jax") && !jax) skip("JAX skipped: " + py + " cannot import jax (run " + setup + ")");
  }
  std::vector<PeerVariant> out;
  for (const PeerVariant& v : peer_variants(venv))
    if (v.peer == "torch-debian" ? debian : v.peer == "torch-pypi" ? torch2 : jax) out.push_back(v);
  return out;
}

// One variant of an end-to-end job, timed once per round: ours in one build
// (and precision), or one peer variant at one thread count.
struct E2eVariant {
  using RunOnce = std::function<double(int round, std::string* error)>;
  E2eVariant(std::string job_, const std::string& key_, std::string peer_, double peak_, RunOnce run_)
      : job(std::move(job_)), key(key_), impl(key_), peer(std::move(peer_)), peak(peak_), run(std::move(run_)) {}
  std::string job;   // train_job or sample_job
  std::string key;   // stable across rounds: "ddpm cpu avx512 bf16", "torch-pypi compile 1T"
  std::string impl;  // the tables' label; a peer's gains its version from its first run
  std::string peer;  // empty for ours, else PeerVariant::peer
  double peak = 0;   // Row::peak
  // One timed run: its seconds, or a negative number after writing the reason to *error.
  RunOnce run;
  std::vector<double> seconds;                 // one per round, in round order, until a run fails
  std::string error;                           // the failure that ended it: a failing peer is not run again
  nlohmann::json compile_seconds, final_loss;  // a peer's, from its latest run
};

// The seed's two jobs on the CPU backend in each build it has (and every peer
// variant at 1 and 2 threads, with --peer), `repeat` rounds of each job, each
// round running every variant once in the same order (bench::interleaved_order);
// then the GPU sampler through its driver where a GPU exists. Tables on tty;
// the results into j.
void run_end_to_end(std::FILE* tty, int64_t steps, int64_t n, int repeat, bool peer, const std::string& peer_venv,
                    const std::vector<std::string>& peer_names, bool have_gpu, const GpuJobs& gpu_jobs, double peak,
                    nlohmann::json& j) {
  const Schedule sched = Schedule::linear();
  const std::string train_job = "train " + std::to_string(steps) + " x 512";
  const std::string sample_job = "sample " + std::to_string(n) + " x 500";
  auto row_for = [&](const std::string& job, const std::string& impl, double s) {
    return job == train_job
               ? Row{job, impl, s, steps / s, kTrainFlopPerPoint * 512 * steps / s / 1e9, "steps/s"}
               : Row{job, impl, s, n * 500.0 / s, kSampleFlopPerPointStep * n * 500 / s / 1e9, "pt-steps/s"};
  };

  // Ours: the build the CPU picks by default first (the reference of every
  // time/ours), then the other builds it has, and the bf16 sampler where it runs.
  const bench::FmaPeaks peaks = bench::measure_fma_peaks();
  const cpu::CpuIsa default_isa = cpu::active_cpu_isa();
  std::vector<cpu::CpuIsa> isas = {default_isa};
  for (const cpu::CpuIsa isa : {cpu::CpuIsa::kAvx512, cpu::CpuIsa::kAvx2})
    if (isa != default_isa && cpu::cpu_supports(isa)) isas.push_back(isa);
  cpu::TrainState st;  // the default build's trained weights (round 1), which every sampler run uses
  std::vector<float> xy(2 * std::size_t(n));
  std::vector<E2eVariant> train_variants, sample_variants;
  for (const cpu::CpuIsa isa : isas) {
    const std::string impl = std::string("ddpm cpu ") + cpu::name_of(isa);
    train_variants.push_back({train_job, impl, "", 0, [&, isa, impl](int round, std::string*) {
                                cpu::select_cpu_isa(cpu::name_of(isa));
                                cpu::TrainConfig cfg;
                                cfg.steps = 20;  // warm-up: code, the thread pool, the caches after a peer's run
                                cpu::TrainState warm = cpu::TrainState::fresh(1);
                                cpu::train(sched, cfg, warm);
                                cfg.steps = steps;
                                cpu::TrainState trained = cpu::TrainState::fresh(0);
                                float last = 0;
                                const auto t0 = Clock::now();
                                cpu::train(sched, cfg, trained, [&](int64_t, float loss) { last = loss; });
                                const double secs = seconds_since(t0);
                                if (round == 0) std::fprintf(tty, "%s train: final loss %.4f\n", impl.c_str(), last);
                                if (round == 0 && isa == default_isa) st = std::move(trained);
                                return secs;
                              }});
    std::vector<cpu::CpuPrecision> precisions = {cpu::CpuPrecision::kFp32};
    if (isa == cpu::CpuIsa::kAvx512 && cpu::cpu_supports_bf16()) precisions.push_back(cpu::CpuPrecision::kBf16);
    for (const cpu::CpuPrecision precision : precisions) {
      const bool bf16 = precision == cpu::CpuPrecision::kBf16;
      const std::string label = bf16 ? impl + " bf16" : impl;
      // Warm-up: one 48-point tile per thread through the whole chain.
      const int64_t warm_n = std::min<int64_t>(n, 48 * omp_get_max_threads());
      sample_variants.push_back(
          {sample_job, label, "", bf16 ? peaks.bf16 : 0, [&, isa, precision, warm_n](int, std::string*) {
             cpu::select_cpu_isa(cpu::name_of(isa));
             cpu::sample(sched, st.params.data(), 1, 0, warm_n, xy.data(), {}, precision);
             const auto t0 = Clock::now();
             cpu::sample(sched, st.params.data(), 0, 0, n, xy.data(), {}, precision);
             return seconds_since(t0);
           }});
    }
  }

  // The peers: each variant at 1 and 2 threads, after ours in every round.
  nlohmann::json runs = nlohmann::json::array(), skipped = nlohmann::json::array();
  if (peer) {
    for (const PeerVariant& v : available_peers(tty, peer_venv, peer_names, skipped))
      for (int threads : {1, 2})
        for (const std::string what : {"train", "sample"}) {
          if (!(what == "train" ? v.train : v.sample)) continue;
          const bool train = what == "train";
          const std::string key = v.peer + " " + v.variant + " " + std::to_string(threads) + "T";
          std::vector<E2eVariant>& list = train ? train_variants : sample_variants;
          list.push_back({train ? train_job : sample_job, key, v.peer, 0, nullptr});
          // By index: the vector grows while the rest of the variants are added.
          std::vector<E2eVariant>* const owner = &list;
          const std::size_t index = list.size() - 1;
          list.back().run = [&, v, what, threads, train, owner, index](int round, std::string* error) -> double {
            E2eVariant& me = (*owner)[index];
            nlohmann::json run = {{"peer", v.peer}, {"variant", v.variant}, {"job", what},   {"threads", threads},
                                  {"round", round}, {"python", v.python},   {"args", v.args}};
            const nlohmann::json pj = run_peer(v, what, threads, steps, n, error);
            if (pj.is_null()) {
              run["error"] = *error;
              runs.push_back(run);
              return -1;
            }
            // "torch 2.15.0", "torch 1.13.0a0", "jax 0.10.2": the version, without a local tag like +cu132.
            std::string version = pj.value(v.peer == "jax" ? "jax_version" : "torch_version", "?");
            version = version.substr(0, version.find('+'));
            // A torch without a fused CPU Adam runs foreach instead: the label says what ran.
            const std::string adam = pj.value("adam", "");
            const std::string variant = train && v.args.find("--adam fused") != std::string::npos && adam != "fused"
                                            ? v.variant + " (" + adam + ")"
                                            : v.variant;
            me.impl =
                (v.peer == "jax" ? "jax " : "torch ") + version + " " + variant + " " + std::to_string(threads) + "T";
            me.compile_seconds = pj.value("compile_seconds", nlohmann::json());
            me.final_loss = train ? pj.value("final_loss", nlohmann::json()) : nlohmann::json();
            const nlohmann::json secs = pj.value(train ? "train_seconds" : "sample_seconds", nlohmann::json());
            if (!secs.is_number()) {
              *error = std::string("its JSON has no ") + (train ? "train_seconds" : "sample_seconds");
              run["error"] = *error;
              runs.push_back(run);
              return -1;
            }
            const Row r = row_for(me.job, me.impl, secs.get<double>());
            run["impl"] = r.impl;
            run["seconds"] = r.secs;
            run["gflops"] = r.gflops;
            run["fraction_of_peak"] = r.gflops / peak;
            run["report"] = pj;
            runs.push_back(run);
            return r.secs;
          };
        }
  }

  // Round by round, every variant once per round (a failed one drops out).
  nlohmann::json order = nlohmann::json::array();
  for (std::vector<E2eVariant>* list : {&train_variants, &sample_variants}) {
    for (const bench::Slot& slot : bench::interleaved_order(int(list->size()), repeat)) {
      E2eVariant& v = (*list)[std::size_t(slot.variant)];
      if (!v.error.empty()) continue;
      std::string error;
      const double secs = v.run(slot.round, &error);
      order.push_back({{"job", v.job}, {"round", slot.round + 1}, {"variant", v.key}});
      if (secs < 0) {
        v.error = error;
        order.back()["error"] = error;
        std::fprintf(tty, "round %d/%d %s: %s failed: %s\n", slot.round + 1, repeat, v.job.c_str(), v.key.c_str(),
                     error.c_str());
        continue;
      }
      v.seconds.push_back(secs);
      std::fprintf(tty, "round %d/%d %s: %s %.3f s\n", slot.round + 1, repeat, v.job.c_str(), v.impl.c_str(), secs);
      std::fflush(tty);  // a full run takes many minutes: its progress shows as it goes, even into a file
    }
  }
  cpu::select_cpu_isa(cpu::name_of(default_isa));

  // Each variant's row: its median's time, rate and GFLOP/s.
  auto row_of = [&](const E2eVariant& v) {
    Row r = row_for(v.job, v.impl, bench::spread_of(v.seconds).median);
    r.peak = v.peak;
    return r;
  };
  // Per job: ours, then each peer's fastest variant (by median).
  struct JobSummary {
    std::vector<const E2eVariant*> ours, best_of_peer;
    const E2eVariant* best_peer = nullptr;
  };
  auto summarize = [](const std::vector<E2eVariant>& list) {
    JobSummary s;
    for (const E2eVariant& v : list) {
      if (v.seconds.empty()) continue;
      if (v.peer.empty()) {
        s.ours.push_back(&v);
        continue;
      }
      auto same = std::find_if(s.best_of_peer.begin(), s.best_of_peer.end(),
                               [&](const E2eVariant* b) { return b->peer == v.peer; });
      if (same == s.best_of_peer.end())
        s.best_of_peer.push_back(&v);
      else if (bench::median_of(v.seconds) < bench::median_of((*same)->seconds))
        *same = &v;
    }
    for (const E2eVariant* b : s.best_of_peer)
      if (!s.best_peer || bench::median_of(b->seconds) < bench::median_of(s.best_peer->seconds)) s.best_peer = b;
    return s;
  };
  const JobSummary jobs[] = {summarize(train_variants), summarize(sample_variants)};

  auto peak_of = [&](const Row& r) { return r.peak > 0 ? r.peak : peak; };
  // tail: the detailed table's extra columns.
  auto print_variant = [&](const E2eVariant& v, const E2eVariant& ours, const std::string& tail) {
    const Row r = row_of(v);
    const bench::Spread sp = bench::spread_of(v.seconds);
    const std::string range = format("%.3f", sp.min) + ".." + format("%.3f", sp.max);
    std::fprintf(tty, "%-20s %-28s %9.3f %15s %10.4g %-3s %8.1f %7.1f%%%s %9.2fx%s\n", r.what.c_str(), r.impl.c_str(),
                 r.secs, range.c_str(), r.rate, r.rate_unit == "steps/s" ? "/s" : "p/s", r.gflops,
                 100 * r.gflops / peak_of(r), r.peak > 0 ? "*" : " ", sp.median / bench::median_of(ours.seconds),
                 tail.c_str());
  };
  std::fprintf(tty,
               "\nEnd to end: ddpm on %d threads; measured peaks: FP32 FMA %.1f GFLOP/s with AVX2, %.1f with AVX-512, "
               "bf16 dot products %.1f (* the bf16 row's %% peak is of that)%s\n",
               omp_get_max_threads(), peaks.avx2, peaks.avx512, peaks.bf16,
               peer ? "; each peer's fastest variant (by median) at 1 or 2 threads" : "");
  std::fprintf(tty,
               "%d round%s of each job, interleaved (every variant once per round, ours first); the median of the "
               "rounds, their spread as min..max, the rate and %% peak of the median\n",
               repeat, repeat == 1 ? "" : "s");
  std::fprintf(tty, "%-20s %-28s %9s %15s %14s %8s %8s  %10s\n", "job", "impl", "median s", "min..max s", "rate",
               "GFLOP/s", "% peak", "time/ours");
  for (const JobSummary& s : jobs) {
    if (s.ours.empty()) continue;
    for (const E2eVariant* v : s.ours) print_variant(*v, *s.ours[0], "");
    for (const E2eVariant* v : s.best_of_peer) print_variant(*v, *s.ours[0], "");
  }

  // Ratios of medians: each of our variants against each peer's fastest and the best peer.
  nlohmann::json ratios = nlohmann::json::array();
  bool any_ratio = false;
  for (const JobSummary& s : jobs)
    for (const E2eVariant* o : s.ours)
      for (const E2eVariant* p : s.best_of_peer) {
        if (!any_ratio) {
          std::fprintf(tty,
                       "\nRatios: the peer's median over ours (* the best peer); same-round: min..max of the ratios "
                       "of runs in the same round\n%-20s %-24s %-28s %8s %15s\n",
                       "job", "ours", "peer (its fastest variant)", "ratio", "same-round");
          any_ratio = true;
        }
        const double ratio = bench::ratio_of_medians(p->seconds, o->seconds);
        const std::vector<double> paired = bench::same_round_ratios(p->seconds, o->seconds);
        const bench::Spread ps = bench::spread_of(paired);
        const bool best = p == s.best_peer;
        std::fprintf(tty, "%-20s %-24s %-28s %7.2fx%s %15s\n", o->job.c_str(), o->impl.c_str(), p->impl.c_str(), ratio,
                     best ? "*" : " ", (format("%.2f", ps.min) + ".." + format("%.2f", ps.max) + "x").c_str());
        ratios.push_back({{"job", o->job},
                          {"ours", o->impl},
                          {"peer", p->peer},
                          {"against", p->impl},
                          {"best_peer", best},
                          {"ratio_of_medians", ratio},
                          {"same_round_ratios", paired},
                          {"same_round_min", ps.min},
                          {"same_round_max", ps.max}});
      }

  bool any_peer = false;
  for (const std::vector<E2eVariant>* list : {&train_variants, &sample_variants})
    for (const E2eVariant& v : *list) any_peer |= !v.peer.empty();
  if (any_peer) {
    std::fprintf(tty,
                 "\nEvery peer variant (compile s: the untimed warm-ups that compiled, latest round; loss: the last "
                 "step's)\n");
    std::fprintf(tty, "%-20s %-28s %9s %15s %14s %8s %8s  %10s %9s %7s\n", "job", "impl", "median s", "min..max s",
                 "rate", "GFLOP/s", "% peak", "time/ours", "compile s", "loss");
    for (std::size_t k = 0; k < 2; ++k)
      for (const E2eVariant& v : k == 0 ? train_variants : sample_variants) {
        if (v.peer.empty()) continue;
        if (v.seconds.empty() || jobs[k].ours.empty()) {
          std::fprintf(tty, "%-20s %-28s failed: %s\n", v.job.c_str(), v.impl.c_str(), v.error.c_str());
          continue;
        }
        print_variant(v, *jobs[k].ours[0],
                      " " +
                          (v.compile_seconds.is_number() ? format("%9.1f", v.compile_seconds.get<double>())
                                                         : format("%9s", "-")) +
                          (v.final_loss.is_number() ? format(" %7.4f", v.final_loss.get<double>()) : "") +
                          (v.error.empty() ? "" : " (failed later: " + v.error + ")"));
      }
  }

  auto variant_json = [&](const E2eVariant& v) {
    const bench::Spread sp = bench::spread_of(v.seconds);
    nlohmann::json o = {{"job", v.job}, {"variant", v.key}, {"impl", v.impl}, {"runs_seconds", v.seconds}};
    if (!v.peer.empty()) o["peer"] = v.peer;
    if (!v.error.empty()) o["error"] = v.error;
    if (sp.runs == 0) return o;
    const Row r = row_of(v);
    o.update({{"seconds", sp.median},
              {"median_seconds", sp.median},
              {"min_seconds", sp.min},
              {"max_seconds", sp.max},
              {"rate", r.rate},
              {"rate_unit", r.rate_unit},
              {"gflops", r.gflops},
              {"fraction_of_peak", r.gflops / peak_of(r)}});
    return o;
  };
  j["fma_peak_gflops"] = peak;
  j["fma_peaks_gflops"] = {{"avx2", peaks.avx2}, {"avx512", peaks.avx512}, {"bf16", peaks.bf16}};
  j["threads"] = omp_get_max_threads();
  j["repeat"] = repeat;
  j["spread"] = "min..max of the rounds";
  j["order"] = order;
  j["rows"] = nlohmann::json::array();
  for (const JobSummary& s : jobs) {
    for (const E2eVariant* v : s.ours) j["rows"].push_back(variant_json(*v));
    for (const E2eVariant* v : s.best_of_peer) j["rows"].push_back(variant_json(*v));
  }
  j["variants"] = nlohmann::json::array();
  for (const std::vector<E2eVariant>* list : {&train_variants, &sample_variants})
    for (const E2eVariant& v : *list) j["variants"].push_back(variant_json(v));
  j["ratios"] = ratios;
  if (peer) {
    j["peer_venv"] = peer_venv;
    j["peer_runs"] = runs;
    j["peers_skipped"] = skipped;
  }
  if (have_gpu) j["gpu_sampler"] = bench_gpu_sampler(tty, sched, st.params, gpu_jobs);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t steps = kTrainSteps, n = 10000;
  int repeat = 3;
  bool peer = false;
  std::vector<std::string> peer_names = {"torch-debian", "torch-pypi", "jax"};
  const char* venv_env = std::getenv("DDPM_PEER_VENV");
  std::string peer_venv = venv_env && *venv_env ? venv_env : std::string(DDPM_SOURCE_DIR) + "/build/peer-venv";
  GpuJobs gpu_jobs;
  std::string json_out, only = "all", device = "auto", cpu_isa;
  bench::Options o;
  o.sizes = {512, 4096, 65536, 1 << 20};
  CLI::App app{
      "Benchmarks: every kernel (the GPU's, or the CPU backend's where there is no GPU) against ceilings "
      "measured in the same run; training and sampling end to end, beside the PyTorch and JAX peers",
      "ddpm_bench"};
  app.option_defaults()->always_capture_default();
  app.add_option("--only", only, "what to run: the kernel microbenchmarks, the end-to-end jobs, or all")
      ->check(CLI::IsMember({"all", "kernels", "e2e"}));
  tools::add_cpu_isa_option(app, cpu_isa);  // the build the CPU rows use by default (end to end: the others too)
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
  app.add_option("--repeat", repeat,
                 "end to end: rounds of each CPU job; every round runs each variant once (ours, then each peer "
                 "variant), and the tables give the median of the rounds and their min..max")
      ->check(CLI::Range(1, 1000));
  app.add_flag("--peer", peer,
               "end to end: also run the peers with 1 and 2 threads: bench/peer/ddpm_torch.py under Debian's "
               "python3-torch and under --peer-venv's PyTorch 2 (eager, fused Adam, torch.compile), and "
               "bench/peer/ddpm_jax.py under --peer-venv's JAX; a peer that is not installed is skipped, saying so");
  app.add_option("--peers", peer_names, "end to end, with --peer: which peers to run, comma-separated")
      ->delimiter(',')
      ->check(CLI::IsMember({"torch-debian", "torch-pypi", "jax"}));
  app.add_option("--peer-venv", peer_venv,
                 "end to end: the virtual environment of bench/peer/setup_peers.sh (default: $DDPM_PEER_VENV, else "
                 "build/peer-venv in the source tree)");
  app.add_option("--gpu-n", gpu_jobs.n,
                 "end to end: points for the GPU sampler through its driver (where a GPU exists)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 32));
  app.add_option("--gpu-jobs", gpu_jobs.only,
                 "end to end: only the GPU jobs whose name contains one of these, comma-separated (e.g. "
                 "'fused fp32,fused-xemb fp32'; default: all)")
      ->delimiter(',');
  app.add_option("--samples-dir", gpu_jobs.samples_dir,
                 "end to end: write each GPU job's samples there as <job>.npy (fused_fp32, fused_tf32, fused_bf16, "
                 "unfused_fp32), for ddpm_eval")
      ->check(CLI::ExistingDirectory);
  app.add_option(
         "--json", json_out,
         "also write the results as JSON to this file; without one (or '-'): JSON on stdout, the tables on stderr")
      ->expected(0, 1);
  return tools::run_tool("ddpm_bench", app, argc, argv, [&] {
    if (!cpu_isa.empty()) cpu::select_cpu_isa(cpu_isa);
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
    // The CPU's FMA peak, for the CPU kernels and the end-to-end jobs: every fraction of peak, ours and the
    // peers', is taken against this one value.
    const bool need_peak = only != "kernels" || kernels_on == "cpu";
    const double peak = need_peak ? measure_fma_peak_gflops() : 0;
    if (only != "e2e") out["kernels"] = run_kernel_suite(tty, o, kernels_on, peak);
    if (only != "kernels")
      run_end_to_end(tty, steps, n, repeat, peer, peer_venv, peer_names, have_gpu, gpu_jobs, peak, out);
    if (json_out == "-")
      std::cout << out.dump(2) << std::endl;
    else if (!json_out.empty())
      std::ofstream(json_out) << out.dump(2) << "\n";
  });
}
