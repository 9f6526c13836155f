#include "host/tools/eval_cli.hpp"

#include "host/tools/cli.hpp"

#include "ddpm/datasets.hpp"

namespace ddpm::tools {

void add_eval_options(CLI::App& app, EvalOptions& o) {
  app.add_option("SAMPLES", o.samples, "samples file, .npy (N x 2) or .csv (x,y)")->required()->type_name("FILE");
  app.add_option("--seed", o.seed, "seed of the reference, the floor and the random subsets")
      ->check(kUnsigned)
      ->capture_default_str();
  app.add_flag("--json", o.json, "print the report as JSON instead of a table (default: off)");
  app.add_option("--data", o.data,
                 "the distribution to judge against: a built-in set (" + builtin_dataset_names() +
                     ") or the .npy/.csv file trained on (default: moons)")
      ->type_name("NAME|FILE");
  app.add_option("--units", o.units,
                 "with --data FILE, the samples' units: data (the file's, as ddpm_cuda_sample writes them by "
                 "default) or normalized (--units normalized of ddpm_cuda_sample); both are compared after the "
                 "file's normalization (default: data)")
      ->check(CLI::IsMember({"data", "normalized"}));
  app.add_option("--out", o.out, "also write the JSON report to this file, atomically (default: none)")
      ->type_name("FILE.json");
}

void check_eval_options(const CLI::App& app, const EvalOptions& o) {
  if (app.count("--out") > 0 && o.out.empty()) throw UsageError("--out: empty path");
}

}  // namespace ddpm::tools
