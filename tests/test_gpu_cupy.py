"""The GPU paths on a real GPU, on CuPy arrays (scratchface.kernels.cuda); skipped without one.

Needs CuPy and ``numba.cuda`` with a CUDA device (``pip install 'scratchface[gpu]'``).
The same kernels' logic is tested without a GPU in ``tests/test_cuda_kernels.py``
(Numba's CUDA simulator); here the question is whether they compile and run on
the device, on CuPy's memory and stream, at realistic sizes, and still agree
with the readable CPU references. On the device the compiler may fuse
multiply-adds, so float64 results are compared to 1e-10, not bit for bit.
"""
import importlib
import numpy as np
import pytest

cupy = pytest.importorskip("cupy", reason="CuPy not installed: GPU tests skipped (pip install 'scratchface[gpu]')")

from scratchface.backend import cupy_available, to_device, to_host  # noqa: E402

if not cupy_available():
    pytest.skip("no CUDA GPU visible to CuPy: GPU tests skipped", allow_module_level=True)

numba_cuda = pytest.importorskip("numba.cuda", reason="numba.cuda not importable: GPU tests skipped")
from numba.core import config as _numba_config  # noqa: E402

if _numba_config.ENABLE_CUDASIM:
    pytest.skip("NUMBA_ENABLE_CUDASIM=1: these tests need the real device", allow_module_level=True)
if not numba_cuda.is_available():
    pytest.skip("numba.cuda sees no GPU (pip install 'numba-cuda[cu12]'): GPU tests skipped",
                allow_module_level=True)

from scratchface.kernels.cuda import conv, distances, prelu  # noqa: E402
from scratchface.kernels.cuda import hog as cuda_hog  # noqa: E402
from scratchface.kernels.cuda import nms as cuda_nms  # noqa: E402
from scratchface.kernels.cuda import pooling as cuda_pooling  # noqa: E402

pytestmark = pytest.mark.gpu


def _rel(a, b):
    a, b = np.asarray(to_host(a), dtype=np.float64), np.asarray(to_host(b), dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-300))) if a.size else 0.0


def _close(got, want, rtol):
    """Max error relative to the largest magnitude (float32 sums cancel: elementwise rel is unfair)."""
    got, want = np.asarray(to_host(got), dtype=np.float64), np.asarray(to_host(want), dtype=np.float64)
    scale = max(float(np.abs(want).max()), 1e-30)
    return float(np.abs(got - want).max()) / scale < rtol


# ----------------------------------------------------------------------------- convolution

@pytest.mark.parametrize("shape, wshape, stride, padding", [
    ((4, 3, 48, 48), (16, 3, 7, 7), 2, 3),           # NN2 conv1 (smaller batch)
    ((4, 32, 12, 12), (48, 32, 3, 3), 1, 1),         # an inception 3x3
    ((4, 16, 12, 12), (24, 16, 5, 5), 2, 2),         # a stride-2 5x5 (3c / 4e)
    ((4, 64, 12, 12), (32, 64, 1, 1), 1, 0),         # pointwise
    ((3, 5, 9, 8), (4, 5, 2, 3), (2, 1), (0, 1, 1, 0)),
])
def test_conv2d_float64_matches_reference(rng, shape, wshape, stride, padding):
    from scratchface.layers.conv import conv2d_backward, conv2d_forward

    x, w, b = rng.standard_normal(shape), rng.standard_normal(wshape), rng.standard_normal(wshape[0])
    ref, cache = conv2d_forward(x, w, b, stride=stride, padding=padding, impl="reference")
    out = conv.conv2d_output_cuda(to_device(x), to_device(w), to_device(b), stride, padding)
    assert isinstance(out, cupy.ndarray) and _rel(out, ref) < 1e-10
    dout = rng.standard_normal(ref.shape)
    got = conv.conv2d_grads_cuda(to_device(dout), to_device(x), to_device(w), True, stride, padding)
    for g, want in zip(got, conv2d_backward(dout, cache)):
        assert _close(g, want, 1e-12)


def test_conv2d_float32_facenet_shape(rng):
    from scratchface.layers.conv import conv2d_reference_backward, conv2d_reference_forward

    x = rng.standard_normal((8, 96, 24, 24)).astype(np.float32)
    w = (rng.standard_normal((128, 96, 3, 3)) * 0.05).astype(np.float32)
    b = rng.standard_normal(128).astype(np.float32)
    out = conv.conv2d_output_cuda(to_device(x), to_device(w), to_device(b), 1, 1)
    assert out.dtype == cupy.float32
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    assert _close(out, conv2d_reference_forward(x64, w64, b.astype(np.float64), (1, 1), (1, 1, 1, 1)), 1e-5)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    got = conv.conv2d_grads_cuda(to_device(dout), to_device(x), to_device(w), True, 1, 1)
    want = conv2d_reference_backward(dout.astype(np.float64), x64, w64, True, (1, 1), (1, 1, 1, 1))
    for g, r in zip(got, want):
        assert g.dtype == cupy.float32 and _close(g, r, 1e-5)


def test_conv2d_backward_is_deterministic(rng):
    x = to_device(rng.standard_normal((4, 8, 15, 15)).astype(np.float32))
    w = to_device(rng.standard_normal((8, 8, 3, 3)).astype(np.float32))
    dout = to_device(rng.standard_normal((4, 8, 8, 8)).astype(np.float32))
    first = conv.conv2d_grads_cuda(dout, x, w, True, 2, 1)
    second = conv.conv2d_grads_cuda(dout, x, w, True, 2, 1)
    assert cupy.array_equal(first[0], second[0])           # col2im gathers: no atomics


def test_kernels_follow_cupy_current_stream(rng):
    x, w = rng.standard_normal((2, 3, 10, 10)), rng.standard_normal((4, 3, 3, 3))
    want = conv.conv2d_output_cuda(to_device(x), to_device(w), None, 1, 1)
    with cupy.cuda.Stream(non_blocking=True):
        got = conv.conv2d_output_cuda(to_device(x), to_device(w), None, 1, 1)
        got_host = to_host(got)
    np.testing.assert_array_equal(got_host, to_host(want))


# ----------------------------------------------------------------------------- pooling, PReLU

@pytest.mark.parametrize("mode, kwargs", [
    ("max", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ("l2", dict(kernel_size=3, stride=1, padding=1)),
])
def test_pooling_matches_reference(rng, mode, kwargs):
    from scratchface.layers import pooling

    x = rng.standard_normal((4, 16, 23, 24))
    forward = getattr(pooling, f"{mode}_pool2d_forward")
    backward = getattr(pooling, f"{mode}_pool2d_backward")
    ref, cache = forward(x, impl="reference", **kwargs)
    xd = to_device(x)
    out, argmax = cuda_pooling.pool2d_output_cuda(xd, mode, cache.kernel_size, cache.stride, cache.padding,
                                                  ref.shape[2:], cache.count_include_pad)
    assert _rel(out, ref) < 1e-12
    dout = rng.standard_normal(ref.shape)
    dx = cuda_pooling.pool2d_dx_cuda(to_device(dout), xd, out if mode == "l2" else None, argmax, mode,
                                     cache.kernel_size, cache.stride, cache.padding, cache.count_include_pad)
    assert _close(dx, backward(dout, cache), 1e-12)


def test_prelu_matches_reference(rng):
    from scratchface.layers.activations import prelu_backward, prelu_forward

    x, alpha = rng.standard_normal((8, 32, 20, 20)), rng.random(32)
    ref, cache = prelu_forward(x, alpha)
    assert _rel(prelu.prelu_output_cuda(to_device(x), to_device(alpha)), ref) == 0
    dout = rng.standard_normal(x.shape)
    dx, dalpha = prelu.prelu_grads_cuda(to_device(dout), to_device(x), to_device(alpha))
    want_dx, want_dalpha = prelu_backward(dout, cache)
    assert _rel(dx, want_dx) == 0 and _close(dalpha, want_dalpha, 1e-12)


# ----------------------------------------------------------------------------- NMS

def _boxes(rng, n, extent=500.0):
    xy = rng.random((n, 2)) * extent
    wh = 10 + rng.random((n, 2)) * 60
    return np.concatenate([xy, xy + wh], axis=1)


@pytest.mark.parametrize("n, mode, reduce", [(5000, "union", "device"), (3000, "min", "device"),
                                             (1000, "union", "host"), (64, "union", "device"), (1, "union", "device")])
def test_nms_matches_readable_nms(rng, n, mode, reduce):
    from scratchface.detection.nms import nms

    boxes, scores = _boxes(rng, n), rng.random(n)
    scores[::11] = 0.5
    want = nms(boxes, scores, 0.5, mode)
    got = cuda_nms.nms_cuda(to_device(boxes), to_device(scores), 0.5, mode, reduce=reduce)
    assert got.dtype == cupy.int64
    np.testing.assert_array_equal(to_host(got), want)


def test_nms_matches_torchvision(rng):
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    boxes, scores = _boxes(rng, 20000, extent=2000.0), rng.random(20000)
    want = torchvision.ops.nms(torch.as_tensor(boxes, device="cuda"), torch.as_tensor(scores, device="cuda"), 0.5)
    got = cuda_nms.nms_cuda(to_device(boxes), to_device(scores), 0.5)
    np.testing.assert_array_equal(to_host(got), want.cpu().numpy())


# ----------------------------------------------------------------------------- distances, HOG

@pytest.mark.parametrize("metric", ["sqeuclidean", "cosine"])
def test_distances_and_neighbours_match_reference(rng, metric):
    from scratchface.distances import nearest_neighbors, pairwise_distances

    a, b = rng.standard_normal((300, 128)), rng.standard_normal((2000, 128))
    want = pairwise_distances(a, b, metric=metric, impl="reference")
    assert _close(distances.pairwise_distances_cuda(to_device(a), to_device(b), metric=metric), want, 1e-12)
    same = distances.pairwise_distances_cuda(to_device(a), metric=metric)
    assert float(cupy.abs(cupy.diagonal(same)).max()) == 0
    got_i, got_d = distances.nearest_neighbors_cuda(to_device(a), to_device(b), k=5, metric=metric, block_size=128)
    want_i, want_d = nearest_neighbors(a, b, k=5, metric=metric, impl="reference")
    np.testing.assert_array_equal(to_host(got_i), want_i)
    assert _close(got_d, want_d, 1e-12)


@pytest.mark.parametrize("binning", ["hard", "bilinear"])
def test_hog_cell_histograms_match_reference(rng, binning):
    hog = importlib.import_module("scratchface.detection.hog")  # the module (the package exports the function)

    image = rng.random((130, 97, 3))
    g_row, g_col = hog.dominant_channel_gradients(image)
    magnitude, orientation = hog.magnitude_orientation(g_row, g_col)
    want = hog.cell_histograms(magnitude, orientation, orientations=9, pixels_per_cell=(8, 8), binning=binning)
    got = cuda_hog.hog_cell_histograms_cuda(to_device(image), edges=hog.orientation_bin_edges(9),
                                            pixels_per_cell=(8, 8), binning=binning)
    # an orientation a hair from a hard-bin edge may land on the other side on the device (atan2 in
    # its last bit); allow a few such pixels, each moving at most one vote of 1/64 of a magnitude
    diff = np.abs(to_host(got) - want)
    assert np.mean(diff > 1e-10) < 1e-3
    assert _close(got, want, 1e-2)


def test_public_layers_dispatch_cupy_arrays_to_the_cuda_kernels(rng):
    """conv2d / pooling / PReLU / NMS called with CuPy arrays run on the GPU and equal the CPU path."""
    from scratchface.detection.nms import nms
    from scratchface.layers.activations import prelu_backward, prelu_forward
    from scratchface.layers.conv import conv2d_backward, conv2d_forward
    from scratchface.layers.pooling import max_pool2d_backward, max_pool2d_forward

    x, w, b = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out, cache = conv2d_forward(to_device(x), to_device(w), to_device(b), stride=2, padding=1)
    assert cache.impl == "cuda" and isinstance(out, cupy.ndarray)
    ref, ref_cache = conv2d_forward(x, w, b, stride=2, padding=1, impl="reference")
    assert _rel(out, ref) < 1e-10
    dout = rng.standard_normal(ref.shape)
    for g, r in zip(conv2d_backward(to_device(dout), cache), conv2d_backward(dout, ref_cache)):
        assert _rel(g, r) < 1e-10
    out, cache = max_pool2d_forward(to_device(x), kernel_size=3, stride=2, ceil_mode=True)
    ref, ref_cache = max_pool2d_forward(x, kernel_size=3, stride=2, ceil_mode=True, impl="reference")
    assert cache.impl == "cuda" and _rel(out, ref) == 0
    dout = rng.standard_normal(ref.shape)
    assert _rel(max_pool2d_backward(to_device(dout), cache), max_pool2d_backward(dout, ref_cache)) < 1e-12
    alpha = rng.uniform(0.1, 0.3, 3)
    out, cache = prelu_forward(to_device(x), to_device(alpha))
    ref, ref_cache = prelu_forward(x, alpha)
    assert _rel(out, ref) == 0
    dout = rng.standard_normal(x.shape)
    for g, r in zip(prelu_backward(to_device(dout), cache), prelu_backward(dout, ref_cache)):
        assert _rel(g, r) < 1e-12
    boxes = rng.uniform(0, 50, (300, 2))
    boxes = np.concatenate([boxes, boxes + rng.uniform(1, 30, (300, 2))], axis=1)
    scores = rng.random(300)
    np.testing.assert_array_equal(to_host(nms(to_device(boxes), to_device(scores), 0.4)), nms(boxes, scores, 0.4))
