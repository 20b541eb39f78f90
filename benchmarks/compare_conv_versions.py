"""Before / after for a change to the convolution kernels: this checkout's against another's, in one process.

Loads ``scratchface/kernels/conv.py`` of another checkout (``git worktree add /tmp/old HEAD~1``)
beside this one and calls the two in turn on the NN2 (batch 32, 96x96 input) and MTCNN (256 crops)
layers of ``bench_conv.py``, forward then backward, keeping the minimum of each after a warm-up.
Run in turn, both see the same machine: on a shared machine whose speed drifts by 20 % between
minutes, separate runs cannot show a 10 % change. Prints old / new time (> 1: the change is faster)::

    python benchmarks/compare_conv_versions.py /tmp/old [--threads 2] [--repeats 6] [--only 3a]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from _timing import best_in_turn  # benchmarks/ is the script's folder

SHAPES = {  # name: (N, C, H, F, K, stride, padding), square inputs and kernels
    "conv1 7x7/2": (32, 3, 96, 64, 7, 2, 3), "3a 5x5": (32, 16, 12, 32, 5, 1, 2),
    "3b 5x5": (32, 32, 12, 64, 5, 1, 2), "3a 3x3": (32, 96, 12, 128, 3, 1, 1),
    "conv2 3x3": (32, 64, 24, 192, 3, 1, 1), "2 1x1": (32, 64, 24, 64, 1, 1, 0),
    "3a 1x1": (32, 192, 12, 64, 1, 1, 0), "4a 1x1": (32, 640, 6, 256, 1, 1, 0),
    "5a 1x1": (32, 1024, 3, 384, 1, 1, 0),
    "4a 3x3": (32, 96, 6, 192, 3, 1, 1), "4a 5x5": (32, 32, 6, 64, 5, 1, 2),
    "3c 3x3/2": (32, 128, 12, 256, 3, 2, 1), "3c 5x5/2": (32, 32, 12, 64, 5, 2, 2),
    "4e 3x3/2": (32, 160, 6, 256, 3, 2, 1), "4e 5x5/2": (32, 64, 6, 128, 5, 2, 2), "5a 3x3": (32, 192, 3, 384, 3, 1, 1),
    "R-Net conv1": (256, 3, 24, 28, 3, 1, 0), "R-Net conv2": (256, 28, 11, 48, 3, 1, 0),
    "O-Net conv2": (256, 32, 23, 64, 3, 1, 0), "O-Net conv3": (256, 64, 10, 64, 3, 1, 0),
    "P-Net conv1": (1, 3, 300, 10, 3, 1, 0), "P-Net conv2": (1, 10, 149, 16, 3, 1, 0),
    "P-Net conv3": (1, 16, 147, 32, 3, 1, 0),                    # a large pyramid level (direct kernel)
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", help="root of the other checkout (the 'old' column)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import numpy as np

    from scratchface.kernels import conv as new
    package = Path(args.other) / "scratchface"                # the other checkout's package under another name:
    spec = importlib.util.spec_from_file_location(           # its relative imports resolve inside it
        "scratchface_other", package / "__init__.py", submodule_search_locations=[str(package)])
    other = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = other      # registered, so that Numba's cache of its parallel kernels reloads
    spec.loader.exec_module(other)
    old = importlib.import_module("scratchface_other.kernels.conv")
    rng = np.random.default_rng(0)
    print(f"threads {args.threads}; min of {args.repeats} after a warm-up; old = {args.other}")
    for name, (n, c, h, f, k, s, p) in SHAPES.items():
        if args.only not in name:
            continue
        x = rng.standard_normal((n, c, h, h), dtype=np.float32)
        w = rng.standard_normal((f, c, k, k), dtype=np.float32)
        b = rng.standard_normal(f, dtype=np.float32)
        o = (h + 2 * p - k) // s + 1
        dout = rng.standard_normal((n, f, o, o), dtype=np.float32)
        pad = (p, p, p, p)
        of, ob, nf, nb = best_in_turn([f for module in (old, new) for f in (
            lambda m=module: m.conv2d_output_numba(x, w, b, (s, s), pad),
            lambda m=module: m.conv2d_grads_numba(dout, x, w, True, (s, s), pad))], args.repeats)
        print(f"{name:12s} fwd {of * 1e3:7.2f} -> {nf * 1e3:7.2f} ms ({of / nf:.2f}x)   "
              f"bwd {ob * 1e3:7.2f} -> {nb * 1e3:7.2f} ms ({ob / nb:.2f}x)   fwd+bwd {(of + ob) / (nf + nb):.2f}x")


if __name__ == "__main__":
    main()
