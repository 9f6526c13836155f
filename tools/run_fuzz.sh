#!/usr/bin/env bash
# Builds the fuzz preset (clang, libFuzzer, ASan + UBSan) and runs each fuzz
# target of tests/fuzz for a bounded time on a copy of its seed corpus; prints
# one line per target and fails on any crash, leak, timeout, out-of-memory or
# sanitizer report, keeping the input that caused it.
#
#   tools/run_fuzz.sh [--seconds N] [--parallel P] [--skip-build] [TARGET...]
#
# Defaults: 60 s per target (or DDPM_FUZZ_SECONDS), two targets at a time (or
# DDPM_FUZZ_PARALLEL), every target with a corpus in tests/fuzz/corpus/.
# Each run writes to build/fuzz/runs/<time>/<target>/: log, corpus (the grown
# copy) and findings (libFuzzer's crash-*, leak-*, timeout-*, oom-* inputs).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "run_fuzz.sh: $1" >&2; exit "${2:-1}"; }

seconds=${DDPM_FUZZ_SECONDS:-60}
parallel=${DDPM_FUZZ_PARALLEL:-2}
build=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
    --parallel) parallel=${2:?--parallel needs a value}; shift 2 ;;
    --skip-build) build=0; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || die "--seconds must be a positive integer, got '$seconds'" 2
[[ "$parallel" =~ ^[1-9][0-9]*$ ]] || die "--parallel must be a positive integer, got '$parallel'" 2
if [ "${#targets[@]}" -eq 0 ]; then
  for d in tests/fuzz/corpus/*/; do targets+=("$(basename "$d")"); done
fi

if [ "$build" -eq 1 ]; then
  command -v clang++ >/dev/null || die "clang++ not found; run tools/install_deps.sh"
  echo "+ cmake --preset fuzz && cmake --build --preset fuzz -j2"
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz -j2
fi
for t in "${targets[@]}"; do
  [ -x "build/fuzz/bin/$t" ] || die "no fuzz target build/fuzz/bin/$t"
  [ -d "tests/fuzz/corpus/$t" ] || die "no seed corpus tests/fuzz/corpus/$t"
done

run_dir="build/fuzz/runs/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$run_dir"
# Leaks are findings; UBSan is fatal already (-fno-sanitize-recover=all), this adds its stack.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The targets' scratch files, on tmpfs when there is one; removed even after a crash.
scratch=$(mktemp -d "$([ -d /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/ddpm_fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export TMPDIR=$scratch

run_target() {
  local t=$1 dir="$run_dir/$1"
  mkdir -p "$dir/corpus" "$dir/findings"
  cp -R "tests/fuzz/corpus/$t/." "$dir/corpus/"
  local args=(-max_total_time="$seconds" -print_final_stats=1 -close_fd_mask=3 -timeout=10
              -rss_limit_mb=2048 -detect_leaks=1 -artifact_prefix="$dir/findings/")
  [ -f "tests/fuzz/$t.dict" ] && args+=(-dict="tests/fuzz/$t.dict")
  local rc=0
  "build/fuzz/bin/$t" "${args[@]}" "$dir/corpus" >"$dir/log" 2>&1 || rc=$?
  echo "$rc" >"$dir/rc"
}

echo "fuzzing ${targets[*]} for ${seconds} s each, $parallel at a time, in $run_dir"
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n; done
  run_target "$t" &
done
wait

# The last value libFuzzer printed after `key` (a status field such as "cov:", or a final stat).
last_value() { grep -o "$1 [0-9]*" "$2" | tail -n 1 | awk '{print $2}'; }
count_files() { find "$1" -type f | wc -l; }

failed=()
printf '%-18s %12s %8s %8s %8s  %s\n' target executions cov ft corpus findings
for t in "${targets[@]}"; do
  dir="$run_dir/$t"
  rc=$(cat "$dir/rc")
  findings=$(count_files "$dir/findings")
  [ "$rc" -eq 0 ] || findings+=" (exit $rc)"
  printf '%-18s %12s %8s %8s %8s  %s\n' "$t" "$(last_value stat::number_of_executed_units: "$dir/log")" \
    "$(last_value cov: "$dir/log")" "$(last_value ft: "$dir/log")" "$(count_files "$dir/corpus")" "$findings"
  [ "$findings" = 0 ] || failed+=("$t")
done

# From the first report line (a sanitizer's, libFuzzer's or the target's own) to the summary line.
report='/^==[0-9]+==ERROR|^fuzz target:|ERROR: libFuzzer|^SUMMARY:|runtime error:/ {on=1} on {print} on && /^SUMMARY:/ {exit}'
for t in "${failed[@]}"; do
  dir="$run_dir/$t"
  printf '\n== %s: what it reported (full log: %s)\n' "$t" "$dir/log"
  awk "$report" "$dir/log" | head -n 60
  for f in "$dir/findings"/*; do
    [ -e "$f" ] || continue
    echo "input kept: $f"
    echo "replay:     build/fuzz/bin/$t $f"
  done
done
[ "${#failed[@]}" -eq 0 ] || die "findings in ${failed[*]}; each becomes a regression test (tests/fuzz/README.md)"
echo "run_fuzz.sh: no findings"
