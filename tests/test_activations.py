"""ReLU, PReLU and maxout: hand-worked values, finite differences, torch autograd, bad input."""
import numpy as np
import pytest

from gradcheck_helpers import assert_gradients
from scratchface.layers import activations
from scratchface.layers.activations import (
    maxout_backward, maxout_forward, prelu_backward, prelu_forward, relu_backward, relu_forward)


# ----------------------------------------------------------------------------- helpers


def torch_run(torch, fn, arrays, dout):
    """Forward and input gradients of a torch function, float64."""
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), [t.grad.numpy() for t in tensors]


def away_from_zero(rng, shape, margin=0.05):
    x = rng.standard_normal(shape)
    return x + margin * np.sign(x)


def distinct(rng, shape):
    """Values at least 0.09 apart (no ties or near-ties in a max)."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.1 - 0.05 * size).reshape(shape) + 0.01 * rng.random(shape)


# ----------------------------------------------------------------------------- known values

def test_relu_values_by_hand():
    x = np.array([[-2.0, -0.0, 0.0, 0.5, 3.0]])
    out, cache = relu_forward(x)
    np.testing.assert_array_equal(out, [[0, 0, 0, 0.5, 3.0]])
    np.testing.assert_array_equal(relu_backward(np.full((1, 5), 2.0), cache), [[0, 0, 0, 2.0, 2.0]])


@pytest.mark.parametrize("shape", [(0, 3), (1, 1), (2, 3, 5, 7), (3, 70000)])   # 3 x 70000: 4 tasks, the last short
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_numba_equals_reference(rng, shape, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[::7] = 0                                                   # exact zeros: gradient 0, as the reference
    dout = rng.standard_normal(shape)                                        # float64: returned in x's dtype
    want, want_cache = relu_forward(x, impl="reference")
    got, cache = relu_forward(x, impl="numba")
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(cache.positive, want_cache.positive)
    dx = relu_backward(dout, cache, impl="numba")
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, relu_backward(dout, want_cache, impl="reference"))
    strided = x[..., ::-1] if x.ndim > 1 else x                              # not contiguous: copied first
    np.testing.assert_array_equal(relu_forward(strided, impl="numba")[0], np.maximum(strided, 0))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("at", [0, 65535, 65536, 200003])                   # first, block edges, last
def test_relu_numba_finds_a_non_finite_value_anywhere(bad, at):
    # the kernel checks finiteness in its own pass; the error is the reference's
    x = np.ones(200004, dtype=np.float32)
    x[at] = bad
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        relu_forward(x, impl="numba")
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        relu_forward(x, impl="reference")
    _, cache = relu_forward(np.ones(200004, dtype=np.float32))
    with pytest.raises(ValueError, match="dout contains NaN or infinity"):
        relu_backward(x, cache, impl="numba")
    with pytest.raises(ValueError, match="dout contains NaN or infinity"):
        relu_backward(x, cache, impl="reference")


def test_relu_module_switches_to_the_reference():
    from scratchface import nn
    layer = nn.Sequential(nn.ReLU()).set_impl("reference")
    assert layer[0].impl == "reference"
    x = np.array([[-1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(layer.forward(x), [[0, 0, 2.0]])
    np.testing.assert_array_equal(layer.backward(np.ones((1, 3))), [[0, 0, 1.0]])
    with pytest.raises(ValueError, match="impl"):
        nn.ReLU(impl="fast")


def test_prelu_values_by_hand():
    x = np.array([[[[-2.0, 1.0]], [[-2.0, 4.0]]]])          # (1, 2, 1, 2)
    alpha = np.array([0.25, -0.5])
    out, cache = prelu_forward(x, alpha)
    np.testing.assert_array_equal(out, [[[[-0.5, 1.0]], [[1.0, 4.0]]]])
    dx, dalpha = prelu_backward(np.ones_like(x), cache)
    np.testing.assert_array_equal(dx, [[[[0.25, 1.0]], [[-0.5, 1.0]]]])
    np.testing.assert_array_equal(dalpha, [-2.0, -2.0])       # sum of negative x per channel


@pytest.mark.parametrize("shape", [(1, 10, 37, 23), (3, 28, 22, 22), (5, 128), (2, 3, 7), (0, 4, 2, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prelu_numba_equals_reference(rng, shape, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[::7] = 0.0
    x.reshape(-1)[3::11] = -0.0
    alpha = rng.standard_normal(shape[1]).astype(dtype)
    want, _ = prelu_forward(x, alpha, impl="reference")
    got, cache = prelu_forward(x, alpha, impl="numba")
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))  # the sign of zeros too
    np.testing.assert_array_equal(prelu_backward(np.ones_like(x), cache)[0],
                                  prelu_backward(np.ones_like(x), prelu_forward(x, alpha, impl="reference")[1])[0])
    strided = x[:, ::-1]  # a non-contiguous input gives the same values
    np.testing.assert_array_equal(prelu_forward(strided, alpha[::-1].copy(), impl="numba")[0],
                                  prelu_forward(strided, alpha[::-1].copy(), impl="reference")[0])


def test_prelu_bad_impl():
    with pytest.raises(ValueError, match="impl must be one of"):
        prelu_forward(np.ones((1, 2)), np.ones(2), impl="fast")
    with pytest.raises(TypeError, match="impl='cuda' needs CuPy arrays"):
        prelu_forward(np.ones((1, 2)), np.ones(2), impl="cuda")


def test_maxout_grouping_by_hand():
    x = np.array([[1.0, 5.0, 3.0, 2.0, -1.0, -4.0]])
    out2, cache2 = maxout_forward(x, pieces=2)                # groups (1,5) (3,2) (-1,-4)
    np.testing.assert_array_equal(out2, [[5.0, 3.0, -1.0]])
    np.testing.assert_array_equal(maxout_backward(np.array([[10.0, 20.0, 30.0]]), cache2),
                                  [[0, 10.0, 20.0, 0, 30.0, 0]])
    out3, cache3 = maxout_forward(x, pieces=3)                # groups (1,5,3) (2,-1,-4)
    np.testing.assert_array_equal(out3, [[5.0, 2.0]])
    np.testing.assert_array_equal(maxout_backward(np.array([[1.0, 2.0]]), cache3), [[0, 1.0, 0, 2.0, 0, 0]])


def test_maxout_4d_groups_channels_at_every_pixel():
    x = np.zeros((1, 4, 1, 2))
    x[0, :, 0, 0] = [1, 2, 3, 0]
    x[0, :, 0, 1] = [9, 8, -1, -2]
    out, _ = maxout_forward(x, pieces=2)
    np.testing.assert_array_equal(out[0, :, 0, :], [[2, 9], [3, -1]])


def test_maxout_tie_sends_gradient_to_first_piece():
    x = np.array([[2.0, 2.0, 2.0]])
    _, cache = maxout_forward(x, pieces=3)
    np.testing.assert_array_equal(maxout_backward(np.array([[1.0]]), cache), [[1.0, 0, 0]])


# ----------------------------------------------------------------------------- finite differences

@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (7, 3), (1, 1, 1, 1), (3, 2, 5, 1)])
def test_relu_gradcheck(rng, shape):
    assert_gradients(relu_forward, relu_backward, {"x": away_from_zero(rng, shape)})


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (5, 4), (1, 1, 3, 3), (3, 7, 1, 2)])
def test_prelu_gradcheck_negative_and_positive_slopes(rng, shape):
    alpha = rng.uniform(-1.0, 1.0, shape[1])
    assert_gradients(prelu_forward, prelu_backward, {"x": away_from_zero(rng, shape), "alpha": alpha})


@pytest.mark.parametrize("shape, pieces", [((3, 8), 2), ((2, 9), 3), ((2, 6, 3, 3), 2), ((1, 9, 2, 3), 3),
                                           ((4, 5), 1)])
def test_maxout_gradcheck(rng, shape, pieces):
    assert_gradients(maxout_forward, maxout_backward, {"x": distinct(rng, shape)}, {"pieces": pieces})


def test_module_gradcheck_cases():
    cases = activations.gradcheck_cases(np.random.default_rng(0))
    assert {c.name.split()[0] for c in cases} == {"relu", "prelu", "maxout"}
    for case in cases:
        assert_gradients(case.forward, case.backward, case.inputs, case.kwargs)


# ----------------------------------------------------------------------------- torch

def test_relu_matches_torch(torch, rng):
    x = rng.standard_normal((3, 4, 5, 2))
    dout = rng.standard_normal(x.shape)
    out, cache = relu_forward(x)
    t_out, (t_dx,) = torch_run(torch, torch.relu, [x], dout)
    np.testing.assert_allclose(out, t_out, rtol=1e-10, atol=0)
    np.testing.assert_allclose(relu_backward(dout, cache), t_dx, rtol=1e-10, atol=0)


@pytest.mark.parametrize("shape", [(3, 4, 5, 2), (6, 5)])
def test_prelu_matches_torch(torch, rng, shape):
    x = rng.standard_normal(shape)
    alpha = rng.uniform(-0.5, 0.5, shape[1])
    dout = rng.standard_normal(shape)
    out, cache = prelu_forward(x, alpha)
    t_out, (t_dx, t_dalpha) = torch_run(torch, torch.nn.functional.prelu, [x, alpha], dout)
    dx, dalpha = prelu_backward(dout, cache)
    np.testing.assert_allclose(out, t_out, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(dx, t_dx, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(dalpha, t_dalpha, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape, pieces", [((4, 6), 2), ((4, 9), 3), ((2, 6, 3, 5), 2), ((2, 6, 3, 5), 3)])
def test_maxout_matches_torch_max_over_pieces(torch, rng, shape, pieces):
    x = rng.standard_normal(shape)
    n, d = shape[:2]
    out_shape = (n, d // pieces) + shape[2:]
    dout = rng.standard_normal(out_shape)

    def torch_maxout(t):
        return t.reshape((n, d // pieces, pieces) + shape[2:]).max(dim=2).values

    out, cache = maxout_forward(x, pieces=pieces)
    t_out, (t_dx,) = torch_run(torch, torch_maxout, [x], dout)
    np.testing.assert_array_equal(out, t_out)
    np.testing.assert_allclose(maxout_backward(dout, cache), t_dx, rtol=1e-10, atol=0)


# ----------------------------------------------------------------------------- float32

def test_float32_forward_matches_float64(rng):
    x = rng.standard_normal((2, 6, 5, 3))
    alpha = rng.uniform(-0.5, 0.5, 6)
    for forward, args, kwargs in [(relu_forward, (x,), {}), (prelu_forward, (x, alpha), {}),
                                  (maxout_forward, (x,), {"pieces": 3})]:
        out64, _ = forward(*args, **kwargs)
        out32, _ = forward(*(a.astype(np.float32) for a in args), **kwargs)
        assert out32.dtype == np.float32
        np.testing.assert_allclose(out32, out64, rtol=1e-6, atol=1e-7)


def test_float32_backward_keeps_dtype(rng):
    x = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    dout = np.ones((2, 4, 3, 3), np.float32)
    _, cache = prelu_forward(x, np.full(4, 0.1, np.float32))
    assert all(g.dtype == np.float32 for g in prelu_backward(dout, cache))
    _, cache = relu_forward(x)
    assert relu_backward(dout, cache).dtype == np.float32
    _, cache = maxout_forward(x, pieces=2)
    assert maxout_backward(np.ones((2, 2, 3, 3), np.float32), cache).dtype == np.float32


# ----------------------------------------------------------------------------- bad input

def test_integer_input_refused():
    with pytest.raises(TypeError, match="x must have a floating point dtype"):
        relu_forward(np.arange(4))
    with pytest.raises(TypeError, match="x must have a floating point dtype"):
        prelu_forward(np.ones((2, 3), dtype=np.int32), np.ones(3))
    with pytest.raises(TypeError, match="alpha must have a floating point dtype"):
        prelu_forward(np.ones((2, 3)), np.ones(3, dtype=int))
    with pytest.raises(TypeError, match="x must have a floating point dtype"):
        maxout_forward(np.ones((2, 4), dtype=np.int64), pieces=2)
    with pytest.raises(TypeError, match="x must be an array"):
        relu_forward([1.0, -1.0])


def test_nan_and_inf_refused():
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        relu_forward(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        prelu_forward(np.array([[1.0, np.inf]]), np.ones(2))
    with pytest.raises(ValueError, match="alpha contains NaN or infinity"):
        prelu_forward(np.ones((1, 2)), np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        maxout_forward(np.array([[np.nan, 1.0]]), pieces=2)


def test_wrong_rank_refused():
    with pytest.raises(ValueError, match=r"x must be an \(N, C\) or \(N, C, H, W\) array \(rank >= 2\)"):
        prelu_forward(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match=r"alpha must be a 1-D array"):
        prelu_forward(np.ones((2, 3)), np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"x must be an \(N, D\) or \(N, D, H, W\) array"):
        maxout_forward(np.ones(4), pieces=2)


def test_alpha_with_wrong_channel_count():
    with pytest.raises(ValueError, match=r"alpha must have shape \(C,\) = \(3,\), one slope per channel"):
        prelu_forward(np.ones((2, 3, 4, 4)), np.ones(4))
    with pytest.raises(TypeError, match="alpha must have the dtype of x"):
        prelu_forward(np.ones((2, 3)), np.ones(3, np.float32))


def test_maxout_pieces_checked():
    with pytest.raises(ValueError, match=r"pieces \(3\) must divide the width of x \(axis 1 has 8\)"):
        maxout_forward(np.ones((2, 8)), pieces=3)
    with pytest.raises(ValueError, match="pieces must be a positive integer, got 0"):
        maxout_forward(np.ones((2, 8)), pieces=0)
    with pytest.raises(TypeError, match="pieces must be a positive integer"):
        maxout_forward(np.ones((2, 8)), pieces=2.0)


def test_backward_dout_checked(rng):
    x = rng.standard_normal((2, 4))
    _, relu_cache = relu_forward(x)
    _, prelu_cache = prelu_forward(x, np.ones(4))
    _, maxout_cache = maxout_forward(x, pieces=2)
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output \(2, 4\), got \(4, 2\)"):
        relu_backward(np.ones((4, 2)), relu_cache)
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output \(2, 4\)"):
        prelu_backward(np.ones((2, 4, 1)), prelu_cache)
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output \(2, 2\), got \(2, 4\)"):
        maxout_backward(np.ones((2, 4)), maxout_cache)
    with pytest.raises(TypeError, match="dout must have a floating point dtype"):
        relu_backward(np.ones((2, 4), dtype=int), relu_cache)
    with pytest.raises(ValueError, match="dout contains NaN"):
        maxout_backward(np.full((2, 2), np.nan), maxout_cache)
    with pytest.raises(TypeError, match="cache must be the PreluCache returned by prelu_forward, got ReluCache"):
        prelu_backward(np.ones((2, 4)), relu_cache)
