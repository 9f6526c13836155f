// The CPU backend's hot code (layers.cpp, train.cpp, sample.cpp) is compiled
// once per instruction set, into namespace ddpm::cpu::avx2 and
// ddpm::cpu::avx512 (host/CMakeLists.txt defines DDPM_CPU_ISA), and
// cpu_isa.cpp picks one at run time. Internal header.
//
// The AVX-512 build does not pass -mavx512f to the compiler: its sources turn
// the instruction set on with DDPM_CPU_ISA_BEGIN *after* every other include.
// A flag would also compile the inline functions of the standard library and
// of ddpm/*.hpp with AVX-512; the linker keeps one copy of each, and a copy
// with AVX-512 instructions would then run on a CPU without them. Under the
// pragma only this project's per-ISA namespace gets the wider instructions.
// DDPM_CPU_ISA_END closes the region at the end of the source.
// (tools/isa_guard.sh checks the linked binaries for exactly that.)
#pragma once

#include <immintrin.h>

#include <cstdint>

#if !defined(DDPM_CPU_ISA)
#error "compile this source once per instruction set with DDPM_CPU_ISA=avx2|avx512 (host/CMakeLists.txt)"
#endif

#if DDPM_CPU_ISA_AVX512 && defined(__clang__)
// AVX-512 F/BW/DQ/VL: every AVX-512 CPU since Skylake-SP and Zen 4. BF16 is
// enabled for the compiler only; its kernels run only where the CPU has it.
#define DDPM_CPU_ISA_BEGIN                                                                                  \
  _Pragma("clang attribute push(__attribute__((target(\"avx512f,avx512bw,avx512dq,avx512vl,avx512bf16\"))), \
           apply_to = function)")
#define DDPM_CPU_ISA_END _Pragma("clang attribute pop")
#elif DDPM_CPU_ISA_AVX512
// (GCC 12's _mm512_undefined_* initialize a register from itself, which
// -W[maybe-]uninitialized reports wherever an intrinsic using one is inlined,
// at the end of the source: so these stay off to its end.)
#define DDPM_CPU_ISA_BEGIN                                                                               \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx512f,avx512bw,avx512dq,avx512vl,avx512bf16\")") \
      _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")
#define DDPM_CPU_ISA_END _Pragma("GCC pop_options")
#else
#define DDPM_CPU_ISA_BEGIN
#define DDPM_CPU_ISA_END
#endif
