"""Greedy NMS on random boxes: the Numba kernel vs the vectorised NumPy loop (and torchvision).

Usage::

    python benchmarks/bench_nms.py              # 10,000 boxes, IoU threshold 0.5
    python benchmarks/bench_nms.py --n 2000 --threshold 0.7 --repeat 5

Boxes are detector-like: centres uniform over a 1000 x 1000 image, sides
10..100 pixels, scores uniform. All implementations run in the same process on
the same boxes and must keep the same indices. ``torchvision.ops.nms`` is timed
when torchvision is installed (skipped otherwise). The first Numba call
(compilation, or loading the on-disk cache) is reported apart.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from scratchface.detection.nms import nms
from _timing import best_of  # noqa: E402  (benchmarks/ is the script's folder)




def make_boxes(n, rng):
    centre = rng.uniform(0, 1000, (n, 2))
    side = rng.uniform(10, 100, (n, 2))
    boxes = np.concatenate([centre - side / 2, centre + side / 2], axis=1)
    return boxes, rng.random(n)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="number of boxes (default 10000)")
    parser.add_argument("--threshold", type=float, default=0.5, help="IoU threshold (default 0.5)")
    parser.add_argument("--mode", default="union", choices=["union", "min"])
    parser.add_argument("--repeat", type=int, default=5, help="best of this many runs (default 5)")
    args = parser.parse_args(argv)

    boxes, scores = make_boxes(args.n, np.random.default_rng(0))
    t = time.perf_counter()
    nms(boxes[:10], scores[:10], args.threshold, args.mode, impl="numba")
    first_call = time.perf_counter() - t

    t_np, keep_np = best_of(lambda: nms(boxes, scores, args.threshold, args.mode, impl="reference"), args.repeat)
    t_nb, keep_nb = best_of(lambda: nms(boxes, scores, args.threshold, args.mode, impl="numba"), args.repeat)
    if not np.array_equal(keep_np, keep_nb):
        raise SystemExit("Numba and NumPy NMS disagree")
    rows = [("NumPy (vectorised greedy loop)", t_np), ("scratchface Numba", t_nb)]
    try:
        import torch
        import torchvision
    except ImportError:
        print("torchvision not installed: its nms is skipped")
    else:
        tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
        t_tv, keep_tv = best_of(lambda: torchvision.ops.nms(tb, ts, args.threshold), args.repeat)
        if args.mode == "union" and not np.array_equal(np.sort(keep_tv.numpy()), np.sort(keep_nb)):
            print("note: torchvision keeps a different set (tie order or float rounding)")
        rows.append(("torchvision.ops.nms (CPU)", t_tv))

    print(f"{args.n} boxes, threshold {args.threshold}, mode {args.mode!r}: {len(keep_nb)} kept")
    print(f"Numba first call (compile or cache load): {first_call * 1e3:.1f} ms")
    print(f"{'implementation':34s} {'time (ms)':>10s} {'NumPy / this':>13s}")
    for name, t in rows:
        print(f"{name:34s} {t * 1e3:10.2f} {t_np / t:12.1f}x")


if __name__ == "__main__":
    main()
