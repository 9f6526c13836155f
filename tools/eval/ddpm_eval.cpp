// ddpm_eval: how close a sample file is to the true distribution of a data
// set (two moons by default; --data), in normalized coordinates, next to the
// noise floor a perfect model would reach at the same n. Samples of a user's
// file are read in its units (--units). See metrics.hpp for the definitions.
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
#include "host/tools/eval_cli.hpp"
#include "host/eval/metrics.hpp"

namespace {

constexpr const char* kTool = "ddpm_eval";

using Options = ddpm::tools::EvalOptions;

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
  const ddpm::tools::DataChoice data = ddpm::tools::load_data(o.data);
  // A file is compared in its normalized coordinates: samples in its units are normalized as it is.
  const bool normalize = data.dataset == ddpm::Dataset::kFile && o.units == "data";
  const ddpm::eval::Report report = ddpm::eval::evaluate(
      normalize ? ddpm::eval::file_normalized(samples, data.source()) : samples, o.seed, data.source());
  const std::string json = ddpm::eval::to_json(report);
  if (!o.out.empty()) ddpm::io::write_file_atomic(o.out, json.data(), json.size());
  const std::string text = o.json ? json : ddpm::eval::to_text(report);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  ddpm::tools::EvalOptions o;
  CLI::App app{"Compare samples with the true distribution (two moons by default): sliced W1, MMD^2, precision "
               "and recall, next to the noise floor of an exact draw of the same size",
               kTool};
  ddpm::tools::add_eval_options(app, o);
  return ddpm::tools::run_tool(kTool, app, argc, argv, [&] {
    ddpm::tools::check_eval_options(app, o);
    run(o);
  });
}
