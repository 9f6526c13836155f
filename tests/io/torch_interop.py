"""PyTorch interoperability of the checkpoints (run by interop_test.cpp).

Needs only torch: the safetensors files are read and written by the small
functions below, which follow the format as safetensors.torch does.

usage: torch_interop.py OURS.safetensors OURS.f32 OUT.safetensors OUT.f32 SEED
  1. Reads OURS.safetensors (written by save_checkpoint), loads it into the
     tutorial's EpsNet with load_state_dict(strict=True), and compares every
     parameter, bit for bit, with the flat buffer OURS.f32 (the layout of
     include/ddpm/params.hpp).
  2. Writes the state_dict of a freshly initialised EpsNet (torch seed SEED)
     to OUT.safetensors with no metadata, as
     safetensors.torch.save_file(model.state_dict(), path) does, and its
     parameters, flattened in state_dict order, to OUT.f32.
"""
import json
import struct
import sys

import torch
from torch import nn


class EpsNet(nn.Module):
    """The noise predictor of the tutorial: (x, emb(t)) -> eps."""

    def __init__(self, emb_dim=64, hidden=128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 + emb_dim, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, 2),
        )

    def forward(self, x, emb):
        return self.net(torch.cat([x, emb], dim=-1))


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", None)
    tensors = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            sys.exit(f"{path}: tensor {name} has dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        tensors[name] = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32).reshape(info["shape"])
    return tensors, metadata


def tensor_bytes(t):
    flat = t.detach().contiguous().flatten().tolist()
    return struct.pack(f"<{len(flat)}f", *flat)


def write_safetensors(path, tensors):
    # Data laid out in name order, as the safetensors package does; the
    # header is padded with spaces to a multiple of 8 bytes.
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        b = tensor_bytes(tensors[name])
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def read_raw(path):
    with open(path, "rb") as f:
        return torch.frombuffer(bytearray(f.read()), dtype=torch.float32)


def main(argv):
    if len(argv) != 6:
        sys.exit(__doc__)
    ours, ours_raw, out, out_raw, seed = argv[1], argv[2], argv[3], argv[4], int(argv[5])

    tensors, metadata = read_safetensors(ours)
    if not metadata or metadata.get("format") != "ddpm-cuda":
        sys.exit(f"{ours}: metadata {metadata!r} lacks format=ddpm-cuda")
    model = EpsNet()
    model.load_state_dict(tensors, strict=True)
    flat = read_raw(ours_raw)
    offset = 0
    for name, p in model.state_dict().items():
        want = flat[offset:offset + p.numel()]
        if not torch.equal(p.flatten().view(torch.int32), want.view(torch.int32)):
            sys.exit(f"{ours}: {name} differs from the flat buffer at offset {offset}")
        offset += p.numel()
    if offset != flat.numel():
        sys.exit(f"{ours}: the model has {offset} parameters, the flat buffer {flat.numel()}")

    torch.manual_seed(seed)
    fresh = EpsNet()
    with torch.no_grad():  # a usable model: one forward pass
        fresh(torch.zeros(4, 2), torch.zeros(4, 64))
    state = fresh.state_dict()
    write_safetensors(out, state)
    with open(out_raw, "wb") as f:
        f.write(b"".join(tensor_bytes(t) for t in state.values()))
    print(f"torch {torch.__version__}: loaded {len(tensors)} tensors, wrote {len(state)}")


if __name__ == "__main__":
    main(sys.argv)
