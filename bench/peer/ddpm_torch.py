#!/usr/bin/python3
"""PyTorch peer of the seed's two-moons DDPM, for side-by-side benchmarks (CPU or CUDA, training and sampling).

The algorithm is the seed's, with its defaults:
  T = 500, betas = linspace(1e-4, 0.02, T), alphas = 1 - betas,
  alpha_bar = cat([1], cumprod(alphas)) so that alpha_bar[t] is timestep t;
  get_batch(512) = make_moons(noise=0.05), normalized per batch;
  EpsNet = Linear(66,128) SiLU Linear(128,128) SiLU Linear(128,128) SiLU Linear(128,2)
           on cat([x, timestep_embedding(t, 64)]);
  Adam(lr=1e-3), 5000 steps, t ~ randint(1, T + 1), loss = mse(eps_theta(x_t, t), eps);
  ancestral sampling from x_T ~ N(0, I) with the posterior variance.

Only the training loop and the sampling loop are timed (time.perf_counter;
on CUDA after torch.cuda.synchronize()), each after a short warm-up that is not
counted; the counted training run starts from the seed's initialization with
the RNG re-seeded, so it is exactly the run one would get without the warm-up.

--device cuda puts everything on the GPU: the model, the schedule, the
make_moons batches (generated there), the noise, Adam's state. --compile wraps
the model in torch.compile (PyTorch >= 2.0); the untimed warm-ups, with the
timed run's shapes, are where it compiles, and their wall time is reported
apart (compile_seconds), since a user pays it once.

On the CPU machines Debian's python3-torch (1.13, no torch.compile) is used:
run with /usr/bin/python3; PyTorch 2 from PyPI is in the virtual environment
that setup_peers.sh makes (build/peer-venv/bin/python by default). On a GPU
machine, use the python3 that holds a CUDA build of PyTorch.
"""

import argparse
import contextlib
import json
import math
import os
import re
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description="PyTorch peer of the seed's two-moons DDPM (CPU or CUDA timings)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (also OpenBLAS/OpenMP threads)")
    p.add_argument("--steps", type=int, default=5000, help="training steps")
    p.add_argument("--batch", type=int, default=512, help="points per training batch")
    p.add_argument("--n", type=int, default=10000, help="points to sample")
    p.add_argument("--T", type=int, default=500, help="diffusion steps")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--seed", type=int, default=0, help="torch/numpy seed")
    p.add_argument("--what", choices=["train", "sample", "both"], default="both",
                   help="sample alone starts from a fresh (untrained) model unless --load-model is given; "
                        "its cost does not depend on the weights")
    p.add_argument("--data", choices=["torch", "numpy", "sklearn"], default="torch",
                   help="make_moons source: torch (on the fly, default), numpy (sklearn's algorithm "
                        "re-implemented), sklearn (sklearn.datasets.make_moons)")
    p.add_argument("--adam", choices=["default", "foreach", "fused"], default="default",
                   help="Adam implementation: default (on CPU: single-tensor loop; on CUDA torch >= 2 picks "
                        "foreach), foreach (multi-tensor), fused (CUDA-only in torch 1.13; falls back to foreach "
                        "where the device has none)")
    p.add_argument("--grad-mode", choices=["no_grad", "inference_mode"], default="no_grad",
                   help="autograd mode for sampling")
    p.add_argument("--jit", choices=["none", "trace", "script"], default="none",
                   help="compile the model for sampling (frozen TorchScript)")
    p.add_argument("--compile", choices=["none", "default", "reduce-overhead", "max-autotune"], default="none",
                   help="wrap the model in torch.compile(mode=..., dynamic=False) for training and sampling "
                        "(PyTorch >= 2.0); compiled in the untimed warm-ups, whose seconds the JSON reports "
                        "as compile_seconds")
    p.add_argument("--warmup", type=int, default=20, help="uncounted warm-up training steps")
    p.add_argument("--warmup-sample", type=int, default=5,
                   help="uncounted warm-up reverse steps (on all --n points, as the timed run)")
    p.add_argument("--log-every", type=int, default=1000, help='"step N loss L" cadence (0: off)')
    p.add_argument("--out-samples", metavar="FILE.npy", help="save the samples, float32 (N, 2)")
    p.add_argument("--save-model", metavar="FILE.pt", help="save the trained state_dict")
    p.add_argument("--load-model", metavar="FILE.pt", help="load a state_dict before sampling")
    p.add_argument("--omp-wait", choices=["passive", "active", "inherit"], default="passive",
                   help="OMP_WAIT_POLICY for torch's OpenMP pool (inherit: leave the environment's). Debian's "
                        "torch runs two pools, OpenMP for its own kernels and OpenBLAS's pthreads for GEMM; "
                        "spinning OpenMP workers take the cores the GEMM threads need")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where to train and sample (model, schedule, batches and noise all there); "
                        "cuda times with synchronization")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="sampling on cuda: fp32, or bf16 autocast (matrix products in bf16, FP32 accumulation); "
                        "training is always fp32")
    p.add_argument("--sample-variant", choices=["eager", "graph"], default="eager",
                   help="sampling on cuda: eager, or the whole chain captured once in a CUDA graph and replayed")
    p.add_argument("--json", metavar="FILE", help="write the timings and counts as JSON")
    return p.parse_args()


ARGS = parse_args()
# OpenBLAS (Debian's torch reaches it through libblas.so.3) keeps its own
# thread pool, which torch.set_num_threads does not size; fix it, and OpenMP's,
# before torch is loaded unless the caller already chose.
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(ARGS.threads))
os.environ.setdefault("OMP_NUM_THREADS", str(ARGS.threads))
if ARGS.omp_wait != "inherit":
    os.environ["OMP_WAIT_POLICY"] = ARGS.omp_wait.upper()

try:
    import numpy as np  # noqa: E402
except ImportError as e:  # the seeds and the saved samples need it (device_run.sh checks before it runs this)
    sys.exit(f"ddpm_torch.py: error: numpy is not installed for {sys.executable} ({e})")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# ---- FLOP counts (a multiply-add counts as 2; bias adds, SiLU, the loss and
# Adam are elementwise and not counted) --------------------------------------
# Layer shapes: 66->128, 128->128, 128->128, 128->2.
#   forward, per point       2 (66*128 + 128*128 + 128*128 + 128*2)   =  82,944
#   backward, weight grads   dW_l = dY_l^T X_l: the same MACs again     =  82,944
#   backward, input grads    dX_l = dY_l W_l for layers 2..4 only; the
#                            first layer's input (x, emb) needs no grad:
#                            2 (128*128 + 128*128 + 128*2)              =  66,048
#   training, per point      82,944 + 82,944 + 66,048                   = 231,936
#   training, per step       231,936 * batch (512)                      = 118,751,232
# (The common "3 x forward" rule of thumb gives 248,832 per point; it counts
# an input gradient for the first layer that autograd never computes.)
# Sampling runs the forward only. This peer feeds the full 66-wide input each
# reverse step, so it executes 82,944 FLOPs per point-step; an engine that
# hoists the (constant per step) time-embedding term of the first layer out of
# the point loop does the useful 2 (2*128 + 128*128*2 + 128*2) = 66,560.
IN_DIM, HIDDEN, OUT_DIM, EMB_DIM = 66, 128, 2, 64
FWD_FLOPS_PER_POINT = 2 * (IN_DIM * HIDDEN + 2 * HIDDEN * HIDDEN + HIDDEN * OUT_DIM)
DW_FLOPS_PER_POINT = FWD_FLOPS_PER_POINT
DX_FLOPS_PER_POINT = 2 * (2 * HIDDEN * HIDDEN + HIDDEN * OUT_DIM)
TRAIN_FLOPS_PER_POINT = FWD_FLOPS_PER_POINT + DW_FLOPS_PER_POINT + DX_FLOPS_PER_POINT
SAMPLE_FLOPS_PER_POINT_STEP = FWD_FLOPS_PER_POINT
SAMPLE_FLOPS_PER_POINT_STEP_HOISTED = 2 * (2 * HIDDEN + 2 * HIDDEN * HIDDEN + HIDDEN * OUT_DIM)
assert (FWD_FLOPS_PER_POINT, TRAIN_FLOPS_PER_POINT, SAMPLE_FLOPS_PER_POINT_STEP_HOISTED) == (82944, 231936, 66560)


# ---- Data: make_moons as scikit-learn draws it, then per-batch normalization ----
def make_moons_torch(n, noise, device="cpu"):
    # sklearn's make_moons (moons, rows shuffled, Gaussian noise), in float32 on `device`.
    n_out = n // 2
    n_in = n - n_out
    a_out = torch.linspace(0, math.pi, n_out, device=device)
    a_in = torch.linspace(0, math.pi, n_in, device=device)
    x = torch.cat([
        torch.stack([torch.cos(a_out), torch.sin(a_out)], 1),
        torch.stack([1 - torch.cos(a_in), 1 - torch.sin(a_in) - 0.5], 1),
    ])
    x = x[torch.randperm(n, device=device)]  # shuffle=True
    return x + noise * torch.randn(n, 2, device=device)


def make_moons_numpy(n, noise, rng):
    # sklearn.datasets.make_moons(n_samples=n, shuffle=True, noise=noise), line for line:
    # the moons in float64, rows shuffled, then Gaussian noise added.
    n_out = n // 2
    n_in = n - n_out
    outer_x = np.cos(np.linspace(0, np.pi, n_out))
    outer_y = np.sin(np.linspace(0, np.pi, n_out))
    inner_x = 1 - np.cos(np.linspace(0, np.pi, n_in))
    inner_y = 1 - np.sin(np.linspace(0, np.pi, n_in)) - 0.5
    x = np.vstack([np.append(outer_x, inner_x), np.append(outer_y, inner_y)]).T
    x = x[rng.permutation(n)]
    x += rng.normal(scale=noise, size=x.shape)
    return x


def make_batch_fn(source, device="cpu"):
    # torch draws the batch on `device`; numpy and sklearn draw it on the host and copy it there.
    if source == "torch":
        gen = lambda n: make_moons_torch(n, 0.05, device)  # noqa: E731
    elif source == "numpy":
        rng = np.random.mtrand._rand  # the global RandomState, as sklearn uses with random_state=None
        gen = lambda n: torch.from_numpy(make_moons_numpy(n, 0.05, rng)).float().to(device)  # noqa: E731
    else:
        try:
            from sklearn.datasets import make_moons
        except ImportError:
            sys.exit("--data sklearn: scikit-learn is not installed for this interpreter")
        gen = lambda n: torch.tensor(make_moons(n_samples=n, noise=0.05)[0], dtype=torch.float32).to(device)  # noqa: E731

    def get_batch(n=512):
        x = gen(n)
        return (x - x.mean(0)) / x.std(0)  # unbiased std, as torch.std

    return get_batch


# ---- Model ----
class EpsNet(nn.Module):
    def __init__(self):
        super().__init__()
        half = EMB_DIM // 2
        self.register_buffer("freqs", torch.exp(-torch.arange(half, dtype=torch.float32) * math.log(10000) / (half - 1)))
        self.net = nn.Sequential(
            nn.Linear(IN_DIM, HIDDEN), nn.SiLU(),
            nn.Linear(HIDDEN, HIDDEN), nn.SiLU(),
            nn.Linear(HIDDEN, HIDDEN), nn.SiLU(),
            nn.Linear(HIDDEN, OUT_DIM),
        )

    def forward(self, x, t):
        # timestep_embedding(t, 64): cat[sin(t f), cos(t f)], f = exp(-i log(10000) / (half - 1))
        args = t.float()[:, None] * self.freqs[None]
        emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
        return self.net(torch.cat([x, emb], dim=-1))


def make_optimizer(model, variant, lr, device="cpu"):
    if variant == "default":
        # torch >= 2.0 defaults to the multi-tensor (foreach) path when every parameter is on CUDA.
        cuda_foreach = device == "cuda" and int(torch.__version__.split(".")[0]) >= 2
        return torch.optim.Adam(model.parameters(), lr=lr), \
            "default (foreach)" if cuda_foreach else "default (single-tensor)"
    if variant == "foreach":
        return torch.optim.Adam(model.parameters(), lr=lr, foreach=True), "foreach"
    try:  # torch 1.13 accepts fused=True on CPU but rejects it at the first step; probe on the device
        p = torch.zeros(1, requires_grad=True, device=device)
        p.grad = torch.zeros(1, device=device)
        torch.optim.Adam([p], lr=lr, fused=True).step()
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True), "fused"
    except RuntimeError:
        return torch.optim.Adam(model.parameters(), lr=lr, foreach=True), "foreach (fused is CUDA-only here)"


class Schedule:
    def __init__(self, T, device="cpu"):
        self.T = T
        self.betas = torch.linspace(1e-4, 0.02, T)
        self.alphas = 1 - self.betas
        self.alpha_bar = torch.cat([torch.ones(1), torch.cumprod(self.alphas, 0)])
        # Reverse-step coefficients for t = 1..T as Python floats (index t - 1).
        b, a = self.betas, self.alphas
        ab, ab_prev = self.alpha_bar[1:], self.alpha_bar[:-1]
        self.eps_coef = (b / torch.sqrt(1 - ab)).tolist()
        self.inv_sqrt_alpha = (1 / torch.sqrt(a)).tolist()
        self.sigma = torch.sqrt(b * (1 - ab_prev) / (1 - ab)).tolist()
        # Computed on the host (the same float32 values on every device), then moved to where
        # training indexes them with t.
        self.sqrt_ab = torch.sqrt(self.alpha_bar).to(device)
        self.sqrt_1mab = torch.sqrt(1 - self.alpha_bar).to(device)


def train(model, opt, sched, get_batch, steps, batch, log_every, quiet=False, device="cpu"):
    # model: the module, or its torch.compile wrapper. No host syncs but the logged loss.
    loss = None
    for step in range(steps):
        x0 = get_batch(batch)
        t = torch.randint(1, sched.T + 1, (batch,), device=device)
        eps = torch.randn_like(x0)
        xt = sched.sqrt_ab[t][:, None] * x0 + sched.sqrt_1mab[t][:, None] * eps
        loss = F.mse_loss(model(xt, t), eps)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if not quiet and log_every > 0 and step % log_every == 0:
            print(f"step {step:5d} loss {loss.item():.4f}", flush=True)
    return float(loss.item()) if loss is not None else float("nan")


def sample(model, sched, n, grad_mode, t_stop=1, device="cpu", precision="fp32"):
    ctx = torch.inference_mode() if grad_mode == "inference_mode" else torch.no_grad()
    bf16 = precision == "bf16" and device == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with ctx, autocast:
        x = torch.randn(n, 2, device=device)
        for t in range(sched.T, t_stop - 1, -1):
            # t reaches the model only as a tensor: a compiled model does not specialize on it.
            tt = torch.full((n,), t, dtype=torch.long, device=device)
            eps = model(x, tt).float()
            mean = (x - sched.eps_coef[t - 1] * eps) * sched.inv_sqrt_alpha[t - 1]
            x = mean + sched.sigma[t - 1] * torch.randn_like(x) if t > 1 else mean
    return x


def graphed_sampler(model, sched, n, grad_mode, precision):
    """The whole chain captured once in a CUDA graph: every launch of the 500
    steps replays without the host (the graph's random draws advance the
    generator's offset on each replay). Returns run() -> the samples."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as torch.cuda.graphs asks
        sample(model, sched, n, grad_mode, t_stop=sched.T - 1, device="cuda", precision=precision)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = sample(model, sched, n, grad_mode, device="cuda", precision=precision)

    def run():
        graph.replay()
        return out
    return run


def compile_for_sampling(model, how, n, device="cpu"):
    model.eval()
    if how == "none":
        return model
    with torch.no_grad():
        if how == "trace":
            m = torch.jit.trace(model, (torch.randn(n, 2, device=device),
                                        torch.full((n,), 1, dtype=torch.long, device=device)))
        else:
            m = torch.jit.script(model)
        return torch.jit.freeze(m.eval())


def torch_compile(model, mode):
    """torch.compile(model) or the model itself. dynamic=False: the batch (training) and --n
    (sampling) are fixed, so each gets a static-shape graph, and a --what both run does not
    turn the batch dimension dynamic when sampling's shape follows training's."""
    if mode == "none":
        return model
    return torch.compile(model, mode=mode, dynamic=False)


def check_args(a):
    """Requests this torch or this machine cannot serve: one line on stderr, exit status 1."""
    if a.compile != "none":
        if not hasattr(torch, "compile"):
            sys.exit(f"--compile {a.compile}: torch.compile needs PyTorch >= 2.0; this is torch {torch.__version__}")
        if a.jit != "none":
            sys.exit(f"--compile {a.compile} and --jit {a.jit} both compile the model: choose one")
        graph = a.device == "cuda" and a.sample_variant == "graph"
        if (a.what != "sample" and a.warmup < 3) or (a.what != "train" and not graph and a.warmup_sample < 3):
            sys.exit(f"--compile {a.compile}: --warmup and --warmup-sample must be at least 3, "
                     "so that compilation (and CUDA graph recording) happens before the timed run")
        if (a.device == "cuda" and a.sample_variant == "graph" and a.what != "train"
                and a.compile in ("reduce-overhead", "max-autotune")):
            sys.exit(f"--compile {a.compile} records CUDA graphs itself: use it with --sample-variant eager "
                     "(or --compile default with --sample-variant graph)")
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit(f"--device cuda: no CUDA device is usable by torch {torch.__version__} "
                 f"(CUDA build: {torch.version.cuda or 'none'})")


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def blas_summary():
    cfg = torch.__config__.show()
    info = {
        "blas_info": (re.search(r"BLAS_INFO=([^,\s]+)", cfg) or [None, None])[1],
        "lapack_info": (re.search(r"LAPACK_INFO=([^,\s]+)", cfg) or [None, None])[1],
        "mkl": "Intel(R) Math Kernel Library" in cfg or "USE_MKL=ON" in cfg,
        "onednn": (re.search(r"MKL-DNN v([\d.]+)", cfg) or [None, None])[1],
        "openmp": "OpenMP" in cfg,
        "cpu_capability": (re.search(r"CPU capability usage: (\S+)", cfg) or [None, None])[1],
        "openblas": None,
    }
    # With BLAS_INFO=generic, torch calls sgemm_ from libblas.so.3 (Debian's
    # alternatives pick OpenBLAS when libopenblas0-* is installed, else the
    # reference BLAS). Look at what the process actually mapped.
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if re.search(r"lib(open)?blas", line)})
    except OSError:
        libs = []
    info["blas_libs_mapped"] = libs
    # sgemm_ comes from whichever libblas.so.3 was mapped (libopenblas itself
    # may be mapped anyway, pulled in by liblapack.so.3).
    blas3 = [lib for lib in libs if re.search(r"/libblas\.so", lib)]
    info["sgemm_from"] = ("openblas" if blas3 and "openblas" in blas3[0] else
                          "reference BLAS (slow)" if blas3 and "/blas/" in blas3[0] else
                          blas3[0] if blas3 else "unknown")
    if info["blas_info"] == "mkl":  # PyPI's wheels: loading Debian's OpenBLAS would only add an idle thread pool
        return info
    try:
        import ctypes
        ob = ctypes.CDLL("libopenblas.so.0")
        ob.openblas_get_config.restype = ctypes.c_char_p
        info["openblas"] = {"config": ob.openblas_get_config().decode().strip(),
                            "threads": ob.openblas_get_num_threads()}
    except (OSError, AttributeError):
        pass
    return info


def main():
    a = ARGS
    check_args(a)
    dev = a.device
    cuda = dev == "cuda"
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    sched = Schedule(a.T, dev)
    get_batch = make_batch_fn(a.data, dev)
    res = {
        "torch_version": torch.__version__, "numpy_version": np.__version__, "python": sys.version.split()[0],
        "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY")},
        "what": a.what, "data": a.data, "grad_mode": a.grad_mode, "jit": a.jit, "T": a.T, "seed": a.seed,
        "device": dev, "compile": a.compile,
        "flops": {
            "forward_per_point": FWD_FLOPS_PER_POINT,
            "train_per_point": TRAIN_FLOPS_PER_POINT,
            "train_per_step": TRAIN_FLOPS_PER_POINT * a.batch,
            "train_per_point_3x_forward": 3 * FWD_FLOPS_PER_POINT,
            "sample_per_point_step": SAMPLE_FLOPS_PER_POINT_STEP,
            "sample_per_point_step_hoisted": SAMPLE_FLOPS_PER_POINT_STEP_HOISTED,
        },
    }
    if cuda:
        res.update({"gpu": torch.cuda.get_device_name(), "cuda_version": torch.version.cuda})
        try:
            res["float32_matmul_precision"] = torch.get_float32_matmul_precision()  # "highest": no TF32
        except (AttributeError, RuntimeError):
            pass
    res.update(blas_summary())
    # With --compile, the wall seconds of the untimed warm-ups that compiled the model (the
    # warm-up steps' own run time is in them too, a few steps' worth).
    compile_seconds = {}
    # What the user asked for, as a suffix of the printed lines (nothing on the CPU defaults).
    tag = (f" on {res['gpu']}" if cuda else "") + (f", compile {a.compile}" if a.compile != "none" else "")

    model = fwd = None  # fwd: the model as called (the module, or its torch.compile wrapper)
    if a.what in ("train", "both"):
        # Warm-up (uncounted; with --compile, where the model compiles), then re-seed and put
        # the seed's initialization back into the same module, in place: the counted run is
        # the seed's run, and the compiled code stays valid for it.
        model = EpsNet().to(dev)
        fwd = torch_compile(model, a.compile)
        wopt, _ = make_optimizer(model, a.adam, a.lr, dev)
        sync(dev)
        t0 = time.perf_counter()
        train(fwd, wopt, sched, get_batch, a.warmup, a.batch, 0, quiet=True, device=dev)
        sync(dev)
        warm_secs = time.perf_counter() - t0
        del wopt
        torch.manual_seed(a.seed)
        np.random.seed(a.seed)
        model.load_state_dict(EpsNet().state_dict())
        for p in model.parameters():
            p.grad = None
        opt, adam_used = make_optimizer(model, a.adam, a.lr, dev)
        if a.compile != "none":
            compile_seconds["train"] = warm_secs
        sync(dev)
        t0 = time.perf_counter()
        final_loss = train(fwd, opt, sched, get_batch, a.steps, a.batch, a.log_every, device=dev)
        sync(dev)
        secs = time.perf_counter() - t0
        print(f"train: {a.steps} steps x {a.batch} in {secs:.3f} s ({a.steps / secs:.2f} steps/s, "
              f"{1e3 * secs / a.steps:.3f} ms/step), final loss {final_loss:.4f}, adam {adam_used}{tag}", flush=True)
        res.update({
            "steps": a.steps, "batch": a.batch, "adam": adam_used, "final_loss": final_loss,
            "train_device": dev, "train_precision": "fp32",
            "train_seconds": secs, "train_steps_per_s": a.steps / secs, "train_ms_per_step": 1e3 * secs / a.steps,
            "train_gflops": TRAIN_FLOPS_PER_POINT * a.batch * a.steps / secs / 1e9,
            "train_warmup_steps": a.warmup, "train_warmup_seconds": warm_secs,
        })
        if a.save_model:
            torch.save(model.state_dict(), a.save_model)

    if a.what in ("sample", "both"):
        if model is None:
            model = EpsNet()
            if a.load_model:
                model.load_state_dict(torch.load(a.load_model, map_location="cpu"))
            model = model.to(dev)
            fwd = torch_compile(model, a.compile)
        model.eval()  # a compiled wrapper sees it (and recompiles for eval under no_grad in the warm-up)
        m = fwd if a.compile != "none" else compile_for_sampling(model, a.jit, a.n, dev)
        sync(dev)
        t0 = time.perf_counter()
        if cuda and a.sample_variant == "graph":
            run = graphed_sampler(m, sched, a.n, a.grad_mode, a.precision)
            run()  # warm-up replay, not counted
        else:
            # Warm-up, not counted: the timed run's shapes (n points), so that a compiled model
            # compiles here and not in the timed run.
            warm_stop = max(1, a.T - a.warmup_sample + 1)
            sample(m, sched, a.n, a.grad_mode, t_stop=warm_stop, device=dev, precision=a.precision)
            run = lambda: sample(m, sched, a.n, a.grad_mode, device=dev, precision=a.precision)  # noqa: E731
        sync(dev)
        warm_secs = time.perf_counter() - t0
        if a.compile != "none":
            compile_seconds["sample"] = warm_secs
        torch.manual_seed(a.seed + 1)
        sync(dev)
        t0 = time.perf_counter()
        x = run()
        sync(dev)
        secs = time.perf_counter() - t0
        x = x.float().cpu()
        res.update({"device": dev, "precision": a.precision, "sample_variant": a.sample_variant})
        if cuda:
            res["gpu"] = torch.cuda.get_device_name()
        pts = a.n * a.T
        mean, std = x.mean(0).tolist(), x.std(0).tolist()
        print(f"sample: {a.n} points x {a.T} steps in {secs:.3f} s ({pts / secs:.4g} point-steps/s, "
              f"{1e6 * secs / pts:.3f} us/point-step); mean ({mean[0]:.3f}, {mean[1]:.3f}) "
              f"std ({std[0]:.3f}, {std[1]:.3f})"
              + (f", {a.sample_variant} {a.precision}{tag}" if cuda or a.compile != "none" else ""), flush=True)
        res.update({
            "n": a.n, "sample_seconds": secs, "sample_point_steps_per_s": pts / secs,
            "sample_us_per_point_step": 1e6 * secs / pts,
            "sample_gflops": SAMPLE_FLOPS_PER_POINT_STEP * pts / secs / 1e9,
            "sample_mean": mean, "sample_std": std,
            # graph: two eager steps on a side stream, the capture, then one whole replay
            "sample_warmup": (f"2 steps, capture, 1 replay of {a.T}" if cuda and a.sample_variant == "graph"
                              else f"{a.T - warm_stop + 1} steps"),
            "sample_warmup_seconds": warm_secs,
        })
        if a.out_samples:
            np.save(a.out_samples, x.numpy().astype(np.float32))

    if a.compile != "none":
        res["compile_seconds"] = sum(compile_seconds.values())
        res["compile_seconds_by_phase"] = compile_seconds
        print(f"compile {a.compile}: the untimed warm-ups took {res['compile_seconds']:.1f} s ("
              + ", ".join(f"{k} {v:.1f} s" for k, v in compile_seconds.items()) + ")", flush=True)
    else:
        res["compile_seconds"] = None

    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
