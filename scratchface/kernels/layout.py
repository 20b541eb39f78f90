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

__all__ = ["padded_channels_last"]


@numba.njit(cache=True, parallel=True)
def _padded_channels_last(x, top, left, xh):
    """``xh[b, y + top, x + left, c] = x[b, c, y, x]``, zeros elsewhere: the input padded, channels last
    (one channel at a time: a row of ``xh`` stays in L1 while its channels are written; tried: blocks of 16
    channels written together per pixel, 0.7x-0.85x on NN2's and MTCNN's inputs, 1.4x only on conv2's
    14 MB ``dout``; a timing script, seventh #16 pass)."""
    n, c, h, w = x.shape
    hp, wp = xh.shape[1], xh.shape[2]
    for t in prange(n * hp):
        b, y = t // hp, t % hp
        line = xh[b, y]
        line[:] = 0
        if top <= y < top + h:
            for ci in range(c):
                src = x[b, ci, y - top]
                for u in range(w):
                    line[left + u, ci] = src[u]


def padded_channels_last(x, padding, slack=0):
    """``x (N, C, H, W)`` padded and channels last: ``(N, top + H + bottom, left + W + right, C)``; with
    ``slack``, also the buffer it lies in, ``slack`` zeros longer: ``(buffer, xh)``."""
    top, bottom, left, right = padding
    n, c, h, w = x.shape
    shape = (n, top + h + bottom, left + w + right, c)
    buffer = aligned_empty(int(np.prod(shape)) + slack, x.dtype)
    buffer[buffer.size - slack:] = 0
    xh = buffer[:buffer.size - slack].reshape(shape)
    _padded_channels_last(np.ascontiguousarray(x), top, left, xh)
    return (buffer, xh) if slack else xh
