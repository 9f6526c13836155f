#!/usr/bin/env bash
# The device check, for a machine with an NVIDIA GPU (sm_80 or later): builds
# for that GPU, runs every GPU test, runs compute-sanitizer's memcheck,
# racecheck and synccheck on the GPU tests, runs the benchmarks, and prints a
# short table last. Exits non-zero if any step fails.
#
#   tools/device_check.sh [ARCH]     # ARCH: CUDA architecture, default 90 (H100/H200)
set -uo pipefail
cd "$(dirname "$0")/.."
arch="${1:-90}"
build=build/device-sm${arch}
log_dir="${OUT:-$build/logs}"
mkdir -p "$log_dir"
declare -a rows=()
status=0
step() {  # step NAME COMMAND...: runs, logs, records PASS/FAIL and seconds
  local name="$1"; shift
  local t0=$SECONDS
  if "$@" > "$log_dir/$name.log" 2>&1; then rows+=("$name|PASS|$((SECONDS - t0))")
  else rows+=("$name|FAIL|$((SECONDS - t0))"); status=1; tail -n 30 "$log_dir/$name.log"; fi
}

nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader || true
step configure cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch"
step build cmake --build "$build" -j "$(nproc)"
# A GPU test must pass without skipping: a skip here means the GPU was not usable.
run_gpu_test() {
  local out rc
  out=$("$build/bin/$1" 2>&1); rc=$?
  echo "$out"
  [ "$rc" -eq 0 ] && ! grep -q "SKIPPED" <<<"$out"
}
gpu_tests=(test_emu_gpu_twin test_reverse_step_gpu test_sample_fused_gpu)
for t in "${gpu_tests[@]}"; do step "$t" run_gpu_test "$t"; done
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck synccheck; do
  for t in "${gpu_tests[@]}"; do
    step "$tool:$t" "$sanitizer" --tool "$tool" --error-exitcode 1 "$build/bin/$t" --gtest_brief=1
  done
done
step ctest bash -c "cd '$build' && ctest -j '$(nproc)' --output-on-failure"
step bench-cpu "$build/bin/ddpm_bench" --steps 1000 --n 2000

echo
printf '%-34s %-6s %8s\n' step result seconds
for r in "${rows[@]}"; do IFS='|' read -r n s secs <<<"$r"; printf '%-34s %-6s %8s\n' "$n" "$s" "$secs"; done
exit $status
