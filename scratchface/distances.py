"""Pairwise distances between two sets of embeddings, and top-k nearest neighbours.

Verification compares one pair of embeddings; identification compares every
probe with every gallery face, which is a matrix of distances. For rows
:math:`a_i` of ``a`` (shape ``(n, d)``) and :math:`b_j` of ``b`` (``(m, d)``):

.. math::

    D^{\\mathrm{sq}}_{ij} = \\lVert a_i - b_j \\rVert^2
        = \\lVert a_i \\rVert^2 + \\lVert b_j \\rVert^2 - 2\\, a_i^\\top b_j ,
    \\qquad
    D^{\\cos}_{ij} = 1 - \\frac{a_i^\\top b_j}{\\lVert a_i \\rVert \\lVert b_j \\rVert}.

The expansion on the right turns the whole matrix into one matrix product
``a @ b.T`` (BLAS) plus the two vectors of squared norms. Its price is
cancellation: for two nearly equal vectors the three terms are large and the
difference small, so rounding can make it slightly *negative*. The results here
are therefore clamped to ``>= 0`` (cosine distance to ``[0, 2]``), and when the
two sets are the same (``b`` omitted, or ``b is a``) the diagonal is set to
exactly 0.

Two implementations, tested equal:

* ``impl='reference'``: the formula above in NumPy (or CuPy) array code,
  the version a lecture shows;
* ``impl='numba'``: the product computed by BLAS one block of rows at a time,
  and a Numba kernel (:mod:`scratchface.kernels.distances`) that adds the
  norms, clamps and fixes the diagonal in one pass over the block while it is
  still in cache, instead of the four full passes over the ``n x m`` matrix
  that the NumPy expression makes.

``nearest_neighbors`` gives the ``k`` nearest gallery rows of each query
without ever holding more than one block of rows of the distance matrix.
"""
from __future__ import annotations

import numpy as np

from ._validation import check_choice, check_float_array, check_positive_float, check_positive_int
from .backend import get_array_module, is_cupy_array

__all__ = ["squared_euclidean_distances", "cosine_distances", "pairwise_distances",
           "nearest_neighbors", "normalize_rows"]

_METRICS = ("sqeuclidean", "cosine")
_IMPLS = ("auto", "reference", "numba", "cuda")
_BLOCK_ELEMENTS = 1 << 22  # rows per block of the full matrix: about 4M entries (16 MB in float32)
_REFERENCE_QUERY_BLOCK = 1024  # query rows per block of the readable top-k
_QUERY_BLOCK, _GALLERY_BLOCK = 256, 1024  # the fast top-k's GEMM block: 1 MB of float32 products per thread
_EXTRA_CANDIDATES = 4  # candidates kept beyond k for the exact float64 re-ranking


# ----------------------------------------------------------------------------- validation

def _check_sets(a, b, name_a="a", name_b="b"):
    """Validate the two sets; return ``(a, b, same)`` in a common float dtype."""
    check_float_array(a, name_a, ndim=2)
    same = b is None or b is a
    if not same:
        check_float_array(b, name_b, ndim=2)
        get_array_module(a, b)  # refuses a CuPy / NumPy mix
        if b.shape[1] != a.shape[1]:
            raise ValueError(f"{name_a} and {name_b} must have the same number of columns (the "
                             f"embedding size), got {a.shape[1]} and {b.shape[1]}")
    dtype = np.result_type(a.dtype, a.dtype if same else b.dtype, np.float32)
    a = a.astype(dtype, copy=False)
    b = a if same else b.astype(dtype, copy=False)
    return a, b, same


def _resolve_impl(impl, a):
    """'auto' is 'numba' for NumPy arrays, 'cuda' (GEMM on cuBLAS + a finishing kernel) for CuPy arrays."""
    check_choice(impl, "impl", _IMPLS)
    if impl == "auto":
        return "cuda" if is_cupy_array(a) else "numba"
    if impl == "numba" and is_cupy_array(a):
        raise TypeError("impl='numba' needs NumPy arrays; use impl='cuda' or 'reference' for CuPy arrays")
    if impl == "cuda" and not is_cupy_array(a):
        raise TypeError("impl='cuda' needs CuPy arrays (scratchface.backend.to_device)")
    return impl


def _rows_per_block(block_size, n, m):
    if block_size is None:
        return max(1, min(max(n, 1), _BLOCK_ELEMENTS // max(m, 1)))
    return check_positive_int(block_size, "block_size")


def _unit_rows(x, eps):
    """Rows divided by their norm (rows of norm < eps are divided by eps: a zero row stays zero)."""
    xp = get_array_module(x)
    norms = xp.sqrt(xp.sum(x * x, axis=1))
    return x / xp.maximum(norms, x.dtype.type(eps))[:, None]


def _sq_norms(x):
    xp = get_array_module(x)
    return xp.einsum("ij,ij->i", x, x)


# ----------------------------------------------------------------------------- readable versions

def _sq_euclidean_reference(a, b, same):
    xp = get_array_module(a)
    d = _sq_norms(a)[:, None] + _sq_norms(b)[None, :] - 2 * (a @ b.T)
    d = xp.maximum(d, 0)
    if same:
        xp.fill_diagonal(d, 0)
    return d


def _cosine_reference(a, b, same, eps):
    xp = get_array_module(a)
    an = _unit_rows(a, eps)
    bn = an if same else _unit_rows(b, eps)
    d = xp.clip(1 - an @ bn.T, 0, 2)
    if same:
        xp.fill_diagonal(d, 0)
    return d


# ----------------------------------------------------------------------------- fast versions

def _sq_euclidean_numba(a, b, same, block_size):
    from .kernels import distances as _k  # noqa: PLC0415  heavy: Numba, imported only when a kernel runs

    n, m = a.shape[0], b.shape[0]
    out = np.empty((n, m), dtype=a.dtype)
    a2, b2 = _sq_norms(a), _sq_norms(b)
    bt = b.T
    rows = _rows_per_block(block_size, n, m)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        block = out[start:stop]
        np.dot(a[start:stop], bt, out=block)  # BLAS writes the products straight into the result
        _k.finish_sq_euclidean(block, a2[start:stop], b2, start, same)
    return out


def _cosine_numba(a, b, same, eps, block_size):
    from .kernels import distances as _k  # noqa: PLC0415  heavy: Numba, imported only when a kernel runs

    an = np.ascontiguousarray(_unit_rows(a, eps))
    bn = an if same else _unit_rows(b, eps)
    n, m = an.shape[0], bn.shape[0]
    out = np.empty((n, m), dtype=a.dtype)
    bt = bn.T
    rows = _rows_per_block(block_size, n, m)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        block = out[start:stop]
        np.dot(an[start:stop], bt, out=block)
        _k.finish_cosine(block, start, same)
    return out


def _nearest_numba(a, b, same, k, metric, exclude_self, block_size):
    """Exact top-k on the CPU: blocked GEMM candidates, then float64 refinement (see ``nearest_neighbors``)."""
    from .kernels import _numba as _threads  # noqa: PLC0415  heavy: Numba, imported only when a kernel runs
    from .kernels import distances as _k  # noqa: PLC0415

    a = np.ascontiguousarray(a)
    b = a if same else np.ascontiguousarray(b)
    n, d = a.shape
    candidates = b.shape[0] - 1 if exclude_self else b.shape[0]
    kk = min(k + _EXTRA_CANDIDATES, candidates)
    w = _sq_norms(b) if metric == "sqeuclidean" else np.zeros(b.shape[0], dtype=a.dtype)
    work = n * b.shape[0] * d
    # with BLAS limited to one thread, each Numba worker runs its own GEMMs. Small searches run on the calling thread.
    with _threads.blas_single_threaded(), _threads.single_thread_below(work):
        threads = _threads.numba.get_num_threads()
        rows = block_size or max(1, min(_QUERY_BLOCK, -(-n // threads)))
        # fewer query blocks than threads (a few probes, a large gallery): split the gallery too
        parts = max(1, min(threads // -(-n // rows), -(-b.shape[0] // _GALLERY_BLOCK)))
        cand_index = np.empty((parts, n, kk), dtype=np.int64)
        cand_score = np.empty((parts, n, kk), dtype=a.dtype)
        _k.knn_candidates(a, b, w, exclude_self, rows, _GALLERY_BLOCK, cand_index, cand_score)
        if parts > 1:
            merged_index, merged_score = np.empty((n, kk), dtype=np.int64), np.empty((n, kk), dtype=a.dtype)
            _k.merge_parts(cand_index, cand_score, merged_index, merged_score)
            cand_index, cand_score = merged_index, merged_score
        else:
            cand_index, cand_score = cand_index[0], cand_score[0]
    if kk == candidates:
        cand_score[:, -1] = np.inf  # every column is a candidate: nothing was discarded
    error_coef = 2.0 * (d + 8) * np.finfo(a.dtype).eps / 2
    g_norm_max = float(np.sqrt(w.max())) if metric == "sqeuclidean" else 1.0 + 1e-6
    indices = np.empty((n, k), dtype=np.int64)
    dist = np.empty((n, k), dtype=np.float64)
    _k.refine_topk(a, b, _k.SQEUCLIDEAN if metric == "sqeuclidean" else _k.COSINE, same, exclude_self,
                   cand_index, cand_score, error_coef, g_norm_max, indices, dist)
    return indices, dist.astype(a.dtype)


# ----------------------------------------------------------------------------- public API

def squared_euclidean_distances(a, b=None, *, impl="auto", block_size=None):
    """Matrix of squared Euclidean distances between the rows of ``a`` and ``b``.

    Parameters
    ----------
    a : array, shape (n, d), float
    b : array, shape (m, d), float, optional
        Omitted (or ``b is a``): distances within ``a``, with an exactly zero diagonal.
    impl : {'auto', 'reference', 'numba', 'cuda'}
        'auto' is 'numba' for NumPy arrays and 'reference' for CuPy arrays.
    block_size : int, optional
        Rows of ``a`` per block in the Numba path (default: about 4M entries per block).

    Returns
    -------
    d : array, shape (n, m)
        :math:`\\lVert a_i - b_j \\rVert^2`, in the common float dtype of the
        inputs (at least float32), never negative.

    Notes
    -----
    Computed as :math:`\\lVert a_i \\rVert^2 + \\lVert b_j \\rVert^2 - 2 a_i^\\top b_j`
    then clamped at 0. The absolute rounding error is about
    ``eps * (|a_i|^2 + |b_j|^2)``, so distances much smaller than that (near
    duplicates) carry no correct digits; compute ``((a_i - b_j)**2).sum()``
    directly for those.

    Examples
    --------
    >>> a = np.array([[0.0, 0.0], [3.0, 4.0]])
    >>> squared_euclidean_distances(a)
    array([[ 0., 25.],
           [25.,  0.]])
    """
    a, b, same = _check_sets(a, b)
    impl = _resolve_impl(impl, a)
    if impl == "cuda":
        from .kernels.cuda.distances import pairwise_distances_cuda  # noqa: PLC0415  optional: CuPy, numba.cuda
        return pairwise_distances_cuda(a, None if same else b, metric="sqeuclidean")
    if impl == "reference":
        return _sq_euclidean_reference(a, b, same)
    return _sq_euclidean_numba(a, b, same, block_size)


def cosine_distances(a, b=None, *, impl="auto", eps=1e-12, block_size=None):
    """Matrix of cosine distances ``1 - cos(a_i, b_j)`` between the rows of ``a`` and ``b``.

    Parameters
    ----------
    a : array, shape (n, d), float
    b : array, shape (m, d), float, optional
        Omitted (or ``b is a``): distances within ``a``, with an exactly zero diagonal.
    impl : {'auto', 'reference', 'numba', 'cuda'}
    eps : float
        Rows are divided by ``max(norm, eps)``: a zero row is at distance 1 from every other row.
    block_size : int, optional
        Rows per block in the Numba path.

    Returns
    -------
    d : array, shape (n, m), values in [0, 2]

    Notes
    -----
    For unit vectors :math:`\\lVert a - b \\rVert^2 = 2 (1 - \\cos)`, so on
    L2-normalised embeddings both metrics rank neighbours alike.
    """
    a, b, same = _check_sets(a, b)
    eps = check_positive_float(eps, "eps")
    impl = _resolve_impl(impl, a)
    if impl == "cuda":
        from .kernels.cuda.distances import pairwise_distances_cuda  # noqa: PLC0415  optional: CuPy, numba.cuda
        return pairwise_distances_cuda(a, None if same else b, metric="cosine", eps=eps)
    if impl == "reference":
        return _cosine_reference(a, b, same, eps)
    return _cosine_numba(a, b, same, eps, block_size)


def pairwise_distances(a, b=None, *, metric="sqeuclidean", impl="auto", block_size=None):
    """``squared_euclidean_distances`` or ``cosine_distances``, chosen by ``metric``."""
    check_choice(metric, "metric", _METRICS)
    if metric == "sqeuclidean":
        return squared_euclidean_distances(a, b, impl=impl, block_size=block_size)
    return cosine_distances(a, b, impl=impl, block_size=block_size)


def nearest_neighbors(queries, gallery=None, *, k=1, metric="sqeuclidean", exclude_self=False,
                      block_size=None, impl="auto"):
    """The ``k`` nearest gallery rows of every query (exact search, bounded memory).

    Identification: for each probe embedding, the closest enrolled faces.

    Parameters
    ----------
    queries : array, shape (n, d), float
    gallery : array, shape (m, d), float, optional
        Omitted: the queries against themselves (the diagonal distance is exactly 0).
    k : int
        Neighbours per query, ``1 <= k <= m`` (``m - 1`` with ``exclude_self``).
    metric : {'sqeuclidean', 'cosine'}
    exclude_self : bool
        Only with ``gallery`` omitted: never return a query as its own
        neighbour (leave-one-out identification on one labelled set).
    block_size : int, optional
        Query rows per block: 1024 for 'reference' (which then holds
        ``1024 x m`` distances), at most 256 for 'numba' (default: enough
        blocks for every thread).
    impl : {'auto', 'reference', 'numba', 'cuda'}
        'reference' computes each block's distances with the expanded formula
        and sorts them (``argsort(kind='stable')``). 'numba' is the fast exact
        search below.

    Returns
    -------
    indices : int64 array, shape (n, k)
        Gallery rows, nearest first; equal distances keep the lower index first.
    distances : array, shape (n, k)
        The matching distances. 'numba' computes them directly in float64,
        :math:`\\sum_t (q_t - g_t)^2` or :math:`1 - \\sum_t \\hat q_t \\hat g_t`
        on unit rows, then casts to the inputs' dtype; 'reference' as
        ``pairwise_distances`` computes them.

    Raises
    ------
    ValueError
        ``k`` larger than the number of candidates, ``exclude_self`` with a gallery.

    Notes
    -----
    The 'numba' search (:mod:`scratchface.kernels.distances`) works like
    faiss's ``IndexFlatL2``: the queries are cut into blocks of at most 256
    rows, the gallery into blocks of 1024 rows, and each pair of blocks is one
    GEMM :math:`Q G^\\top` (BLAS, in the inputs' dtype) into a buffer that stays
    in cache. The score :math:`\\lVert g_j \\rVert^2 - 2 q_i^\\top g_j`
    (the squared distance less the row's constant :math:`\\lVert q_i \\rVert^2`)
    is compared with the row's current ``k + 4``-th best, so almost every
    candidate costs one comparison. Each thread owns whole query blocks (and,
    with fewer query blocks than threads, a part of the gallery; the parts'
    lists are merged after) and runs its own single-threaded GEMM (threadpoolctl), so
    one pool of threads does all the work.

    The ``k + 4`` candidates are then recomputed directly in float64 and sorted;
    they contain the exact ``k`` nearest (of the float64 computation) when the
    ``k``-th of them lies below every discarded distance, allowing for the
    rounding bound :math:`(d + 8)\\,2u\\,(\\lVert q_i \\rVert + \\max_j \\lVert g_j \\rVert)^2`
    of the expanded formula (Higham, *Accuracy and Stability of Numerical
    Algorithms*, 2002, eq. 3.5; ``u`` the unit roundoff). A row that fails
    this test is searched again over the whole gallery in float64. The result is
    therefore the exact neighbours, even in float32.

    Memory: besides the ``(n, k + 4)`` candidate lists and the ``m`` gallery
    norms, each thread holds one ``256 x 1024`` block of products (1 MB in
    float32), whatever the size of the gallery.
    """
    a, b, same = _check_sets(queries, gallery, "queries", "gallery")
    check_choice(metric, "metric", _METRICS)
    k = check_positive_int(k, "k")
    if block_size is not None:
        block_size = check_positive_int(block_size, "block_size")
    exclude_self = bool(exclude_self)
    if exclude_self and not same:
        raise ValueError("exclude_self=True needs gallery=None (the queries searched among themselves)")
    n, m = a.shape[0], b.shape[0]
    candidates = m - 1 if exclude_self else m
    if k > candidates:
        raise ValueError(f"k must be at most the number of gallery rows to choose from ({candidates}), got {k}")
    impl = _resolve_impl(impl, a)
    if impl == "cuda" and n:
        from .kernels.cuda.distances import nearest_neighbors_cuda  # noqa: PLC0415  optional: CuPy, numba.cuda
        return nearest_neighbors_cuda(a, None if same else b, k=k, metric=metric,
                                     exclude_self=exclude_self, block_size=max(block_size or 0, 8192))
    xp = get_array_module(a)
    indices = xp.empty((n, k), dtype=np.int64)
    distances = xp.empty((n, k), dtype=a.dtype)
    if n == 0:
        return indices, distances
    if metric == "cosine":
        a = _unit_rows(a, 1e-12)
        b = a if same else _unit_rows(b, 1e-12)
    if impl == "numba":
        return _nearest_numba(a, b, same, k, metric, exclude_self, block_size)
    a2, b2 = _sq_norms(a), _sq_norms(b)
    block_size = block_size or _REFERENCE_QUERY_BLOCK
    # reference: distances of one block, then a stable sort of each row
    rows = xp.arange(block_size)
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        prod = a[start:stop] @ b.T
        if metric == "sqeuclidean":
            d = xp.maximum(a2[start:stop, None] + b2[None, :] - 2 * prod, 0)
        else:
            d = xp.clip(1 - prod, 0, 2)
        if same:
            r = rows[: stop - start]
            d[r, r + start] = xp.inf if exclude_self else 0
        order = xp.argsort(d, axis=1, kind="stable")[:, :k]
        indices[start:stop] = order
        distances[start:stop] = xp.take_along_axis(d, order, axis=1)
    return indices, distances


def normalize_rows(x, *, eps=1e-12):
    """Each row divided by its Euclidean norm: :math:`x_i / \\max(\\lVert x_i \\rVert_2, \\epsilon)`.

    Parameters
    ----------
    x : float array, shape (N, D)
    eps : float
        Floor of the norm (a zero row stays zero).

    Returns
    -------
    array, shape (N, D), the dtype of ``x``
        Unit rows: squared Euclidean distances between them are :math:`2 - 2 \\cos`.
    """
    x = np.asarray(x)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)
