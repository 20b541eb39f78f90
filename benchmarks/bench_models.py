"""Benchmark: FaceNet NN2 forward + backward, scratchface against the same network in PyTorch (CPU).

For NN2 at 96x96 (NN4) and 224x224, a batch of 32: seconds per forward +
backward pass (median of ``--repeats`` after one warm-up pass, which also
compiles the Numba kernels; the compile time is reported apart), and the peak
memory of one pass:

- scratchface: the ``tracemalloc`` peak (NumPy reports its array buffers to
  tracemalloc) and the process's peak resident size;
- torch: the process's peak resident size (torch's allocator is invisible to
  tracemalloc), minus the size before the pass.

Each configuration runs in its own subprocess so that one's memory does not
hide the next one's peak. torch gets the same number of threads as Numba
(``NUMBA_NUM_THREADS``, default: all cores). The torch network is built from the
scratchface one by :func:`to_torch`, module by module, with the same weights
(``tests/test_models_run.py`` checks that both compute the same thing).

Usage::

    python benchmarks/bench_models.py                 # both sizes, batch 32
    python benchmarks/bench_models.py --sizes 96 --batch 8 --repeats 2
    python benchmarks/bench_models.py --rounds 5      # both libraries five times, in turn

On a shared machine a noisy minute can hit one library's subprocess and not the other's (NN2 at 96x96
read 1.17, 1.55 and 1.19 of torch's time in three runs of the same code): ``--rounds`` runs the pair
several times in turn and prints every round's ratio, the table each library's median round.

Targets (issue 7): within 1.5x of torch; NN2 at 224x224, batch 32, forward +
backward in less than 4 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


# ---------------------------------------------------------------- the torch twin
def to_torch(module):
    """A ``torch.nn.Module`` computing what the scratchface ``module`` computes, with copies of its weights.

    Handles the modules the FaceNet / VGG-Face models use: Sequential (and
    FaceNetwork), Concat, Inception, Conv2d, Dense, ReLU, Maxout, MaxPool2d,
    AvgPool2d, L2Pool2d, LRN, Flatten, L2Normalize, Softmax, Dropout (as identity in eval).
    """
    import torch  # noqa: PLC0415
    import torch.nn.functional as F  # noqa: PLC0415
    from torch import nn as tnn  # noqa: PLC0415

    from scratchface import nn  # noqa: PLC0415

    def param(a):
        return tnn.Parameter(torch.from_numpy(np.array(a, copy=True)))

    class Concat(tnn.Module):
        def __init__(self, branches):
            super().__init__()
            self.branches = tnn.ModuleList(branches)

        def forward(self, x):
            return torch.cat([b(x) for b in self.branches], dim=1)

    class L2Pool(tnn.Module):
        """sqrt(sum of squares over the zero-padded window); gradient 0 where the window is all zero."""
        def __init__(self, m):
            super().__init__()
            self.k, self.s, self.pad = m.kernel_size, m.stride, m.padding

        def forward(self, x):
            top, bottom, left, right = self.pad
            x = F.pad(x, (left, right, top, bottom))
            s = F.avg_pool2d(x * x, self.k, self.s) * (self.k[0] * self.k[1])
            return torch.sqrt(s.clamp_min(1e-30)) * (s > 0)

    class Maxout(tnn.Module):
        def __init__(self, pieces):
            super().__init__()
            self.pieces = pieces

        def forward(self, x):
            n, d = x.shape[:2]
            return x.reshape(n, d // self.pieces, self.pieces, *x.shape[2:]).amax(dim=2)

    class Lambda(tnn.Module):
        def __init__(self, f):
            super().__init__()
            self.f = f

        def forward(self, x):
            return self.f(x)

    def pads(p):
        top, bottom, left, right = p
        if top != bottom or left != right:
            raise ValueError(f"asymmetric padding {p} is not converted")
        return (top, left)

    m = module
    if isinstance(m, nn.Inception):
        return to_torch(m.branches)
    if isinstance(m, nn.Concat):
        return Concat([to_torch(b) for b in m])
    if isinstance(m, nn.Sequential):
        return tnn.Sequential(*[to_torch(c) for c in m])
    if isinstance(m, nn.Conv2d):
        t = tnn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=pads(m.padding),
                       bias=m.bias is not None, dtype=torch.from_numpy(m.weight.data[:0]).dtype)
        t.weight = param(m.weight.data)
        if m.bias is not None:
            t.bias = param(m.bias.data)
        return t
    if isinstance(m, nn.Dense):
        t = tnn.Linear(m.in_features, m.out_features, bias=m.bias is not None,
                       dtype=torch.from_numpy(m.weight.data[:0]).dtype)
        t.weight = param(m.weight.data.T)
        if m.bias is not None:
            t.bias = param(m.bias.data)
        return t
    if isinstance(m, nn.ReLU):
        return tnn.ReLU()
    if isinstance(m, nn.Maxout):
        return Maxout(m.pieces)
    if isinstance(m, nn.MaxPool2d):
        return tnn.MaxPool2d(m.kernel_size, m.stride, pads(m.padding), ceil_mode=m.ceil_mode)
    if isinstance(m, nn.AvgPool2d):
        return tnn.AvgPool2d(m.kernel_size, m.stride, pads(m.padding), ceil_mode=m.ceil_mode,
                             count_include_pad=m.count_include_pad)
    if isinstance(m, nn.L2Pool2d):
        return L2Pool(m)
    if isinstance(m, nn.LRN):
        return tnn.LocalResponseNorm(m.size, alpha=m.alpha, beta=m.beta, k=m.k)
    if isinstance(m, nn.Flatten):
        return tnn.Flatten()
    if isinstance(m, nn.L2Normalize):
        return Lambda(lambda x, eps=m.eps, axis=m.axis: F.normalize(x, dim=axis, eps=eps))
    if isinstance(m, nn.Softmax):
        return tnn.Softmax(dim=m.axis)
    if isinstance(m, nn.Dropout):
        return tnn.Identity()
    raise TypeError(f"to_torch does not know {type(m).__name__}")


# ---------------------------------------------------------------- one configuration, in a subprocess
def _peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # Linux: KiB


def worker(lib, size, batch, repeats, threads):
    """Time and measure one (library, input size) configuration; print one JSON line."""
    from scratchface.models import nn2  # noqa: PLC0415
    net = nn2(input_size=size, rng=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
    dout = rng.standard_normal((batch, 128)).astype(np.float32)
    result = {"lib": lib, "size": size, "batch": batch, "threads": threads}
    if lib == "scratchface":
        import tracemalloc  # noqa: PLC0415

        def step():
            net.zero_grad()
            net.forward(x)
            net.backward(dout)
    else:
        import torch  # noqa: PLC0415
        torch.set_num_threads(threads)
        tnet = to_torch(net)
        del net
        xt, doutt = torch.from_numpy(x), torch.from_numpy(dout)

        def step():
            tnet.zero_grad(set_to_none=False)
            xt.requires_grad_(True)
            out = tnet(xt)
            out.backward(doutt)
    t0 = time.perf_counter()
    step()                                           # warm-up (Numba compiles or loads its cache here)
    result["first_s"] = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    result["seconds"] = float(np.median(times))
    result["compile_s"] = max(result["first_s"] - result["seconds"], 0.0)
    result["peak_rss_gb"] = _peak_rss_bytes() / 2**30
    if lib == "scratchface":
        tracemalloc.start()
        step()
        result["tracemalloc_peak_gb"] = tracemalloc.get_traced_memory()[1] / 2**30
        tracemalloc.stop()
    print(json.dumps(result))


def run_config(lib, size, batch, repeats, threads):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", lib, "--sizes", str(size), "--batch", str(batch),
           "--repeats", str(repeats), "--threads", str(threads)]
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{lib} at {size} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median_run(results):
    """The run whose time is the median of the rounds' (the lower middle one for an even count), with the
    largest peak memory of them all."""
    ordered = sorted(results, key=lambda r: r["seconds"])
    row = dict(ordered[(len(ordered) - 1) // 2])
    for key in ("peak_rss_gb", "tracemalloc_peak_gb"):
        if key in row:
            row[key] = max(r[key] for r in results)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="96,224", help="input sizes, comma separated (96 = NN4, 224 = NN2)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count())))
    parser.add_argument("--rounds", type=int, default=1,
                        help="run both libraries this many times, in turn (ours first in odd rounds, torch first in "
                             "even ones); the table shows each library's median over the rounds and the ratio's range")
    parser.add_argument("--worker", choices=("scratchface", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.worker:
        worker(args.worker, sizes[0], args.batch, args.repeats, args.threads)
        return
    try:
        import torch  # noqa: F401, PLC0415
        libs = ("scratchface", "torch")
    except ImportError:
        libs = ("scratchface",)
        print("torch not installed: scratchface only")
    print(f"FaceNet NN2 forward + backward, batch {args.batch}, float32, {args.threads} threads, "
          f"median of {args.repeats}")
    header = f"{'input':>8} {'library':>12} {'s/batch':>9} {'ratio':>7} {'compile s':>10} {'peak RSS GB':>12} " \
             f"{'tracemalloc GB':>15}"
    print(header)
    print("-" * len(header))
    for size in sizes:
        runs = {lib: [] for lib in libs}
        for round_ in range(max(1, args.rounds)):
            for lib in (libs if round_ % 2 == 0 else libs[::-1]):
                runs[lib].append(run_config(lib, size, args.batch, args.repeats, args.threads))
        rows = {lib: _median_run(r) for lib, r in runs.items()}
        base = rows.get("torch", rows["scratchface"])["seconds"]
        if len(libs) == 2 and args.rounds > 1:
            ratios = sorted(a["seconds"] / b["seconds"] for a, b in zip(runs["scratchface"], runs["torch"]))
            print(f"{size}x{size}: scratchface / torch in each of {args.rounds} rounds: "
                  + ", ".join(f"{r:.2f}" for r in ratios))
        for lib, r in rows.items():
            tm = f"{r['tracemalloc_peak_gb']:.2f}" if "tracemalloc_peak_gb" in r else "-"
            print(f"{size:>5}x{size:<3}{lib:>12} {r['seconds']:>9.3f} {r['seconds'] / base:>6.2f}x "
                  f"{r['compile_s']:>10.1f} {r['peak_rss_gb']:>12.2f} {tm:>15}")
        if size == 224 and "tracemalloc_peak_gb" in rows["scratchface"]:
            peak = max(rows["scratchface"]["tracemalloc_peak_gb"], 0.0)
            print(f"NN2 224x224 batch {args.batch}: tracemalloc peak {peak:.2f} GB "
                  f"({'within' if peak < 4 else 'OVER'} the 4 GB budget)")


if __name__ == "__main__":
    main()
