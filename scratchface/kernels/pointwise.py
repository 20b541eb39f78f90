r"""1x1 convolutions (stride 1, no padding): one matrix product per image, pixel tiles, or the whole batch (#16).

A 1x1 convolution mixes channels pixel by pixel: with image ``b`` as a matrix ``X_b = x[b] (C, H*W)``,

.. math:: \mathrm{out}[b] = W X_b + b\,\mathbf 1^T, \qquad dW = \sum_b dY_b\, X_b^T, \qquad
          dX_b = W^T dY_b, \qquad db = \sum_b dY_b\,\mathbf 1

(``W (F, C)``, ``dY_b = dout[b] (F, H*W)``): one BLAS product per image and task, nothing copied.
``scratchface.kernels.conv`` sends a 1x1 layer's backward here from ``POINTWISE_MIN_IMAGES`` = 4 images of
``POINTWISE_MIN_PIXELS`` = 64 pixels (NN2's 1x1 layers at 24x24 and 12x12, batch 32; the forward from 36
pixels where the pixel tiles below do not take it): 1.35-1.38x faster than the columns path of commit
4c92194 (``python benchmarks/compare_conv_versions.py``, third #16 pass); at 6x6 and 3x3 the backward's
products were too narrow (0.90x, 0.36x): the micro-kernel's backward takes them from 6x6 and the columns path
(channels-last ``x`` is its own columns) the rest.

``pixel_tiles_forward`` is the same product on the micro-kernel (:mod:`scratchface.kernels.microkernel`),
still on NCHW as it is: a tile of 6 filters by 16 consecutive pixels of one image, each step a row of ``W``
broadcast against one channel's 16 pixels, stored as 16 contiguous outputs per filter; tasks are runs of
``PIXEL_CHUNK`` pixel blocks of one image, so that one image (P-Net's heads on a pyramid level, a single
photo through NN2) is spread over every thread, where one product per image runs on one. Measured (2
threads, float32, forward, a timing script, ``scratchface.kernels.conv._pointwise_path`` cites the rest):
P-Net's 32 -> 2 / 4 heads on a 108x145 level 0.22 / 0.15 ms against the columns' 1.07 / 0.63 ms and torch's
0.88 / 0.48; one 56x56 image 64 -> 64 0.55 against 1.29 ms; NN2 at 12x12 with >= 192 channels 1.16x-1.24x
faster than one product per image. ``dx`` of the 1x1 layers that the micro-kernel's backward takes
(``scratchface.kernels.conv._implicit_grads_pay``) is the forward of ``dout`` with ``W^T``, by whichever
of the two the forward's rule picks.

``channel_major_forward`` / ``channel_major_backward`` take the whole batch as one matrix, ``X (C, N*H*W)``
(one transposing copy), for the 1x1 layers of at least 4 images on few pixels (NN2's at 6x6 and 3x3, where
the products per image are too narrow):

.. math:: \mathrm{out} = W X, \qquad dW = D X^T, \qquad dX = W^T D, \qquad D = dY\ (F, N H W).

The backward's tasks are blocks of input channels: each task copies its own rows of ``X``, and its ``dW``
columns and ``dX`` rows come out of one product each over the whole batch (no partial sums); the forward's
tasks are blocks of filters. Sixth #16 pass (Zen 4, 2 threads, batch 32; the figures are in
``scratchface.kernels.conv``'s docstring): backward 1.15x-1.27x against the micro-kernel (6x6, 7x7) and
the columns (3x3), forward 1.23x-1.28x at 3x3. Tried and dropped in the third pass (Zen 1): the forward's
product cut into row blocks of ``X`` for the 6x6 layers: 4a 1x1 forward 6.8 -> 8.8 ms, 5a 1x1 backward
9.8 -> 12.5 ms (``compare_conv_versions.py``): every task's BLAS call packed the whole of ``X`` again;
still true of the forward at 6x6 (0.6x-0.9x), hence one product per image there. The channels-last
micro-kernel of :mod:`scratchface.kernels.implicit_conv` with 1x1 kernels (6 pixels by 16 filters): 4a 1x1
at 6x6 5.7 against 4.9 ms, 64 -> 64 at 24x24 7.6 against 2.4 ms (the transposing copy and scattered
stores; a timing script, not kept).
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from .activations import prelu
from .microkernel import TILE_ROWS, tile_fma, tile_width

__all__ = ["channel_major_backward", "channel_major_forward", "per_image_backward", "per_image_forward",
           "pixel_tiles_forward"]

PIXEL_CHUNK = 4            # pixel_tiles_forward: blocks of tile_width pixels per task, at most


@numba.njit(cache=True, parallel=True)
def per_image_forward(x, wmat, bias, alpha, has_alpha, out):
    """``out[b] = W (F, C) @ x[b] (C, H*W)`` per image, bias and PReLU in place."""
    for b in prange(out.shape[0]):
        res = out[b]
        np.dot(wmat, x[b], res)                                     # BLAS on this thread, into out
        _epilogue(res, bias, alpha, has_alpha)


@numba.njit(cache=True, parallel=True)
def per_image_backward(dout, x, wmat, dx, dw_parts, db_parts):
    """Part ``t`` of the images: ``dW_t += dout[b] @ x[b].T``, ``db_t += dout[b]`` summed over pixels,
    ``dx[b] = W.T @ dout[b]``."""
    n, f = dout.shape[0], dout.shape[1]
    parts = dw_parts.shape[0]
    for t in prange(parts):
        for b in range(t * n // parts, (t + 1) * n // parts):
            dw_parts[t] += np.dot(dout[b], x[b].T)
            np.dot(wmat.T, dout[b], dx[b])
            for k in range(f):
                total = 0.0
                for v in dout[b, k]:
                    total += v
                db_parts[t, k] += total


@numba.njit(cache=True, parallel=True)
def pixel_tiles_forward(x, wmat, bias, alpha, has_alpha, chunk, out):
    """``out[b] = W (F, C) @ x[b] (C, P)`` by the micro-kernel, for images of at least ``tile_width`` pixels:
    tiles of ``TILE_ROWS`` filters by ``tile_width`` consecutive pixels of one image (the last block of an
    image moved back to end on its last pixel), a row of ``W`` broadcast against a channel's run of pixels,
    stored straight into NCHW. Tasks: runs of ``chunk`` (``PIXEL_CHUNK``) blocks of one image, the filter tiles
    the outer loop inside (a tile of ``W`` stays in L1 while the blocks pass)."""
    n, c, p = x.shape
    f = wmat.shape[0]
    width = tile_width(x)
    blocks = -(-p // width)
    runs = -(-blocks // chunk)
    x_flat = x.reshape(-1)
    w_flat = wmat.reshape(-1)
    for task in prange(n * runs):
        b, run = task // runs, task % runs
        acc = np.empty((TILE_ROWS, width), dtype=x.dtype)
        offsets = np.empty(TILE_ROWS, dtype=np.int64)
        for f0 in range(0, f, TILE_ROWS):
            for r in range(TILE_ROWS):
                offsets[r] = min(f0 + r, f - 1) * c
            for blk in range(run * chunk, min(blocks, (run + 1) * chunk)):
                q0 = min(blk * width, p - width)
                acc[:] = 0
                tile_fma(w_flat, offsets, 0, x_flat, b * c * p + q0, p, c, 1, acc)
                for r in range(min(TILE_ROWS, f - f0)):
                    add, slope, row = bias[f0 + r], alpha[f0 + r], out[b, f0 + r]
                    for v in range(width):
                        value = acc[r, v] + add
                        if has_alpha:
                            value = prelu(value, slope)
                        row[q0 + v] = value


@numba.njit(cache=True)
def _gather(src, c0, c1, dst):
    """``dst[ch - c0, b*P + p] = src[b, ch, p]`` for channels ``c0:c1``: NCHW to channel-major ``(C, N*P)``."""
    n, p = src.shape[0], src.shape[2]
    for ch in range(c0, c1):
        row = dst[ch - c0]
        for b in range(n):
            row[b * p:(b + 1) * p] = src[b, ch]


@numba.njit(cache=True, parallel=True)
def channel_major_forward(x, wmat, bias, alpha, has_alpha, blocks, out):
    """``out = W (F, C) @ X (C, N*P)`` with ``X`` the whole batch channel-major (one transposing copy, in
    parallel over channels), in ``blocks`` row blocks of ``W`` (one task each), written back to NCHW with
    the bias (and PReLU) added."""
    n, c, p = x.shape
    f = wmat.shape[0]
    xt = np.empty((c, n * p), dtype=x.dtype)
    for t in prange(blocks):
        _gather(x, t * c // blocks, (t + 1) * c // blocks, xt[t * c // blocks:(t + 1) * c // blocks])
    for t in prange(blocks):
        f0, f1 = t * f // blocks, (t + 1) * f // blocks
        res = np.dot(wmat[f0:f1], xt)                               # BLAS on this thread
        _epilogue(res, bias[f0:f1], alpha[f0:f1], has_alpha)
        for k in range(f0, f1):
            for b in range(n):
                out[b, k] = res[k - f0, b * p:(b + 1) * p]


@numba.njit(cache=True, parallel=True)
def channel_major_backward(dout, x, wmat, blocks, dx, dw, db):
    """The whole batch as one product: ``D = dout`` channel-major ``(F, N*P)`` (and ``db``, its row sums in
    float64), then per block of input channels ``c0:c1`` (one task each) ``X_blk (c1-c0, N*P)``,
    ``dW[:, c0:c1] = D @ X_blk^T`` and ``dX_blk = W[:, c0:c1]^T @ D``, written back to NCHW. Every entry
    of ``dW`` comes from one product over the whole batch: no partial sums."""
    n, f, p = dout.shape
    c = x.shape[1]
    d = np.empty((f, n * p), dtype=dout.dtype)
    for t in prange(blocks):
        f0, f1 = t * f // blocks, (t + 1) * f // blocks
        _gather(dout, f0, f1, d[f0:f1])
        for k in range(f0, f1):
            total = 0.0
            for v in d[k]:
                total += v
            db[k] = total
    for t in prange(blocks):
        c0, c1 = t * c // blocks, (t + 1) * c // blocks
        xb = np.empty((c1 - c0, n * p), dtype=x.dtype)
        _gather(x, c0, c1, xb)
        dw[:, c0:c1] = np.dot(d, xb.T)
        dxb = np.dot(np.ascontiguousarray(wmat[:, c0:c1].T), d)
        for ch in range(c0, c1):
            for b in range(n):
                dx[b, ch] = dxb[ch - c0, b * p:(b + 1) * p]


@numba.njit(cache=True, inline="always")
def _epilogue(res, bias, alpha, has_alpha):
    """``res[k] += bias[k]``, through PReLU with slope ``alpha[k]`` when ``has_alpha``, for each row ``k``."""
    for k in range(res.shape[0]):
        add, slope, row = bias[k], alpha[k], res[k]
        for q in range(row.shape[0]):
            v = row[q] + add
            if has_alpha:
                v = prelu(v, slope)
            row[q] = v
