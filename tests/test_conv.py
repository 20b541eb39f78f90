"""conv2d: finite differences, Numba kernel == readable reference, torch autograd, bad input."""
import numpy as np
import pytest

from scratchface.gradcheck import PASS_THRESHOLD, check_layer
from scratchface.layers.conv import conv2d_backward, conv2d_forward, gradcheck_cases


def max_rel(a, ref):
    """max |a - ref| / max |ref|: the error relative to the array's scale."""
    a, ref = np.asarray(a, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert a.shape == ref.shape
    return float(np.max(np.abs(a - ref)) / max(np.max(np.abs(ref)), 1e-300))


def naive_conv(x, w, b, stride, padding):
    """Seven loops, straight from the definition (the independent expectation)."""
    sh, sw = stride
    top, bottom, left, right = padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    n, _, h, wd = xp.shape
    f, _, kh, kw = w.shape
    oh, ow = (h - kh) // sh + 1, (wd - kw) // sw + 1
    out = np.zeros((n, f, oh, ow))
    for i in range(n):
        for k in range(f):
            for p in range(oh):
                for q in range(ow):
                    out[i, k, p, q] = np.sum(xp[i, :, p * sh:p * sh + kh, q * sw:q * sw + kw] * w[k]) + b[k]
    return out


# (N, C, H, W, F, KH, KW, stride, padding): every input pixel and weight reaches the output,
# so no gradient is exactly zero
GRAD_SHAPES = [
    (2, 3, 5, 6, 4, 3, 3, 1, 1),
    (2, 2, 7, 9, 3, 3, 3, 2, 0),              # stride 2, odd sizes
    (1, 2, 6, 6, 3, 3, 3, 2, (1, 0, 1, 0)),   # TF 'same' for 3x3/2 on even input... top/left variant
    (2, 3, 5, 5, 2, 2, 2, 1, (0, 1, 0, 1)),   # TF 'same' with an even kernel
    (2, 4, 3, 5, 5, 1, 1, 1, 0),              # 1x1: a pure matrix product
    (1, 2, 7, 5, 2, 3, 1, (2, 1), (1, 1, 0, 0)),
    (2, 1, 4, 4, 3, 5, 5, 1, 2),              # kernel larger than the input, padding makes it fit
]


GRAD_CASES = [(shape, "reference") for shape in GRAD_SHAPES] + [(GRAD_SHAPES[i], "numba") for i in (1,)]


@pytest.mark.parametrize("shape, impl", GRAD_CASES)
def test_conv2d_gradcheck(rng, shape, impl):
    n, c, h, wd, f, kh, kw, stride, padding = shape
    inputs = {"x": rng.standard_normal((n, c, h, wd)), "w": rng.standard_normal((f, c, kh, kw)),
              "b": rng.standard_normal(f)}
    result = check_layer(conv2d_forward, conv2d_backward, inputs,
                         {"stride": stride, "padding": padding, "impl": impl})
    assert result.passed, result.errors


def test_conv2d_gradcheck_cases_pass(rng):
    for case in gradcheck_cases(rng):
        result = case.run()
        assert result.max_error < PASS_THRESHOLD, (case.name, result.errors)


def test_conv2d_matches_naive_loops(rng):
    x, w, b = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    for stride, padding in [((1, 1), (0, 0, 0, 0)), ((2, 1), (1, 2, 0, 1))]:
        for impl in ("reference", "numba"):
            out, _ = conv2d_forward(x, w, b, stride=stride, padding=padding, impl=impl)
            assert max_rel(out, naive_conv(x, w, b, stride, padding)) < 1e-13


def random_configs(rng, count):
    configs = []
    for _ in range(count):
        kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        padding = tuple(int(v) for v in rng.integers(0, 3, size=4))
        h = int(rng.integers(max(1, kh - padding[0] - padding[1]), 14))
        wd = int(rng.integers(max(1, kw - padding[2] - padding[3]), 14))
        configs.append((int(rng.integers(1, 4)), int(rng.integers(1, 6)), h, wd, int(rng.integers(1, 7)),
                        kh, kw, stride, padding))
    configs.append((3, 5, 9, 11, 4, 1, 1, 1, (0, 0, 0, 0)))       # the 1x1 GEMM path
    configs.append((2, 3, 13, 13, 8, 7, 7, 2, (3, 3, 3, 3)))      # conv1-like
    return configs


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_conv2d_kernel_equals_reference(dtype, tol):
    rng = np.random.default_rng(7)
    for n, c, h, wd, f, kh, kw, stride, padding in random_configs(rng, 12):
        x = rng.standard_normal((n, c, h, wd)).astype(dtype)
        w = rng.standard_normal((f, c, kh, kw)).astype(dtype)
        b = rng.standard_normal(f).astype(dtype)
        ref, ref_cache = conv2d_forward(x, w, b, stride=stride, padding=padding, impl="reference")
        out, cache = conv2d_forward(x, w, b, stride=stride, padding=padding, impl="numba")
        assert out.dtype == dtype and out.shape == ref.shape
        assert max_rel(out, ref) < tol
        dout = rng.standard_normal(out.shape).astype(dtype)
        for got, want in zip(conv2d_backward(dout, cache), conv2d_backward(dout, ref_cache)):
            assert got.dtype == dtype
            assert max_rel(got, want) < tol


def test_conv2d_without_bias(rng):
    x, w = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((2, 3, 3, 3))
    for impl in ("reference", "numba"):
        out, cache = conv2d_forward(x, w, stride=2, impl=impl)
        with_zero_bias, _ = conv2d_forward(x, w, np.zeros(2), stride=2, impl=impl)
        np.testing.assert_array_equal(out, with_zero_bias)
        dx, dw, db = conv2d_backward(np.ones_like(out), cache)
        assert db is None and dx.shape == x.shape and dw.shape == w.shape


def test_conv2d_output_size_by_hand():
    # 96x96, 7x7, stride 2, pad 3 -> 48x48 (FaceNet NN4 conv1); 24x24, 3x3/1 pad 1 -> 24x24
    out, _ = conv2d_forward(np.zeros((1, 3, 96, 96)), np.zeros((2, 3, 7, 7)), stride=2, padding=3)
    assert out.shape == (1, 2, 48, 48)
    out, _ = conv2d_forward(np.zeros((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding=1)
    assert out.shape == (1, 1, 5, 5)


def test_conv2d_known_values():
    # a 3x3 box filter on ones with zero padding 1 counts the real neighbours: 4 corners, 6 edges, 9 inside
    out, _ = conv2d_forward(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), padding=1)
    expected = np.array([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]], dtype=float)
    np.testing.assert_array_equal(out[0, 0], expected)


@pytest.mark.parametrize("shape", [
    (2, 3, 7, 8, 4, 3, 3, 1, (1, 1, 1, 1)),
    (2, 3, 9, 8, 5, 3, 3, (2, 2), (1, 1, 1, 1)),
    (3, 4, 6, 6, 5, 1, 1, 1, (0, 0, 0, 0)),
    (2, 2, 11, 10, 3, 5, 4, (2, 3), (2, 2, 1, 1)),
    (2, 3, 6, 6, 4, 2, 2, (2, 2), (0, 1, 0, 1)),       # asymmetric: torch pads with F.pad first
])
def test_conv2d_matches_torch(torch, rng, shape):
    n, c, h, wd, f, kh, kw, stride, padding = shape
    x, w, b = rng.standard_normal((n, c, h, wd)), rng.standard_normal((f, c, kh, kw)), rng.standard_normal(f)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    top, bottom, left, right = padding
    tout = torch.nn.functional.conv2d(torch.nn.functional.pad(tx, (left, right, top, bottom)), tw, tb,
                                      stride=stride)
    dout = rng.standard_normal(tuple(tout.shape))
    tout.backward(torch.tensor(dout))
    for impl in ("reference", "numba"):
        out, cache = conv2d_forward(x, w, b, stride=stride, padding=padding, impl=impl)
        assert max_rel(out, tout.detach().numpy()) < 1e-10
        for got, want in zip(conv2d_backward(dout, cache), (tx.grad, tw.grad, tb.grad)):
            assert max_rel(got, want.numpy()) < 1e-10


def test_conv2d_bad_input(rng):
    x, w, b = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    with pytest.raises(ValueError, match="x must be a 4-D array"):
        conv2d_forward(x[0], w, b)
    with pytest.raises(ValueError, match="w must be a 4-D array"):
        conv2d_forward(x, w[0], b)
    with pytest.raises(ValueError, match="w has 2 input channels"):
        conv2d_forward(x, w[:, :2], b)
    with pytest.raises(ValueError, match="b must have one value per filter"):
        conv2d_forward(x, w, b[:3])
    with pytest.raises(TypeError, match="x must have a floating point dtype"):
        conv2d_forward(x.astype(np.int64), w, b)
    with pytest.raises(TypeError, match="w must have the dtype of x"):
        conv2d_forward(x, w.astype(np.float32), b)
    with pytest.raises(TypeError, match="x must be an array"):
        conv2d_forward(x.tolist(), w, b)
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        conv2d_forward(bad, w, b)
    bad_w = w.copy()
    bad_w[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="w contains NaN or infinity"):
        conv2d_forward(x, bad_w, b)
    with pytest.raises(ValueError, match="kernel_size 8 is larger than the padded input"):
        conv2d_forward(x, rng.standard_normal((4, 3, 8, 3)), b, padding=1)
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        conv2d_forward(x, w, b, stride=0)
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        conv2d_forward(x, w, b, stride=(1, -1))
    with pytest.raises(ValueError, match="padding must be a non-negative integer"):
        conv2d_forward(x, w, b, padding=-1)
    with pytest.raises(TypeError, match="padding must be an int, a pair"):
        conv2d_forward(x, w, b, padding=(1, 1, 1))
    with pytest.raises(ValueError, match="impl must be one of"):
        conv2d_forward(x, w, b, impl="fast")
    with pytest.raises(TypeError, match="impl='cuda' needs CuPy arrays"):
        conv2d_forward(x, w, b, impl="cuda")
    out, cache = conv2d_forward(x, w, b, padding=1)
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output \(2, 4, 5, 5\)"):
        conv2d_backward(out[:, :3], cache)
    with pytest.raises(ValueError, match="dout contains NaN"):
        conv2d_backward(np.full_like(out, np.nan), cache)
    with pytest.raises(TypeError, match="cache must be the Conv2dCache"):
        conv2d_backward(out, (x, w))


def test_parallel_path_equals_reference_above_single_thread_threshold():
    """Shapes large enough that the Numba kernels run their parallel loops (not the 1-thread path)."""
    from scratchface.kernels.conv import CONV_SMALL_WORK as SMALL_WORK

    rng = np.random.default_rng(7)
    x = rng.standard_normal((8, 16, 65, 63))
    w = rng.standard_normal((12, 16, 3, 3))
    b = rng.standard_normal(12)
    assert 8 * 65 * 63 * 16 * 9 > SMALL_WORK
    out, cache = conv2d_forward(x, w, b, stride=1, padding=1, impl="numba")
    ref, ref_cache = conv2d_forward(x, w, b, stride=1, padding=1, impl="reference")
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    dout = rng.standard_normal(out.shape)
    for got, want in zip(conv2d_backward(dout, cache), conv2d_backward(dout, ref_cache)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
