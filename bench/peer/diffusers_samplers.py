#!/usr/bin/env python3
"""diffusers' fast samplers run on one of our checkpoints: the reference that
`ddpm_cuda_sample --sampler dpmpp-2m|heun` is compared with.

usage: diffusers_samplers.py CKPT.safetensors --eval-bin build/.../bin/ddpm_eval
           [--samplers dpmpp-2m,heun] [--steps 10,15,20,25,50] [--karras | --grid uniform]
           [--n 20000] [--seed 0] [--threads 2] [--weights auto|ema|raw]
           [--out-dir DIR] [--json FILE]
           [--ours-bin build/.../bin/ddpm_cuda_sample [--ours ddpm,ddim,dpmpp-2m,heun]]

The checkpoint's eps-model is loaded into the project's PyTorch module
(tests/io/torch_model.py, the one tests/cpu/torch_model_test.cpp checks
against the CPU backend), in float32 on the CPU, and driven by

  dpmpp-2m  DPMSolverMultistepScheduler(algorithm_type="dpmsolver++",
            solver_order=2), diffusers' defaults otherwise (final_sigmas_type
            "zero", lower_order_final, timestep_spacing "linspace"): one model
            evaluation per step;
  heun      HeunDiscreteScheduler, its defaults: with num_inference_steps N it
            evaluates the model 2N - 1 times (N - 1 Heun steps, then an Euler
            step to sigma = 0);

both with num_train_timesteps, the betas and the schedule of the checkpoint,
prediction_type "epsilon", and with --karras use_karras_sigmas. With
--grid uniform they step instead on our uniform timesteps (ddim_timesteps in
include/ddpm/schedule.hpp: t_i = round(i T / S), T first), handed to
set_timesteps(timesteps=...): diffusers' own "linspace" grids differ from
ours (below), and on the same grid a difference between the two engines is
the solver's alone. Every run starts from the same x_T ~ N(0, I) (torch's
generator under --seed), is timed on the wall clock after an untimed
warm-up, is written to .npy and judged by our ddpm_eval (sliced W1,
precision and recall at k = 3, against a fresh draw of the training set's
true distribution; the noise floor of an exact draw of the same size is
printed below the table).

Timestep conventions. Our model's timestep is t = 1..T, with
alpha_bar_t = prod_{i<=t} (1 - beta_i) and t = 0 the clean data. diffusers
indexes the same products from 0: alphas_cumprod[k] = prod_{i<=k} (1 - beta_{i+1}),
k = 0..T-1, so its timestep k is our t = k + 1 (checked below against the
checkpoint's own schedule before anything runs). diffusers' Heun (and
dpmpp-2m with Karras sigmas on the cosine schedule) hands out fractional
timesteps, the sigma solved for being interpolated between two integers.
diffusers' grids at S steps, in our t: dpmpp-2m visits round(linspace(0,
T - 1, S + 1))[1:] + 1 from T down (S = 5: 500, 400, 300, 201, 101), then
its last, first-order step goes to sigma = 0; heun visits linspace(0, T - 1,
S) + 1, fractional, down to t = 1 (sigma = 0.01 on the seed's schedule), and
its final Euler step goes from there to 0.

Seconds cover the sampling loop alone (set_timesteps, every model call and
scheduler step); the module computes the 64-dim time embedding of every row
in float64 at each call, as the peers in ddpm_torch.py also feed it per row,
where our engine computes it once per step.

Needs the virtual environment of bench/peer/setup_peers.sh (torch 2, numpy,
diffusers).
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ME = "diffusers_samplers.py"


def die(msg, code=1):
    print(f"{ME}: error: {msg}", file=sys.stderr)
    sys.exit(code)


def parse_list(text, what):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        die(f"--{what} {text!r}: not a comma-separated list of integers", 2)
    if not values or any(v < 1 for v in values):
        die(f"--{what} {text!r}: need one or more integers >= 1", 2)
    return values


def parse_args():
    p = argparse.ArgumentParser(
        description="diffusers' DPM-Solver++(2M) and Heun on one of our checkpoints, judged by ddpm_eval")
    p.add_argument("ckpt", metavar="CKPT", help="checkpoint written by ddpm_cuda_train (safetensors)")
    p.add_argument("--eval-bin", required=True, metavar="PATH", help="our ddpm_eval binary")
    p.add_argument("--samplers", default="dpmpp-2m,heun",
                   help="comma-separated: dpmpp-2m (DPMSolverMultistepScheduler, dpmsolver++, order 2), "
                        "heun (HeunDiscreteScheduler) (default: %(default)s)")
    p.add_argument("--steps", default="10,15,20,25,50",
                   help="num_inference_steps to run, comma-separated (default: %(default)s)")
    p.add_argument("--karras", action="store_true", help="use_karras_sigmas=True for both schedulers")
    p.add_argument("--grid", choices=["diffusers", "uniform"], default="diffusers",
                   help="the timesteps: diffusers' own (timestep_spacing \"linspace\", or Karras sigmas with "
                        "--karras), or uniform, ours (t_i = round(i T / S)) passed as set_timesteps(timesteps=...) "
                        "(default: %(default)s)")
    p.add_argument("--n", type=int, default=20000, help="points per run (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="torch seed of x_T, the same for every run (default: %(default)s)")
    p.add_argument("--eval-seed", type=int, default=0, help="ddpm_eval --seed (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default: %(default)s)")
    p.add_argument("--weights", choices=["auto", "ema", "raw"], default="auto",
                   help="auto: the EMA weights where the checkpoint has them, as ddpm_cuda_sample does "
                        "(default: %(default)s)")
    p.add_argument("--eval-data", metavar="NAME|FILE",
                   help="ddpm_eval --data (default: the checkpoint's run.data, else moons); for a file, the "
                        "samples are in the model's normalized units and are judged with --units normalized")
    p.add_argument("--out-dir", metavar="DIR",
                   help="keep the samples there (diffusers_<sampler>[_karras|_uniform]_<steps>.npy, "
                        "ours_<sampler>_<steps>.npy); default: a temporary folder, removed at the end")
    p.add_argument("--json", metavar="FILE", help="also write every row, the settings and versions as JSON")
    p.add_argument("--ours-bin", metavar="PATH",
                   help="also run this ddpm_cuda_sample on the same checkpoint (--device cpu, the same --n and "
                        "--weights) and judge it the same way, as a baseline row")
    p.add_argument("--ours", default="ddpm",
                   help="with --ours-bin, comma-separated: ddpm (the ancestral chain, all T steps), and ddim, "
                        "dpmpp-2m or heun at each --steps (with --timesteps karras under --karras) "
                        "(default: %(default)s)")
    a = p.parse_args()
    a.steps = parse_list(a.steps, "steps")
    a.samplers = [s for s in a.samplers.split(",") if s]
    for s in a.samplers:
        if s not in ("dpmpp-2m", "heun"):
            die(f"--samplers: unknown sampler {s!r} (dpmpp-2m or heun)", 2)
    a.ours = [s for s in a.ours.split(",") if s]
    for s in a.ours:
        if s not in ("ddpm", "ddim", "dpmpp-2m", "heun"):
            die(f"--ours: unknown sampler {s!r} (ddpm, ddim, dpmpp-2m or heun)", 2)
    if a.karras and a.grid != "diffusers":
        die(f"--karras picks diffusers' Karras sigmas: not with --grid {a.grid}", 2)
    for flag, path in (("--eval-bin", a.eval_bin), ("--ours-bin", a.ours_bin)):
        if path is not None and not (os.path.isfile(path) and os.access(path, os.X_OK)):
            die(f"{flag} {path}: not an executable file", 2)
    if a.n < 10:
        die(f"--n {a.n}: ddpm_eval judges 10 points or more", 2)
    if a.threads < 1:
        die(f"--threads {a.threads}: need at least 1", 2)
    return a


ARGS = parse_args()
# PyPI's torch runs its CPU kernels on an OpenMP pool (MKL follows it); size it
# before torch loads, and keep idle workers from spinning on the cores the
# next call needs, as ddpm_torch.py does.
os.environ.setdefault("OMP_NUM_THREADS", str(ARGS.threads))
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(ARGS.threads))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import numpy as np
    import torch
except ImportError as e:
    die(f"{e.name} is not installed for {sys.executable} (bench/peer/setup_peers.sh makes an environment with it)")
try:
    import diffusers
    from diffusers import DPMSolverMultistepScheduler, HeunDiscreteScheduler
except ImportError as e:
    die(f"diffusers does not import in {sys.executable} ({e}); bench/peer/setup_peers.sh installs it")

# The project's module and safetensors reader, not a copy of them.
sys.path.insert(0, os.path.join(ROOT, "tests", "io"))
from torch_interop import read_safetensors  # noqa: E402
from torch_model import EpsNet  # noqa: E402


# ---- The checkpoint ----------------------------------------------------------
def load_model(path, weights):
    """The eps-model in float32 and the checkpoint's metadata (the seed's
    settings for a plain state dict, as our tools assume)."""
    if not os.path.isfile(path):
        die(f"{path}: no such file")
    tensors, meta = read_safetensors(path)
    meta = meta or {}
    ours = meta.get("format") == "ddpm-cuda"
    if not ours:
        # A plain state dict: our loader gives it the seed's schedule and ignores its metadata.
        meta = {}
    has_ema = any(k.startswith("ema.net.") for k in tensors)
    if weights == "ema" and not has_ema:
        die(f"--weights ema: {path} holds no EMA weights")
    use_ema = has_ema and weights != "raw"
    prefix = "ema." if use_ema else ""
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix + "net.")}
    model = EpsNet(meta.get("x_embedding", "none"), float(meta.get("x_scale", "25")),
                   emb_dim=int(meta.get("emb_dim", "64")), hidden=int(meta.get("hidden", "128")))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        die(f"{path}: its tensors do not fit the model: {str(e).splitlines()[0]}")
    model = model.float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, meta, "ema" if use_ema else "raw"


def our_betas(meta):
    """beta_1..beta_T in float64 as include/ddpm/schedule.hpp computes them,
    and diffusers' name for that schedule."""
    T = int(meta.get("T", "500"))
    name = meta.get("schedule", "linear")
    if name == "linear":
        b1, bT = float(meta.get("beta_1", "1e-4")), float(meta.get("beta_T", "0.02"))
        betas = [b1 if T == 1 else b1 + (bT - b1) * (t - 1) / (T - 1) for t in range(1, T + 1)]
        return T, name, betas, dict(beta_schedule="linear", beta_start=b1, beta_end=bT)
    if name == "cosine":
        # Nichol & Dhariwal's, s = 0.008, clipped at 0.999: what diffusers calls squaredcos_cap_v2.
        f = lambda t: math.cos((t / T + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
        betas = [min(1 - f(t) / f(t - 1), 0.999) for t in range(1, T + 1)]
        return T, name, betas, dict(beta_schedule="squaredcos_cap_v2")
    die(f"schedule {name!r}: no diffusers beta_schedule is known to match it")


def make_scheduler(kind, T, sched_kwargs, karras):
    common = dict(num_train_timesteps=T, prediction_type="epsilon", use_karras_sigmas=karras, **sched_kwargs)
    try:
        if kind == "dpmpp-2m":
            return DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2, **common)
        return HeunDiscreteScheduler(**common)
    except (NotImplementedError, ValueError) as e:
        die(f"diffusers {diffusers.__version__} cannot build {kind} for this schedule: {e}")


def check_schedule(scheduler, betas, name):
    """diffusers' alphas_cumprod[k] must be our alpha_bar_{k+1}: the mapping t = k + 1
    rests on it. diffusers accumulates the product in float32, we in float64, hence
    the tolerance."""
    ab, ours = 1.0, []
    for b in betas:
        ab *= 1.0 - b
        ours.append(ab)
    theirs = scheduler.alphas_cumprod.double().numpy()
    if len(theirs) != len(ours):
        die(f"diffusers has {len(theirs)} training timesteps, the checkpoint {len(ours)}")
    rel = np.abs(theirs - np.array(ours)) / np.array(ours)
    if rel.max() > 1e-4:
        k = int(rel.argmax())
        die(f"schedule {name}: diffusers' alphas_cumprod[{k}] = {theirs[k]:.9g} but our alpha_bar_{k + 1} = "
            f"{ours[k]:.9g}; refusing to compare samplers on different schedules")
    return float(rel.max())


# ---- Sampling ----------------------------------------------------------------
def uniform_timesteps(T, S):
    """Our uniform grid, T first: round(i T / S) for i = S..1, halves up (ddim_timesteps)."""
    return [(2 * i * T + S) // (2 * S) for i in range(S, 0, -1)]


def run_diffusers(model, scheduler, steps, x_T, T, grid):
    """Samples from x_T (our x_T ~ N(0, I)) through `steps` scheduler steps.
    Returns the samples, the model's timesteps t in call order, diffusers'
    own (maybe fractional) timesteps, the seconds and the evaluation count."""
    n = x_T.shape[0]
    t0 = time.perf_counter()
    if grid == "uniform":
        scheduler.set_timesteps(timesteps=[t - 1 for t in uniform_timesteps(T, steps)])  # diffusers' k = t - 1
    else:
        scheduler.set_timesteps(steps)
    # Start at the first timestep whatever the grid: left to itself, diffusers finds
    # its place by looking the first timestep up, and where the grid repeats it (the
    # integer timesteps of Karras sigmas on the cosine schedule do near t = T) it
    # starts at the second copy and overruns its sigmas at the end.
    scheduler.set_begin_index(0)
    # Heun works on x / sqrt(alpha_bar) (init_noise_sigma = sqrt(sigma_max^2 + 1));
    # scaling x_T by it is the same x_T ~ N(0, I) in our coordinates. DPM-Solver's is 1.
    x = x_T * scheduler.init_noise_sigma
    ts_model, ts_theirs = [], []
    for step_t in scheduler.timesteps:
        k = float(step_t)
        # Our time embedding is trained at integer t only: a fractional k (Heun, and
        # Karras sigmas on the cosine schedule) goes to the nearest integer, while the
        # solver still steps with the sigma interpolated at k itself.
        t = min(max(int(round(k)) + 1, 1), T)
        ts_model.append(t)
        ts_theirs.append(k)
        tt = torch.full((n,), t, dtype=torch.long)
        eps = model(scheduler.scale_model_input(x, step_t), tt)
        x = scheduler.step(eps, step_t, x).prev_sample
    seconds = time.perf_counter() - t0
    return x, ts_model, ts_theirs, seconds, len(ts_model)


def save_npy(path, x):
    # float32 (N, 2), C order: the .npy ddpm_eval reads (host/io/samples_io.hpp).
    np.save(path, np.ascontiguousarray(x.detach().numpy().astype(np.float32)))


def judge(eval_bin, path, eval_seed, data_args):
    cmd = [eval_bin, path, "--json", "--seed", str(eval_seed)] + data_args
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        die(f"{' '.join(cmd)}: exit status {r.returncode}: {r.stderr.strip()}")
    return json.loads(r.stdout)


def run_ours(a, kind, steps, path, T):
    """Our ddpm_cuda_sample on the same checkpoint with --threads OpenMP threads.
    Returns its own sampling seconds (its summary line's, which leave out the
    process start and the checkpoint's loading), the whole process's, the
    evaluation count and the command."""
    cmd = [a.ours_bin, "--device", "cpu", "--ckpt", a.ckpt, "--n", str(a.n), "--seed", str(a.seed),
           "--weights", a.weights, "--out", path, "--png", "", "--density", ""]
    if kind != "ddpm":
        cmd += ["--sampler", kind, "--steps", str(steps)]
        if a.karras:
            cmd += ["--timesteps", "karras"]
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    process_seconds = time.perf_counter() - t0
    if r.returncode != 0:
        die(f"{' '.join(cmd)}: exit status {r.returncode}: {r.stderr.strip()}")
    # "... = N model evaluations (...) in S s (...)"; older builds omit the count.
    m = re.search(r"in ([0-9.]+) s \(", r.stderr)
    seconds = float(m.group(1)) if m else process_seconds
    m = re.search(r"= (\d+) model evaluations", r.stderr)
    evals = int(m.group(1)) if m else {"ddpm": T, "heun": 2 * steps - 1}.get(kind, steps)
    return seconds, process_seconds, evals, cmd


def main():
    a = ARGS
    torch.set_num_threads(a.threads)
    model, meta, weights_used = load_model(a.ckpt, a.weights)
    T, sched_name, betas, sched_kwargs = our_betas(meta)
    for s in a.steps:
        if s > T:
            die(f"--steps {s}: more than the checkpoint's T = {T}", 2)

    data = a.eval_data or meta.get("run.data", "moons")
    data_args = ["--data", data]
    if os.path.splitext(data)[1].lower() in (".npy", ".csv"):
        data_args += ["--units", "normalized"]

    schedulers, max_rel = {}, 0.0
    for kind in a.samplers:
        schedulers[kind] = make_scheduler(kind, T, sched_kwargs, a.karras)
        max_rel = max(max_rel, check_schedule(schedulers[kind], betas, sched_name))

    gen = torch.Generator().manual_seed(a.seed)
    x_T = torch.randn(a.n, 2, generator=gen, dtype=torch.float32)

    out_dir = a.out_dir
    tmp = None
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="diffusers_samplers_")
        out_dir = tmp.name

    rows = []
    tag = "_karras" if a.karras else "_uniform" if a.grid == "uniform" else ""
    with torch.inference_mode():
        # Untimed warm-up of each scheduler on all n points: the first calls pay for
        # torch's and the pool's one-time setup.
        for kind in a.samplers:
            run_diffusers(model, schedulers[kind], 2, x_T, T, a.grid)
        for kind in a.samplers:
            for steps in a.steps:
                x, ts_model, ts_theirs, seconds, evals = run_diffusers(model, schedulers[kind], steps, x_T, T,
                                                                       a.grid)
                if not torch.isfinite(x).all():
                    die(f"{kind} at {steps} steps: non-finite samples")
                path = os.path.join(out_dir, f"diffusers_{kind}{tag}_{steps}.npy")
                save_npy(path, x)
                report = judge(a.eval_bin, path, a.eval_seed, data_args)
                rows.append(dict(
                    source="diffusers", sampler=kind, karras=a.karras, grid=a.grid, steps=steps, evaluations=evals,
                    seconds=seconds, sliced_w1=report["samples"]["sliced_w1"],
                    precision=report["samples"]["precision"], recall=report["samples"]["recall"],
                    mmd2=report["samples"]["mmd2"], samples=path if a.out_dir else None,
                    model_timesteps=ts_model, diffusers_timesteps=ts_theirs,
                    sigmas=[float(s) for s in schedulers[kind].sigmas], eval=report))
                print(f"{kind}{tag} {steps} steps: {evals} evaluations, {seconds:.3f} s", file=sys.stderr, flush=True)

    if a.ours_bin:
        for kind in a.ours:
            for steps in ([T] if kind == "ddpm" else a.steps):
                path = os.path.join(out_dir, f"ours_{kind}_{steps}.npy")
                seconds, process_seconds, evals, cmd = run_ours(a, kind, steps, path, T)
                report = judge(a.eval_bin, path, a.eval_seed, data_args)
                rows.append(dict(
                    source="ours", sampler=kind, karras=a.karras and kind != "ddpm", grid="ours", steps=steps,
                    evaluations=evals, seconds=seconds, process_seconds=process_seconds,
                    sliced_w1=report["samples"]["sliced_w1"],
                    precision=report["samples"]["precision"], recall=report["samples"]["recall"],
                    mmd2=report["samples"]["mmd2"], samples=path if a.out_dir else None,
                    command=cmd, eval=report))
                print(f"ours {kind} {steps} steps: {seconds:.3f} s", file=sys.stderr, flush=True)

    floor = rows[0]["eval"]["floor"] if rows else None
    print(f"{a.n} points, checkpoint {a.ckpt} ({weights_used} weights, schedule {sched_name}, T = {T}), "
          f"diffusers {diffusers.__version__}, torch {torch.__version__}, {a.threads} threads")
    print(f"{'sampler':<20} {'steps':>5} {'evals':>5} {'seconds':>8} {'swd':>8} {'P':>6} {'R':>6}")
    for r in rows:
        name = (("ours " if r["source"] == "ours" else "") + r["sampler"] + (" karras" if r["karras"] else "")
                + (" uniform" if r["grid"] == "uniform" else ""))
        print(f"{name:<20} {r['steps']:>5} {r['evaluations']:>5} {r['seconds']:>8.3f} "
              f"{r['sliced_w1']:>8.4f} {r['precision']:>6.3f} {r['recall']:>6.3f}")
    if floor:
        print(f"{'noise floor':<20} {'':>5} {'':>5} {'':>8} {floor['sliced_w1']:>8.4f} "
              f"{floor['precision']:>6.3f} {floor['recall']:>6.3f}")
    print("seconds: the sampling loop alone (ours: ddpm_cuda_sample's own figure, the file's writing included)")

    if a.json:
        doc = dict(
            checkpoint=os.path.abspath(a.ckpt), weights=weights_used, schedule=sched_name, T=T,
            scheduler_kwargs=sched_kwargs, alphas_cumprod_max_rel_diff=max_rel, n=a.n, seed=a.seed,
            eval_seed=a.eval_seed, eval_data=data_args, threads=a.threads, karras=a.karras, grid=a.grid,
            diffusers_version=diffusers.__version__, torch_version=torch.__version__,
            numpy_version=np.__version__, python=sys.version.split()[0],
            scheduler_configs={k: dict(s.config) for k, s in schedulers.items()},
            floor=floor, rows=rows)
        with open(a.json + ".tmp", "w") as f:
            json.dump(doc, f, indent=1, default=str)
        os.replace(a.json + ".tmp", a.json)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
