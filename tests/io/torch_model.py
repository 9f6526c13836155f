"""The PyTorch module of each model variant, loading our checkpoints (run by
tests/cpu/torch_model_test.cpp; the README shows the same module).

usage: torch_model.py CKPT.safetensors POINTS.f32 STEPS.i32 OUT.f32
  Builds EpsNet for the checkpoint's variant (metadata x_embedding, x_scale),
  loads its tensors with load_state_dict(strict=True), and writes
  eps_theta(x, t) for the N points of POINTS.f32 (N x 2 float32) at the
  timesteps of STEPS.i32 (N int32) to OUT.f32 (N x 2 float32), computed in
  float64 from the float32 weights.
"""
import math
import sys

import torch
from torch import nn

from torch_interop import read_safetensors


def sinusoidal(v, dim=64, scale=1.0):
    """The seed's timestep embedding of v (t, or a coordinate of x at scale s):
    [sin(a_j), cos(a_j)], a_j = (s v) exp(-j ln(10000) / (dim/2 - 1))."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / (half - 1))
    a = (scale * v.to(torch.float64))[:, None] * freq[None, :]
    return torch.cat([torch.sin(a), torch.cos(a)], dim=-1)


class EpsNet(nn.Module):
    """eps_theta(x, t): x raw (x_embedding "none", the seed's model, net.0 [128, 66])
    or each coordinate through sinusoidal(x_d, scale=x_scale) ("sinusoidal",
    net.0 [128, 192]); emb(t) last."""

    def __init__(self, x_embedding="none", x_scale=25.0, emb_dim=64, hidden=128):
        super().__init__()
        self.x_embedding, self.x_scale, self.emb_dim = x_embedding, x_scale, emb_dim
        x_inputs = 2 if x_embedding == "none" else 2 * emb_dim
        self.net = nn.Sequential(
            nn.Linear(x_inputs + emb_dim, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, 2),
        )

    def forward(self, x, t):
        if self.x_embedding == "none":
            parts = [x]
        else:
            parts = [sinusoidal(x[:, d], self.emb_dim, self.x_scale) for d in range(2)]
        parts.append(sinusoidal(t, self.emb_dim))
        return self.net(torch.cat([p.to(x.dtype) for p in parts], dim=-1))


def main():
    ckpt, points, steps, out = sys.argv[1:5]
    tensors, meta = read_safetensors(ckpt)
    meta = meta or {}
    model = EpsNet(meta.get("x_embedding", "none"), float(meta.get("x_scale", "25")))
    model.load_state_dict({k: v for k, v in tensors.items() if k.startswith("net.")}, strict=True)
    model = model.double()
    with open(points, "rb") as f:
        x = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(-1, 2)
    with open(steps, "rb") as f:
        t = torch.frombuffer(bytearray(f.read()), dtype=torch.int32)
    with torch.no_grad():
        eps = model(x.to(torch.float64), t).to(torch.float32)
    with open(out, "wb") as f:
        f.write(eps.contiguous().numpy().tobytes())


if __name__ == "__main__":
    main()
