#!/usr/bin/env python3
"""Quality per model evaluation: every sampler and step count on one checkpoint.

Samples n points (default 20,000) with each sampler of ddpm_cuda_sample -- the
ancestral 500-step chain, DDIM, DPM-Solver++(2M), its SDE variant and Heun on
each timestep spacing -- judges them with ddpm_eval (sliced W1, precision and
recall at k = 3 against fresh data) and times the sampling (the tool's own
figure). At n = 20,000 one sample set's sliced W1 moves by tens of percent
with the draw (of x_T, of the reference set and of the projections), so each
row is --seeds replicates: replicate i samples with seed i + 1 and is judged
with seed 7 + i; the table gives the means with their standard errors, and the
median time over the replicates. Each row says whether it meets the fast
samplers' target against the ancestral chain of the same model: mean sliced
W1 <= 1.25x the ancestral's and mean recall >= the ancestral's - 0.02.

  bench/sampler_quality.py --ckpt CKPT [--device cpu|cuda] [--n 20000] [--seeds 5] [--json OUT]

Step counts: ddim and dpmpp-2m(-sde) take S = 10, 15, 20, 25, 50 (S evaluations);
heun takes S = 5, 8, 10, 13, 25 (2 S - 1 = 9, 15, 19, 25, 49 evaluations).
Standard library only.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL = ["uniform", "karras", "logsnr"]
STEPS = {"ddim": [10, 15, 20, 25, 50], "dpmpp-2m": [10, 15, 20, 25, 50], "dpmpp-2m-sde": [10, 15, 20, 25, 50],
         "heun": [5, 8, 10, 13, 25]}
SPACINGS = {"ddim": ["uniform"], "dpmpp-2m": ALL, "dpmpp-2m-sde": ALL, "heun": ALL}
SWD_FACTOR, RECALL_SLACK = 1.25, 0.02


def sample(a, out, sampler, steps, spacing, seed):
    """Runs ddpm_cuda_sample once; returns (seconds, evaluations) from its summary line."""
    cmd = [os.path.join(a.bin, "ddpm_cuda_sample"), "--ckpt", a.ckpt, "--n", str(a.n), "--seed", str(seed),
           "--device", a.device, "--precision", a.precision, "--out", out, "--png", "", "--density", "",
           "--sampler", sampler]
    if sampler != "ddpm":
        cmd += ["--steps", str(steps), "--timesteps", spacing]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"sampler_quality.py: {' '.join(cmd)} failed: {r.stderr.strip().splitlines()[-1:]}")
    m = re.search(r"= (\d+) model evaluations .* in ([0-9.]+) s", r.stderr)
    if not m:
        sys.exit(f"sampler_quality.py: no summary line in the output of {' '.join(cmd)}")
    return float(m.group(2)), int(m.group(1))


def judge(a, path, seed):
    cmd = [os.path.join(a.bin, "ddpm_eval"), path, "--seed", str(seed), "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"sampler_quality.py: {' '.join(cmd)} failed: {r.stderr.strip()}")
    s = json.loads(r.stdout)["samples"]
    return s["sliced_w1"], s["precision"], s["recall"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", required=True, help="checkpoint to sample")
    p.add_argument("--bin", default=os.path.join(ROOT, "build", "release", "bin"), help="the tools' directory")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"])
    p.add_argument("--n", type=int, default=20000, help="points per sample set")
    p.add_argument("--seeds", type=int, default=5, help="replicates per row (sample seed i + 1, judged with 7 + i)")
    p.add_argument("--samplers", default="ddim,dpmpp-2m,dpmpp-2m-sde,heun",
                   help="comma-separated, beside the ancestral chain")
    p.add_argument("--json", help="also write the rows as JSON to this file")
    a = p.parse_args()
    if a.n < 1 or a.seeds < 2:
        sys.exit(f"sampler_quality.py: need --n >= 1 and --seeds >= 2, got {a.n} and {a.seeds}")
    for name in a.samplers.split(","):
        if name not in STEPS:
            sys.exit(f"sampler_quality.py: unknown sampler {name!r} ({', '.join(STEPS)})")

    jobs = [("ddpm", 500, "uniform")]
    for name in a.samplers.split(","):
        jobs += [(name, s, sp) for sp in SPACINGS[name] for s in STEPS[name]]
    def mean_se(v):
        return statistics.fmean(v), statistics.stdev(v) / len(v) ** 0.5

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "samples.npy")
        for sampler, steps, spacing in jobs:
            times, metrics = [], []
            for i in range(a.seeds):
                secs, evals = sample(a, out, sampler, steps, spacing, i + 1)
                times.append(secs)
                metrics.append(judge(a, out, 7 + i))
            r = {"sampler": sampler, "timesteps": spacing if sampler != "ddpm" else "all", "steps": steps,
                 "evaluations": evals, "seconds": statistics.median(times), "seconds_min": min(times),
                 "seconds_max": max(times)}
            for k, name in enumerate(["sliced_w1", "precision", "recall"]):
                r[name], r[name + "_se"] = mean_se([m[k] for m in metrics])
            rows.append(r)
            print(f"{sampler:12s} {r['timesteps']:8s} S={steps:3d} evals={evals:3d} {r['seconds']:.3f} s "
                  f"swd {r['sliced_w1']:.4f} P {r['precision']:.3f} R {r['recall']:.3f}", file=sys.stderr)
    base = rows[0]
    for r in rows:
        r["meets_target"] = (r["sliced_w1"] <= SWD_FACTOR * base["sliced_w1"] and
                             r["recall"] >= base["recall"] - RECALL_SLACK)
    print(f"| sampler | timesteps | steps | evaluations | {a.device} {a.precision} time (s), median "
          f"| sliced W1 | P | R | target |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        mark = "(ancestral)" if r is base else ("yes" if r["meets_target"] else "no")
        print(f"| {r['sampler']} | {r['timesteps']} | {r['steps']} | {r['evaluations']} | {r['seconds']:.3f} "
              f"| {r['sliced_w1']:.4f} ± {r['sliced_w1_se']:.4f} | {r['precision']:.3f} ± {r['precision_se']:.3f} "
              f"| {r['recall']:.3f} ± {r['recall_se']:.3f} | {mark} |")
    print(f"\n{a.seeds} replicates per row, n = {a.n}: means ± standard errors.")
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump({"ckpt": a.ckpt, "n": a.n, "seeds": a.seeds, "device": a.device, "precision": a.precision,
                       "rows": rows}, f,
                      indent=1)
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
