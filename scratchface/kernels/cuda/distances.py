"""Pairwise distances and top-k on the GPU: the kernels around one cuBLAS product.

The distance matrix is one matrix product plus a cheap pass (see
:mod:`scratchface.recognition.distances` for the formulas):

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
"""
from __future__ import annotations

import math

from numba import cuda, float64, int64

from ._launch import larger, smaller

__all__ = ["finish_sq_euclidean", "finish_cosine", "topk_rows", "KMAX", "WARP"]

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
