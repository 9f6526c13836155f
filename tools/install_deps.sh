#!/usr/bin/env bash
# Installs what the project builds and tests with, from Debian's packages (and
# one Python package from PyPI).
#   install_deps.sh           everything: the tools, the tests, the sanitizer and fuzz builds
#   install_deps.sh --tools   only what the command-line tools build with (the quick start)
# The CUDA toolkit (nvcc, cuBLAS, cuRAND, Thrust, NVTX) is expected under
# /usr/local/cuda or on PATH; it compiles and links without a GPU.
set -euo pipefail
tools_only=0
case "${1:-}" in
  "") ;;
  --tools) tools_only=1 ;;
  *) echo "install_deps.sh: error: unknown argument '$1' (expected nothing or --tools)" >&2; exit 2 ;;
esac
# The tools: compiler, build system, and the header-only JSON, command-line and PNG libraries.
packages=(cmake ninja-build g++ libstb-dev nlohmann-json3-dev libcli11-dev)
if [ "$tools_only" -eq 0 ]; then
  packages+=(libgtest-dev python3-numpy python3-torch libopenblas0-pthread python3-pip
             ccache                               # compiler cache: warm CI runs and rebuilds (CMakeLists.txt)
             clang libclang-rt-14-dev libomp-dev  # the fuzz preset: clang, libFuzzer, clang's OpenMP
             debootstrap                          # tools/bare_root_check.sh: the device kit in a bare root
             qemu-user binutils)                  # the CPU backend on an emulated AVX2-only CPU; tools/isa_guard.sh's objdump
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
check_nvcc() {
  if ! command -v nvcc >/dev/null 2>&1; then
    if [ -x /usr/local/cuda/bin/nvcc ]; then
      echo "note: nvcc is not on PATH; add /usr/local/cuda/bin (CMake finds it there anyway)"
    else
      echo "error: the CUDA toolkit (nvcc) is not installed; install CUDA 12 or 13 from NVIDIA" >&2
      exit 1
    fi
  fi
}
if [ "$tools_only" -eq 1 ]; then
  check_nvcc
  exit 0
fi
# safetensors' own writer, for the tests that load what PyTorch users save
# (tests/io/safetensors_api.py). Not a Debian package: from PyPI, into Debian's
# python3, the tests' interpreter beside python3-numpy and python3-torch (a
# python3 earlier on PATH may be another install). The package alone: a numpy
# from PyPI would shadow Debian's, which python3-torch is built against.
if ! /usr/bin/python3 -c 'import safetensors.numpy' 2>/dev/null; then
  echo "installing: safetensors (PyPI) for /usr/bin/python3"
  $sudo /usr/bin/python3 -m pip install --quiet --no-deps --break-system-packages --root-user-action=ignore \
    safetensors==0.8.0
fi
check_nvcc
