"""LRN, batch norm and L2 normalisation: hand-worked values, finite differences, torch, bad input."""
import numpy as np
import pytest

from gradcheck_helpers import assert_gradients
from scratchface.layers import normalization
from scratchface.layers.normalization import (
    batch_norm_backward, batch_norm_forward, l2_normalize_backward, l2_normalize_forward, lrn_backward,
    lrn_forward)


def torch_run(torch, fn, arrays, dout):
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), [t.grad.numpy() for t in tensors]


# ----------------------------------------------------------------------------- LRN

def lrn_loops(x, size, alpha, beta, k):
    """LRN by explicit loops over channels (the formula of torch's documentation)."""
    out = np.empty_like(x)
    c_total = x.shape[1]
    for c in range(c_total):
        lo, hi = max(0, c - size // 2), min(c_total - 1, c + (size - 1) // 2)
        s = sum(x[:, j] ** 2 for j in range(lo, hi + 1))
        out[:, c] = x[:, c] / (k + alpha / size * s) ** beta
    return out


def test_lrn_by_hand():
    # one pixel, channels (1, 2, 3), size 3, alpha 3, beta 1, k 1: D_c = 1 + sum of squares over c-1..c+1
    x = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)
    out, _ = lrn_forward(x, size=3, alpha=3.0, beta=1.0, k=1.0)
    np.testing.assert_allclose(out.ravel(), [1 / (1 + 1 + 4), 2 / (1 + 1 + 4 + 9), 3 / (1 + 4 + 9)], rtol=1e-15)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 9])
def test_lrn_matches_loops(rng, size):
    x = rng.standard_normal((2, 6, 3, 4))
    out, _ = lrn_forward(x, size=size, alpha=0.3, beta=0.75, k=2.0)
    np.testing.assert_allclose(out, lrn_loops(x, size, 0.3, 0.75, 2.0), rtol=1e-13)


@pytest.mark.parametrize("beta", [0.75, 0.6, 1.0])
@pytest.mark.parametrize("shape, size", [((2, 6, 3, 5), 5), ((1, 1, 2, 2), 3), ((3, 7), 4), ((2, 9, 700), 1),
                                         ((1, 4, 33, 17), 9)])
def test_lrn_kernel_equals_reference(rng, shape, size, beta):
    """The Numba kernel (``beta = 3/4`` by two square roots) against the NumPy lines, float64 and float32."""
    x = rng.standard_normal(shape)
    dout = rng.standard_normal(shape)
    want, cache = lrn_forward(x, size=size, alpha=0.7, beta=beta, k=1.5, impl="reference")
    want_dx = lrn_backward(dout, cache)
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        got, fast = lrn_forward(x.astype(dtype), size=size, alpha=0.7, beta=beta, k=1.5, impl="numba")
        got_dx = lrn_backward(dout.astype(dtype), fast)
        assert fast.impl == "numba" and got.dtype == got_dx.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
        np.testing.assert_allclose(fast.denom, cache.denom, rtol=tol)
        np.testing.assert_allclose(got_dx, want_dx, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape, size", [((2, 6, 3, 3), 3), ((2, 5, 2, 3), 4), ((1, 3, 2, 2), 5), ((3, 7, 1, 1), 2),
                                         ((2, 4, 3), 3), ((1, 1, 2, 2), 3)])
def test_lrn_gradcheck(rng, shape, size):
    assert_gradients(lrn_forward, lrn_backward, {"x": rng.standard_normal(shape)},
                     {"size": size, "alpha": 0.5, "beta": 0.75, "k": 1.5})


@pytest.mark.parametrize("size, alpha, beta, k", [(5, 1e-4, 0.75, 1.0), (2, 0.5, 0.6, 2.0), (4, 1.0, 1.5, 1.0),
                                                  (3, 2.0, 0.75, 0.5)])
def test_lrn_matches_torch(torch, rng, size, alpha, beta, k):
    x = rng.standard_normal((2, 7, 4, 3))
    dout = rng.standard_normal(x.shape)
    out, cache = lrn_forward(x, size=size, alpha=alpha, beta=beta, k=k)
    layer = torch.nn.LocalResponseNorm(size, alpha=alpha, beta=beta, k=k)
    t_out, (t_dx,) = torch_run(torch, layer, [x], dout)
    np.testing.assert_allclose(out, t_out, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(lrn_backward(dout, cache), t_dx, rtol=1e-10, atol=1e-13)


# ----------------------------------------------------------------------------- batch norm

def test_batch_norm_train_standardises_and_updates_running_stats(rng):
    x = 3.0 + 2.0 * rng.standard_normal((8, 3, 4, 5))
    gamma, beta = np.ones(3), np.zeros(3)
    rm, rv = np.full(3, 0.5), np.full(3, 2.0)
    rm_before, rv_before = rm.copy(), rv.copy()
    out, cache = batch_norm_forward(x, gamma, beta, running_mean=rm, running_var=rv, momentum=0.25, eps=1e-12)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, rtol=1e-10)
    m = 8 * 4 * 5
    np.testing.assert_allclose(cache.running_mean, 0.75 * 0.5 + 0.25 * x.mean(axis=(0, 2, 3)), rtol=1e-14)
    np.testing.assert_allclose(cache.running_var, 0.75 * 2.0 + 0.25 * x.var(axis=(0, 2, 3)) * m / (m - 1),
                               rtol=1e-14)
    # nothing is modified behind the user's back
    np.testing.assert_array_equal(rm, rm_before)
    np.testing.assert_array_equal(rv, rv_before)


def test_batch_norm_fresh_layer_starts_at_zero_mean_unit_variance(rng):
    x = rng.standard_normal((5, 2))
    _, cache = batch_norm_forward(x, np.ones(2), np.zeros(2), momentum=1.0)
    np.testing.assert_allclose(cache.running_mean, x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(cache.running_var, x.var(axis=0, ddof=1), rtol=1e-14)
    _, cache = batch_norm_forward(x, np.ones(2), np.zeros(2), momentum=0.0)
    np.testing.assert_array_equal(cache.running_mean, [0, 0])
    np.testing.assert_array_equal(cache.running_var, [1, 1])


def test_batch_norm_eval_by_hand():
    x = np.array([[1.0, 10.0], [3.0, 4.0]])
    out, cache = batch_norm_forward(x, np.array([2.0, 1.0]), np.array([0.5, -1.0]), training=False,
                                    running_mean=np.array([1.0, 4.0]), running_var=np.array([4.0, 9.0]),
                                    eps=1e-300)
    np.testing.assert_allclose(out, [[0.5, 1.0], [2.5, -1.0]], rtol=1e-14)
    np.testing.assert_array_equal(cache.running_mean, [1.0, 4.0])


@pytest.mark.parametrize("shape", [(4, 5), (3, 4, 2, 3), (2, 1, 3, 3), (5, 3, 1, 1), (3, 2, 4)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(rng, shape, training):
    c = shape[1]
    kwargs = {"training": training}
    if not training:
        kwargs.update(running_mean=rng.standard_normal(c), running_var=rng.uniform(0.5, 2.0, c))
    assert_gradients(batch_norm_forward, batch_norm_backward,
                     {"x": rng.standard_normal(shape), "gamma": rng.standard_normal(c),
                      "beta": rng.standard_normal(c)}, kwargs)


@pytest.mark.parametrize("shape", [(6, 4), (3, 5, 4, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(torch, rng, shape, training):
    c = shape[1]
    x = 1.5 + rng.standard_normal(shape)
    gamma, beta = rng.standard_normal(c), rng.standard_normal(c)
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    dout = rng.standard_normal(shape)
    out, cache = batch_norm_forward(x, gamma, beta, running_mean=rm, running_var=rv, training=training,
                                    momentum=0.3, eps=1e-3)
    t_rm, t_rv = torch.tensor(rm), torch.tensor(rv)         # torch updates these in place

    def torch_bn(tx, tg, tb):
        return torch.nn.functional.batch_norm(tx, t_rm, t_rv, tg, tb, training=training, momentum=0.3, eps=1e-3)

    t_out, (t_dx, t_dgamma, t_dbeta) = torch_run(torch, torch_bn, [x, gamma, beta], dout)
    dx, dgamma, dbeta = batch_norm_backward(dout, cache)
    np.testing.assert_allclose(out, t_out, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(dx, t_dx, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(dgamma, t_dgamma, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(dbeta, t_dbeta, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(cache.running_mean, t_rm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(cache.running_var, t_rv.numpy(), rtol=1e-12)


def test_batch_norm_float32_keeps_dtype(rng):
    x = rng.standard_normal((4, 3, 2, 2))
    args = (x, rng.standard_normal(3), rng.standard_normal(3))
    out64, _ = batch_norm_forward(*args)
    out32, cache = batch_norm_forward(*(a.astype(np.float32) for a in args))
    assert out32.dtype == cache.running_mean.dtype == cache.running_var.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-5)
    assert all(g.dtype == np.float32 for g in batch_norm_backward(np.ones_like(out32), cache))


# ----------------------------------------------------------------------------- L2 normalisation

def test_l2_normalize_unit_norm_and_direction(rng):
    x = rng.standard_normal((6, 128)) * rng.uniform(0.1, 10, (6, 1))
    y, _ = l2_normalize_forward(x)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1, rtol=1e-14)
    np.testing.assert_allclose(y * np.linalg.norm(x, axis=1, keepdims=True), x, rtol=1e-13)
    np.testing.assert_allclose(l2_normalize_forward(np.array([[3.0, 4.0]]))[0], [[0.6, 0.8]], rtol=1e-15)


def test_l2_normalize_zero_vector_gives_zero_not_nan():
    x = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]])
    y, cache = l2_normalize_forward(x)
    np.testing.assert_array_equal(y[0], 0)
    dx = l2_normalize_backward(np.ones_like(x), cache)
    assert np.isfinite(dx).all()
    np.testing.assert_array_equal(dx[0], 1e10)          # dout / eps where the norm is clamped


@pytest.mark.parametrize("shape, axis", [((4, 7), 1), ((3, 5), -1), ((5, 3), 0), ((2, 3, 4), 1), ((1, 1), 1)])
def test_l2_normalize_gradcheck(rng, shape, axis):
    assert_gradients(l2_normalize_forward, l2_normalize_backward, {"x": rng.standard_normal(shape) + 0.1},
                     {"axis": axis})


@pytest.mark.parametrize("shape, axis", [((5, 16), 1), ((2, 3, 4), 2)])
def test_l2_normalize_matches_torch(torch, rng, shape, axis):
    x = rng.standard_normal(shape)
    dout = rng.standard_normal(shape)
    y, cache = l2_normalize_forward(x, axis=axis, eps=1e-10)
    t_y, (t_dx,) = torch_run(torch, lambda t: torch.nn.functional.normalize(t, dim=axis, eps=1e-10), [x], dout)
    np.testing.assert_allclose(y, t_y, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(l2_normalize_backward(dout, cache), t_dx, rtol=1e-10, atol=1e-13)


# ----------------------------------------------------------------------------- module cases, float32

def test_module_gradcheck_cases():
    cases = normalization.gradcheck_cases(np.random.default_rng(0))
    assert {c.name.split()[0] for c in cases} == {"lrn", "batch_norm", "l2_normalize"}
    for case in cases:
        assert_gradients(case.forward, case.backward, case.inputs, case.kwargs)


def test_float32_forward_matches_float64(rng):
    x = rng.standard_normal((2, 6, 4, 3))
    for forward, kwargs in [(lrn_forward, {"size": 5, "alpha": 0.5}), (l2_normalize_forward, {})]:
        out64, _ = forward(x, **kwargs)
        out32, cache = forward(x.astype(np.float32), **kwargs)
        assert out32.dtype == np.float32
        np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-6)
    _, cache = lrn_forward(x.astype(np.float32), size=3)
    assert lrn_backward(np.ones(x.shape, np.float32), cache).dtype == np.float32


# ----------------------------------------------------------------------------- bad input

def test_lrn_bad_input():
    x = np.ones((1, 3, 2, 2))
    with pytest.raises(TypeError, match="x must have a floating point dtype"):
        lrn_forward(np.ones((1, 3, 2, 2), dtype=int), size=3)
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        lrn_forward(np.full((1, 3, 2, 2), np.nan), size=3)
    with pytest.raises(ValueError, match=r"x must be an \(N, C, H, W\) array \(rank >= 2\)"):
        lrn_forward(np.ones(3), size=3)
    with pytest.raises(ValueError, match="size must be a positive integer, got 0"):
        lrn_forward(x, size=0)
    with pytest.raises(TypeError, match="size must be a positive integer"):
        lrn_forward(x, size=2.5)
    with pytest.raises(ValueError, match="k must be a finite positive number"):
        lrn_forward(x, size=3, k=0.0)
    with pytest.raises(ValueError, match="alpha must be a finite non-negative number"):
        lrn_forward(x, size=3, alpha=-1.0)
    _, cache = lrn_forward(x, size=3)
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output \(1, 3, 2, 2\)"):
        lrn_backward(np.ones((1, 3, 2)), cache)


def test_batch_norm_bad_input(rng):
    x = rng.standard_normal((4, 3))
    g, b = np.ones(3), np.zeros(3)
    with pytest.raises(TypeError, match="x must have a floating point dtype"):
        batch_norm_forward(np.ones((4, 3), dtype=int), g, b)
    with pytest.raises(ValueError, match="x contains NaN"):
        batch_norm_forward(np.full((4, 3), np.nan), g, b)
    with pytest.raises(ValueError, match=r"x must be an \(N, C\) or \(N, C, H, W\) array"):
        batch_norm_forward(np.ones(3), g, b)
    with pytest.raises(ValueError, match=r"gamma must have shape \(C,\) = \(3,\)"):
        batch_norm_forward(x, np.ones(4), b)
    with pytest.raises(TypeError, match="beta must have the dtype of x"):
        batch_norm_forward(x, g, b.astype(np.float32))
    with pytest.raises(ValueError, match="needs running_mean and running_var"):
        batch_norm_forward(x, g, b, training=False)
    with pytest.raises(ValueError, match="must be given together"):
        batch_norm_forward(x, g, b, running_mean=np.zeros(3))
    with pytest.raises(ValueError, match="running_var must be >= 0"):
        batch_norm_forward(x, g, b, running_mean=np.zeros(3), running_var=-np.ones(3))
    with pytest.raises(ValueError, match="more than one value per channel"):
        batch_norm_forward(np.ones((1, 3)), g, b)
    with pytest.raises(TypeError, match="training must be True or False"):
        batch_norm_forward(x, g, b, training="eval")
    with pytest.raises(ValueError, match=r"momentum must be in \[0.0, 1.0\]"):
        batch_norm_forward(x, g, b, momentum=1.5)
    _, cache = batch_norm_forward(x, g, b)
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output \(4, 3\), got \(3, 4\)"):
        batch_norm_backward(np.ones((3, 4)), cache)


def test_l2_normalize_bad_input():
    with pytest.raises(TypeError, match="x must have a floating point dtype"):
        l2_normalize_forward(np.ones((2, 3), dtype=np.int32))
    with pytest.raises(ValueError, match="x contains NaN"):
        l2_normalize_forward(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match=r"axis must be in \[-2, 2\) for a 2-D array, got 2"):
        l2_normalize_forward(np.ones((2, 3)), axis=2)
    with pytest.raises(TypeError, match="axis must be an int"):
        l2_normalize_forward(np.ones((2, 3)), axis=1.0)
    with pytest.raises(ValueError, match="eps must be a finite positive number"):
        l2_normalize_forward(np.ones((2, 3)), eps=0.0)
    _, cache = l2_normalize_forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output \(2, 3\)"):
        l2_normalize_backward(np.ones((2, 4)), cache)
    with pytest.raises(TypeError, match="cache must be the L2NormalizeCache returned by l2_normalize_forward"):
        l2_normalize_backward(np.ones((2, 3)), None)
