# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 — Speed: readable loop vs NumPy vs Numba + BLAS (vs CUDA)
#
# scratchface keeps two versions of every hot operation, tested equal:
#
# * the **readable reference** (`impl='reference'`) — what a lecture shows, in NumPy array code;
# * the **fast path** (`impl='numba'`, the default `'auto'` for NumPy arrays) — a Numba kernel,
#   usually feeding one big BLAS matrix product; and CUDA kernels for CuPy arrays.
#
# Below, three operations of the course, each timed three ways in the same run: the plain Python
# loop a textbook would write, the reference, the fast path. The settings are small so that the
# notebook runs in seconds; `benchmarks/bench_*.py` time the real sizes against PyTorch,
# scikit-image and torchvision.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from scratchface.backend import cupy_available
from scratchface.detection.nms import nms
from scratchface.layers.conv import conv2d_forward
from scratchface.distances import (
    nearest_neighbors,
    squared_euclidean_distances,
)

rng = np.random.default_rng(0)
timings = {}                                   # (operation, implementation) -> seconds


def best_time(f, repeats=3):
    """The fastest of ``repeats`` runs of ``f()``, in seconds (after the caller's warm-up)."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - start)
    return best


def first_call(f):
    """Seconds of the first call: Numba compiles here (or loads its on-disk cache)."""
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


# %% [markdown]
# ## 1. Convolution
#
# $\mathrm{out}[n, f, h, w] = \sum_{c, i, j} W[f, c, i, j]\, x[n, c, h + i, w + j]$ costs
# $N F H' W' C K^2$ multiply-adds. Three ways to compute it:
#
# 1. **six nested Python loops** — one multiply-add per interpreted step;
# 2. **reference**: a loop over the $K^2$ kernel offsets only; each offset is one `einsum` over the
#    channels of a strided slice;
# 3. **Numba + BLAS**: im2col (a Numba kernel copies every window into one row of a matrix), then one
#    matrix product $(N H' W') \times (C K^2) \cdot (C K^2) \times F$ in BLAS.
#
# The loops are far too slow for a real layer, so they are timed on a small one and compared per
# multiply-add.

# %%
def conv_loops(x, w):
    """Textbook convolution (stride 1, no padding), for timing only."""
    n_img, n_ch, height, width = x.shape
    n_f, _, kh, kw = w.shape
    out = np.zeros((n_img, n_f, height - kh + 1, width - kw + 1))
    for n in range(n_img):
        for f in range(n_f):
            for r in range(height - kh + 1):
                for c in range(width - kw + 1):
                    total = 0.0
                    for ch in range(n_ch):
                        for i in range(kh):
                            for j in range(kw):
                                total += w[f, ch, i, j] * x[n, ch, r + i, c + j]
                    out[n, f, r, c] = total
    return out


small_x, small_w = rng.standard_normal((1, 4, 12, 12)), rng.standard_normal((4, 4, 3, 3))
np.testing.assert_allclose(conv_loops(small_x, small_w), conv2d_forward(small_x, small_w)[0], rtol=1e-10)

x = rng.standard_normal((8, 64, 24, 24)).astype(np.float32)      # a FaceNet-like layer: 64 -> 64, 3x3
w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
macs = {"small": 1 * 4 * 10 * 10 * 4 * 9, "layer": 8 * 64 * 22 * 22 * 64 * 9}
compile_conv = first_call(lambda: conv2d_forward(x, w, impl="numba"))
seconds_loops = best_time(lambda: conv_loops(small_x, small_w), repeats=1)
timings["conv", "Python loops"] = seconds_loops / macs["small"] * macs["layer"]   # extrapolated per MAC
timings["conv", "reference (NumPy)"] = best_time(lambda: conv2d_forward(x, w, impl="reference"))
timings["conv", "Numba + BLAS"] = best_time(lambda: conv2d_forward(x, w, impl="numba"))
same = np.allclose(conv2d_forward(x, w, impl="reference")[0], conv2d_forward(x, w, impl="numba")[0],
                   rtol=1e-4, atol=1e-3)
print(f"conv {x.shape} * {w.shape}: {macs['layer'] / 1e6:.0f} M multiply-adds; reference == numba: {same}; "
      f"first Numba call {compile_conv:.2f} s")
for (op, impl), s in timings.items():
    print(f"  {impl:18s} {s * 1e3:10.1f} ms   {2 * macs['layer'] / s / 1e9:7.2f} GFLOP/s")

# %% [markdown]
# ## 2. Non-maximum suppression
#
# Greedy NMS: take the best box, drop every box overlapping it by IoU > 0.5, repeat. The reference
# is the vectorised NumPy loop (one IoU of the kept box against all remaining ones per step); the
# Numba kernel is the same algorithm compiled, with early exits and no temporary arrays.

# %%
def detector_like_boxes(n):
    """Boxes clustered around 50 'objects', as a detector outputs them before NMS."""
    centres = rng.uniform(0, 1000, (50, 2))[rng.integers(0, 50, n)] + rng.normal(0, 8, (n, 2))
    sizes = rng.uniform(20, 80, (n, 1))
    return np.hstack([centres - sizes / 2, centres + sizes / 2]), rng.uniform(0, 1, n)


boxes, scores = detector_like_boxes(5000)
compile_nms = first_call(lambda: nms(boxes, scores, 0.5, impl="numba"))
kept_ref, kept_numba = nms(boxes, scores, 0.5, impl="reference"), nms(boxes, scores, 0.5, impl="numba")
timings["nms", "reference (NumPy)"] = best_time(lambda: nms(boxes, scores, 0.5, impl="reference"))
timings["nms", "Numba"] = best_time(lambda: nms(boxes, scores, 0.5, impl="numba"))
print(f"NMS of {len(boxes)} boxes: {len(kept_ref)} kept, same indices: {np.array_equal(kept_ref, kept_numba)}; "
      f"first Numba call {compile_nms:.2f} s")
for impl in ("reference (NumPy)", "Numba"):
    print(f"  {impl:18s} {timings['nms', impl] * 1e3:10.2f} ms")

# %% [markdown]
# ## 3. Distances between embeddings
#
# Identification compares every probe with every gallery face:
# $D_{ij} = \lVert a_i - b_j \rVert^2 = \lVert a_i\rVert^2 + \lVert b_j\rVert^2 - 2\,a_i^\top b_j$. The
# expansion turns the whole matrix into one BLAS product `a @ b.T`. The reference evaluates the
# formula with NumPy (four passes over the $n \times m$ matrix); the fast path does the product block by
# block and adds the norms, clamps at 0 in one Numba pass while the block is in cache.
# `nearest_neighbors` keeps only the top $k$ of each row, never the whole matrix.

# %%
def distances_loops(a, b):
    """One pair at a time, for timing only."""
    out = np.empty((len(a), len(b)))
    for i in range(len(a)):
        for j in range(len(b)):
            diff = a[i] - b[j]
            out[i, j] = diff @ diff
    return out


a = rng.standard_normal((2000, 128)).astype(np.float32)
b = rng.standard_normal((2000, 128)).astype(np.float32)
np.testing.assert_allclose(distances_loops(a[:20], b[:30]), squared_euclidean_distances(a[:20], b[:30]),
                           rtol=1e-4)
compile_dist = first_call(lambda: squared_euclidean_distances(a, b, impl="numba"))
timings["distances", "Python loops"] = best_time(lambda: distances_loops(a[:10], b), repeats=1) * 200
timings["distances", "reference (NumPy)"] = best_time(lambda: squared_euclidean_distances(a, b, impl="reference"))
timings["distances", "Numba + BLAS"] = best_time(lambda: squared_euclidean_distances(a, b, impl="numba"))
timings["distances", "top-5 neighbours"] = best_time(lambda: nearest_neighbors(a, b, k=5))
print(f"{len(a)} x {len(b)} x 128 distances; first Numba call {compile_dist:.2f} s")
for impl in ("Python loops", "reference (NumPy)", "Numba + BLAS", "top-5 neighbours"):
    print(f"  {impl:18s} {timings['distances', impl] * 1e3:10.2f} ms")

# %% [markdown]
# ## 4. On a GPU
#
# With CuPy arrays (`scratchface.backend.to_device`) the same calls run CUDA kernels
# (`scratchface.kernels.cuda`, one module per operation): conv2d, pooling, PReLU, NMS, the distances.

# %%
if cupy_available():
    import cupy

    from scratchface.backend import to_device

    def gpu_time(f, repeats=5):
        f()
        cupy.cuda.Device().synchronize()
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            f()
            cupy.cuda.Device().synchronize()
            best = min(best, time.perf_counter() - start)
        return best

    xg, wg = to_device(x), to_device(w)
    bg, sg = to_device(boxes.astype(np.float32)), to_device(scores.astype(np.float32))
    ag, bgal = to_device(a), to_device(b)
    timings["conv", "CUDA (CuPy)"] = gpu_time(lambda: conv2d_forward(xg, wg))
    timings["nms", "CUDA (CuPy)"] = gpu_time(lambda: nms(bg, sg, 0.5))
    timings["distances", "CUDA (CuPy)"] = gpu_time(lambda: squared_euclidean_distances(ag, bgal))
    for op in ("conv", "nms", "distances"):
        print(f"{op:10s} CUDA {timings[op, 'CUDA (CuPy)'] * 1e3:8.2f} ms")
else:
    print("no CUDA GPU with CuPy here: the GPU column is left out "
          "(pip install -e '.[gpu]' on a machine with an NVIDIA GPU)")

# %% [markdown]
# ## 5. All together
#
# Times on a log scale: each implementation is typically one to three orders of magnitude faster
# than the one below it (the GPU one excepted, whose small sizes here hardly fill the device). The Python
# loops pay the interpreter for every multiply-add; NumPy pays for temporary arrays and passes over
# memory; the compiled kernel and BLAS keep the data in cache and use SIMD and both cores.

# %%
ops = ["conv", "nms", "distances"]
fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
for ax, op in zip(axes, ops):
    names = [impl for (o, impl) in timings if o == op]
    values = [timings[op, impl] * 1e3 for impl in names]
    ax.barh(names, values, color="tab:blue")
    ax.set_xscale("log")
    ax.set_xlim(min(values) / 3, max(values) * 30)
    ax.set_xlabel("milliseconds (log scale)")
    ax.set_title(op)
    for k, v in enumerate(values):
        ax.text(v, k, f" {v:.3g} ms", va="center", fontsize=8)
fig.tight_layout()
plt.show()

print(f"{'operation':10s} {'implementation':20s} {'ms':>10s} {'vs fastest CPU':>15s}")
for op in ops:
    fastest = min(s for (o, impl), s in timings.items() if o == op and "CUDA" not in impl)
    for (o, impl), s in timings.items():
        if o == op:
            print(f"{op:10s} {impl:20s} {s * 1e3:10.2f} {s / fastest:14.1f}x")

# %% [markdown]
# ## Exercises
#
# 1. **FLOPs.** How many multiply-adds does a convolution of a $(32, 64, 56, 56)$ input with
#    $128$ filters of $3 \times 3$, stride 1, padding 1 take? At 100 GFLOP/s (2 FLOPs per
#    multiply-add), how long should it last?
# 2. **im2col's memory.** The im2col path builds a matrix of one row per output pixel and one column
#    per kernel entry. How large is it for exercise 1, in float64 and float32? And the input itself?
# 3. **Measure, don't guess.** Time `conv2d_forward` on a small input twice in a row. Why can the
#    first call be much slower than the second?

# %%
### BEGIN SOLUTION
# 1. N F OH OW x C KH KW multiply-adds.
n, c, h, w, f, k = 32, 64, 56, 56, 128, 3
macs = n * f * h * w * c * k * k
print(f"1. {macs / 1e9:.1f} G multiply-adds = {2 * macs / 1e9:.1f} GFLOP: about {2 * macs / 100e9 * 1e3:.0f} ms at 100 GFLOP/s")
# 2. (N OH OW) x (C KH KW) entries: 9 times the input, since every pixel is copied once per kernel offset.
entries = n * h * w * c * k * k
print(f"2. im2col matrix {entries * 8 / 2**30:.2f} GiB in float64, {entries * 4 / 2**30:.2f} GiB in float32; "
      f"the input {n * c * h * w * 8 / 2**20:.0f} MiB")
# 3. The first call may compile the Numba kernel (or warm caches); time the second and later calls.
rng_exercise = np.random.default_rng(0)
x_ex, w_ex = rng_exercise.standard_normal((2, 3, 16, 16)), rng_exercise.standard_normal((4, 3, 3, 3))
for call in ("first", "second"):
    start = time.perf_counter()
    conv2d_forward(x_ex, w_ex, stride=1, padding=1)
    print(f"3. {call} call: {(time.perf_counter() - start) * 1e3:.2f} ms")
### END SOLUTION
