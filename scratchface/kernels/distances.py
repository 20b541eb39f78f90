"""Numba kernels for pairwise distances and top-k nearest neighbours (NumPy arrays only).

The matrix product ``a @ b.T`` is left to BLAS (it is the one part that BLAS
does better than any loop we could write); these kernels do everything around
it in a single pass over a block of the product while it is still in cache:

* ``finish_sq_euclidean``: ``out <- max(|a_i|^2 + |b_j|^2 - 2 out_ij, 0)``
  in place, exact zeros on the diagonal of an identical set;
* ``finish_cosine``: ``out <- clip(1 - out_ij, 0, 2)`` in place, same diagonal;
* ``knn_candidates``: exact top-k search, phase 1. Parallel over blocks of
  query rows; each Numba worker forms ``query block x gallery block`` products
  with its own single-threaded GEMM (``np.dot`` inside the parallel loop;
  BLAS is held to one thread by the caller) into a buffer that stays in cache,
  and keeps the ``k + 4`` best scores ``|g|^2 - 2 q.g`` of each row, rejecting
  almost every column with one comparison against a SIMD chunk minimum;
* ``refine_topk``: phase 2. The candidates' distances recomputed directly in
  float64, a rounding-error certificate that they hold the exact top-k, and a
  full float64 scan of the rows where it fails.

``finish_*`` are serial on purpose: the parallelism there is BLAS's (its
threads do the matrix product). Measured on 2 cores, 10,000 x 10,000 x 128
float32 in blocks of 256 rows: with ``parallel=True`` here, Numba's and
OpenBLAS's thread pools spin against each other between blocks and the whole
took 0.8 s; serial finishing took 0.29 s (NumPy's ``a2 + b2 - 2ab``: 0.51 s).
The top-k search avoids the question: one pool (Numba's) does all of it.

The public, validated entry points are in :mod:`scratchface.distances`.
This module imports Numba, so it is imported lazily from there.
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["finish_cosine", "finish_sq_euclidean", "knn_candidates", "merge_parts", "refine_topk"]

SQEUCLIDEAN, COSINE = 0, 1


@numba.njit(cache=True)
def finish_sq_euclidean(out, a2, b2, row_offset, zero_diagonal):
    """In place: ``out[i, j] = max(a2[i] + b2[j] - 2 out[i, j], 0)``.

    ``out`` holds the block of ``a @ b.T`` whose first row is row ``row_offset``
    of the whole matrix; with ``zero_diagonal`` the entries ``(i, i + row_offset)``
    are set to exactly 0 (identical sets).
    """
    n, m = out.shape
    zero = np.zeros(1, dtype=out.dtype)[0]
    for i in range(n):
        ai = a2[i]
        for j in range(m):
            x = out[i, j]
            d = ai + b2[j] - (x + x)
            out[i, j] = d if d > zero else zero
        if zero_diagonal and i + row_offset < m:
            out[i, i + row_offset] = zero


@numba.njit(cache=True)
def finish_cosine(out, row_offset, zero_diagonal):
    """In place: ``out[i, j] = clip(1 - out[i, j], 0, 2)`` (``out`` holds cosines of unit vectors)."""
    n, m = out.shape
    zero = np.zeros(1, dtype=out.dtype)[0]
    one = zero + 1
    two = one + one
    for i in range(n):
        for j in range(m):
            d = one - out[i, j]
            out[i, j] = min(max(d, zero), two)
        if zero_diagonal and i + row_offset < m:
            out[i, i + row_offset] = zero


@numba.njit(cache=True, nogil=True)
def _insert(best_key, best_index, count, key, index):
    """Insert ``(key, index)`` into the lists sorted by (key, index) of length ``best_key.size``.

    Returns the new count of filled entries. Equal keys keep the lower index first.
    """
    kk = best_key.shape[0]
    if count < kk:
        pos = count
        count += 1
    elif key < best_key[kk - 1] or (key == best_key[kk - 1] and index < best_index[kk - 1]):
        pos = kk - 1
    else:
        return count
    while pos > 0 and (best_key[pos - 1] > key or (best_key[pos - 1] == key and best_index[pos - 1] > index)):
        best_key[pos] = best_key[pos - 1]
        best_index[pos] = best_index[pos - 1]
        pos -= 1
    best_key[pos] = key
    best_index[pos] = index
    return count


_CHUNK = 16  # columns whose minimum is formed (SIMD) before any of them is looked at one by one


@numba.njit(cache=True, nogil=True, fastmath={"nnan", "nsz", "reassoc"})
def _merge_row(prod_row, w, offset, self_col, best_s, best_i, counts, r):
    """Merge the scores ``w - 2 prod_row`` of one row into its top-``kk`` lists.

    The columns are taken 16 at a time: their minimum score is formed first (a
    loop the compiler vectorises: ``reassoc`` lets it reorder the minimum, exact
    whatever the order), and only a chunk whose minimum beats the row's current
    ``kk``-th score is looked at column by column. ``nnan`` holds because the
    inputs were checked finite; ``ninf`` is not claimed (the lists start at inf).
    """
    kk = best_s.shape[0]
    cols = prod_row.shape[0]
    threshold = best_s[kk - 1]
    for c0 in range(0, cols, _CHUNK):
        c1 = min(cols, c0 + _CHUNK)
        low = threshold
        for c in range(c0, c1):
            low = min(low, w[c] - 2 * prod_row[c])
        if low < threshold:
            for c in range(c0, c1):
                s = w[c] - 2 * prod_row[c]
                if s < threshold and c != self_col:
                    counts[r] = _insert(best_s, best_i, counts[r], s, offset + c)
                    threshold = best_s[kk - 1]


@numba.njit(parallel=True, cache=True)
def knn_candidates(q, g, w, exclude_self, query_block, gallery_block, cand_index, cand_score):
    """The ``kk`` smallest scores ``s_ij = w_j - 2 q_i^T g_j`` of every query row (float32 or float64).

    With ``w_j = |g_j|^2`` the score is the squared distance minus the constant
    ``|q_i|^2`` of the row, so it ranks the gallery like the distance (with
    ``w = 0`` and unit rows, like the cosine distance). The queries are cut into
    blocks of ``query_block`` rows and the gallery into ``parts`` contiguous
    parts (``parts = cand_index.shape[0]``; more than one when there are fewer
    query blocks than threads); each (query block, part) is one task of the
    parallel loop. A task walks over its part in blocks of ``gallery_block``
    rows, forms the ``query_block x gallery_block`` products with one GEMM
    (``np.dot``: BLAS on the calling thread, so BLAS must be single-threaded
    here) into a buffer that stays in cache, and merges them into its rows'
    running top-``kk`` lists (``_merge_row``). :func:`merge_parts` then
    merges the parts' lists.

    Parameters
    ----------
    q : (n, d) C-contiguous queries
    g : (m, d) C-contiguous gallery, the dtype of ``q``
    w : (m,) per-column term of the score (``|g_j|^2`` or zeros)
    exclude_self : skip column ``i`` for row ``i`` (the queries are the gallery)
    query_block, gallery_block : block sizes (rows)
    cand_index : (parts, n, kk) int64, out: candidate columns by increasing score, -1 where fewer than kk exist
    cand_score : (parts, n, kk) out: their scores (``inf`` where missing)
    """
    n = q.shape[0]
    m = g.shape[0]
    parts = cand_index.shape[0]
    kk = cand_index.shape[2]
    query_tasks = (n + query_block - 1) // query_block
    blocks_per_part = ((m + gallery_block - 1) // gallery_block + parts - 1) // parts
    for t in numba.prange(query_tasks * parts):
        part = t % parts
        i0 = (t // parts) * query_block
        i1 = min(n, i0 + query_block)
        rows = i1 - i0
        buffer = np.empty(query_block * gallery_block, dtype=q.dtype)
        best_s = np.full((rows, kk), np.inf, dtype=q.dtype)
        best_i = np.full((rows, kk), -1, dtype=np.int64)
        counts = np.zeros(rows, dtype=np.int64)
        q_block = q[i0:i1]
        part_start = part * blocks_per_part * gallery_block
        part_stop = min(m, part_start + blocks_per_part * gallery_block)
        for j0 in range(part_start, part_stop, gallery_block):
            j1 = min(part_stop, j0 + gallery_block)
            cols = j1 - j0
            prod = buffer[: rows * cols].reshape(rows, cols)
            np.dot(q_block, g[j0:j1].T, prod)
            for r in range(rows):
                self_col = i0 + r - j0 if exclude_self else -1
                _merge_row(prod[r], w[j0:j1], j0, self_col, best_s[r], best_i[r], counts, r)
        cand_index[part, i0:i1] = best_i
        cand_score[part, i0:i1] = best_s


@numba.njit(parallel=True, cache=True)
def merge_parts(cand_index, cand_score, out_index, out_score):
    """The ``kk`` best of each row over the parts' lists of :func:`knn_candidates` (ties: lower index).

    A column a part discarded scores at least that part's ``kk``-th, which is
    at least the merged ``kk``-th: the certificate of :func:`refine_topk` holds
    for the merged lists.
    """
    parts, n, kk = cand_index.shape
    for i in numba.prange(n):
        count = 0
        for c in range(kk):
            out_index[i, c] = -1
            out_score[i, c] = np.inf
        for p in range(parts):
            for c in range(kk):
                j = cand_index[p, i, c]
                if j >= 0:
                    count = _insert(out_score[i], out_index[i], count, cand_score[p, i, c], j)


@numba.njit(cache=True, nogil=True)
def _exact_key(q, g, i, j, metric, same):
    """The distance of query ``i`` and gallery row ``j`` computed directly in float64 (the naive loop)."""
    acc = 0.0
    if metric == SQEUCLIDEAN:
        for t in range(q.shape[1]):
            diff = np.float64(q[i, t]) - np.float64(g[j, t])
            acc += diff * diff
        return acc
    if same and i == j:
        return 0.0
    for t in range(q.shape[1]):
        acc += np.float64(q[i, t]) * np.float64(g[j, t])
    return min(max(1.0 - acc, 0.0), 2.0)


@numba.njit(parallel=True, cache=True)
def refine_topk(q, g, metric, same, exclude_self, cand_index, cand_score, error_coef, g_norm_max,
                out_index, out_dist):
    """Exact top-k from the candidates: float64 distances, a certificate, a full scan where it fails.

    For each row the candidates' distances are recomputed directly in float64
    (``_exact_key``) and the ``k`` best kept, ties by lower index. They are
    the exact top-``k`` when the ``k``-th of them is below every distance the
    candidate search discarded. A discarded column has a score of at least
    ``T`` (the ``kk``-th candidate score) as computed, hence a true score above
    ``T - E`` with the rounding bound ``E = error_coef * (|q_i| + max_j |g_j|)^2``
    of the expanded formula; in distance units that is ``|q_i|^2 + T - E``
    (squared Euclidean) or ``1 + (T - E) / 2`` (cosine, ``s = -2 cos``). A row that
    fails the test (near-ties at the boundary, many duplicates) is scanned again
    over the whole gallery in float64.

    Returns
    -------
    int : the number of rows that needed the full scan
    """
    n = q.shape[0]
    m = g.shape[0]
    kk = cand_index.shape[1]
    k = out_index.shape[1]
    rescans = np.zeros(n, dtype=np.int64)
    for i in numba.prange(n):
        best_d = np.empty(k, dtype=np.float64)
        best_i = np.empty(k, dtype=np.int64)
        count = 0
        for c in range(kk):
            j = cand_index[i, c]
            if j >= 0:
                count = _insert(best_d, best_i, count, _exact_key(q, g, i, j, metric, same), j)
        certified = cand_index[i, kk - 1] < 0 or count < k  # every column was a candidate
        if not certified:
            q_sq = 0.0
            for t in range(q.shape[1]):
                q_sq += np.float64(q[i, t]) * np.float64(q[i, t])
            bound = error_coef * (np.sqrt(q_sq) + g_norm_max) ** 2
            floor = np.float64(cand_score[i, kk - 1]) - bound
            limit = q_sq + floor if metric == SQEUCLIDEAN else 1.0 + 0.5 * floor
            certified = best_d[k - 1] < limit
        if not certified:
            rescans[i] = 1
            count = 0
            for j in range(m):
                if not (exclude_self and j == i):
                    count = _insert(best_d, best_i, count, _exact_key(q, g, i, j, metric, same), j)
        for t in range(k):
            out_index[i, t] = best_i[t]
            out_dist[i, t] = best_d[t]
    return rescans.sum()
