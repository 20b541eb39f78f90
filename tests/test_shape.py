"""Flatten, concat along channels and residual add: values, gradients, torch, bad input."""
import numpy as np
import pytest

from gradcheck_helpers import assert_gradients
from scratchface.layers import shape as shape_layers
from scratchface.layers.shape import (
    add_backward, add_forward, concat_backward, concat_forward, flatten_backward, flatten_forward)


# ----------------------------------------------------------------------------- flatten

def test_flatten_row_major_order():
    x = np.arange(24, dtype=float).reshape(2, 3, 2, 2)
    out, cache = flatten_forward(x)
    assert out.shape == (2, 12)
    assert out[1, (2 * 2 + 1) * 2 + 0] == x[1, 2, 1, 0]
    np.testing.assert_array_equal(flatten_backward(out * 2, cache), x * 2)


@pytest.mark.parametrize("shape", [(2, 3, 2, 3), (4, 5), (3,), (1, 1, 1, 1)])
def test_flatten_gradcheck(rng, shape):
    assert_gradients(flatten_forward, flatten_backward, {"x": rng.standard_normal(shape)})


def test_flatten_matches_torch(torch, rng):
    x = rng.standard_normal((3, 4, 2, 5))
    np.testing.assert_array_equal(flatten_forward(x)[0], torch.flatten(torch.tensor(x), 1).numpy())


def test_flatten_empty_batch_keeps_width():
    out, cache = flatten_forward(np.zeros((0, 3, 2, 2)))
    assert out.shape == (0, 12)
    assert flatten_backward(np.zeros((0, 12)), cache).shape == (0, 3, 2, 2)


# ----------------------------------------------------------------------------- concat

def test_concat_channels_and_split_back(rng):
    a, b, c = rng.standard_normal((2, 1, 3, 3)), rng.standard_normal((2, 4, 3, 3)), rng.standard_normal((2, 2, 3, 3))
    out, cache = concat_forward(a, b, c)
    assert out.shape == (2, 7, 3, 3)
    np.testing.assert_array_equal(out[:, 0:1], a)
    np.testing.assert_array_equal(out[:, 1:5], b)
    np.testing.assert_array_equal(out[:, 5:7], c)
    da, db, dc = concat_backward(out * 3, cache)
    np.testing.assert_array_equal(da, 3 * a)
    np.testing.assert_array_equal(db, 3 * b)
    np.testing.assert_array_equal(dc, 3 * c)


def test_concat_single_input_and_other_axes(rng):
    a = rng.standard_normal((2, 3))
    out, cache = concat_forward(a)
    np.testing.assert_array_equal(out, a)
    (da,) = concat_backward(np.ones_like(a), cache)
    np.testing.assert_array_equal(da, 1)
    b = rng.standard_normal((2, 3, 4, 5))
    out, cache = concat_forward(b, b[..., :2], axis=-1)
    assert out.shape == (2, 3, 4, 7)
    assert [d.shape for d in concat_backward(out, cache)] == [(2, 3, 4, 5), (2, 3, 4, 2)]


def _concat2(a, b, *, axis):
    return concat_forward(a, b, axis=axis)


def _concat4(a, b, c, d):
    return concat_forward(a, b, c, d)


def test_concat_gradcheck_four_branches(rng):
    # the inception block's four branches (1x1, 3x3, 5x5, pool projection)
    shapes = [(2, 2, 3, 3), (2, 3, 3, 3), (2, 1, 3, 3), (2, 2, 3, 3)]
    assert_gradients(_concat4, concat_backward, {k: rng.standard_normal(s) for k, s in zip("abcd", shapes)})


@pytest.mark.parametrize("sa, sb, axis", [((3, 2), (3, 5), 1), ((2, 3), (4, 3), 0), ((2, 1, 3, 2), (2, 1, 3, 1), 3)])
def test_concat_gradcheck_axes(rng, sa, sb, axis):
    assert_gradients(_concat2, concat_backward, {"a": rng.standard_normal(sa), "b": rng.standard_normal(sb)},
                     {"axis": axis})


def test_concat_matches_torch(torch, rng):
    xs = [rng.standard_normal((2, c, 3, 4)) for c in (3, 1, 2)]
    dout = rng.standard_normal((2, 6, 3, 4))
    out, cache = concat_forward(*xs)
    ts = [torch.tensor(x, requires_grad=True) for x in xs]
    t_out = torch.cat(ts, dim=1)
    t_out.backward(torch.tensor(dout))
    np.testing.assert_array_equal(out, t_out.detach().numpy())
    for d, t in zip(concat_backward(dout, cache), ts):
        np.testing.assert_array_equal(d, t.grad.numpy())


# ----------------------------------------------------------------------------- add

def test_add_values_and_separate_gradients(rng):
    a, b = rng.standard_normal((2, 3, 2, 2)), rng.standard_normal((2, 3, 2, 2))
    out, cache = add_forward(a, b)
    np.testing.assert_array_equal(out, a + b)
    dout = rng.standard_normal(a.shape)
    da, db = add_backward(dout, cache)
    np.testing.assert_array_equal(da, dout)
    np.testing.assert_array_equal(db, dout)
    da += 1.0                                   # accumulating into one leaves the others alone
    np.testing.assert_array_equal(db, dout)
    assert not np.shares_memory(da, dout) and not np.shares_memory(db, dout)


@pytest.mark.parametrize("shape", [(2, 3, 2, 2), (5, 4), (1, 1, 1, 1)])
def test_add_gradcheck(rng, shape):
    assert_gradients(add_forward, add_backward, {"a": rng.standard_normal(shape), "b": rng.standard_normal(shape)})


def test_module_gradcheck_cases():
    cases = shape_layers.gradcheck_cases(np.random.default_rng(0))
    assert [c.name.split()[0] for c in cases] == ["flatten", "concat", "add"]
    for case in cases:
        assert_gradients(case.forward, case.backward, case.inputs, case.kwargs)


def test_float32_keeps_dtype(rng):
    x = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    assert flatten_forward(x)[0].dtype == np.float32
    assert concat_forward(x, x)[0].dtype == np.float32
    out, cache = add_forward(x, x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 2 * x.astype(np.float64), rtol=1e-7)
    assert all(d.dtype == np.float32 for d in add_backward(np.ones_like(x, dtype=np.float64), cache))


# ----------------------------------------------------------------------------- bad input

def test_flatten_bad_input():
    with pytest.raises(TypeError, match="x must have a floating point dtype"):
        flatten_forward(np.ones((2, 3), dtype=int))
    with pytest.raises(ValueError, match="x contains NaN"):
        flatten_forward(np.array([[np.nan]]))
    with pytest.raises(ValueError, match=r"x must have a batch axis \(rank >= 1\)"):
        flatten_forward(np.float64(1.0).reshape(()))
    _, cache = flatten_forward(np.ones((2, 3, 2)))
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output \(2, 6\), got \(2, 3, 2\)"):
        flatten_backward(np.ones((2, 3, 2)), cache)


def test_concat_bad_input():
    a = np.ones((2, 3, 4, 4))
    with pytest.raises(TypeError, match="concat_forward needs at least one array"):
        concat_forward()
    with pytest.raises(TypeError, match=r"xs\[1\] must have a floating point dtype"):
        concat_forward(a, np.ones((2, 3, 4, 4), dtype=int))
    with pytest.raises(TypeError, match=r"xs\[1\] must have the dtype of xs\[0\]"):
        concat_forward(a, a.astype(np.float32))
    with pytest.raises(ValueError, match=r"xs\[1\] must match xs\[0\] \(2, 3, 4, 4\) in every axis but 1"):
        concat_forward(a, np.ones((2, 3, 4, 5)))
    with pytest.raises(ValueError, match=r"xs\[1\] must have the rank of xs\[0\] \(4\)"):
        concat_forward(a, np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"axis must be in \[-4, 4\)"):
        concat_forward(a, a, axis=4)
    with pytest.raises(ValueError, match=r"xs\[0\] contains NaN"):
        concat_forward(np.full((1, 1), np.nan), np.ones((1, 1)))
    _, cache = concat_forward(a, a)
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output \(2, 6, 4, 4\)"):
        concat_backward(np.ones((2, 3, 4, 4)), cache)


def test_add_bad_input():
    a = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"a and b must have one shape for a residual add \(no broadcasting\)"):
        add_forward(a, np.ones((1, 3)))
    with pytest.raises(TypeError, match="b must have a floating point dtype"):
        add_forward(a, np.ones((2, 3), dtype=int))
    with pytest.raises(TypeError, match="b must have the dtype of a"):
        add_forward(a, a.astype(np.float32))
    with pytest.raises(ValueError, match="a contains NaN"):
        add_forward(np.full((2, 3), np.nan), a)
    _, cache = add_forward(a, a)
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output \(2, 3\), got \(3,\)"):
        add_backward(np.ones(3), cache)
