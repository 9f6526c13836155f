#include "host/tools/cli_common.hpp"

#include <cuda_runtime_api.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "ddpm/error.hpp"
#include "host/io/atomic_file.hpp"

namespace ddpm::tools {

int cuda_device_count(std::string* reason) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    if (reason) *reason = std::string("no usable CUDA device: ") + cudaGetErrorString(err);
    return 0;
  }
  if (reason) *reason = count ? "" : "no CUDA device";
  return count;
}

Device choose_device(const std::string& flag, bool has_cuda_path, const std::string& tool) {
  if (flag == "cpu") return Device::kCpu;
  std::string reason;
  const int gpus = cuda_device_count(&reason);
  if (flag == "cuda") {
    if (gpus == 0) throw Error("--device cuda: " + reason);
    if (!has_cuda_path) throw Error("--device cuda: " + tool + " has no CUDA path in this build yet; use --device cpu");
    return Device::kCuda;
  }
  if (gpus > 0 && has_cuda_path) {
    std::fprintf(stderr, "%s: device: cuda (%d GPU%s found)\n", tool.c_str(), gpus, gpus > 1 ? "s" : "");
    return Device::kCuda;
  }
  std::fprintf(stderr, "%s: device: cpu (%s)\n", tool.c_str(),
               gpus == 0 ? reason.c_str() : "this build has no CUDA path for this tool yet");
  return Device::kCpu;
}

int run_tool(const std::string& tool, CLI::App& app, int argc, char** argv, const std::function<void()>& body) {
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
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", tool.c_str(), e.what());
    return 1;
  }
}

const CLI::Validator kUnsigned(
    [](std::string& v) -> std::string {
      if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
        return "'" + v + "' is not a non-negative integer";
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

void check_writable(const std::string& path) {
  if (!path.empty()) io::AtomicFile probe(path);  // creates the temporary file, removes it uncommitted
}

bool stderr_is_terminal() { return isatty(fileno(stderr)) != 0; }

}  // namespace ddpm::tools
