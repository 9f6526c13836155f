// ddpm_eval: how close a sample file is to the true two-moons distribution
// (normalized coordinates), next to the noise floor a perfect model would
// reach at the same n. See metrics.hpp for the definitions.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "ddpm/config.hpp"
#include "ddpm/error.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/samples_io.hpp"
#include "host/tools/cli.hpp"
#include "tools/eval/metrics.hpp"

namespace {

constexpr const char* kTool = "ddpm_eval";

struct Options {
  std::string samples;
  uint64_t seed = ddpm::kDefaultSeed;
  bool json = false;
  std::string out;
};

void run(const Options& o) {
  const std::vector<float> samples = ddpm::io::read_samples(o.samples);
  const int64_t n = int64_t(samples.size() / 2);
  if (n < ddpm::eval::kMinSamples)
    throw ddpm::Error(o.samples + ": " + std::to_string(n) + " points; ddpm_eval needs at least " +
                      std::to_string(ddpm::eval::kMinSamples));
  for (std::size_t i = 0; i < samples.size(); ++i)
    if (!std::isfinite(samples[i]))
      throw ddpm::Error(o.samples + ": point " + std::to_string(i / 2) + " has a non-finite " +
                        (i % 2 ? "y" : "x") + " coordinate (" + std::to_string(samples[i]) + ")");
  const ddpm::eval::Report report = ddpm::eval::evaluate(samples, o.seed);
  const std::string json = ddpm::eval::to_json(report);
  if (!o.out.empty()) ddpm::io::write_file_atomic(o.out, json.data(), json.size());
  const std::string text = o.json ? json : ddpm::eval::to_text(report);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Compare samples with the true two-moons distribution: sliced W1, MMD^2, precision and recall, "
               "next to the noise floor of an exact draw of the same size",
               kTool};
  app.add_option("SAMPLES", o.samples, "samples file, .npy (N x 2) or .csv (x,y)")->required()->type_name("FILE");
  app.add_option("--seed", o.seed, "seed of the reference, the floor and the random subsets")
      ->check(ddpm::tools::kUnsigned)
      ->capture_default_str();
  app.add_flag("--json", o.json, "print the report as JSON instead of a table (default: off)");
  auto* out = app.add_option("--out", o.out, "also write the JSON report to this file, atomically (default: none)")
                  ->type_name("FILE.json");
  return ddpm::tools::run_tool(kTool, app, argc, argv, [&] {
    if (out->count() > 0 && o.out.empty()) throw ddpm::tools::UsageError("--out: empty path");
    run(o);
  });
}
