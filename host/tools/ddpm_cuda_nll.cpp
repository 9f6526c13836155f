// ddpm_cuda_nll: how likely a checkpoint's model finds held-out data, in the
// seed's two forms (ddpm/likelihood.hpp): the variational bound L_T + sum
// L_{t-1} + L_0, every term of every point, and the exact log-likelihood
// through the probability-flow ODE, on the CPU or in the GPU's fused kernels.
// Reports nats per point and bits per dimension with standard errors, in the
// model's normalized units and a training file's; --grid draws log p as a
// heat map beside the model's samples.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ddpm/error.hpp"
#include "ddpm/likelihood.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/eval/likelihood_report.hpp"
#include "host/eval/metrics.hpp"
#include "host/gpu/gpu_likelihood.hpp"
#include "host/gpu/gpu_sampler.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/checkpoint.hpp"
#include "host/plot/plot.hpp"
#include "host/tools/cli.hpp"
#include "host/tools/device.hpp"
#include "host/tools/nll_cli.hpp"

namespace {

using namespace ddpm;
constexpr const char* kTool = "ddpm_cuda_nll";
constexpr int64_t kHeatmapSamples = 5000;  // the model's samples beside the heat map

using Options = tools::NllOptions;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The held-out points in the model's normalized units, and what the report needs of them.
struct HeldOut {
  std::vector<float> x0;
  std::string name;
  std::optional<double> log_det, entropy;
};

HeldOut held_out_points(const Options& o, const io::Checkpoint& ckpt) {
  std::string spec = o.data;
  if (spec.empty()) {
    const auto it = ckpt.meta.run.find("data");
    spec = it != ckpt.meta.run.end() ? it->second : "moons";
  }
  const tools::DataChoice data = tools::load_data(spec);
  HeldOut h;
  h.name = spec;
  if (data.dataset != Dataset::kFile) {
    h.x0 = eval::true_draw(data.dataset, o.n, o.seed, Stream::kHeldOut);
    h.entropy = eval::data_entropy(data.dataset);
    return h;
  }
  const int64_t n = std::min<int64_t>(o.n, int64_t(data.points.size() / 2));
  h.x0.assign(data.points.begin(), data.points.begin() + 2 * n);
  // A model trained on a file learned its points as (p - mean) / std: these
  // points go through the same map, and log p in the file's units is log p in
  // the model's minus log det = sum_d log std_d. A model of a built-in set
  // reads the file in its own units, as its samples are written.
  if (const auto& s = ckpt.meta.data_scale) {
    for (int64_t i = 0; i < n; ++i)
      for (int d = 0; d < 2; ++d) h.x0[2 * i + d] = float((double(h.x0[2 * i + d]) - s->mean[d]) / s->std[d]);
    h.log_det = std::log(s->std[0]) + std::log(s->std[1]);
  }
  return h;
}

// One backend for both computations: the CPU's or the GPU's driver.
struct Backend {
  const Schedule& sched;
  const float* params;
  const ModelConfig& model;
  std::unique_ptr<gpu::GpuLikelihood> gpu;
  void vlb_sums(const VlbTable& table, uint64_t seed, const std::vector<float>& x0, std::vector<VlbSums>& out) {
    const int64_t n = int64_t(x0.size() / 2);
    out.assign(n, VlbSums{NAN, NAN});
    if (gpu) gpu->vlb_sums(table, seed, 0, n, x0.data(), out.data());
    else cpu::vlb_sums(sched, params, table, seed, 0, n, x0.data(), out.data(), model);
  }
  std::vector<float> ode(const OdeTable& table, const std::vector<float>& x0) {
    const int64_t n = int64_t(x0.size() / 2);
    std::vector<float> out(3 * n, NAN);
    if (gpu) gpu->ode_end_states(table, n, x0.data(), out.data());
    else cpu::ode_end_states(params, table, n, x0.data(), out.data(), model);
    return out;
  }
};

void run(const CLI::App& app, const Options& o) {
  const bool exact = o.what != "bound", bound = o.what != "exact";
  if (o.ode == "adaptive" && o.device == "cuda") throw tools::UsageError("--ode adaptive runs on the CPU only");
  const tools::Device device =
      tools::choose_device(o.ode == "adaptive" ? "cpu" : o.device, tools::CudaPath::kOnRequest, kTool);
  if (!o.cpu_isa.empty()) cpu::select_cpu_isa(o.cpu_isa);
  const io::Checkpoint ckpt = io::load_checkpoint(o.ckpt);
  if (const std::string note = io::ignored_metadata_note(o.ckpt, ckpt); !note.empty())
    std::fprintf(stderr, "%s: note: %s\n", kTool, note.c_str());
  tools::check_model_flags(app, o.model, ckpt.meta.model, o.ckpt);
  const ModelConfig& model = ckpt.meta.model;
  const Schedule sched = Schedule::by_name(ckpt.meta.schedule, ckpt.meta.T, ckpt.meta.beta_1, ckpt.meta.beta_T);
  if (o.weights == "ema" && ckpt.ema.empty())
    throw tools::UsageError("--weights ema: " + o.ckpt + " has no EMA weights (train with --ema DECAY)");
  const bool use_ema = !ckpt.ema.empty() && o.weights != "raw";
  const float* params = use_ema ? ckpt.ema.data() : ckpt.params.data();
  if (!o.out.empty()) tools::check_writable(o.out);
  if (o.grid > 0) tools::check_writable(o.png);
  const HeldOut held = held_out_points(o, ckpt);

  Backend backend{sched, params, model, nullptr};
  if (device == tools::Device::kCuda) backend.gpu = std::make_unique<gpu::GpuLikelihood>(params, sched, model);
  eval::NllReport r;
  r.data = held.name;
  r.n = int64_t(held.x0.size() / 2);
  r.weights = use_ema ? "EMA" : "raw";
  r.device = device == tools::Device::kCuda ? "GPU fp32" : std::string("CPU ") + cpu::name_of(cpu::active_cpu_isa());
  r.log_det = held.log_det;
  r.entropy = held.entropy;

  if (bound) {
    const auto t0 = Clock::now();
    const VlbTable table = vlb_table(sched, variance_from_name(o.variance));
    std::vector<VlbSums> sums;
    backend.vlb_sums(table, o.seed, held.x0, sums);
    eval::add_bound(r, table, sums, held.x0);
    r.variance = o.variance;
    r.bound_seconds = seconds_since(t0);
    r.bound_evaluations = r.n * sched.T;
  }
  if (exact) {
    const auto t0 = Clock::now();
    const double sigma_T = schedule_sigma(sched, sched.T);
    if (o.ode == "adaptive") {
      std::vector<float> ends(3 * r.n, NAN);
      std::vector<int64_t> evals(r.n, 0);
      cpu::ode_end_states_adaptive(sched, params, r.n, held.x0.data(), o.rtol, o.atol, ends.data(), evals.data(), model);
      r.exact = eval::mean_se(eval::ode_nll(ends, sigma_T));
      r.ode = "adaptive, rtol " + schedule_detail::number(o.rtol) + ", atol " + schedule_detail::number(o.atol);
      r.ode_error = NAN;
      for (int64_t e : evals) r.exact_evaluations += e;
    } else {
      // The solution at h and at 2h: for a fourth-order method the first's
      // error is about their difference over 2^4 - 1.
      const std::vector<double> fine = eval::ode_nll(backend.ode(ode_rk4_table(sched, o.ode_steps), held.x0), sigma_T);
      const std::vector<double> coarse = eval::ode_nll(backend.ode(ode_rk4_table(sched, o.ode_steps / 2), held.x0), sigma_T);
      r.exact = eval::mean_se(fine);
      r.ode = "rk4, " + std::to_string(o.ode_steps) + " steps";
      r.ode_error = 0;
      for (std::size_t i = 0; i < fine.size(); ++i) r.ode_error += std::abs(fine[i] - coarse[i]) / 15 / double(fine.size());
      r.exact_evaluations = r.n * 4 * (o.ode_steps + o.ode_steps / 2);
    }
    r.has_exact = true;
    r.exact_seconds = seconds_since(t0);
  }

  // The report first on stdout; its file only once every output is made, so a
  // run that fails (drawing the heat map, say) leaves no file behind.
  const std::string json = eval::to_json(r);
  const std::string text = o.json ? json : eval::to_text(r);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);

  if (o.grid > 0) {
    // log p at the centres of the cells the image shows, over the held-out points' box.
    const auto t0 = Clock::now();
    const plot::DensityWindow window = plot::density_window(held.x0);
    const plot::Points centres = plot::grid_cell_centres(o.grid, window);
    plot::GridValues values{o.grid, window, {}};
    const OdeTable table = ode_rk4_table(sched, o.ode == "adaptive" ? kOdeDefaultSteps : o.ode_steps);
    for (double nll : eval::ode_nll(backend.ode(table, centres), table.sigma_T)) values.values.push_back(-nll);
    std::vector<float> samples(2 * kHeatmapSamples);
    if (backend.gpu) gpu::GpuSampler(params, sched, {}, kernels::Precision::kFp32, gpu::GpuSampler::kDefaultChunk, model)
                         .sample(o.seed, 0, kHeatmapSamples, samples.data());
    else cpu::sample(sched, params, o.seed, 0, kHeatmapSamples, samples.data(), {}, cpu::CpuPrecision::kFp32, model);
    plot::write_heatmap_png(o.png, values, "log p(x), exact (ODE, " + std::to_string(table.stages.size() / 4) + " RK4 steps)",
                            "log p(x), nats", samples, "DDPM samples (n=" + std::to_string(kHeatmapSamples) + ")");
    std::fprintf(stderr, "%s: wrote %s (%d x %d grid in %.1f s)\n", kTool, o.png.c_str(), o.grid, o.grid,
                 seconds_since(t0));
  }
  if (!o.out.empty()) io::write_file_atomic(o.out, json.data(), json.size());
}

}  // namespace

int main(int argc, char** argv) {
  tools::NllOptions o;
  CLI::App app{"The model's negative log-likelihood of held-out data: the variational bound (every term) and the "
               "exact value through the probability-flow ODE",
               kTool};
  tools::add_nll_options(app, o);
  return tools::run_tool(kTool, app, argc, argv, [&] {
    tools::check_nll_options(app, o);
    run(app, o);
  });
}
