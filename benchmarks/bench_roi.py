"""ROI max pooling and ROI align, forward + backward: the Numba kernels vs the readable references
(and torchvision when installed).

Usage::

    python benchmarks/bench_roi.py                 # 1 x 64 x 64 x 64 map, 256 ROIs, 7 x 7, stride 4
    python benchmarks/bench_roi.py --rois 512 --channels 128 --repeat 5

The shapes are those of a small two-stage face detector: one feature map of a
256 x 256 image at stride 4 (``spatial_scale=1/4``), ROIs of 10..200 pixels.
All implementations see the same arrays and must agree (float32). The first
Numba call (compilation, or loading the on-disk cache) is reported apart.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from bench_nms import (
    _best,  # the same best-of-n timer (this folder is on sys.path when run as a script)
)

from scratchface.layers.roi import (
    roi_align_backward,
    roi_align_forward,
    roi_max_pool_backward,
    roi_max_pool_forward,
)


def make_rois(n, image_side, rng):
    side = rng.uniform(10, 200, (n, 2))
    corner = rng.uniform(0, image_side - side)
    return np.column_stack([np.zeros(n), corner, corner + side])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rois", type=int, default=256)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--size", type=int, default=64, help="feature map side (default 64)")
    parser.add_argument("--output", type=int, default=7, help="output side (default 7)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, args.channels, args.size, args.size)).astype(np.float32)
    rois = make_rois(args.rois, args.size * 4, rng)
    kw = {"rois": rois, "output_size": args.output, "spatial_scale": 0.25}
    dout = rng.standard_normal((args.rois, args.channels, args.output, args.output)).astype(np.float32)
    layers = {"roi_max_pool": (roi_max_pool_forward, roi_max_pool_backward),
              "roi_align": (roi_align_forward, roi_align_backward)}

    print(f"x {x.shape} float32, {args.rois} ROIs -> {args.output}x{args.output}, spatial_scale 1/4, "
          f"best of {args.repeat}")
    print(f"{'layer':<14}{'implementation':<26}{'forward ms':>12}{'backward ms':>13}{'vs numba':>10}")
    for name, (forward, backward) in layers.items():
        t = time.perf_counter()
        _, cache = forward(x, impl="numba", **kw)
        backward(dout, cache)
        compile_s = time.perf_counter() - t
        rows, outs = {}, {}
        for impl in ("numba", "reference"):
            rows[impl], outs[impl] = _time_ours(forward, backward, x, dout, dict(kw, impl=impl), args.repeat)
        np.testing.assert_allclose(outs["numba"][0], outs["reference"][0], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(outs["numba"][1], outs["reference"][1], rtol=1e-4, atol=1e-4)
        theirs = _time_torchvision(name, x, rois, dout, args.output, args.repeat, outs["numba"][0])
        if theirs is not None:
            rows["torchvision"] = theirs
        base = sum(rows["numba"])
        for impl, (t_f, t_b) in rows.items():
            print(f"{name:<14}{impl:<26}{t_f * 1e3:>12.2f}{t_b * 1e3:>13.2f}{(t_f + t_b) / base:>9.1f}x")
        print(f"{name:<14}{'(first numba call)':<26}{compile_s:>12.2f} s (compile or cache load, fwd + bwd)")


def _time_ours(forward, backward, x, dout, kw, repeat):
    t_f, (out, cache) = _best(lambda: forward(x, **kw), repeat)
    t_b, dx = _best(lambda: backward(dout, cache), repeat)
    return (t_f, t_b), (out, dx)


def _time_torchvision(name, x, rois, dout, output, repeat, expected):
    """(forward s, backward s) of torchvision.ops, or None without torchvision."""
    try:
        import torch
        import torchvision.ops as tv
    except ImportError:
        return None
    xt = torch.tensor(x, requires_grad=True)
    rt = torch.tensor(rois, dtype=torch.float32)
    if name == "roi_max_pool":
        def op():
            return tv.roi_pool(xt, rt, output, 0.25)
    else:
        def op():
            return tv.roi_align(xt, rt, output, 0.25, sampling_ratio=2, aligned=True)
    t_f, out = _best(op, repeat)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-4, atol=1e-4)
    t_fb, _ = _best(lambda: torch.autograd.grad(op(), xt, torch.tensor(dout))[0], repeat)
    return t_f, t_fb - t_f

if __name__ == "__main__":
    main()
