#include "host/tools/cli_common.hpp"

#include <cuda_runtime_api.h>
#include <unistd.h>

#include <cstdio>
#include <exception>

#include "ddpm/error.hpp"

namespace ddpm::tools {

int cuda_device_count(std::string* reason) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    if (reason) *reason = cudaGetErrorString(err);
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
    if (gpus == 0) throw Error("--device cuda: no CUDA device is available (" + reason + ")");
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

bool stderr_is_terminal() { return isatty(fileno(stderr)) != 0; }

}  // namespace ddpm::tools
