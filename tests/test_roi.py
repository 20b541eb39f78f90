"""ROI max pooling and ROI align: torchvision's rules, worked by hand and by naive loops; gradients.

torchvision is not installed here, so the expected values come from
* naive per-ROI, per-bin, per-sample loops written below from torchvision's
  documented rules (plain Python scalars, not the package's helpers),
* cases worked by hand (C rounding of halves, linear images, border clamping),
* torch autograd on the same operations built from slicing / ``grid_sample``,
* fourth-order finite differences (gradcheck).
"""
import math

import numpy as np
import pytest

from scratchface.gradcheck import check_layer
from scratchface.layers.roi import (
    gradcheck_cases,
    roi_align_backward,
    roi_align_forward,
    roi_max_pool_backward,
    roi_max_pool_forward,
)


# ----------------------------------------------------------------------------- naive loops
def c_round(v):
    """C's round: halves away from zero."""
    whole = math.floor(abs(v))
    return int(math.copysign(whole + (abs(v) - whole >= 0.5), v))


def naive_roi_pool(x, rois, oh, ow, scale):
    """torchvision's roi_pool CPU kernel, one scalar at a time, in the dtype of x."""
    t = x.dtype.type
    out = np.zeros((len(rois), x.shape[1], oh, ow), x.dtype)
    height, width = x.shape[2:]
    for r, roi in enumerate(rois):
        b = int(roi[0])
        x1, y1, x2, y2 = (c_round(float(t(v) * t(scale))) for v in roi[1:])
        rw, rh = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
        bh, bw = t(rh) / t(oh), t(rw) / t(ow)
        for p in range(oh):
            for q in range(ow):
                hs = min(max(math.floor(t(p) * bh) + y1, 0), height)
                he = min(max(math.ceil(t(p + 1) * bh) + y1, 0), height)
                ws = min(max(math.floor(t(q) * bw) + x1, 0), width)
                we = min(max(math.ceil(t(q + 1) * bw) + x1, 0), width)
                for c in range(x.shape[1]):
                    best = 0.0 if (he <= hs or we <= ws) else -np.inf
                    for h in range(hs, he):
                        for w in range(ws, we):
                            best = max(best, x[b, c, h, w])
                    out[r, c, p, q] = best
    return out


def bilinear(plane, y, x):
    """torchvision's bilinear_interpolate: 0 beyond one pixel outside, clamped at the border."""
    height, width = plane.shape
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= height - 1:
        y0 = y1 = height - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= width - 1:
        x0 = x1 = width - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * plane[y0, x0] + (1 - ly) * lx * plane[y0, x1]
            + ly * (1 - lx) * plane[y1, x0] + ly * lx * plane[y1, x1])


def naive_roi_align(x, rois, oh, ow, scale, sampling_ratio, aligned):
    out = np.zeros((len(rois), x.shape[1], oh, ow))
    off = 0.5 if aligned else 0.0
    for r, roi in enumerate(rois):
        b = int(roi[0])
        x1, y1, x2, y2 = (float(v) * scale - off for v in roi[1:])
        rw, rh = x2 - x1, y2 - y1
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / oh, rw / ow
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(rh / oh)
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(rw / ow)
        for c in range(x.shape[1]):
            for p in range(oh):
                for q in range(ow):
                    total = 0.0
                    for iy in range(gh):
                        for ix in range(gw):
                            total += bilinear(x[b, c], y1 + p * bh + (iy + 0.5) * bh / gh,
                                              x1 + q * bw + (ix + 0.5) * bw / gw)
                    out[r, c, p, q] = total / max(gh * gw, 1)
    return out


def random_rois(rng, n_rois, n_images, height, width, scale, spill=4.0):
    """ROIs in image pixels, some spilling past the map, some degenerate (x1 == x2)."""
    h_img, w_img = height / scale, width / scale
    x1 = rng.uniform(-spill, w_img, n_rois)
    y1 = rng.uniform(-spill, h_img, n_rois)
    x2 = x1 + rng.uniform(0, w_img / 1.5 + spill, n_rois)
    y2 = y1 + rng.uniform(0, h_img / 1.5 + spill, n_rois)
    x2[0] = x1[0]                                       # a zero-width ROI
    b = rng.integers(0, n_images, n_rois)
    return np.stack([b, x1, y1, x2, y2], axis=1)


# ----------------------------------------------------------------------------- ROI max pooling
def test_roi_pool_hand_worked_4x4():
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    out, _ = roi_max_pool_forward(x, rois=np.array([[0, 0, 0, 3, 3]]), output_size=2)
    # rows [0, 2) and [2, 4), same for columns: maxima 5, 7, 13, 15
    np.testing.assert_array_equal(out[0, 0], [[5, 7], [13, 15]])
    # a 3x3 ROI into 2x2 bins: bins [0, 2) and [1, 3) overlap on the middle row/column
    out, _ = roi_max_pool_forward(x, rois=np.array([[0, 0, 0, 2, 2]]), output_size=2)
    np.testing.assert_array_equal(out[0, 0], [[5, 6], [9, 10]])


def test_roi_pool_rounds_halves_away_from_zero():
    row = np.arange(6, dtype=np.float64).reshape(1, 1, 1, 6)       # increasing: the max is the last column
    out, _ = roi_max_pool_forward(row, rois=np.array([[0, 0.5, 0, 2.5, 0]]), output_size=1)
    assert out[0, 0, 0, 0] == 3.0          # x2 = round(2.5) = 3 (NumPy's round would give 2)
    out, _ = roi_max_pool_forward(-row, rois=np.array([[0, 0.5, 0, 2.5, 0]]), output_size=1)
    assert out[0, 0, 0, 0] == -1.0         # x1 = round(0.5) = 1 (NumPy's round would give 0)
    out, _ = roi_max_pool_forward(row, rois=np.array([[0, 1, 0, 5, 0]]), output_size=1, spatial_scale=0.5)
    assert out[0, 0, 0, 0] == 3.0          # 0.5 -> 1, 2.5 -> 3
    below_half = np.nextafter(np.float32(0.5), np.float32(0))   # float32(below_half + 0.5) == 1: no shortcut
    out, _ = roi_max_pool_forward(row.astype(np.float32), rois=np.array([[0, 0, 0, below_half, 0]]),
                                  output_size=1)
    assert out[0, 0, 0, 0] == 0.0          # x1 = x2 = round(0.49999997) = 0


def test_roi_pool_computes_bins_in_the_dtype_of_x():
    # a 3-row ROI into 21 bins: bin 20 ends at ceil(21 * (3 / 21)); in float32 21 * float32(1/7) rounds
    # above 3 and the last bin takes row 3 too, in float64 it is exactly 3 (torchvision computes in T)
    col = np.array([0.0, 1.0, 2.0, 10.0, 0.0]).reshape(1, 1, 5, 1)
    rois = np.array([[0, 0, 0, 0, 2]])
    assert np.float32(21) * (np.float32(3) / np.float32(21)) > 3
    assert 21 * (3.0 / 21) == 3.0
    for impl in ("reference", "numba"):
        out32, _ = roi_max_pool_forward(col.astype(np.float32), rois=rois, output_size=(21, 1), impl=impl)
        out64, _ = roi_max_pool_forward(col, rois=rois, output_size=(21, 1), impl=impl)
        assert out32[0, 0, -1, 0] == 10.0 and out64[0, 0, -1, 0] == 2.0


def test_roi_pool_empty_bins_off_the_map_are_zero_without_gradient():
    x = -np.ones((1, 2, 4, 4))
    out, cache = roi_max_pool_forward(x, rois=np.array([[0, 10, 10, 12, 12], [0, 3, 3, 8, 8]]), output_size=2)
    np.testing.assert_array_equal(out[0], 0.0)
    np.testing.assert_array_equal(out[1, :, 0, 0], -1.0)       # bin at (3, 3): the corner pixel
    np.testing.assert_array_equal(out[1, :, 1, 1], 0.0)        # beyond the map
    dx = roi_max_pool_backward(np.ones_like(out), cache)
    assert dx.sum() == 2.0 and dx[0, :, 3, 3].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_roi_pool_matches_naive_loop_both_impls(rng, dtype):
    for n, c, h, w, oh, ow, scale in ((2, 3, 9, 11, 3, 4, 0.5), (1, 2, 7, 6, 2, 3, 1.0), (3, 1, 13, 10, 5, 5, 0.25)):
        x = rng.standard_normal((n, c, h, w)).astype(dtype)
        rois = random_rois(rng, 7, n, h, w, scale)
        expected = naive_roi_pool(x, rois, oh, ow, scale)
        for impl in ("reference", "numba"):
            out, _ = roi_max_pool_forward(x, rois=rois, output_size=(oh, ow), spatial_scale=scale, impl=impl)
            assert out.dtype == dtype and out.shape == (7, c, oh, ow)
            np.testing.assert_array_equal(out, expected)


def test_roi_pool_backward_reference_equals_numba(rng):
    x = rng.standard_normal((2, 3, 9, 11))
    rois = random_rois(rng, 9, 2, 9, 11, 0.5)
    o1, c1 = roi_max_pool_forward(x, rois=rois, output_size=(3, 2), spatial_scale=0.5, impl="reference")
    _, c2 = roi_max_pool_forward(x, rois=rois, output_size=(3, 2), spatial_scale=0.5, impl="numba")
    np.testing.assert_array_equal(c1.argmax, c2.argmax)
    dout = rng.standard_normal(o1.shape)
    np.testing.assert_allclose(roi_max_pool_backward(dout, c1), roi_max_pool_backward(dout, c2), rtol=1e-12,
                               atol=1e-12)


def test_roi_pool_backward_matches_torch_autograd(rng, torch):
    x = rng.permutation(2 * 2 * 8 * 9).reshape(2, 2, 8, 9) / 10.0      # distinct values: no ties
    rois = np.array([[0, 0, 0, 7, 7], [1, 2, 1, 8, 6], [1, 0, 0, 3, 5], [0, 3, 2, 6, 7]], dtype=np.float64)
    out, cache = roi_max_pool_forward(x, rois=rois, output_size=(2, 3))
    dout = rng.standard_normal(out.shape)
    xt = torch.tensor(x, requires_grad=True)
    pieces = []
    for roi in rois.astype(int):                 # integer ROIs: bins by the rule, max by torch.amax
        b, x1, y1, x2, y2 = roi
        rh, rw = y2 - y1 + 1, x2 - x1 + 1
        for p in range(2):
            for q in range(3):
                hs, he = y1 + (p * rh) // 2, min(y1 - (-(p + 1) * rh // 2), 8)
                ws, we = x1 + (q * rw) // 3, min(x1 - (-(q + 1) * rw // 3), 9)
                pieces.append(torch.amax(xt[b, :, hs:he, ws:we], dim=(1, 2)))
    ref = torch.stack(pieces).reshape(4, 2, 3, 2).permute(0, 3, 1, 2)
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=0, atol=0)
    (ref * torch.tensor(dout)).sum().backward()
    np.testing.assert_allclose(roi_max_pool_backward(dout, cache), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- ROI align
def test_roi_align_hand_worked():
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)          # x[h, w] = 4 h + w
    # not aligned, one sample per bin at the centre (1, 1) of the ROI [0, 2] x [0, 2]
    out, _ = roi_align_forward(x, rois=np.array([[0, 0, 0, 2, 2]]), output_size=1, sampling_ratio=1,
                               aligned=False)
    assert out[0, 0, 0, 0] == 5.0
    # aligned shifts the box by half a pixel
    out, _ = roi_align_forward(x, rois=np.array([[0, 1, 1, 3, 3]]), output_size=1, sampling_ratio=2)
    # box [0.5, 2.5] on the pixel grid; samples at 1.0 and 2.0 per axis; mean of 4h + w = 4 * 1.5 + 1.5
    assert out[0, 0, 0, 0] == pytest.approx(7.5, abs=1e-12)


def test_roi_align_of_a_linear_image_is_the_mean_sample_position(rng):
    height, width = 12, 15
    hh, ww = np.mgrid[0:height, 0:width]
    x = (3.0 * hh - 2.0 * ww + 1.0)[None, None]                      # bilinear interpolation is exact on it
    for _ in range(5):
        # ROIs whose samples stay inside [0, H-1] x [0, W-1] (no clamping)
        y1, x1 = rng.uniform(1, 5), rng.uniform(1, 6)
        y2, x2 = y1 + rng.uniform(0, 5), x1 + rng.uniform(0, 6)
        oh, ow = 3, 2
        out, _ = roi_align_forward(x, rois=np.array([[0, x1, y1, x2, y2]]), output_size=(oh, ow),
                                   sampling_ratio=3)
        ys = (y1 - 0.5) + (np.arange(oh) + 0.5) * (y2 - y1) / oh     # mean sample of bin p: its centre
        xs = (x1 - 0.5) + (np.arange(ow) + 0.5) * (x2 - x1) / ow
        np.testing.assert_allclose(out[0, 0], 3 * ys[:, None] - 2 * xs[None, :] + 1, rtol=0, atol=1e-12)


def test_roi_align_border_rules():
    x = np.arange(1, 10, dtype=np.float64).reshape(1, 1, 3, 3)
    # a sample at (-0.5, -0.5) (within a pixel of the map) is clamped to pixel (0, 0)
    out, _ = roi_align_forward(x, rois=np.array([[0, -1, -1, 0, 0]]), output_size=1, sampling_ratio=1)
    assert out[0, 0, 0, 0] == 1.0
    # a sample at (-1.5, -1.5) is more than a pixel out: 0, and no gradient
    out, cache = roi_align_forward(x, rois=np.array([[0, -2, -2, -1, -1]]), output_size=1, sampling_ratio=1)
    assert out[0, 0, 0, 0] == 0.0
    assert not roi_align_backward(np.ones_like(out), cache).any()
    # past the last row/column (2.5, 2.5): clamped to pixel (2, 2)
    out, _ = roi_align_forward(x, rois=np.array([[0, 3, 3, 3, 3]]), output_size=1, sampling_ratio=1)
    assert out[0, 0, 0, 0] == 9.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_roi_align_matches_naive_loop_both_impls(rng, dtype):
    tol = {np.float64: 1e-12, np.float32: 1e-5}[dtype]
    configs = ((2, 3, 9, 11, 3, 4, 0.5, 2, True), (1, 2, 7, 6, 2, 3, 1.0, -1, True),
               (3, 1, 13, 10, 5, 5, 0.25, 3, False), (2, 2, 5, 8, 1, 2, 1.0, 0, False))
    for n, c, h, w, oh, ow, scale, ratio, aligned in configs:
        x = rng.standard_normal((n, c, h, w)).astype(dtype)
        rois = random_rois(rng, 6, n, h, w, scale)
        expected = naive_roi_align(x.astype(np.float64), rois, oh, ow, scale, ratio, aligned)
        for impl in ("reference", "numba"):
            out, _ = roi_align_forward(x, rois=rois, output_size=(oh, ow), spatial_scale=scale,
                                       sampling_ratio=ratio, aligned=aligned, impl=impl)
            assert out.dtype == dtype and out.shape == (6, c, oh, ow)
            np.testing.assert_allclose(out, expected, rtol=tol, atol=tol * np.abs(expected).max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_roi_align_backward_reference_equals_numba(rng, dtype):
    tol = {np.float64: 1e-12, np.float32: 1e-5}[dtype]
    x = rng.standard_normal((2, 3, 9, 11)).astype(dtype)
    rois = random_rois(rng, 8, 2, 9, 11, 0.5)
    for ratio, aligned in ((2, True), (-1, False)):
        o1, c1 = roi_align_forward(x, rois=rois, output_size=(3, 2), spatial_scale=0.5, sampling_ratio=ratio,
                                   aligned=aligned, impl="reference")
        _, c2 = roi_align_forward(x, rois=rois, output_size=(3, 2), spatial_scale=0.5, sampling_ratio=ratio,
                                   aligned=aligned, impl="numba")
        dout = rng.standard_normal(o1.shape).astype(dtype)
        d1, d2 = roi_align_backward(dout, c1), roi_align_backward(dout, c2)
        assert d1.dtype == d2.dtype == dtype
        np.testing.assert_allclose(d1, d2, rtol=tol, atol=tol * np.abs(d1).max())


def test_roi_align_matches_torch_grid_sample(rng, torch):
    """Inside the map ROI align is the mean of bilinear samples: torch's grid_sample, forward and backward."""
    F = torch.nn.functional
    n, c, h, w, oh, ow, g = 2, 3, 10, 12, 3, 4, 2
    x = rng.standard_normal((n, c, h, w))
    rois = np.array([[0, 2.0, 1.5, 9.0, 8.0], [1, 4.3, 3.1, 11.2, 9.9], [1, 1.0, 1.0, 1.5, 4.0]])
    out, cache = roi_align_forward(x, rois=rois, output_size=(oh, ow), sampling_ratio=g)
    xt = torch.tensor(x, requires_grad=True)
    pieces = []
    for roi in rois:
        b, x1, y1, x2, y2 = roi
        ys = (y1 - 0.5) + (np.arange(oh * g) + 0.5) * (y2 - y1) / (oh * g)   # all sample rows, bin-major
        xs = (x1 - 0.5) + (np.arange(ow * g) + 0.5) * (x2 - x1) / (ow * g)
        gy, gx = np.meshgrid(2 * ys / (h - 1) - 1, 2 * xs / (w - 1) - 1, indexing="ij")
        grid = torch.tensor(np.stack([gx, gy], axis=-1)[None])
        samples = F.grid_sample(xt[int(b):int(b) + 1], grid, mode="bilinear", align_corners=True)
        pieces.append(F.avg_pool2d(samples, g)[0])                          # mean of each bin's g x g
    ref = torch.stack(pieces)
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    (ref * torch.tensor(dout)).sum().backward()
    np.testing.assert_allclose(roi_align_backward(dout, cache), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- gradients
def distinct(rng, shape):
    size = int(np.prod(shape))
    values = (rng.permutation(size).reshape(shape) + 0.5 * rng.random(shape)) / size + 0.5
    return values * rng.choice([-1.0, 1.0], size=shape)


def test_gradcheck_cases_pass(rng):
    cases = gradcheck_cases(rng)
    assert {c.forward.__name__ for c in cases} == {"roi_max_pool_forward", "roi_align_forward"}
    for case in cases:
        result = case.run()
        assert result.passed, (case.name, result.errors)


@pytest.mark.parametrize("impl", ["reference", "numba"])
def test_gradcheck_more_shapes(rng, impl):
    # odd sizes, 1x1 output, overlapping and off-map ROIs, adaptive sampling
    x = distinct(rng, (2, 1, 5, 7))
    rois = np.array([[1, -1.0, 0.2, 9.0, 11.0], [0, 3.3, 2.2, 3.3, 6.1], [1, 0.4, 0.3, 13.7, 9.6]])
    for oh_ow in (1, (4, 5)):
        result = check_layer(roi_max_pool_forward, roi_max_pool_backward, {"x": x},
                             {"rois": rois, "output_size": oh_ow, "spatial_scale": 0.5, "impl": impl})
        assert result.passed, ("max", oh_ow, result.errors)
        for ratio, aligned in ((1, True), (3, False), (-1, True)):
            result = check_layer(roi_align_forward, roi_align_backward, {"x": x},
                                 {"rois": rois, "output_size": oh_ow, "spatial_scale": 0.5,
                                  "sampling_ratio": ratio, "aligned": aligned, "impl": impl})
            assert result.passed, ("align", oh_ow, ratio, aligned, result.errors)


# ----------------------------------------------------------------------------- shapes and errors
@pytest.mark.parametrize("impl", ["reference", "numba"])
def test_no_rois_gives_empty_output_and_zero_gradient(impl):
    x = np.ones((2, 3, 5, 5))
    for forward, backward in ((roi_max_pool_forward, roi_max_pool_backward),
                              (roi_align_forward, roi_align_backward)):
        out, cache = forward(x, rois=np.zeros((0, 5)), output_size=(2, 3), impl=impl)
        assert out.shape == (0, 3, 2, 3)
        dx = backward(np.zeros((0, 3, 2, 3)), cache)
        assert dx.shape == x.shape and not dx.any()


def test_integer_rois_and_square_output_size():
    x = np.arange(2 * 25, dtype=np.float32).reshape(2, 1, 5, 5)
    out, _ = roi_max_pool_forward(x, rois=np.array([[1, 0, 0, 4, 4]]), output_size=1)
    assert out.shape == (1, 1, 1, 1) and out[0, 0, 0, 0] == 49.0
    out, _ = roi_align_forward(x, rois=np.array([[1, 0, 0, 5, 5]], dtype=np.int32), output_size=5,
                               sampling_ratio=1)
    np.testing.assert_array_equal(out[0, 0], x[1, 0])    # one sample at each pixel centre


@pytest.mark.parametrize("forward", [roi_max_pool_forward, roi_align_forward])
def test_errors(forward):
    x = np.zeros((2, 1, 4, 4))
    good = np.array([[0, 0, 0, 2, 2]], dtype=np.float64)
    with pytest.raises(ValueError, match=r"rois must have shape \(R, 5\)"):
        forward(x, rois=np.zeros((2, 4)), output_size=2)
    with pytest.raises(ValueError, match="rois must be a 2-D array"):
        forward(x, rois=np.zeros(5), output_size=2)
    with pytest.raises(TypeError, match="rois must have a"):
        forward(x, rois=np.zeros((1, 5), dtype=bool), output_size=2)
    with pytest.raises(ValueError, match=r"batch_index\) must be an integer in \[0, 2\).*got 2.0 in row 1"):
        forward(x, rois=np.array([[0, 0, 0, 2, 2], [2, 0, 0, 2, 2]]), output_size=2)
    with pytest.raises(ValueError, match=r"batch_index\) must be an integer.*got 0.5"):
        forward(x, rois=np.array([[0.5, 0, 0, 2, 2]]), output_size=2)
    with pytest.raises(ValueError, match="batch_index"):
        forward(x, rois=np.array([[-1, 0, 0, 2, 2]]), output_size=2)
    with pytest.raises(ValueError, match="x2 >= x1.*x1 = 3 > x2 = 2 in row 0"):
        forward(x, rois=np.array([[0, 3, 0, 2, 2]]), output_size=2)
    with pytest.raises(ValueError, match="y2 >= y1"):
        forward(x, rois=np.array([[0, 0, 3, 2, 2]]), output_size=2)
    with pytest.raises(ValueError, match="rois contains NaN"):
        forward(x, rois=np.array([[0, np.nan, 0, 2, 2]]), output_size=2)
    with pytest.raises(ValueError, match="output_size must be a positive integer"):
        forward(x, rois=good, output_size=0)
    with pytest.raises(TypeError, match="output_size must be a positive int or a pair"):
        forward(x, rois=good, output_size=(2, 2, 2))
    with pytest.raises(TypeError, match="output_size must be a positive int or a pair"):
        forward(x, rois=good, output_size=2.0)
    with pytest.raises(ValueError, match="spatial_scale must be a finite positive number"):
        forward(x, rois=good, output_size=2, spatial_scale=0.0)
    with pytest.raises(ValueError, match="x must be a 4-D array"):
        forward(x[0], rois=good, output_size=2)
    with pytest.raises(TypeError, match="x must have a floating point dtype"):
        forward(x.astype(int), rois=good, output_size=2)
    with pytest.raises(ValueError, match="impl must be one of"):
        forward(x, rois=good, output_size=2, impl="fast")


def test_align_specific_errors_and_backward_errors():
    x = np.zeros((1, 1, 4, 4))
    rois = np.array([[0, 0, 0, 2, 2]])
    with pytest.raises(TypeError, match="sampling_ratio must be an integer"):
        roi_align_forward(x, rois=rois, output_size=2, sampling_ratio=1.5)
    with pytest.raises(TypeError, match="aligned must be True or False"):
        roi_align_forward(x, rois=rois, output_size=2, aligned=1)
    out, cache = roi_align_forward(x, rois=rois, output_size=2)
    _, pool_cache = roi_max_pool_forward(x, rois=rois, output_size=2)
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output \(1, 1, 2, 2\)"):
        roi_align_backward(np.zeros((1, 1, 3, 2)), cache)
    with pytest.raises(ValueError, match="dout must have the shape"):
        roi_max_pool_backward(np.zeros((2, 1, 2, 2)), pool_cache)
    with pytest.raises(TypeError, match="cache must be the RoiAlignCache returned by roi_align_forward"):
        roi_align_backward(out, pool_cache)
    with pytest.raises(TypeError, match="cache must be the RoiMaxPoolCache"):
        roi_max_pool_backward(out, cache)
