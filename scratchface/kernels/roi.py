"""Numba kernels for ROI max pooling and ROI align (NumPy arrays only).

The ROI geometry (bin edges of ROI pooling, sample grids of ROI align) is
computed by the readable helpers of :mod:`scratchface.layers.roi`
(``roi_pool_bins``, ``roi_align_grid``) and passed in; these kernels do the
per-pixel work. ROI align here is torchvision's direct loop (each sample's
four neighbours and bilinear weights, computed once per ROI for all channels,
then a weighted sum per sample), where the readable reference multiplies
interpolation matrices: two ways of computing the same numbers, tested equal.

The kernels are serial loops, like torchvision's CPU kernels: a detector
pools a few hundred ROIs of a small feature map, milliseconds of work, and a
``parallel=True`` kernel would cost several seconds more to compile (per
dtype) than it could save here on a 2-core machine.

The validated entry points are in :mod:`scratchface.layers.roi`, which imports
this module lazily (it imports Numba).
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["roi_max_pool_output_numba", "roi_max_pool_dx_numba", "roi_align_output_numba", "roi_align_dx_numba"]


@numba.njit(cache=True)
def _roi_max_pool_forward(x, batch, h_start, h_end, w_start, w_end, out, argmax):
    n_rois, channels, oh, ow = out.shape
    width = x.shape[3]
    for r in range(n_rois):
        for c in range(channels):
            plane = x[batch[r], c]
            for p in range(oh):
                for q in range(ow):
                    hs, he, ws, we = h_start[r, p], h_end[r, p], w_start[r, q], w_end[r, q]
                    if he <= hs or we <= ws:                          # empty bin: 0, no gradient
                        out[r, c, p, q] = 0
                        argmax[r, c, p, q] = -1
                        continue
                    best = plane[hs, ws]
                    index = hs * width + ws
                    for h in range(hs, he):
                        for w in range(ws, we):
                            v = plane[h, w]
                            if v > best:                              # strict: ties keep the first
                                best = v
                                index = h * width + w
                    out[r, c, p, q] = best
                    argmax[r, c, p, q] = index


@numba.njit(cache=True)
def _roi_max_pool_backward(dout, batch, argmax, dx):
    n_rois, channels, oh, ow = dout.shape
    for r in range(n_rois):
        for c in range(channels):
            plane = dx[batch[r], c]
            for p in range(oh):
                for q in range(ow):
                    index = argmax[r, c, p, q]
                    if index >= 0:
                        plane[index] += dout[r, c, p, q]


@numba.njit(cache=True, inline="always")
def _axis_weights(y, size):
    """One axis of bilinear interpolation, torchvision's border rules: (valid, low, high, w_low, w_high)."""
    if y < -1.0 or y > size:
        return False, 0, 0, 0.0, 0.0
    y = max(0.0, y)
    low = int(y)
    if low >= size - 1:
        low = size - 1
        high = low
        y = float(low)
    else:
        high = low + 1
    frac = y - low
    return True, low, high, 1.0 - frac, frac


@numba.njit(cache=True)
def _axis_samples(start, bin_size, grid, pooled, size):
    """Neighbours and weights of the ``pooled * grid`` samples along one axis (weights 0: outside).

    Returns ``(low, high, w_low, w_high)``, arrays of ``pooled * grid``; sample ``i`` of
    bin ``p`` is entry ``p * grid + i``.
    """
    n = pooled * grid
    low, high = np.empty(n, np.int64), np.empty(n, np.int64)
    w_low, w_high = np.zeros(n), np.zeros(n)
    for p in range(pooled):
        for i in range(grid):
            k = p * grid + i
            valid, lo, hi, wl, wh = _axis_weights(start + p * bin_size + (i + 0.5) * bin_size / grid, size)
            low[k], high[k] = lo, hi
            if valid:
                w_low[k], w_high[k] = wl, wh
    return low, high, w_low, w_high


@numba.njit(cache=True)
def _roi_align(maps, values, batch, y0, x0, bin_h, bin_w, grid_h, grid_w, backward):
    """Forward (``backward=False``): ``values[r, c, p, q]`` = mean of bin (p, q)'s samples of ``maps``.

    Backward: the same samples with the same weights, transposed: each ``values[r, c, p, q]``
    (``dout``) is scattered back onto ``maps`` (``dx``, zeros on entry).
    """
    n_rois, channels, oh, ow = values.shape
    height, width = maps.shape[2], maps.shape[3]
    for r in range(n_rois):
        gh, gw = grid_h[r], grid_w[r]
        count = max(gh * gw, 1)
        # the samples' neighbours and weights are the same for every channel: once per ROI
        ylo, yhi, wyl, wyh = _axis_samples(y0[r], bin_h[r], gh, oh, height)
        xlo, xhi, wxl, wxh = _axis_samples(x0[r], bin_w[r], gw, ow, width)
        for c in range(channels):
            plane = maps[batch[r], c]
            for p in range(oh):
                for q in range(ow):
                    acc = 0.0
                    g = values[r, c, p, q] / count if backward else 0.0
                    for i in range(p * gh, (p + 1) * gh):
                        for j in range(q * gw, (q + 1) * gw):
                            if backward:
                                plane[ylo[i], xlo[j]] += g * wyl[i] * wxl[j]
                                plane[ylo[i], xhi[j]] += g * wyl[i] * wxh[j]
                                plane[yhi[i], xlo[j]] += g * wyh[i] * wxl[j]
                                plane[yhi[i], xhi[j]] += g * wyh[i] * wxh[j]
                            else:
                                acc += (wyl[i] * (wxl[j] * plane[ylo[i], xlo[j]] + wxh[j] * plane[ylo[i], xhi[j]])
                                        + wyh[i] * (wxl[j] * plane[yhi[i], xlo[j]]
                                                    + wxh[j] * plane[yhi[i], xhi[j]]))
                    if not backward:
                        values[r, c, p, q] = acc / count


def roi_max_pool_output_numba(x, batch_index, bins, output_size):
    """``(out, argmax)`` of ROI max pooling for a validated NumPy ``x``.

    ``batch_index`` (R,) int64 is the image of each ROI; ``bins`` the four
    ``(R, o)`` arrays ``h_start, h_end, w_start, w_end`` of
    ``scratchface.layers.roi.roi_pool_bins``. ``argmax`` indexes the H*W plane (-1: empty bin).
    """
    x = np.ascontiguousarray(x)
    out = np.empty((len(batch_index), x.shape[1]) + tuple(output_size), dtype=x.dtype)
    argmax = np.empty(out.shape, dtype=np.int64)
    _roi_max_pool_forward(x, batch_index, *bins, out, argmax)
    return out, argmax


def roi_max_pool_dx_numba(dout, batch_index, argmax, x_shape, dtype):
    """``dx`` of shape ``x_shape`` of :func:`roi_max_pool_output_numba` for a validated ``dout``."""
    n, c, h, w = x_shape
    dx = np.zeros((n, c, h * w), dtype=dtype)
    _roi_max_pool_backward(np.ascontiguousarray(dout), batch_index, argmax, dx)
    return dx.reshape(x_shape)


def roi_align_output_numba(x, batch_index, grid, output_size):
    """``out`` of ROI align for a validated NumPy ``x``.

    ``grid``: the six arrays ``y0, x0, bin_h, bin_w, grid_h, grid_w`` of
    ``scratchface.layers.roi.roi_align_grid``; ``batch_index`` (R,) int64.
    """
    x = np.ascontiguousarray(x)
    out = np.empty((len(batch_index), x.shape[1]) + tuple(output_size), dtype=x.dtype)
    _roi_align(x, out, batch_index, *grid, False)
    return out


def roi_align_dx_numba(dout, batch_index, grid, x_shape, dtype):
    """``dx`` of shape ``x_shape`` of :func:`roi_align_output_numba` for a validated ``dout``."""
    dx = np.zeros(x_shape, dtype=dtype)
    _roi_align(dx, np.ascontiguousarray(dout), batch_index, *grid, True)
    return dx
