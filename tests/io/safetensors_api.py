"""State dicts written by safetensors' own Python API (run by interop_test.cpp
and tests/tools/tools_test.cpp).

usage: safetensors_api.py DIR SEED
  Draws the eight tensors of the seed's EpsNet (net.0.weight [128, 66],
  net.0.bias [128], net.2.*, net.4.* [128, 128] / [128], net.6.weight [2, 128],
  net.6.bias [2]) from a normal distribution seeded with SEED, writes them,
  flattened in that order (weight, then bias, layer by layer), to
  DIR/params.f32, and with safetensors.numpy.save_file to
    DIR/plain.safetensors   no metadata (safetensors.torch.save_file of a state_dict())
    DIR/pt.safetensors      {"format": "pt"} (what safetensors.torch.save_model writes)
    DIR/other.safetensors   another program's keys, some named as ours
    DIR/bad_T.safetensors   our format with every key valid but T = "0"
  and prints the package's version.
"""
import os
import sys

import numpy as np
import safetensors
from safetensors.numpy import save_file

LAYERS = [("net.0", 66, 128), ("net.2", 128, 128), ("net.4", 128, 128), ("net.6", 128, 2)]

OURS = {"format": "ddpm-cuda", "format_version": "1", "T": "500", "beta_1": "0.0001", "beta_T": "0.02",
        "schedule": "linear", "emb_dim": "64", "hidden": "128", "steps": "0", "seed": "0", "last_loss": "0"}


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    directory, seed = argv[1], int(argv[2])
    rng = np.random.default_rng(seed)
    tensors, flat = {}, []
    for name, fan_in, fan_out in LAYERS:
        w = (0.1 * rng.standard_normal((fan_out, fan_in))).astype(np.float32)
        b = (0.1 * rng.standard_normal(fan_out)).astype(np.float32)
        tensors[name + ".weight"], tensors[name + ".bias"] = w, b
        flat += [w.ravel(), b]
    np.concatenate(flat).astype("<f4").tofile(os.path.join(directory, "params.f32"))
    path = lambda name: os.path.join(directory, name + ".safetensors")
    save_file(tensors, path("plain"))
    save_file(tensors, path("pt"), metadata={"format": "pt"})
    save_file(tensors, path("other"), metadata={"producer": "numpy", "T": "7", "run.data-std-x": "nan",
                                                "beta_1": "not a number"})
    save_file(tensors, path("bad_T"), metadata=dict(OURS, T="0"))
    print(f"safetensors {safetensors.__version__}")


if __name__ == "__main__":
    main(sys.argv)
