#!/usr/bin/env bash
# ptxas's resource report for every kernel of kernels/*.cu, for every GPU
# architecture the build targets: registers, static shared memory, stack frame
# and spills, one row per kernel and architecture. Spills put a kernel's
# registers in local memory (off-chip, through L1): a kernel that starts to
# spill fails the check, since that is a regression nothing else would catch
# before a profiler run on a GPU. No GPU is needed: this only compiles.
#
#   tools/ptxas_report.sh             # check: fail on any spill; note register drift from the checked-in report
#   tools/ptxas_report.sh --update    # also rewrite the checked-in report (bench/ptxas_report.txt)
#   tools/ptxas_report.sh --self-test # prove the check fails on spills (a canned report and a spilling kernel)
#   options: --margin N (registers a kernel may drift from the checked-in report unremarked; default 8)
#            --out FILE (also write this run's report there)
#
# Register drift is printed, not failed: another nvcc release allocates
# differently, and a change in registers is a question for a profiler, while a
# spill is a defect. Dynamic shared memory (the fused sampler's activations)
# is sized at launch and does not appear here; see kernels/*.hpp.
set -euo pipefail
cd "$(dirname "$0")/.."

report=bench/ptxas_report.txt
mode=check
margin=8
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --update) mode=update ;;
    --self-test) mode=self-test ;;
    --margin) margin="${2:?--margin needs a number}"; shift ;;
    --out) out="${2:?--out needs a file}"; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "ptxas_report.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$margin" =~ ^[0-9]+$ ]] || { echo "ptxas_report.sh: --margin takes a whole number, got '$margin'" >&2; exit 2; }

# $NVCC (the build's CMAKE_CUDA_COMPILER, for the CTest), else nvcc on PATH, else where the toolkit installs it.
nvcc="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
demangle=$(command -v c++filt || echo cat)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ptxas -v output (stdin) -> rows "function|arch|registers|smem|stack|spill_stores|spill_loads".
# A block starts at "Function properties for F" (every function ptxas emits,
# entry or not); its sizes follow on the next line, and an entry function's
# "Used N registers" line closes it. A non-inlined device function has no
# "Used" line: its row shows "-" for registers, but its spills still count.
parse_ptxas() {
  awk '
    function flush() {
      if (fn != "") print fn "|" arch "|" regs "|" smem "|" stack "|" st "|" ld
      fn = ""
    }
    /Compiling entry function/ {
      flush()
      if (match($0, /for .sm_[0-9]+[a-z]?./)) arch = substr($0, RSTART + 5, RLENGTH - 6)
      next
    }
    /Function properties for / {
      flush()
      fn = $NF; regs = "-"; smem = 0; stack = 0; st = 0; ld = 0
      next
    }
    /bytes stack frame/ && fn != "" {
      for (i = 1; i < NF; ++i) {
        if ($(i + 1) == "bytes" && $(i + 2) == "stack") stack = $i
        if ($(i + 1) == "bytes" && $(i + 2) == "spill" && $(i + 3) ~ /^stores/) st = $i
        if ($(i + 1) == "bytes" && $(i + 2) == "spill" && $(i + 3) ~ /^loads/) ld = $i
      }
      next
    }
    /Used [0-9]+ registers/ && fn != "" {
      for (i = 1; i < NF; ++i) {
        if ($i == "Used" && $(i + 2) ~ /^registers/) regs = $(i + 1)
        if ($(i + 1) == "bytes" && $(i + 2) ~ /^smem/) smem = $i
      }
      flush()
      next
    }
    END { flush() }
  '
}

# Rows (stdin) -> the report table, names demangled and cut at their argument list.
format_rows() {
  printf '%-44s %-6s %9s %10s %10s %12s %11s\n' kernel arch registers smem_bytes stack_bytes spill_stores spill_loads
  while IFS='|' read -r fn arch regs smem stack st ld; do
    # "void ns::k<(ns::Precision)1>(args)" -> "ns::k<Precision(1)>": no spaces, templates apart.
    name=$("$demangle" <<<"$fn" | sed -E 's/^void //; s/\(([A-Za-z_]+::)*([A-Za-z_]+)\)([0-9]+)/\2[\3]/g')
    name="${name%%(*}"
    name="${name//[/(}"
    name="${name//]/)}"
    printf '%-44s %-6s %9s %10s %10s %12s %11s\n' "$name" "$arch" "$regs" "$smem" "$stack" "$st" "$ld"
  done
}

# Table (file) -> one line per spilling kernel on stderr; status 1 if any.
check_spills() {
  awk 'NR > 1 && ($6 + 0 > 0 || $7 + 0 > 0) {
         printf "SPILL: %s on %s: %s bytes spill stores, %s bytes spill loads\n", $1, $2, $6, $7 > "/dev/stderr"; bad = 1
       }
       END { exit bad }' "$1"
}

# The build's architectures: the default CMAKE_CUDA_ARCHITECTURES of CMakeLists.txt
# (e.g. "80-real 86-real 89-real 90-real 90-virtual"), real ones only: ptxas runs for those.
build_archs() {
  local line
  line=$(grep -m1 -E 'set\(CMAKE_CUDA_ARCHITECTURES ' CMakeLists.txt || true)
  [ -n "$line" ] || { echo "ptxas_report.sh: no default CMAKE_CUDA_ARCHITECTURES in CMakeLists.txt" >&2; return 1; }
  grep -oE '[0-9]+[a-z]?-real' <<<"$line" | sed 's/-real//'
}

self_test() {
  local clean="$work/clean.txt" spilled="$work/spilled.txt"
  # 1. The parser and the check on canned ptxas output, one spilling kernel among clean ones.
  parse_ptxas > "$work/rows" <<'EOF'
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_Z5cleanPf' for 'sm_80'
ptxas info    : Function properties for _Z5cleanPf
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 32 registers, used 0 barriers, 360 bytes cmem[0]
ptxas info    : Compiling entry function '_Z5spillPf' for 'sm_90'
ptxas info    : Function properties for _Z5spillPf
    1440 bytes stack frame, 1436 bytes spill stores, 2912 bytes spill loads
ptxas info    : Used 24 registers, used 1 barriers, 1440 bytes cumulative stack size, 128 bytes smem, 368 bytes cmem[0]
EOF
  format_rows < "$work/rows" > "$spilled"
  grep -qE '^spill +sm_90 +24 +128 +1440 +1436 +2912$' "$spilled" \
    || { echo "self-test: the canned spilling kernel was misparsed:"; cat "$spilled"; return 1; } >&2
  if check_spills "$spilled" 2>/dev/null; then echo "self-test: a canned spill passed the check" >&2; return 1; fi
  grep -v '^spill ' "$spilled" > "$clean"
  check_spills "$clean" || { echo "self-test: a clean canned report failed the check" >&2; return 1; }
  # 2. The same through this nvcc: a kernel held to 24 registers with 64 live floats must spill.
  [ -x "$nvcc" ] || { echo "ptxas_report.sh: no nvcc at $nvcc (set NVCC, or put nvcc on PATH)" >&2; return 1; }
  cat > "$work/spill.cu" <<'EOF'
__global__ void deliberately_spilling_kernel(const float* __restrict__ in, float* __restrict__ out) {
  float v[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) v[i] = in[threadIdx.x * 64 + i];
  float s = 0.f;
#pragma unroll
  for (int r = 0; r < 8; ++r)
#pragma unroll
    for (int i = 0; i < 64; ++i) s = fmaf(v[i], v[(i * 7 + r) & 63], s);
  out[threadIdx.x] = s;
}
EOF
  "$nvcc" -cubin -arch=sm_80 -maxrregcount=24 -Xptxas -v "$work/spill.cu" -o "$work/spill.cubin" \
    > "$work/spill.log" 2>&1 || { cat "$work/spill.log" >&2; echo "self-test: nvcc failed on the spilling kernel" >&2; return 1; }
  parse_ptxas < "$work/spill.log" | format_rows > "$spilled"
  grep -q '^deliberately_spilling_kernel ' "$spilled" \
    || { echo "self-test: no row for the spilling kernel in this nvcc's report:"; cat "$work/spill.log"; return 1; } >&2
  if check_spills "$spilled" 2>/dev/null; then
    echo "self-test: the spilling kernel passed the check:" >&2; cat "$spilled" >&2; return 1
  fi
  echo "ptxas_report self-test passed: spills fail the check (canned report and $("$nvcc" --version | grep -oE 'release [0-9]+[0-9.]*' | head -n1))"
}

if [ "$mode" = self-test ]; then self_test; exit; fi

[ -x "$nvcc" ] || { echo "ptxas_report.sh: no nvcc at $nvcc (set NVCC, or put nvcc on PATH)" >&2; exit 1; }
mapfile -t archs < <(build_archs)
[ "${#archs[@]}" -gt 0 ] || { echo "ptxas_report.sh: no real architectures in CMakeLists.txt's CMAKE_CUDA_ARCHITECTURES" >&2; exit 1; }
# The flags of kernels/CMakeLists.txt and the Release build, device code only
# (one cubin per architecture: what the build's device passes compile).
: > "$work/rows"
# One nvcc per file and architecture, as many at a time as there are cores (each is one
# thread); their reports are read in order afterwards.
compile_cubin() {  # compile_cubin FILE.cu ARCH: the cubin and ptxas's log, or a .failed mark
  local base
  base=$(basename "$1" .cu)
  "$nvcc" -std=c++20 -O3 -DNDEBUG --expt-relaxed-constexpr -Iinclude -I. -cubin -arch="sm_$2" \
    -Xptxas -v -Xptxas -warn-spills "$1" -o "$work/$base.sm_$2.cubin" > "$work/$base.sm_$2.log" 2>&1 \
    || touch "$work/$base.sm_$2.failed"
}
jobs_max=$(nproc 2>/dev/null || echo 2)
for cu in kernels/*.cu; do
  for a in "${archs[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
    compile_cubin "$cu" "$a" &
  done
done
wait
for cu in kernels/*.cu; do
  base=$(basename "$cu" .cu)
  for a in "${archs[@]}"; do
    if [ -e "$work/$base.sm_$a.failed" ]; then
      cat "$work/$base.sm_$a.log" >&2
      echo "ptxas_report.sh: nvcc failed on $cu for sm_$a" >&2
      exit 1
    fi
    rows_before=$(wc -l < "$work/rows")
    parse_ptxas < "$work/$base.sm_$a.log" >> "$work/rows"
    [ "$(wc -l < "$work/rows")" -gt "$rows_before" ] \
      || { echo "ptxas_report.sh: no kernel in ptxas's report of $cu for sm_$a" >&2; exit 1; }
  done
done

table="$work/report.txt"
{
  echo "# ptxas resource usage per kernel and architecture (tools/ptxas_report.sh)."
  echo "# nvcc $("$nvcc" --version | grep -oE 'V[0-9]+[0-9.]*' | head -n1), -O3, architectures: ${archs[*]}. smem: static only (dynamic is sized at launch)."
  format_rows < "$work/rows" | { IFS= read -r header; echo "$header"; sort -k1,1 -k2,2; }
} > "$table"
cat "$table"
[ -z "$out" ] || cp "$table" "$out"

status=0
check_spills <(grep -v '^#' "$table") || status=1

# Register drift against the checked-in report (kernel and arch as the key).
if [ -f "$report" ]; then
  awk -v margin="$margin" '
    /^#/ || $1 == "kernel" { next }
    FNR == NR { old[$1 " " $2] = $3; next }
    { key = $1 " " $2; seen[key] = 1
      if (!(key in old)) { printf "note: %s on %s is not in the checked-in report\n", $1, $2; next }
      d = $3 - old[key]; if (d < 0) d = -d
      if (d > margin) printf "note: %s on %s uses %s registers, %s in the checked-in report\n", $1, $2, $3, old[key]
    }
    END { for (key in old) if (!(key in seen)) printf "note: %s is in the checked-in report but no longer built\n", key }
    ' "$report" "$table"
elif [ "$mode" = check ]; then
  echo "note: no checked-in report at $report (tools/ptxas_report.sh --update writes it)"
fi

if [ "$mode" = update ]; then
  cp "$table" "$report"
  echo "wrote $report"
fi
if [ "$status" -ne 0 ]; then echo "ptxas_report.sh: a kernel spills to local memory (see SPILL lines above)" >&2; fi
exit "$status"
