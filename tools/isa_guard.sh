#!/usr/bin/env bash
# Checks that the shipped binaries run on any x86-64 with AVX2: every function
# holding an AVX-512 instruction must belong to the CPU backend's AVX-512 build
# (a namespace "avx512", entered only after the run-time check of
# host/cpu/cpu_isa.cpp). An inline function of a header compiled with AVX-512
# would be kept by the linker for every caller, and crash on an AVX2-only CPU
# (host/cpu/isa_target.hpp): this is what finds one. No AVX-512 CPU is needed:
# it reads the disassembly.
#
#   tools/isa_guard.sh BINARY...   # fail if any function outside namespace avx512 uses AVX-512
#   tools/isa_guard.sh --self-test # prove it: a function compiled with -mavx512f is caught
set -euo pipefail

# AVX-512-only operands and instructions as objdump prints them: zmm or
# ymm/xmm 16-31, mask registers, embedded broadcast, and EVEX-only mnemonics.
pattern='%zmm|%k[1-7]|%[xy]mm(1[6-9]|2[0-9]|3[01])|\{1to[0-9]+\}|vpternlog|vrcp14|vrsqrt14|vscalef|vgetexp|vgetmant|vrndscale|vdpbf16|vcvtne2ps2bf16|vcvtneps2bf16|vpermt2|vpermi2|vcompress|vexpand|vfixupimm|vrange|vreduce|vpmovm2|vpmov[dq][bwd] |valign[dq]|vshuf[if](32x4|64x2)|vinsert[if](32x8|64x4)|vextract[if](32x8|64x4)|vbroadcast[if](32x[248]|64x[24])'

# Prints "function: instruction" for each offending function of one binary.
offenders() {
  objdump -d --no-show-raw-insn -C "$1" | awk -v pat="$pattern" '
    /^[0-9a-f]+ <.*>:$/ { fn = $0; sub(/^[0-9a-f]+ </, "", fn); sub(/>:$/, "", fn); next }
    $0 ~ pat && fn !~ /::avx512::/ && !(fn in seen) { seen[fn] = 1; sub(/^[ \t]*[0-9a-f]+:[ \t]*/, ""); print fn ": " $0 }'
}

# The number of functions in namespace avx512 holding AVX-512: the check is
# vacuous if the pattern stopped matching what the compiler emits.
wide_functions() {
  objdump -d --no-show-raw-insn -C "$1" | awk -v pat="$pattern" '
    /^[0-9a-f]+ <.*>:$/ { fn = $0; next }
    $0 ~ pat && fn ~ /::avx512::/ && !(fn in seen) { seen[fn] = 1; n++ }
    END { print n + 0 }'
}

if [ "${1:-}" = --self-test ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cat > "$tmp/leak.cpp" <<'CPP'
#include <immintrin.h>
namespace ddpm::cpu::avx512 { float wide(const float* p) { return _mm512_reduce_add_ps(_mm512_loadu_ps(p)); } }
float leaked(const float* p) { return _mm512_reduce_add_ps(_mm512_loadu_ps(p)); }
int main() { return 0; }
CPP
  "${CXX:-g++}" -O2 -mavx512f -o "$tmp/leak" "$tmp/leak.cpp"
  found=$(offenders "$tmp/leak")
  if ! grep -q '^leaked(' <<<"$found" || grep -q 'avx512::wide' <<<"$found"; then
    echo "isa_guard self-test: FAILED (found: ${found:-nothing})" >&2
    exit 1
  fi
  echo "isa_guard self-test: passed (caught: ${found%%$'\n'*})"
  exit 0
fi

[ $# -gt 0 ] || { echo "usage: tools/isa_guard.sh BINARY... | --self-test" >&2; exit 2; }
status=0
for bin in "$@"; do
  [ -f "$bin" ] || { echo "isa_guard: no such binary: $bin" >&2; exit 2; }
  found=$(offenders "$bin")
  if [ -n "$found" ]; then
    echo "isa_guard: $bin: AVX-512 outside the backend's AVX-512 build (would crash on an AVX2-only CPU):" >&2
    head -20 <<<"$found" >&2
    status=1
  else
    echo "isa_guard: $bin: AVX-512 only in namespace avx512 ($(wide_functions "$bin") functions)"
  fi
done
exit $status
