"""Max / average / L2 pooling: finite differences, kernel == reference, torch, sizes by hand, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchface.gradcheck import PASS_THRESHOLD, check_layer, numerical_gradient
from scratchface.layers import pooling
from scratchface.layers.pooling import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    l2_pool2d_backward,
    l2_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
    pool_output_size,
)

POOLS = {
    "max": (max_pool2d_forward, max_pool2d_backward),
    "avg": (avg_pool2d_forward, avg_pool2d_backward),
    "l2": (l2_pool2d_forward, l2_pool2d_backward),
}


def max_rel(a, ref):
    a, ref = np.asarray(a, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert a.shape == ref.shape
    return float(np.max(np.abs(a - ref)) / max(np.max(np.abs(ref)), 1e-300))


def distinct_values(rng, shape):
    """Magnitudes in [0.5, 1.5) at least 0.5 / size apart (no ties within 2h in a max), random signs."""
    size = int(np.prod(shape))
    values = (rng.permutation(size).reshape(shape) + 0.5 * rng.random(shape)) / size + 0.5
    return values * rng.choice([-1.0, 1.0], size=shape)


# (H, W, kernel, stride, padding, ceil_mode): odd sizes, stride 2, padding, partial last windows
GRAD_SHAPES = [
    (5, 6, 2, 2, 0, False),
    (7, 6, 3, 2, 1, False),
    (6, 7, 3, 2, 0, True),           # ceil_mode: last window hangs off the input
    (5, 5, 2, 2, 1, True),
    (8, 7, (3, 2), (2, 1), (1, 0, 1, 1), True),
    (6, 6, 3, 1, 1, False),          # FaceNet's 3x3/1 pad 1 (L2 pool in inception)
]


# the readable reference on every shape; the kernel on the partial-window ones (it is also tested
# equal to the reference below; each finite-difference step is one kernel call)
GRAD_CASES = [(shape, "reference") for shape in GRAD_SHAPES] + [(GRAD_SHAPES[i], "numba") for i in (4,)]


@pytest.mark.parametrize("mode", ["max", "avg", "l2"])
@pytest.mark.parametrize("shape, impl", GRAD_CASES)
def test_pool_gradcheck(rng, shape, mode, impl):
    h, w, kernel, stride, padding, ceil_mode = shape
    forward, backward = POOLS[mode]
    x = distinct_values(rng, (2, 2, h, w))
    # the pixels a max pool does not pick have a gradient of exactly 0; the library's finite
    # differences (taken as differences first) give exactly 0 there too
    kwargs = {"kernel_size": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil_mode, "impl": impl}
    result = check_layer(forward, backward, {"x": x}, kwargs)
    assert result.passed, result.errors


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_and_l2_pool_gradcheck_options(rng, count_include_pad):
    x = distinct_values(rng, (2, 3, 5, 6))
    result = check_layer(avg_pool2d_forward, avg_pool2d_backward, {"x": x},
                         {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                          "count_include_pad": count_include_pad})
    assert result.passed, result.errors
    result = check_layer(l2_pool2d_forward, l2_pool2d_backward, {"x": x},
                         {"kernel_size": 3, "stride": 1, "padding": 1})
    assert result.passed, result.errors


def test_pool_gradcheck_cases_pass(rng):
    from scratchface.layers.pooling import gradcheck_cases
    for case in gradcheck_cases(rng):
        assert case.run().max_error < PASS_THRESHOLD, case.name


def test_output_size_by_hand():
    # torch's rule: ceil((H + 2p - k) / s) + 1, minus one if the last window starts past H + p
    assert pool_output_size(7, 3, 2, 0, 0, False) == 3
    assert pool_output_size(6, 3, 2, 0, 0, False) == 2
    assert pool_output_size(6, 3, 2, 0, 0, True) == 3       # a partial window at columns 4, 5
    assert pool_output_size(5, 2, 2, 1, 1, True) == 3       # ceil(5/2)+1 = 4, but start 6 >= 5+1
    assert pool_output_size(4, 2, 2, 1, 1, True) == 3       # ceil(4/2)+1 = 3; start 4 < 4+1
    assert pool_output_size(5, 3, 3, 1, 1, True) == 2       # ceil(4/3)+1 = 3, but start 6 >= 5+1
    assert pool_output_size(24, 3, 2, 0, 0, True) == 12     # FaceNet pool at 24x24
    assert pool_output_size(24, 3, 1, 1, 1, False) == 24


def test_known_values():
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    out, _ = max_pool2d_forward(x, kernel_size=2)
    np.testing.assert_array_equal(out[0, 0], [[5, 7], [13, 15]])
    out, _ = avg_pool2d_forward(x, kernel_size=2)
    np.testing.assert_array_equal(out[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    out, _ = l2_pool2d_forward(np.full((1, 1, 2, 2), 3.0), kernel_size=2)
    np.testing.assert_allclose(out[0, 0], [[6.0]])                   # sqrt(4 * 9)
    # ceil_mode on 3x3 with 2x2/2: the partial windows average only what they hold
    out, _ = avg_pool2d_forward(np.arange(9.0).reshape(1, 1, 3, 3), kernel_size=2, ceil_mode=True)
    np.testing.assert_allclose(out[0, 0], [[2.0, 3.5], [6.5, 8.0]])


def test_max_pool_gradient_goes_to_first_maximum():
    x = np.array([[[[1.0, 3.0], [3.0, 2.0]]]])
    for impl in ("reference", "numba"):
        out, cache = max_pool2d_forward(x, kernel_size=2, impl=impl)
        np.testing.assert_array_equal(max_pool2d_backward(np.ones_like(out), cache)[0, 0], [[0, 1], [0, 0]])


def test_l2_pool_zero_window_has_zero_gradient():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 3, 3] = 2.0
    for impl in ("reference", "numba"):
        out, cache = l2_pool2d_forward(x, kernel_size=2, impl=impl)
        dx = l2_pool2d_backward(np.ones_like(out), cache)
        assert np.all(np.isfinite(dx)) and dx[0, 0, 3, 3] == 1.0 and np.count_nonzero(dx) == 1


def random_configs(rng, count):
    configs = []
    for _ in range(count):
        kernel = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in (kernel[0], kernel[0], kernel[1], kernel[1]))
        h, w = int(rng.integers(kernel[0], 14)), int(rng.integers(kernel[1], 14))
        configs.append(((int(rng.integers(1, 4)), int(rng.integers(1, 5)), h, w), kernel, stride, padding,
                        bool(rng.integers(0, 2)), bool(rng.integers(0, 2))))
    configs.append(((2, 3, 24, 24), 3, 2, 0, True, True))      # FaceNet max pool 3x3/2
    configs.append(((2, 3, 24, 24), 3, 1, 1, False, True))     # FaceNet L2 pool 3x3/1 pad 1
    return configs


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_pool_kernel_equals_reference(dtype, tol):
    rng = np.random.default_rng(3)
    for shape, kernel, stride, padding, ceil_mode, include_pad in random_configs(rng, 40):
        x = distinct_values(rng, shape).astype(dtype)
        for mode, (forward, backward) in POOLS.items():
            extra = {"count_include_pad": include_pad} if mode == "avg" else {}
            kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode, **extra)
            ref, ref_cache = forward(x, impl="reference", **kwargs)
            out, cache = forward(x, impl="numba", **kwargs)
            assert out.dtype == dtype and max_rel(out, ref) < tol, (mode, shape, kwargs)
            dout = rng.standard_normal(out.shape).astype(dtype)
            dx = backward(dout, cache)
            assert dx.dtype == dtype and max_rel(dx, backward(dout, ref_cache)) < tol, (mode, shape, kwargs)


TORCH_SHAPES = [
    ((2, 3, 7, 8), 3, 2, 1, False),
    ((2, 3, 7, 8), 3, 2, 1, True),
    ((2, 2, 6, 7), 3, 2, 0, True),
    ((1, 2, 9, 5), (3, 2), (2, 1), (1, 0), True),
    ((2, 2, 6, 6), 3, 1, 1, False),
    ((2, 2, 5, 5), 2, None, 0, True),
]


@pytest.mark.parametrize("shape, kernel, stride, padding, ceil_mode", TORCH_SHAPES)
def test_pools_match_torch(torch, rng, shape, kernel, stride, padding, ceil_mode):
    functional = torch.nn.functional
    x = distinct_values(rng, shape)
    common = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    torch_padding = padding
    peers = {
        "max": (max_pool2d_forward, max_pool2d_backward, {},
                lambda t: functional.max_pool2d(t, kernel, stride, torch_padding, ceil_mode=ceil_mode)),
        "avg": (avg_pool2d_forward, avg_pool2d_backward, {},
                lambda t: functional.avg_pool2d(t, kernel, stride, torch_padding, ceil_mode=ceil_mode)),
        "avg no pad": (avg_pool2d_forward, avg_pool2d_backward, {"count_include_pad": False},
                       lambda t: functional.avg_pool2d(t, kernel, stride, torch_padding, ceil_mode=ceil_mode,
                                                       count_include_pad=False)),
        # the sum of squares over each window, padded with zeros, then the square root
        "l2": (l2_pool2d_forward, l2_pool2d_backward, {},
               lambda t: functional.avg_pool2d(t * t, kernel, stride, torch_padding, ceil_mode=ceil_mode,
                                               divisor_override=1).sqrt()),
    }
    for name, (forward, backward, extra, peer) in peers.items():
        tx = torch.tensor(x, requires_grad=True)
        tout = peer(tx)
        dout = rng.standard_normal(tuple(tout.shape))
        tout.backward(torch.tensor(dout))
        for impl in ("reference", "numba"):
            out, cache = forward(x, impl=impl, **common, **extra)
            assert out.shape == tuple(tout.shape), name
            assert max_rel(out, tout.detach().numpy()) < 1e-10, (name, impl)
            assert max_rel(backward(dout, cache), tx.grad.numpy()) < 1e-10, (name, impl)


@pytest.mark.parametrize("shape, kernel, stride", [((2, 3, 7, 8), 3, 2), ((2, 2, 6, 6), 3, 1), ((1, 2, 8, 8), 2, None)])
def test_l2_pool_matches_torch_lp_pool2d(torch, rng, shape, kernel, stride):
    # LPPool2d(2) on full windows without padding (it has no padding argument)
    x = distinct_values(rng, shape)
    tx = torch.tensor(x, requires_grad=True)
    tout = torch.nn.functional.lp_pool2d(tx, 2, kernel, stride)
    dout = rng.standard_normal(tuple(tout.shape))
    tout.backward(torch.tensor(dout))
    for impl in ("reference", "numba"):
        out, cache = l2_pool2d_forward(x, kernel_size=kernel, stride=stride, impl=impl)
        assert max_rel(out, tout.detach().numpy()) < 1e-10
        assert max_rel(l2_pool2d_backward(dout, cache), tx.grad.numpy()) < 1e-10


@pytest.mark.parametrize("mode", ["max", "avg", "l2"])
def test_pool_bad_input(rng, mode):
    forward, backward = POOLS[mode]
    x = rng.standard_normal((2, 3, 6, 6))
    with pytest.raises(ValueError, match="x must be a 4-D array"):
        forward(x[0], kernel_size=2)
    with pytest.raises(TypeError, match="x must have a floating point dtype"):
        forward(x.astype(np.int32), kernel_size=2)
    bad = x.copy()
    bad[1, 2, 3, 4] = -np.inf
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        forward(bad, kernel_size=2)
    with pytest.raises(ValueError, match="kernel_size must be a positive integer"):
        forward(x, kernel_size=0)
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        forward(x, kernel_size=2, stride=(0, 1))
    with pytest.raises(TypeError, match="kernel_size must be a positive int or a pair"):
        forward(x, kernel_size=(2, 2, 2))
    with pytest.raises(ValueError, match="kernel_size 7 is larger than the padded input"):
        forward(x, kernel_size=7)
    with pytest.raises(ValueError, match=r"padding \(top 2\) must be at most half the kernel size"):
        forward(x, kernel_size=3, padding=2)
    with pytest.raises(TypeError, match="ceil_mode must be True or False"):
        forward(x, kernel_size=2, ceil_mode="yes")
    with pytest.raises(ValueError, match="impl must be one of"):
        forward(x, kernel_size=2, impl="fast")
    with pytest.raises(TypeError, match="impl='cuda' needs CuPy arrays"):
        forward(x, kernel_size=2, impl="cuda")
    out, cache = forward(x, kernel_size=2)
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output \(2, 3, 3, 3\)"):
        backward(out[..., :2], cache)
    with pytest.raises(TypeError, match="dout must have a floating point dtype"):
        backward(out.astype(np.int64), cache)
    other = "avg" if mode != "avg" else "max"
    _, other_cache = POOLS[other][0](x, kernel_size=2)
    with pytest.raises(TypeError, match=f"cache must be the PoolCache returned by {mode}_pool2d_forward"):
        backward(out, other_cache)


def _naive_pool(x, mode, k, s, p):
    """Per-window loops over the zero/-inf padded input (no ceil_mode), and the gradient of sum(out * dout)."""
    n, c, h, w = x.shape
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = np.zeros((n, c, oh, ow))
    for a in range(n):
        for b in range(c):
            for i in range(oh):
                for j in range(ow):
                    rows = range(max(i * s - p, 0), min(i * s - p + k, h))
                    cols = range(max(j * s - p, 0), min(j * s - p + k, w))
                    vals = [x[a, b, r, q] for r in rows for q in cols]
                    out[a, b, i, j] = {"max": max(vals), "avg": sum(vals) / (k * k),
                                       "l2": np.sqrt(sum(v * v for v in vals))}[mode]
    return out


@pytest.mark.parametrize("mode", ["max", "avg", "l2"])
def test_each_pooling_has_its_own_reference_equal_to_loops_and_to_the_kernel(rng, mode):
    from scratchface.kernels.pooling import pool2d_dx_numba, pool2d_output_numba

    x = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) / 50.0 - 2.0   # distinct: no ties in a max
    kernel, stride, padding, out_hw = (3, 3), (2, 2), (1, 1, 1, 1), (4, 3)
    dout = rng.standard_normal((2, 3) + out_hw)
    reference_forward = getattr(pooling, f"{mode}_pool2d_reference_forward")
    reference_backward = getattr(pooling, f"{mode}_pool2d_reference_backward")
    if mode == "max":
        out, argmax = reference_forward(x, kernel, stride, padding, out_hw)
        dx = reference_backward(dout, x, argmax, kernel, stride, padding)
    elif mode == "avg":
        out = reference_forward(x, kernel, stride, padding, out_hw)
        dx = reference_backward(dout, x, kernel, stride, padding)
    else:
        out = reference_forward(x, kernel, stride, padding, out_hw)
        dx = reference_backward(dout, x, out, kernel, stride, padding)
    np.testing.assert_allclose(out, _naive_pool(x, mode, 3, 2, 1), rtol=1e-13, atol=1e-14)
    fast, fast_argmax = pool2d_output_numba(x, mode, kernel, stride, padding, out_hw, True)
    np.testing.assert_allclose(fast, out, rtol=1e-13, atol=1e-14)
    fast_dx = pool2d_dx_numba(dout, x, fast if mode == "l2" else None, fast_argmax, mode, kernel, stride, padding,
                              True)
    np.testing.assert_allclose(fast_dx, dx, rtol=1e-12, atol=1e-14)
    numeric = numerical_gradient(lambda: float(np.sum(_naive_pool(x, mode, 3, 2, 1) * dout)), x)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-8)


@st.composite
def _max_pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    padding = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kh // 2)),
               draw(st.integers(0, kw // 2)), draw(st.integers(0, kw // 2)))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)),
             draw(st.integers(max(1, kh - padding[0] - padding[1]), 13)),
             draw(st.integers(max(1, kw - padding[2] - padding[3]), 13)))
    return shape, (kh, kw), (draw(st.integers(1, 3)), draw(st.integers(1, 3))), padding, draw(st.booleans())


@settings(max_examples=60, deadline=None)
@given(case=_max_pool_cases(), ties=st.booleans())
def test_inference_max_pool_equals_the_reference_forward(case, ties):
    """``max_pool2d`` (separable, no argmax) on random shapes, kernels, strides, paddings, ceil mode:
    the values of the reference forward (an out-of-bounds read would not stay equal)."""
    shape, kernel, stride, padding, ceil_mode = case
    rng = np.random.default_rng(1)
    x = rng.integers(-3, 3, size=shape).astype(np.float64) if ties else rng.standard_normal(shape)
    want, _ = pooling.max_pool2d_forward(x, kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                                         impl="reference")
    for dtype in (np.float64, np.float32):
        got = pooling.max_pool2d(x.astype(dtype), kernel_size=kernel, stride=stride, padding=padding,
                                 ceil_mode=ceil_mode)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want.astype(dtype))


@settings(max_examples=60, deadline=None)
@given(case=_max_pool_cases(), ties=st.booleans())
def test_max_pool_argmax_kernel_equals_the_reference_with_ties(case, ties):
    """The training forward (separable, each window's first maximum in row-major order) and its backward
    on random shapes, kernels, strides, paddings and ceil mode, with many ties (small integers): the
    gradient goes to the same pixel as the reference's (a tie broken the other way would move it)."""
    shape, kernel, stride, padding, ceil_mode = case
    rng = np.random.default_rng(2)
    x = rng.integers(-2, 3, size=shape).astype(np.float64) if ties else rng.standard_normal(shape)
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    want, want_cache = max_pool2d_forward(x, impl="reference", **kwargs)
    dout = rng.standard_normal(want.shape)
    for dtype in (np.float64, np.float32):
        got, cache = max_pool2d_forward(x.astype(dtype), impl="numba", **kwargs)
        np.testing.assert_array_equal(got, want.astype(dtype))
        eps = np.finfo(dtype).eps * kernel[0] * kernel[1] * np.abs(dout).max()   # overlapping windows add
        np.testing.assert_allclose(max_pool2d_backward(dout.astype(dtype), cache),   # in another order
                                   max_pool2d_backward(dout, want_cache), rtol=0, atol=4 * eps)


def test_inference_max_pool_checks_like_the_forward():
    with pytest.raises(ValueError, match="at most half the kernel"):
        pooling.max_pool2d(np.zeros((1, 1, 5, 5)), kernel_size=2, padding=2)
    with pytest.raises(ValueError, match="NaN"):
        pooling.max_pool2d(np.full((1, 1, 4, 4), np.nan), kernel_size=2)
    with pytest.raises(TypeError, match="ceil_mode"):
        pooling.max_pool2d(np.zeros((1, 1, 4, 4)), kernel_size=2, ceil_mode=1)
    np.testing.assert_array_equal(pooling.max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), kernel_size=2),
                                  [[[[5.0, 7.0], [13.0, 15.0]]]])          # by hand
