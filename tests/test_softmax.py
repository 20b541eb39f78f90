"""Softmax, log-softmax, softmax cross-entropy: values, stability, gradients, torch, bad input."""
import numpy as np
import pytest

from gradcheck_helpers import assert_gradients
from scratchface.layers import softmax as softmax_module
from scratchface.layers.softmax import (
    log_softmax_backward, log_softmax_forward, softmax_backward, softmax_cross_entropy_backward,
    softmax_cross_entropy_forward, softmax_forward)


# ----------------------------------------------------------------------------- values

def test_softmax_by_hand():
    x = np.log(np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 10.0]]))
    y, _ = softmax_forward(x)
    np.testing.assert_allclose(y, [[1 / 6, 2 / 6, 3 / 6], [0.25, 0.25, 0.5]], rtol=1e-14)
    out, _ = log_softmax_forward(x)
    np.testing.assert_allclose(out, np.log([[1 / 6, 2 / 6, 3 / 6], [0.25, 0.25, 0.5]]), rtol=1e-14)


def test_cross_entropy_by_hand():
    logits = np.log(np.array([[1.0, 1.0, 2.0], [1.0, 3.0, 4.0]]))
    labels = np.array([2, 0])
    loss, cache = softmax_cross_entropy_forward(logits, labels=labels)
    np.testing.assert_allclose(loss, (-np.log(0.5) - np.log(0.125)) / 2, rtol=1e-14)
    dlogits = softmax_cross_entropy_backward(1.0, cache)
    np.testing.assert_allclose(dlogits, [[0.125, 0.125, -0.25], [-0.4375, 0.1875, 0.25]], rtol=1e-14)


def test_softmax_is_shift_invariant_and_sums_to_one(rng):
    x = rng.standard_normal((5, 7))
    y, _ = softmax_forward(x)
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-15)
    np.testing.assert_allclose(softmax_forward(x + 1000.0)[0], y, rtol=1e-12)
    y0, _ = softmax_forward(x, axis=0)
    np.testing.assert_allclose(y0.sum(axis=0), 1, rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_at_large_logits(dtype):
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4 + 1.0], [1e4, 1e4, 1e4]], dtype=dtype)
    y, _ = softmax_forward(logits)
    assert y.dtype == dtype and np.isfinite(y).all()
    np.testing.assert_allclose(y[0], [1, 0, 0], atol=1e-30)
    e = np.e
    np.testing.assert_allclose(y[1], [1 / (2 + e), 1 / (2 + e), e / (2 + e)], rtol=1e-6)
    np.testing.assert_allclose(y[2], 1 / 3, rtol=1e-6)
    out, cache = log_softmax_forward(logits)
    assert out.dtype == dtype and np.isfinite(out).all()
    np.testing.assert_allclose(out[0], [0.0, -1e4, -2e4], rtol=1e-6)          # not -inf
    assert np.isfinite(log_softmax_backward(np.ones_like(out), cache)).all()
    loss, cache = softmax_cross_entropy_forward(logits, labels=np.array([2, 2, 0]))
    assert loss.dtype == dtype and np.isfinite(loss)
    np.testing.assert_allclose(loss, (2e4 + (np.log(2 + e) - 1) + np.log(3)) / 3, rtol=1e-6)
    d = softmax_cross_entropy_backward(1.0, cache)
    assert d.dtype == dtype and np.isfinite(d).all()
    np.testing.assert_allclose(d[0], np.array([1, 0, -1]) / 3, atol=1e-7)


def test_empty_batch_has_stable_shapes():
    loss, cache = softmax_cross_entropy_forward(np.zeros((0, 4)), labels=np.zeros(0, dtype=int))
    assert float(loss) == 0.0
    assert softmax_cross_entropy_backward(1.0, cache).shape == (0, 4)


# ----------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("shape, axis", [((4, 5), 1), ((3, 4), 0), ((2, 3, 4), -1), ((2, 3, 2, 2), 1), ((3, 1), 1)])
def test_softmax_and_log_softmax_gradcheck(rng, shape, axis):
    x = rng.standard_normal(shape)
    assert_gradients(softmax_forward, softmax_backward, {"x": x}, {"axis": axis})
    assert_gradients(log_softmax_forward, log_softmax_backward, {"x": x}, {"axis": axis})


@pytest.mark.parametrize("n, k", [(5, 4), (1, 3), (7, 1), (3, 10)])
def test_cross_entropy_gradcheck(rng, n, k):
    assert_gradients(softmax_cross_entropy_forward, softmax_cross_entropy_backward,
                     {"logits": rng.standard_normal((n, k))}, {"labels": rng.integers(0, k, n)})


def test_cross_entropy_backward_scales_with_dloss(rng):
    logits = rng.standard_normal((4, 3))
    _, cache = softmax_cross_entropy_forward(logits, labels=np.array([0, 1, 2, 1]))
    np.testing.assert_allclose(softmax_cross_entropy_backward(np.array(2.5), cache),
                               2.5 * softmax_cross_entropy_backward(1.0, cache), rtol=1e-15)


def test_module_gradcheck_cases():
    cases = softmax_module.gradcheck_cases(np.random.default_rng(0))
    assert [c.name.split()[0] for c in cases] == ["softmax", "log_softmax", "softmax_cross_entropy"]
    for case in cases:
        assert_gradients(case.forward, case.backward, case.inputs, case.kwargs)


# ----------------------------------------------------------------------------- torch

@pytest.mark.parametrize("shape, axis", [((4, 6), 1), ((2, 3, 4), 0), ((2, 5, 3, 3), 1)])
def test_softmax_and_log_softmax_match_torch(torch, rng, shape, axis):
    x = 3 * rng.standard_normal(shape)
    dout = rng.standard_normal(shape)
    for ours_f, ours_b, theirs in [(softmax_forward, softmax_backward, torch.softmax),
                                   (log_softmax_forward, log_softmax_backward, torch.log_softmax)]:
        out, cache = ours_f(x, axis=axis)
        tx = torch.tensor(x, requires_grad=True)
        t_out = theirs(tx, dim=axis)
        t_out.backward(torch.tensor(dout))
        np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(ours_b(dout, cache), tx.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
def test_cross_entropy_matches_torch(torch, rng, scale):
    logits = scale * rng.standard_normal((6, 5))
    labels = rng.integers(0, 5, 6)
    loss, cache = softmax_cross_entropy_forward(logits, labels=labels)
    tl = torch.tensor(logits, requires_grad=True)
    t_loss = torch.nn.functional.cross_entropy(tl, torch.tensor(labels))
    t_loss.backward()
    np.testing.assert_allclose(loss, t_loss.item(), rtol=1e-10)
    np.testing.assert_allclose(softmax_cross_entropy_backward(1.0, cache), tl.grad.numpy(), rtol=1e-10, atol=1e-15)


# ----------------------------------------------------------------------------- float32

def test_float32_forward_matches_float64(rng):
    x = 5 * rng.standard_normal((8, 10))
    labels = rng.integers(0, 10, 8)
    for forward, kwargs in [(softmax_forward, {}), (log_softmax_forward, {}),
                            (softmax_cross_entropy_forward, {"labels": labels})]:
        out64, _ = forward(x, **kwargs)
        out32, _ = forward(x.astype(np.float32), **kwargs)
        assert out32.dtype == np.float32
        np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- bad input

def test_softmax_bad_input():
    with pytest.raises(TypeError, match="x must have a floating point dtype"):
        softmax_forward(np.ones((2, 3), dtype=int))
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        log_softmax_forward(np.array([[0.0, np.inf]]))
    with pytest.raises(ValueError, match=r"axis must be in \[-2, 2\) for a 2-D array, got -3"):
        softmax_forward(np.ones((2, 3)), axis=-3)
    with pytest.raises(ValueError, match="x must have at least one class along axis 1"):
        softmax_forward(np.ones((2, 0)))
    with pytest.raises(ValueError, match="x must have rank >= 1"):
        softmax_forward(np.array(1.0))
    _, cache = softmax_forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output \(2, 3\), got \(2, 4\)"):
        softmax_backward(np.ones((2, 4)), cache)
    _, cache = log_softmax_forward(np.ones((2, 3)))
    with pytest.raises(TypeError,
                       match="cache must be the SoftmaxCache returned by softmax_forward, got LogSoftmaxCache"):
        softmax_backward(np.ones((2, 3)), cache)


def test_cross_entropy_bad_input():
    logits = np.zeros((3, 4))
    with pytest.raises(TypeError, match="logits must have a floating point dtype"):
        softmax_cross_entropy_forward(np.zeros((3, 4), dtype=int), labels=np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="logits contains NaN"):
        softmax_cross_entropy_forward(np.full((3, 4), np.nan), labels=np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="logits must be a 2-D array"):
        softmax_cross_entropy_forward(np.zeros(4), labels=np.array([0]))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\), got values from 0 to 4"):
        softmax_cross_entropy_forward(logits, labels=np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\), got values from -1 to 2"):
        softmax_cross_entropy_forward(logits, labels=np.array([-1, 2, 1]))
    with pytest.raises(TypeError, match="labels must have a signed integer or unsigned integer dtype"):
        softmax_cross_entropy_forward(logits, labels=np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"labels must have one label per sample \(3\), got 2"):
        softmax_cross_entropy_forward(logits, labels=np.array([0, 1]))
    with pytest.raises(ValueError, match="labels must be a 1-D array"):
        softmax_cross_entropy_forward(logits, labels=np.eye(4, dtype=int)[:3])   # one-hot rows
    with pytest.raises(TypeError, match="positional"):
        softmax_cross_entropy_forward(logits, np.array([0, 1, 2]))             # labels are keyword-only
    _, cache = softmax_cross_entropy_forward(logits, labels=np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"dloss must be a scalar \(the loss is a scalar\), got shape \(3,\)"):
        softmax_cross_entropy_backward(np.ones(3), cache)
    with pytest.raises(TypeError, match="dloss must be a real number"):
        softmax_cross_entropy_backward("1", cache)
    with pytest.raises(ValueError, match="dloss contains NaN"):
        softmax_cross_entropy_backward(float("nan"), cache)
