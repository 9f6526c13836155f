// ddpm_cuda_sample: the seed's ancestral sampler (or DDIM, DPM-Solver++(2M),
// Heun) from a checkpoint, points first..first+n-1 of the seed's sample set,
// on the CPU or in the GPU's fused kernel; writes the samples (.npy or .csv)
// as they come, a scatter plot and, for large n, a density image. A model
// trained on a user's file samples in that file's units (--units).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ddpm/config.hpp"
#include "ddpm/error.hpp"
#include "host/cpu/cpu_backend.hpp"
#include "host/gpu/gpu_sampler.hpp"
#include "host/gpu/sample_stats.hpp"
#include "host/io/checkpoint.hpp"
#include "host/io/samples_io.hpp"
#include "host/plot/plot.hpp"
#include "host/tools/cli.hpp"
#include "host/tools/device.hpp"
#include "host/tools/sample_cli.hpp"

namespace {

using namespace ddpm;
constexpr const char* kTool = "ddpm_cuda_sample";
constexpr int64_t kScatterMax = 50000;       // a scatter of more points is a blot
constexpr int64_t kDensityMax = 4000000;     // points kept for the density image
constexpr int64_t kDensityAutoN = 100000;    // from this n on the density image is written by default
constexpr int64_t kCpuChunk = 65536;
constexpr int kDensityBins = 400;            // the density image's cells per axis

using Options = tools::SampleOptions;

std::string with_commas(int64_t v) {
  const std::string digits = std::to_string(v);
  std::string s;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

using DataScale = io::CheckpointMeta::DataScale;

// n points from the model's normalized units to the training file's, x * std + mean:
// in double through fma, so the map does not depend on what the compiler contracts.
void to_data_units(const DataScale& s, float* xy, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    for (int d = 0; d < 2; ++d) xy[2 * i + d] = float(std::fma(double(xy[2 * i + d]), s.std[d], s.mean[d]));
}

void run(const CLI::App& app, const Options& o) {
  const tools::Device device = tools::choose_device(o.device, tools::CudaPath::kOnRequest, kTool);
  if (device == tools::Device::kCpu && o.precision == "tf32")
    throw tools::UsageError("--precision tf32 needs the GPU (the CPU samples in fp32 or bf16)");
  if (!o.cpu_isa.empty()) cpu::select_cpu_isa(o.cpu_isa);
  const cpu::CpuPrecision cpu_precision =
      device == tools::Device::kCpu ? cpu::cpu_precision_from_name(o.precision) : cpu::CpuPrecision::kFp32;
  const io::Checkpoint ckpt = io::load_checkpoint(o.ckpt);
  if (const std::string note = io::ignored_metadata_note(o.ckpt, ckpt); !note.empty())
    std::fprintf(stderr, "%s: note: %s\n", kTool, note.c_str());
  // The training file's units, when the checkpoint records them (a built-in set's are the normalized ones).
  const std::optional<DataScale> scale = o.units == "data" ? ckpt.meta.data_scale : std::nullopt;
  if (!o.schedule.empty() && o.schedule != ckpt.meta.schedule)
    throw tools::UsageError("--schedule " + o.schedule + " contradicts " + o.ckpt + ", trained with the " +
                            ckpt.meta.schedule + " schedule");
  tools::check_model_flags(app, o.model, ckpt.meta.model, o.ckpt);
  const Schedule sched = Schedule::by_name(ckpt.meta.schedule, ckpt.meta.T, ckpt.meta.beta_1, ckpt.meta.beta_T);
  SamplerConfig sampler;
  sampler.kind = sampler_kind_from_name(o.sampler);
  sampler.steps = o.steps;
  sampler.eta = o.eta;
  sampler.variance = variance_from_name(o.variance);
  sampler.spacing = spacing_from_name(o.timesteps);
  try {
    validate_sampler(sampler, sched);
  } catch (const Error& e) {
    throw tools::UsageError(e.what());  // --steps beyond the checkpoint's T, say
  }
  if (o.weights == "ema" && ckpt.ema.empty())
    throw tools::UsageError("--weights ema: " + o.ckpt + " has no EMA weights (train with --ema DECAY)");
  const bool use_ema = !ckpt.ema.empty() && o.weights != "raw";
  const float* params = use_ema ? ckpt.ema.data() : ckpt.params.data();
  const bool want_density = !o.density.empty() && (o.density_given || o.n >= kDensityAutoN);
  // Every output is checked before the long computation.
  if (!o.out.empty()) io::sample_format_of(o.out);
  tools::check_writable(o.png);
  if (want_density) tools::check_writable(o.density);

  std::unique_ptr<io::SampleWriter> writer;
  if (!o.out.empty()) writer = std::make_unique<io::SampleWriter>(o.out, o.n);
  std::vector<float> kept;  // the first points, for the plots
  const bool cpu_density = want_density && device == tools::Device::kCpu;  // the GPU bins on the GPU
  const int64_t keep = std::min(o.n, std::max(o.png.empty() ? 0 : kScatterMax, cpu_density ? kDensityMax : 0));
  kept.reserve(std::size_t(2 * keep));
  const bool tty = tools::stderr_is_terminal();
  const auto t0 = std::chrono::steady_clock::now();
  // Each chunk, in order: to the file, to the plots' points, to the progress line.
  auto consume = [&](const float* xy, int64_t first, int64_t len) {
    if (writer) writer->write(xy, len);
    const int64_t take = std::clamp<int64_t>(keep - first, 0, len);
    kept.insert(kept.end(), xy, xy + 2 * take);
    if (tty) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "\r\033[K%s / %s points, %.0f points/s", with_commas(first + len).c_str(),
                   with_commas(o.n).c_str(), (first + len) / secs);
    }
  };
  // On the GPU the density image counts every point, on the GPU (Thrust), over
  // the window of the first chunk; on the CPU it bins the first kDensityMax.
  // The GPU's statistics see the device's points, in the normalized units: with a
  // data scale they bin over the output window mapped back, and are mapped to it.
  std::unique_ptr<gpu::SampleStats> stats;
  plot::DensityWindow window{};
  if (device == tools::Device::kCuda) {
    // The next chunk computes on the GPU while this one is written.
    gpu::GpuSampler gpu(params, sched, sampler, kernels::precision_from_name(o.precision),
                        o.chunk > 0 ? o.chunk : gpu::GpuSampler::kDefaultChunk, ckpt.meta.model);
    std::vector<float> mapped;
    gpu.sample_chunks(o.seed, o.first, o.n, [&](const gpu::GpuSampler::Chunk& c) {
      const float* xy = c.host;
      if (scale) {
        mapped.assign(c.host, c.host + 2 * c.count);
        to_data_units(*scale, mapped.data(), c.count);
        xy = mapped.data();
      }
      // The file first, while the next chunk computes: the statistics then wait
      // for their own GPU work, which gets SMs only as the next chunk's
      // persistent blocks leave them.
      consume(xy, c.first - o.first, c.count);
      if (!stats) {
        window = plot::density_window(plot::Points(xy, xy + 2 * c.count));
        plot::DensityWindow w = window;
        if (scale)
          w = {(w.x0 - scale->mean[0]) / scale->std[0], (w.x1 - scale->mean[0]) / scale->std[0],
               (w.y0 - scale->mean[1]) / scale->std[1], (w.y1 - scale->mean[1]) / scale->std[1]};
        stats = std::make_unique<gpu::SampleStats>(kDensityBins, w);
      }
      stats->add(c.device, c.count, nullptr);
    });
  } else {
    const int64_t chunk_points = o.chunk > 0 ? o.chunk : kCpuChunk;
    std::vector<float> chunk(std::size_t(2 * std::min(chunk_points, o.n)));
    for (int64_t first = 0; first < o.n; first += chunk_points) {
      const int64_t len = std::min(chunk_points, o.n - first);
      cpu::sample(sched, params, o.seed, o.first + first, len, chunk.data(), sampler, cpu_precision,
                  ckpt.meta.model);
      if (scale) to_data_units(*scale, chunk.data(), len);
      consume(chunk.data(), first, len);
    }
  }
  if (tty) std::fprintf(stderr, "\n");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int steps = sampler_steps(sampler, sched.T);
  const int evaluations = int(sample_steps(sched, sampler).size());
  const std::string where = device == tools::Device::kCuda
                                ? "GPU " + o.precision
                                : std::string("CPU ") + cpu::name_of(cpu::active_cpu_isa()) + " " + o.precision;
  const std::string spacing =
      sampler.kind == SamplerKind::kDdpm ? "" : std::string(", ") + name_of(sampler_spacing(sampler)) + " timesteps";
  // point-steps/s counts model evaluations (the scripts read this line: tools/device_run.sh).
  std::fprintf(stderr, "%s: %s points x %d %s steps = %d model evaluations (%s weights%s, %s) in %.2f s (%.3g point-steps/s)\n",
               kTool, with_commas(o.n).c_str(), steps, name_of(sampler.kind), evaluations, use_ema ? "EMA" : "raw",
               spacing.c_str(), where.c_str(), secs, double(o.n) * evaluations / secs);
  if (writer) {
    writer->commit();
    std::fprintf(stderr, "%s: wrote %s\n", kTool, o.out.c_str());
  }
  if (!o.png.empty()) {
    const int64_t shown = std::min(o.n, kScatterMax);
    const std::string what =
        sampler.kind == SamplerKind::kDdim
            ? "DDIM " + std::to_string(steps) + " steps, eta " + schedule_detail::number(o.eta)
        : sampler.kind == SamplerKind::kDdpm
            ? std::string("DDPM samples")
            : std::string(name_of(sampler.kind)) + ", " + std::to_string(evaluations) + " evaluations";
    const std::string title = shown == o.n ? what + " (n=" + with_commas(o.n) + ")"
                                           : what + " (first " + with_commas(shown) + " of " + with_commas(o.n) + ")";
    plot::write_scatter_png(o.png, plot::Points(kept.begin(), kept.begin() + 2 * shown), title);
    std::fprintf(stderr, "%s: wrote %s\n", kTool, o.png.c_str());
  }
  if (stats) {
    const gpu::SampleMoments m = stats->moments();
    double mean[2], sd[2];
    for (int d = 0; d < 2; ++d) {
      mean[d] = scale ? m.mean[d] * scale->std[d] + scale->mean[d] : m.mean[d];
      sd[d] = std::sqrt(m.var[d]) * (scale ? scale->std[d] : 1.0);
    }
    std::fprintf(stderr, "%s: mean (%.4f, %.4f), std (%.4f, %.4f), corr %.4f over %s points%s\n", kTool, mean[0],
                 mean[1], sd[0], sd[1], m.cov / std::sqrt(m.var[0] * m.var[1]), with_commas(m.n).c_str(),
                 m.non_finite ? (", " + with_commas(m.non_finite) + " non-finite left out").c_str() : "");
  }
  if (want_density) {
    if (stats) {
      plot::DensityGrid grid = stats->histogram();
      grid.x0 = window.x0;  // the same cells, in the output's units
      grid.x1 = window.x1;
      grid.y0 = window.y0;
      grid.y1 = window.y1;
      plot::write_density_png(o.density, grid, "sample density (n=" + with_commas(o.n) + ")");
    } else {
      const int64_t used = std::min(o.n, kDensityMax);
      plot::write_density_png(o.density, plot::Points(kept.begin(), kept.begin() + 2 * used),
                              "sample density (n=" + with_commas(used) + ")");
    }
    std::fprintf(stderr, "%s: wrote %s\n", kTool, o.density.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  tools::SampleOptions o;
  CLI::App app{"Draw samples with the DDPM ancestral sampler (defaults reproduce the seed), DDIM, DPM-Solver++(2M) or Heun",
               kTool};
  tools::add_sample_options(app, o);
  return tools::run_tool(kTool, app, argc, argv, [&] {
    tools::check_sample_options(app, o);
    run(app, o);
  });
}
