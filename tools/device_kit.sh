#!/usr/bin/env bash
# Builds the device kit: everything a lent GPU machine needs to answer the
# project's GPU questions in one command, built here (no GPU needed) and
# carried there, where no package can be installed.
#
#   tools/device_kit.sh [--arch 90] [--out build/device-kit] [--fallback-check] [--self-test]
#   tools/device_kit.sh --emulated BUILD_DIR [--out build/device-kit-emulated]
#
# Paths are the repository's (the script runs from its root).
#
# The kit (--out, default build/device-kit, ignored by git):
#   bin/      the GPU tests, ddpm_cuda_train, ddpm_cuda_sample, ddpm_cuda_nll,
#             ddpm_bench and ddpm_eval, in Release for one architecture
#             (--arch, default 90: H100/H200); cudart and GoogleTest static,
#             JSON, CLI11 and stb compiled in: at run time they need glibc,
#             libstdc++, libgcc_s and libgomp (carried in lib/); ddpm_bench
#             and the unfused path's test open cuBLAS 13 when they use it
#             (dlopen: device_run.sh finds it there and puts it on their
#             library path);
#   lib/      libgomp.so.1, for a machine without GCC's runtime;
#   device_run.sh, peer/ddpm_torch.py: the run script and the PyTorch peer;
#   deps/     the header-only dependencies and GoogleTest's sources, for the
#             fallback build there (cmake -DDDPM_DEPS_DIR=<kit>/deps; nvcc,
#             CMake and ninja only): device_run.sh --rebuild;
#   MANIFEST  commit, date, architecture, the toolkit, the newest GLIBC,
#             GLIBCXX and CXXABI symbol versions the binaries need beside the
#             ceiling they are held to, and each file's sha256.
# It fails if a binary needs a shared library outside that list, a symbol
# version above the oldest target's (Ubuntu 22.04: GLIBC_2.35,
# GLIBCXX_3.4.30, CXXABI_1.3.13; tools/abi_ceiling.sh), or if the kit would
# not travel (over 48 MiB: the working tree shares the 64 MiB).
#
# --fallback-check also builds the kit's binaries a second time from deps/
# alone (build/device-kit-fallback) and fails if any object read a header of
# the system's packages instead.
#
# --emulated BUILD_DIR assembles a rehearsal kit instead, from a build's binaries
# against the emulated CUDA device (tests/emu/device: ddpm_cuda_train_emu,
# ddpm_cuda_sample_emu, ddpm_cuda_nll_emu, ddpm_bench_emu and the GPU tests'
# _emu builds, which the release preset builds), under the real binaries' names;
# no build, no deps/. Its MANIFEST says "device: emulated", and its device_run.sh
# runs only with --rehearse (the whole run, every GPU stage on the emulated
# device at tiny sizes).
#
# --self-test runs the kit's device_run.sh here (CI does, on a machine
# without a GPU): the stages that need no GPU must pass and, where there is
# no GPU, every other must skip saying so; a kit with one changed byte must
# fail its checksum stage; a stage over the budget must be skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=90
kit=build/device-kit
fallback_check=0
self_test=0
emulated=""
kit_given=0
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch="$2"; shift 2 ;;
    --out) kit="$2"; kit_given=1; shift 2 ;;
    --emulated) [ $# -ge 2 ] || { echo "device_kit.sh: error: --emulated needs a build folder" >&2; exit 2; }
                emulated="$2"; shift 2 ;;
    --fallback-check) fallback_check=1; shift ;;
    --self-test) self_test=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "device_kit.sh: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$arch" =~ ^[0-9]{2,3}a?$ ]] || { echo "device_kit.sh: error: --arch must be a CUDA architecture such as 90, not '$arch'" >&2; exit 2; }
if [ -n "$emulated" ]; then
  [ "$fallback_check" = 0 ] && [ "$self_test" = 0 ] \
    || { echo "device_kit.sh: error: --emulated makes a rehearsal kit: --fallback-check and --self-test are for the GPU kit" >&2; exit 2; }
  [ -d "$emulated/bin" ] || { echo "device_kit.sh: error: --emulated '$emulated' has no bin/ folder: name a build folder (build/release)" >&2; exit 2; }
  [ "$kit_given" = 1 ] || kit=build/device-kit-emulated
fi

build=build/device-kit-build
binaries=(ddpm_cuda_train ddpm_cuda_sample ddpm_cuda_nll ddpm_eval ddpm_bench
          test_emu_gpu_twin test_reverse_step_gpu test_forward_process_gpu test_sample_stats_gpu
          test_sample_unfused_gpu test_sample_fused_gpu test_train_step_gpu test_likelihood_gpu)
# The shared libraries a kit binary may need: glibc's and GCC's runtimes. Not cuBLAS,
# which they open at run time (host/gpu/cublas_loader.hpp): NEEDed, it would stop
# ddpm_bench, fused rows and all, on a machine without it.
allowed='^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|ld-linux-x86-64\.so\.2|libstdc\+\+\.so\.6|libgcc_s\.so\.1|libgomp\.so\.1)$'
max_kit_bytes=$((48 << 20))

if [ -n "$emulated" ]; then
  # The emulated builds, each under the name the run script calls (ddpm_eval has no CUDA path).
  emu_name() { [ "$1" = ddpm_eval ] && echo "$1" || echo "${1}_emu"; }
  for b in "${binaries[@]}"; do
    [ -x "$emulated/bin/$(emu_name "$b")" ] || {
      echo "device_kit.sh: error: $emulated/bin/$(emu_name "$b") is missing: build it (cmake --build $emulated)" >&2; exit 1; }
  done
  echo "+ assemble the rehearsal kit $kit from $emulated (the emulated CUDA device)"
  rm -rf "$kit"
  mkdir -p "$kit/bin" "$kit/lib" "$kit/peer"
  for b in "${binaries[@]}"; do cp "$emulated/bin/$(emu_name "$b")" "$kit/bin/$b"; done
else
  echo "+ configure and build for sm_$arch in $build"
  mkdir -p "$(dirname "$build")"   # a fresh clone has no build/ for the configure log
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" \
    -DDDPM_BUILD_TESTS=ON -DDDPM_BUILD_BENCH=ON > "$build.configure.log" 2>&1 \
    || { cat "$build.configure.log"; exit 1; }
  cmake --build "$build" --target "${binaries[@]}"

  echo "+ assemble $kit"
  rm -rf "$kit"
  mkdir -p "$kit/bin" "$kit/lib" "$kit/peer" "$kit/deps/include/stb" "$kit/deps/googletest"
  for b in "${binaries[@]}"; do cp "$build/bin/$b" "$kit/bin/"; done
fi
cp -L "$(g++ -print-file-name=libgomp.so.1)" "$kit/lib/libgomp.so.1"
cp tools/device_run.sh "$kit/"
cp bench/peer/ddpm_torch.py "$kit/peer/"
# The fallback build's dependencies, from the packages this build used (the GPU kit's only).
if [ -z "$emulated" ]; then
  json_dir=$(dirname "$(find /usr/include /usr/local/include -path '*/nlohmann/json.hpp' -print -quit)")
  cli_dir=$(dirname "$(find /usr/include /usr/local/include -path '*/CLI/CLI.hpp' -print -quit)")
  stb_dir=$(dirname "$(find /usr/include /usr/local/include -name stb_image_write.h -print -quit)")
  gtest_src=/usr/src/googletest/googletest
  for d in "$json_dir" "$cli_dir" "$stb_dir" "$gtest_src"; do
    [ -d "$d" ] || { echo "device_kit.sh: error: a dependency's folder is missing ($d): run tools/install_deps.sh" >&2; exit 1; }
  done
  cp -r "$json_dir" "$kit/deps/include/nlohmann"
  cp -r "$cli_dir" "$kit/deps/include/CLI"
  cp "$stb_dir/stb_image_write.h" "$stb_dir/stb_easy_font.h" "$kit/deps/include/stb/"
  cp -r "$gtest_src/CMakeLists.txt" "$gtest_src/cmake" "$gtest_src/include" "$gtest_src/src" "$kit/deps/googletest/"
fi

echo "+ check the shared libraries each binary needs"
bad=0
for f in "$kit"/bin/* "$kit"/lib/*; do
  while read -r lib; do
    [[ "$lib" =~ $allowed ]] || { echo "$f needs $lib, which the lent machine may not have" >&2; bad=1; }
  done < <(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
done
[ "$bad" -eq 0 ] || { echo "device_kit.sh: error: a kit binary needs a library outside the allowed list" >&2; exit 1; }
echo "+ check the symbol versions each binary needs against the oldest target's"
# A kit built on a newer distribution would travel, then fail to start there.
abi=$(tools/abi_ceiling.sh "$kit"/bin/* "$kit"/lib/*) || {
  echo "device_kit.sh: error: the kit would not start on the oldest target (Ubuntu 22.04)" >&2; exit 1; }

commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || commit="$commit (with uncommitted changes)"
{
  echo "ddpm-cuda device kit (tools/device_kit.sh); run ./device_run.sh --help"
  echo "commit: $commit"
  echo "date: $(date -u +%FT%TZ)"
  if [ -n "$emulated" ]; then
    echo "arch: emulated"
    echo "device: emulated (tests/emu/device, from $emulated): a rehearsal kit, for device_run.sh --rehearse only"
  else
    echo "arch: sm_$arch"
  fi
  echo "nvcc: $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*, V[0-9.]*' || echo unknown)"
  echo "cxx: $(g++ --version | head -n 1)"
  echo "$abi"
  echo "files:"
  (cd "$kit" && find . -type f ! -name MANIFEST | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum)
} > "$kit/MANIFEST"

bytes=$(du -sb "$kit" | cut -f1)
echo "+ $kit: $((bytes >> 20)) MiB, $(grep -c '  ' "$kit/MANIFEST") files, needs $(sed -n 's/^[a-z]*_needed: //p' <<<"$abi" | xargs)"
[ "$bytes" -le "$max_kit_bytes" ] || {
  echo "device_kit.sh: error: the kit is $((bytes >> 20)) MiB; it must stay under $((max_kit_bytes >> 20)) MiB to travel" >&2; exit 1; }

if [ "$fallback_check" -eq 1 ]; then
  fb=build/device-kit-fallback
  echo "+ fallback build from $kit/deps alone in $fb"
  cmake -S . -B "$fb" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" \
    -DDDPM_DEPS_DIR="$PWD/$kit/deps" > "$fb.configure.log" 2>&1 || { cat "$fb.configure.log"; exit 1; }
  cmake --build "$fb" --target "${binaries[@]}"
  # Every header each object read (ninja's dependency log): none may come from the system's packages.
  leaks=$(ninja -C "$fb" -t deps | grep -E '^ +/usr/(local/)?include/(nlohmann|CLI|stb|gtest)/' | sort -u || true)
  [ -z "$leaks" ] || { echo "device_kit.sh: error: the fallback build read the system's headers:" >&2; echo "$leaks" >&2; exit 1; }
  echo "+ the fallback build used the kit's dependencies only"
fi

if [ "$self_test" -eq 1 ]; then
  st=build/device-kit-selftest
  rm -rf "$st" && mkdir -p "$st"
  fail() { echo "device_kit.sh: self-test: $1" >&2; exit 1; }
  status_of() { sed -n "s/^{\"stage\": \"$2\", \"status\": \"\([a-z]*\)\".*/\1/p" "$1"; }
  echo "+ self-test: $kit/device_run.sh --budget 300"
  "$kit/device_run.sh" --budget 300 --out "$st/run" > "$st/run.log" 2>&1 || { cat "$st/run.log"; fail "the run failed"; }
  for s in facts kit train-cpu sample-cpu; do
    [ "$(status_of "$st/run/results.jsonl" "$s")" = pass ] || fail "stage $s did not pass"
  done
  if ! command -v nvidia-smi > /dev/null 2>&1; then
    gpu_stages=$(grep -v '"stage": "\(facts\|kit\|rebuild\|train-cpu\|sample-cpu\)"' "$st/run/results.jsonl")
    [ -n "$gpu_stages" ] || fail "no GPU stage was listed"
    ! grep -v '"status": "skip", "seconds": 0, "reason": "no GPU: ' <<<"$gpu_stages" \
      || fail "a GPU stage did not skip for want of a GPU"
  fi
  for f in results.jsonl table.txt results_entry.md logs.tar.gz MANIFEST; do
    [ -s "$st/run/$f" ] || fail "the output folder lacks $f"
  done
  echo "+ self-test: one changed byte in a copy of the kit"
  cp -a "$kit" "$st/tampered"
  printf '#' >> "$st/tampered/peer/ddpm_torch.py"
  if "$st/tampered/device_run.sh" --only facts,kit --rebuild never --out "$st/tampered-run" > "$st/tampered.log" 2>&1; then
    fail "a tampered kit passed"
  fi
  [ "$(status_of "$st/tampered-run/results.jsonl" kit)" = fail ] && grep -q 'checksums differ' "$st/tampered.log" \
    || fail "the tampered kit did not fail its checksum stage"
  echo "+ self-test: a stage over the budget"
  "$kit/device_run.sh" --budget 10 --only train-cpu --out "$st/budget-run" > "$st/budget.log" 2>&1 \
    || fail "a run with every stage skipped failed"
  grep -q '"stage": "train-cpu", "status": "skip", "seconds": 0, "reason": "budget: estimated' \
    "$st/budget-run/results.jsonl" || fail "a stage over the budget was not skipped"
  echo "+ self-test passed"
fi
