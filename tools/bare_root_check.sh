#!/usr/bin/env bash
# The device kit's portability check: runs the kit in a bare Debian root file
# system (debootstrap --variant=minbase, none of the build's -dev packages,
# no compiler, no GCC OpenMP runtime, no Python) and requires that every
# binary starts and that every stage needing no GPU passes there.
#
#   tools/bare_root_check.sh [--root build/bare-root] [--kit build/device-kit] [--suite bookworm]
#
# The root is made once (a few minutes, from Debian's registry as apt is set
# up here) and reused. cuBLAS 13, which the lent machine has with its CUDA
# toolkit, is mounted read-only from this machine's toolkit at the same path
# (/usr/local/cuda/lib64), so the run there finds it as the lent machine's would
# (the binaries open it at run time: they start without it). Needs root (debootstrap, chroot, mounts). Prints the run's table; exits
# non-zero if the kit fails there.
set -euo pipefail
cd "$(dirname "$0")/.."
root=build/bare-root
kit=build/device-kit
suite=bookworm
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="$2"; shift 2 ;;
    --kit) kit="$2"; shift 2 ;;
    --suite) suite="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bare_root_check.sh: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "bare_root_check.sh: error: needs root (debootstrap, chroot, mount)" >&2; exit 1; }
[ -f "$kit/MANIFEST" ] || { echo "bare_root_check.sh: error: no kit at $kit: run tools/device_kit.sh first" >&2; exit 1; }
command -v debootstrap > /dev/null || { echo "bare_root_check.sh: error: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }

if [ ! -f "$root/.complete" ]; then
  # The mirror apt uses here (Debian's registry).
  # (sources.list itself may be absent: grep's complaint must not end the script)
  mirror=$( (grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ \
             2>/dev/null || true) | awk '{print $2}' | head -n 1)
  mirror="${mirror:-http://deb.debian.org/debian}"
  echo "+ debootstrap --variant=minbase $suite $root $mirror"
  rm -rf "$root"
  debootstrap --variant=minbase "$suite" "$root" "$mirror" > "$root.debootstrap.log" 2>&1 \
    || { tail -n 20 "$root.debootstrap.log"; exit 1; }
  touch "$root/.complete"
fi

# The root must hold nothing the build used: no -dev package, no compiler, no libgomp, no stb.
present=$(chroot "$root" dpkg-query -W -f='${Package}\n' 2>/dev/null \
          | grep -E -- '-dev$|^(g\+\+|gcc|cpp|clang)(-[0-9]+)?$|^(nvidia|cuda|libgomp1|libstb0|libgtest|python3)' || true)
[ -z "$present" ] || { echo "bare_root_check.sh: error: the root is not bare; it has: $present" >&2; exit 1; }

rm -rf "$root/kit" "$root/kit-out"
cp -a "$kit" "$root/kit"
mkdir -p "$root/proc" "$root/usr/local/cuda/lib64"
mounts=()
cleanup() { local m; for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || true; done; }
trap cleanup EXIT
mount -t proc proc "$root/proc" && mounts+=("$root/proc")
cublas=/usr/local/cuda/lib64
if [ -e "$cublas/libcublas.so.13" ]; then
  mount --bind "$cublas" "$root/usr/local/cuda/lib64" && mounts+=("$root/usr/local/cuda/lib64")
  mount -o remount,bind,ro "$root/usr/local/cuda/lib64"
else
  echo "note: no cuBLAS 13 under $cublas here: in the root, the unfused path's test and ddpm_bench's cuBLAS rows skip"
fi

echo "+ chroot $root /kit/device_run.sh (glibc there: $(chroot "$root" ldd --version | head -n 1))"
set +e
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  /bin/bash /kit/device_run.sh --budget 300 --out /kit-out
rc=$?
set -e
# Every stage that needs no GPU must have passed there (the others skip for want of one).
for s in facts kit train-cpu sample-cpu; do
  grep -q "^{\"stage\": \"$s\", \"status\": \"pass\"" "$root/kit-out/results.jsonl" \
    || { echo "bare_root_check.sh: error: stage $s did not pass in the bare root" >&2; rc=1; }
done
[ "$rc" -eq 0 ] && echo "bare_root_check.sh: the kit runs in a bare $suite root ($(date -u +%F))"
exit "$rc"
