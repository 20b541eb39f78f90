"""Benchmark: conv2d and pooling forward + backward on FaceNet NN2 (96x96, batch 32) and MTCNN shapes.

Compares, in the same run and with the same number of threads:

* ``scratchface``: the Numba kernels (``impl='numba'``: the micro-kernel, Winograd, per-image 1x1
  GEMMs or im2col + GEMM per thread, by shape; one thread pool);
* ``numpy``: a plain NumPy im2col (``sliding_window_view`` + ``tensordot``; col2im with one
  strided add per kernel offset), written below;
* ``torch``: ``torch.nn.functional`` on the CPU with autograd (when torch is installed).

Times are the minimum over repeats, each implementation timed in its own block after a
warm-up call (interleaving them lets one library's spinning thread pool slow the next one down)
and after half a second idle (``IDLE_S``: the OpenMP threads of the block before spin on for a while
after its last call; without the pause, every block of ours ran right after one of torch's and NN2's
6x6 layers read 0.56x-0.83x of torch, with it 0.75x-1.02x, eighth #16 pass);
``--rounds R`` times the blocks R times in turn, the minimum over all.
GFLOP/s = 2 * multiply-adds / time; the backward pass
computes dx and dw (twice the forward's multiply-adds) and db; %peak = our GFLOP/s over the
``np.matmul`` 2048^2 GEMM measured at the start. MTCNN R-Net / O-Net layers run on 256 crops;
P-Net's convolutions run forward only over the pyramid of a 375x500 photo. Compile time (Numba's
first call) is reported apart. Run::

    python benchmarks/bench_conv.py [--threads 2] [--repeats 5] [--rounds 1] [--batch 32] [--no-numpy] [--only 3a]
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def _parse():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="threads for Numba, BLAS and torch (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats, the minimum is kept (default 5)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="blocks of repeats per implementation, in turn (default 1; this machine's speed drifts"
                             " 2x within minutes: 3 rounds give each library the same minutes)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--no-numpy", action="store_true", help="skip the plain NumPy im2col column")
    parser.add_argument("--only", default="", help="run only the layers whose name contains this")
    parser.add_argument("--no-pool", action="store_true", help="skip the pooling table")
    return parser.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:  # thread counts must be set before NumPy / Numba start their pools
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from scratchface.layers.conv import conv2d_backward, conv2d_forward  # noqa: E402
from scratchface.layers.pooling import l2_pool2d_backward, l2_pool2d_forward, max_pool2d_backward, max_pool2d_forward  # noqa: E402

# name, (C, H, W), (F, KH, KW), stride, padding, batch (None: --batch) -- FaceNet NN2 (Schroff et al. 2015,
# table 2, scratchface.models.facenet.NN2_TABLE) at 96x96: every distinct convolution shape; MTCNN R-Net / O-Net
# (scratchface.models.mtcnn_nets) on 256 crops
CONV_SHAPES = [
    ("conv1 7x7/2 3->64", (3, 96, 96), (64, 7, 7), 2, 3, None),
    ("2 1x1 64->64", (64, 24, 24), (64, 1, 1), 1, 0, None),
    ("conv2 3x3 64->192", (64, 24, 24), (192, 3, 3), 1, 1, None),
    ("3a 1x1 192->64", (192, 12, 12), (64, 1, 1), 1, 0, None),
    ("3a 3x3 96->128", (96, 12, 12), (128, 3, 3), 1, 1, None),
    ("3a 5x5 16->32", (16, 12, 12), (32, 5, 5), 1, 2, None),
    ("3b 5x5 32->64", (32, 12, 12), (64, 5, 5), 1, 2, None),
    ("3b 1x1 256->96", (256, 12, 12), (96, 1, 1), 1, 0, None),
    ("3c 3x3/2 128->256", (128, 12, 12), (256, 3, 3), 2, 1, None),
    ("3c 5x5/2 32->64", (32, 12, 12), (64, 5, 5), 2, 2, None),
    ("4a 1x1 640->256", (640, 6, 6), (256, 1, 1), 1, 0, None),
    ("4a 3x3 96->192", (96, 6, 6), (192, 3, 3), 1, 1, None),
    ("4a 5x5 32->64", (32, 6, 6), (64, 5, 5), 1, 2, None),
    ("4d 3x3 144->288", (144, 6, 6), (288, 3, 3), 1, 1, None),
    ("4e 3x3/2 160->256", (160, 6, 6), (256, 3, 3), 2, 1, None),
    ("4e 5x5/2 64->128", (64, 6, 6), (128, 5, 5), 2, 2, None),
    ("5a 1x1 1024->384", (1024, 3, 3), (384, 1, 1), 1, 0, None),
    ("5a 3x3 192->384", (192, 3, 3), (384, 3, 3), 1, 1, None),
    ("5a 5x5 48->128", (48, 3, 3), (128, 5, 5), 1, 2, None),
    ("R-Net conv1 3->28", (3, 24, 24), (28, 3, 3), 1, 0, 256),
    ("R-Net conv2 28->48", (28, 11, 11), (48, 3, 3), 1, 0, 256),
    ("R-Net conv3 2x2 48->64", (48, 4, 4), (64, 2, 2), 1, 0, 256),
    ("O-Net conv1 3->32", (3, 48, 48), (32, 3, 3), 1, 0, 256),
    ("O-Net conv2 32->64", (32, 23, 23), (64, 3, 3), 1, 0, 256),
    ("O-Net conv3 64->64", (64, 10, 10), (64, 3, 3), 1, 0, 256),
    ("O-Net conv4 2x2 64->128", (64, 4, 4), (128, 2, 2), 1, 0, 256),
]
# P-Net (forward only) over the image pyramid of a 500x375 photo, minimum face 20 px, factor 0.709
IDLE_S = 0.5   # seconds between two blocks: the last one's thread pool (OpenMP) spins for a while after its work
PNET_CONVS = [((3, 3), 10), ((3, 3), 16), ((3, 3), 32), ((1, 1), 2), ((1, 1), 4)]   # (kernel, filters)
POOL_SHAPES = [
    ("max pool 3x3/2", "max", (192, 24, 24), 3, 2, 0),
    ("L2 pool 3x3/1 p1", "l2", (192, 24, 24), 3, 1, 1),
]


# ---------------------------------------------------------------- plain NumPy im2col peer
def _ms(seconds):
    """``12ms``, or ``-`` for a column that was not run."""
    return f"{seconds * 1e3:.0f}ms" if np.isfinite(seconds) else "-"


def numpy_conv_forward(x, w, b, stride, pad):
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    f, c, kh, kw = w.shape
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    out = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3]))          # (N, OH, OW, F)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2)) + b[None, :, None, None], (xp, win)


def numpy_conv_backward(dout, cache, x, w, stride, pad):
    xp, win = cache
    f, c, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    dw = np.tensordot(dout, win, axes=([0, 2, 3], [0, 2, 3]))       # (F, C, KH, KW)
    db = dout.sum(axis=(0, 2, 3))
    dxp = np.zeros_like(xp)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += np.einsum(
                "nfhw,fc->nchw", dout, w[:, :, i, j], optimize=True)
    h, wd = x.shape[2:]
    return dxp[:, :, pad:pad + h, pad:pad + wd], dw, db


def gemm_peak(threads, size=2048, repeats=5):
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    b = a.T.copy()
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def pyramid_sizes(height=375, width=500, min_face=20, factor=0.709):
    """The P-Net input sizes of MTCNN's pyramid (scale 12/min_face, times factor while the short side >= 12)."""
    scale, sizes = 12 / min_face, []
    while min(height, width) * scale >= 12:
        sizes.append((int(np.ceil(height * scale)), int(np.ceil(width * scale))))
        scale *= factor
    return sizes


def pnet_pyramid(args, rng, functional):
    """P-Net's convolutions, forward only, over every level of the pyramid (one image per level)."""
    import torch  # only called when torch is installed

    levels = []
    for h, wd in pyramid_sizes():
        c, shapes = 3, []
        for level, ((kh, kw), f) in enumerate(PNET_CONVS):
            shapes.append((c, h, wd, f, kh, kw))
            h, wd = h - kh + 1, wd - kw + 1
            if level == 0:                                # max pool 2x2/2, ceil mode
                h, wd = -(-h // 2), -(-wd // 2)
            c = f if level < 2 else 32
        levels.append([(rng.standard_normal((1, c_, h_, w_)).astype(np.float32),
                        rng.standard_normal((f_, c_, kh_, kw_)).astype(np.float32),
                        rng.standard_normal(f_).astype(np.float32)) for c_, h_, w_, f_, kh_, kw_ in shapes])
    macs = sum(x.shape[2] * x.shape[3] * w.size for level in levels for x, w, _ in level)   # ~ (stride 1, no pad)

    def ours():
        for level in levels:
            for x, w, b in level:
                conv2d_forward(x, w, b, impl="numba")

    tensors = [[tuple(torch.from_numpy(a) for a in t) for t in level] for level in levels]

    def peer():
        with torch.no_grad():
            for level in tensors:
                for x, w, b in level:
                    functional.conv2d(x, w, b)
    times = {}
    for _ in range(args.rounds):
        for key, fn in (("ours", ours), ("torch", peer if functional is not None else None)):
            if fn is None:
                continue
            time.sleep(IDLE_S)
            fn()
            times[key] = min([times.get(key, np.inf)] + [_timed(fn) for _ in range(args.repeats)])
    ratio = times["torch"] / times["ours"] if "torch" in times else float("nan")
    print(f"\nP-Net convolutions, forward, {len(levels)} pyramid levels of a 375x500 photo (~{macs / 1e9:.2f} GMAC): "
          f"ours {times['ours'] * 1e3:.1f} ms, torch {times.get('torch', float('nan')) * 1e3:.1f} ms, "
          f"ours/torch {ratio:.2f}x", flush=True)


def _time_blocks(runners, times, args):
    """``times[key] = [fastest forward, fastest backward]`` of each runner (returning both), timed in blocks of
    ``args.repeats`` after a warm-up call, one block per implementation (no thread pool of one, spinning after
    its last call, slows down the other), the blocks ``args.rounds`` times in turn (a slow minute of the
    machine meets each)."""
    for _ in range(args.rounds):
        for key, fn in runners.items():
            if fn is None:
                continue
            time.sleep(IDLE_S)                          # the other pool's threads stop spinning
            fn()
            for _ in range(args.repeats):
                fwd_t, bwd_t = fn()
                times[key][0] = min(times[key][0], fwd_t)
                times[key][1] = min(times[key][1], bwd_t)


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(args):
    try:
        import torch
        torch.set_num_threads(args.threads)
        functional = torch.nn.functional
    except ImportError:
        torch = None
    import numba
    print(f"threads: numba {numba.get_num_threads()}, torch {torch.get_num_threads() if torch else '-'}; "
          f"batch {args.batch}; float32; min of {args.repeats} repeats per implementation")
    peak = gemm_peak(args.threads)
    print(f"GEMM peak (np.matmul float32 2048^2): {peak:.1f} GFLOP/s")
    rng = np.random.default_rng(0)

    # compile time, apart: the first call of each kernel, on tiny float32 inputs
    start = time.perf_counter()
    xs = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    for k, s, p in ((3, 2, 1), (1, 1, 0)):
        ws = rng.standard_normal((4, 3, k, k)).astype(np.float32)
        out, cache = conv2d_forward(xs, ws, np.zeros(4, np.float32), stride=s, padding=p, impl="numba")
        conv2d_backward(out, cache)
    for fwd, bwd in ((max_pool2d_forward, max_pool2d_backward), (l2_pool2d_forward, l2_pool2d_backward)):
        out, cache = fwd(xs, kernel_size=3, stride=1, padding=1, impl="numba")
        bwd(out, cache)
    print(f"Numba compile + first call (or load from cache): {time.perf_counter() - start:.2f} s\n")

    header = (f"{'layer':<24}{'N':>4}{'GMAC':>6} | {'ours fwd':>9}{'bwd':>8}{'GF/s':>7}{'%peak':>6} | {'numpy':>8}"
              f"{'GF/s':>7} | {'torch fwd':>9}{'bwd':>8}{'GF/s':>7} | {'ours/torch':>10}")
    print(header)
    print("-" * len(header))
    for name, (c, h, wd), (f, kh, kw), stride, pad, batch in CONV_SHAPES:
        if args.only not in name:
            continue
        batch = batch or args.batch
        x = rng.standard_normal((batch, c, h, wd)).astype(np.float32)
        w = (rng.standard_normal((f, c, kh, kw)) / np.sqrt(c * kh * kw)).astype(np.float32)
        b = rng.standard_normal(f).astype(np.float32)
        oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
        macs = batch * f * oh * ow * c * kh * kw
        dout = rng.standard_normal((batch, f, oh, ow)).astype(np.float32)
        times = {k: [np.inf, np.inf] for k in ("ours", "numpy", "torch")}

        def ours():
            t0 = time.perf_counter()
            _, cache = conv2d_forward(x, w, b, stride=stride, padding=pad, impl="numba")
            t1 = time.perf_counter()
            conv2d_backward(dout, cache)
            return t1 - t0, time.perf_counter() - t1

        def plain():
            t0 = time.perf_counter()
            _, cache = numpy_conv_forward(x, w, b, stride, pad)
            t1 = time.perf_counter()
            numpy_conv_backward(dout, cache, x, w, stride, pad)
            return t1 - t0, time.perf_counter() - t1

        if torch is not None:
            tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
            tdout = torch.tensor(dout)

            def peer():
                t0 = time.perf_counter()
                out = functional.conv2d(tx, tw, tb, stride=stride, padding=pad)
                t1 = time.perf_counter()
                torch.autograd.grad(out, (tx, tw, tb), tdout)
                return t1 - t0, time.perf_counter() - t1
        runners = {"ours": ours, "numpy": None if args.no_numpy else plain,
                   "torch": peer if torch is not None else None}
        for fn in runners.values():   # warm-up
            if fn is not None:
                fn()
        _time_blocks(runners, times, args)

        def gfs(key):
            total = sum(times[key])
            return 3 * 2 * macs / total / 1e9 if np.isfinite(total) else float("nan")
        ratio = sum(times["torch"]) / sum(times["ours"]) if torch is not None else float("nan")
        print(f"{name:<24}{batch:>4}{macs / 1e9:>6.2f} | {times['ours'][0] * 1e3:>7.1f}ms"
              f"{times['ours'][1] * 1e3:>6.1f}ms{gfs('ours'):>7.1f}{100 * gfs('ours') / peak:>5.0f}% | "
              f"{_ms(sum(times['numpy'])):>8}{gfs('numpy'):>7.1f} | "
              f"{times['torch'][0] * 1e3:>7.1f}ms{times['torch'][1] * 1e3:>6.1f}ms{gfs('torch'):>7.1f} | "
              f"{ratio:>9.2f}x", flush=True)

    pnet_pyramid(args, rng, functional if torch is not None else None)
    if args.no_pool:
        return
    print()
    header = (f"{'pool (32x192x24x24)':<20} | {'ours fwd':>9}{'bwd':>8} | {'numpy ref':>9} | "
              f"{'torch fwd':>9}{'bwd':>8} | {'ours/torch':>10}")
    print(header)
    print("-" * len(header))
    for name, mode, (c, h, wd), k, s, p in POOL_SHAPES:
        x = rng.standard_normal((args.batch, c, h, wd)).astype(np.float32)
        fwd, bwd = (max_pool2d_forward, max_pool2d_backward) if mode == "max" else (l2_pool2d_forward,
                                                                                    l2_pool2d_backward)
        kwargs = dict(kernel_size=k, stride=s, padding=p, ceil_mode=(mode == "max"))
        out, _ = fwd(x, **kwargs)
        dout = rng.standard_normal(out.shape).astype(np.float32)
        times = {key: [np.inf, np.inf] for key in ("ours", "numpy", "torch")}

        def run(impl):
            def go():
                t0 = time.perf_counter()
                _, cache = fwd(x, impl=impl, **kwargs)
                t1 = time.perf_counter()
                bwd(dout, cache)
                return t1 - t0, time.perf_counter() - t1
            return go
        runners = {"ours": run("numba"), "numpy": None if args.no_numpy else run("reference"), "torch": None}
        if torch is not None:
            tx = torch.tensor(x, requires_grad=True)
            tdout = torch.tensor(dout)

            def peer():
                t0 = time.perf_counter()
                if mode == "max":
                    out = functional.max_pool2d(tx, k, s, p, ceil_mode=True)
                else:   # LPPool2d has no padding: pad with zeros first
                    out = functional.lp_pool2d(functional.pad(tx, (p, p, p, p)), 2, k, s)
                t1 = time.perf_counter()
                torch.autograd.grad(out, (tx,), tdout)
                return t1 - t0, time.perf_counter() - t1
            runners["torch"] = peer
        _time_blocks(runners, times, args)
        ratio = sum(times["torch"]) / sum(times["ours"]) if torch is not None else float("nan")
        print(f"{name:<20} | {times['ours'][0] * 1e3:>7.1f}ms{times['ours'][1] * 1e3:>6.1f}ms | "
              f"{_ms(sum(times['numpy'])):>9} | "
              f"{times['torch'][0] * 1e3:>7.1f}ms{times['torch'][1] * 1e3:>6.1f}ms"
              f" | {ratio:>9.2f}x", flush=True)
    print("\nours/torch = torch time / our time for forward + backward (> 1: we are faster).")


if __name__ == "__main__":
    main(ARGS)
