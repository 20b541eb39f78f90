"""Pairwise distances and top-k neighbours against SciPy's cdist and naive loops."""
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from scratchface.distances import cosine_distances, nearest_neighbors, pairwise_distances, squared_euclidean_distances

IMPLS = ("reference", "numba")


def _close(got, want, scale, tol):
    """|got - want| <= tol * scale elementwise (scale: the size of the cancelled terms)."""
    assert got.shape == want.shape
    assert np.all(np.abs(got.astype(np.float64) - want) <= tol * scale)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", [(7, 5, 3), (1, 1, 1), (33, 17, 9), (20, 64, 128)])
def test_sq_euclidean_matches_cdist(impl, shape, rng):
    n, m, d = shape
    a, b = rng.standard_normal((n, d)), rng.standard_normal((m, d))
    want = cdist(a, b, "sqeuclidean")
    scale = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] + 1
    got = squared_euclidean_distances(a, b, impl=impl, block_size=4)
    assert got.dtype == np.float64
    _close(got, want, scale, 1e-13)
    got32 = squared_euclidean_distances(a.astype(np.float32), b.astype(np.float32), impl=impl)
    assert got32.dtype == np.float32
    _close(got32, want, scale, 2e-6)


@pytest.mark.parametrize("impl", IMPLS)
def test_cosine_matches_cdist(impl, rng):
    a, b = rng.standard_normal((13, 6)), rng.standard_normal((8, 6)) * 3
    want = cdist(a, b, "cosine")
    _close(cosine_distances(a, b, impl=impl, block_size=5), want, 1.0, 1e-14)
    _close(cosine_distances(a.astype(np.float32), b.astype(np.float32), impl=impl), want, 1.0, 1e-6)
    assert np.array_equal(pairwise_distances(a, b, metric="cosine", impl=impl),
                          cosine_distances(a, b, impl=impl))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_identical_sets_exact_zero_diagonal_and_nonnegative(impl, dtype, rng):
    # large offset: a^2 + b^2 - 2ab cancels badly, so without the clamp some entries go negative
    a = (rng.standard_normal((50, 16)) * 1e-3 + 10.0).astype(dtype)
    raw = (a * a).sum(1)[:, None] + (a * a).sum(1)[None, :] - 2 * a @ a.T
    assert raw.min() < 0 or np.any(np.diag(raw) != 0)  # the problem the clamp solves is real here
    for d in (squared_euclidean_distances(a, impl=impl, block_size=7),
              squared_euclidean_distances(a, a, impl=impl),
              cosine_distances(a, impl=impl, block_size=7)):
        assert d.min() >= 0
        assert np.all(np.diag(d) == 0)
        assert np.allclose(d, d.T, atol=1e-3 if dtype == np.float32 else 1e-9)


def test_fast_equals_reference_float32(rng):
    a = rng.standard_normal((301, 67)).astype(np.float32)
    b = rng.standard_normal((129, 67)).astype(np.float32)
    ref = squared_euclidean_distances(a, b, impl="reference")
    fast = squared_euclidean_distances(a, b, impl="numba", block_size=64)
    assert np.allclose(fast, ref, rtol=1e-5, atol=1e-4)


def test_mixed_dtypes_and_empty_sets(rng):
    a = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal((2, 3))
    assert squared_euclidean_distances(a, b).dtype == np.float64
    assert squared_euclidean_distances(a.astype(np.float16), a.astype(np.float16)).dtype == np.float32
    for impl in IMPLS:
        assert squared_euclidean_distances(np.zeros((0, 3)), b, impl=impl).shape == (0, 2)
        assert cosine_distances(a, np.zeros((0, 3), np.float32), impl=impl).shape == (4, 0)


def test_zero_row_cosine_is_one():
    a = np.array([[0.0, 0.0], [1.0, 0.0]])
    for impl in IMPLS:
        d = cosine_distances(a, np.array([[0.0, 2.0], [-1.0, 0.0]]), impl=impl)
        assert np.allclose(d, [[1.0, 1.0], [1.0, 2.0]])


def _brute_topk(d, k):
    """Naive: for each row, the k smallest by (distance, index)."""
    out = []
    for row in d:
        pairs = sorted((float(v), j) for j, v in enumerate(row))[:k]
        out.append([j for _, j in pairs])
    return np.array(out, dtype=np.int64).reshape(len(d), k)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("metric", ["sqeuclidean", "cosine"])
def test_nearest_neighbors_matches_brute_force(impl, metric, rng):
    q, g = rng.standard_normal((23, 5)), rng.standard_normal((31, 5))
    want_d = cdist(q, g, metric)
    idx, dist = nearest_neighbors(q, g, k=4, metric=metric, block_size=6, impl=impl)
    assert idx.dtype == np.int64 and idx.shape == (23, 4) and dist.shape == (23, 4)
    assert np.array_equal(idx, _brute_topk(want_d, 4))
    assert np.allclose(dist, np.take_along_axis(want_d, idx, 1), atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_nearest_neighbors_ties_keep_lower_index(impl):
    g = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    q = np.array([[0.0, 0.0], [1.0, 0.0]])
    idx, dist = nearest_neighbors(q, g, k=3, impl=impl)
    assert idx.tolist() == [[0, 1, 2], [0, 2, 1]]
    assert dist.tolist() == [[1.0, 1.0, 1.0], [0.0, 0.0, 2.0]]


@pytest.mark.parametrize("impl", IMPLS)
def test_nearest_neighbors_self_and_leave_one_out(impl, rng):
    x = rng.standard_normal((17, 4)).astype(np.float32)
    idx, dist = nearest_neighbors(x, k=1, impl=impl, block_size=5)
    assert np.array_equal(idx[:, 0], np.arange(17)) and np.all(dist == 0)
    idx, _ = nearest_neighbors(x, k=2, exclude_self=True, impl=impl, block_size=5)
    d = cdist(x.astype(np.float64), x.astype(np.float64), "sqeuclidean")
    np.fill_diagonal(d, np.inf)
    assert np.array_equal(idx, _brute_topk(d, 2))


def _naive_topk64(q, g, k, exclude_self=False):
    """Naive float64: every distance by the direct formula (SciPy's cdist), a stable sort per row."""
    d = cdist(q.astype(np.float64), g.astype(np.float64), "sqeuclidean")
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_top_k_across_gallery_blocks_matches_naive_float64(dtype, rng):
    # 2,500 gallery rows: three GEMM blocks of 1,024 columns; 70 queries in blocks of 16 rows
    q = rng.standard_normal((70, 24)).astype(dtype)
    g = rng.standard_normal((2500, 24)).astype(dtype)
    want_i, want_d = _naive_topk64(q, g, 7)
    for block_size in (16, None):
        idx, dist = nearest_neighbors(q, g, k=7, impl="numba", block_size=block_size)
        assert np.array_equal(idx, want_i)
        assert dist.dtype == dtype
        np.testing.assert_allclose(dist, want_d, rtol=1e-6 if dtype == np.float32 else 1e-14)
    ref_i, _ = nearest_neighbors(q, g, k=7, impl="reference")
    assert np.array_equal(ref_i, want_i)  # the readable version agrees on this well separated data


def test_fast_top_k_exact_where_float32_expansion_misranks(rng):
    # rows far from the origin: |q|^2 + |g|^2 - 2 q.g in float32 loses the differences (rounding
    # ~ 1e-7 * 2e4), so the float32 ranking is wrong; the float64 re-ranking and the full-scan
    # fallback must still return the naive float64 neighbours
    q = (100.0 + rng.standard_normal((40, 16)) * 0.05).astype(np.float32)
    g = (100.0 + rng.standard_normal((3000, 16)) * 0.05).astype(np.float32)
    want_i, want_d = _naive_topk64(q, g, 5)
    ref_i, _ = nearest_neighbors(q, g, k=5, impl="reference")
    assert not np.array_equal(ref_i, want_i)  # the float32 expansion alone does misrank here
    idx, dist = nearest_neighbors(q, g, k=5, impl="numba", block_size=8)
    assert np.array_equal(idx, want_i)
    np.testing.assert_allclose(dist, want_d, rtol=1e-6)


def test_fast_top_k_duplicates_and_leave_one_out_across_blocks(rng):
    # 12 copies of one row (more than k + 4 candidates tie): lower indices first, via the full scan
    g = rng.standard_normal((1500, 8))
    g[100:1300:100] = g[7]
    idx, dist = nearest_neighbors(g[[7]], g, k=10, impl="numba")
    assert idx[0].tolist() == [7, 100, 200, 300, 400, 500, 600, 700, 800, 900]
    assert np.all(dist == 0)
    want_i, _ = _naive_topk64(g, g, 3, exclude_self=True)
    idx, _ = nearest_neighbors(g, k=3, exclude_self=True, impl="numba", block_size=100)
    assert np.array_equal(idx, want_i)
    idx, dist = nearest_neighbors(g, k=1, impl="numba", block_size=100)
    assert np.all(dist == 0)


def test_fast_top_k_on_one_thread_gives_the_same(rng):
    # one Numba thread: one query block after the other, the gallery never split
    import numba
    q, g = rng.standard_normal((300, 16)), rng.standard_normal((2100, 16))
    want_i, _ = _naive_topk64(q, g, 3)
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        idx, _ = nearest_neighbors(q, g, k=3, impl="numba")
    finally:
        numba.set_num_threads(previous)
    assert np.array_equal(idx, want_i)


def test_gallery_split_into_parts_gives_the_same_candidates(rng):
    # few queries, many threads: the gallery is split into parts whose lists are merged afterwards
    from scratchface.kernels import distances as k
    q, g = rng.standard_normal((5, 8)), rng.standard_normal((3000, 8))
    g[2500] = g[10]  # a tie across parts: the lower index must come first after the merge
    q[0] = g[10] + 1e-3
    w = (g * g).sum(1)
    one_i, one_s = np.empty((1, 5, 6), np.int64), np.empty((1, 5, 6))
    k.knn_candidates(q, g, w, False, 2, 256, one_i, one_s)
    three_i, three_s = np.empty((3, 5, 6), np.int64), np.empty((3, 5, 6))
    k.knn_candidates(q, g, w, False, 2, 256, three_i, three_s)
    merged_i, merged_s = np.empty((5, 6), np.int64), np.empty((5, 6))
    k.merge_parts(three_i, three_s, merged_i, merged_s)
    assert np.array_equal(merged_i, one_i[0]) and np.array_equal(merged_s, one_s[0])
    assert merged_i[0, :2].tolist() == [10, 2500]
    assert len({tuple(p[:, 0]) for p in three_i}) == 3  # the parts did find different columns
    want_i, _ = _naive_topk64(q[:1], g, 4)
    assert np.array_equal(nearest_neighbors(q[:1], g, k=4, impl="numba")[0], want_i)


def test_bad_input():
    a = np.zeros((3, 4))
    with pytest.raises(ValueError, match="same number of columns"):
        squared_euclidean_distances(a, np.zeros((2, 5)))
    with pytest.raises(ValueError, match="a must be a 2-D array"):
        squared_euclidean_distances(np.zeros(3))
    with pytest.raises(TypeError, match="b must have a floating point dtype"):
        squared_euclidean_distances(a, np.zeros((2, 4), dtype=int))
    with pytest.raises(ValueError, match="contains NaN"):
        cosine_distances(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="impl must be one of"):
        squared_euclidean_distances(a, impl="fast")
    with pytest.raises(ValueError, match="metric must be one of"):
        pairwise_distances(a, metric="l1")
    with pytest.raises(ValueError, match="k must be at most"):
        nearest_neighbors(a, k=4)
    with pytest.raises(ValueError, match="k must be at most the number of gallery rows to choose from \\(2\\)"):
        nearest_neighbors(a, k=3, exclude_self=True)
    with pytest.raises(ValueError, match="exclude_self=True needs gallery=None"):
        nearest_neighbors(a, np.zeros((5, 4)), exclude_self=True)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        nearest_neighbors(a, k=0)
    with pytest.raises(ValueError, match="block_size must be a positive integer"):
        squared_euclidean_distances(a, block_size=0, impl="numba")


def test_cuda_impl_needs_cupy_arrays(rng):
    a = rng.standard_normal((3, 4))
    with pytest.raises(TypeError, match="impl='cuda' needs CuPy arrays"):
        squared_euclidean_distances(a, impl="cuda")


@pytest.mark.gpu
def test_public_api_dispatches_cupy_arrays_to_the_gpu(rng):  # pragma: no cover - GPU machines only
    from scratchface.backend import cupy_available, to_device, to_host
    if not cupy_available():
        pytest.skip("needs CuPy and a CUDA GPU")
    a, b = rng.standard_normal((50, 16)), rng.standard_normal((40, 16))
    for metric in ("sqeuclidean", "cosine"):
        got = to_host(pairwise_distances(to_device(a), to_device(b), metric=metric))
        np.testing.assert_allclose(got, pairwise_distances(a, b, metric=metric, impl="reference"), atol=1e-10)
    idx, _ = nearest_neighbors(to_device(a), to_device(b), k=3)
    np.testing.assert_array_equal(to_host(idx), nearest_neighbors(a, b, k=3, impl="reference")[0])
