// Restores the CPU backend's instruction set when a test that switches it ends.
#pragma once

#include "host/cpu/cpu_backend.hpp"

namespace ddpm {

struct IsaGuard {
  cpu::CpuIsa saved = cpu::active_cpu_isa();
  ~IsaGuard() { cpu::select_cpu_isa(cpu::name_of(saved)); }
};

}  // namespace ddpm
