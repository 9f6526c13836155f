#!/usr/bin/env bash
# The device kit's portability check: runs the kit in a bare Debian root file
# system (debootstrap --variant=minbase, none of the build's -dev packages,
# no compiler, no GCC OpenMP runtime, no Python) and requires that every
# binary starts and that every stage needing no GPU passes there.
#
#   tools/bare_root_check.sh [--root DIR] [--kit build/device-kit] [--suite bookworm]
#                            [--lent-layout VENV]
#
# The root (default build/bare-root) is made once (a few minutes, from
# Debian's registry as apt is set up here) and reused. cuBLAS 13, which the
# lent machine has with its CUDA toolkit, is mounted read-only from this
# machine's toolkit at the same path (/usr/local/cuda/lib64), so the run there
# finds it as the lent machine's would (the binaries open it at run time: they
# start without it). Needs root (debootstrap, chroot, mounts). Prints the
# run's table; exits non-zero if the kit fails there.
#
# --lent-layout VENV runs the kit as on a lent image whose CUDA comes only from
# PyTorch's wheels: a second root (default build/lent-root: the bare one plus
# Debian's python3, the interpreter VENV was made with) with no toolkit at all,
# and VENV, a virtual environment with PyTorch 2 and numpy from PyPI
# (bench/peer/setup_peers.sh makes one; it must use a Python of the root's
# version), mounted read-only and first on the PATH. It requires that the kit
# finds cuBLAS in VENV's nvidia/cu13/lib, that every stage needing no GPU
# passes (ddpm_bench starts: the kit stage), and that the peer reaches torch
# there (bench/peer/ddpm_torch.py samples a few points on the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
root=""
kit=build/device-kit
suite=bookworm
venv=""
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="$2"; shift 2 ;;
    --kit) kit="$2"; shift 2 ;;
    --suite) suite="$2"; shift 2 ;;
    --lent-layout) venv="${2:-}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bare_root_check.sh: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$venv" ]; then
  root="${root:-build/lent-root}"
  [ -x "$venv/bin/python3" ] || { echo "bare_root_check.sh: error: --lent-layout $venv: no virtual environment there (bench/peer/setup_peers.sh --venv $venv makes one)" >&2; exit 1; }
  venv="$(cd "$venv" && pwd)"
  cu13=$(ls -d "$venv"/lib/python3*/site-packages/nvidia/cu13/lib 2>/dev/null | head -n 1)
  [ -n "$cu13" ] && [ -e "$cu13/libcublas.so.13" ] || {
    echo "bare_root_check.sh: error: --lent-layout $venv: no nvidia/cu13/lib/libcublas.so.13 in it (PyTorch's CUDA 13 wheels put cuBLAS there)" >&2; exit 1; }
else
  root="${root:-build/bare-root}"
fi
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
  # The lent layout's root has Debian's python3 for the mounted venv, nothing else more.
  debootstrap --variant=minbase ${venv:+--include=python3} "$suite" "$root" "$mirror" > "$root.debootstrap.log" 2>&1 \
    || { tail -n 20 "$root.debootstrap.log"; exit 1; }
  touch "$root/.complete"
fi

# The root must hold nothing the build used: no -dev package, no compiler, no libgomp, no stb.
python_packages='|python3'
[ -z "$venv" ] || python_packages=''  # the lent layout's root has python3, for the venv
present=$(chroot "$root" dpkg-query -W -f='${Package}\n' 2>/dev/null \
          | grep -E -- "-dev\$|^(g\\+\\+|gcc|cpp|clang)(-[0-9]+)?\$|^(nvidia|cuda|libgomp1|libstb0|libgtest$python_packages)" || true)
[ -z "$present" ] || { echo "bare_root_check.sh: error: the root is not bare; it has: $present" >&2; exit 1; }

rm -rf "$root/kit" "$root/kit-out"
cp -a "$kit" "$root/kit"
mkdir -p "$root/proc" "$root/usr/local/cuda/lib64"
mounts=()
cleanup() { local m; for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || true; done; }
trap cleanup EXIT
mount -t proc proc "$root/proc" && mounts+=("$root/proc")
cublas=/usr/local/cuda/lib64
path=/usr/sbin:/usr/bin:/sbin:/bin
if [ -n "$venv" ]; then
  # No toolkit: CUDA is what the venv's wheels bring, at the venv's own path.
  rm -rf "$root/usr/local/cuda"
  mkdir -p "$root$venv"
  mount --bind "$venv" "$root$venv" && mounts+=("$root$venv")
  mount -o remount,bind,ro "$root$venv"
  path="$venv/bin:$path"
  # A venv runs the interpreter it was made with: the root must have it.
  interpreter=$(readlink -f "$venv/bin/python3")
  chroot "$root" test -x "$interpreter" || {
    echo "bare_root_check.sh: error: --lent-layout $venv was made with $interpreter, which $root does not have: make it with Debian's /usr/bin/python3 (bench/peer/setup_peers.sh does)" >&2; exit 1; }
elif [ -e "$cublas/libcublas.so.13" ]; then
  mount --bind "$cublas" "$root/usr/local/cuda/lib64" && mounts+=("$root/usr/local/cuda/lib64")
  mount -o remount,bind,ro "$root/usr/local/cuda/lib64"
else
  echo "note: no cuBLAS 13 under $cublas here: in the root, the unfused path's test and ddpm_bench's cuBLAS rows skip"
fi

echo "+ chroot $root /kit/device_run.sh (glibc there: $(chroot "$root" ldd --version | head -n 1))"
set +e
chroot "$root" /usr/bin/env -i PATH="$path" HOME=/root LANG=C.UTF-8 \
  /bin/bash /kit/device_run.sh --budget 300 --out /kit-out
rc=$?
set -e
# Every stage that needs no GPU must have passed there (the others skip for want of one).
for s in facts kit train-cpu sample-cpu; do
  grep -q "^{\"stage\": \"$s\", \"status\": \"pass\"" "$root/kit-out/results.jsonl" \
    || { echo "bare_root_check.sh: error: stage $s did not pass in $root" >&2; rc=1; }
done
if [ -n "$venv" ]; then
  # cuBLAS from the wheels, as the facts stage found it.
  found=$(grep -o '"cublas": "[^"]*"' "$root/kit-out/results.jsonl" | head -n 1 | cut -d'"' -f4)
  [ "$found" = "${cu13}" ] \
    || { echo "bare_root_check.sh: error: the kit found cuBLAS at '${found:-nowhere}', not in the venv's $cu13" >&2; rc=1; }
  # The peer reaches torch: a few points sampled on the CPU by the kit's copy of the peer.
  chroot "$root" /usr/bin/env -i PATH="$path" HOME=/root LANG=C.UTF-8 \
    python3 /kit/peer/ddpm_torch.py --device cpu --what sample --n 64 --T 20 --warmup-sample 0 --json /kit-out/peer.json \
    > "$root/kit-out/peer.log" 2>&1 \
    || { tail -n 5 "$root/kit-out/peer.log"; echo "bare_root_check.sh: error: the peer did not run on the venv's torch" >&2; rc=1; }
fi
[ "$rc" -eq 0 ] && echo "bare_root_check.sh: the kit runs in $root, a ${venv:+lent-layout (PyTorch wheels, no toolkit) }bare $suite root ($(date -u +%F))"
exit "$rc"
