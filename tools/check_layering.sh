#!/usr/bin/env bash
# Arrows point down: each folder includes only from the folders below it.
#
#   include/ddpm   the shared model (math, types)         -> ddpm/
#   kernels/       CUDA kernels                           -> ddpm/, kernels/
#   host/          CPU backend, GPU driver, I/O, tools    -> ddpm/, kernels/, host/
#   tools/, bench/ entry points and scripts standing apart -> anything but each other and tests/
#
# Usage: check_layering.sh [SOURCE_DIR]     fails, naming each include that runs up
#        check_layering.sh --self-test      proves that a planted upward include fails
set -euo pipefail

# The folders a source folder may include from ("#include \"<folder>/...\"").
allowed_for() {
  case "$1" in
    include) echo "ddpm" ;;
    kernels) echo "ddpm kernels" ;;
    host) echo "ddpm kernels host" ;;
    tools) echo "ddpm kernels host tools" ;;
    bench) echo "ddpm kernels host bench" ;;
  esac
}

check() {
  local root=$1 bad=0 folder file line target
  for folder in include kernels host tools bench; do
    [ -d "$root/$folder" ] || continue
    while IFS=: read -r file line target; do
      if [[ " $(allowed_for "$folder") " != *" $target "* ]]; then
        echo "check_layering: ${file#"$root"/}:$line includes \"$target/...\": $folder/ may include only from $(allowed_for "$folder" | sed 's/\([a-z]*\)/\1\//g')"
        bad=1
      fi
    done < <(grep -rnE --include='*.hpp' --include='*.cpp' --include='*.cuh' --include='*.cu' --include='*.h' \
               '^[[:space:]]*#[[:space:]]*include[[:space:]]+"[A-Za-z0-9_]+/' "$root/$folder" |
             sed -E 's/^([^:]+):([0-9]+):.*#[[:space:]]*include[[:space:]]+"([A-Za-z0-9_]+)\/.*/\1:\2:\3/')
  done
  return $bad
}

if [ "${1:-}" = "--self-test" ]; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  cp -r "$here/include" "$here/kernels" "$here/host" "$here/tools" "$here/bench" "$scratch/"
  check "$scratch" >/dev/null || { echo "check_layering self-test: the tree itself fails"; exit 1; }
  # Each planted include runs up one arrow; every one must be caught, and named.
  for plant in 'host/io/planted.cpp:#include "tools/eval/x.hpp"' 'host/tools/planted.hpp:  #  include "bench/suites.hpp"' \
               'kernels/planted.cuh:#include "host/gpu/gpu_sampler.hpp"' 'include/ddpm/planted.hpp:#include "kernels/x.hpp"' \
               'tools/planted.cpp:#include "bench/suites.hpp"' 'bench/planted.cpp:#include "tests/gpu_util.hpp"'; do
    file=${plant%%:*}
    printf '%s\n' "${plant#*:}" > "$scratch/$file"
    if out=$(check "$scratch"); then
      echo "check_layering self-test: $file's upward include was not caught"; exit 1
    fi
    grep -q "$file:1 includes" <<<"$out" || { echo "check_layering self-test: no line names $file: $out"; exit 1; }
    rm "$scratch/$file"
  done
  echo "check_layering self-test: 6 planted upward includes caught"
  exit 0
fi

root=$(cd "${1:-$(dirname "$0")/..}" && pwd)
check "$root" && echo "check_layering: every include points down"
