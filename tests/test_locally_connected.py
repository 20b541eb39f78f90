"""Locally connected layer: finite differences, naive loops, kernel == reference, bad input.

torch has no locally connected layer; the independent references are a loop
straight from the definition and the convolution it becomes when every
position holds the same filters.
"""
import numpy as np
import pytest

from scratchface.gradcheck import PASS_THRESHOLD, check_layer
from scratchface.layers.conv import conv2d_forward
from scratchface.layers.locally_connected import (
    gradcheck_cases,
    locally_connected2d_backward,
    locally_connected2d_forward,
)


def max_rel(a, ref):
    a, ref = np.asarray(a, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert a.shape == ref.shape
    return float(np.max(np.abs(a - ref)) / max(np.max(np.abs(ref)), 1e-300))


def out_size(h, k, s, before, after):
    return (h + before + after - k) // s + 1


def make(rng, n, c, h, wd, f, kh, kw, stride, padding, dtype=np.float64):
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    top, bottom, left, right = (padding,) * 4 if isinstance(padding, int) else padding
    oh, ow = out_size(h, kh, sh, top, bottom), out_size(wd, kw, sw, left, right)
    return (rng.standard_normal((n, c, h, wd)).astype(dtype),
            rng.standard_normal((oh, ow, f, c, kh, kw)).astype(dtype),
            rng.standard_normal((f, oh, ow)).astype(dtype))


def naive(x, w, b, stride, padding):
    """out[n, f, p, q] = b[f, p, q] + sum(window * w[p, q, f]): the definition, loop by loop."""
    sh, sw = stride
    top, bottom, left, right = padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    oh, ow, f, _, kh, kw = w.shape
    out = np.zeros((x.shape[0], f, oh, ow))
    for n in range(x.shape[0]):
        for k in range(f):
            for p in range(oh):
                for q in range(ow):
                    window = xp[n, :, p * sh:p * sh + kh, q * sw:q * sw + kw]
                    out[n, k, p, q] = np.sum(window * w[p, q, k]) + b[k, p, q]
    return out


GRAD_SHAPES = [
    (2, 2, 5, 6, 3, 3, 3, 1, 0),
    (2, 3, 7, 7, 2, 3, 3, 2, 0),
    (1, 2, 4, 5, 3, 2, 2, 1, 0),
    (2, 2, 4, 4, 2, 3, 2, (1, 2), 0),
    (2, 3, 3, 3, 4, 1, 1, 1, 0),
]


GRAD_CASES = [(shape, "reference") for shape in GRAD_SHAPES] + [(GRAD_SHAPES[i], "numba") for i in (3,)]


@pytest.mark.parametrize("shape, impl", GRAD_CASES)
def test_locally_connected_gradcheck(rng, shape, impl):
    n, c, h, wd, f, kh, kw, stride, padding = shape
    x, w, b = make(rng, *shape)
    result = check_layer(locally_connected2d_forward, locally_connected2d_backward, {"x": x, "w": w, "b": b},
                         {"stride": stride, "padding": padding, "impl": impl})
    assert result.passed, result.errors


def test_locally_connected_gradcheck_cases_pass(rng):
    for case in gradcheck_cases(rng):
        result = case.run()
        assert result.max_error < PASS_THRESHOLD, (case.name, result.errors)


@pytest.mark.parametrize("shape", [(2, 3, 7, 8, 4, 3, 3, 1, 1), (2, 2, 9, 8, 3, 3, 2, (2, 1), (1, 0, 0, 1)),
                                   (1, 1, 5, 5, 2, 5, 5, 1, 0)])
def test_locally_connected_matches_naive_loops(rng, shape):
    x, w, b = make(rng, *shape)
    stride = shape[7] if isinstance(shape[7], tuple) else (shape[7],) * 2
    padding = shape[8] if isinstance(shape[8], tuple) else (shape[8],) * 4
    expected = naive(x, w, b, stride, padding)
    for impl in ("reference", "numba"):
        out, _ = locally_connected2d_forward(x, w, b, stride=shape[7], padding=shape[8], impl=impl)
        assert max_rel(out, expected) < 1e-13


def test_locally_connected_with_shared_weights_is_a_convolution(rng):
    x = rng.standard_normal((2, 3, 8, 7))
    wc, bc = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    conv, _ = conv2d_forward(x, wc, bc, stride=2, padding=1, impl="reference")
    oh, ow = conv.shape[2:]
    w = np.broadcast_to(wc, (oh, ow) + wc.shape).copy()
    b = np.broadcast_to(bc[:, None, None], (4, oh, ow)).copy()
    for impl in ("reference", "numba"):
        out, cache = locally_connected2d_forward(x, w, b, stride=2, padding=1, impl=impl)
        assert max_rel(out, conv) < 1e-13


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_locally_connected_kernel_equals_reference(dtype, tol):
    rng = np.random.default_rng(11)
    for _ in range(10):
        kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        padding = tuple(int(v) for v in rng.integers(0, 2, size=4))
        h, wd = int(rng.integers(kh, 11)), int(rng.integers(kw, 11))
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4)), h, wd, int(rng.integers(1, 5)),
                 kh, kw, stride, padding)
        x, w, b = make(rng, *shape, dtype=dtype)
        ref, ref_cache = locally_connected2d_forward(x, w, b, stride=stride, padding=padding, impl="reference")
        out, cache = locally_connected2d_forward(x, w, b, stride=stride, padding=padding, impl="numba")
        assert out.dtype == dtype and max_rel(out, ref) < tol
        dout = rng.standard_normal(out.shape).astype(dtype)
        grads, ref_grads = locally_connected2d_backward(dout, cache), locally_connected2d_backward(dout, ref_cache)
        for got, want in zip(grads, ref_grads):
            assert got.dtype == dtype and max_rel(got, want) < tol


def test_locally_connected_without_bias(rng):
    x, w, _ = make(rng, 2, 2, 5, 5, 3, 3, 3, 1, 0)
    for impl in ("reference", "numba"):
        out, cache = locally_connected2d_forward(x, w, impl=impl)
        dx, dw, db = locally_connected2d_backward(np.ones_like(out), cache)
        assert db is None and dx.shape == x.shape and dw.shape == w.shape


def test_locally_connected_bad_input(rng):
    x, w, b = make(rng, 2, 3, 6, 6, 4, 3, 3, 1, 0)
    with pytest.raises(ValueError, match="x must be a 4-D array"):
        locally_connected2d_forward(x[0], w, b)
    with pytest.raises(ValueError, match="w must be a 6-D array"):
        locally_connected2d_forward(x, w[0], b)
    with pytest.raises(ValueError, match="w has 2 input channels"):
        locally_connected2d_forward(x, w[:, :, :, :2], b)
    with pytest.raises(ValueError, match=r"per output pixel: shape\[:2\] = \(2, 2\) .* got \(4, 4\)"):
        locally_connected2d_forward(x, w, b, stride=2)
    with pytest.raises(ValueError, match=r"b must have shape \(F, OH, OW\) = \(4, 4, 4\)"):
        locally_connected2d_forward(x, w, b[:, :3])
    with pytest.raises(TypeError, match="x must have a floating point dtype"):
        locally_connected2d_forward(x.astype(np.int16), w, b)
    with pytest.raises(TypeError, match="w must have the dtype of x"):
        locally_connected2d_forward(x, w.astype(np.float32), b)
    bad = x.copy()
    bad[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        locally_connected2d_forward(bad, w, b)
    with pytest.raises(ValueError, match="kernel_size 9 is larger than the padded input"):
        locally_connected2d_forward(x, np.zeros((1, 1, 4, 3, 9, 9)), None)
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        locally_connected2d_forward(x, w, b, stride=-2)
    out, cache = locally_connected2d_forward(x, w, b)
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output \(2, 4, 4, 4\)"):
        locally_connected2d_backward(out[:1], cache)
    with pytest.raises(TypeError, match="cache must be the LocallyConnectedCache"):
        locally_connected2d_backward(out, {})
