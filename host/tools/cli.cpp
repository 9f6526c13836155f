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
