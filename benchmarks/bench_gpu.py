"""GPU paths: scratchface (numba.cuda kernels + cuBLAS through CuPy) vs PyTorch CUDA / torchvision.

Usage::

    python benchmarks/bench_gpu.py                       # everything below
    python benchmarks/bench_gpu.py --only conv --repeat 20
    python benchmarks/bench_gpu.py --only nms,distances --tf32

What is timed (median of ``--repeat`` runs after one warm-up, the device
synchronised around each run; the first call, which includes Numba's JIT
compilation of the kernels, is reported apart):

* ``conv``: forward + backward (dx, dw, db) of every convolution of FaceNet NN2
  (Schroff et al. 2015, table 2) at a 96x96 input, batch 32, float32, summed per
  module, against ``torch.nn.functional.conv2d`` + autograd (cuDNN,
  ``cudnn.benchmark=True``). TF32 is off on both sides unless ``--tf32`` (then
  torch may use TF32 tensor cores; CuPy only with ``CUPY_TF32=1`` in the
  environment).
* ``nms``: 10,000 and 100,000 detector-like boxes (float32) at IoU 0.5,
  against ``torchvision.ops.nms`` on CUDA tensors; the kept indices are compared.
* ``distances``: the 100,000 x 10,000 matrix of squared Euclidean distances of
  128-d float32 embeddings, against ``torch.cdist`` (Euclidean, with its square
  root) and the same formula in torch; then the 5 nearest gallery rows of each
  query, against ``torch.cdist`` + ``torch.topk`` on the same blocks of rows.

Targets from issue 9: conv at least 0.8x torch's speed, NMS at least
torchvision's. Without a GPU (or CuPy, or numba.cuda) the script says so and
exits 0.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

# FaceNet NN2 at 96x96: (module, name, in_channels, in_size, out_channels, kernel, stride)
# 'same' padding k // 2; the spatial sizes follow from 96 -> conv1/2 -> 48 -> pool -> 24 -> pool -> 12 ...
NN2_96 = [("conv1", "7x7/2", 3, 96, 64, 7, 2),
          ("inception 2", "1x1", 64, 24, 64, 1, 1), ("inception 2", "3x3", 64, 24, 192, 3, 1)]
for _name, _cin, _hw, _b1, _r3, _c3, _r5, _c5, _proj in [
        ("3a", 192, 12, 64, 96, 128, 16, 32, 32), ("3b", 256, 12, 64, 96, 128, 32, 64, 64),
        ("4a", 640, 6, 256, 96, 192, 32, 64, 128), ("4b", 640, 6, 224, 112, 224, 32, 64, 128),
        ("4c", 640, 6, 192, 128, 256, 32, 64, 128), ("4d", 640, 6, 160, 144, 288, 32, 64, 128),
        ("5a", 1024, 3, 384, 192, 384, 48, 128, 128), ("5b", 1024, 3, 384, 192, 384, 48, 128, 128)]:
    _m = f"inception {_name}"
    NN2_96 += [(_m, "1x1", _cin, _hw, _b1, 1, 1), (_m, "3x3 reduce", _cin, _hw, _r3, 1, 1),
               (_m, "3x3", _r3, _hw, _c3, 3, 1), (_m, "5x5 reduce", _cin, _hw, _r5, 1, 1),
               (_m, "5x5", _r5, _hw, _c5, 5, 1), (_m, "pool proj", _cin, _hw, _proj, 1, 1)]
    if _name == "3b":      # 3c: stride-2 module, no 1x1 branch, no projection
        NN2_96 += [("inception 3c", "3x3 reduce", 320, 12, 128, 1, 1), ("inception 3c", "3x3/2", 128, 12, 256, 3, 2),
                   ("inception 3c", "5x5 reduce", 320, 12, 32, 1, 1), ("inception 3c", "5x5/2", 32, 12, 64, 5, 2)]
    if _name == "4d":      # 4e: stride 2
        NN2_96 += [("inception 4e", "3x3 reduce", 640, 6, 160, 1, 1), ("inception 4e", "3x3/2", 160, 6, 256, 3, 2),
                   ("inception 4e", "5x5 reduce", 640, 6, 64, 1, 1), ("inception 4e", "5x5/2", 64, 6, 128, 5, 2)]
_ORDER = ["conv1", "inception 2", "inception 3a", "inception 3b", "inception 3c", "inception 4a", "inception 4b",
          "inception 4c", "inception 4d", "inception 4e", "inception 5a", "inception 5b"]
NN2_96.sort(key=lambda row: _ORDER.index(row[0]))


def _no_gpu(reason):
    print(f"bench_gpu: {reason}; nothing to benchmark (this needs an NVIDIA GPU with CuPy and numba.cuda: "
          "pip install 'scratchface[gpu]').")
    sys.exit(0)


def _setup():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        _no_gpu("NUMBA_ENABLE_CUDASIM=1 runs kernels in the simulator, which is not a benchmark")
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() < 1:
            _no_gpu("CuPy sees no CUDA device")
    except Exception as exc:  # ImportError, or a CUDA driver error
        _no_gpu(f"CuPy is not usable ({type(exc).__name__}: {str(exc)[:120]})")
    try:
        from numba import cuda
        if not cuda.is_available():
            _no_gpu("numba.cuda sees no GPU (pip install 'numba-cuda[cu12]')")
    except Exception as exc:
        _no_gpu(f"numba.cuda is not usable ({type(exc).__name__}: {str(exc)[:120]})")
    try:
        import torch
        torch_ok = torch.cuda.is_available()
    except Exception:
        torch, torch_ok = None, False
    return cupy, (torch if torch_ok else None)


def _timer(cupy, repeat):
    def sync():
        cupy.cuda.Device().synchronize()    # the whole device: CuPy's, Numba's and torch's work

    def measure(f):
        sync()
        t = time.perf_counter()
        f()
        sync()
        first = time.perf_counter() - t
        times = []
        for _ in range(repeat):
            sync()
            t = time.perf_counter()
            f()
            sync()
            times.append(time.perf_counter() - t)
        return first, statistics.median(times)
    return measure


def _row(name, ours, theirs, note=""):
    ratio = f"{theirs / ours:6.2f}x" if theirs else "     -"
    t = f"{theirs * 1e3:10.2f}" if theirs else "         -"
    print(f"{name:<30} {ours * 1e3:10.2f} {t} {ratio}  {note}")


def _header(title, peer):
    print(f"\n{title}\n{'':<30} {'scratchface':>10} {peer:>10} {'speed':>7}  (ms; speed = peer time / ours)")


# ----------------------------------------------------------------------------- conv

def bench_conv(cupy, torch, measure, batch, tf32):
    from scratchface.kernels.cuda.conv import conv2d_grads_cuda, conv2d_output_cuda

    if torch is not None:
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
    rng = np.random.default_rng(0)
    per_module, compile_time = {}, 0.0
    for module, _name, cin, hw, cout, k, stride in NN2_96:
        pad = k // 2
        x = cupy.asarray(rng.standard_normal((batch, cin, hw, hw), dtype=np.float32))
        w = cupy.asarray(rng.standard_normal((cout, cin, k, k), dtype=np.float32) * 0.05)
        b = cupy.asarray(rng.standard_normal(cout, dtype=np.float32))
        out = conv2d_output_cuda(x, w, b, stride, pad)
        dout = cupy.asarray(rng.standard_normal(out.shape, dtype=np.float32))

        def ours():
            conv2d_output_cuda(x, w, b, stride, pad)
            conv2d_grads_cuda(dout, x, w, True, stride, pad)
        first, t_ours = measure(ours)
        compile_time += max(first - t_ours, 0.0)
        t_torch = 0.0
        if torch is not None:
            xt, wt, bt, dt = (torch.as_tensor(a, device="cuda") for a in (x, w, b, dout))
            xt.requires_grad_(True)
            wt.requires_grad_(True)
            bt.requires_grad_(True)

            def theirs():
                o = torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=pad)
                torch.autograd.grad(o, (xt, wt, bt), dt)
            t_torch = measure(theirs)[1]
            with torch.no_grad():
                ref = torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=pad)
            err = float(cupy.abs(out - cupy.asarray(ref)).max() / cupy.abs(cupy.asarray(ref)).max())
            if err > (1e-2 if tf32 else 1e-4):
                print(f"  WARNING {module} {_name}: max relative difference from torch {err:.1e}")
        o, t = per_module.get(module, (0.0, 0.0))
        per_module[module] = (o + t_ours, t + t_torch)
    _header(f"conv2d forward + backward, FaceNet NN2 at 96x96, batch {batch}, float32"
            f"{' (TF32 allowed)' if tf32 else ''}", "torch")
    for module in _ORDER:
        _row(module, *per_module[module])
    total = tuple(sum(v[i] for v in per_module.values()) for i in range(2))
    _row("total (all convolutions)", *total, "target: speed >= 0.8x")
    print(f"first-call overhead (Numba JIT of im2col / col2im, cuBLAS handles): {compile_time:.2f} s")


# ----------------------------------------------------------------------------- NMS

def _detector_boxes(rng, n):
    """Boxes clustered around objects, as a detector's raw output (many overlaps)."""
    n_objects = max(1, n // 50)
    extent = 100.0 * np.sqrt(n_objects)
    centres = rng.random((n_objects, 2)) * extent
    sizes = 20 + rng.random((n_objects, 1)) * 100
    which = rng.integers(0, n_objects, n)
    c = centres[which] + rng.standard_normal((n, 2)) * sizes[which] * 0.15
    wh = sizes[which] * (0.8 + 0.4 * rng.random((n, 2)))
    boxes = np.concatenate([c - wh / 2, c + wh / 2], axis=1).astype(np.float32)
    return boxes, rng.random(n).astype(np.float32)


def bench_nms(cupy, torch, measure):
    from scratchface.kernels.cuda.nms import nms_cuda

    try:
        import torchvision
    except Exception:
        torchvision = None
    rng = np.random.default_rng(0)
    _header("NMS, IoU 0.5, float32 boxes", "torchvision")
    for n in (10_000, 100_000):
        boxes, scores = _detector_boxes(rng, n)
        bd, sd = cupy.asarray(boxes), cupy.asarray(scores)
        first, t_ours = measure(lambda: nms_cuda(bd, sd, 0.5))
        kept = nms_cuda(bd, sd, 0.5).get()
        t_tv, note = 0.0, f"kept {kept.size}; first call {first:.2f} s"
        if torchvision is not None and torch is not None:
            bt, st = torch.as_tensor(boxes, device="cuda"), torch.as_tensor(scores, device="cuda")
            t_tv = measure(lambda: torchvision.ops.nms(bt, st, 0.5))[1]
            ref = torchvision.ops.nms(bt, st, 0.5).cpu().numpy()
            note += "; same as torchvision" if np.array_equal(ref, kept) else \
                f"; torchvision keeps {ref.size} ({np.setxor1d(ref, kept).size} differ: float32 vs float64 IoU)"
        _row(f"nms {n:,} boxes", t_ours, t_tv, target_note(t_ours, t_tv, 1.0) + "; " + note)
        if n == 10_000:
            t_host = measure(lambda: nms_cuda(bd, sd, 0.5, reduce="host"))[1]
            _row(f"nms {n:,} boxes, reduce='host'", t_host, t_tv, "mask copied to the CPU (torchvision's old way)")


def target_note(ours, theirs, target):
    if not theirs:
        return "no peer"
    return "meets target" if theirs / ours >= target else f"below target {target}x"


# ----------------------------------------------------------------------------- distances

def bench_distances(cupy, torch, measure, n, m, d, k):
    from scratchface.kernels.cuda.distances import nearest_neighbors_cuda, pairwise_distances_cuda

    rng = np.random.default_rng(0)
    a = cupy.asarray(rng.standard_normal((n, d), dtype=np.float32))
    b = cupy.asarray(rng.standard_normal((m, d), dtype=np.float32))
    _header(f"distances {n:,} x {m:,} x {d}, float32; top-{k}", "torch")
    first, t_ours = measure(lambda: pairwise_distances_cuda(a, b))
    ours = pairwise_distances_cuda(a, b)
    if torch is not None:
        at, bt = torch.as_tensor(a, device="cuda"), torch.as_tensor(b, device="cuda")
        t_cdist = measure(lambda: torch.cdist(at, bt))[1]

        def formula():
            a2, b2 = (at * at).sum(1), (bt * bt).sum(1)
            return torch.addmm(a2[:, None] + b2[None, :], at, bt.T, alpha=-2).clamp_(min=0)
        t_formula = measure(formula)[1]
        check = float(cupy.abs(ours[:1000] - cupy.asarray(formula()[:1000])).max())
        _row("squared Euclidean matrix", t_ours, t_cdist, f"vs torch.cdist; first call {first:.2f} s")
        _row("squared Euclidean matrix", t_ours, t_formula, f"vs the formula in torch; max diff {check:.1e}")
    else:
        _row("squared Euclidean matrix", t_ours, 0.0, f"first call {first:.2f} s")
    del ours
    block = 8192
    first, t_ours = measure(lambda: nearest_neighbors_cuda(a, b, k=k, block_size=block))
    if torch is not None:
        def torch_topk():
            for s in range(0, n, block):
                torch.cdist(at[s:s + block], bt).topk(k, dim=1, largest=False)
        _row(f"top-{k} neighbours", t_ours, measure(torch_topk)[1],
             f"blocks of {block} rows; vs cdist + topk; first call {first:.2f} s")
    else:
        _row(f"top-{k} neighbours", t_ours, 0.0, f"first call {first:.2f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="conv,nms,distances", help="comma-separated: conv, nms, distances")
    parser.add_argument("--repeat", type=int, default=10, help="median of this many runs (default 10)")
    parser.add_argument("--batch", type=int, default=32, help="conv batch size (default 32)")
    parser.add_argument("--tf32", action="store_true", help="let torch use TF32 (its default for cuDNN)")
    parser.add_argument("--n", type=int, default=100_000, help="distance queries (default 100000)")
    parser.add_argument("--m", type=int, default=10_000, help="distance gallery rows (default 10000)")
    args = parser.parse_args(argv)
    cupy, torch = _setup()
    print(f"device: {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()}; CuPy {cupy.__version__}; "
          + (f"torch {torch.__version__}" if torch is not None else "torch CUDA not available: no peer timings"))
    measure = _timer(cupy, args.repeat)
    only = {s.strip() for s in args.only.split(",")}
    if "conv" in only:
        bench_conv(cupy, torch, measure, args.batch, args.tf32)
    if "nms" in only:
        bench_nms(cupy, torch, measure)
    if "distances" in only:
        bench_distances(cupy, torch, measure, args.n, args.m, 128, 5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
