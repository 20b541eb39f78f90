"""The CUDA kernels and their host wrappers (scratchface.kernels.cuda), tested without a GPU.

How this file runs
------------------
Numba's CUDA simulator runs ``@cuda.jit`` kernels on the CPU, every GPU thread
a Python thread, when ``NUMBA_ENABLE_CUDASIM=1`` is set *before Numba is
imported*. The main pytest process has long imported Numba, so this file runs
itself: in the normal test run only ``test_kernels_in_cuda_simulator`` (and the
cheap checks below it) is collected; it starts ``python -m pytest`` on this
same file in a subprocess with ``NUMBA_ENABLE_CUDASIM=1``, where the class
``TestKernelsInSimulator`` is collected instead (its ``__test__`` flag is
``SIMULATED``). A failure there fails the launching test, with the
subprocess's report in the message.

Sizes are tiny (a few hundred threads per launch): the simulator costs about
0.1 ms per thread. The same kernels on a real GPU, on CuPy arrays, are tested
in ``tests/test_gpu_cupy.py`` (skipped without a GPU).

Expected values come from the readable CPU references (layers.conv,
layers.pooling, layers.activations, detection.nms, distances,
detection.hog) and from naive loops and hand-worked cases written here.
"""
import importlib
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
HERE = pathlib.Path(__file__).resolve()
REPO = HERE.parents[1]


# ============================================================================ the normal test run

def test_kernels_in_cuda_simulator():
    """Run ``TestKernelsInSimulator`` in a subprocess under Numba's CUDA simulator."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "pytest", str(HERE), "-q", "-p", "no:cacheprovider", "-x", "-rs"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    report = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, f"CUDA simulator tests failed:\n{report}"
    passed = re.search(r"(\d+) passed", proc.stdout)
    assert passed and int(passed.group(1)) >= 25 and not re.search(r"\b[1-9]\d* skipped", proc.stdout), report


test_kernels_in_cuda_simulator.__test__ = not SIMULATED


def test_import_pulls_neither_numba_cuda_nor_cupy():
    code = ("import sys, scratchface, scratchface.kernels, scratchface.kernels.cuda\n"
            "bad = [m for m in sys.modules if m.split('.')[0] == 'cupy' or m.startswith('numba')]\n"
            "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


test_import_pulls_neither_numba_cuda_nor_cupy.__test__ = not SIMULATED


def test_numpy_arrays_refused_without_gpu_or_simulator():
    from scratchface.kernels.cuda import conv, nms

    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(TypeError, match="take CuPy arrays"):
        conv.conv2d_output_cuda(x, np.zeros((1, 1, 3, 3)))
    with pytest.raises(TypeError, match="take CuPy arrays"):
        nms.nms_cuda(np.zeros((2, 4)), np.zeros(2))


test_numpy_arrays_refused_without_gpu_or_simulator.__test__ = not SIMULATED


def test_argument_errors():
    """Checked before any kernel is touched, so these run in the normal process too."""
    from scratchface.kernels.cuda import conv, distances, hog, nms, pooling, prelu

    x = np.zeros((1, 2, 4, 4))
    with pytest.raises(ValueError, match="input channels"):
        conv.conv2d_output_cuda(x, np.zeros((3, 1, 3, 3)))
    with pytest.raises(TypeError, match="dtype of x"):
        conv.conv2d_output_cuda(x, np.zeros((3, 2, 3, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="4-D"):
        conv.conv2d_output_cuda(x[0], np.zeros((3, 2, 3, 3)))
    with pytest.raises(ValueError, match="mode must be one of"):
        pooling.pool2d_output_cuda(x, "median", (2, 2), (2, 2), (0, 0, 0, 0), (2, 2))
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        nms.nms_cuda(np.zeros((3, 5)), np.zeros(3))
    with pytest.raises(ValueError, match="one score per box"):
        nms.nms_cuda(np.zeros((3, 4)), np.zeros(2))
    with pytest.raises(ValueError, match="iou_threshold"):
        nms.nms_cuda(np.zeros((3, 4)), np.zeros(3), 1.5)
    with pytest.raises(ValueError, match="reduce must be one of"):
        nms.nms_cuda(np.zeros((3, 4)), np.zeros(3), reduce="cpu")
    with pytest.raises(ValueError, match="same number of columns"):
        distances.pairwise_distances_cuda(np.zeros((3, 4)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="metric must be one of"):
        distances.pairwise_distances_cuda(np.zeros((3, 4)), metric="manhattan")
    with pytest.raises(ValueError, match="binning must be one of"):
        hog.hog_cell_histograms_cuda(np.zeros((16, 16)), edges=np.arange(10.0), binning="soft")
    with pytest.raises(ValueError, match="alpha must have shape"):
        prelu.prelu_output_cuda(x, np.zeros(3))


test_argument_errors.__test__ = not SIMULATED


# ============================================================================ in the simulator

def _rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-300))) if a.size else 0.0


def _random_boxes(rng, n, extent=60.0, size=(4.0, 25.0)):
    xy = rng.random((n, 2)) * extent
    wh = size[0] + rng.random((n, 2)) * (size[1] - size[0])
    return np.concatenate([xy, xy + wh], axis=1)


class TestKernelsInSimulator:
    __test__ = SIMULATED

    def test_kernels_report_available_in_simulator(self):
        from scratchface.kernels.cuda import gpu_kernels_available

        assert gpu_kernels_available()

    # ------------------------------------------------------------------ convolution
    def test_im2col_layout_against_naive_loop(self, rng):
        from scratchface.kernels.cuda.conv import _im2col

        x = rng.standard_normal((2, 2, 4, 5))
        kh, kw, (sh, sw), (top, left), (oh, ow) = 3, 2, (2, 1), (1, 0), (2, 4)
        cols = _im2col(x, kh, kw, (sh, sw), (top, 1, left, 0), oh, ow)
        expected = np.zeros((2 * kh * kw, 2 * oh * ow))
        for c in range(2):
            for i in range(kh):
                for j in range(kw):
                    for n in range(2):
                        for p in range(oh):
                            for q in range(ow):
                                y, xx = p * sh + i - top, q * sw + j - left
                                if 0 <= y < 4 and 0 <= xx < 5:
                                    expected[(c * kh + i) * kw + j, n * oh * ow + p * ow + q] = x[n, c, y, xx]
        np.testing.assert_array_equal(cols, expected)

    @pytest.mark.parametrize("shape, wshape, stride, padding", [
        ((2, 2, 5, 4), (3, 2, 3, 3), 1, 1),                   # 3x3 'same'
        ((2, 3, 6, 5), (2, 3, 3, 2), (2, 1), (1, 0, 1, 1)),   # odd sizes, stride 2, asymmetric padding
        ((2, 4, 3, 3), (5, 4, 1, 1), 1, 0),                   # pointwise: GEMM only, no im2col
        ((1, 2, 5, 5), (3, 2, 1, 1), 2, 0),                   # 1x1 with stride 2 goes through im2col
    ])
    def test_conv2d_forward_backward_match_reference(self, rng, shape, wshape, stride, padding):
        from scratchface.kernels.cuda.conv import conv2d_grads_cuda, conv2d_output_cuda
        from scratchface.layers.conv import conv2d_backward, conv2d_forward

        x, w, b = rng.standard_normal(shape), rng.standard_normal(wshape), rng.standard_normal(wshape[0])
        ref, cache = conv2d_forward(x, w, b, stride=stride, padding=padding, impl="reference")
        out = conv2d_output_cuda(x, w, b, stride, padding)
        assert out.shape == ref.shape
        assert _rel(out, ref) < 1e-12
        dout = rng.standard_normal(ref.shape)
        for got, want in zip(conv2d_grads_cuda(dout, x, w, True, stride, padding), conv2d_backward(dout, cache)):
            assert got.shape == want.shape and _rel(got, want) < 1e-12
        dx, dw, db = conv2d_grads_cuda(dout, x, w, False, stride, padding)
        assert db is None and _rel(dw, conv2d_backward(dout, cache)[1]) < 1e-12

    def test_conv2d_float32_and_no_bias(self, rng):
        from scratchface.kernels.cuda.conv import conv2d_output_cuda
        from scratchface.layers.conv import conv2d_reference_forward

        x = rng.standard_normal((1, 3, 6, 6)).astype(np.float32)
        w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
        out = conv2d_output_cuda(x, w, None, 2, 1)
        assert out.dtype == np.float32
        ref = conv2d_reference_forward(x.astype(np.float64), w.astype(np.float64), None, (2, 2), (1, 1, 1, 1))
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)

    # ------------------------------------------------------------------ pooling
    @pytest.mark.parametrize("mode, kwargs", [
        ("max", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
        ("max", dict(kernel_size=(2, 3), stride=(1, 2))),
        ("avg", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=True)),
        ("avg", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
        ("l2", dict(kernel_size=3, stride=1, padding=1)),
        ("l2", dict(kernel_size=(3, 2), stride=2, padding=(1, 1, 0, 1), ceil_mode=True)),
    ])
    def test_pool2d_matches_reference(self, rng, mode, kwargs):
        from scratchface.kernels.cuda.pooling import pool2d_dx_cuda, pool2d_output_cuda
        from scratchface.layers import pooling

        x = rng.standard_normal((2, 2, 7, 6))
        x[0, 0, 1:4, 1:4] = 0.0          # an all-zero window (L2 gradient 0 there) ...
        x[1, 1, 2, :] = 2.5              # ... and ties in a max window (the first one wins)
        forward = getattr(pooling, f"{mode}_pool2d_forward")
        backward = getattr(pooling, f"{mode}_pool2d_backward")
        ref, cache = forward(x, impl="reference", **kwargs)
        out, argmax = pool2d_output_cuda(x, mode, cache.kernel_size, cache.stride, cache.padding, ref.shape[2:],
                                         cache.count_include_pad)
        assert out.shape == ref.shape and _rel(out, ref) < 1e-12
        if mode == "max":                # reference: offset i*KW + j in the window; GPU: y*W + x in the plane
            (_, kw), (sh, sw), (top, _, left, _) = cache.kernel_size, cache.stride, cache.padding
            p = np.arange(ref.shape[2])[:, None]
            q = np.arange(ref.shape[3])[None, :]
            y = p * sh - top + cache.argmax // kw
            xx = q * sw - left + cache.argmax % kw
            np.testing.assert_array_equal(argmax, y * x.shape[3] + xx)
        dout = rng.standard_normal(ref.shape)
        dx = pool2d_dx_cuda(dout, x, out if mode == "l2" else None, argmax if mode == "max" else None, mode,
                            cache.kernel_size, cache.stride, cache.padding, cache.count_include_pad)
        assert dx.shape == x.shape and _rel(dx, backward(dout, cache)) < 1e-12

    # ------------------------------------------------------------------ PReLU
    @pytest.mark.parametrize("shape", [(2, 3, 4, 5), (7, 3)])
    def test_prelu_matches_reference(self, rng, shape):
        from scratchface.kernels.cuda.prelu import prelu_grads_cuda, prelu_output_cuda
        from scratchface.layers.activations import prelu_backward, prelu_forward

        x = rng.standard_normal(shape)
        x.flat[::5] = 0.0                # x = 0 takes the alpha branch in both
        alpha = rng.random(shape[1])
        ref, cache = prelu_forward(x, alpha)
        assert _rel(prelu_output_cuda(x, alpha), ref) < 1e-15
        dout = rng.standard_normal(shape)
        dx, dalpha = prelu_grads_cuda(dout, x, alpha)
        want_dx, want_dalpha = prelu_backward(dout, cache)
        assert _rel(dx, want_dx) < 1e-15 and _rel(dalpha, want_dalpha) < 1e-12
        # dalpha by a naive loop as well
        naive = np.zeros(shape[1])
        for idx in np.ndindex(*shape):
            if x[idx] <= 0:
                naive[idx[1]] += dout[idx] * x[idx]
        assert _rel(dalpha, naive) < 1e-12

    # ------------------------------------------------------------------ NMS
    def test_overlap_mask_by_hand(self):
        """Three boxes in score order: 0 and 1 overlap with IoU 0.6 (> 0.5), 2 is apart."""
        from scratchface.kernels.cuda import nms as k
        from scratchface.kernels.cuda._launch import launch

        boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 6], [20, 20, 30, 30]], dtype=np.float64)
        mask = np.zeros((3, 1), dtype=np.uint64)
        launch(k.overlap_mask, (1, 1), k.BLOCK, boxes, 0.5, 0, mask)
        assert [int(v) for v in mask[:, 0]] == [0b010, 0, 0]   # only the later box of a pair is marked
        launch(k.overlap_mask, (1, 1), k.BLOCK, boxes, 0.6, 0, mask)
        assert int(mask[0, 0]) == 0                              # 0.6 is not > 0.6
        launch(k.overlap_mask, (1, 1), k.BLOCK, boxes, 0.9, 1, mask)  # over the smaller area: 1.0 > 0.9
        assert int(mask[0, 0]) == 0b010

    @pytest.mark.parametrize("n, threshold, mode", [(150, 0.3, "union"), (130, 0.5, "min"), (65, 0.0, "union")])
    def test_nms_several_blocks_equals_readable_nms(self, rng, n, threshold, mode):
        from scratchface.detection.nms import nms
        from scratchface.kernels.cuda.nms import nms_cuda

        boxes = _random_boxes(rng, n)
        scores = rng.random(n)
        scores[::9] = 0.5                               # ties in score: the lower index first
        want = nms(boxes, scores, threshold, mode)
        assert want.size > 1 and want.size < n         # some boxes kept, some suppressed
        got = nms_cuda(boxes, scores, threshold, mode)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)
        if n == 150:
            np.testing.assert_array_equal(nms_cuda(boxes, scores, threshold, mode, reduce="host"), want)

    def test_nms_empty_and_one_block_exactly(self, rng):
        from scratchface.detection.nms import nms
        from scratchface.kernels.cuda.nms import nms_cuda

        out = nms_cuda(np.zeros((0, 4)), np.zeros(0))
        assert out.shape == (0,) and out.dtype == np.int64
        boxes = _random_boxes(rng, 64, extent=30.0)
        scores = rng.random(64).astype(np.float32)
        np.testing.assert_array_equal(nms_cuda(boxes.astype(np.float32), scores, 0.4),
                                      nms(boxes.astype(np.float32), scores, 0.4))

    # ------------------------------------------------------------------ distances
    @pytest.mark.parametrize("metric", ["sqeuclidean", "cosine"])
    def test_pairwise_distances_match_reference(self, rng, metric):
        from scratchface.kernels.cuda.distances import pairwise_distances_cuda
        from scratchface.distances import pairwise_distances

        a, b = rng.standard_normal((6, 5)), rng.standard_normal((30, 5))
        b[7] = a[2]                                     # an exact match: distance clamped to >= 0
        got = pairwise_distances_cuda(a, b, metric=metric)
        want = pairwise_distances(a, b, metric=metric, impl="reference")
        assert got.shape == (6, 30) and got.min() >= 0
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        got = pairwise_distances_cuda(b[:15], metric=metric)
        assert np.all(np.diag(got) == 0)
        np.testing.assert_allclose(got, pairwise_distances(b[:15], metric=metric, impl="reference"),
                                   rtol=1e-12, atol=1e-12)

    def test_topk_kernel_ties_go_to_the_lower_column(self, rng):
        from scratchface.kernels.cuda import distances as k
        from scratchface.kernels.cuda._launch import launch

        d = rng.integers(0, 6, size=(3, 100)).astype(np.float64)   # many equal distances
        for kk in (1, 5, 32):
            idx = np.zeros((3, kk), dtype=np.int64)
            dist = np.zeros((3, kk))
            launch(k.topk_rows, 3, k.WARP, d, kk, idx, dist)
            order = np.argsort(d, axis=1, kind="stable")[:, :kk]
            np.testing.assert_array_equal(idx, order)
            np.testing.assert_array_equal(dist, np.take_along_axis(d, order, axis=1))

    @pytest.mark.parametrize("k, metric, exclude_self", [(3, "sqeuclidean", False), (2, "cosine", True),
                                                         (33, "sqeuclidean", False)])
    def test_nearest_neighbors_match_reference(self, rng, k, metric, exclude_self):
        from scratchface.kernels.cuda.distances import nearest_neighbors_cuda
        from scratchface.distances import nearest_neighbors

        gallery = rng.standard_normal((40, 4))
        gallery[11] = gallery[4]                        # a duplicate: a tie at distance 0
        if exclude_self:
            got = nearest_neighbors_cuda(gallery[:6], k=k, metric=metric, exclude_self=True, block_size=4)
            want = nearest_neighbors(gallery[:6], k=k, metric=metric, exclude_self=True, impl="reference")
        else:
            queries = rng.standard_normal((4, 4))
            got = nearest_neighbors_cuda(queries, gallery, k=k, metric=metric, block_size=3)
            want = nearest_neighbors(queries, gallery, k=k, metric=metric, impl="reference")
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-12)

    def test_nearest_neighbors_errors(self, rng):
        from scratchface.kernels.cuda.distances import nearest_neighbors_cuda

        g = rng.standard_normal((4, 3))
        with pytest.raises(ValueError, match="k must be at most"):
            nearest_neighbors_cuda(g, k=4, exclude_self=True)
        with pytest.raises(ValueError, match="exclude_self=True needs gallery=None"):
            nearest_neighbors_cuda(g, g.copy(), exclude_self=True)

    # ------------------------------------------------------------------ HOG
    @pytest.mark.parametrize("shape, cell, binning", [((20, 27, 3), (6, 8), "hard"), ((20, 27, 3), (6, 8), "bilinear"),
                                                      ((17, 16), (8, 8), "hard"), ((17, 16), (4, 5), "bilinear")])
    def test_hog_cell_histograms_match_readable_steps(self, rng, shape, cell, binning):
        hog = importlib.import_module("scratchface.detection.hog")  # the module (the package exports the function)
        from scratchface.kernels.cuda.hog import hog_cell_histograms_cuda

        image = rng.random(shape)
        image[3:9, 4:10] = 0.25                        # a flat patch: zero gradients vote nothing
        if image.ndim == 3:
            g_row, g_col = hog.dominant_channel_gradients(image)
        else:
            g_row, g_col = hog.image_gradients(image)
        magnitude, orientation = hog.magnitude_orientation(g_row, g_col)
        want = hog.cell_histograms(magnitude, orientation, orientations=9, pixels_per_cell=cell, binning=binning)
        got = hog_cell_histograms_cuda(image, edges=hog.orientation_bin_edges(9), pixels_per_cell=cell,
                                       binning=binning)
        assert got.shape == want.shape == (shape[0] // cell[0], shape[1] // cell[1], 9)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)

    def test_hog_vertical_edge_votes_in_bin_zero(self):
        """A vertical step edge has a horizontal gradient: orientation 0, all votes in bin 0."""
        from scratchface.detection.hog import orientation_bin_edges
        from scratchface.kernels.cuda.hog import hog_cell_histograms_cuda

        image = np.zeros((8, 16))
        image[:, 8:] = 1.0
        hist = hog_cell_histograms_cuda(image, edges=orientation_bin_edges(9), pixels_per_cell=(8, 8))
        # columns 7 and 8 have g_col = 1 on all 8 rows: 8 votes of 1 per cell, mean over 64 pixels
        np.testing.assert_allclose(hist[0, :, 0], [8 / 64, 8 / 64])
        assert np.all(hist[0, :, 1:] == 0)
