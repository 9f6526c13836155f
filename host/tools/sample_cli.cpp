#include "host/tools/sample_cli.hpp"

#include "host/tools/cli.hpp"

namespace ddpm::tools {

void add_sample_options(CLI::App& app, SampleOptions& o) {
  app.option_defaults()->always_capture_default();
  app.add_option("--n", o.n, "number of samples")->check(kUnsigned & CLI::Range(int64_t(1), int64_t(1) << 40));
  app.add_option("--ckpt", o.ckpt, "checkpoint to read (safetensors)");
  app.add_option("--seed", o.seed, "random seed; point i always draws the same noise, whatever n")->check(kUnsigned);
  app.add_option("--device", o.device, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_option("--out", o.out, "samples file, .npy (float32, N x 2) or .csv; empty to skip");
  app.add_option("--png", o.png, "scatter plot PNG (first 50,000 points); empty to skip");
  app.add_option("--density", o.density,
                 "density image PNG (2-D histogram, log scale); written by default from n = 100,000 on");
  app.add_option("--chunk", o.chunk, "points per chunk (memory stays bounded)")
      ->check(kUnsigned & CLI::Range(int64_t(1), int64_t(1) << 26));
}

void check_sample_options(const CLI::App& app, SampleOptions& o) {
  o.density_given = app.count("--density") > 0;
}

}  // namespace ddpm::tools
