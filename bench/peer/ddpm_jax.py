#!/usr/bin/env python3
"""JAX peer of the seed's two-moons DDPM, for side-by-side CPU benchmarks.

The algorithm and constants are ddpm_torch.py's (the seed's): T = 500, linear
betas 1e-4..0.02, alpha_bar[0] = 1; make_moons(noise=0.05) batches of 512
normalized per batch with the unbiased std; the 64-dim sinusoidal timestep
embedding; the MLP 66 -> 128 -> 128 -> 128 -> 2 with SiLU and nn.Linear's
initialization; Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8, bias-corrected, as
torch.optim.Adam computes it); 5000 steps of MSE on eps; ancestral sampling
with the posterior variance.

What JAX is best at decides the shape: the whole training run (batches drawn
with jax.random inside) is one jitted lax.scan over the steps, and the
500-step sampling chain one jitted lax.fori_loop, so neither goes back to
Python between steps. Each is compiled ahead of time (its seconds reported
apart, as compile_seconds) and then timed alone.

Threads: XLA's CPU client sizes its thread pools from the CPUs this process
may run on, so --threads N pins the process to N of them
(os.sched_setaffinity) before jax is loaded; with N = 1 it also turns off
Eigen's multi-threading (XLA_FLAGS --xla_cpu_multi_thread_eigen=false).

Needs the virtual environment of bench/peer/setup_peers.sh.
"""

import argparse
import json
import math
import os
import sys
import time


class OneLineErrors(argparse.ArgumentParser):
    def error(self, message):  # argparse's own adds the usage: keep a bad command line to one line
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_args():
    p = OneLineErrors(description="JAX peer of the seed's two-moons DDPM (CPU timings)")
    p.add_argument("--threads", type=int, default=1, help="CPUs the process is pinned to (XLA sizes its pools by them)")
    p.add_argument("--steps", type=int, default=5000, help="training steps")
    p.add_argument("--batch", type=int, default=512, help="points per training batch")
    p.add_argument("--n", type=int, default=10000, help="points to sample")
    p.add_argument("--T", type=int, default=500, help="diffusion steps")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--seed", type=int, default=0, help="jax.random seed (sampling uses seed + 1)")
    p.add_argument("--what", choices=["train", "sample", "both"], default="both",
                   help="sample alone starts from a fresh (untrained) model; its cost does not depend on the weights")
    p.add_argument("--log-every", type=int, default=1000,
                   help='"step N loss L" cadence, printed after the run (0: off)')
    p.add_argument("--out-samples", metavar="FILE.npy", help="save the samples, float32 (N, 2)")
    p.add_argument("--json", metavar="FILE", help="write the timings and counts as JSON")
    a = p.parse_args()
    for name in ("threads", "steps", "batch", "n", "T"):
        if getattr(a, name) < 1:
            p.error(f"--{name} {getattr(a, name)}: must be at least 1")
    if a.batch < 2:
        p.error(f"--batch {a.batch}: the per-batch std needs at least 2 points")
    return a


ARGS = parse_args()

# Limit the threads before jax is loaded: XLA reads the affinity mask (and XLA_FLAGS) when its
# CPU client starts.
_cpus = sorted(os.sched_getaffinity(0))
if ARGS.threads > len(_cpus):
    sys.exit(f"ddpm_jax.py: error: --threads {ARGS.threads}: this process may run on {len(_cpus)} CPUs only")
os.sched_setaffinity(0, _cpus[:ARGS.threads])
if ARGS.threads == 1:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

try:
    import numpy as np
    import jax
    import jax.numpy as jnp
    import jaxlib
except ImportError as e:
    sys.exit(f"ddpm_jax.py: error: {e.name} is not installed for {sys.executable} (bench/peer/setup_peers.sh makes "
             "an environment with it)")

# The FLOP counts of ddpm_torch.py (see its header): 231,936 per training point; sampling
# executes 82,944 per point-step here too (the full 66-wide input), credited 66,560.
IN_DIM, HIDDEN, OUT_DIM, EMB_DIM = 66, 128, 2, 64
FWD_FLOPS_PER_POINT = 2 * (IN_DIM * HIDDEN + 2 * HIDDEN * HIDDEN + HIDDEN * OUT_DIM)
TRAIN_FLOPS_PER_POINT = 2 * FWD_FLOPS_PER_POINT + 2 * (2 * HIDDEN * HIDDEN + HIDDEN * OUT_DIM)
SAMPLE_FLOPS_PER_POINT_STEP = FWD_FLOPS_PER_POINT
SAMPLE_FLOPS_PER_POINT_STEP_HOISTED = 2 * (2 * HIDDEN + 2 * HIDDEN * HIDDEN + HIDDEN * OUT_DIM)
assert (FWD_FLOPS_PER_POINT, TRAIN_FLOPS_PER_POINT, SAMPLE_FLOPS_PER_POINT_STEP_HOISTED) == (82944, 231936, 66560)


class Schedule:
    """float32, as the torch peer: alpha_bar[t] is timestep t, alpha_bar[0] = 1."""

    def __init__(self, T):
        self.T = T
        betas = np.linspace(1e-4, 0.02, T).astype(np.float32)
        alphas = np.float32(1) - betas
        ab = np.concatenate([np.ones(1, np.float32), np.cumprod(alphas, dtype=np.float32)])
        self.sqrt_ab = jnp.asarray(np.sqrt(ab))
        self.sqrt_1mab = jnp.asarray(np.sqrt(1 - ab))
        # Reverse-step coefficients, index t - 1 for t = 1..T. sigma at t = 1 is 0 (alpha_bar[0] = 1).
        self.eps_coef = jnp.asarray(betas / np.sqrt(1 - ab[1:]))
        self.inv_sqrt_alpha = jnp.asarray(1 / np.sqrt(alphas))
        self.sigma = jnp.asarray(np.sqrt(betas * (1 - ab[:-1]) / (1 - ab[1:])))


def init_params(key):
    """nn.Linear's initialization: weight and bias uniform in +-1/sqrt(fan_in). Weights stored (in, out)."""
    params = []
    for fan_in, fan_out in ((IN_DIM, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, OUT_DIM)):
        key, kw, kb = jax.random.split(key, 3)
        bound = 1 / math.sqrt(fan_in)
        params.append({"w": jax.random.uniform(kw, (fan_in, fan_out), jnp.float32, -bound, bound),
                       "b": jax.random.uniform(kb, (fan_out,), jnp.float32, -bound, bound)})
    return params


FREQS = np.exp(-np.arange(EMB_DIM // 2, dtype=np.float32) * math.log(10000) / (EMB_DIM // 2 - 1)).astype(np.float32)


def eps_net(params, x, t):
    # timestep_embedding(t, 64) = cat[sin(t f), cos(t f)], then the MLP on cat([x, emb]).
    args = t.astype(jnp.float32)[:, None] * FREQS[None]
    h = jnp.concatenate([x, jnp.sin(args), jnp.cos(args)], axis=-1)
    for layer in params[:-1]:
        h = jax.nn.silu(h @ layer["w"] + layer["b"])
    return h @ params[-1]["w"] + params[-1]["b"]


def moons_batch(key, n):
    # sklearn's make_moons(n, noise=0.05, shuffle=True), then normalized by the batch's mean and unbiased std.
    k_perm, k_noise = jax.random.split(key)
    n_out, n_in = n // 2, n - n // 2
    a_out, a_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    base = np.concatenate([np.stack([np.cos(a_out), np.sin(a_out)], 1),
                           np.stack([1 - np.cos(a_in), 1 - np.sin(a_in) - 0.5], 1)]).astype(np.float32)
    x = jnp.asarray(base)[jax.random.permutation(k_perm, n)]
    x = x + 0.05 * jax.random.normal(k_noise, (n, 2), jnp.float32)
    return (x - x.mean(0)) / x.std(0, ddof=1)


def adam_update(params, grads, m, v, step, lr, b1=0.9, b2=0.999, eps=1e-8):
    # torch.optim.Adam: p -= lr / (1 - b1^k) * m / (sqrt(v) / sqrt(1 - b2^k) + eps).
    m = jax.tree_util.tree_map(lambda m_, g: b1 * m_ + (1 - b1) * g, m, grads)
    v = jax.tree_util.tree_map(lambda v_, g: b2 * v_ + (1 - b2) * g * g, v, grads)
    step_size = lr / (1 - b1 ** step)
    bc2_sqrt = jnp.sqrt(1 - b2 ** step)
    params = jax.tree_util.tree_map(lambda p, m_, v_: p - step_size * m_ / (jnp.sqrt(v_) / bc2_sqrt + eps),
                                    params, m, v)
    return params, m, v


def make_train(sched, steps, batch, lr):
    """train(params, key) -> (params, losses): all the steps as one lax.scan."""

    def loss_fn(params, xt, t, eps):
        return jnp.mean((eps_net(params, xt, t) - eps) ** 2)

    def step(carry, key):
        params, m, v, k = carry
        k_batch, k_t, k_eps = jax.random.split(key, 3)
        x0 = moons_batch(k_batch, batch)
        t = jax.random.randint(k_t, (batch,), 1, sched.T + 1)
        eps = jax.random.normal(k_eps, (batch, 2), jnp.float32)
        xt = sched.sqrt_ab[t][:, None] * x0 + sched.sqrt_1mab[t][:, None] * eps
        loss, grads = jax.value_and_grad(loss_fn)(params, xt, t, eps)
        k = k + 1
        params, m, v = adam_update(params, grads, m, v, k.astype(jnp.float32), lr)
        return (params, m, v, k), loss

    def train(params, key):
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        (params, _, _, _), losses = jax.lax.scan(step, (params, zeros, zeros, jnp.int32(0)),
                                                 jax.random.split(key, steps))
        return params, losses

    return jax.jit(train)


def make_sample(sched, n):
    """sample(params, key) -> (n, 2): the whole chain as one lax.fori_loop."""

    def sample(params, key):
        k_init, k_steps = jax.random.split(key)

        def reverse_step(i, x):
            t = sched.T - i
            eps = eps_net(params, x, jnp.full((n,), t, jnp.int32))
            mean = (x - sched.eps_coef[t - 1] * eps) * sched.inv_sqrt_alpha[t - 1]
            z = jax.random.normal(jax.random.fold_in(k_steps, t), (n, 2), jnp.float32)
            return jnp.where(t > 1, mean + sched.sigma[t - 1] * z, mean)

        return jax.lax.fori_loop(0, sched.T, reverse_step, jax.random.normal(k_init, (n, 2), jnp.float32))

    return jax.jit(sample)


def compile_timed(fn, *args):
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    return compiled, time.perf_counter() - t0


def main():
    a = ARGS
    sched = Schedule(a.T)
    params = init_params(jax.random.PRNGKey(a.seed))
    xla_flags = os.environ.get("XLA_FLAGS", "")
    res = {
        "peer": "jax", "jax_version": jax.__version__, "jaxlib_version": jaxlib.__version__,
        "numpy_version": np.__version__, "python": sys.version.split()[0],
        "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
        "threads": a.threads, "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "thread_control": f"os.sched_setaffinity to {a.threads} CPU(s) before jax loads"
                          + (", XLA_FLAGS --xla_cpu_multi_thread_eigen=false" if a.threads == 1 else ""),
        "env": {"XLA_FLAGS": xla_flags},
        "what": a.what, "T": a.T, "seed": a.seed, "device": "cpu", "compile": "jit",
        "flops": {
            "forward_per_point": FWD_FLOPS_PER_POINT,
            "train_per_point": TRAIN_FLOPS_PER_POINT,
            "train_per_step": TRAIN_FLOPS_PER_POINT * a.batch,
            "sample_per_point_step": SAMPLE_FLOPS_PER_POINT_STEP,
            "sample_per_point_step_hoisted": SAMPLE_FLOPS_PER_POINT_STEP_HOISTED,
        },
    }
    compile_seconds = {}

    if a.what in ("train", "both"):
        train, secs_c = compile_timed(make_train(sched, a.steps, a.batch, a.lr), params, jax.random.PRNGKey(a.seed))
        compile_seconds["train"] = secs_c
        t0 = time.perf_counter()
        params, losses = train(params, jax.random.PRNGKey(a.seed))
        losses = np.asarray(jax.block_until_ready(losses))
        secs = time.perf_counter() - t0
        if a.log_every > 0:
            for s in range(0, a.steps, a.log_every):
                print(f"step {s:5d} loss {losses[s]:.4f}")
        final_loss = float(losses[-1])
        print(f"train: {a.steps} steps x {a.batch} in {secs:.3f} s ({a.steps / secs:.2f} steps/s, "
              f"{1e3 * secs / a.steps:.3f} ms/step), final loss {final_loss:.4f}, "
              f"compile {secs_c:.1f} s", flush=True)
        res.update({
            "steps": a.steps, "batch": a.batch, "adam": "hand-written (torch.optim.Adam's update)",
            "final_loss": final_loss,
            # The last 100 steps' mean: one step's loss varies by +-20% with its batch and t.
            "final_loss_mean_100": float(losses[-100:].mean()),
            "train_device": "cpu", "train_precision": "fp32",
            "train_seconds": secs, "train_steps_per_s": a.steps / secs, "train_ms_per_step": 1e3 * secs / a.steps,
            "train_gflops": TRAIN_FLOPS_PER_POINT * a.batch * a.steps / secs / 1e9,
        })

    if a.what in ("sample", "both"):
        key = jax.random.PRNGKey(a.seed + 1)
        sample, secs_c = compile_timed(make_sample(sched, a.n), params, key)
        compile_seconds["sample"] = secs_c
        t0 = time.perf_counter()
        x = np.asarray(jax.block_until_ready(sample(params, key)))
        secs = time.perf_counter() - t0
        pts = a.n * a.T
        mean, std = x.mean(0).tolist(), x.std(0, ddof=1).tolist()
        print(f"sample: {a.n} points x {a.T} steps in {secs:.3f} s ({pts / secs:.4g} point-steps/s, "
              f"{1e6 * secs / pts:.3f} us/point-step); mean ({mean[0]:.3f}, {mean[1]:.3f}) "
              f"std ({std[0]:.3f}, {std[1]:.3f}), compile {secs_c:.1f} s", flush=True)
        res.update({
            "n": a.n, "precision": "fp32", "sample_variant": "fori_loop",
            "sample_seconds": secs, "sample_point_steps_per_s": pts / secs,
            "sample_us_per_point_step": 1e6 * secs / pts,
            "sample_gflops": SAMPLE_FLOPS_PER_POINT_STEP * pts / secs / 1e9,
            "sample_mean": mean, "sample_std": std,
        })
        if a.out_samples:
            np.save(a.out_samples, x.astype(np.float32))

    res["compile_seconds"] = sum(compile_seconds.values())
    res["compile_seconds_by_phase"] = compile_seconds
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
