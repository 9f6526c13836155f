#!/usr/bin/python3
"""Writes the fuzzers' seed corpus, tests/fuzz/corpus/<target>/: small valid
files and files broken in one way each, so that every check of the readers is
one mutation away. The checkpoint seeds are the headers of checkpoints the
training tool writes, and the command-line seeds name every flag the tools'
--help lists, so regenerating after a format or flag change picks it up:

    tests/fuzz/make_corpus.py [--bin-dir build/release/bin]
"""
import argparse
import io
import json
import pathlib
import re
import shutil
import struct
import subprocess
import tempfile

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def safetensors(header, data=b"", raw_header=None):
    text = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def f32(*values):
    return struct.pack(f"<{len(values)}f", *values)


def safetensors_seeds():
    w = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
    return {
        "valid_one_tensor": safetensors({"w": w}, f32(1, -2, 0.5, 3e-7)),
        "valid_metadata_two_tensors": safetensors(
            {"__metadata__": {"format": "ddpm-cuda", "steps": "3"},
             "a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
             "b": {"dtype": "F32", "shape": [1, 2], "data_offsets": [12, 20]}},
            f32(1, 2, 3, 4, 5)),
        "valid_empty": safetensors({}),
        "valid_scalar_and_empty_tensor": safetensors(
            {"s": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]},
             "e": {"dtype": "F32", "shape": [0, 5], "data_offsets": [4, 4]}},
            f32(7)),
        "broken_header_length_past_end": struct.pack("<Q", 4096) + b'{"w":{}}',
        "broken_short_file": b"\x08\x00\x00",
        "broken_not_json": safetensors(None, raw_header=b'{"w": [1, 2,'),
        "broken_duplicate_key": safetensors(None, f32(1), raw_header=(
            b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
            b'"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}')),
        "broken_overlap": safetensors(
            {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
             "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, f32(1, 2, 3)),
        "broken_gap": safetensors({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, f32(1, 2)),
        "broken_nan_value": safetensors({"w": w}, f32(1, float("nan"), 0, 0)),
        "broken_f16_dtype": safetensors({"h": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4),
        "broken_shape_size_mismatch": safetensors({"w": dict(w, shape=[3, 2])}, f32(1, 2, 3, 4)),
        "broken_truncated_data": safetensors({"w": w}, f32(1, 2, 3))[:-2],
        "broken_metadata_not_string": safetensors({"__metadata__": {"steps": 3}}),
    }


def checkpoint_seeds(bin_dir):
    """fuzz_checkpoint inputs: the data section's size in floats, then the header."""
    train = bin_dir / "ddpm_cuda_train"
    seeds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in (("valid_checkpoint", []), ("valid_resumable_checkpoint", ["--checkpoint-every", "1"])):
            out = pathlib.Path(tmp) / "ckpt.safetensors"
            subprocess.run([str(train), "--steps", "2", "--batch", "2", "--device", "cpu", "--out", str(out),
                            "--loss-csv", "", "--loss-png", "", "--forward-png", "", "--log-every", "0", *extra],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            blob = out.read_bytes()
            (n,) = struct.unpack("<Q", blob[:8])
            header, floats = blob[8:8 + n], (len(blob) - 8 - n) // 4
            seeds[name] = struct.pack("<I", floats) + header
            if name == "valid_checkpoint":
                # As safetensors.torch.save_file(model.state_dict()) writes it: no metadata.
                parsed = json.loads(header)
                parsed.pop("__metadata__")
                seeds["valid_without_metadata"] = struct.pack("<I", floats) + json.dumps(parsed).encode()
                parsed = json.loads(header)
                parsed["__metadata__"]["schedule"] = "quadratic"
                seeds["broken_schedule"] = struct.pack("<I", floats) + json.dumps(parsed).encode()
                parsed = json.loads(header)
                del parsed["net.6.bias"]
                seeds["broken_missing_tensor"] = struct.pack("<I", floats - 2) + json.dumps(parsed).encode()
    return seeds


def npy(array, version=None):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, version=version)
    return buf.getvalue()


def npy_seeds():
    xy = np.array([[0.5, -1.0], [1e-3, 250.0], [-0.0, 3.4e38]], dtype="<f4")
    valid = npy(xy)
    return {
        "valid_f4": valid,
        "valid_f8": npy(xy[:2].astype("<f8")),
        "valid_empty": npy(np.zeros((0, 2), dtype="<f4")),
        "valid_version_2": npy(xy, version=(2, 0)),
        "valid_version_3": npy(xy, version=(3, 0)),
        "broken_magic": b"\x93NUMPX" + valid[6:],
        "broken_fortran_order": npy(np.asfortranarray(np.zeros((3, 2), dtype="<f4"))),
        "broken_shape_1d": npy(np.zeros(4, dtype="<f4")),
        "broken_int_dtype": npy(np.zeros((2, 2), dtype="<i4")),
        "broken_big_endian": npy(xy.astype(">f4")),
        "broken_truncated": valid[:-3],
        "broken_nan": npy(np.array([[np.nan, 0]], dtype="<f4")),
        "broken_f8_out_of_float_range": npy(np.array([[1e300, 0]], dtype="<f8")),
        "broken_header_length": valid[:8] + b"\xff\xff" + valid[10:],
    }


def csv_seeds():
    return {
        "valid_header": b"x,y\n0.5,-1\n1e-3,2.5e+2\n",
        "valid_no_header_crlf": b"1,2\r\n+3 , -4\r\n",
        "valid_bom_no_final_newline": b"\xef\xbb\xbfx,y\n0,0",
        "valid_header_only": b"x,y\n",
        "broken_three_fields": b"x,y\n1,2,3\n",
        "broken_blank_line_inside": b"x,y\n1,2\n\n3,4\n",
        "broken_inf": b"1,inf\n",
        "broken_out_of_range": b"1e39,0\n",
        "broken_not_number": b"x,y\n1,two\n",
        "broken_empty": b"",
    }


def cli_input(tool, *args):
    return bytes([tool]) + b"\0".join(a.encode() for a in args)


def cli_seeds(bin_dir):
    seeds = {
        "train_every_flag": cli_input(0, "--steps", "10", "--batch", "4", "--lr", "1e-3", "--T", "100",
                                      "--beta-1", "1e-4", "--beta-T", "0.02", "--seed", "7", "--device", "cpu",
                                      "--out", "a.safetensors", "--loss-csv", "", "--log-every=5"),
        "train_beta_order": cli_input(0, "--beta-1=0.5", "--beta-T=0.1"),
        "train_print_schedule": cli_input(0, "--print-schedule", "--T", "3"),
        "train_help": cli_input(0, "--help"),
        "sample_every_flag": cli_input(1, "--n", "100", "--ckpt", "c.safetensors", "--seed", "1", "--device", "auto",
                                       "--out", "s.csv", "--png", "", "--density", "d.png", "--chunk", "16"),
        "sample_bad_integer": cli_input(1, "--n", "010"),
        "eval_every_flag": cli_input(2, "s.npy", "--json", "--out", "r.json", "--seed", "3"),
        "eval_empty_out": cli_input(2, "s.csv", "--out="),
        "eval_no_samples": cli_input(2),
        "nll_every_flag": cli_input(3, "--ckpt", "c.safetensors", "--data", "moons", "--n", "100", "--seed", "2",
                                    "--device", "cpu", "--weights", "auto", "--what", "both", "--variance", "beta",
                                    "--ode", "rk4", "--ode-steps", "8", "--json", "--out", "r.json", "--grid", "16",
                                    "--png", "h.png"),
        "nll_adaptive_tolerances": cli_input(3, "--ode", "adaptive", "--rtol=1e-6", "--atol=1e-7", "--what", "exact"),
        "nll_odd_ode_steps": cli_input(3, "--ode-steps", "7"),
        "nll_bound_with_grid": cli_input(3, "--what", "bound", "--grid", "4"),
    }
    # One seed per flag each tool's --help lists, with a value after it.
    for tool, name in enumerate(("ddpm_cuda_train", "ddpm_cuda_sample", "ddpm_eval", "ddpm_cuda_nll")):
        exe = bin_dir / name
        if not exe.exists():
            continue
        text = subprocess.run([str(exe), "--help"], check=True, capture_output=True, text=True).stdout
        for flag in sorted(set(re.findall(r"--[a-zA-Z][a-zA-Z0-9-]*", text)) - {"--help"}):
            args = ["s.npy"] if name == "ddpm_eval" else []
            seeds[f"{name}_{flag[2:]}"] = cli_input(tool, *args, flag, "1")
    return seeds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin-dir", type=pathlib.Path, default=ROOT / "build/release/bin",
                    help="where ddpm_cuda_train, ddpm_cuda_sample, ddpm_eval and ddpm_cuda_nll are (default: %(default)s)")
    a = ap.parse_args()
    corpora = {
        "fuzz_safetensors": safetensors_seeds(),
        "fuzz_checkpoint": checkpoint_seeds(a.bin_dir),
        "fuzz_npy": npy_seeds(),
        "fuzz_csv": csv_seeds(),
        "fuzz_cli": cli_seeds(a.bin_dir),
    }
    for target, seeds in corpora.items():
        d = HERE / "corpus" / target
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for name, blob in seeds.items():
            (d / name).write_bytes(blob)
        print(f"{d.relative_to(ROOT)}: {len(seeds)} files, {sum(map(len, seeds.values()))} bytes")


if __name__ == "__main__":
    main()
