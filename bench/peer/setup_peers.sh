#!/usr/bin/env bash
# Makes the virtual environment that `ddpm_bench --peer` takes its second set
# of peers from: PyTorch 2 (eager, fused Adam, torch.compile) and JAX, from
# PyPI, beside Debian's torch 1.13 which stays under /usr/bin/python3; and
# diffusers, whose schedulers diffusers_samplers.py runs on our checkpoints.
#
#   bench/peer/setup_peers.sh [--venv DIR] [--python PYTHON]
#
# DIR defaults to $DDPM_PEER_VENV, else build/peer-venv in the repository
# (ddpm_bench's --peer-venv has the same default). Running it again reuses the
# environment and installs only what is missing. PyPI's default torch wheel
# brings the CUDA libraries with it: several GB.
set -euo pipefail

me="setup_peers.sh"
die() { echo "$me: error: $*" >&2; exit 1; }
usage_error() { echo "$me: error: $*" >&2; exit 2; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${DDPM_PEER_VENV:-$root/build/peer-venv}"
python=/usr/bin/python3
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) [ $# -ge 2 ] || usage_error "--venv needs a directory"; venv="$2"; shift 2 ;;
    --python) [ $# -ge 2 ] || usage_error "--python needs an interpreter"; python="$2"; shift 2 ;;
    -h|--help) sed -n '2,11s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) usage_error "unknown argument '$1' (usage: $me [--venv DIR] [--python PYTHON])" ;;
  esac
done
[ -n "$venv" ] || usage_error "--venv: empty directory name"
command -v "$python" >/dev/null 2>&1 || die "--python $python: not found"

if [ ! -x "$venv/bin/python" ]; then
  [ ! -e "$venv" ] || [ -z "$(ls -A "$venv")" ] || die "--venv $venv: exists and is not a virtual environment"
  echo "creating $venv with $("$python" --version 2>&1)"
  "$python" -m venv "$venv" 2>/dev/null || die "--python $python: 'python -m venv $venv' failed (Debian: apt-get install python3-venv)"
fi

log="$venv/setup.log"
# Plain PyPI for torch: its default Linux wheel is the CUDA build, which runs on the CPU as well.
# diffusers is pinned: its schedulers are the reference our fast samplers are
# compared with, and their step rules and timestep spacing change between
# releases, so a number measured against it names the version it came from.
diffusers_version=0.42.1
packages=(numpy torch "jax[cpu]" "diffusers==$diffusers_version")
echo "installing ${packages[*]} into $venv (pip's output: $log)"
"$venv/bin/python" -m pip install --upgrade-strategy only-if-needed "${packages[@]}" > "$log" 2>&1 \
  || die "pip install ${packages[*]} failed: $(grep -m1 -E '^ERROR' "$log" || tail -n1 "$log")"

"$venv/bin/python" - <<'EOF' || die "the environment's torch, jax or diffusers does not import (see $log)"
import sys
import diffusers, jax, jaxlib, numpy, torch
from diffusers import DPMSolverMultistepScheduler, HeunDiscreteScheduler  # what diffusers_samplers.py needs
print(f"installed in {sys.prefix}: python {sys.version.split()[0]}, torch {torch.__version__}, "
      f"jax {jax.__version__}, jaxlib {jaxlib.__version__}, numpy {numpy.__version__}, "
      f"diffusers {diffusers.__version__}")
EOF
