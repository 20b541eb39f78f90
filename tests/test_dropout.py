"""Inverted dropout: the mask's statistics, reproducibility, the math given the mask, bad input."""
import numpy as np
import pytest

from gradcheck_helpers import assert_gradients
from scratchface.layers import dropout
from scratchface.layers.dropout import dropout_backward, dropout_forward


def test_mask_values_and_keep_rate():
    x = np.ones((200, 500))
    out, cache = dropout_forward(x, p=0.3, rng=np.random.default_rng(0))
    values = np.unique(out)
    np.testing.assert_allclose(values, [0.0, 1 / 0.7], rtol=1e-15)
    kept = (out > 0).mean()
    # 100,000 Bernoulli(0.7) draws: standard deviation of the mean 0.0014; 5 sigma
    assert abs(kept - 0.7) < 0.0075
    assert abs(out.mean() - 1.0) < 0.011            # inverted dropout keeps the expectation
    np.testing.assert_array_equal(cache.mask, out)   # x = 1: out is the scaled mask itself


def test_math_given_the_mask(rng):
    x = rng.standard_normal((4, 3, 5, 5))
    out, cache = dropout_forward(x, p=0.4, rng=1)
    mask = cache.mask
    kept = mask != 0
    np.testing.assert_allclose(mask[kept], 1 / 0.6, rtol=1e-15)
    np.testing.assert_array_equal(out, x * mask)
    np.testing.assert_array_equal(out[~kept], 0)
    np.testing.assert_allclose(out[kept], x[kept] / 0.6, rtol=1e-15)
    dout = rng.standard_normal(x.shape)
    dx = dropout_backward(dout, cache)
    np.testing.assert_array_equal(dx[~kept], 0)
    np.testing.assert_allclose(dx[kept], dout[kept] / 0.6, rtol=1e-15)


def test_math_given_the_mask_matches_torch(torch, rng):
    x = rng.standard_normal((3, 6))
    out, cache = dropout_forward(x, p=0.5, rng=3)
    dout = rng.standard_normal(x.shape)
    tx = torch.tensor(x, requires_grad=True)
    t_out = tx * torch.tensor(cache.mask)     # torch's own dropout draws its own mask: compare the math
    t_out.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-15)
    np.testing.assert_allclose(dropout_backward(dout, cache), tx.grad.numpy(), rtol=1e-15)


def test_seed_and_generator_reproduce_the_mask(rng):
    x = rng.standard_normal((5, 7))
    a, _ = dropout_forward(x, p=0.5, rng=42)
    b, _ = dropout_forward(x, p=0.5, rng=np.random.default_rng(42))
    np.testing.assert_array_equal(a, b)
    gen = np.random.default_rng(42)
    first, _ = dropout_forward(x, p=0.5, rng=gen)
    second, _ = dropout_forward(x, p=0.5, rng=gen)   # the generator advanced: a new mask
    np.testing.assert_array_equal(first, a)
    assert not np.array_equal(first != 0, second != 0)


def test_eval_mode_and_p_zero_are_the_identity(rng):
    x = rng.standard_normal((3, 4))
    for out, cache in (dropout_forward(x, p=0.9, training=False), dropout_forward(x, p=0.0, rng=0)):
        np.testing.assert_array_equal(out, x)
        assert out is not x
        assert cache.mask is None
        dout = rng.standard_normal(x.shape)
        np.testing.assert_array_equal(dropout_backward(dout, cache), dout)


def test_p_one_drops_everything(rng):
    x = rng.standard_normal((3, 4))
    out, cache = dropout_forward(x, p=1.0, rng=0)
    np.testing.assert_array_equal(out, 0)
    np.testing.assert_array_equal(dropout_backward(np.ones_like(x), cache), 0)


def test_float32_keeps_dtype(rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)
    out, cache = dropout_forward(x, p=0.2, rng=0)
    out64, _ = dropout_forward(x.astype(np.float64), p=0.2, rng=0)
    assert out.dtype == cache.mask.dtype == np.float32
    np.testing.assert_allclose(out, out64, rtol=1e-6)
    assert dropout_backward(np.ones_like(x), cache).dtype == np.float32


def _fixed_mask_dropout(x, *, p, seed):
    return dropout_forward(x, p=p, rng=np.random.default_rng(seed))


@pytest.mark.parametrize("shape, p", [((3, 4, 2, 2), 0.3), ((7,), 0.5), ((2, 5), 0.9)])
def test_gradcheck_with_a_fixed_mask(rng, shape, p):
    assert_gradients(_fixed_mask_dropout, dropout_backward, {"x": rng.standard_normal(shape)},
                     {"p": p, "seed": 11})


def test_module_gradcheck_cases():
    cases = dropout.gradcheck_cases(np.random.default_rng(0))
    assert len(cases) == 2
    for case in cases:
        assert_gradients(case.forward, case.backward, case.inputs, case.kwargs)


def test_bad_input():
    x = np.ones((2, 3))
    with pytest.raises(TypeError, match="x must have a floating point dtype"):
        dropout_forward(np.ones((2, 3), dtype=int), p=0.5, rng=0)
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        dropout_forward(np.array([np.inf]), p=0.5, rng=0)
    with pytest.raises(ValueError, match=r"p must be in \[0.0, 1.0\], got 1.5"):
        dropout_forward(x, p=1.5, rng=0)
    with pytest.raises(ValueError, match="dropout in training mode needs rng="):
        dropout_forward(x, p=0.5)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        dropout_forward(x, p=0.5, rng=np.random.RandomState(0))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        dropout_forward(x, p=0.5, rng=0.5)
    with pytest.raises(TypeError, match="training must be True or False"):
        dropout_forward(x, p=0.5, training="train", rng=0)
    _, cache = dropout_forward(x, p=0.5, rng=0)
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output \(2, 3\), got \(3, 2\)"):
        dropout_backward(np.ones((3, 2)), cache)
    with pytest.raises(TypeError, match="cache must be the DropoutCache returned by dropout_forward"):
        dropout_backward(np.ones((2, 3)), cache.mask)
