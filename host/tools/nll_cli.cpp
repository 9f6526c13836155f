#include "host/tools/nll_cli.hpp"

#include "ddpm/datasets.hpp"

namespace ddpm::tools {

void add_nll_options(CLI::App& app, NllOptions& o) {
  app.option_defaults()->always_capture_default();
  app.add_option("--ckpt", o.ckpt, "checkpoint to read (safetensors)");
  app.add_option("--data", o.data,
                 "held-out data: a built-in set (" + builtin_dataset_names() +
                     "), drawn fresh with --seed, or a .npy/.csv file of points (its first --n); default: the set the "
                     "checkpoint was trained on")
      ->type_name("NAME|FILE");
  app.add_option("--n", o.n, "held-out points")->check(kUnsigned & CLI::Range(int64_t(1), int64_t(1) << 31));
  app.add_option("--seed", o.seed,
                 "seed of the held-out draw and of the bound's noise (their own Philox streams: never the training "
                 "draw, whatever the seeds)")
      ->check(kUnsigned);
  app.add_option("--device", o.device, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  add_cpu_isa_option(app, o.cpu_isa);
  app.add_option("--weights", o.weights, "auto (the EMA weights when the checkpoint has them), ema or raw")
      ->check(CLI::IsMember({"auto", "ema", "raw"}));
  app.add_option("--what", o.what,
                 "bound (the variational bound, all T terms per point), exact (the probability-flow ODE's log p) "
                 "or both")
      ->check(CLI::IsMember({"both", "bound", "exact"}));
  app.add_option("--variance", o.variance,
                 "the reverse steps' variance in the bound, as sampling's: posterior (gamma_t, the seed's) or beta; "
                 "the decoder L_0 takes beta_1 either way")
      ->check(CLI::IsMember({"posterior", "beta"}));
  app.add_option("--ode", o.ode,
                 "rk4: fixed steps, the solution's error estimated from a second run at half the steps; adaptive: "
                 "Dormand-Prince 5(4) per point with --rtol/--atol (CPU only)")
      ->check(CLI::IsMember({"rk4", "adaptive"}));
  app.add_option("--ode-steps", o.ode_steps, "RK4 steps (4 evaluations each), even")
      ->check(kUnsigned & CLI::Range(2, 100000));
  app.add_option("--rtol", o.rtol, "the adaptive ODE's relative tolerance")->check(kFinite & CLI::Range(1e-9, 1.0));
  app.add_option("--atol", o.atol, "the adaptive ODE's absolute tolerance")->check(kFinite & CLI::Range(1e-9, 1.0));
  app.add_flag("--json", o.json, "print the report as JSON instead of text");
  app.add_option("--out", o.out, "also write the JSON report to this file, atomically (default: none)")
      ->type_name("FILE.json");
  app.add_option("--grid", o.grid,
                 "also draw log p (the exact ODE) on a grid x grid heat map over the data's box, beside the model's "
                 "samples (0: none)")
      ->check(kUnsigned & CLI::Range(0, 4096));
  app.add_option("--png", o.png, "the heat map's PNG (with --grid)");
  add_model_options(app, o.model, /*from_checkpoint=*/true);
}

void check_nll_options(const CLI::App& app, const NllOptions& o) {
  if (o.ode_steps % 2 != 0)
    throw UsageError("--ode-steps " + std::to_string(o.ode_steps) + " is odd (the error estimate halves it)");
  if (o.ode != "adaptive" && (app.count("--rtol") > 0 || app.count("--atol") > 0))
    throw UsageError("--rtol and --atol apply to --ode adaptive only");
  if (o.ode == "adaptive" && app.count("--ode-steps") > 0) throw UsageError("--ode-steps applies to --ode rk4 only");
  if (o.what == "bound" && (app.count("--ode") > 0 || app.count("--ode-steps") > 0 || o.grid > 0))
    throw UsageError("--what bound computes no ODE (--ode, --ode-steps and --grid need exact or both)");
  if (o.what == "exact" && app.count("--variance") > 0) throw UsageError("--variance applies to the bound only");
  if (app.count("--out") > 0 && o.out.empty()) throw UsageError("--out: empty path");
  if (o.grid > 0 && o.png.empty()) throw UsageError("--grid needs a --png path");
}

}  // namespace ddpm::tools
