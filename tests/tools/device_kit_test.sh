#!/usr/bin/env bash
# The device kit's scripts (tools/device_run.sh, tools/device_kit.sh,
# tools/abi_ceiling.sh) on planted kits, a planted GPU and planted binaries,
# here, with no GPU, no network, no PyTorch and no numpy: what the lent machine
# would hit in its first minutes is caught before it travels.
#
#   device_kit_test.sh SOURCE_DIR CASE [BINARY...]
#
# The planted kit holds the run script under test, stub binaries that log the
# library path they were given, and a MANIFEST; a stub nvidia-smi lists one
# GPU so the GPU stages run; torch and numpy are fake modules on PYTHONPATH (or
# modules that fail to import, to play their absence); a sitecustomize.py
# points sysconfig's include folder at a planted one (with or without
# Python.h). The kit build runs with a stub cmake that "builds" planted ELF
# files, so everything after the build runs for real in seconds.
#
# Cases (one CTest test each, tests/tools/CMakeLists.txt):
#   library-path           the kit binaries get the kit's lib/ and cuBLAS; python never does
#   cublas-site-packages   no toolkit, no ldconfig entry: cuBLAS is found in PyTorch's nvidia/cu13/lib, on
#                          python3's path or in the peer's venv beside the kit
#   bench-without-cublas   no cuBLAS anywhere: only the unfused path's test skips; ddpm_bench's stages run
#   peer-prerequisites     without numpy, torch, or a GPU that torch sees, the six peer stages skip saying which
#   compile-prerequisites  without a C compiler or Python.h the two torch.compile stages skip saying which
#   sanitizer-alone        --only memcheck-...: the probe runs first, the stage runs, the table is written
#   sanitizer-probe-by-name  --only facts,racecheck-...: the stage runs; a refusing sanitizer skips it, saying so
#   fresh-clone            tools/device_kit.sh in a tree without build/
#   abi-planted            tools/abi_ceiling.sh on binaries planted with versions at and above the ceiling
#   abi-kit                tools/device_kit.sh refuses a binary above the ceiling; MANIFEST records needed and ceiling
#   abi-built BINARY...    tools/abi_ceiling.sh on this build's binaries
#   cublas-not-needed BINARY...  no binary NEEDs libcublas (readelf -d): they open it at run time
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: device_kit_test.sh SOURCE_DIR CASE [BINARY...]" >&2; exit 2; }
src=$(cd "$1" && pwd)
case_name=$2
shift 2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
fail() {
  echo "device_kit_test $case_name: $1" >&2
  for f in "$scratch/run.log" "$scratch/kit-build.log"; do
    [ -f "$f" ] && { echo "--- $f (tail)" >&2; tail -n 40 "$f" >&2; }
  done
  exit 1
}

# ---- A planted GPU machine and kit ----
real_python=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) \
  || { echo "device_kit_test: python3 is needed (the run script's own checks run it)" >&2; exit 1; }
kit_binaries=(ddpm_cuda_train ddpm_cuda_sample ddpm_eval ddpm_bench test_emu_gpu_twin test_reverse_step_gpu
              test_forward_process_gpu test_sample_stats_gpu test_sample_unfused_gpu test_sample_fused_gpu
              test_train_step_gpu)
fake="$scratch/fakebin"
make_machine() {
  mkdir -p "$fake" "$scratch/cuda/lib64" "$scratch/py" "$scratch/inc" "$scratch/noinc"
  ln -s "$real_python" "$fake/python3"
  cat > "$fake/nvidia-smi" <<'SH'
#!/bin/bash
case "$*" in
  -L) echo "GPU 0: Planted GPU (UUID: GPU-planted)" ;;
  *--query-gpu=name,*) printf 'name, compute_cap\nPlanted GPU, 9.0\n' ;;
  *--query-gpu=name*) echo "Planted GPU" ;;
  *--query-gpu=driver_version*) echo "999.99" ;;
  *--query-gpu=clocks.max.sm*) echo "1980 MHz" ;;
  *) echo "planted nvidia-smi" ;;
esac
SH
  # compute-sanitizer: says $SANITIZER_SAYS and exits $SANITIZER_RC (a refusing one says "Device not supported")
  cat > "$fake/compute-sanitizer" <<'SH'
#!/bin/bash
echo "compute-sanitizer $*" >> "$STUB_LOG"
[ -n "${SANITIZER_SAYS:-}" ] && echo "$SANITIZER_SAYS"
exit "${SANITIZER_RC:-0}"
SH
  printf '#!/bin/sh\nexit 0\n' > "$fake/cc"
  chmod +x "$fake"/*
  touch "$scratch/cuda/lib64/libcublas.so.13" "$scratch/cuda/lib64/libcublasLt.so.13" "$scratch/inc/Python.h"
  fake_modules
  cat > "$scratch/py/sitecustomize.py" <<'PY'
# The include folder sysconfig names (where Python.h is), planted.
import os, sysconfig
_inc = os.environ.get("PLANTED_PY_INCLUDE")
if _inc:
    _get_paths = sysconfig.get_paths
    def get_paths(*a, **k):
        d = dict(_get_paths(*a, **k))
        d["include"] = _inc
        return d
    sysconfig.get_paths = get_paths
PY
}
fake_modules() {  # torch and numpy, planted
  rm -rf "${scratch:?}/py/torch" "$scratch/py/numpy"
  mkdir -p "$scratch/py/torch" "$scratch/py/numpy"
  # torch: logs the library path its interpreter was given; sees the GPU unless PLANTED_TORCH_CUDA=0.
  cat > "$scratch/py/torch/__init__.py" <<'PY'
import os
with open(os.environ["STUB_LOG"], "a") as f:
    f.write("python LD_LIBRARY_PATH=" + os.environ.get("LD_LIBRARY_PATH", "<unset>") + "\n")
__version__ = "2.99.0+planted"
class version:
    cuda = "13.0"
class cuda:
    @staticmethod
    def is_available():
        return os.environ.get("PLANTED_TORCH_CUDA", "1") == "1"
PY
  echo '__version__ = "0.0+planted"' > "$scratch/py/numpy/__init__.py"
}
absent_module() {  # absent_module NAME: importing it fails as if it were not installed
  rm -rf "${scratch:?}/py/$1" && mkdir -p "$scratch/py/$1"
  echo "raise ModuleNotFoundError(\"No module named '$1'\", name='$1')" > "$scratch/py/$1/__init__.py"
}
make_kit() {  # make_kit [stub-peer]: $scratch/kit, its run script the one under test
  local k="$scratch/kit" b
  mkdir -p "$k/bin" "$k/lib" "$k/peer"
  cp "$src/tools/device_run.sh" "$k/"
  for b in "${kit_binaries[@]}"; do
    printf '#!/bin/bash\necho "bin %s LD_LIBRARY_PATH=${LD_LIBRARY_PATH-<unset>}" >> "$STUB_LOG"\n' "$b" > "$k/bin/$b"
    chmod +x "$k/bin/$b"
  done
  echo "planted libgomp" > "$k/lib/libgomp.so.1"
  if [ "${1:-}" = stub-peer ]; then
    cat > "$k/peer/ddpm_torch.py" <<'PY'
import os
with open(os.environ["STUB_LOG"], "a") as f:
    f.write("python LD_LIBRARY_PATH=" + os.environ.get("LD_LIBRARY_PATH", "<unset>") + "\n")
print("train: 5000 steps x 512 in 1.5 s, final loss 0.4")
PY
  else
    cp "$src/bench/peer/ddpm_torch.py" "$k/peer/"
  fi
  { echo "ddpm-cuda device kit (planted)"; echo "commit: planted"; echo "date: 2000-01-01T00:00:00Z"
    echo "arch: sm_90"; echo "nvcc: planted"; echo "files:"
    (cd "$k" && find . -type f ! -name MANIFEST | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum); } > "$k/MANIFEST"
}
# No cuBLAS but what a case plants: no toolkit (DDPM_CUDA_TOOLKITS, which replaces
# /usr/local/cuda and the rest) and an ldconfig that knows no library.
hide_system_cublas() {
  mkdir -p "$scratch/nocuda"
  printf '#!/bin/sh\nexit 0\n' > "$fake/ldconfig"
  chmod +x "$fake/ldconfig"
}
plant_cublas() {  # plant_cublas DIR: the two libraries (the run script checks only that they exist)
  mkdir -p "$1"
  touch "$1/libcublas.so.13" "$1/libcublasLt.so.13"
}
expect_library_path() {  # expect_library_path PATH: what every kit binary that ran was given
  local who rest
  grep -q '^bin ' "$scratch/stub.log" || fail "no kit binary ran"
  while read -r who rest; do
    [ "$who" = bin ] || continue
    [ "${rest#* }" = "LD_LIBRARY_PATH=$1" ] || fail "kit binary ${rest%% *} got ${rest#* }, not LD_LIBRARY_PATH=$1"
  done < "$scratch/stub.log"
}
rc=0
run_kit() {  # run_kit [VAR=VALUE...] -- ARGS...: the planted kit's run (on $run_path, else the PATH); its exit status in $rc
  local vars=()
  while [ "$1" != -- ]; do vars+=("$1"); shift; done
  shift
  rm -rf "$scratch/out" "$scratch/kit/run"
  : > "$scratch/stub.log"
  set +e
  env -u CC PATH="$fake:${run_path:-$PATH}" CUDA_HOME="$scratch/cuda" PYTHONPATH="$scratch/py" STUB_LOG="$scratch/stub.log" \
    LD_LIBRARY_PATH=/caller/lib PLANTED_PY_INCLUDE="$scratch/inc" "${vars[@]}" \
    bash "$scratch/kit/device_run.sh" --out "$scratch/out" "$@" > "$scratch/run.log" 2>&1
  rc=$?
  set -e
  [ -s "$scratch/out/table.txt" ] || fail "the run (exit $rc) wrote no table"
}
status_of() { sed -n "s/^{\"stage\": \"$1\", \"status\": \"\([a-z]*\)\".*/\1/p" "$scratch/out/results.jsonl"; }
reason_of() { sed -n "s/^{\"stage\": \"$1\", .*\"reason\": \"\(.*\)\", \"figures\": .*/\1/p" "$scratch/out/results.jsonl"; }
expect() {  # expect STAGE STATUS [REASON-SUBSTRING]
  local s r
  s=$(status_of "$1"); r=$(reason_of "$1")
  [ "$s" = "$2" ] || fail "stage $1 is '${s:-absent}' ($r), not $2"
  [ -z "${3:-}" ] || [[ "$r" == *"$3"* ]] || fail "stage $1's reason '$r' does not say '$3'"
}

# ---- Planted ELF files for the ABI ceiling ----
plant() {  # plant OUT SONAME:VERSION...: a binary needing each VERSION of the library SONAME (stubs: never run)
  local out=$1 d="$scratch/plant-${1##*/}" spec lib i=0 calls="" libs=()
  shift
  mkdir -p "$d"
  declare -A nodes=()
  for spec in "$@"; do
    lib=${spec%%:*}; i=$((i + 1))
    nodes[$lib]+="${spec#*:} { global: planted_$i; }; "
    echo "void planted_$i(void) {}" >> "$d/$lib.c"
    calls+="planted_$i(); "
    echo "void planted_$i(void);" >> "$d/main.c"
  done
  for lib in "${!nodes[@]}"; do
    echo "${nodes[$lib]}" > "$d/$lib.map"
    gcc -shared -fPIC -nostdlib -Wl,-soname,"$lib" -Wl,--version-script="$d/$lib.map" -o "$d/$lib" "$d/$lib.c"
    libs+=("$d/$lib")
  done
  echo "void _start(void) { $calls}" >> "$d/main.c"
  gcc -nostdlib -o "$out" "$d/main.c" "${libs[@]}"
}
ceiling_check() {  # ceiling_check FILE...: tools/abi_ceiling.sh's output and status in $out, $rc
  set +e
  out=$("$src/tools/abi_ceiling.sh" "$@" 2>&1)
  rc=$?
  set -e
}
# A planted tree for tools/device_kit.sh: the scripts under test, and a cmake whose
# build puts $PLANTED_BINARY in place of every target (the kit's checks then run on it).
make_tree() {
  local t="$scratch/tree"
  mkdir -p "$t/tools" "$t/bench/peer" "$scratch/kitbin"
  cp "$src"/tools/*.sh "$t/tools/"
  cp "$src/bench/peer/ddpm_torch.py" "$t/bench/peer/"
  cat > "$scratch/kitbin/cmake" <<'SH'
#!/bin/bash
if [ "$1" = --build ]; then
  dir=$2; shift 2; [ "$1" = --target ] && shift
  mkdir -p "$dir/bin" && for b in "$@"; do cp "$PLANTED_BINARY" "$dir/bin/$b"; done
  exit 0
fi
echo "planted cmake configured: $*"
SH
  chmod +x "$scratch/kitbin/cmake"
}
build_kit() {  # build_kit PLANTED_BINARY: tools/device_kit.sh in the planted tree; status in $rc
  set +e
  (cd "$scratch/tree" && env PATH="$scratch/kitbin:$PATH" PLANTED_BINARY="$1" tools/device_kit.sh) \
    > "$scratch/kit-build.log" 2>&1
  rc=$?
  set -e
}
plant_ok() {  # an ordinary C++ program: what the kit's binaries need, from this machine's glibc and libstdc++
  printf '#include <iostream>\n#include <string>\nint main(int c, char**) { std::cout << std::string(c, 60) << std::endl; }\n' \
    > "$scratch/ok.cpp"
  g++ -O1 -o "$scratch/ok" "$scratch/ok.cpp"
}

case "$case_name" in
  library-path)
    make_machine
    make_kit stub-peer
    run_kit -- --only facts,kit,train-cpu,peer-train-fused
    [ "$rc" -eq 0 ] || fail "the run failed (exit $rc)"
    for s in facts kit train-cpu peer-train-fused; do expect "$s" pass; done
    want="$scratch/kit/lib:$scratch/cuda/lib64:/caller/lib"
    grep -q '^bin ddpm_cuda_train ' "$scratch/stub.log" || fail "ddpm_cuda_train never ran"
    [ "$(grep -c '^python ' "$scratch/stub.log")" -ge 2 ] || fail "python ran fewer than twice (facts, the peer)"
    while read -r who rest; do
      case "$who" in
        bin) [ "${rest#* }" = "LD_LIBRARY_PATH=$want" ] || fail "kit binary ${rest%% *} got ${rest#* }, not LD_LIBRARY_PATH=$want" ;;
        # python's own CUDA libraries (PyTorch's wheels) must come first: the caller's path, untouched
        python) [ "$rest" = "LD_LIBRARY_PATH=/caller/lib" ] || fail "python got $rest, not the caller's LD_LIBRARY_PATH=/caller/lib" ;;
      esac
    done < "$scratch/stub.log"
    ;;
  cublas-site-packages)
    make_machine
    make_kit stub-peer
    hide_system_cublas
    nocuda=(DDPM_CUDA_TOOLKITS="$scratch/nocuda" CUDA_HOME="$scratch/nocuda")
    # PyTorch's CUDA 13 wheels: site-packages/nvidia/cu13/lib, on python3's path
    plant_cublas "$scratch/site-packages/nvidia/cu13/lib"
    run_kit "${nocuda[@]}" PYTHONPATH="$scratch/py:$scratch/site-packages" -- --only facts,kit,train-cpu
    [ "$rc" -eq 0 ] || fail "the run failed (exit $rc)"
    expect facts pass
    expect kit pass
    expect_library_path "$scratch/kit/lib:$scratch/site-packages/nvidia/cu13/lib:/caller/lib"
    grep -q "^cuBLAS 13: $scratch/site-packages/nvidia/cu13/lib\$" "$scratch/kit/run/logs/facts.log" \
      || fail "the facts do not name the planted cuBLAS"
    # The peer's venv beside the kit (bench/peer/setup_peers.sh's build/peer-venv beside build/device-kit),
    # which python3 on the PATH does not see
    rm -rf "${scratch:?}/site-packages"
    venv_lib="$scratch/peer-venv/lib/python3.99/site-packages/nvidia/cu13/lib"
    plant_cublas "$venv_lib"
    run_kit "${nocuda[@]}" -- --only facts,train-cpu
    [ "$rc" -eq 0 ] || fail "the run with cuBLAS in the peer's venv failed (exit $rc)"
    expect_library_path "$scratch/kit/lib:$venv_lib:/caller/lib"
    ;;
  bench-without-cublas)
    make_machine
    make_kit
    hide_system_cublas
    run_kit DDPM_CUDA_TOOLKITS="$scratch/nocuda" CUDA_HOME="$scratch/nocuda" -- \
      --only kit,gpu-test_sample_unfused_gpu,bench-e2e,bench-kernels
    [ "$rc" -eq 0 ] || fail "a run without cuBLAS failed (exit $rc)"
    expect kit pass
    expect gpu-test_sample_unfused_gpu skip "cuBLAS 13 not found"
    # ddpm_bench opens cuBLAS itself and skips only its cuBLAS rows: the fused kernels' timings must run
    expect bench-kernels pass
    expect bench-e2e pass
    grep -q '^bin ddpm_bench .*' "$scratch/stub.log" || fail "ddpm_bench never ran"
    grep -q 'unfused samples not judged: cuBLAS 13 not found' "$scratch/kit/run/logs/bench-e2e.log" \
      || fail "bench-e2e does not say why the unfused samples were not judged"
    expect_library_path "$scratch/kit/lib:/caller/lib"
    ;;
  peer-prerequisites)
    make_machine
    make_kit
    peers=peer-train-fused,peer-train-compile,peer-sample-eager,peer-sample-graph,peer-sample-graph-bf16,peer-sample-compile
    absent_module numpy
    run_kit -- --only "$peers"
    [ "$rc" -eq 0 ] || fail "a run without numpy failed (exit $rc): its peer stages must skip"
    for s in ${peers//,/ }; do expect "$s" skip "cannot import numpy (No module named 'numpy')"; done
    fake_modules
    absent_module torch
    run_kit -- --only "$peers"
    [ "$rc" -eq 0 ] || fail "a run without torch failed (exit $rc)"
    for s in ${peers//,/ }; do expect "$s" skip "cannot import torch"; done
    fake_modules
    run_kit PLANTED_TORCH_CUDA=0 -- --only "$peers"
    [ "$rc" -eq 0 ] || fail "a run whose torch sees no GPU failed (exit $rc)"
    for s in ${peers//,/ }; do expect "$s" skip "does not see the GPU"; done
    ;;
  compile-prerequisites)
    make_machine
    make_kit
    compiled=peer-train-compile,peer-sample-compile
    run_kit CC=/nonexistent/cc -- --only "$compiled"
    [ "$rc" -eq 0 ] || fail "a run whose CC is missing failed (exit $rc)"
    for s in ${compiled//,/ }; do expect "$s" skip "CC is '/nonexistent/cc'"; done
    run_kit CC="$fake/cc" PLANTED_PY_INCLUDE="$scratch/noinc" -- --only "$compiled"
    [ "$rc" -eq 0 ] || fail "a run without Python.h failed (exit $rc)"
    for s in ${compiled//,/ }; do expect "$s" skip "Python.h (not in $scratch/noinc"; done
    # No CC and no gcc or clang on the PATH: every other program, linked.
    mkdir -p "$scratch/nocc"
    IFS=: read -ra dirs <<<"$PATH"
    for d in "${dirs[@]}"; do   # ln keeps the first of a name, as the PATH's order would
      [ -d "$d" ] && find "$d" -maxdepth 1 -mindepth 1 | grep -vE '/(gcc|clang)(-[0-9.]+)?$' \
        | xargs -r ln -s -t "$scratch/nocc" 2> /dev/null || true
    done
    run_path="$scratch/nocc" run_kit -- --only "$compiled"
    [ "$rc" -eq 0 ] || fail "a run without a C compiler failed (exit $rc)"
    for s in ${compiled//,/ }; do expect "$s" skip "a C compiler (\$CC, gcc or clang; none is here)"; done
    # Both present: the stages run (and fail here on the fake torch): the checks must not skip more than they should.
    run_kit CC="$fake/cc" -- --only "$compiled"
    for s in ${compiled//,/ }; do [ "$(status_of "$s")" != skip ] || fail "stage $s skipped with a C compiler and Python.h: $(reason_of "$s")"; done
    ;;
  sanitizer-alone)
    make_machine
    make_kit
    run_kit -- --only memcheck-test_emu_gpu_twin
    [ "$rc" -eq 0 ] || fail "--only memcheck-test_emu_gpu_twin failed (exit $rc)"
    expect sanitizer-probe pass
    expect memcheck-test_emu_gpu_twin pass
    grep -q "compute-sanitizer --tool memcheck --error-exitcode 1 $scratch/kit/bin/test_emu_gpu_twin --gtest_brief=1 --gtest_filter=" \
      "$scratch/stub.log" || fail "memcheck never ran test_emu_gpu_twin"
    grep -q '^memcheck-test_emu_gpu_twin  *pass' "$scratch/out/table.txt" || fail "the table lacks the memcheck row"
    # --skip sanitizer-probe: the stage runs unprobed
    run_kit -- --only memcheck-test_emu_gpu_twin --skip sanitizer-probe
    [ "$rc" -eq 0 ] || fail "--skip sanitizer-probe failed (exit $rc)"
    [ -z "$(status_of sanitizer-probe)" ] || fail "the probe ran though --skip named it"
    expect memcheck-test_emu_gpu_twin pass
    ;;
  sanitizer-probe-by-name)
    make_machine
    make_kit
    run_kit -- --only facts,racecheck-test_train_step_gpu
    [ "$rc" -eq 0 ] || fail "--only facts,racecheck-test_train_step_gpu failed (exit $rc)"
    expect racecheck-test_train_step_gpu pass
    run_kit -- --only sanitizer-probe,facts,synccheck-test_sample_fused_gpu
    [ "$rc" -eq 0 ] || fail "the probe in --only, then another stage: the run failed (exit $rc)"
    expect synccheck-test_sample_fused_gpu pass
    [ "$(grep -c 'test_emu_gpu_twin' "$scratch/stub.log")" -eq 1 ] || fail "the probe ran more than once"
    run_kit SANITIZER_SAYS="========= Error: Device not supported" SANITIZER_RC=1 -- --only facts,memcheck-test_emu_gpu_twin
    expect sanitizer-probe fail
    expect memcheck-test_emu_gpu_twin skip "compute-sanitizer refuses this device (Device not supported)"
    ;;
  fresh-clone)
    make_tree
    plant_ok
    [ ! -e "$scratch/tree/build" ] || fail "the planted tree has a build/ folder"
    build_kit "$scratch/ok"
    [ "$rc" -eq 0 ] || fail "tools/device_kit.sh failed in a tree without build/ (exit $rc)"
    grep -q '^planted cmake configured: -S \. -B build/device-kit-build ' "$scratch/tree/build/device-kit-build.configure.log" \
      || fail "the configure log does not show the configure step"
    [ -s "$scratch/tree/build/device-kit/MANIFEST" ] || fail "no MANIFEST"
    ;;
  abi-planted)
    plant "$scratch/at" libc.so.6:GLIBC_2.4 libc.so.6:GLIBC_2.35 libc.so.6:GLIBC_2.2.5 \
      libstdc++.so.6:GLIBCXX_3.4.9 libstdc++.so.6:GLIBCXX_3.4.30 libstdc++.so.6:CXXABI_1.3.13 libstdc++.so.6:CXXABI_1.3
    ceiling_check "$scratch/at"
    [ "$rc" -eq 0 ] || fail "a binary at the ceiling failed (exit $rc): $out"
    # the newest by number (2.35, not 2.4 as text would have it)
    [ "$out" = "glibc_needed: GLIBC_2.35
glibcxx_needed: GLIBCXX_3.4.30
cxxabi_needed: CXXABI_1.3.13
abi_ceiling: GLIBC_2.35 GLIBCXX_3.4.30 CXXABI_1.3.13" ] || fail "unexpected report for a binary at the ceiling: $out"
    for over in libc.so.6:GLIBC_2.36 libstdc++.so.6:GLIBCXX_3.4.31 libstdc++.so.6:CXXABI_1.3.14 libc.so.6:GLIBC_ABI_DT_RELR; do
      name=${over#*:}
      plant "$scratch/over-$name" libc.so.6:GLIBC_2.2.5 "$over"
      ceiling_check "$scratch/at" "$scratch/over-$name"
      [ "$rc" -eq 1 ] || fail "a binary needing $name passed (exit $rc): $out"
      grep -q "^abi_ceiling.sh: $scratch/over-$name needs $name" <<<"$out" || fail "no line names $name: $out"
      ! grep -q "$scratch/at needs" <<<"$out" || fail "the binary at the ceiling was blamed: $out"
    done
    # bad input: one line naming the value, exit 2
    set +e
    out=$("$src/tools/abi_ceiling.sh" --ceiling GLIBC_2.35,GLIBCXX_3.x "$scratch/at" 2>&1); rc=$?
    set -e
    [ "$rc" -eq 2 ] && [[ "$out" == *"not 'GLIBCXX_3.x'"* ]] || fail "a bad --ceiling was not refused by name (exit $rc): $out"
    ceiling_check "$scratch/missing"
    [ "$rc" -eq 2 ] && [[ "$out" == *"no such file '$scratch/missing'"* ]] || fail "a missing file was not named (exit $rc): $out"
    ;;
  abi-kit)
    make_tree
    mkdir -p "$scratch/tree/build"
    plant "$scratch/too-new" libc.so.6:GLIBC_2.2.5 libc.so.6:GLIBC_2.38
    build_kit "$scratch/too-new"
    [ "$rc" -ne 0 ] || fail "tools/device_kit.sh passed binaries that need GLIBC_2.38"
    grep -q 'needs GLIBC_2.38, above the ceiling GLIBC_2.35' "$scratch/kit-build.log" || fail "the failure does not name GLIBC_2.38"
    [ ! -e "$scratch/tree/build/device-kit/MANIFEST" ] || fail "a kit that would not start got a MANIFEST"
    plant_ok
    build_kit "$scratch/ok"
    [ "$rc" -eq 0 ] || fail "tools/device_kit.sh failed on this machine's own C++ program (exit $rc)"
    m="$scratch/tree/build/device-kit/MANIFEST"
    for k in glibc_needed glibcxx_needed cxxabi_needed; do
      grep -qE "^$k: [A-Z]+_[0-9.]+$" "$m" || fail "MANIFEST lacks '$k: VERSION': $(grep _needed "$m")"
    done
    grep -qx 'abi_ceiling: GLIBC_2.35 GLIBCXX_3.4.30 CXXABI_1.3.13' "$m" || fail "MANIFEST lacks the ceiling"
    ;;
  abi-built)
    [ $# -gt 0 ] || { echo "device_kit_test abi-built: name the binaries" >&2; exit 2; }
    ceiling_check "$@"
    [ "$rc" -eq 0 ] || fail "this build's binaries are above the ceiling: $out"
    grep -q '^glibc_needed: GLIBC_2\.' <<<"$out" || fail "no glibc version read: $out"
    echo "$out"
    ;;
  cublas-not-needed)
    [ $# -gt 0 ] || { echo "device_kit_test cublas-not-needed: name the binaries" >&2; exit 2; }
    command -v readelf > /dev/null || fail "readelf (binutils) is needed"
    for b in "$@"; do
      needed=$(readelf -d "$b") || fail "readelf cannot read $b"
      ! grep -E 'NEEDED.*\[libcublas(Lt)?\.so' <<<"$needed" \
        || fail "$b NEEDs cuBLAS, so it cannot start without it: open it at run time (host/gpu/cublas_loader.hpp)"
      echo "$b: no libcublas among its NEEDED"
    done
    ;;
  *) echo "device_kit_test: unknown case '$case_name'" >&2; exit 2 ;;
esac
echo "device_kit_test $case_name: passed"
