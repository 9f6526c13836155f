#!/usr/bin/env bash
# What the kernels' PTX must say that no emulation can show (the emulation
# runs on x86 and ignores __launch_bounds__), checked in the code nvcc emits:
#   - the fp32 fused sampler asks for 2 blocks per SM (.minnctapersm 2), so
#     ptxas holds it to 128 registers instead of silently halving occupancy;
#   - every last-block ticket (atom.add on a counter) is followed by a fence
#     before the block's next global load: the acquire half of the pattern the
#     PTX memory model asks for (the release fence comes before the atom).
#
#   ptx_contract_test.sh NVCC SOURCE_DIR [--self-test]
# --self-test feeds the checks a canned PTX without the fence and without the
# minimum, and fails unless both are caught.
set -euo pipefail
nvcc="$1"
src="$2"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The functions whose ticket is followed by a load lacking a fence: "name" lines.
tickets_without_acquire() {
  awk '
    /^\.(visible )?\.entry / { fn = $NF; sub(/\(.*/, "", fn); armed = 0; next }
    /atom\.global\.add|atom\.add/ { armed = 1; next }
    armed && /membar\.gl|fence\.(sc|acq_rel)\.gpu/ { armed = 0; next }
    armed && /ld\.global/ { print fn; armed = 0 }
  ' "$1" | sort -u
}
# The .minnctapersm of the entry whose name contains $2, or nothing.
min_blocks() {
  awk -v want="$2" '
    /^\.(visible )?\.entry / { inside = index($0, want) > 0; next }
    inside && /\.minnctapersm/ { print $2; exit }
    inside && /^\{/ { exit }
  ' "$1"
}

if [ "${3:-}" = --self-test ]; then
  cat > "$work/bad.ptx" <<'PTX'
.visible .entry _Z18train_batch_kernelv(
)
.maxntid 256, 1, 1
{
	membar.gl;
	atom.global.add.u32 	%r1, [%rd1], 1;
	bar.sync 	0;
	ld.global.cg.f64 	%fd1, [%rd2];
}
.visible .entry _Z19sample_fused_kernelv(
)
.maxntid 256, 1, 1
{
	ret;
}
PTX
  [ "$(tickets_without_acquire "$work/bad.ptx")" = _Z18train_batch_kernelv ] \
    || { echo "self-test: a ticket without an acquire fence passed"; exit 1; }
  [ -z "$(min_blocks "$work/bad.ptx" sample_fused_kernel)" ] \
    || { echo "self-test: a kernel without .minnctapersm was read as having one"; exit 1; }
  echo "ptx contract self-test passed"
  exit 0
fi

flags=(-std=c++20 -O3 -DNDEBUG --expt-relaxed-constexpr -arch=sm_80 -ptx -I"$src/include" -I"$src")
"$nvcc" "${flags[@]}" "$src/kernels/sample_fused.cu" -o "$work/sample_fused.ptx"
"$nvcc" "${flags[@]}" "$src/kernels/train_step.cu" -o "$work/train_step.ptx"
status=0
blocks=$(min_blocks "$work/sample_fused.ptx" sample_fused_kernel)
if [ "$blocks" != 2 ]; then
  echo "sample_fused_kernel: .minnctapersm is '${blocks:-absent}', not 2"
  status=1
fi
bad=$(tickets_without_acquire "$work/train_step.ptx")
if [ -n "$bad" ]; then
  echo "a last-block ticket is followed by a global load without a fence in: $bad"
  status=1
fi
[ "$status" -eq 0 ] && echo "ptx contract: sample_fused_kernel asks for 2 blocks per SM; every ticket is followed by an acquire fence"
exit "$status"
