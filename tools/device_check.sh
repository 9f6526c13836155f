#!/usr/bin/env bash
# The device check, for a machine with an NVIDIA GPU (sm_80 or later): builds
# for that GPU, runs every GPU test, runs compute-sanitizer's memcheck,
# racecheck and synccheck on the GPU tests, checks ptxas's report for spills,
# runs the kernel microbenchmarks and the end-to-end benchmarks, samples 1M
# points with the tool in every precision and judges them with ddpm_eval, and prints
# the step table, then the kernels' table last. Exits non-zero if any step fails.
#
#   tools/device_check.sh [ARCH]     # ARCH: CUDA architecture, default 90 (H100/H200)
#
# Step logs go to $build/logs; where $OUT is set, it receives the few files worth
# keeping: bench_kernels.json, bench_e2e.json, bench.txt (both tables), eval_<precision>.json
# and s_<precision>.png (the tool's samples),
# ptxas_report.txt, results_entry.md (a bench/RESULTS.md entry: date, device,
# commit, table) and logs.tar.gz (every step's log).
set -uo pipefail
cd "$(dirname "$0")/.."
arch="${1:-90}"
build=build/device-sm${arch}
log_dir="$build/logs"
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
# Registers, shared memory and spills of every kernel for every architecture the project builds.
step ptxas tools/ptxas_report.sh --out "$log_dir/ptxas_report.txt"
# A GPU test must pass without skipping: a skip here means the GPU was not usable.
run_gpu_test() {
  local out rc
  out=$("$build/bin/$1" 2>&1); rc=$?
  echo "$out"
  [ "$rc" -eq 0 ] && ! grep -q "SKIPPED" <<<"$out"
}
gpu_tests=(test_emu_gpu_twin test_reverse_step_gpu test_forward_process_gpu test_sample_fused_gpu test_sample_unfused_gpu
           test_sample_stats_gpu test_train_step_gpu)
for t in "${gpu_tests[@]}"; do step "$t" run_gpu_test "$t"; done
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck synccheck; do
  for t in "${gpu_tests[@]}"; do
    # The long runs (5000 training steps, 500-step chains of many points) are too
    # slow under the tools; their kernels are the ones the shorter tests run.
    step "$tool:$t" "$sanitizer" --tool "$tool" --error-exitcode 1 "$build/bin/$t" --gtest_brief=1 \
      --gtest_filter=-TrainStepGpu.FullRunLossCurveMatchesTheCpu:*FullChain*:*Moments*:*AgreesWithTheFusedKernel*
  done
done
step ctest bash -c "cd '$build' && ctest -j '$(nproc)' -LE long --output-on-failure"
# Every GPU kernel, CUDA events, against the copy and cuBLAS ceilings of the same run; then the jobs end to end.
step bench-kernels "$build/bin/ddpm_bench" --only kernels --device cuda --json "$log_dir/bench_kernels.json"
step bench-e2e "$build/bin/ddpm_bench" --only e2e --steps 1000 --n 2000 --json "$log_dir/bench_e2e.json"
# The tool end to end: the seed's model trained on the CPU, 1M samples in each precision on the
# GPU (the tool prints its time), each judged by ddpm_eval against the noise floor.
e2e="$PWD/$build/e2e"
mkdir -p "$e2e"
step train-cpu bash -c "cd '$e2e' && '$PWD/$build/bin/ddpm_cuda_train' --device cpu --loss-png '' --forward-png ''"
for p in fp32 tf32 bf16; do
  step "sample-1M-$p" bash -c "cd '$e2e' && '$PWD/$build/bin/ddpm_cuda_sample' --device cuda --precision $p \
    --n 1000000 --out s_$p.npy --png s_$p.png && '$PWD/$build/bin/ddpm_eval' s_$p.npy --json --out eval_$p.json"
done
# Training on the GPU through the tool, judged the same way.
step train-gpu bash -c "cd '$e2e' && '$PWD/$build/bin/ddpm_cuda_train' --device cuda --out gpu.safetensors \
  --loss-csv gpu_loss.csv --loss-png gpu_loss.png --forward-png '' && '$PWD/$build/bin/ddpm_cuda_sample' \
  --device cuda --ckpt gpu.safetensors --n 100000 --out s_gputrained.npy --png s_gputrained.png \
  && '$PWD/$build/bin/ddpm_eval' s_gputrained.npy --json --out eval_gputrained.json"
step sample-100k-cpu bash -c "cd '$e2e' && '$PWD/$build/bin/ddpm_cuda_sample' --device cpu --n 100000 \
  --out s_cpu.npy --png '' && '$PWD/$build/bin/ddpm_eval' s_cpu.npy --json --out eval_cpu.json"
# The PyTorch peer in the same run: the seed's sampler for 1M x 500 on the same GPU, eager and
# with the whole chain in one CUDA graph, fp32 and bf16 autocast (python3 there holds PyTorch).
for v in eager graph; do
  for p in fp32 bf16; do
    step "peer-$v-$p" python3 bench/peer/ddpm_torch.py --what sample --device cuda --n 1000000 --precision "$p" \
      --sample-variant "$v" --json "$log_dir/peer_${v}_$p.json"
  done
done

if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  for f in bench_kernels.json bench_e2e.json ptxas_report.txt; do [ -f "$log_dir/$f" ] && cp "$log_dir/$f" "$OUT/"; done
  cp "$log_dir"/peer_*.json "$OUT/" 2>/dev/null
  cp "$e2e"/eval_*.json "$e2e"/s_*.png "$e2e"/gpu_loss.* "$OUT/" 2>/dev/null
  cat "$log_dir/bench-kernels.log" "$log_dir/bench-e2e.log" > "$OUT/bench.txt" 2>/dev/null
  {
    echo "## $(date -u +%F) — GPU kernels, $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1)"
    echo
    echo "- Commit: \`$(git rev-parse --short HEAD 2>/dev/null || echo 'unknown: no git checkout here')\`"
    echo "- Command: \`tools/device_check.sh $arch\` (\`ddpm_bench --only kernels --device cuda\`)"
    echo
    echo '```'
    cat "$log_dir/bench-kernels.log" 2>/dev/null
    echo '```'
  } > "$OUT/results_entry.md"
  tar -czf "$OUT/logs.tar.gz" -C "$log_dir" .
fi

echo
printf '%-34s %-6s %8s\n' step result seconds
for r in "${rows[@]}"; do IFS='|' read -r n s secs <<<"$r"; printf '%-34s %-6s %8s\n' "$n" "$s" "$secs"; done
# The kernels' table last: what this run measured.
[ -f "$log_dir/bench-kernels.log" ] && cat "$log_dir/bench-kernels.log"
grep -h "point-steps/s" "$log_dir"/sample-*.log "$log_dir"/peer-*.log 2>/dev/null
exit $status
