#include "host/tools/cli.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "ddpm/error.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/samples_io.hpp"
#include "host/tools/interrupt.hpp"

namespace ddpm::tools {

int run_tool(const std::string& tool, CLI::App& app, int argc, char** argv, const std::function<void()>& body) {
  install_interrupt_handlers(tool.c_str());
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    for (char& c : what)
      if (c == '\n') c = ' ';
    std::fprintf(stderr, "%s: error: %s (see --help)\n", tool.c_str(), what.c_str());
    return 2;
  }
  try {
    body();
    return 0;
  } catch (const Interrupted& e) {
    std::fprintf(stderr, "%s: %s\n", tool.c_str(), e.what());
    return 128 + e.signal;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: error: %s (see --help)\n", tool.c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", tool.c_str(), e.what());
    return 1;
  }
}

const CLI::Validator kUnsigned(
    [](std::string& v) -> std::string {
      if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || (v.size() > 1 && v[0] == '0'))
        return "'" + v + "' is not a non-negative decimal integer";
      if (v.size() > 20 || (v.size() == 20 && v > "18446744073709551615")) return "'" + v + "' is above 2^64 - 1";
      return {};
    },
    "UINT");

const CLI::Validator kFinite(
    [](std::string& v) -> std::string {
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !std::isfinite(d)) return "'" + v + "' is not a finite number";
      return {};
    },
    "FLOAT");

void add_cpu_isa_option(CLI::App& app, std::string& isa) {
  app.add_option("--cpu-isa", isa,
                 "the CPU backend's instruction set: auto (the widest this CPU has), avx2 or avx512; the two give "
                 "the same bytes in fp32 (default: $DDPM_CPU_ISA, else auto)")
      ->check(CLI::IsMember({"auto", "avx2", "avx512"}));
}

void add_model_options(CLI::App& app, ModelFlags& flags, bool from_checkpoint) {
  const std::string stored = from_checkpoint ? "; the checkpoint's is always used, and a value given must agree" : "";
  app.add_option("--x-embedding", flags.x_embedding,
                 "how the network sees x: none (the raw coordinates, the seed's model) or sinusoidal (each "
                 "coordinate through a 64-dim sin/cos embedding of --x-scale * x, which learns sharp shapes)" +
                     stored)
      ->check(CLI::IsMember({"none", "sinusoidal"}));
  app.add_option("--x-scale", flags.x_scale, "scale of x before the sinusoidal embedding" + stored)
      ->check(kFinite & CLI::Range(1e-3f, 1e4f));
}

ModelConfig model_from_flags(const CLI::App& app, const ModelFlags& flags) {
  ModelConfig model;
  if (flags.x_embedding == name_of(XEmbedding::kSinusoidal)) model.x_embedding = XEmbedding::kSinusoidal;
  else if (app.count("--x-scale") > 0) throw UsageError("--x-scale needs --x-embedding sinusoidal");
  model.x_scale = flags.x_scale;
  return model;
}

namespace {
std::string scale_string(float v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", double(v));
  return buf;
}
}  // namespace

void check_model_flags(const CLI::App& app, const ModelFlags& flags, const ModelConfig& stored,
                       const std::string& path) {
  if (app.count("--x-embedding") > 0 && flags.x_embedding != name_of(stored.x_embedding))
    throw UsageError("--x-embedding " + flags.x_embedding + " contradicts " + path + ", which has " +
                     name_of(stored.x_embedding));
  if (app.count("--x-scale") > 0 &&
      (stored.x_embedding != XEmbedding::kSinusoidal || flags.x_scale != stored.x_scale))
    throw UsageError("--x-scale " + scale_string(flags.x_scale) + " contradicts " + path + ", which has " +
                     (stored.x_embedding == XEmbedding::kSinusoidal ? "x-scale " + scale_string(stored.x_scale)
                                                                    : std::string("no x-embedding")));
}

void check_writable(const std::string& path) {
  if (!path.empty()) io::AtomicFile probe(path);  // creates the temporary file, removes it uncommitted
}

DataChoice load_data(const std::string& spec) {
  DataChoice d;
  d.spec = spec;
  if (const auto builtin = builtin_dataset(spec)) {
    d.dataset = *builtin;
    return d;
  }
  try {
    io::sample_format_of(spec);
  } catch (const Error&) {
    throw UsageError("--data " + spec + ": neither a built-in set (" + builtin_dataset_names() +
                     ") nor a .npy or .csv file");
  }
  d.dataset = Dataset::kFile;
  d.points = io::read_samples(spec);
  check_points(d.points.data(), int64_t(d.points.size()), spec);
  return d;
}

bool stderr_is_terminal() { return isatty(fileno(stderr)) != 0; }

}  // namespace ddpm::tools
