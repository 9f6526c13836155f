#!/usr/bin/env bash
# The device kit's run script: every GPU question in one command on a lent GPU
# machine (two for a 15-minute lease: README.md, "On a lent GPU"), from the
# prebuilt kit that tools/device_kit.sh makes. It needs no package from
# anywhere: the kit's binaries, bash and coreutils (python3 with PyTorch for the
# peer's stages; nvidia-smi, ncu, nsys and compute-sanitizer where present).
#
#   device_run.sh [--budget SECONDS] [--out DIR] [--only STAGE,...] [--skip STAGE,...]
#                 [--rebuild auto|never|always] [--source DIR] [--list] [--rehearse]
#
# --only and --skip take stage names or shell patterns ('peer-*'); --list prints
# the stages they select, with their estimates and the sum beside --budget.
#
# Stages run in order of value (--list prints them with their estimates):
#   1. facts, kit: the device (nvidia-smi), the kit's checksums, every binary starts;
#   2. every GPU test (a skip is a failure here);
#   3. the seed's jobs beside the PyTorch peer: the seed's model trained on the
#      CPU, 1M x 500 sampled through the tool in fp32, tf32 and bf16 and through
#      the unfused cuBLAS path, each judged by ddpm_eval; its likelihood of
#      held-out data (ddpm_cuda_nll): the bound of 1M points and the exact ODE
#      of 200k timed on the GPU, then the CPU and the GPU on the same 2000
#      points, whose means must agree within a standard error; 5000 training
#      steps on the GPU, judged; the peer: sampling eager, as one CUDA graph,
#      in bf16 autocast and under torch.compile, training with fused Adam,
#      eager and under torch.compile (skipped, saying which, without python3,
#      numpy or a PyTorch that sees the GPU; the torch.compile ones also
#      without torch.compile, a C compiler or Python.h, which Triton builds with);
#   4. ddpm_bench --only kernels --device cuda;
#   5. Nsight: ncu on the fused sampler (fp32, bf16) and on the training step
#      (--clock-control none, the kernels inside the bench's or the trainer's NVTX
#      range), its headline per kernel in the table (achieved occupancy, SM and
#      DRAM throughput %, registers, time); nsys on a training run, its kernel
#      summary. Skipped with the reason where the profiler is missing, makes no
#      report, or refuses the device (in its own words);
#   6. compute-sanitizer memcheck, racecheck and synccheck on the small GPU
#      tests, as far as the budget goes (skipped, with the reason, where the
#      sanitizer refuses the device: sanitizer-probe asks first, and runs
#      whenever one of them is selected; --skip sanitizer-probe runs them unprobed).
# No stage starts that its estimate says would overrun --budget (default 480 s),
# and none runs past it. Without a GPU, each stage that needs one says so and
# is skipped; the others run (CI runs the script that way).
#
# --rehearse: the whole run with no GPU, from a kit built against the emulated
# CUDA device (tools/device_kit.sh --emulated): every GPU stage runs there at
# tiny sizes (64 points, 20 training steps, the GPU tests without their long
# cases), the peer on the CPU, the profiled commands without their profiler; so
# every command line, parser, judge and table line runs, and a stage that would
# fail on the GPU for a plumbing reason fails here first. Its table and entry say
# it is a rehearsal: no figure of it is a GPU's. An emulated kit runs only so,
# and --rehearse only an emulated kit. DDPM_EMU_DEVICE picks the emulated GPU.
#
# Each stage appends a line to results.jsonl and copies everything to the
# output folder (--out, default $OUT, else run/out in the kit) the moment it ends,
# so a run cut short still returns what it did. The output folder holds five
# files: results.jsonl (one JSON object per stage: status, seconds, reason,
# figures), table.txt (the stages and the headline ratios), results_entry.md (a
# ready bench/RESULTS.md entry), logs.tar.gz (every stage's log, the samples'
# PNGs, the JSON files and the profilers' reports), and MANIFEST (the kit's).
#
# cuBLAS 13 (the unfused path's test, ddpm_bench's cuBLAS rows) is looked for in
# a CUDA toolkit ($DDPM_CUDA_TOOLKITS, else $CUDA_HOME, $CUDA_PATH, nvcc's and
# /usr/local/cuda), in nvidia/cu13/lib and nvidia/cublas/lib of every
# site-packages python3 sees and of the peer's venv ($DDPM_PEER_VENV, else
# peer-venv beside the kit), then through ldconfig. ncu and nsys: on the PATH,
# in those toolkits' bin/, then under $DDPM_NSIGHT_ROOTS (default /opt/nvidia):
# nsight-compute/*/ncu; nsight-systems*/bin/nsys, nsight-systems*/*/bin/nsys and
# nsight-compute/*/host/*/nsys.
#
# Exit status: 0 when no stage failed (skips are not failures), 1 otherwise, 2
# for a bad command line.
set -uo pipefail

kit="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
budget=480
out="${OUT:-}"
only=""
skip=""
rebuild=auto
source_dir=""
list_only=0
rehearse=0
budget_given=0
usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
die_usage() { echo "device_run.sh: error: $1" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --budget) [ $# -ge 2 ] || die_usage "--budget needs a value"; budget="$2"; budget_given=1; shift 2 ;;
    --out) [ $# -ge 2 ] || die_usage "--out needs a value"; out="$2"; shift 2 ;;
    --only) [ $# -ge 2 ] || die_usage "--only needs a value"; only="$2"; shift 2 ;;
    --skip) [ $# -ge 2 ] || die_usage "--skip needs a value"; skip="$2"; shift 2 ;;
    --rebuild) [ $# -ge 2 ] || die_usage "--rebuild needs a value"; rebuild="$2"; shift 2 ;;
    --source) [ $# -ge 2 ] || die_usage "--source needs a value"; source_dir="$2"; shift 2 ;;
    --list) list_only=1; shift ;;
    --rehearse) rehearse=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die_usage "unknown argument '$1' (see --help)" ;;
  esac
done
[[ "$budget" =~ ^[0-9]+$ ]] && [ "$budget" -ge 10 ] || die_usage "--budget must be a whole number of seconds >= 10, not '$budget'"
case "$rebuild" in auto|never|always) ;; *) die_usage "--rebuild must be auto, never or always, not '$rebuild'" ;; esac
[ -f "$kit/MANIFEST" ] || { echo "device_run.sh: error: $kit/MANIFEST is missing: run the copy in the kit that tools/device_kit.sh built" >&2; exit 1; }

# ---- Where things are ----
manifest_value() { sed -n "s/^$1: //p" "$kit/MANIFEST" | head -n 1; }
arch="$(manifest_value arch)"
arch="${arch#sm_}"
# A kit built against the emulated device (tools/device_kit.sh --emulated) says so
# in its MANIFEST: its figures are the CPU's, so it runs only as a rehearsal.
emulated="$(manifest_value device)"
if [ "$rehearse" = 1 ] && [[ "$emulated" != emulated* ]]; then
  die_usage "--rehearse needs a kit built against the emulated CUDA device (tools/device_kit.sh --emulated BUILD_DIR); this one is built for sm_$arch"
fi
if [ "$rehearse" = 0 ] && [[ "$emulated" == emulated* ]] && [ "$list_only" = 0 ]; then
  die_usage "this kit is built against the emulated CUDA device ($emulated): no figure of it is a GPU's; run it with --rehearse"
fi
[ "$rehearse" = 1 ] && [ "$budget_given" = 0 ] && budget=600   # the emulation is slower than a GPU, the stages as many
bin="$kit/bin"
work="$kit/run"
out="${out:-$work/out}"
logs="$work/logs"
e2e="$work/e2e"
started=$SECONDS

# ---- The stages: name, estimated seconds, what it needs (cpu or gpu) ----
# Estimates are guesses for an H100/H200 host (16 cores) until a run has measured
# them: results.jsonl records the real seconds; bring them here after a run. The
# two calls of a 15-minute lease (README.md, "On a lent GPU") are planned on them:
# DeviceRun.lease_plan_fits fails where a call's stages sum above its timeout.
gpu_tests=(test_emu_gpu_twin test_reverse_step_gpu test_forward_process_gpu test_sample_stats_gpu
           test_sample_unfused_gpu test_sample_fused_gpu test_train_step_gpu test_likelihood_gpu)
# The sanitizers' runs: the small tests, without the long chains and the 5000-step run.
sanitized_tests=(test_emu_gpu_twin test_reverse_step_gpu test_forward_process_gpu test_sample_stats_gpu
                 test_sample_fused_gpu test_train_step_gpu test_likelihood_gpu)
sanitizer_filter='-TrainStepGpu.FullRunLossCurveMatchesTheCpu:*FullChain*:*Moments*:*AgreesWithTheFusedKernel*'
stage_list=(
  "facts 5 cpu" "kit 5 cpu" "rebuild 240 cpu"
  "gpu-test_emu_gpu_twin 5 gpu" "gpu-test_reverse_step_gpu 5 gpu" "gpu-test_forward_process_gpu 5 gpu"
  "gpu-test_sample_stats_gpu 5 gpu" "gpu-test_sample_unfused_gpu 15 gpu" "gpu-test_sample_fused_gpu 20 gpu"
  "gpu-test_train_step_gpu 25 gpu" "gpu-test_likelihood_gpu 5 gpu"
  "train-cpu 15 cpu" "sample-cpu 5 cpu"   # train-cpu over 10 s: device_kit.sh --self-test skips it under --budget 10
  "sample-fp32 15 gpu" "sample-tf32 15 gpu" "sample-bf16 15 gpu" "nll-gpu 15 gpu" "nll-cpu-gpu 10 gpu"
  "bench-e2e 40 gpu" "train-gpu 25 gpu"
  "peer-train-fused 20 gpu" "peer-train-compile 50 gpu"
  "peer-sample-eager 20 gpu" "peer-sample-graph 20 gpu" "peer-sample-graph-bf16 20 gpu" "peer-sample-compile 50 gpu"
  "bench-kernels 45 gpu"
  "ncu-sample-fp32 25 gpu" "ncu-sample-bf16 25 gpu" "ncu-train 25 gpu" "nsys-train 20 gpu"
  "sanitizer-probe 15 gpu"
)
for tool in memcheck racecheck synccheck; do
  est=30; [ "$tool" = racecheck ] && est=40   # racecheck follows every shared-memory access
  for t in "${sanitized_tests[@]}"; do stage_list+=("$tool-$t $est gpu"); done
done
# --only and --skip: names or shell patterns, comma-separated. Split with globbing
# off: an unquoted 'peer-*' would otherwise match files in the working folder.
split_list() { [ -n "$1" ] || return 0; local IFS=,; set -f; printf '%s\n' $1; set +f; }
mapfile -t only_pats < <(split_list "$only")
mapfile -t skip_pats < <(split_list "$skip")
matches_any() {  # matches_any STAGE PATTERN...: whether a pattern names the stage
  local s="$1" p; shift
  # shellcheck disable=SC2053  # $p unquoted: it is a pattern
  for p in "$@"; do [[ "$s" == $p ]] && return 0; done
  return 1
}
for p in "${only_pats[@]}" "${skip_pats[@]}"; do
  hit=0
  for s in "${stage_list[@]}"; do matches_any "${s%% *}" "$p" && { hit=1; break; }; done
  [ "$hit" = 1 ] || die_usage "unknown stage '$p': no stage is named so (see --list)"
done
listed() {  # whether --only/--skip select the stage by name
  matches_any "$1" "${skip_pats[@]}" && return 1
  [ "${#only_pats[@]}" -eq 0 ] || matches_any "$1" "${only_pats[@]}"
}
if [ "$list_only" = 1 ]; then
  total=0
  printf '%-40s %9s %s\n' stage estimate needs
  for s in "${stage_list[@]}"; do
    read -r n e w <<<"$s"
    listed "$n" || continue
    printf '%-40s %8ss %s\n' "$n" "$e" "$w"
    [ "$n" = rebuild ] || total=$((total + e))   # rebuild runs only where the kit's binaries do not start
  done
  echo "total: ${total} s of estimates (rebuild not counted), budget: ${budget} s"
  exit 0
fi

mkdir -p "$out" "$logs" "$e2e" || { echo "device_run.sh: error: cannot create $out or $work" >&2; exit 1; }
: > "$work/results.jsonl"

# ---- JSON and the record of each stage ----
json_str() {  # a JSON string literal of $1
  local s="$1"
  s="${s//\\/\\\\}"; s="${s//\"/\\\"}"; s="${s//$'\n'/\\n}"; s="${s//$'\r'/}"; s="${s//$'\t'/ }"
  printf '"%s"' "$s"
}
is_number() { [[ "$1" =~ ^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]]; }
declare -a rows=()
failures=0
figures=()   # "key=value" pairs a stage's parser sets
last_status=""
record() {  # record NAME STATUS SECONDS REASON: one line of results.jsonl, and the table's row
  local name="$1" status="$2" secs="$3" reason="$4" f k v obj=""
  for f in "${figures[@]}"; do
    k="${f%%=*}"; v="${f#*=}"
    if is_number "$v"; then obj+="$(json_str "$k"): $v, "; else obj+="$(json_str "$k"): $(json_str "$v"), "; fi
  done
  printf '{"stage": %s, "status": %s, "seconds": %s, "reason": %s, "figures": {%s}}\n' "$(json_str "$name")" \
    "$(json_str "$status")" "$secs" "$(json_str "$reason")" "${obj%, }" >> "$work/results.jsonl"
  local text="${figures[*]}"
  rows+=("$name|$status|$secs|${reason:-${text}}")
  last_status="$status"
  if [ "$status" = fail ] || [ "$status" = timeout ]; then failures=$((failures + 1)); fi
  publish
}

# ---- GPU, binaries, libraries ----
gpu_reason=""
if [ "$rehearse" = 1 ]; then
  # The kit's binaries carry the emulated device: it stands in for the GPU, and nvidia-smi is not asked.
  device_name="emulated ${DDPM_EMU_DEVICE:-h200} (tests/emu/device, on this machine's CPU)"
else
  if ! command -v nvidia-smi > /dev/null 2>&1 && [ -x /usr/local/nvidia/bin/nvidia-smi ]; then
    PATH="/usr/local/nvidia/bin:$PATH"
  fi
  if ! command -v nvidia-smi > /dev/null 2>&1; then
    gpu_reason="no GPU: nvidia-smi is not installed"
  elif ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    gpu_reason="no GPU: nvidia-smi lists none ($(nvidia-smi -L 2>&1 | head -n 1))"
  fi
  device_name="$( [ -z "$gpu_reason" ] && nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)"
  device_name="${device_name:-no GPU}"
fi

# ---- Sizes: the real run's, or the rehearsal's ----
# The real run's command lines are these arrays empty and these sizes; --rehearse
# adds flags that make each job tiny (the emulated tensor cores run ~1e4
# point-steps/s, an emulated training step ~0.2 s), never other flags.
sample_n=1000000      # points per sampling job (the tool's, the bench's GPU jobs', the peer's)
train_steps=5000      # the GPU training's and the peer's (the tools' default: no flag in the real run)
peer_device=cuda
rh_gtest=()           # the GPU tests
rh_train_gpu=()       # ddpm_cuda_train --device cuda (train-gpu)
rh_bench_e2e=()       # ddpm_bench --only e2e (its CPU jobs)
rh_bench_kernels=()   # ddpm_bench --only kernels
rh_peer_train=()      # the peer's training
ncu_sizes=65536       # points per fused-sampler call under ncu (4 waves on an H200)
ncu_train_steps=20
nsys_train_steps=500
# ddpm_cuda_nll on train-cpu's model. The GPU's bound: 500 evaluations a point of
# 66,560 FLOPs, 3.3e13 at 1M points (~1 s at 30 TFLOP/s); its exact likelihood: RK4
# at 64 and 32 steps, 384 forward-mode evaluations of 198,400 FLOPs, 1.5e13 at 200k.
# The CPU and the GPU on the same points: the tool's default 2000 (--seed 1).
nll_bound_n=1000000
nll_exact_n=200000
nll_check_n=2000
if [ "$rehearse" = 1 ]; then
  sample_n=64
  nll_bound_n=64
  nll_exact_n=64
  nll_check_n=64
  peer_device=cpu
  # Their checks are the emulated tests' (the shared cases); the long ones cost minutes emulated.
  rh_gtest=(--gtest_filter="${sanitizer_filter}:*FiftySteps*:*ResumedRun*:*TrainLogs*")
  train_steps=20
  rh_train_gpu=(--steps "$train_steps")
  rh_bench_e2e=(--steps 50 --n 200)
  rh_bench_kernels=(--sizes 32 --warmup 0 --min-reps 1 --max-reps 1 --min-time 0 --gemm-n 64)
  rh_peer_train=(--steps "$train_steps")   # as many as ours: the headline's ratio compares like with like
  ncu_sizes=32
  ncu_train_steps=3
  nsys_train_steps=3
  # ddpm_bench's copy ceiling moves an eighth of the free memory: 256 MiB, not 512. Not
  # less: the unfused sampler's chunk (its activations, 512 MiB) does not shrink with n.
  export DDPM_EMU_DEVICE_MEMORY="${DDPM_EMU_DEVICE_MEMORY:-2147483648}"
fi
bench_gpu_n=$sample_n
[ "$rehearse" = 1 ] && bench_gpu_n=16   # eight jobs, each emulated: the fewest points that still make a tile

# cuBLAS 13, which the kit binaries open at run time (where: the header). The lent
# image may have only the copy PyTorch's CUDA 13 wheels install
# (site-packages/nvidia/cu13/lib; nvidia/cublas/lib before CUDA 13), with no
# /usr/local/cuda/lib64. The peer's venv is bench/peer/setup_peers.sh's
# (build/peer-venv, beside build/device-kit).
cuda_toolkits() {
  if [ -n "${DDPM_CUDA_TOOLKITS+set}" ]; then echo "$DDPM_CUDA_TOOLKITS"; return 0; fi
  local nvcc
  nvcc="$(command -v nvcc 2>/dev/null)" && nvcc="$(dirname "$(dirname "$(readlink -f "$nvcc")")")"
  echo "${CUDA_HOME:-} ${CUDA_PATH:-} ${nvcc:-} /usr/local/cuda"
}
python_site_dirs() {  # the folders python3 imports from, then the peer venv's site-packages
  command -v python3 > /dev/null 2>&1 \
    && timeout 30 python3 -c 'import sys; print("\n".join(p for p in sys.path if p))' 2>/dev/null
  local v
  for v in "${DDPM_PEER_VENV:-}" "$(dirname "$kit")/peer-venv"; do
    [ -n "$v" ] && compgen -G "$v/lib/python3*/site-packages"
  done
  return 0
}
find_cublas() {
  local d t cands=()
  for t in $(cuda_toolkits); do cands+=("$t/lib64" "$t/lib" "$t/targets/x86_64-linux/lib"); done
  while IFS= read -r d; do cands+=("$d/nvidia/cu13/lib" "$d/nvidia/cublas/lib"); done < <(python_site_dirs)
  d="$(ldconfig -p 2>/dev/null | sed -n 's/.*libcublas\.so\.13 .*=> \(.*\)\/libcublas\.so\.13$/\1/p' | head -n 1)"
  [ -n "$d" ] && cands+=("$d")
  for d in "${cands[@]}"; do
    [ -e "$d/libcublas.so.13" ] && [ -e "$d/libcublasLt.so.13" ] && { echo "$d"; return 0; }
  done
  return 1
}
cublas_dir="$(find_cublas || true)"
cublas_missing="cuBLAS 13 not found (a toolkit's lib64, nvidia/cu13/lib or nvidia/cublas/lib in python3's site-packages or the peer's venv, ldconfig)"
# The kit's lib/ (libgomp) and cuBLAS go on the kit binaries' command lines only
# (kitrun): exported, a toolkit's lib64 would come before the CUDA libraries that
# PyTorch bundles, in the peer's python too, and can break `import torch`.
kit_library_path="$kit/lib${cublas_dir:+:$cublas_dir}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
kitrun() { LD_LIBRARY_PATH="$kit_library_path" "$@"; }
python="$(command -v python3 || true)"

# Nsight Compute (ncu) and Nsight Systems (nsys). The lent image has ncu on the PATH
# and nsys only inside Nsight Compute's folder (nsight-compute/*/host/*/nsys), where
# it records but may not make a report: the stage then says so.
nsight_roots="${DDPM_NSIGHT_ROOTS-/opt/nvidia}"
find_cuda_tool() {  # find_cuda_tool ncu|nsys|compute-sanitizer: the first found (PATH, the toolkits, Nsight's folders), or nothing
  local t r c cands=()
  command -v "$1" 2>/dev/null && return 0
  for t in $(cuda_toolkits); do cands+=("$t/bin/$1"); done
  for r in $nsight_roots; do
    case "$1" in
      ncu) cands+=("$r"/nsight-compute/*/ncu) ;;
      nsys) cands+=("$r"/nsight-systems*/bin/nsys "$r"/nsight-systems*/*/bin/nsys "$r"/nsight-compute/*/host/*/nsys) ;;
    esac
  done
  for c in "${cands[@]}"; do [ -f "$c" ] && [ -x "$c" ] && { echo "$c"; return 0; }; done
  return 0
}
ncu="$(find_cuda_tool ncu)"
nsys="$(find_cuda_tool nsys)"

# ---- The output folder, refreshed after every stage ----
publish() {
  cp "$work/results.jsonl" "$out/results.jsonl" 2>/dev/null
  cp "$kit/MANIFEST" "$out/MANIFEST" 2>/dev/null
  write_table > "$out/table.txt"
  write_entry > "$out/results_entry.md"
  # Everything but the 1M-point sample files (8 MB each; their PNGs and judgements are in).
  # nsys's intermediate files (.qdstrm, .sqlite) are large and say nothing its report does not.
  tar -czf "$out/logs.tar.gz.tmp" --exclude='*.npy' --exclude='*.qdstrm' --exclude='*.sqlite' -C "$work" logs e2e 2>/dev/null && mv -f "$out/logs.tar.gz.tmp" "$out/logs.tar.gz"
}

# The headline: the fastest of ours beside the fastest of the peer's, per job.
figure_of() {  # figure_of STAGE KEY: the figure's value from results.jsonl, or nothing
  grep "^{\"stage\": \"$1\"" "$work/results.jsonl" | sed 's/.*"figures": //' | grep -o "\"$2\": [-0-9.eE+]*" \
    | head -n 1 | sed 's/.*: //'
}
best_of() {  # best_of KEY STAGE...: "seconds stage" of the smallest figure KEY among the stages
  local key="$1" s v best="" who=""; shift
  for s in "$@"; do
    v="$(figure_of "$s" "$key")"
    [ -n "$v" ] || continue
    if [ -z "$best" ] || awk -v a="$v" -v b="$best" 'BEGIN { exit !(a < b) }'; then best="$v"; who="$s"; fi
  done
  [ -n "$best" ] && echo "$best $who"
}
headline() {
  local ours peer tag="" n="$sample_n"
  # A rehearsal's ratio is the emulation's against PyTorch on the CPU: it says so on the line.
  [ "$rehearse" = 1 ] && tag="rehearsal (emulated device, CPU peer; not GPU figures): "
  [ "$n" = 1000000 ] && n=1M
  ours="$(best_of time_s sample-fp32 sample-tf32 sample-bf16)"
  peer="$(best_of time_s peer-sample-eager peer-sample-graph peer-sample-graph-bf16 peer-sample-compile)"
  if [ -n "$ours" ] && [ -n "$peer" ]; then
    awk -v o="${ours% *}" -v p="${peer% *}" -v on="${ours#* }" -v pn="${peer#* }" -v t="$tag" -v n="$n" 'BEGIN {
      printf "%ssample %s x 500: ours %.3f s (%s), PyTorch %.3f s (%s): %.2fx\n", t, n, o, on, p, pn, p / o }'
  fi
  nll_headline "$tag"
  ours="$(best_of time_s train-gpu)"
  peer="$(best_of time_s peer-train-fused peer-train-compile)"
  if [ -n "$ours" ] && [ -n "$peer" ]; then
    awk -v o="${ours% *}" -v p="${peer% *}" -v pn="${peer#* }" -v t="$tag" -v n="$train_steps" 'BEGIN {
      printf "%strain %s x 512: ours %.3f s (train-gpu), PyTorch %.3f s (%s): %.2fx\n", t, n, o, p, pn, p / o }'
  fi
}
nll_headline() {  # nll_headline TAG: the likelihood's timings on the GPU and their rate over the CPU's, where measured
  local part n t r line="" what
  for part in bound exact; do
    n="$(figure_of nll-gpu "${part}_n")"; t="$(figure_of nll-gpu "${part}_time_s")"
    [ -n "$n" ] && [ -n "$t" ] || continue
    r="$(figure_of nll-cpu-gpu "${part}_gpu_over_cpu")"
    what="bound $n x 500"; [ "$part" = exact ] && what="exact $n x 384 (RK4 64 + 32 steps)"
    [ -n "$r" ] && r=", ${r}x the CPU rate (evaluations/s)"
    line+="${line:+; }$what in $t s$r"
  done
  [ -z "$line" ] || echo "${1}likelihood on the GPU: $line"
}
write_table() {
  local r n s secs what
  [ "$rehearse" = 1 ] && echo "REHEARSAL on the $device_name at rehearsal sizes: no figure below is a GPU's"
  printf '%-36s %-8s %7s  %s\n' stage result seconds "figures, or why skipped"
  for r in "${rows[@]}"; do
    IFS='|' read -r n s secs what <<<"$r"
    printf '%-36s %-8s %7s  %s\n' "$n" "$s" "$secs" "$what"
  done
  headline
}
write_entry() {
  local r n s secs what
  if [ "$rehearse" = 1 ]; then
    echo "## $(date -u +%F) — device kit rehearsal on the emulated CUDA device (no GPU)"
    echo
    echo "- A rehearsal, not a measurement: every stage ran on this machine's CPU, the CUDA ones on the"
    echo "  $device_name at rehearsal sizes, the peer on the CPU. No figure here is a GPU's."
    echo "- Commit: \`$(manifest_value commit)\`; kit built $(manifest_value date) against the emulated device"
    echo "- Host: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //'), $(nproc) CPUs"
  else
    echo "## $(date -u +%F) — device kit run, $device_name"
    echo
    echo "- Commit: \`$(manifest_value commit)\`; kit built $(manifest_value date) for sm_$arch with $(manifest_value nvcc)"
    if [ -z "$gpu_reason" ]; then
      echo "- Device: $device_name; driver $(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1)"
    else
      echo "- Device: none ($gpu_reason)"
    fi
  fi
  echo "- Command: \`device_run.sh$( [ "$rehearse" = 1 ] && echo " --rehearse") --budget $budget${only:+ --only $only}${skip:+ --skip $skip}\`, $((SECONDS - started)) s"
  echo
  echo "| stage | result | s | figures, or why skipped |"
  echo "|---|---|---|---|"
  for r in "${rows[@]}"; do
    IFS='|' read -r n s secs what <<<"$r"
    echo "| $n | $s | $secs | ${what//|//} |"
  done
  local h
  h="$(headline)"
  [ -n "$h" ] && { echo; echo '```'; echo "$h"; echo '```'; }
}

# ---- Running a stage ----
declare -A wanted=()   # stages run outside --only because a selected stage needs their answer
selected() {  # whether --only/--skip let the stage run
  local s="$1"
  matches_any "$s" "${skip_pats[@]}" && return 1
  listed "$s" || [ -n "${wanted[$s]:-}" ]
}
any_selected() { local s; for s in "$@"; do selected "$s" && return 0; done; return 1; }
row_field() {  # row_field STAGE FIELDS: cut's fields (2: status, 4-: figures or reason) of the stage's row in this run, or nothing
  local r
  for r in "${rows[@]}"; do [ "${r%%|*}" = "$1" ] && { cut -d'|' -f"$2" <<<"$r"; return 0; }; done
}
estimate_of() { local s; for s in "${stage_list[@]}"; do read -r n e w <<<"$s"; [ "$n" = "$1" ] && echo "$e"; done; }
needs_of() { local s; for s in "${stage_list[@]}"; do read -r n e w <<<"$s"; [ "$n" = "$1" ] && echo "$w"; done; }
declare -A skip_reason=()   # a reason set by an earlier stage (the sanitizer's probe, a missing binary)

# stage NAME COMMAND...: runs COMMAND (a function or a program, in a subshell of
# its own process group, its output to logs/NAME.log) unless a reason says
# otherwise; then figures_NAME (if defined) reads its figures from the log.
# COMMAND may find, as it runs, that it cannot answer here (a profiler that
# refuses the device, a rehearsal): it calls skip_with REASON and returns 0.
skip_with() { printf '%s\n' "$1" > "$work/.skip"; }
set -m       # each stage's subshell leads its own process group: the watchdog stops all of it
stage_pid=""
trap '[ -n "$stage_pid" ] && kill -TERM -- "-$stage_pid" 2>/dev/null; exit 130' INT TERM
stage() {
  local name="$1"; shift
  selected "$name" || return 0
  local est needs left t0 rc status reason="" dog secs
  est="$(estimate_of "$name")"; needs="$(needs_of "$name")"
  left=$((budget - (SECONDS - started)))
  figures=()
  if [ "$needs" = gpu ] && [ -n "$gpu_reason" ]; then reason="$gpu_reason"
  elif [ -n "${skip_reason[$name]:-}" ]; then reason="${skip_reason[$name]}"
  elif [ "$est" -gt "$left" ]; then reason="budget: estimated ${est} s, ${left} s left"
  fi
  if [ -n "$reason" ]; then
    echo "== $name: skipped: $reason"
    record "$name" skip 0 "$reason"
    return 0
  fi
  echo "== $name (estimate ${est} s, ${left} s of the budget left)"
  t0=$SECONDS
  rm -f "$work/.timed_out" "$work/.skip"
  ( "$@" ) > "$logs/$name.log" 2>&1 < /dev/null &
  stage_pid=$!
  # No stage runs past the budget: a hung kernel costs the rest of the budget, not the lease.
  ( sleep "$left"; touch "$work/.timed_out"; kill -TERM -- "-$stage_pid"; sleep 5; kill -KILL -- "-$stage_pid" ) \
    > /dev/null 2>&1 &
  dog=$!
  wait "$stage_pid"
  rc=$?
  kill -TERM -- "-$dog" 2>/dev/null
  wait "$dog" 2>/dev/null
  stage_pid=""
  secs=$((SECONDS - t0))
  if [ -e "$work/.timed_out" ]; then status=timeout; reason="stopped at the budget's end after ${secs} s"
  elif [ "$rc" -eq 0 ] && [ -s "$work/.skip" ]; then status=skip; reason="$(head -n 1 "$work/.skip" | cut -c1-300)"
  elif [ "$rc" -eq 0 ]; then status=pass
  else status=fail; reason="exit $rc: $(grep -v '^[[:space:]]*$' "$logs/$name.log" | tail -n 1 | cut -c1-200)"
  fi
  if declare -F "figures_${name//-/_}" > /dev/null; then "figures_${name//-/_}"; fi
  echo "   $status in ${secs} s${reason:+: $reason}"
  [ "$status" = pass ] || [ "$status" = skip ] || tail -n 15 "$logs/$name.log" | sed 's/^/   | /'
  record "$name" "$status" "$secs" "$reason"
}

# ---- 1. facts, kit ----
facts() {
  echo "kit: $(manifest_value commit), built $(manifest_value date) for sm_$arch"
  echo "host: $(uname -srm); $(nproc) CPUs; $(ldd --version 2>&1 | head -n 1)"
  grep -m1 'model name' /proc/cpuinfo || true
  if [ "$rehearse" = 1 ]; then
    echo "device: $device_name (a rehearsal: nvidia-smi is not asked)"
  elif [ -z "$gpu_reason" ]; then
    nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.limit \
      --format=csv
    nvidia-smi
  else
    echo "$gpu_reason"
  fi
  echo "cuBLAS 13: ${cublas_dir:-not found}"
  echo "python3: ${python:-not found}"
  [ -n "$python" ] && "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1
  command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || echo "compute-sanitizer: not found"
  echo "ncu: ${ncu:-not found}"
  [ -n "$ncu" ] && "$ncu" --version 2>&1 | tail -n 1
  echo "nsys: ${nsys:-not found}"
  return 0
}
figures_facts() {
  figures=("host_cpus=$(nproc)" "cublas=${cublas_dir:-none}")
  if [ "$rehearse" = 1 ]; then figures+=("gpu=$device_name"); fi
  [ -z "$gpu_reason" ] && [ "$rehearse" = 0 ] && figures+=("gpu=$device_name"
    "driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1)"
    "sm_clock_max=$(nvidia-smi --query-gpu=clocks.max.sm --format=csv,noheader | head -n 1)")
  # facts() printed "torch VERSION cuda VERSION" (importing torch takes seconds: once is enough)
  local torch
  torch="$(sed -n 's/^torch \([^ ]*\) cuda .*/\1/p' "$logs/facts.log" | head -n 1)"
  figures+=("torch=${torch:-none}")
}

kit_binaries=(ddpm_cuda_train ddpm_cuda_sample ddpm_cuda_nll ddpm_eval ddpm_bench "${gpu_tests[@]}")
# Every file the manifest lists is the one built; every binary loads and starts.
check_kit() {
  local b rc=0 missing
  (cd "$kit" && sed -n '/^files:$/,$p' MANIFEST | tail -n +2 | sha256sum -c --quiet) || { echo "checksums differ"; rc=1; }
  for b in "${kit_binaries[@]}"; do
    missing="$(kitrun ldd "$bin/$b" 2>&1 | grep 'not found')"
    if [ -n "$missing" ]; then
      echo "$b: missing libraries: $missing"
      rc=1; continue
    fi
    case "$b" in
      test_*) kitrun "$bin/$b" --gtest_list_tests > /dev/null || { echo "$b does not start"; rc=1; } ;;
      *) kitrun "$bin/$b" --help > /dev/null || { echo "$b does not start"; rc=1; } ;;
    esac
  done
  return $rc
}
figures_kit() { figures=("binaries=${#kit_binaries[@]}" "glibc=$(ldd --version 2>&1 | head -n 1 | grep -o '[0-9.]*$')"); }

# The fallback: build the same binaries here from the source tree the kit was
# carried in, with the kit's header-only dependencies and GoogleTest's sources.
rebuild_kit() {
  local src="${source_dir:-$kit/../..}" b
  [ -f "$src/CMakeLists.txt" ] || { echo "no source tree at $src (--source)"; return 1; }
  cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" \
    -DDDPM_DEPS_DIR="$kit/deps" || return 1
  cmake --build "$work/build" -j "$(nproc)" --target "${kit_binaries[@]}" || return 1
  for b in "${kit_binaries[@]}"; do [ -x "$work/build/bin/$b" ] || { echo "$b was not built"; return 1; }; done
}

# ---- 2. GPU tests ----
run_gpu_test() {  # a GPU test must pass without skipping: a skip here means the GPU was not usable
  kitrun "$bin/$1" --gtest_color=no "${rh_gtest[@]}"
  local rc=$?
  [ "$rc" -eq 0 ] || return "$rc"
  ! grep -q '\[  SKIPPED \]' "$logs/gpu-$1.log" || { echo "a test skipped: the GPU was not usable"; return 1; }
}
gtest_figures() { figures=("tests=$(grep -c '^\[       OK \]' "$logs/$1.log")"); }

# ---- 3. the seed's jobs ----
# The tool's sampling: 1M points x 500 steps in one precision from train-cpu's model, judged by ddpm_eval.
# The fast samplers after the ancestral chain, timed on the same points (their quality is the
# CPU's to float rounding: bench/RESULTS.md, "Fast samplers"); a few seconds beside its 500 steps.
# No file: at 20 evaluations per point, writing 8 bytes a point would be much of what is timed.
fast_samplers=(dpmpp-2m dpmpp-2m-sde heun)
sample_tool() {  # sample_tool PRECISION
  cd "$e2e" && kitrun "$bin/ddpm_cuda_sample" --device cuda --ckpt cpu.safetensors --precision "$1" --n "$sample_n" \
      --out "s_$1.npy" --png "s_$1.png" \
    && kitrun "$bin/ddpm_eval" "s_$1.npy" --out "eval_$1.json" || return
  local s
  for s in "${fast_samplers[@]}"; do
    kitrun "$bin/ddpm_cuda_sample" --device cuda --ckpt cpu.safetensors --precision "$1" --n "$sample_n" --sampler "$s" \
      --out '' --png '' --density '' || return
  done
}
eval_figures() {  # eval_figures LOG: sliced W1, precision and recall from ddpm_eval's table, with the floor
  awk '/^sliced W1/ { print "sliced_w1=" $3; print "sliced_w1_floor=" $4 }
       /^MMD\^2/    { print "mmd2=" $2 }
       /^precision/ { print "precision=" $2; print "precision_floor=" $3 }
       /^recall/    { print "recall=" $2 }' "$1"
}
sample_figures() {  # the tool's seconds and rate, then the judgement; each fast sampler's seconds and evaluations
  local line s
  line="$(grep 'ddpm steps = ' "$logs/$1.log" | grep -o 'in [0-9.]* s ([0-9.e+]* point-steps/s)' | tail -n 1)"
  [ -n "$line" ] && figures+=("time_s=$(awk '{print $2}' <<<"$line")" "point_steps_per_s=$(awk '{print $4}' <<<"${line//(/}")")
  mapfile -t -O "${#figures[@]}" figures < <(eval_figures "$logs/$1.log")
  for s in "${fast_samplers[@]}"; do
    line="$(grep -o " $s steps = [0-9]* model evaluations .* in [0-9.]* s" "$logs/$1.log" | tail -n 1)"
    [ -n "$line" ] || continue
    figures+=("${s//-/_}_evaluations=$(awk '{print $4}' <<<"$line")" "${s//-/_}_time_s=$(awk '{print $(NF - 1)}' <<<"$line")")
  done
}
train_cpu() {
  cd "$e2e" && kitrun "$bin/ddpm_cuda_train" --device cpu --out cpu.safetensors --loss-csv cpu_loss.csv --loss-png cpu_loss.png \
    --forward-png forward.png
}
train_figures() {
  local line
  line="$(grep -o '[0-9]* steps in [0-9.]* s ([0-9]* steps/s[^)]*), final loss [0-9.]*' "$logs/$1.log" | tail -n 1)"
  [ -n "$line" ] && figures+=("time_s=$(awk '{print $4}' <<<"$line")" "final_loss=$(awk '{print $NF}' <<<"$line")")
  mapfile -t -O "${#figures[@]}" figures < <(eval_figures "$logs/$1.log")
}
sample_cpu() {
  cd "$e2e" && kitrun "$bin/ddpm_cuda_sample" --device cpu --ckpt cpu.safetensors --n 10000 --out s_cpu.npy --png s_cpu.png \
    && kitrun "$bin/ddpm_eval" s_cpu.npy --out eval_cpu.json
}
# The likelihood of held-out data under train-cpu's model (ddpm_cuda_nll): the bound and
# the exact ODE timed on the GPU at sizes that fill it; then the CPU and the GPU on the
# same points and noise (--seed 1), whose means must agree within a standard error (the
# GPU's normals and expf differ from the host's by ulps: ~1e-5 of a point's value, far
# inside it), and the CPU's rate beside the GPU's.
nll_gpu() {
  cd "$e2e" \
    && kitrun "$bin/ddpm_cuda_nll" --device cuda --ckpt cpu.safetensors --what bound --n "$nll_bound_n" \
         --out nll_gpu_bound.json \
    && kitrun "$bin/ddpm_cuda_nll" --device cuda --ckpt cpu.safetensors --what exact --n "$nll_exact_n" \
         --out nll_gpu_exact.json
}
json_number() {  # json_number FILE PATH: the value at a dotted PATH (bound.total.mean) of the tool's JSON (two spaces a level)
  awk -v want="$2" '
    match($0, /^ *"[^"]*": */) {
      head = substr($0, 1, RLENGTH); v = substr($0, RLENGTH + 1); sub(/,$/, "", v)
      lvl = (index(head, "\"") - 1) / 2
      key = substr(head, index(head, "\"") + 1); key = substr(key, 1, index(key, "\"") - 1)
      path[lvl] = key
      p = path[1]; for (i = 2; i <= lvl; i++) p = p "." path[i]
      if (p == want && v != "{") { print v; exit }
    }' "$1" 2>/dev/null
}
nll_part() {  # nll_part FILE SECTION MEAN PREFIX: PREFIX{n,nats,se,time_s,evals_per_s} of the report's bound or exact
  local f="$1" sec="$2" mean se secs evals
  [ -s "$f" ] || return 0
  mean="$(json_number "$f" "$sec.$3.mean")"; se="$(json_number "$f" "$sec.$3.se")"
  secs="$(json_number "$f" "$sec.seconds")"; evals="$(json_number "$f" "$sec.evaluations")"
  is_number "$mean" && is_number "$se" && is_number "$secs" && is_number "$evals" || return 0
  figures+=("${4}n=$(json_number "$f" n)" "${4}nats=$(awk -v v="$mean" 'BEGIN { printf "%.6g", v }')"
            "${4}se=$(awk -v v="$se" 'BEGIN { printf "%.3g", v }')" "${4}time_s=$(awk -v v="$secs" 'BEGIN { printf "%.4g", v }')"
            "${4}evals_per_s=$(awk -v e="$evals" -v s="$secs" 'BEGIN { printf "%.4g", (s > 0 ? e / s : 0) }')")
}
figures_nll_gpu() {
  nll_part "$e2e/nll_gpu_bound.json" bound total bound_
  nll_part "$e2e/nll_gpu_exact.json" exact nll exact_
  local err
  err="$(json_number "$e2e/nll_gpu_exact.json" exact.ode_error)"
  if is_number "$err"; then figures+=("exact_ode_error=$(awk -v v="$err" 'BEGIN { printf "%.3g", v }')"); fi
}
nll_cpu_gpu() {
  local d part c g cs gs
  cd "$e2e" || return
  for d in cpu cuda; do
    kitrun "$bin/ddpm_cuda_nll" --device "$d" --ckpt cpu.safetensors --what both --n "$nll_check_n" --seed 1 \
      --out "nll_check_$d.json" || return
  done
  for part in bound.total exact.nll; do
    c="$(json_number nll_check_cpu.json "$part.mean")"; cs="$(json_number nll_check_cpu.json "$part.se")"
    g="$(json_number nll_check_cuda.json "$part.mean")"; gs="$(json_number nll_check_cuda.json "$part.se")"
    is_number "$c" && is_number "$cs" && is_number "$g" && is_number "$gs" \
      || { echo "no ${part%%.*} mean and standard error in nll_check_cpu.json and nll_check_cuda.json"; return 1; }
    awk -v c="$c" -v cs="$cs" -v g="$g" -v gs="$gs" -v what="${part%%.*}" 'BEGIN {
      d = g - c; if (d < 0) d = -d; se = cs > gs ? cs : gs
      printf "%s: CPU %.6f +- %.6f, GPU %.6f +- %.6f nats: they differ by %.3g, %.3g standard errors\n", what, c, cs, g, gs,
             d, (se > 0 ? d / se : 0)
      exit !(d <= se) }' || { echo "the GPU's ${part%%.*} disagrees with the CPU's on the same points by more than a standard error"; return 1; }
  done
}
figures_nll_cpu_gpu() {  # the CPU's report, the GPU's difference from it, and the GPU's rate (nll-gpu's) over the CPU's
  local part key g c gs cs ratio
  nll_part "$e2e/nll_check_cpu.json" bound total cpu_bound_
  nll_part "$e2e/nll_check_cpu.json" exact nll cpu_exact_
  for part in bound exact; do
    key=total; [ "$part" = exact ] && key=nll
    c="$(json_number "$e2e/nll_check_cpu.json" "$part.$key.mean")"; cs="$(json_number "$e2e/nll_check_cpu.json" "$part.$key.se")"
    g="$(json_number "$e2e/nll_check_cuda.json" "$part.$key.mean")"; gs="$(json_number "$e2e/nll_check_cuda.json" "$part.$key.se")"
    if is_number "$c" && is_number "$cs" && is_number "$g" && is_number "$gs"; then
      # |GPU - CPU| in standard errors (the larger of the two), as nll_cpu_gpu holds it
      figures+=("gpu_${part}_nats=$(awk -v v="$g" 'BEGIN { printf "%.6g", v }')"
                "gpu_${part}_diff_se=$(awk -v c="$c" -v g="$g" -v cs="$cs" -v gs="$gs" 'BEGIN {
                  d = g - c; if (d < 0) d = -d; se = cs > gs ? cs : gs; printf "%.3g", (se > 0 ? d / se : 0) }')")
    fi
    g="$(figure_of nll-gpu "${part}_evals_per_s")"; c="$(figure_of_current "cpu_${part}_evals_per_s")"
    if is_number "$g" && is_number "$c"; then
      ratio="$(awk -v g="$g" -v c="$c" 'BEGIN { if (c > 0) printf "%.4g", g / c }')"
      [ -n "$ratio" ] && figures+=("${part}_gpu_over_cpu=$ratio")
    fi
  done
}
figure_of_current() {  # figure_of_current KEY: a figure the running stage's parser has set
  local f
  for f in "${figures[@]}"; do [ "${f%%=*}" = "$1" ] && { echo "${f#*=}"; return 0; }; done
}
train_gpu() {
  cd "$e2e" && kitrun "$bin/ddpm_cuda_train" --device cuda "${rh_train_gpu[@]}" --out gpu.safetensors --loss-csv gpu_loss.csv \
    --loss-png gpu_loss.png --forward-png forward_gpu.png \
    && kitrun "$bin/ddpm_cuda_sample" --device cuda --ckpt gpu.safetensors --n "$sample_n" --out s_gputrained.npy \
         --png s_gputrained.png \
    && kitrun "$bin/ddpm_eval" s_gputrained.npy --out eval_gputrained.json
}
# The driver's GPU jobs (fused in each precision and the unfused cuBLAS chain) on the
# seed's model, which ddpm_bench trains on the CPU, and timed again on the x encoding's
# model (fresh weights); the seed model's unfused samples judged.
bench_e2e() {
  mkdir -p "$e2e/bench_samples" && cd "$e2e" \
    && kitrun "$bin/ddpm_bench" --only e2e --repeat 1 "${rh_bench_e2e[@]}" --gpu-n "$bench_gpu_n" --samples-dir "$e2e/bench_samples" \
         --json bench_e2e.json \
    || return
  # Without cuBLAS the unfused job skipped (ddpm_bench said why): nothing of it to judge.
  [ -n "$cublas_dir" ] || { echo "unfused samples not judged: $cublas_missing"; return 0; }
  # Found, it may still not load or the job not fit: ddpm_bench's row says why, and the
  # figures carry it (unfused_skipped); the fused jobs' timings stand.
  [ -f "$e2e/bench_samples/unfused_fp32.npy" ] \
    || { echo "unfused samples not judged: ddpm_bench wrote none (its unfused row says why)"; return 0; }
  kitrun "$bin/ddpm_eval" "$e2e/bench_samples/unfused_fp32.npy" --out eval_unfused.json
}
figures_bench_e2e() {
  # "fused fp32 1000000 x 500   <wall s> <pt-steps/s> <TFLOP/s> <% peak>" rows of the GPU table
  # (fused-xemb / unfused-xemb: the x encoding's model; a skipped job has no % column)
  mapfile -t -O 0 figures < <(awk '/^(un)?fused(-xemb)? .* x 500 / && $NF ~ /%$/ {
      key = ($1 ~ /^fused/) ? $2 : "unfused_" $3; if ($1 ~ /-xemb$/) key = "xemb_" key
      print key "_time_s=" $(NF-3) }' "$logs/bench-e2e.log")
  mapfile -t -O "${#figures[@]}" figures < <(eval_figures "$logs/bench-e2e.log" | sed 's/^/unfused_/')
  local why
  why="$(sed -n 's/^unfused cuBLAS fp32 .* skipped: //p' "$logs/bench-e2e.log" | head -n 1 | cut -c1-200)"
  [ -z "$why" ] || figures+=("unfused_skipped=$why")
}
# The PyTorch peer on the same GPU.
# What it needs beyond the GPU is asked once, before its stages (peer_missing,
# compile_missing): a missing piece skips them with the reason, not a failure.
peer() {  # peer NAME ARGS...: bench/peer/ddpm_torch.py with its JSON beside the log
  local name="$1"; shift
  PYTHONUNBUFFERED=1 "$python" "$kit/peer/ddpm_torch.py" --device "$peer_device" --json "$e2e/$name.json" "$@"
}
peer_sample() {  # peer_sample NAME ARGS...: 1M x 500, from the peer's trained weights where they exist, judged
  local name="$1"; shift
  local load=()
  [ -f "$e2e/peer_cuda.pt" ] && load=(--load-model "$e2e/peer_cuda.pt")
  peer "$name" --what sample --n "$sample_n" "${load[@]}" --out-samples "$e2e/$name.npy" "$@" \
    && if [ -f "$e2e/peer_cuda.pt" ]; then kitrun "$bin/ddpm_eval" "$e2e/$name.npy" --out "$e2e/eval_$name.json"; fi
}
peer_missing() {  # why the peer cannot run here (python3 with numpy and a PyTorch that sees the GPU), or nothing
  # (a rehearsal runs it on the CPU: there the GPU is not asked for)
  local out rc
  [ -n "$python" ] || { echo "python3 is not installed"; return 0; }
  # ddpm_torch.py imports numpy as well as torch; a broken install raises more than ImportError.
  # Outside any stage, so no watchdog: the timeout keeps a hung CUDA initialization off the budget.
  out="$(timeout 60 "$python" -c '
import sys
missing = []
for m in ("numpy", "torch"):
    try:
        __import__(m)
    except Exception as e:
        missing.append(f"{m} ({e})")
if missing:
    sys.exit(sys.executable + " cannot import " + " and ".join(missing))
import torch
if sys.argv[1] == "cuda" and not torch.cuda.is_available():
    sys.exit(f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}) does not see the GPU")
' "$peer_device" 2>&1)"
  rc=$?
  [ "$rc" -eq 0 ] && return 0
  [ "$rc" -eq 124 ] && { echo "$python did not say within 60 s whether it has numpy and a PyTorch that sees the GPU"; return 0; }
  out="$(tail -n 1 <<<"$out" | cut -c1-200)"
  echo "${out:-$python exited $rc asking for numpy and torch}"
}
compile_missing() {  # why torch.compile cannot build its kernels here, or nothing
  local inc version lacks=()
  # PyTorch 1.x (Debian's python3-torch, where a rehearsal runs the peer) has no torch.compile.
  version="$("$python" -c 'import sys, torch; print(torch.__version__); sys.exit(0 if hasattr(torch, "compile") else 1)' 2>/dev/null)" \
    || { echo "torch.compile needs PyTorch >= 2.0; this is torch ${version:-of unknown version}"; return 0; }
  # Triton builds its launcher with $CC, else gcc, else clang, against the interpreter's
  # Python.h (triton/runtime/build.py): without either, the compiled stages would fail.
  if [ -n "${CC:-}" ]; then
    command -v "$CC" > /dev/null 2>&1 || lacks+=("a C compiler (CC is '$CC', which is not one)")
  elif ! command -v gcc > /dev/null 2>&1 && ! command -v clang > /dev/null 2>&1; then
    lacks+=("a C compiler (\$CC, gcc or clang; none is here)")
  fi
  inc="$("$python" -c 'import sysconfig
s = sysconfig.get_default_scheme() if hasattr(sysconfig, "get_default_scheme") else sysconfig._get_default_scheme()
print(sysconfig.get_paths(scheme="posix_prefix" if s == "posix_local" else s)["include"])' 2>/dev/null)"
  [ -n "$inc" ] && [ -f "$inc/Python.h" ] \
    || lacks+=("Python.h (not in ${inc:-the include folder python3 names}: python3-dev)")
  [ "${#lacks[@]}" -eq 0 ] || echo "torch.compile needs ${lacks[0]}${lacks[1]:+ and ${lacks[1]}}"
}
peer_figures() {
  local line
  line="$(grep -o 'sample: [0-9]* points x [0-9]* steps in [0-9.]* s' "$logs/$1.log" | tail -n 1)"
  [ -n "$line" ] && figures+=("time_s=$(awk '{print $(NF-1)}' <<<"$line")")
  line="$(grep -o 'train: [0-9]* steps x [0-9]* in [0-9.]* s' "$logs/$1.log" | tail -n 1)"
  [ -n "$line" ] && figures+=("time_s=$(awk '{print $(NF-1)}' <<<"$line")")
  line="$(grep -o 'final loss [0-9.]*' "$logs/$1.log" | tail -n 1)"
  [ -n "$line" ] && figures+=("final_loss=${line##* }")
  line="$(grep -o '"compile_seconds": [0-9][0-9.e+-]*' "$e2e/$1.json" 2>/dev/null | head -n 1)"   # null: not compiled
  [ -n "$line" ] && figures+=("compile_seconds=${line##* }")
  mapfile -t -O "${#figures[@]}" figures < <(eval_figures "$logs/$1.log")
}

# ---- 4. the kernels ----
bench_kernels() {
  cd "$e2e" && kitrun "$bin/ddpm_bench" --only kernels --device cuda "${rh_bench_kernels[@]}" --json bench_kernels.json
}
figures_bench_kernels() { figures=("rows=$(grep -c '"kernel"' "$e2e/bench_kernels.json" 2>/dev/null || echo 0)"); }

# ---- 5. Nsight ----
# ncu's key sections, with the clocks as the GPU sets them (as ddpm_bench times
# them), on the kernels inside one NVTX range: the bench's "timed" calls (not its
# checks, ceilings or warm-ups), or GpuTrainer::run.
ncu_sections=(--section SpeedOfLight --section Occupancy --section LaunchStats)
ncu_profile() {  # ncu_profile NAME NVTX_RANGE [NCU_OPTION...] -- COMMAND...: report, details page as CSV, headline
  local name="$1" range="$2" rep="$e2e/$1" opts=() rc why; shift 2
  while [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift
  rm -f "$rep.ncu-rep" "$rep.csv" "$rep.figures"
  if [ "$rehearse" = 1 ]; then
    # The profiled command's flags still meet the tool; the emulated device has no counters.
    kitrun "$@" || return
    skip_with "rehearsal: the profiled command ran without ncu (the emulated device has no counters)"
    return 0
  fi
  kitrun "$ncu" --clock-control none "${ncu_sections[@]}" --nvtx --nvtx-include "$range/" "${opts[@]}" \
    --force-overwrite --export "$rep" "$@" > "$rep.ncu.log" 2>&1
  rc=$?
  cat "$rep.ncu.log"
  # The profiler's own refusal (no access to the counters, a device or driver it does not
  # support, its library not loaded) is a skip in its words; the program's failure is ours.
  why="$(grep '^==ERROR==' "$rep.ncu.log" | grep -v 'The application returned an error code' | head -n 1 \
         | sed 's/^==ERROR== *//' | cut -c1-200)"
  [ -z "$why" ] || { skip_with "ncu refuses: $why"; return 0; }
  grep -q '^==ERROR== The application returned an error code' "$rep.ncu.log" \
    && { echo "the profiled command failed under ncu (exit $rc)"; return 1; }
  grep -q 'No kernels were profiled' "$rep.ncu.log" \
    && { echo "ncu profiled no kernel inside the NVTX range '$range'"; return 1; }
  [ -s "$rep.ncu-rep" ] || {
    skip_with "ncu made no report (exit $rc: $(grep -v '^[[:space:]]*$' "$rep.ncu.log" | tail -n 1 | cut -c1-150))"
    return 0; }
  [ "$rc" -eq 0 ] || { echo "ncu exited $rc"; return 1; }
  "$ncu" --import "$rep.ncu-rep" --csv --page details > "$rep.csv" 2> "$rep.import.log" \
    || { cat "$rep.import.log"; echo "ncu could not read its own report $rep.ncu-rep"; return 1; }
  ncu_headline "$rep.csv" > "$rep.figures"
  [ -s "$rep.figures" ] || { echo "no headline metric in ncu's details page ($rep.csv)"; return 1; }
  cat "$rep.figures"
}
# ncu's details page as CSV: one row per metric of each profiled launch, every field
# quoted, the columns found by name (--nvtx adds some). Per kernel (its last launch):
# time_us, sm_throughput_pct, dram_throughput_pct, occupancy_pct (achieved) and
# registers, prefixed by the kernel's name where the report holds several kernels.
ncu_headline() {  # ncu_headline CSV
  awk -v FS='","' '
    function clean(v) { gsub(/^"|"\r?$/, "", v); return v }
    !hdr && /^"ID"/ { for (i = 1; i <= NF; i++) col[clean($i)] = i; hdr = 1; next }
    !hdr || !/^"/ || !("Metric Name" in col) || !("Metric Value" in col) || !("Kernel Name" in col) { next }
    {
      m = clean($col["Metric Name"]); v = clean($col["Metric Value"]); u = ("Metric Unit" in col) ? clean($col["Metric Unit"]) : ""
      key = (m == "Duration") ? "time_us" : (m == "Compute (SM) Throughput") ? "sm_throughput_pct" \
          : (m == "DRAM Throughput") ? "dram_throughput_pct" : (m == "Achieved Occupancy") ? "occupancy_pct" \
          : (m == "Registers Per Thread") ? "registers" : ""
      if (key == "") next
      gsub(/,/, "", v)   # thousands separators
      if (v !~ /^-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$/) next   # n/a
      if (key == "time_us") {   # older ncu writes usecond, newer us
        scale = (u == "ns" || u == "nsecond") ? 0.001 : (u == "us" || u == "usecond") ? 1 \
              : (u == "ms" || u == "msecond") ? 1000 : (u == "s" || u == "second") ? 1e6 : 0
        if (scale == 0) next
        v = sprintf("%.6g", v * scale)
      }
      k = clean($col["Kernel Name"]); sub(/^void /, "", k); sub(/[<(].*/, "", k); sub(/.*::/, "", k)
      if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
      val[k, key] = v
    }
    END {
      n = split("time_us sm_throughput_pct dram_throughput_pct occupancy_pct registers", keys, " ")
      for (i = 1; i <= nk; i++) {
        p = ""
        if (nk == 1) print "kernel=" order[i]
        else { p = order[i] "_"; sub(/_kernel_$/, "_", p) }
        for (j = 1; j <= n; j++) if ((order[i], keys[j]) in val) print p keys[j] "=" val[order[i], keys[j]]
      }
    }' "$1"
}
nsys_profile() {  # nsys_profile NAME COMMAND...: the timeline, its kernel summary as CSV, headline
  local name="$1" rep="$e2e/$1" rc why; shift
  rm -f "$rep.nsys-rep" "$rep.qdstrm" "$rep.sqlite" "$rep.kern.csv" "$rep.figures"
  if [ "$rehearse" = 1 ]; then
    kitrun "$@" || return
    skip_with "rehearsal: the profiled command ran without nsys (the emulated device has no timeline)"
    return 0
  fi
  kitrun "$nsys" profile --trace=cuda,nvtx --sample=none --cpuctxsw=none --force-overwrite=true --output "$rep" "$@" \
    > "$rep.nsys.log" 2>&1
  rc=$?
  cat "$rep.nsys.log"
  if [ ! -s "$rep.nsys-rep" ]; then
    # Seen on the lent image: the nsys inside Nsight Compute's folder records a .qdstrm
    # and cannot turn it into a report.
    why="$(grep -i -m1 'error' "$rep.nsys.log" | cut -c1-200)"
    why="${why:-exit $rc: $(grep -v '^[[:space:]]*$' "$rep.nsys.log" | tail -n 1 | cut -c1-150)}"
    if [ -e "$rep.qdstrm" ]; then skip_with "nsys recorded $name.qdstrm but made no report of it ($why)"
    else skip_with "nsys made no report ($why)"; fi
    return 0
  fi
  [ "$rc" -eq 0 ] || { echo "the profiled command failed under nsys (exit $rc)"; return 1; }
  "$nsys" stats --report cuda_gpu_kern_sum --format csv --output - "$rep.nsys-rep" > "$rep.kern.csv" 2> "$rep.stats.log" \
    || { skip_with "nsys stats could not summarize $name.nsys-rep ($(grep -v '^[[:space:]]*$' "$rep.stats.log" | tail -n 1 | cut -c1-150))"
         return 0; }
  nsys_headline "$rep.kern.csv" > "$rep.figures"
  [ -s "$rep.figures" ] || { echo "no kernel in nsys's summary ($rep.kern.csv)"; return 1; }
  cat "$rep.figures"
}
# nsys stats' cuda_gpu_kern_sum as CSV: Time (%), Total Time (ns), Instances, Avg (ns),
# Med, Min, Max, StdDev, Name (quoted where it holds commas), the busiest kernel first.
nsys_headline() {  # nsys_headline CSV: the kernels' total time and launches, the busiest kernel
  awk '
    /^"?Time \(%\)"?,/ { hdr = 1; next }
    !hdr || !/^"?[0-9]/ { next }
    {
      rest = $0
      for (i = 1; i <= 8; i++) { c = index(rest, ","); f[i] = substr(rest, 1, c - 1); gsub(/"/, "", f[i]); rest = substr(rest, c + 1) }
      gsub(/^"|"\r?$/, "", rest)
      total += f[2]; launches += f[3]
      if (top == "") { top = rest; top_pct = f[1]; top_avg = f[4] }
    }
    END {
      if (top == "") exit
      sub(/^void /, "", top); sub(/[<(].*/, "", top); sub(/.*::/, "", top)
      printf "kernels_ms=%.6g\nlaunches=%d\ntop_kernel=%s\ntop_kernel_pct=%s\ntop_kernel_avg_us=%.6g\n", total / 1e6, launches,
             top, top_pct, top_avg / 1e3
    }' "$1"
}
nsight_figures() { figures=(); [ -s "$e2e/$1.figures" ] && mapfile -t figures < "$e2e/$1.figures"; return 0; }

# ---- 6. compute-sanitizer ----
sanitizer="$(find_cuda_tool compute-sanitizer)"  # in the same places as the profilers
sanitizer_probe() {  # the sanitizer on the smallest test: does it accept this device at all?
  if [ "$rehearse" = 1 ]; then
    kitrun "$bin/test_emu_gpu_twin" --gtest_brief=1 || return
    skip_with "rehearsal: compute-sanitizer instruments a GPU; the probe's test ran without it"
    return 0
  fi
  [ -x "$sanitizer" ] || { skip_with "compute-sanitizer is not installed"; return 0; }
  kitrun "$sanitizer" --tool memcheck --error-exitcode 1 "$bin/test_emu_gpu_twin" --gtest_brief=1
}
sanitize() {  # sanitize TOOL TEST
  kitrun "$sanitizer" --tool "$1" --error-exitcode 1 "$bin/$2" --gtest_brief=1 --gtest_filter="$sanitizer_filter"
}

# ---- The run ----
if [ "$rehearse" = 1 ]; then
  echo "device_run.sh: REHEARSAL of kit $(manifest_value commit) on the $device_name, budget ${budget} s, results in $out"
else
  echo "device_run.sh: kit $(manifest_value commit) (sm_$arch), budget ${budget} s, results in $out"
fi
[ -n "$gpu_reason" ] && echo "device_run.sh: $gpu_reason: the stages that need one are skipped"
stage facts facts
stage kit check_kit
if [ "$rehearse" = 1 ]; then
  skip_reason[rebuild]="rehearsal: an emulated kit is the release build's binaries (tools/device_kit.sh --emulated)"
  stage rebuild true
elif [ "$rebuild" = always ] || { [ "$rebuild" = auto ] && selected kit && [ "$last_status" = fail ]; }; then
  stage rebuild rebuild_kit
  [ "$last_status" = pass ] && bin="$work/build/bin"
else
  skip_reason[rebuild]="not needed: the kit's binaries start (--rebuild always forces a build)"
  [ "$rebuild" = never ] && skip_reason[rebuild]="--rebuild never"
  stage rebuild true
fi
# Without cuBLAS only the unfused path's test skips: ddpm_bench opens cuBLAS at run
# time and skips just its cuBLAS rows (the GEMM ceilings, the unfused job), saying why.
[ -n "$cublas_dir" ] || skip_reason[gpu-test_sample_unfused_gpu]="$cublas_missing"

for t in "${gpu_tests[@]}"; do
  eval "figures_gpu_${t}() { gtest_figures gpu-$t; }"   # before the stage, which calls it
  stage "gpu-$t" run_gpu_test "$t"
done

figures_train_cpu() { train_figures train-cpu; }
stage train-cpu train_cpu
[ -f "$e2e/cpu.safetensors" ] || for s in sample-cpu sample-fp32 sample-tf32 sample-bf16 nll-gpu nll-cpu-gpu; do
  skip_reason[$s]="no checkpoint: train-cpu did not run or failed"
done
figures_sample_cpu() { sample_figures sample-cpu; }
stage sample-cpu sample_cpu
for p in fp32 tf32 bf16; do
  eval "figures_sample_${p}() { sample_figures sample-${p}; }"
  stage "sample-$p" sample_tool "$p"
done
stage nll-gpu nll_gpu
stage nll-cpu-gpu nll_cpu_gpu
stage bench-e2e bench_e2e
figures_train_gpu() { train_figures train-gpu; }
stage train-gpu train_gpu

peer_stages=(peer-train-fused peer-train-compile peer-sample-eager peer-sample-graph peer-sample-graph-bf16 peer-sample-compile)
for v in "${peer_stages[@]}"; do
  eval "figures_${v//-/_}() { peer_figures $v; }"
done
if [ -z "$gpu_reason" ] && any_selected "${peer_stages[@]}"; then
  why="$(peer_missing)"
  if [ -n "$why" ]; then
    for s in "${peer_stages[@]}"; do skip_reason[$s]="$why"; done
  else
    why="$(compile_missing)"
    if [ -n "$why" ]; then for s in peer-train-compile peer-sample-compile; do skip_reason[$s]="$why"; done; fi
  fi
fi
# Training first: the samplers draw from the peer's own trained weights, judged like ours.
stage peer-train-fused peer peer-train-fused --what train "${rh_peer_train[@]}" --adam fused --save-model "$e2e/peer_cuda.pt"
stage peer-train-compile peer peer-train-compile --what train "${rh_peer_train[@]}" --adam fused --compile default
stage peer-sample-eager peer_sample peer-sample-eager --sample-variant eager
stage peer-sample-graph peer_sample peer-sample-graph --sample-variant graph
stage peer-sample-graph-bf16 peer_sample peer-sample-graph-bf16 --sample-variant graph --precision bf16
stage peer-sample-compile peer_sample peer-sample-compile --compile default

stage bench-kernels bench_kernels

# Nsight, after the headline stages: the fused sampler in fp32 and bf16 through the bench's
# kernel suite (one timed call at ncu_sizes points; --gemm-n 256: its cuBLAS ceilings, which
# are not profiled, in milliseconds), the training step (the second step's kernels), and
# a training run's timeline.
for s in ncu-sample-fp32 ncu-sample-bf16 ncu-train nsys-train; do
  eval "figures_${s//-/_}() { nsight_figures $s; }"
done
if [ "$rehearse" = 0 ]; then
  [ -n "$ncu" ] || for s in ncu-sample-fp32 ncu-sample-bf16 ncu-train; do
    skip_reason[$s]="ncu (Nsight Compute) not found: not on the PATH, in a CUDA toolkit's bin/ or under $nsight_roots/nsight-compute/*/"
  done
  [ -n "$nsys" ] || skip_reason[nsys-train]="nsys (Nsight Systems) not found: not on the PATH, in a CUDA toolkit's bin/, under $nsight_roots/nsight-systems* or $nsight_roots/nsight-compute/*/host/*/"
fi
for p in fp32 bf16; do
  stage "ncu-sample-$p" ncu_profile "ncu-sample-$p" timed -- "$bin/ddpm_bench" --only kernels --device cuda \
    --filter "sample_fused $p" --sizes "$ncu_sizes" --warmup 0 --min-reps 1 --max-reps 1 --min-time 0 --gemm-n 256 \
    --json "$e2e/ncu-sample-$p.bench.json"
done
train_quiet=(--loss-csv "" --loss-png "" --forward-png "" --log-every 0)
stage ncu-train ncu_profile ncu-train GpuTrainer::run --launch-skip 3 --launch-count 3 -- "$bin/ddpm_cuda_train" \
  --device cuda --steps "$ncu_train_steps" --out "$e2e/ncu_train.safetensors" "${train_quiet[@]}"
stage nsys-train nsys_profile nsys-train "$bin/ddpm_cuda_train" --device cuda --steps "$nsys_train_steps" \
  --out "$e2e/nsys_train.safetensors" "${train_quiet[@]}"

sanitizer_stages=()
for tool in memcheck racecheck synccheck; do
  for t in "${sanitized_tests[@]}"; do sanitizer_stages+=("$tool-$t"); done
done
# The sanitizer stages go by the probe's answer, looked up by name: the probe runs when
# a sanitizer stage is selected even if --only leaves it out; --skip sanitizer-probe
# runs them unprobed.
if ! matches_any sanitizer-probe "${skip_pats[@]}" && any_selected "${sanitizer_stages[@]}"; then wanted[sanitizer-probe]=1; fi
stage sanitizer-probe sanitizer_probe
probe="$(row_field sanitizer-probe 2)"
if [ -n "$probe" ] && [ "$probe" != pass ]; then
  why="the probe did not pass"
  [ "$probe" = skip ] && why="the probe was skipped ($(row_field sanitizer-probe 4-))"
  [ "$probe" != skip ] && grep -q 'Device not supported' "$logs/sanitizer-probe.log" 2>/dev/null && why="compute-sanitizer refuses this device (Device not supported)"
  [ -x "$sanitizer" ] || [ "$rehearse" = 1 ] || why="compute-sanitizer is not installed"
  for s in "${sanitizer_stages[@]}"; do skip_reason[$s]="$why"; done
fi
for s in "${sanitizer_stages[@]}"; do stage "$s" sanitize "${s%%-*}" "${s#*-}"; done

publish
echo
cat "$out/table.txt"
echo
echo "device_run.sh: $failures stage(s) failed; results in $out (results.jsonl, table.txt, results_entry.md, logs.tar.gz)"
[ "$failures" -eq 0 ]
