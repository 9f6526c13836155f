"""numpy interoperability of the sample files (run by interop_test.cpp).

usage:
  numpy_interop.py check FILE.npy FILE.csv RAW.f32
      numpy.load(FILE.npy) must be a C-ordered float32 (N, 2) array equal, bit
      for bit, to the raw little-endian floats in RAW.f32; so must the CSV
      read with numpy.loadtxt.
  numpy_interop.py write DIR SEED
      Writes DIR/f32.npy, DIR/f64.npy (numpy.save) and DIR/np.csv
      (numpy.savetxt) with the raw values beside them as DIR/f32.raw,
      DIR/f64.raw, and a Fortran-ordered DIR/fortran.npy.
"""
import os
import sys

import numpy as np


def check(npy, csv, raw):
    want = np.fromfile(raw, dtype="<f4").reshape(-1, 2)
    with open(npy, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version != (1, 0):
            sys.exit(f"{npy}: .npy version {version}, expected (1, 0)")
    got = np.load(npy, allow_pickle=False)
    if got.dtype != np.dtype("<f4"):
        sys.exit(f"{npy}: dtype {got.dtype}, expected float32")
    if got.shape != want.shape:
        sys.exit(f"{npy}: shape {got.shape}, expected {want.shape}")
    if not got.flags["C_CONTIGUOUS"]:
        sys.exit(f"{npy}: not C-ordered")
    if not np.array_equal(got.view(np.uint32), want.view(np.uint32)):
        bad = np.argwhere(got.view(np.uint32) != want.view(np.uint32))[0]
        sys.exit(f"{npy}: element {tuple(bad)} is {got[tuple(bad)]!r}, expected {want[tuple(bad)]!r}")
    text = np.loadtxt(csv, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2).astype(np.float32)
    if text.shape != want.shape or not np.array_equal(text.view(np.uint32), want.view(np.uint32)):
        sys.exit(f"{csv}: numpy.loadtxt does not give the written values")


def write(directory, seed):
    rng = np.random.default_rng(seed)
    a32 = rng.standard_normal((int(rng.integers(1, 500)), 2)).astype(np.float32)
    np.save(os.path.join(directory, "f32.npy"), a32)
    a32.tofile(os.path.join(directory, "f32.raw"))
    a64 = rng.standard_normal((int(rng.integers(1, 500)), 2)) * 100.0
    np.save(os.path.join(directory, "f64.npy"), a64)
    a64.tofile(os.path.join(directory, "f64.raw"))
    np.savetxt(os.path.join(directory, "np.csv"), a32, fmt="%.9g", delimiter=",", header="x,y", comments="")
    np.save(os.path.join(directory, "fortran.npy"), np.asfortranarray(rng.standard_normal((3, 2))))


def main(argv):
    if len(argv) == 5 and argv[1] == "check":
        check(argv[2], argv[3], argv[4])
    elif len(argv) == 4 and argv[1] == "write":
        write(argv[2], int(argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
