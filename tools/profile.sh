#!/usr/bin/env bash
# Profiles the GPU kernels with Nsight Compute and, where it is installed,
# Nsight Systems: a sampling run (ddpm_bench's GPU suite: sample_init,
# reverse_step and the fused sampler, one timed call each) and a short
# training run (ddpm_cuda_train --device cuda; skipped, with a line saying
# so, while the training tool has no CUDA path). Needs an NVIDIA GPU.
#
#   tools/profile.sh [--out DIR] [--build DIR] [--points N] [--steps N]
#
#   --out DIR     where the reports go (default build/profile/<date-time>)
#   --build DIR   build directory (default build/profile: Release, this GPU's
#                 architecture, -lineinfo so Nsight maps samples to source lines)
#   --points N    points per sampling call (default 65536: 4 waves of the fused sampler on an H200)
#   --steps N     training steps (default 200)
#
# Writes, per run (sampling, training):
#   RUN.ncu-rep   Nsight Compute, the key sections, clocks left as the GPU sets them
#                 (--clock-control none, as in ddpm_bench), only kernels inside the
#                 NVTX range "timed" (sampling) or "GpuTrainer::run" (training)
#   RUN_ncu.txt   its details page as text; the script prints the headline numbers
#   RUN.nsys-rep  Nsight Systems timeline (CUDA API, kernels, NVTX ranges), where nsys exists
#   RUN_nsys.txt  its kernel and NVTX summaries
set -euo pipefail
cd "$(dirname "$0")/.."

out="build/profile/$(date +%Y%m%d-%H%M%S)"
build=build/profile
points=65536
steps=200
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="${2:?--out needs a directory}"; shift ;;
    --build) build="${2:?--build needs a directory}"; shift ;;
    --points) points="${2:?--points needs a number}"; shift ;;
    --steps) steps="${2:?--steps needs a number}"; shift ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "profile.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$points" =~ ^[1-9][0-9]*$ ]] || { echo "profile.sh: --points takes a positive whole number, got '$points'" >&2; exit 2; }
[[ "$steps" =~ ^[1-9][0-9]*$ ]] || { echo "profile.sh: --steps takes a positive whole number, got '$steps'" >&2; exit 2; }

# The tools, on PATH or where the CUDA toolkit installs them.
find_tool() { command -v "$1" 2>/dev/null || { [ -x "/usr/local/cuda/bin/$1" ] && echo "/usr/local/cuda/bin/$1"; } || true; }
ncu=$(find_tool ncu)
nsys=$(find_tool nsys)
[ -n "$ncu" ] || { echo "profile.sh: Nsight Compute (ncu) not found on PATH or in /usr/local/cuda/bin" >&2; exit 1; }
command -v nvidia-smi > /dev/null && gpu=$(nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader 2>/dev/null | head -n1) || gpu=""
[ -n "$gpu" ] || { echo "profile.sh: no NVIDIA GPU found (nvidia-smi lists none): nothing to profile" >&2; exit 1; }
arch=$(tr -d ' .' <<<"${gpu##*,}")
echo "GPU: $gpu; ncu: $("$ncu" --version | tail -n1); nsys: ${nsys:-not installed (timeline skipped)}"

# Build what is profiled, for this GPU only.
# On a machine without the -dev packages (a lent GPU machine), the device kit's
# dependencies (tools/device_kit.sh) stand in for them.
deps=()
[ -d build/device-kit/deps ] && ! [ -f /usr/include/nlohmann/json.hpp ] && deps=(-DDDPM_DEPS_DIR="$PWD/build/device-kit/deps")
if [ ! -x "$build/bin/ddpm_bench" ] || [ ! -x "$build/bin/ddpm_cuda_train" ]; then
  echo "+ building ddpm_bench and ddpm_cuda_train in $build (sm_$arch, -lineinfo)"
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" \
    -DCMAKE_CUDA_FLAGS=-lineinfo -DDDPM_BUILD_TESTS=OFF "${deps[@]}" > /dev/null
  cmake --build "$build" --target ddpm_bench ddpm_cuda_train
fi
mkdir -p "$out"

sections=(--section SpeedOfLight --section LaunchStats --section Occupancy --section MemoryWorkloadAnalysis
          --section ComputeWorkloadAnalysis --section SchedulerStats --section WarpStateStats)

# profile NAME NVTX_RANGE COMMAND...: Nsight Compute on the kernels inside the
# NVTX push/pop range, then Nsight Systems on the same command.
profile() {
  local name="$1" range="$2"; shift 2
  echo "+ ncu: $name"
  "$ncu" --clock-control none "${sections[@]}" --nvtx --nvtx-include "$range/" \
    --force-overwrite --export "$out/$name" "$@" > "$out/${name}_ncu_run.log" 2>&1 \
    || { tail -n 20 "$out/${name}_ncu_run.log" >&2; echo "profile.sh: ncu failed on the $name run (log: $out/${name}_ncu_run.log)" >&2; return 1; }
  if grep -q "No kernels were profiled" "$out/${name}_ncu_run.log"; then
    echo "profile.sh: ncu profiled no kernel of the $name run (NVTX range '$range' not seen?)" >&2
    return 1
  fi
  "$ncu" --import "$out/$name.ncu-rep" --page details > "$out/${name}_ncu.txt"
  # The headline per kernel: duration, SM and memory throughput (% of peak), registers, occupancy.
  grep -E '^  [^ ].*Context|Duration|Compute \(SM\) Throughput|^ +Memory Throughput|Registers Per Thread|Achieved Occupancy' \
    "$out/${name}_ncu.txt" || true
  if [ -n "$nsys" ]; then
    echo "+ nsys: $name"
    "$nsys" profile --trace=cuda,nvtx,osrt --sample=none --cpuctxsw=none --force-overwrite=true \
      --output "$out/$name" "$@" > "$out/${name}_nsys_run.log" 2>&1 \
      || { tail -n 20 "$out/${name}_nsys_run.log" >&2; echo "profile.sh: nsys failed on the $name run" >&2; return 1; }
    "$nsys" stats --report cuda_gpu_kern_sum --report nvtx_sum "$out/$name.nsys-rep" > "$out/${name}_nsys.txt" 2>&1 \
      || echo "note: nsys stats could not summarize $out/$name.nsys-rep (open it in the Nsight Systems GUI)"
  fi
}

# Sampling: one warm-up and one timed call per GPU kernel; the ceilings
# (copy, cuBLAS) run in the NVTX range "ceiling" and are not profiled.
profile sampling timed "$build/bin/ddpm_bench" --only kernels --device cuda --sizes "$points" \
  --warmup 1 --min-reps 1 --max-reps 1 --min-time 0

# Training: the GPU path of the training tool, where it has one.
train=("$build/bin/ddpm_cuda_train" --device cuda --batch 512 --out "$out/train.safetensors" --loss-csv ""
       --loss-png "" --forward-png "" --log-every 0)
if "${train[@]}" --steps 2 > "$out/training_probe.log" 2>&1; then
  profile training "GpuTrainer::run" "${train[@]}" --steps "$steps"
else
  echo "training: skipped: $(tail -n 1 "$out/training_probe.log")"
fi
echo "reports in $out"
