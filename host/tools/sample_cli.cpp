#include "host/tools/sample_cli.hpp"

#include "ddpm/schedule.hpp"
#include "host/tools/cli.hpp"

namespace ddpm::tools {

void add_sample_options(CLI::App& app, SampleOptions& o) {
  app.option_defaults()->always_capture_default();
  app.add_option("--n", o.n, "number of samples")->check(kUnsigned & CLI::Range(int64_t(1), int64_t(1) << 40));
  app.add_option("--ckpt", o.ckpt, "checkpoint to read (safetensors)");
  app.add_option("--seed", o.seed, "random seed; point i always draws the same noise, whatever n")->check(kUnsigned);
  app.add_option("--first", o.first,
                 "index of the first point: makes points first..first+n-1 of the seed's sample set, so shards made "
                 "apart (on several machines, say) concatenate to the one-run file")
      ->check(kUnsigned & CLI::Range(int64_t(0), int64_t(1) << 50));
  app.add_option("--device", o.device, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  add_cpu_isa_option(app, o.cpu_isa);
  app.add_option("--out", o.out, "samples file, .npy (float32, N x 2) or .csv; empty to skip");
  app.add_option("--png", o.png, "scatter plot PNG (first 50,000 points); empty to skip");
  app.add_option("--density", o.density,
                 "density image PNG (2-D histogram, log scale); written by default from n = 100,000 on");
  app.add_option("--chunk", o.chunk,
                 "points per chunk, so memory stays bounded (0: 65,536 on the CPU, 1,048,576 on the GPU)")
      ->check(kUnsigned & CLI::Range(int64_t(0), int64_t(1) << 26));
  app.add_option("--precision", o.precision,
                 "the hidden layers' products: fp32; tf32 or bf16 on the GPU's tensor cores; bf16 on a CPU with "
                 "AVX512_BF16 (FP32 accumulation in every case)")
      ->check(CLI::IsMember({"fp32", "tf32", "bf16"}));
  app.add_option("--sampler", o.sampler,
                 "ddpm (ancestral, all T steps), ddim, dpmpp-2m (DPM-Solver++(2M): S evaluations), dpmpp-2m-sde "
                 "(its SDE variant, with noise: S evaluations) or heun (Heun on the probability-flow ODE: 2 S - 1 "
                 "evaluations)")
      ->check(CLI::IsMember({"ddpm", "ddim", "dpmpp-2m", "dpmpp-2m-sde", "heun"}));
  app.add_option("--steps", o.steps,
                 "steps S of ddim, dpmpp-2m(-sde) or heun, always starting at T (0: T for ddim, " +
                     std::to_string(kDpmpp2mDefaultSteps) + " for dpmpp-2m(-sde), " + std::to_string(kHeunDefaultSteps) +
                     " for heun)")
      ->check(kUnsigned & CLI::Range(0, kMaxT));
  app.add_option("--timesteps", o.timesteps,
                 "where the S steps fall: uniform in t, karras (Karras et al.'s sigmas, rho = 7) or logsnr "
                 "(uniform in log-SNR), each on the nearest of the T timesteps; default: uniform for ddim, logsnr "
                 "for dpmpp-2m(-sde), karras for heun")
      ->check(CLI::IsMember({"default", "uniform", "karras", "logsnr"}));
  app.add_option("--eta", o.eta, "DDIM noise scale: 0 deterministic, 1 with S = T is the ancestral sampler")
      ->check(kFinite & CLI::Range(0.0, 1e6));
  app.add_option("--variance", o.variance, "ancestral sampler's variance: posterior (gamma_t, the seed's) or beta")
      ->check(CLI::IsMember({"posterior", "beta"}));
  app.add_option("--weights", o.weights, "auto (the EMA weights when the checkpoint has them), ema or raw")
      ->check(CLI::IsMember({"auto", "ema", "raw"}));
  app.add_option("--schedule", o.schedule,
                 "the checkpoint's schedule is always used; given, it must agree (linear or cosine)")
      ->check(CLI::IsMember({"linear", "cosine"}));
  app.add_option("--units", o.units,
                 "data: a model trained on a file (--data FILE) samples in the file's units, x * std + mean with "
                 "the file's mean and std from the checkpoint; normalized: the units the model was trained in "
                 "(a built-in set's samples are in those either way)")
      ->check(CLI::IsMember({"data", "normalized"}));
  add_model_options(app, o.model, /*from_checkpoint=*/true);
}

void check_sample_options(const CLI::App& app, SampleOptions& o) {
  o.density_given = app.count("--density") > 0;
  if (o.sampler != "ddim" && app.count("--eta") > 0) throw UsageError("--eta applies to --sampler ddim only");
  if (o.sampler == "ddpm" && app.count("--steps") > 0 && o.steps != 0)
    throw UsageError("--steps " + std::to_string(o.steps) +
                     " needs --sampler ddim, dpmpp-2m(-sde) or heun (ddpm takes all T steps)");
  if (o.sampler == "ddpm" && (o.timesteps == "karras" || o.timesteps == "logsnr"))
    throw UsageError("--timesteps " + o.timesteps + " needs --sampler ddim, dpmpp-2m(-sde) or heun (ddpm takes all T steps)");
  if (o.sampler != "ddpm" && app.count("--variance") > 0)
    throw UsageError("--variance applies to --sampler ddpm only (" +
                     std::string(o.sampler == "ddim" ? "DDIM's noise is set by --eta)" : "the solvers set their own)"));
}

}  // namespace ddpm::tools
