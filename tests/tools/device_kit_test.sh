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
#   bench-without-cublas   no cuBLAS anywhere: only the unfused path's test skips; ddpm_bench's stages run; cuBLAS
#                          found but the unfused job skipped: bench-e2e passes, saying why
#   peer-prerequisites     without numpy, torch, or a GPU that torch sees, the six peer stages skip saying which
#   compile-prerequisites  without torch.compile, a C compiler or Python.h the two torch.compile stages skip saying which
#   sanitizer-alone        --only memcheck-...: the probe runs first, the stage runs, the table is written
#   sanitizer-probe-by-name  --only facts,racecheck-...: the stage runs; a refusing or missing sanitizer skips it,
#                          saying so
#   nsight-csv             stub ncu and nsys whose reports read as real ones (ncu's details page as CSV, nsys
#                          stats' kernel summary): their headline figures reach results.jsonl and the table
#   nsight-skips           ncu and nsys missing, ncu refusing the device (its words), nsys found only in Nsight
#                          Compute's folder and making no report, ncu profiling no kernel, the program failing
#   stage-patterns         --only/--skip take shell patterns; --list sums the selected stages' estimates
#   lease-plan             README.md's two device calls: each call's stages fit its budget and timeout by
#                          their estimates, and both calls the 15-minute lease
#   rehearsal BUILD_DIR    tools/device_run.sh --rehearse on a kit of BUILD_DIR's emulated binaries: every stage
#                          passes or skips for a stated reason, the table and the entry say it is a rehearsal
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
kit_binaries=(ddpm_cuda_train ddpm_cuda_sample ddpm_cuda_nll ddpm_eval ddpm_bench test_emu_gpu_twin
              test_reverse_step_gpu test_forward_process_gpu test_sample_stats_gpu test_sample_unfused_gpu
              test_sample_fused_gpu test_train_step_gpu test_likelihood_gpu)
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
  # torch: logs the library path its interpreter was given; sees the GPU unless PLANTED_TORCH_CUDA=0;
  # has torch.compile unless PLANTED_TORCH_COMPILE=0 (PyTorch 1.x, Debian's).
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
if os.environ.get("PLANTED_TORCH_COMPILE", "1") == "1":
    def compile(model, **kwargs):
        return model
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

path_without() {  # path_without REGEX DIR: DIR links every program on the PATH but those whose path matches
  local d dirs
  mkdir -p "$2"
  IFS=: read -ra dirs <<<"$PATH"
  for d in "${dirs[@]}"; do   # ln keeps the first of a name, as the PATH's order would
    [ -d "$d" ] && find "$d" -maxdepth 1 -mindepth 1 | grep -vE "$1" | xargs -r ln -s -t "$2" 2> /dev/null || true
  done
}

# ---- Planted profilers ----
# ncu: logs its command line; --import prints $NCU_CSV_DIR/<report>.csv (else default.csv);
# a profiling run prints $NCU_SAYS, writes its report unless NCU_REPORT=0 and exits $NCU_RC.
# nsys: profile writes the .nsys-rep, or with NSYS_REPORT=0 only a .qdstrm and an error
# (as the one inside Nsight Compute's folder does on the lent image); stats prints $NSYS_CSV.
make_profilers() {  # make_profilers DIR
  mkdir -p "$1"
  cat > "$1/ncu" <<'SH'
#!/bin/bash
echo "ncu $*" >> "$STUB_LOG"
rep="" import="" prev=""
for a in "$@"; do
  [ "$prev" = --export ] && rep="$a"
  [ "$prev" = --import ] && import="$a"
  prev="$a"
done
if [ "$1" = --version ]; then
  echo "NVIDIA (R) Nsight Compute Command Line Profiler"; echo "Version 2025.3.1.0 (build planted) (public-release)"; exit 0
fi
if [ -n "$import" ]; then
  f="$NCU_CSV_DIR/$(basename "$import" .ncu-rep).csv"
  [ -f "$f" ] || f="$NCU_CSV_DIR/default.csv"
  cat "$f"; exit 0
fi
echo "==PROF== Connected to process 4242 (planted)"
[ -n "${NCU_SAYS:-}" ] && echo "$NCU_SAYS"
if [ "${NCU_REPORT:-1}" = 1 ] && [ -n "$rep" ]; then echo "planted" > "$rep.ncu-rep"; echo "==PROF== Report: $rep.ncu-rep"; fi
exit "${NCU_RC:-0}"
SH
  cat > "$1/nsys" <<'SH'
#!/bin/bash
echo "nsys $*" >> "$STUB_LOG"
out="" prev=""
for a in "$@"; do [ "$prev" = --output ] && out="$a"; prev="$a"; done
case "$1" in
  profile)
    if [ "${NSYS_REPORT:-1}" = 1 ]; then echo "planted" > "$out.nsys-rep"; echo "Generated:"; echo "    $out.nsys-rep"; exit 0; fi
    echo "planted" > "$out.qdstrm"
    echo "Generating '$out.qdstrm'"
    echo "Importer error status: QdstrmImporter could not be started"
    exit 1 ;;
  stats) cat "$NSYS_CSV"; exit 0 ;;
esac
exit 2
SH
  chmod +x "$1/ncu" "$1/nsys"
}
# ncu's details page (--csv --page details) as ncu 2025 writes it with --nvtx: the NVTX
# column, every field quoted, rule rows between metric rows, n/a values, thousands separators.
ncu_csv() {  # ncu_csv KERNEL DURATION_UNIT DURATION [KERNEL DURATION_UNIT DURATION...]
  local head='"ID","Process ID","Process Name","Host Name","thread Domain:Push/Pop_Range:PL_Type:PL_Value:CLR_Type:Color:Msg_Type:Msg","Kernel Name","Context","Stream","Block Size","Grid Size","Device","CC","Section Name","Metric Name","Metric Unit","Metric Value","Rule Name","Rule Type","Rule Description","Estimated Speedup Type","Estimated Speedup"'
  local id=0 k u d pre
  echo "$head"
  while [ $# -gt 0 ]; do
    k=$1 u=$2 d=$3; shift 3
    pre="\"$id\",\"4242\",\"ddpm_bench\",\"127.0.0.1\",\"<default domain>:timed:none:none:none:none:ascii:timed\",\"$k\",\"1\",\"13\",\"(256, 1, 1)\",\"(264, 1, 1)\",\"0\",\"9.0\""
    cat <<CSV
$pre,"GPU Speed Of Light Throughput","DRAM Frequency","Ghz","2.62","","","","",""
$pre,"GPU Speed Of Light Throughput","SM Frequency","Ghz","1.98","","","","",""
$pre,"GPU Speed Of Light Throughput","Elapsed Cycles","cycle","2,441,337","","","","",""
$pre,"GPU Speed Of Light Throughput","Memory Throughput","%","3.17","","","","",""
$pre,"GPU Speed Of Light Throughput","DRAM Throughput","%","0.41","","","","",""
$pre,"GPU Speed Of Light Throughput","Duration","$u","$d","","","","",""
$pre,"GPU Speed Of Light Throughput","L2 Cache Throughput","%","n/a","","","","",""
$pre,"GPU Speed Of Light Throughput","Compute (SM) Throughput","%","$((id + 91)).23","","","","",""
$pre,"GPU Speed Of Light Throughput","","","","SOLBottleneck","OPT","Compute is more heavily utilized than Memory: look at the Compute Workload Analysis section, ""pipelines"" included.","global","0"
$pre,"Launch Statistics","Block Size","","256","","","","",""
$pre,"Launch Statistics","Registers Per Thread","register/thread","$((id * 2 + 128))","","","","",""
$pre,"Launch Statistics","Waves Per SM","","1","","","","",""
$pre,"Occupancy","Theoretical Occupancy","%","25","","","","",""
$pre,"Occupancy","Achieved Occupancy","%","24.8$id","","","","",""
$pre,"Occupancy","Achieved Active Warps Per SM","warp","15.9$id","","","","",""
CSV
    id=$((id + 1))
  done
}
figure_line() {  # figure_line STAGE: the stage's figures object in results.jsonl
  sed -n "s/^{\"stage\": \"$1\", .*\"figures\": {\(.*\)}}$/\1/p" "$scratch/out/results.jsonl"
}
expect_figures() {  # expect_figures STAGE TEXT: the figures hold TEXT
  [[ "$(figure_line "$1")" == *"$2"* ]] || fail "stage $1's figures '$(figure_line "$1")' lack '$2'"
}

# ---- The lease plan: README.md's two device calls against the stages' estimates ----
lease_s=900        # a lent machine's device time, all calls and its start together
start_s=180        # its start (a minute or more, failed starts 1-2 minutes) and the transfers
margin_s=30        # a call's own time outside every stage: its checks, the table, the copy back
lease_check() {  # lease_check DEVICE_RUN: each call's stages fit its --budget, the budget its timeout
  local run=$1 n t cmd budget only list total calls=0 timeouts=0
  local -A call_stages=()
  while read -r n t cmd; do
    calls=$((calls + 1))
    budget=$(sed -n 's/.* --budget \([0-9]*\).*/\1/p' <<<"$cmd")
    only=$(sed -n "s/.* --only '\([^']*\)'.*/\1/p" <<<"$cmd")
    [ -n "$budget" ] && [ -n "$only" ] || fail "device call $n lacks --budget N or --only '...': $cmd"
    list=$("$run" --list --budget "$budget" --only "$only") || fail "device call $n: --list refused its --only: $list"
    total=$(sed -n 's/^total: \([0-9]*\) s .*/\1/p' <<<"$list")
    echo "device call $n: stages $total s by their estimates, --budget $budget, timeout_s $t"
    [ "$total" -le "$budget" ] || fail "device call $n: its stages' estimates sum to $total s, over its --budget $budget"
    [ "$budget" -le $((t - margin_s)) ] \
      || fail "device call $n: --budget $budget leaves less than ${margin_s} s of its timeout_s $t"
    timeouts=$((timeouts + t))
    call_stages[$n]=$list
  done < <(awk '/<!-- device-call [0-9]+ timeout_s=[0-9]+ -->/ {
      split($0, a, /device-call | timeout_s=| -->/); n = a[2]; t = a[3]; want = 1; next }
    want && /device_run\.sh / { print n, t, $0; want = 0 }' "$src/README.md")
  [ "$calls" -eq 2 ] || fail "README.md gives $calls device calls (<!-- device-call N timeout_s=T --> before each), not 2"
  [ $((timeouts + start_s)) -le "$lease_s" ] \
    || fail "the two calls' timeouts ($timeouts s) and a machine's start (${start_s} s) exceed the ${lease_s} s lease"
  # What goes first: the headline (GPU tests, samples, training, the peer); then the bench, Nsight, the sanitizers.
  local s
  for s in facts gpu-test_sample_fused_gpu sample-fp32 sample-bf16 train-gpu peer-train-fused peer-sample-graph; do
    grep -q "^$s " <<<"${call_stages[1]:-}" || fail "device call 1 does not run $s"
  done
  for s in bench-e2e bench-kernels ncu-sample-fp32 ncu-sample-bf16 ncu-train sanitizer-probe; do
    grep -q "^$s " <<<"${call_stages[2]:-}" || fail "device call 2 does not run $s"
  done
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
    # cuBLAS found, yet ddpm_bench skipped its unfused job (it did not load, or did not fit):
    # the stage stands on the fused jobs' timings, saying why, and judges no missing file.
    cat > "$scratch/kit/bin/ddpm_bench" <<'SH'
#!/bin/bash
echo "fused fp32 1000000 x 500                 0.4120      1.214e+09      80.81        90.0%"
echo "unfused cuBLAS fp32 1000000 x 500 skipped: out of GPU memory: the activations of a chunk of 1048576 samples needs 512 MiB, 496 MiB of 1024 MiB free"
SH
    cat > "$scratch/kit/bin/ddpm_eval" <<'SH'
#!/bin/bash
[ -e "$1" ] || { echo "ddpm_eval: error: $1: cannot open: No such file or directory" >&2; exit 1; }
SH
    run_kit -- --only bench-e2e
    [ "$rc" -eq 0 ] || fail "bench-e2e failed where ddpm_bench skipped its unfused job (exit $rc)"
    expect bench-e2e pass
    expect_figures bench-e2e '"fp32_time_s": 0.4120, "unfused_skipped": "out of GPU memory: the activations of a chunk'
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
    run_kit CC="$fake/cc" PLANTED_TORCH_COMPILE=0 -- --only "$compiled"
    [ "$rc" -eq 0 ] || fail "a run whose torch lacks torch.compile failed (exit $rc)"
    for s in ${compiled//,/ }; do expect "$s" skip "torch.compile needs PyTorch >= 2.0; this is torch 2.99.0+planted"; done
    run_kit CC=/nonexistent/cc -- --only "$compiled"
    [ "$rc" -eq 0 ] || fail "a run whose CC is missing failed (exit $rc)"
    for s in ${compiled//,/ }; do expect "$s" skip "CC is '/nonexistent/cc'"; done
    run_kit CC="$fake/cc" PLANTED_PY_INCLUDE="$scratch/noinc" -- --only "$compiled"
    [ "$rc" -eq 0 ] || fail "a run without Python.h failed (exit $rc)"
    for s in ${compiled//,/ }; do expect "$s" skip "Python.h (not in $scratch/noinc"; done
    # No CC and no gcc or clang on the PATH: every other program, linked.
    path_without '/(gcc|clang)(-[0-9.]+)?$' "$scratch/nocc"
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
    # No compute-sanitizer at all: the probe skips (not a failure of the run), and the stages with it.
    if [ ! -e /usr/local/cuda/bin/compute-sanitizer ]; then
      rm "$fake/compute-sanitizer"
      path_without '/compute-sanitizer$' "$scratch/nosan"
      run_path="$scratch/nosan" run_kit -- --only memcheck-test_emu_gpu_twin
      [ "$rc" -eq 0 ] || fail "a run without compute-sanitizer failed (exit $rc)"
      expect sanitizer-probe skip "compute-sanitizer is not installed"
      expect memcheck-test_emu_gpu_twin skip "compute-sanitizer is not installed"
    else
      echo "not checked: a run without compute-sanitizer (this machine has /usr/local/cuda/bin/compute-sanitizer)"
    fi
    ;;
  nsight-csv)
    make_machine
    make_kit
    make_profilers "$scratch/prof"
    mkdir -p "$scratch/csv"
    ncu_csv "void ddpm::kernels::sample_fused_kernel(ddpm::kernels::FusedSamplerNet, unsigned long, long, long, float *)" \
      usecond "1,234.56" > "$scratch/csv/default.csv"
    ncu_csv "void ddpm::kernels::sample_fused_mma_kernel<(ddpm::kernels::Precision)2>(ddpm::kernels::FusedSamplerNet, unsigned long, long, long, float *)" \
      ms "2.51" > "$scratch/csv/ncu-sample-bf16.csv"
    ncu_csv "void ddpm::kernels::train_batch_kernel(unsigned long, const long *, int, int, ddpm::kernels::DataSource, ddpm::kernels::TrainBatch, ddpm::kernels::BatchStatsPartial *, unsigned int *, ddpm::kernels::TrainBatchStats *)" \
      ns "5,120" \
      "void ddpm::kernels::train_rows_kernel<(ddpm::XEmbedding)0>(ddpm::kernels::TrainNetView, ddpm::kernels::TrainBatch, const ddpm::kernels::TrainBatchStats *, const ddpm::kernels::ForwardCoef *, const float *, int, float *, double *, int)" \
      us "31.04" \
      "void ddpm::kernels::train_adam_kernel<(ddpm::XEmbedding)0>(ddpm::kernels::TrainOptState, const float *, const double *, int, int, ddpm::kernels::TrainStepClock, unsigned int *, float *)" \
      us "9.5" > "$scratch/csv/ncu-train.csv"
    # nsys stats --format csv --output -: its preamble, then the summary, busiest kernel first
    cat > "$scratch/csv/nsys.csv" <<'CSV'
Generating SQLite file /planted/nsys-train.sqlite from /planted/nsys-train.nsys-rep
Processing [/planted/nsys-train.sqlite] with [/opt/nvidia/nsight-systems/2025.3.1/host-linux-x64/reports/cuda_gpu_kern_sum.py]...
Time (%),Total Time (ns),Instances,Avg (ns),Med (ns),Min (ns),Max (ns),StdDev (ns),Name
62.5,15625000,500,31250.0,31104.0,30528,40224,812.3,"void ddpm::kernels::train_rows_kernel<(ddpm::XEmbedding)0>(ddpm::kernels::TrainNetView, ddpm::kernels::TrainBatch, const ddpm::kernels::TrainBatchStats *, const ddpm::kernels::ForwardCoef *, const float *, int, float *, double *, int)"
25.0,6250000,500,12500.0,12480.0,12032,14848,210.9,"void ddpm::kernels::train_adam_kernel<(ddpm::XEmbedding)0>(ddpm::kernels::TrainOptState, const float *, const double *, int, int, ddpm::kernels::TrainStepClock, unsigned int *, float *)"
12.5,3125000,500,6250.0,6240.0,6016,7424,99.1,"void ddpm::kernels::train_batch_kernel(unsigned long, const long *, int, int, ddpm::kernels::DataSource, ddpm::kernels::TrainBatch, ddpm::kernels::BatchStatsPartial *, unsigned int *, ddpm::kernels::TrainBatchStats *)"
CSV
    run_path="$scratch/prof:$PATH" run_kit NCU_CSV_DIR="$scratch/csv" NSYS_CSV="$scratch/csv/nsys.csv" -- \
      --only 'facts,ncu-*,nsys-*'
    [ "$rc" -eq 0 ] || fail "a run with working profilers failed (exit $rc)"
    for s in ncu-sample-fp32 ncu-sample-bf16 ncu-train nsys-train; do expect "$s" pass; done
    expect_figures ncu-sample-fp32 '"kernel": "sample_fused_kernel", "time_us": 1234.56, "sm_throughput_pct": 91.23, "dram_throughput_pct": 0.41, "occupancy_pct": 24.80, "registers": 128'
    expect_figures ncu-sample-bf16 '"kernel": "sample_fused_mma_kernel", "time_us": 2510,'
    expect_figures ncu-train '"train_batch_time_us": 5.12, "train_batch_sm_throughput_pct": 91.23,'
    expect_figures ncu-train '"train_rows_time_us": 31.04, "train_rows_sm_throughput_pct": 92.23, "train_rows_dram_throughput_pct": 0.41, "train_rows_occupancy_pct": 24.81, "train_rows_registers": 130'
    expect_figures ncu-train '"train_adam_time_us": 9.5,'
    expect_figures nsys-train '"kernels_ms": 25, "launches": 1500, "top_kernel": "train_rows_kernel", "top_kernel_pct": 62.5, "top_kernel_avg_us": 31.25'
    grep -q '^ncu-sample-fp32  *pass .* kernel=sample_fused_kernel time_us=1234.56 sm_throughput_pct=91.23' "$scratch/out/table.txt" \
      || fail "the table lacks ncu-sample-fp32's headline: $(grep ncu-sample-fp32 "$scratch/out/table.txt")"
    # The key sections, the GPU's own clocks, the kernels of one NVTX range; the details page read back as CSV
    e2e="$scratch/kit/run/e2e" bin="$scratch/kit/bin"
    sections="--clock-control none --section SpeedOfLight --section Occupancy --section LaunchStats --nvtx"
    grep -qF "ncu $sections --nvtx-include timed/ --force-overwrite --export $e2e/ncu-sample-fp32 $bin/ddpm_bench --only kernels --device cuda --filter sample_fused fp32 --sizes 65536 " \
      "$scratch/stub.log" || fail "ncu did not profile the fused fp32 sampler's timed call: $(grep '^ncu' "$scratch/stub.log")"
    grep -qF "ncu $sections --nvtx-include GpuTrainer::run/ --launch-skip 3 --launch-count 3 --force-overwrite --export $e2e/ncu-train $bin/ddpm_cuda_train --device cuda --steps 20 " \
      "$scratch/stub.log" || fail "ncu did not profile the training step: $(grep '^ncu' "$scratch/stub.log")"
    grep -qF "ncu --import $e2e/ncu-sample-bf16.ncu-rep --csv --page details" "$scratch/stub.log" \
      || fail "ncu's report was not read back as CSV"
    grep -qF "nsys profile --trace=cuda,nvtx --sample=none --cpuctxsw=none --force-overwrite=true --output $e2e/nsys-train $bin/ddpm_cuda_train --device cuda --steps 500 " \
      "$scratch/stub.log" || fail "nsys did not profile a training run: $(grep '^nsys' "$scratch/stub.log")"
    grep -q "^ncu: $scratch/prof/ncu\$" "$scratch/kit/run/logs/facts.log" || fail "the facts do not name ncu"
    ;;
  nsight-skips)
    make_machine
    make_kit
    hide_system_cublas
    path_without '/(ncu|nsys)$' "$scratch/noprof"
    nowhere=(DDPM_CUDA_TOOLKITS="$scratch/nocuda" DDPM_NSIGHT_ROOTS="$scratch/noroots")
    run_path="$scratch/noprof" run_kit "${nowhere[@]}" -- --only 'ncu-*,nsys-*'
    [ "$rc" -eq 0 ] || fail "a run without Nsight failed (exit $rc): its stages must skip"
    for s in ncu-sample-fp32 ncu-sample-bf16 ncu-train; do expect "$s" skip "ncu (Nsight Compute) not found"; done
    expect nsys-train skip "nsys (Nsight Systems) not found"
    # As on the lent image: ncu inside Nsight Compute's folder refuses the device; the nsys
    # beside it records, then makes no report.
    nv="$scratch/nv/nsight-compute/2025.3.1"
    make_profilers "$nv"
    mkdir -p "$nv/host/target-linux-x64" && mv "$nv/nsys" "$nv/host/target-linux-x64/nsys"
    refused="==ERROR== Failed to initialize the profiler: LibraryNotLoaded"
    run_path="$scratch/noprof" run_kit DDPM_CUDA_TOOLKITS="$scratch/nocuda" DDPM_NSIGHT_ROOTS="$scratch/nv" \
      NCU_SAYS="$refused" NCU_RC=1 NCU_REPORT=0 NSYS_REPORT=0 -- --only 'facts,ncu-*,nsys-*'
    [ "$rc" -eq 0 ] || fail "a run whose profilers refuse failed (exit $rc): their stages must skip"
    for s in ncu-sample-fp32 ncu-sample-bf16 ncu-train; do
      expect "$s" skip "ncu refuses: Failed to initialize the profiler: LibraryNotLoaded"
    done
    expect nsys-train skip "nsys recorded nsys-train.qdstrm but made no report of it (Importer error status"
    grep -q "^ncu: $nv/ncu\$" "$scratch/kit/run/logs/facts.log" || fail "ncu under the Nsight root was not found"
    grep -q "^nsys: $nv/host/target-linux-x64/nsys\$" "$scratch/kit/run/logs/facts.log" \
      || fail "nsys inside Nsight Compute's folder was not found"
    # No access to the counters: ncu's words, as it says them
    perm="==ERROR== ERR_NVGPUCTRPERM - The user does not have permission to access NVIDIA GPU Performance Counters on the target device 0."
    run_path="$scratch/nv/nsight-compute/2025.3.1:$scratch/noprof" run_kit "${nowhere[@]}" NCU_SAYS="$perm" NCU_RC=1 \
      NCU_REPORT=0 -- --only ncu-train
    expect ncu-train skip "ncu refuses: ERR_NVGPUCTRPERM - The user does not have permission to access NVIDIA GPU Performance Counters"
    # Ours, not the profiler's: no kernel in the NVTX range, or the program failing under it, fails the stage
    run_path="$scratch/nv/nsight-compute/2025.3.1:$scratch/noprof" run_kit "${nowhere[@]}" \
      NCU_SAYS="==WARNING== No kernels were profiled." NCU_REPORT=0 -- --only ncu-sample-fp32
    [ "$rc" -eq 1 ] || fail "a run whose ncu profiled no kernel passed (exit $rc)"
    expect ncu-sample-fp32 fail "ncu profiled no kernel inside the NVTX range 'timed'"
    run_path="$scratch/nv/nsight-compute/2025.3.1:$scratch/noprof" run_kit "${nowhere[@]}" \
      NCU_SAYS="==ERROR== The application returned an error code (1)." NCU_RC=1 -- --only ncu-sample-bf16
    [ "$rc" -eq 1 ] || fail "a run whose profiled program failed passed (exit $rc)"
    expect ncu-sample-bf16 fail "the profiled command failed under ncu"
    ;;
  stage-patterns)
    make_machine
    make_kit
    mkdir -p "$scratch/cwd" && touch "$scratch/cwd/peer-planted-file" "$scratch/cwd/facts-planted"
    # Patterns are the run script's, not the shell's: files in the working folder do not change them.
    list=$(cd "$scratch/cwd" && bash "$scratch/kit/device_run.sh" --list --budget 400 --only 'facts*,peer-*' --skip '*-compile') \
      || fail "--list with patterns failed: $list"
    names=$(awk 'NR > 1 && $1 != "total:" { printf "%s ", $1 }' <<<"$list")
    [ "$names" = "facts peer-train-fused peer-sample-eager peer-sample-graph peer-sample-graph-bf16 " ] \
      || fail "--only 'facts*,peer-*' --skip '*-compile' listed: $names"
    sum=$(awk 'NR > 1 && $1 != "total:" { s += $2 } END { print s }' <<<"$list")
    grep -qx "total: $sum s of estimates (rebuild not counted), budget: 400 s" <<<"$list" \
      || fail "--list's total is not the sum of its stages ($sum): $(tail -n 1 <<<"$list")"
    run_kit -- --only 'facts,train-*' --skip 'train-gpu'
    [ "$rc" -eq 0 ] || fail "--only 'facts,train-*' failed (exit $rc)"
    expect facts pass
    expect train-cpu pass
    [ "$(wc -l < "$scratch/out/results.jsonl")" -eq 2 ] || fail "more than facts and train-cpu ran: $(cut -c1-60 "$scratch/out/results.jsonl")"
    set +e
    out=$(bash "$scratch/kit/device_run.sh" --only 'facts,nosuch-*' 2>&1); rc=$?
    set -e
    [ "$rc" -eq 2 ] && [ "$out" = "device_run.sh: error: unknown stage 'nosuch-*': no stage is named so (see --list)" ] \
      || fail "an unknown pattern was not refused by name (exit $rc): $out"
    ;;
  lease-plan)
    make_machine
    make_kit
    lease_check "$scratch/kit/device_run.sh"
    ;;
  rehearsal)
    [ $# -eq 1 ] || { echo "device_kit_test rehearsal: name the build folder (its bin/ holds the _emu binaries)" >&2; exit 2; }
    kit="$scratch/rkit"
    "$src/tools/device_kit.sh" --emulated "$1" --out "$kit" > "$scratch/kit-build.log" 2>&1 \
      || fail "tools/device_kit.sh --emulated $1 failed"
    grep -q '^device: emulated' "$kit/MANIFEST" || fail "the rehearsal kit's MANIFEST does not say it is emulated"
    # The peer on the CPU, where a python3 has numpy and torch (Debian's is /usr/bin/python3; one
    # earlier on the PATH may lack them); where none has, its stages must skip saying so.
    peer_python=""
    for py in "$(command -v python3 || true)" /usr/bin/python3; do
      [ -n "$py" ] && [ -x "$py" ] && "$py" -c 'import numpy, torch' 2> /dev/null && { peer_python=$py; break; }
    done
    mkdir -p "$scratch/py3"
    [ -z "$peer_python" ] || ln -s "$peer_python" "$scratch/py3/python3"
    echo "peer: ${peer_python:-no python3 with numpy and torch: its stages skip}"
    t0=$SECONDS
    set +e
    (cd "$scratch" && PATH="$scratch/py3:$PATH" "$kit/device_run.sh" --rehearse --out "$scratch/out") > "$scratch/run.log" 2>&1
    rc=$?
    set -e
    echo "the rehearsal took $((SECONDS - t0)) s"
    cat "$scratch/out/table.txt" 2> /dev/null || true
    [ "$rc" -eq 0 ] || fail "the rehearsal failed (exit $rc)"
    # Every stage ran, or skipped for a reason a rehearsal has.
    mapfile -t stages < <("$kit/device_run.sh" --list | awk 'NR > 1 && $1 != "total:" { print $1 }')
    [ "${#stages[@]}" -gt 40 ] || fail "--list named ${#stages[@]} stages"
    probe_skipped="the probe was skipped (rehearsal:"
    for s in "${stages[@]}"; do
      st=$(status_of "$s"); r=$(reason_of "$s")
      case "$st:$s:$r" in
        pass:*) ;;
        skip:rebuild:rehearsal:*|skip:ncu-*:rehearsal:*|skip:nsys-*:rehearsal:*|skip:sanitizer-probe:rehearsal:*) ;;
        skip:memcheck-*:"$probe_skipped"*|skip:racecheck-*:"$probe_skipped"*|skip:synccheck-*:"$probe_skipped"*) ;;
        skip:peer-*-compile:*torch.compile*|skip:peer-*-compile:*"C compiler"*|skip:peer-*-compile:*Python.h*) ;;
        skip:peer-*:*"cannot import"*) [ -z "$peer_python" ] || fail "stage $s skipped though $peer_python has torch: $r" ;;
        *) fail "stage $s is '${st:-absent}' in the rehearsal (${r:-no reason})" ;;
      esac
    done
    # Every parser read its figures; none is empty.
    empty=$(grep -o '"figures": {.*}' "$scratch/out/results.jsonl" | grep -o '"[a-z0-9_]*": ""' | head -n 3 || true)
    [ -z "$empty" ] || fail "an empty figure: $empty"
    for t in test_emu_gpu_twin test_reverse_step_gpu test_forward_process_gpu test_sample_stats_gpu \
             test_sample_unfused_gpu test_sample_fused_gpu test_train_step_gpu test_likelihood_gpu; do
      [[ "$(figure_line "gpu-$t")" =~ \"tests\":\ [1-9] ]] || fail "gpu-$t counted no test: $(figure_line "gpu-$t")"
    done
    for s in sample-fp32 sample-tf32 sample-bf16 train-gpu; do
      for k in time_s sliced_w1 sliced_w1_floor precision; do expect_figures "$s" "\"$k\": "; done
    done
    expect_figures train-gpu '"final_loss": '
    # The fast samplers after each precision's ancestral chain: DPM-Solver++(2M) at its 20
    # evaluations, Heun at 2 x 12 - 1.
    for s in sample-fp32 sample-tf32 sample-bf16; do
      for k in dpmpp_2m_time_s dpmpp_2m_sde_time_s heun_time_s; do expect_figures "$s" "\"$k\": "; done
      expect_figures "$s" '"dpmpp_2m_evaluations": 20'
      expect_figures "$s" '"heun_evaluations": 23'
    done
    for k in fp32_time_s tf32_time_s bf16_time_s unfused_fp32_time_s xemb_bf16_time_s unfused_sliced_w1; do
      expect_figures bench-e2e "\"$k\": "
    done
    [[ "$(figure_line bench-kernels)" =~ \"rows\":\ [1-9] ]] || fail "bench-kernels timed no kernel"
    # The likelihood: the GPU's bound and exact value with their timings, the CPU's beside them
    # on the same points, and how far apart the two are (nll-cpu-gpu passed: within a standard error).
    for p in bound exact; do
      for k in n nats se time_s evals_per_s; do expect_figures nll-gpu "\"${p}_$k\": "; done
      for k in nats se time_s evals_per_s; do expect_figures nll-cpu-gpu "\"cpu_${p}_$k\": "; done
      expect_figures nll-cpu-gpu "\"gpu_${p}_diff_se\": "
      expect_figures nll-cpu-gpu "\"${p}_gpu_over_cpu\": "
    done
    expect_figures nll-gpu '"exact_ode_error": '
    grep -q "^rehearsal (emulated device, CPU peer; not GPU figures): likelihood on the GPU: bound 64 x 500 in .* s, .*x the CPU rate" \
      "$scratch/out/table.txt" || fail "the table has no likelihood headline"
    if [ -n "$peer_python" ]; then
      expect_figures peer-train-fused '"time_s": '
      expect_figures peer-sample-eager '"sliced_w1": '
      grep -q "^rehearsal (emulated device, CPU peer; not GPU figures): sample 64 x 500: ours .* s (sample-[a-z0-9]*), PyTorch" \
        "$scratch/out/table.txt" || fail "the table's headline is not the rehearsal's"
    fi
    # Said to be a rehearsal wherever it is read: the table, the results entry.
    head -n 1 "$scratch/out/table.txt" | grep -q "^REHEARSAL on the emulated " || fail "the table does not open saying it is a rehearsal"
    entry="$scratch/out/results_entry.md"
    head -n 1 "$entry" | grep -q '^## [0-9-]* — device kit rehearsal on the emulated CUDA device (no GPU)$' \
      || fail "the entry's heading does not say rehearsal: $(head -n 1 "$entry")"
    grep -q "No figure here is a GPU's" "$entry" || fail "the entry does not say its figures are not a GPU's"
    grep -q 'device_run.sh --rehearse' "$entry" || fail "the entry's command lacks --rehearse"
    ! grep -q 'device kit run,\|^- Device: ' "$entry" || fail "the entry reads as a GPU run's"
    # An emulated kit runs only as a rehearsal, and a rehearsal only on one.
    set +e
    out=$("$kit/device_run.sh" --out "$scratch/out2" 2>&1); rc=$?
    set -e
    [ "$rc" -eq 2 ] && [[ "$out" == *"built against the emulated CUDA device"*"run it with --rehearse"* ]] \
      || fail "an emulated kit ran without --rehearse (exit $rc): $out"
    make_machine
    make_kit
    set +e
    out=$(bash "$scratch/kit/device_run.sh" --rehearse 2>&1); rc=$?
    set -e
    [ "$rc" -eq 2 ] && [[ "$out" == *"--rehearse needs a kit built against the emulated CUDA device"*"built for sm_90" ]] \
      || fail "a GPU kit ran --rehearse (exit $rc): $out"
    lease_check "$kit/device_run.sh"
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
