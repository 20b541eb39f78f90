"""Dense (fully connected) layer: finite differences, torch autograd, bad input."""
import numpy as np
import pytest

from scratchface.gradcheck import PASS_THRESHOLD, check_layer
from scratchface.layers.dense import dense_backward, dense_forward, gradcheck_cases


def max_rel(a, ref):
    a, ref = np.asarray(a, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert a.shape == ref.shape
    return float(np.max(np.abs(a - ref)) / max(np.max(np.abs(ref)), 1e-300))


@pytest.mark.parametrize("n, d, m", [(4, 7, 5), (1, 1, 1), (3, 10, 2), (5, 2, 9)])
def test_dense_gradcheck(rng, n, d, m):
    inputs = {"x": rng.standard_normal((n, d)), "w": rng.standard_normal((d, m)), "b": rng.standard_normal(m)}
    result = check_layer(dense_forward, dense_backward, inputs)
    assert result.passed, result.errors


def test_dense_gradcheck_cases_pass(rng):
    for case in gradcheck_cases(rng):
        assert case.run().max_error < PASS_THRESHOLD, case.name


def test_dense_known_values():
    x = np.array([[1.0, 2.0]])
    w = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.5]])
    out, cache = dense_forward(x, w, np.array([0.0, 1.0, 2.0]))
    np.testing.assert_array_equal(out, [[5.0, 3.0, 2.0]])
    dx, dw, db = dense_backward(np.array([[1.0, 0.0, 0.0]]), cache)
    np.testing.assert_array_equal(dx, [[1.0, 2.0]])          # row 0 of w
    np.testing.assert_array_equal(dw, [[1.0, 0, 0], [2.0, 0, 0]])
    np.testing.assert_array_equal(db, [1.0, 0, 0])


def test_dense_without_bias_and_float32(rng):
    x, w = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((4, 2)).astype(np.float32)
    out, cache = dense_forward(x, w)
    assert out.dtype == np.float32
    dx, dw, db = dense_backward(np.ones((3, 2), dtype=np.float32), cache)
    assert db is None and dx.dtype == np.float32 and dw.shape == w.shape


def test_dense_matches_torch(torch, rng):
    x, w, b = rng.standard_normal((6, 11)), rng.standard_normal((11, 4)), rng.standard_normal(4)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = torch.nn.functional.linear(tx, tw.T, tb)         # torch stores weights as (M, D)
    dout = rng.standard_normal(tuple(tout.shape))
    tout.backward(torch.tensor(dout))
    out, cache = dense_forward(x, w, b)
    assert max_rel(out, tout.detach().numpy()) < 1e-10
    for got, want in zip(dense_backward(dout, cache), (tx.grad, tw.grad, tb.grad)):
        assert max_rel(got, want.numpy()) < 1e-10


def test_dense_bad_input(rng):
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal(2)
    with pytest.raises(ValueError, match="x must be a 2-D array"):
        dense_forward(x[None], w, b)
    with pytest.raises(ValueError, match=r"w must have shape \(D, M\) with D = 4"):
        dense_forward(x, w[:3], b)
    with pytest.raises(ValueError, match=r"b must have shape \(2,\)"):
        dense_forward(x, w, b[:1])
    with pytest.raises(TypeError, match="x must have a floating point dtype"):
        dense_forward(x.astype(int), w, b)
    with pytest.raises(TypeError, match="w must have the dtype of x"):
        dense_forward(x, w.astype(np.float32), b)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        dense_forward(bad, w, b)
    with pytest.raises(ValueError, match="impl must be one of"):
        dense_forward(x, w, b, impl="blas")
    out, cache = dense_forward(x, w, b)
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output \(3, 2\)"):
        dense_backward(out.T, cache)
    with pytest.raises(TypeError, match="cache must be the DenseCache"):
        dense_backward(out, None)


@pytest.mark.parametrize("n, d, m", [(32, 1024, 128), (3, 7, 5), (1, 1, 1), (40, 3000, 700), (5, 60, 3),
                                     (9000, 50, 30)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dense_numba_equals_reference(rng, n, d, m, dtype):
    # blocks of columns (40 x 3000 x 700) or of rows (9000 x 50 x 30: MTCNN-like) on Numba's threads against x @ w
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((n, d), (d, m), (m,)))
    dout = rng.standard_normal((n, m)).astype(dtype)
    want, want_cache = dense_forward(x, w, b, impl="reference")
    got, cache = dense_forward(x, w, b, impl="numba")
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert got.dtype == dtype and max_rel(got, want) < tol
    for g, r in zip(dense_backward(dout, cache), dense_backward(dout, want_cache)):
        assert g.dtype == dtype and max_rel(g, r) < tol
    strided = np.asfortranarray(x)                                           # any layout in, the same values
    assert max_rel(dense_forward(strided, w, b, impl="numba")[0], want) < tol


def test_dense_leaves_no_blas_thread_spinning(rng):
    """The issue's 'no spinning workers': after NN2's last layer, (32, 1024) @ (1024, 128) float32, the
    process uses no CPU while it sleeps. (With ``impl='reference'``, NumPy's OpenBLAS on 2 threads, its
    worker spun for 0.10 s of the sleep on this project's machines and slowed the convolutions after it.)"""
    import resource
    import time

    def cpu_seconds():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    x = rng.standard_normal((32, 1024)).astype(np.float32)
    w = rng.standard_normal((1024, 128)).astype(np.float32)
    time.sleep(0.3)                            # an earlier test's NumPy product may still have a worker spinning
    out, cache = dense_forward(x, w)
    dense_backward(out, cache)
    before = cpu_seconds()
    time.sleep(0.3)
    assert cpu_seconds() - before < 0.05
