// CTest runs the CPU tests once per instruction-set build (DDPM_CPU_ISA, see
// tests/CMakeLists.txt): where the CPU lacks the one named, every test skips
// with the reason instead of failing on the backend's first call.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "host/cpu/cpu_backend.hpp"

namespace ddpm {
namespace {

class IsaEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* isa = std::getenv("DDPM_CPU_ISA");
    if (isa && std::string(isa) == "avx512" && !cpu::cpu_supports(cpu::CpuIsa::kAvx512))
      GTEST_SKIP() << "DDPM_CPU_ISA=avx512 on a CPU without AVX-512";
    std::printf("CPU backend build: %s\n", cpu::name_of(cpu::active_cpu_isa()));
  }
};

const auto* const kIsaEnvironment = ::testing::AddGlobalTestEnvironment(new IsaEnvironment);

}  // namespace
}  // namespace ddpm
