#!/usr/bin/env bash
# The glibc/libstdc++ ceiling of the device kit: a binary built on a newer
# distribution than the oldest machine it must start on asks for symbol
# versions that machine's glibc or libstdc++ lacks, and the loader refuses it
# there ("version `GLIBC_2.38' not found") after the kit has travelled.
#
#   abi_ceiling.sh [--ceiling GLIBC_2.35,GLIBCXX_3.4.30,CXXABI_1.3.13] FILE...
#
# Reads each file's version references (objdump -p: the versions the loader
# checks) and prints, as MANIFEST lines, the newest GLIBC, GLIBCXX and CXXABI
# version the files need and the ceiling. Exits 1, naming each file and
# version above the ceiling, if any is; 2 for a bad command line. The default
# ceiling is Ubuntu 22.04's (glibc 2.35, GCC 12's libstdc++), the oldest target.
set -euo pipefail
ceiling="GLIBC_2.35,GLIBCXX_3.4.30,CXXABI_1.3.13"
files=()
die_usage() { echo "abi_ceiling.sh: error: $1" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --ceiling) [ $# -ge 2 ] || die_usage "--ceiling needs a value"; ceiling="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die_usage "unknown argument '$1' (see --help)" ;;
    *) files+=("$1"); shift ;;
  esac
done
[ "${#files[@]}" -gt 0 ] || die_usage "no file to check (see --help)"
declare -A limit=()
for v in ${ceiling//,/ }; do
  [[ "$v" =~ ^(GLIBC|GLIBCXX|CXXABI)_[0-9]+(\.[0-9]+)*$ ]] \
    || die_usage "--ceiling takes GLIBC_x.y, GLIBCXX_x.y.z and CXXABI_x.y.z, not '$v'"
  limit[${v%%_*}]="${v#*_}"
done
for family in GLIBC GLIBCXX CXXABI; do
  [ -n "${limit[$family]:-}" ] || die_usage "--ceiling '$ceiling' names no ${family}_ version"
done
command -v objdump > /dev/null || { echo "abi_ceiling.sh: error: objdump is not installed (binutils)" >&2; exit 1; }

newer() {  # newer A B: whether version A (x.y.z) is above B; sort -V compares each part as a number (2.4 < 2.35)
  [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1)" = "$1" ]
}
declare -A needed=()
bad=0
for f in "${files[@]}"; do
  [ -f "$f" ] || { echo "abi_ceiling.sh: error: no such file '$f'" >&2; exit 2; }
  refs=$(objdump -p "$f" 2>/dev/null) || { echo "abi_ceiling.sh: error: objdump cannot read '$f'" >&2; exit 2; }
  # "Version References:" then "  required from LIB:" and "    HASH FLAGS INDEX NAME" rows, to a blank line.
  while read -r name; do
    family="${name%%_*}"
    version="${name#*_}"
    if [[ "$name" == GLIBC_ABI_* ]]; then
      # Markers such as GLIBC_ABI_DT_RELR (packed relocations) came with glibc 2.36: the ceiling's has none.
      echo "abi_ceiling.sh: $f needs $name, which glibc ${limit[GLIBC]} lacks (no GLIBC_ABI_ marker is older than 2.36)" >&2
      bad=1; continue
    fi
    [[ "$version" =~ ^[0-9]+(\.[0-9]+)*$ ]] || continue   # GLIBC_PRIVATE and the like: no ordered version
    if [ -z "${needed[$family]:-}" ] || newer "$version" "${needed[$family]}"; then needed[$family]="$version"; fi
    if newer "$version" "${limit[$family]}"; then
      echo "abi_ceiling.sh: $f needs $name, above the ceiling ${family}_${limit[$family]}" >&2
      bad=1
    fi
  done < <(awk '/^Version References:/ { inside = 1; next }
                inside && /^$/ { inside = 0 }
                inside && NF == 4 && $4 ~ /^(GLIBC|GLIBCXX|CXXABI)_/ { print $4 }' <<<"$refs")
done
for family in GLIBC GLIBCXX CXXABI; do
  v="${needed[$family]:-}"
  if [ -n "$v" ]; then echo "${family,,}_needed: ${family}_$v"; else echo "${family,,}_needed: none"; fi
done
echo "abi_ceiling: GLIBC_${limit[GLIBC]} GLIBCXX_${limit[GLIBCXX]} CXXABI_${limit[CXXABI]}"
[ "$bad" -eq 0 ] || {
  echo "abi_ceiling.sh: error: a file needs a version above the ceiling (GLIBC_${limit[GLIBC]}, GLIBCXX_${limit[GLIBCXX]}, CXXABI_${limit[CXXABI]}): build on a distribution no newer than the oldest target's" >&2
  exit 1; }
