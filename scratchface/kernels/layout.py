"""The padded channels-last input that the convolution kernels read (#16).

``xh[b, y + top, x + left, c] = x[b, c, y, x]``, zeros around: kernel row ``i`` of an output pixel's
receptive field is then ``KW*C`` consecutive values (the columns path, the micro-kernel, tap skipping),
and a Winograd tile's 4x4 patch is 16 runs of ``C`` values (each transform a loop over the channels).
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from .microkernel import aligned_empty

__all__ = ["interior_to_nchw", "padded_channels_last", "padded_channels_last_serial"]


@numba.njit(cache=True, parallel=True)
def _padded_channels_last(x, top, left, xh, block):
    """``xh[b, y + top, x + left, c] = x[b, c, y, x]``, zeros elsewhere: the input padded, channels last.

    ``block`` 16 (``padded_channels_last``, from ``BLOCKED_MIN_C`` channels on rows of ``BLOCKED_MIN_W``
    pixels): each row in blocks of 16 channels, a block's values of one pixel written together (a cache line
    in float32) while its 16 rows are read in order; ``block`` 1: one channel at a time (a row of ``xh``
    stays in L1 while its channels are written). Seventh #16 pass, 2 threads, in turn in one process (a
    timing script): blocks of 16 against one channel at a time 1.6x-1.9x on 128 channels of 28x28 and 192 of
    24x24 (conv2's ``dout``, 14 MB: 5.95 -> 3.14 ms), the same at 56x56, 0.94x on 64 and 32 channels of
    MTCNN's 21x21 / 23x23 crops, 0.9x on 128 and 256 of 12x12, 0.6x on 3 channels."""
    n, c, h, w = x.shape
    hp, wp = xh.shape[1], xh.shape[2]
    for t in prange(n * hp):
        b, y = t // hp, t % hp
        line = xh[b, y]
        line[:] = 0
        if top <= y < top + h:
            if block == 1:
                for ci in range(c):
                    src = x[b, ci, y - top]
                    for u in range(w):
                        line[left + u, ci] = src[u]
                continue
            for c0 in range(0, c, block):
                for u in range(w):
                    dst = line[left + u]
                    for ci in range(c0, min(c, c0 + block)):
                        dst[ci] = x[b, ci, y - top, u]


@numba.njit(cache=True, parallel=True)
def _padded_images_channels_last(x, top, left, xh, rows):
    """The same for short rows (``padded_channels_last``: fewer than ``SHORT_ROW`` pixels), in tasks of ``rows``
    rows of ``xh`` of one image (whole images from ``IMAGE_TASKS`` images): each channel's plane read in order,
    its values written ``C`` apart into the task's rows (which stay in L2). Reading one row of every channel per
    row of ``xh`` (``_padded_channels_last``) keeps ``C`` streams of ``W`` values open at once, too short for the
    prefetchers when the input comes from memory. Eighth #16 pass, 2 threads, the input cold (an L3-sized buffer
    written between calls), in turn in one process (a timing script): MTCNN's O-Net ``dout`` of 256 crops, 64
    channels of 21x21 padded by 2, 11.2 -> 5.3 ms; its conv2 input, 32 channels of 23x23, 4.1 -> 2.7 ms; conv2's
    ``dout`` (192 channels of 24x24) 2.8 -> 2.0-2.6 ms; NN2's 12x12 layers 0.55 -> 0.43 ms; on rows of 56 (NN2
    at 224, 64 / 192 channels) 0.83x / 0.94x of the rows' speed: they stay with the rows."""
    hp = xh.shape[1]
    per_image = -(-hp // rows)
    for task in prange(x.shape[0] * per_image):
        b, y0 = task // per_image, (task % per_image) * rows
        _image_rows(x, top, left, xh, b, y0, min(hp, y0 + rows))


@numba.njit(cache=True)
def _image_rows(x, top, left, xh, b, y0, y1):
    """Rows ``[y0, y1)`` of image ``b`` of ``xh``: zeros on the padding, then each channel's plane read in order."""
    c, h, w = x.shape[1], x.shape[2], x.shape[3]
    image = xh[b]
    for y in range(y0, y1):
        if top <= y < top + h:
            image[y, :left] = 0
            image[y, left + w:] = 0
        else:
            image[y] = 0
    for ci in range(c):
        for y in range(max(y0, top), min(y1, top + h)):
            src = x[b, ci, y - top]
            line = image[y]
            for u in range(w):
                line[left + u, ci] = src[u]


@numba.njit(cache=True)
def padded_channels_last_serial(x, top, bottom, left, right):
    """``padded_channels_last`` on one thread, inside a Numba function (``x`` C-contiguous): for the problems too
    small to wake the thread pool for (``scratchface.kernels.implicit_conv.small_conv_output``)."""
    n, c, h, w = x.shape
    xh = np.empty((n, top + h + bottom, left + w + right, c), dtype=x.dtype)
    for b in range(n):
        _image_rows(x, top, left, xh, b, 0, xh.shape[1])
    return xh


@numba.njit(cache=True)
def interior_to_nchw(planes, b0, top, left, dx):
    """The inverse: ``dx[b0 + b, c, y, x] = planes[b, y + top, x + left, c]`` (padded channels-last planes
    summed by a backward pass, their interior back to NCHW)."""
    c, h, w = dx.shape[1:]
    for b in range(planes.shape[0]):
        for ci in range(c):
            for y in range(h):
                line = planes[b, y + top]
                dst = dx[b0 + b, ci, y]
                for u in range(w):
                    dst[u] = line[left + u, ci]


BLOCKED_MIN_C = 128        # channels from which the transpose goes in blocks of 16 ...
BLOCKED_MIN_W = 16         # ... on rows at least this wide
SHORT_ROW = 32             # rows shorter than this: a task per image (or block of rows), channel after channel
IMAGE_TASKS = 8            # ... whole images from this many images, else blocks of rows: at least this many tasks


def padded_channels_last(x, padding, slack=0):
    """``x (N, C, H, W)`` padded and channels last: ``(N, top + H + bottom, left + W + right, C)``; with
    ``slack``, also the buffer it lies in, ``slack`` zeros longer: ``(buffer, xh)``."""
    top, bottom, left, right = padding
    n, c, h, w = x.shape
    shape = (n, top + h + bottom, left + w + right, c)
    buffer = aligned_empty(int(np.prod(shape)) + slack, x.dtype)
    buffer[buffer.size - slack:] = 0
    xh = buffer[:buffer.size - slack].reshape(shape)
    if w < SHORT_ROW:
        rows = shape[1] if n >= IMAGE_TASKS else max(1, shape[1] * n // IMAGE_TASKS)
        _padded_images_channels_last(np.ascontiguousarray(x), top, left, xh, rows)
    else:
        block = 16 if c >= BLOCKED_MIN_C and w >= BLOCKED_MIN_W else 1
        _padded_channels_last(np.ascontiguousarray(x), top, left, xh, block)
    return (buffer, xh) if slack else xh
