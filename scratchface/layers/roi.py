"""ROI max pooling (Fast R-CNN) and ROI align (Mask R-CNN): a fixed-size feature per box, NCHW.

A two-stage detector proposes boxes (regions of interest, ROIs) of any size on
the image, and its classifier needs a fixed-size input. These layers cut each
box out of a feature map and resample it to ``oh x ow`` cells:

* **ROI max pooling** rounds the box to feature-map pixels, splits it into an
  ``oh x ow`` grid of bins with integer edges, and takes the maximum of each bin.
* **ROI align** does no rounding: each bin is sampled at ``sampling_ratio x
  sampling_ratio`` points by bilinear interpolation, and the samples are
  averaged. Output is linear in ``x``, so its gradient is exact bilinear
  weights, and the box keeps its sub-pixel position (ROI pooling's rounding
  moves it by up to half a feature-map pixel: 8 image pixels at stride 16).

``rois`` is an ``(R, 5)`` array of rows ``[batch_index, x1, y1, x2, y2]`` in
input-image pixels; ``spatial_scale`` (e.g. 1/16 for a stride-16 feature map)
maps them onto the feature map. The semantics are exactly those of
``torchvision.ops.roi_pool`` and ``torchvision.ops.roi_align`` (their CPU
kernels, torchvision 0.x ``csrc/ops/cpu``), rules spelled out in the
docstrings below, including the rounding of ROI pooling (C's ``round``: halves
away from zero), its arithmetic in the input's dtype, and ROI align's
clamping at the border.

The readable references loop over the ROIs (and the bins); the fast path
(``impl='auto'``/``'numba'``, NumPy arrays) is :mod:`scratchface.kernels.roi`.
The two are written differently (ROI align: interpolation matrices here,
torchvision's per-sample loop there) and tested equal.

References
----------
R. Girshick, "Fast R-CNN", ICCV 2015, section 2.1 (RoI pooling layer) and 2.3 (its backward pass).
K. He, G. Gkioxari, P. Dollar, R. Girshick, "Mask R-CNN", ICCV 2017, section 3 (RoIAlign).
S. Yang, Y. Xiong, C. C. Loy, X. Tang, "Face Detection through Scale-Friendly Deep Convolutional
Networks", arXiv:1706.02863, 2017 (ROI pooling on scale-specific branches).
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .._validation import (
    check_array,
    check_float_array,
    check_int_pair,
    check_positive_float,
)
from ..backend import get_array_module, to_host
from ..gradcheck import GradcheckCase
from ._common import check_cache, check_dout, check_impl

__all__ = [
    "RoiAlignCache",
    "RoiMaxPoolCache",
    "gradcheck_cases",
    "roi_align_backward",
    "roi_align_forward",
    "roi_align_grid",
    "roi_align_reference_backward",
    "roi_align_reference_forward",
    "roi_max_pool_backward",
    "roi_max_pool_forward",
    "roi_max_pool_reference_backward",
    "roi_max_pool_reference_forward",
    "roi_pool_bins",
]


class RoiMaxPoolCache(NamedTuple):
    """What ``roi_max_pool_backward`` needs from the forward pass."""
    x_shape: tuple       # (N, C, H, W)
    dtype: object
    batch_index: object  # (R,) int64, the image of each ROI
    argmax: object       # (R, C, oh, ow) int64, flat index into the H*W plane; -1 for an empty bin
    impl: str


class RoiAlignCache(NamedTuple):
    """What ``roi_align_backward`` needs from the forward pass (the output is linear in x)."""
    x_shape: tuple       # (N, C, H, W)
    dtype: object
    rois: np.ndarray     # (R, 5) float64, on the host
    output_size: tuple   # (oh, ow)
    spatial_scale: float
    sampling_ratio: int
    aligned: bool
    impl: str


# ---------------------------------------------------------------- validation
def _check_rois(rois, n_images):
    """``rois`` as a float64 (R, 5) host array; integral batch indices in range, x2 >= x1, y2 >= y1."""
    check_array(rois, "rois", ndim=2, dtype_kind="fiu", finite=True)
    if rois.shape[1] != 5:
        raise ValueError(f"rois must have shape (R, 5), rows [batch_index, x1, y1, x2, y2], "
                         f"got shape {tuple(rois.shape)}")
    rois = np.asarray(to_host(rois), dtype=np.float64)
    batch = rois[:, 0]
    bad = np.nonzero((batch != np.floor(batch)) | (batch < 0) | (batch >= n_images))[0]
    if bad.size:
        raise ValueError(f"rois[:, 0] (batch_index) must be an integer in [0, {n_images}) (x has {n_images} "
                         f"images), got {float(batch[bad[0]])!r} in row {bad[0]}")
    for col, lo, name in ((3, 1, "x"), (4, 2, "y")):
        bad = np.nonzero(rois[:, col] < rois[:, lo])[0]
        if bad.size:
            r = bad[0]
            raise ValueError(f"rois must have {name}2 >= {name}1 (rows [batch_index, x1, y1, x2, y2]), got "
                             f"{name}1 = {rois[r, lo]:g} > {name}2 = {rois[r, col]:g} in row {r}")
    return rois


def _setup(x, rois, output_size, spatial_scale):
    check_float_array(x, "x", ndim=4)
    rois = _check_rois(rois, x.shape[0])
    output_size = check_int_pair(output_size, "output_size")
    spatial_scale = check_positive_float(spatial_scale, "spatial_scale")
    return rois, output_size, spatial_scale




# ---------------------------------------------------------------- ROI max pooling: geometry
def _round_half_away(v):
    """C's ``round``: halves away from zero (NumPy's ``round`` sends halves to the even integer).

    ``floor(|v| + 0.5)`` would be wrong for the float just below 0.5 (the sum rounds up to 1);
    ``|v| - floor(|v|)`` is exact.
    """
    magnitude = np.abs(v)
    whole = np.floor(magnitude)
    return np.sign(v) * (whole + (magnitude - whole >= 0.5))


def roi_pool_bins(rois, spatial_scale, output_size, height, width, dtype=np.float64):
    """Integer bin edges of ROI max pooling, torchvision's rule, in the arithmetic of ``dtype``.

    Parameters
    ----------
    rois : float array, shape (R, 5)
    spatial_scale : float
    output_size : (oh, ow)
    height, width : int
        Size of the feature map.
    dtype : numpy float dtype
        The input's dtype: torchvision computes in it, and float32 rounds differently.

    Returns
    -------
    h_start, h_end : int64 arrays, shape (R, oh)
        Rows ``[h_start, h_end)`` of each bin, clipped to ``[0, height]``.
    w_start, w_end : int64 arrays, shape (R, ow)
    """
    t = np.dtype(dtype).type
    coords = np.asarray(rois, dtype=dtype)[:, 1:] * t(spatial_scale)
    x1, y1, x2, y2 = _round_half_away(coords).astype(np.int64).T
    edges = []
    for start, end, pooled, size in ((y1, y2, output_size[0], height), (x1, x2, output_size[1], width)):
        length = np.maximum(end - start + 1, 1)             # the ROI in whole pixels, at least 1
        bin_size = length.astype(dtype) / t(pooled)           # (R,)
        p = np.arange(pooled, dtype=dtype)
        lo = np.floor(p[None, :] * bin_size[:, None]).astype(np.int64) + start[:, None]
        hi = np.ceil((p[None, :] + t(1)) * bin_size[:, None]).astype(np.int64) + start[:, None]
        edges += [np.clip(lo, 0, size), np.clip(hi, 0, size)]
    return tuple(edges)


# ---------------------------------------------------------------- ROI max pooling: readable reference
def roi_max_pool_reference_forward(x, rois, output_size, spatial_scale):
    """Readable ROI max pooling: ``(out, argmax)``; one bin at a time, all channels at once."""
    xp = get_array_module(x)
    _, channels, height, width = x.shape
    h_start, h_end, w_start, w_end = roi_pool_bins(rois, spatial_scale, output_size, height, width, x.dtype)
    out = xp.zeros((len(rois), channels) + tuple(output_size), dtype=x.dtype)
    argmax = xp.full(out.shape, -1, dtype=np.int64)
    every_channel = xp.arange(channels)
    for r in range(len(rois)):
        image = x[int(rois[r, 0])]                                         # (C, H, W)
        for p in range(output_size[0]):
            for q in range(output_size[1]):
                hs, he, ws, we = h_start[r, p], h_end[r, p], w_start[r, q], w_end[r, q]
                if he <= hs or we <= ws:
                    continue                                               # empty bin: 0, no gradient
                window = image[:, hs:he, ws:we].reshape(channels, -1)      # (C, bin pixels)
                k = window.argmax(axis=1)                                  # first maximum, row-major
                out[r, :, p, q] = window[every_channel, k]
                argmax[r, :, p, q] = (hs + k // (we - ws)) * width + ws + k % (we - ws)
    return out, argmax


def roi_max_pool_reference_backward(dout, cache):
    """Readable ROI max pooling backward: each bin's gradient goes to its maximum; bins add up."""
    xp = get_array_module(dout)
    n_images, channels, height, width = cache.x_shape
    dx = xp.zeros((n_images, channels, height * width), dtype=cache.dtype)
    every_channel = xp.arange(channels)[:, None]
    for r in range(dout.shape[0]):
        index = cache.argmax[r].reshape(channels, -1)                      # (C, oh * ow)
        grad = xp.where(index >= 0, dout[r].reshape(channels, -1), 0)
        # add.at, not +=: two bins of one ROI may share their maximum (bins overlap by a pixel)
        xp.add.at(dx[int(cache.batch_index[r])], (every_channel, xp.maximum(index, 0)), grad)
    return dx.reshape(cache.x_shape)


# ---------------------------------------------------------------- ROI align: geometry
def roi_align_grid(rois, spatial_scale, output_size, sampling_ratio, aligned):
    """Where ROI align samples each ROI: start, bin size and number of samples per bin, per axis.

    Returns
    -------
    y_start, x_start : float64 arrays, shape (R,)
        Top-left corner of the ROI on the feature map (minus 0.5 when ``aligned``).
    bin_h, bin_w : float64 arrays, shape (R,)
    grid_h, grid_w : int64 arrays, shape (R,)
        Samples per bin along each axis: ``sampling_ratio``, or (``sampling_ratio <= 0``)
        ``ceil(roi_height / oh)`` and ``ceil(roi_width / ow)``.
    """
    rois = np.asarray(rois, dtype=np.float64)
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (rois[:, 1:] * spatial_scale - offset).T
    roi_h, roi_w = y2 - y1, x2 - x1
    if not aligned:                      # legacy behaviour: force malformed ROIs to be 1x1
        roi_h, roi_w = np.maximum(roi_h, 1.0), np.maximum(roi_w, 1.0)
    bin_h, bin_w = roi_h / output_size[0], roi_w / output_size[1]
    if sampling_ratio > 0:
        grid_h = grid_w = np.full(len(rois), sampling_ratio, dtype=np.int64)
    else:
        grid_h, grid_w = np.ceil(bin_h).astype(np.int64), np.ceil(bin_w).astype(np.int64)
    return y1, x1, bin_h, bin_w, grid_h, grid_w


def _interpolation_matrix(start, bin_size, grid, pooled, size):
    """``(pooled, size)`` matrix whose row ``p`` sums the bilinear weights of bin ``p``'s samples.

    One axis of ROI align: sample ``i`` of bin ``p`` sits at
    ``start + p * bin_size + (i + 0.5) * bin_size / grid``; a sample further than one
    pixel outside the map weighs nothing, one within a pixel of the border is clamped to it.
    """
    matrix = np.zeros((pooled, size))
    for p in range(pooled):
        for i in range(grid):
            y = start + p * bin_size + (i + 0.5) * bin_size / grid
            if y < -1.0 or y > size:
                continue                                    # outside the map: contributes 0
            y = max(y, 0.0)
            low = int(y)
            if low >= size - 1:                             # on or past the last row: no neighbour
                low = high = size - 1
                y = float(low)
            else:
                high = low + 1
            matrix[p, low] += 1.0 - (y - low)
            matrix[p, high] += y - low
    return matrix


# ---------------------------------------------------------------- ROI align: readable reference
def _align_matrices(cache_like, height, width):
    """Per ROI: row matrix ``A_y`` (oh, H), column matrix ``A_x`` (ow, W) and the sample count."""
    oh, ow = cache_like.output_size
    y1, x1, bin_h, bin_w, grid_h, grid_w = roi_align_grid(
        cache_like.rois, cache_like.spatial_scale, cache_like.output_size, cache_like.sampling_ratio,
        cache_like.aligned)
    for r in range(len(cache_like.rois)):
        a_y = _interpolation_matrix(y1[r], bin_h[r], int(grid_h[r]), oh, height)
        a_x = _interpolation_matrix(x1[r], bin_w[r], int(grid_w[r]), ow, width)
        count = max(int(grid_h[r]) * int(grid_w[r]), 1)
        yield r, int(cache_like.rois[r, 0]), a_y, a_x, count


def roi_align_reference_forward(x, rois, output_size, spatial_scale, sampling_ratio, aligned):
    """Readable ROI align: ``out[r, c] = A_y x[b, c] A_x^T / count`` per ROI (see ``roi_align_forward``)."""
    xp = get_array_module(x)
    spec = RoiAlignCache(x.shape, x.dtype, rois, output_size, spatial_scale, sampling_ratio, aligned, "reference")
    out = xp.zeros((len(rois), x.shape[1]) + tuple(output_size), dtype=x.dtype)
    for r, b, a_y, a_x, count in _align_matrices(spec, x.shape[2], x.shape[3]):
        a_y, a_x = xp.asarray(a_y, dtype=x.dtype), xp.asarray(a_x, dtype=x.dtype)
        out[r] = (a_y @ x[b] @ a_x.T) / count                  # (oh, H) @ (C, H, W) @ (W, ow)
    return out


def roi_align_reference_backward(dout, cache):
    """Readable ROI align backward: ``dx[b, c] += A_y^T dout[r, c] A_x / count`` per ROI."""
    xp = get_array_module(dout)
    dx = xp.zeros(cache.x_shape, dtype=cache.dtype)
    for r, b, a_y, a_x, count in _align_matrices(cache, cache.x_shape[2], cache.x_shape[3]):
        a_y, a_x = xp.asarray(a_y, dtype=cache.dtype), xp.asarray(a_x, dtype=cache.dtype)
        dx[b] += (a_y.T @ dout[r] @ a_x) / count                # (H, oh) @ (C, oh, ow) @ (ow, W)
    return dx


# ---------------------------------------------------------------- public, validated
def roi_max_pool_forward(x, *, rois, output_size, spatial_scale=1.0, impl="auto"):
    """ROI max pooling: the maximum of each of ``oh x ow`` bins of each ROI (Fast R-CNN).

    Parameters
    ----------
    x : float array, shape (N, C, H, W)
        Feature maps.
    rois : real array, shape (R, 5)
        Rows ``[batch_index, x1, y1, x2, y2]`` in input-image pixels; ``batch_index``
        an integer in ``[0, N)``, ``x2 >= x1``, ``y2 >= y1``. Not differentiated.
    output_size : int or (oh, ow)
    spatial_scale : float > 0
        Feature-map pixels per image pixel (1 / the network's stride).
    impl : {'auto', 'reference', 'numba'}

    Returns
    -------
    out : array, shape (R, C, oh, ow), the dtype of ``x``
    cache : RoiMaxPoolCache

    Raises
    ------
    TypeError
        Non-float ``x``, non-numeric ``rois``, a non-integer ``output_size``.
    ValueError
        ``rois`` not (R, 5), a batch index that is not an integer in ``[0, N)``, ``x2 < x1``
        or ``y2 < y1``, ``output_size <= 0``, ``spatial_scale <= 0``, NaN/inf.

    Notes
    -----
    torchvision's rule (``torchvision.ops.roi_pool``), computed in the dtype of ``x``:
    the ROI's corners are scaled and rounded, halves away from zero,
    :math:`\\hat x_1 = \\mathrm{round}(s x_1)` etc.; its size
    :math:`L_h = \\max(\\hat y_2 - \\hat y_1 + 1, 1)` (the corners are inclusive); bin ``p`` covers rows

    .. math:: [\\hat y_1 + \\lfloor p L_h / o_h \\rfloor,\\ \\hat y_1 + \\lceil (p+1) L_h / o_h \\rceil)

    clipped to ``[0, H]`` (neighbouring bins may share a row), and likewise for columns;

    .. math:: \\mathrm{out}[r, c, p, q] = \\max_{(h, w) \\in \\mathrm{bin}_{pq}} x[b_r, c, h, w],

    0 for an empty bin (a ROI off the map). Ties go to the first maximum in row-major order.

    References
    ----------
    R. Girshick, "Fast R-CNN", ICCV 2015, section 2.1.
    """
    rois, output_size, spatial_scale = _setup(x, rois, output_size, spatial_scale)
    impl = check_impl(impl, x)
    if impl == "numba":
        from ..kernels import roi as _k  # noqa: PLC0415  (imports Numba: lazily)
        bins = roi_pool_bins(rois, spatial_scale, output_size, x.shape[2], x.shape[3], x.dtype)
        out, argmax = _k.roi_max_pool_output_numba(x, rois[:, 0].astype(np.int64), bins, output_size)
    else:
        out, argmax = roi_max_pool_reference_forward(x, rois, output_size, spatial_scale)
    batch_index = rois[:, 0].astype(np.int64)
    return out, RoiMaxPoolCache(tuple(x.shape), x.dtype, batch_index, argmax, impl)


def roi_max_pool_backward(dout, cache):
    """Gradient of ``roi_max_pool_forward``: ``dx`` of shape (N, C, H, W).

    Notes
    -----
    .. math:: \\frac{\\partial L}{\\partial x[n,c,h,w]} = \\sum_{r:\\ b_r = n}\\ \\sum_{(p,q):\\
              (h,w) = \\arg\\max \\mathrm{bin}_{pq}} \\mathrm{dout}[r,c,p,q]

    (Fast R-CNN eq. 4): each bin's gradient goes to the pixel it chose; bins and ROIs add up.
    """
    check_cache(cache, RoiMaxPoolCache, "roi_max_pool_forward")
    dout = check_dout(dout, (len(cache.batch_index), cache.x_shape[1]) + tuple(cache.argmax.shape[2:]),
                      cache.dtype)
    if cache.impl == "numba":
        from ..kernels import roi as _k  # noqa: PLC0415  (imports Numba: lazily)
        return _k.roi_max_pool_dx_numba(dout, cache.batch_index, cache.argmax, cache.x_shape, cache.dtype)
    return roi_max_pool_reference_backward(dout, cache)


def roi_align_forward(x, *, rois, output_size, spatial_scale=1.0, sampling_ratio=2, aligned=True,
                      impl="auto"):
    """ROI align: the average of bilinearly interpolated samples in each of ``oh x ow`` bins (Mask R-CNN).

    Parameters
    ----------
    x : float array, shape (N, C, H, W)
    rois : real array, shape (R, 5)
        Rows ``[batch_index, x1, y1, x2, y2]`` in input-image pixels (see ``roi_max_pool_forward``).
    output_size : int or (oh, ow)
    spatial_scale : float > 0
    sampling_ratio : int
        Samples per bin along each axis; ``<= 0``: adaptive, ``ceil(roi_height / oh)`` by
        ``ceil(roi_width / ow)`` (torchvision's default is -1; here 2, Mask R-CNN's choice).
    aligned : bool
        Shift the box by half a pixel (``True``, pixel ``i`` covers ``[i, i+1)`` and its
        centre is ``i + 0.5``); ``False`` is the original RoIAlign, which also forces
        ROIs to be at least 1x1.
    impl : {'auto', 'reference', 'numba'}

    Returns
    -------
    out : array, shape (R, C, oh, ow)
    cache : RoiAlignCache

    Raises
    ------
    TypeError, ValueError
        As ``roi_max_pool_forward``; a non-integer ``sampling_ratio``, a non-bool ``aligned``.

    Notes
    -----
    torchvision's rule (``torchvision.ops.roi_align``), computed in float64:
    :math:`y_0 = s y_1 - \\delta` with :math:`\\delta = 0.5` when ``aligned``, bin height
    :math:`\\beta_h = (s y_2 - s y_1) / o_h`, and sample ``i`` of bin ``p`` at

    .. math:: y_{p,i} = y_0 + p \\beta_h + (i + \\tfrac12) \\beta_h / g_h ,

    likewise :math:`x_{q,j}`. Then

    .. math:: \\mathrm{out}[r,c,p,q] = \\frac{1}{g_h g_w} \\sum_{i,j} \\mathrm{bilinear}(x[b_r, c],
              y_{p,i}, x_{q,j}),

    where a sample more than one pixel outside the map (``y < -1`` or ``y > H``) is 0,
    and one in ``[-1, 0]`` or ``[H-1, H]`` is clamped to the border row. The weights
    are separable, so per ROI :math:`\\mathrm{out}[r, c] = A_y\\, x[b_r, c]\\, A_x^T / (g_h g_w)`
    with two interpolation matrices :math:`A_y` (oh, H) and :math:`A_x` (ow, W),
    which is how the readable reference computes it.

    References
    ----------
    K. He et al., "Mask R-CNN", ICCV 2017, section 3 and figure 3.
    """
    rois, output_size, spatial_scale = _setup(x, rois, output_size, spatial_scale)
    if isinstance(sampling_ratio, (bool, np.bool_)) or not isinstance(sampling_ratio, numbers.Integral):
        raise TypeError(f"sampling_ratio must be an integer (<= 0 for adaptive), got {sampling_ratio!r}")
    if not isinstance(aligned, (bool, np.bool_)):
        raise TypeError(f"aligned must be True or False, got {aligned!r}")
    impl = check_impl(impl, x)
    sampling_ratio, aligned = int(sampling_ratio), bool(aligned)
    if impl == "numba":
        from ..kernels import roi as _k  # noqa: PLC0415  (imports Numba: lazily)
        grid = roi_align_grid(rois, spatial_scale, output_size, sampling_ratio, aligned)
        out = _k.roi_align_output_numba(x, rois[:, 0].astype(np.int64), grid, output_size)
    else:
        out = roi_align_reference_forward(x, rois, output_size, spatial_scale, sampling_ratio, aligned)
    cache = RoiAlignCache(tuple(x.shape), x.dtype, rois, output_size, spatial_scale, sampling_ratio, aligned, impl)
    return out, cache


def roi_align_backward(dout, cache):
    """Gradient of ``roi_align_forward``: ``dx`` of shape (N, C, H, W).

    Notes
    -----
    The output is linear in ``x``, so each sample hands ``dout / (g_h g_w)`` back to its
    four neighbouring pixels with its bilinear weights; per ROI,

    .. math:: \\frac{\\partial L}{\\partial x[b_r, c]} \\mathrel{+}= A_y^T\\, \\mathrm{dout}[r, c]\\, A_x / (g_h g_w).
    """
    check_cache(cache, RoiAlignCache, "roi_align_forward")
    dout = check_dout(dout, (len(cache.rois), cache.x_shape[1]) + tuple(cache.output_size), cache.dtype)
    if cache.impl == "numba":
        from ..kernels import roi as _k  # noqa: PLC0415  (imports Numba: lazily)
        grid = roi_align_grid(cache.rois, cache.spatial_scale, cache.output_size, cache.sampling_ratio,
                              cache.aligned)
        return _k.roi_align_dx_numba(dout, cache.rois[:, 0].astype(np.int64), grid, cache.x_shape, cache.dtype)
    return roi_align_reference_backward(dout, cache)


def gradcheck_cases(rng):
    """Small ROI layers for ``scratchface gradcheck`` (max-pool inputs without ties)."""
    def distinct(shape):  # magnitudes in [0.5, 1.5), at least 0.5 / size apart, random signs
        size = int(np.prod(shape))
        values = (rng.permutation(size).reshape(shape) + 0.5 * rng.random(shape)) / size + 0.5
        return values * rng.choice([-1.0, 1.0], size=shape)
    rois = np.array([[0, 1.0, 2.0, 12.0, 10.0], [1, 0.0, 0.0, 15.0, 13.0], [1, 5.0, 3.0, 9.0, 14.0]])
    return [
        GradcheckCase("roi_max_pool 3x2 scale 1/2", roi_max_pool_forward, roi_max_pool_backward,
                      {"x": distinct((2, 2, 7, 8))},
                      {"rois": rois, "output_size": (3, 2), "spatial_scale": 0.5}),
        GradcheckCase("roi_align 2x3 aligned", roi_align_forward, roi_align_backward,
                      {"x": rng.standard_normal((2, 2, 7, 8))},
                      {"rois": rois + [0, 0.3, 0.1, 0.7, 0.4], "output_size": (2, 3), "spatial_scale": 0.5}),
        GradcheckCase("roi_align 2x2 adaptive, not aligned", roi_align_forward, roi_align_backward,
                      {"x": rng.standard_normal((2, 2, 6, 7))},
                      {"rois": rois + [0, 0.3, 0.1, 0.7, 0.4], "output_size": 2, "spatial_scale": 0.5,
                       "sampling_ratio": -1, "aligned": False}),
    ]
