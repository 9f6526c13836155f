// Fuzzes the four tools' command lines as the tools parse them: a fresh
// CLI::App with the tool's own flags (add_*_options), then run_tool with a
// body that runs only the post-parse check (check_*_options). An input is
//   1 byte: the tool (its value modulo 4: train, sample, eval, nll)
//   the rest: the arguments, separated by NUL bytes
// run_tool must end in exit code 0 (a valid line, --help) or 2 (a usage
// error): 1 would mean a check threw something other than UsageError, and an
// exception escaping run_tool would end the tool without its one-line error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "host/tools/cli.hpp"
#include "host/tools/eval_cli.hpp"
#include "host/tools/nll_cli.hpp"
#include "host/tools/sample_cli.hpp"
#include "host/tools/train_cli.hpp"
#include "tests/fuzz/fuzz_util.hpp"

namespace {

using namespace ddpm;

constexpr std::size_t kMaxArgs = 64;

template <class Options, class Add, class Check>
void parse_as(const char* tool, std::vector<std::string>& args, Add add, Check check) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  Options o;
  CLI::App app{"", tool};
  add(app, o);
  int rc = -1;
  try {
    rc = tools::run_tool(tool, app, int(args.size()), argv.data(), [&] { check(app, o); });
  } catch (const std::exception& e) {
    fuzz::fail(std::string(tool) + ": exception escaped run_tool: " + e.what());
  } catch (...) {
    fuzz::fail(std::string(tool) + ": exception of a type not derived from std::exception escaped run_tool");
  }
  if (rc != 0 && rc != 2) fuzz::fail(std::string(tool) + ": exit code " + std::to_string(rc));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return -1;
  const int tool = data[0] % 4;
  const char* const names[] = {"ddpm_cuda_train", "ddpm_cuda_sample", "ddpm_eval", "ddpm_cuda_nll"};
  std::vector<std::string> args{names[tool]};
  if (size > 1)
    for (std::string_view rest = fuzz::bytes(data + 1, size - 1);;) {
      const std::size_t nul = rest.find('\0');
      args.emplace_back(rest.substr(0, nul));
      if (nul == std::string_view::npos) break;
      rest.remove_prefix(nul + 1);
    }
  if (args.size() > kMaxArgs + 1) return -1;
  switch (tool) {
    case 0:
      parse_as<tools::TrainOptions>(names[tool], args, tools::add_train_options, tools::check_train_options);
      break;
    case 1:
      parse_as<tools::SampleOptions>(names[tool], args, tools::add_sample_options, tools::check_sample_options);
      break;
    case 2:
      parse_as<tools::EvalOptions>(names[tool], args, tools::add_eval_options, tools::check_eval_options);
      break;
    default:
      parse_as<tools::NllOptions>(names[tool], args, tools::add_nll_options, tools::check_nll_options);
  }
  return 0;
}
