"""Pairwise distances and top-k on the GPU: the kernels around one cuBLAS product.

The distance matrix is one matrix product plus a cheap pass (see
:mod:`scratchface.distances` for the formulas):

.. math:: D^{\\mathrm{sq}}_{ij} = \\max(\\lVert a_i \\rVert^2 + \\lVert b_j \\rVert^2 - 2 a_i^\\top b_j,\\ 0),
          \\qquad D^{\\cos}_{ij} = \\min(\\max(1 - \\hat a_i^\\top \\hat b_j, 0), 2).

``cupy.matmul`` computes ``a @ b.T`` into the output; ``finish_sq_euclidean``
/ ``finish_cosine`` then turn each product into a distance in place (one
thread per entry), clamp it, and zero the diagonal when the two sets are the
same.

``topk_rows`` keeps the ``k`` smallest entries of each row (``k <= KMAX``),
ties to the lower column: one warp (32 threads) per row. Thread ``t`` scans
columns ``t, t+32, ...`` (consecutive threads read consecutive columns) and
keeps its own sorted ``k`` best in registers (an insertion sort: new entries
go after equal ones, so the lower column stays first); then thread 0 merges
the 32 sorted lists, taking ``k`` times the smallest head.

Host wrappers (CuPy arrays): :func:`pairwise_distances_cuda` and
:func:`nearest_neighbors_cuda`, the CuPy paths of
:mod:`scratchface.distances`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64, int64

from ..._validation import check_array, check_choice, check_positive_int
from ._launch import array_module, blocks_for, larger, launch, smaller

__all__ = ["finish_sq_euclidean", "finish_cosine", "topk_rows", "pairwise_distances_cuda", "nearest_neighbors_cuda",
           "KMAX", "WARP"]

KMAX = 32   # largest k of the top-k kernel (registers and shared memory per row)
WARP = 32   # threads per row of the top-k kernel


@cuda.jit(cache=True)
def finish_sq_euclidean(d, a2, b2, row_offset, same):
    """``d[i, j] <- max(a2[i] + b2[j] - 2 d[i, j], 0)`` in place; one thread per entry.

    ``row_offset``: the global row of ``d[0]`` (``d`` may be a block of rows);
    with ``same``, the entry of global row == column is set to exactly 0.
    Consecutive threads take consecutive columns (coalesced).
    """
    idx = cuda.grid(1)
    if idx >= d.shape[0] * d.shape[1]:
        return
    i = idx // d.shape[1]
    j = idx - i * d.shape[1]
    if same and i + row_offset == j:
        d[i, j] = 0
        return
    v = a2[i] + b2[j] - 2 * d[i, j]
    d[i, j] = v if v > 0 else 0


@cuda.jit(cache=True)
def finish_cosine(d, row_offset, same):
    """``d[i, j] <- clip(1 - d[i, j], 0, 2)`` in place (``d`` holds products of unit rows)."""
    idx = cuda.grid(1)
    if idx >= d.shape[0] * d.shape[1]:
        return
    i = idx // d.shape[1]
    j = idx - i * d.shape[1]
    if same and i + row_offset == j:
        d[i, j] = 0
        return
    v = 1 - d[i, j]
    d[i, j] = smaller(larger(v, 0), 2)


@cuda.jit(cache=True)
def topk_rows(d, k, out_index, out_dist):
    """The ``k`` smallest entries of each row of ``d``; launch one block of ``WARP`` threads per row."""
    row = cuda.blockIdx.x
    t = cuda.threadIdx.x
    m = d.shape[1]
    best_d = cuda.local.array(KMAX, dtype=float64)
    best_i = cuda.local.array(KMAX, dtype=int64)
    count = 0
    for j in range(t, m, WARP):
        v = d[row, j]
        if count == k and not v < best_d[k - 1]:
            continue                        # no better than this thread's k-th best
        pos = count if count < k else k - 1
        while pos > 0 and best_d[pos - 1] > v:   # shift larger entries right (equal ones stay first)
            best_d[pos] = best_d[pos - 1]
            best_i[pos] = best_i[pos - 1]
            pos -= 1
        best_d[pos] = v
        best_i[pos] = j
        if count < k:
            count += 1
    shared_d = cuda.shared.array((WARP, KMAX), dtype=float64)
    shared_i = cuda.shared.array((WARP, KMAX), dtype=int64)
    shared_n = cuda.shared.array(WARP, dtype=int64)
    for s in range(count):
        shared_d[t, s] = best_d[s]
        shared_i[t, s] = best_i[s]
    shared_n[t] = count
    cuda.syncthreads()
    if t != 0:
        return
    heads = cuda.local.array(WARP, dtype=int64)   # next unread entry of each thread's list
    for u in range(WARP):
        heads[u] = 0
    for s in range(k):
        pick = -1
        pick_d = math.inf
        pick_i = m
        for u in range(WARP):
            h = heads[u]
            if h < shared_n[u]:
                v = shared_d[u, h]
                col = shared_i[u, h]
                if v < pick_d or (v == pick_d and col < pick_i):
                    pick, pick_d, pick_i = u, v, col
        heads[pick] += 1
        out_dist[row, s] = pick_d
        out_index[row, s] = pick_i


# ----------------------------------------------------------------------------- host wrappers

def _distance_inputs(a, b, metric, eps):
    check_array(a, "a", ndim=2, dtype_kind="f")
    same = b is None or b is a
    if not same:
        check_array(b, "b", ndim=2, dtype_kind="f")
        if b.shape[1] != a.shape[1]:
            raise ValueError(f"a and b must have the same number of columns (the embedding size), "
                             f"got {a.shape[1]} and {b.shape[1]}")
    check_choice(metric, "metric", ("sqeuclidean", "cosine"))
    xp = array_module(a) if same else array_module(a, b)
    dtype = np.result_type(a.dtype, a.dtype if same else b.dtype, np.float32)
    a = a.astype(dtype, copy=False)
    b = a if same else b.astype(dtype, copy=False)
    if metric == "cosine":                       # unit rows; a row of norm < eps is divided by eps
        a = a / xp.maximum(xp.sqrt((a * a).sum(axis=1)), dtype.type(eps))[:, None]
        b = a if same else b / xp.maximum(xp.sqrt((b * b).sum(axis=1)), dtype.type(eps))[:, None]
    return xp, a, b, same


def _finish(d, a2, b2, metric, row_offset, same):
    """Turn the products in ``d`` into distances in place (the finishing kernel)."""
    if d.size == 0:
        return d
    if metric == "sqeuclidean":
        launch(finish_sq_euclidean, blocks_for(d.size), None, d, a2, b2, row_offset, bool(same))
    else:
        launch(finish_cosine, blocks_for(d.size), None, d, row_offset, bool(same))
    return d


def pairwise_distances_cuda(a, b=None, *, metric="sqeuclidean", eps=1e-12):
    """Matrix of distances between the rows of ``a (n, d)`` and ``b (m, d)`` on the GPU, shape (n, m).

    ``metric='sqeuclidean'``: ``max(|a_i|^2 + |b_j|^2 - 2 a_i.b_j, 0)``;
    ``'cosine'``: ``clip(1 - cos, 0, 2)``. ``b`` omitted (or ``b is a``): an
    exactly zero diagonal. Same values as
    :func:`scratchface.distances.pairwise_distances`.
    The product is one ``xp.matmul`` (cuBLAS); a kernel adds the norms and clamps.
    """
    xp, a, b, same = _distance_inputs(a, b, metric, eps)
    d = xp.matmul(a, b.T)
    a2 = (a * a).sum(axis=1)
    b2 = a2 if same else (b * b).sum(axis=1)
    return _finish(d, a2, b2, metric, 0, same)


def nearest_neighbors_cuda(queries, gallery=None, *, k=1, metric="sqeuclidean", exclude_self=False,
                           block_size=8192):
    """The ``k`` nearest gallery rows of every query on the GPU, one block of queries at a time.

    Same results as :func:`scratchface.distances.nearest_neighbors`
    (nearest first, equal distances to the lower index). ``k <= 32`` uses the
    top-k kernel (one warp per row); a larger ``k`` sorts each row (``xp.argsort``,
    stable).

    Returns
    -------
    indices : int64 CuPy array, shape (n, k)
    distances : CuPy array, shape (n, k)
    """
    xp, a, b, same = _distance_inputs(queries, gallery, metric, 1e-12)
    k = check_positive_int(k, "k")
    block_size = check_positive_int(block_size, "block_size")
    if exclude_self and not same:
        raise ValueError("exclude_self=True needs gallery=None (the queries searched among themselves)")
    n, m = a.shape[0], b.shape[0]
    candidates = m - 1 if exclude_self else m
    if k > candidates:
        raise ValueError(f"k must be at most the number of gallery rows to choose from ({candidates}), got {k}")
    indices = xp.empty((n, k), dtype=np.int64)
    distances = xp.empty((n, k), dtype=a.dtype)
    a2 = (a * a).sum(axis=1)
    b2 = a2 if same else (b * b).sum(axis=1)
    bt = b.T
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        d = _finish(xp.matmul(a[start:stop], bt), a2[start:stop], b2, metric, start, same)
        if exclude_self:
            r = xp.arange(stop - start)
            d[r, r + start] = xp.inf
        if k <= KMAX:
            launch(topk_rows, stop - start, WARP, d, k, indices[start:stop], distances[start:stop])
        else:
            order = xp.argsort(d, axis=1, kind="stable")[:, :k]
            indices[start:stop] = order
            distances[start:stop] = xp.take_along_axis(d, order, axis=1)
    return indices, distances
