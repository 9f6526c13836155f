#!/usr/bin/env bash
# Regenerates the README's pictures of the features beyond the seed, on the CPU backend,
# into bench/figures/:
#   samples_<set>.png   circles, swissroll, 8gaussians, checkerboard: --recipe quality, 10,000 samples
#   xemb_<set>.png      spiral and checkerboard with --recipe quality --x-embedding sinusoidal, and
#                       spiral without it (xemb_spiral_none.png), 10,000 samples
#   samples_quality.png moons with --recipe quality, 10,000 samples (beside samples.png, the seed's)
#   ddim50.png          the seed's moons checkpoint sampled with --sampler ddim --steps 50 (5000 points)
#   variance_beta.png   the same checkpoint with the ancestral sampler's --variance beta (5000 points)
#   data_file.png       a user's points (heart.csv, written here) trained with --data and the recipe, 5000 samples
#   eval_strip.png      --eval-every 1000 --eval-png of the seed's moons run
#   forward_cosine.png  --schedule cosine's forward process (forward.png is the linear one)
#   nll_moons.png       ddpm_cuda_nll --grid 256 of the recipe's moons model: log p beside its samples
# and prints alpha_bar of both schedules at the forward figure's timesteps, and ddpm_eval's
# table for each set's samples, and ddpm_cuda_nll's report for moons and 8gaussians.
#
# Usage: tools/make_figures.sh [BIN_DIR]   (default build/release/bin)
#   RECIPE=seed tools/make_figures.sh      trains the sets with the seed's settings instead
#                                          (~2 minutes on a quiet 2-core machine instead of ~9)
# When python3 is present, each PNG is re-encoded with a 256-colour palette (the plots hold a
# few hundred shades of one blue; the result looks the same at a third of the size).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "${1:-$root/build/release/bin}" && pwd)
recipe=${RECIPE:-quality}
figures=$root/bench/figures
n=10000

for tool in ddpm_cuda_train ddpm_cuda_sample ddpm_cuda_nll ddpm_eval; do
  [ -x "$bin/$tool" ] || { echo "make_figures.sh: $bin/$tool not found (build first, or pass the bin directory)" >&2; exit 1; }
done
mkdir -p "$figures"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

train() { "$bin/ddpm_cuda_train" --device cpu --log-every 0 --loss-csv '' --loss-png '' --forward-png '' "$@"; }
sample() { "$bin/ddpm_cuda_sample" --device cpu --out '' --density '' "$@"; }

# Re-encodes PNG $1 (8-bit RGB or RGBA) as an indexed PNG with the 256 most frequent colours,
# every other colour mapped to its nearest; copied unchanged without python3.
shrink() {
  if ! command -v python3 > /dev/null; then cp "$1" "$2"; return; fi
  python3 - "$1" "$2" << 'EOF'
import collections, struct, sys, zlib

def chunks(data):
    pos = 8
    while pos < len(data):
        n, = struct.unpack('>I', data[pos:pos + 4])
        yield data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n

def read_rows(path):
    data = open(path, 'rb').read()
    assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    found = list(chunks(data))
    w, h, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB', found[0][1])
    assert depth == 8 and ctype in (2, 6) and interlace == 0, 'not 8-bit RGB(A)'
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b''.join(body for kind, body in found if kind == b'IDAT'))
    stride, rows, prev = w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, ctype, rows

def chunk(kind, body):
    return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body) & 0xffffffff)

src, dst = sys.argv[1], sys.argv[2]
w, h, bpp, ctype, rows = read_rows(src)
counts = collections.Counter(r[i:i + bpp] for r in rows for i in range(0, len(r), bpp))
palette = [c for c, _ in counts.most_common(256)]
index = {c: k for k, c in enumerate(palette)}
for c in counts:
    if c not in index:
        index[c] = min(range(len(palette)), key=lambda k: sum((x - y) ** 2 for x, y in zip(c, palette[k])))
raw = b''.join(b'\x00' + bytes(index[r[i:i + bpp]] for i in range(0, len(r), bpp)) for r in rows)
png = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 3, 0, 0, 0))
png += chunk(b'PLTE', b''.join(c[:3] for c in palette))
if ctype == 6 and any(c[3] != 255 for c in palette):
    png += chunk(b'tRNS', bytes(c[3] for c in palette))
png += chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b'')
open(dst, 'wb').write(png)
EOF
}

put() {  # put WORK_FILE FIGURE_NAME
  shrink "$1" "$figures/$2"
  echo "make_figures.sh: wrote bench/figures/$2 ($(stat -c %s "$figures/$2") bytes)"
}

# The seed's moons run, with the evaluation strip; --eval-every leaves the weights unchanged.
train --eval-every 1000 --eval-png eval_strip.png --out moons.safetensors
put eval_strip.png eval_strip.png
# 5000 points: the title with n = 10,000 is wider than the plot.
sample --ckpt moons.safetensors --sampler ddim --steps 50 --n 5000 --png ddim50.png
put ddim50.png ddim50.png
sample --ckpt moons.safetensors --variance beta --n 5000 --png variance_beta.png
put variance_beta.png variance_beta.png

# A user's own points: 3000 on a heart curve with Gaussian noise 0.05, written as CSV by awk.
awk 'BEGIN { srand(11); print "x,y"
  for (i = 0; i < 3000; ++i) {
    t = 6.28318531 * rand(); s = sin(t)
    g1 = sqrt(-2 * log(1 - rand())) * cos(6.28318531 * rand()); g2 = sqrt(-2 * log(1 - rand())) * cos(6.28318531 * rand())
    printf "%.6f,%.6f\n", 0.1 * 16 * s * s * s + 0.05 * g1, 0.1 * (13 * cos(t) - 5 * cos(2 * t) - 2 * cos(3 * t) - cos(4 * t)) + 0.05 * g2 } }' > heart.csv
train --recipe "$recipe" --data heart.csv --out heart.safetensors
"$bin/ddpm_cuda_sample" --device cpu --ckpt heart.safetensors --n 5000 --out heart.npy --density '' --png data_file.png
"$bin/ddpm_eval" --data heart.csv heart.npy
put data_file.png data_file.png

# The cosine schedule's forward process (one training step: only the figure is wanted).
"$bin/ddpm_cuda_train" --device cpu --log-every 0 --loss-csv '' --loss-png '' --steps 1 --schedule cosine \
  --out cosine.safetensors --forward-png forward_cosine.png
put forward_cosine.png forward_cosine.png
echo "alpha_bar at the forward figure's timesteps:"
for schedule in linear cosine; do
  "$bin/ddpm_cuda_train" --print-schedule --schedule "$schedule" |
    awk -F, -v s="$schedule" '$1 == 25 || $1 == 50 || $1 == 100 || $1 == 250 || $1 == 500 { row = row sprintf("  t=%s %.4g", $1, $4) }
                              END { printf "  %-6s%s\n", s, row }'
done

# Every built-in set other than moons, and moons itself, with the recipe; each judged by ddpm_eval.
for set in circles swissroll 8gaussians checkerboard moons; do
  train --recipe "$recipe" --data "$set" --out "$set.safetensors"
  name=samples_$set.png
  [ "$set" = moons ] && name=samples_$recipe.png
  "$bin/ddpm_cuda_sample" --device cpu --ckpt "$set.safetensors" --n "$n" --out "$set.npy" --density '' --png "$name"
  "$bin/ddpm_eval" --data "$set" "$set.npy"
  put "$name" "$name"
done
# The likelihood of held-out points (8gaussians beside its entropy), and log p as a heat map.
"$bin/ddpm_cuda_nll" --device cpu --ckpt 8gaussians.safetensors --n 20000
"$bin/ddpm_cuda_nll" --device cpu --ckpt moons.safetensors --grid 256 --png nll_moons.png
cp nll_moons.png "$figures/nll_moons.png"  # a smooth colour scale: a 256-colour palette would band it

# Sharp shapes: the spiral without and with the sinusoidal encoding of x, checkerboard with it.
for spec in "spiral none" "spiral sinusoidal" "checkerboard sinusoidal"; do
  read -r set encoding <<< "$spec"
  name=xemb_$set.png
  [ "$encoding" = none ] && name=xemb_${set}_none.png
  train --recipe "$recipe" --data "$set" --x-embedding "$encoding" --out "$set-$encoding.safetensors"
  "$bin/ddpm_cuda_sample" --device cpu --ckpt "$set-$encoding.safetensors" --n "$n" --out "$set-$encoding.npy" \
    --density '' --png "$name"
  echo "$set, --x-embedding $encoding:"
  "$bin/ddpm_eval" --data "$set" "$set-$encoding.npy"
  put "$name" "$name"
done
