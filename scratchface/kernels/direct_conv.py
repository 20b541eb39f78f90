"""A direct convolution kernel for few channels on wide rows: MTCNN's P-Net on its large pyramid levels (#16).

Few channels on wide rows (MTCNN's P-Net on the large pyramid levels: 3 -> 10, 10 -> 16,
16 -> 32 on rows of hundreds of pixels) went to this kernel instead of the columns (``direct_forward``;
stride 1, 3-wide kernels, ``C F <= DIRECT_MAX_CF``, ``OW >= DIRECT_MIN_OW``; since the micro-kernel,
only P-Net's first layer, ``F < DIRECT_MAX_F``: its 10 filters would fill 10 of a tile's 16, and the
direct kernel is faster there, 2.7 against 6.4 ms on a 375x500 level; the micro-kernel is faster on the
other two, 16 -> 32 8.4 against 10.6 ms, a timing script, not kept): one task per output
row, filters in pairs, each kernel row of each input channel added as three taps along the output
row, so no columns are written and every load feeds two filters. There the GEMM's reduction
(``C KH KW`` = 27 to 144) and its ``F`` (10 to 32) are too small for BLAS to run well, and the
columns cost as much as the product. One thread, conv + PReLU on P-Net's first level of
bald_guys.jpg (im2col + GEMM -> direct): 3 -> 10 86 -> 40 ms, 10 -> 16 78 -> 36 ms, 16 -> 32
160 -> 111 ms; on 256 R-Net / O-Net crops (11- and 23-pixel rows) it is slower (36 -> 77 ms,
218 -> 440 ms), hence the row width in the rule.

``scratchface.kernels.conv.conv2d_output_numba`` sends a layer here when its ``_direct_pays`` (the rule
above; moved out of ``conv.py`` in the sixth #16 pass, unchanged); this module imports Numba (import it
lazily).
"""
from __future__ import annotations

import numba
from numba import prange

from .activations import prelu

__all__ = ["direct_forward", "direct_rows"]


@numba.njit(cache=True)
def direct_rows(xpad, w, bias, alpha, has_alpha, b, y, f0, f1, out):
    """Output row ``y`` of image ``b`` for filters ``f0`` and ``f1`` (``f1 = -1``: ``f0`` alone), stride 1,
    ``KW = 3``: for every input channel and kernel row, three taps of that input row added along the
    output row (contiguous: vectorised); each input value loaded feeds both filters."""
    c, kh = xpad.shape[1], w.shape[2]
    ow = out.shape[3]
    two = f1 >= 0
    g1 = f1 if two else f0
    a0, a1 = out[b, f0, y], out[b, g1, y]
    for q in range(ow):
        a0[q] = bias[f0]
    if two:
        for q in range(ow):
            a1[q] = bias[f1]
    for ci in range(c):
        for i in range(kh):
            line = xpad[b, ci, y + i]
            u0, u1, u2 = w[f0, ci, i, 0], w[f0, ci, i, 1], w[f0, ci, i, 2]
            if two:
                v0, v1, v2 = w[f1, ci, i, 0], w[f1, ci, i, 1], w[f1, ci, i, 2]
                for q in range(ow):
                    l0, l1, l2 = line[q], line[q + 1], line[q + 2]
                    a0[q] += u0 * l0 + u1 * l1 + u2 * l2
                    a1[q] += v0 * l0 + v1 * l1 + v2 * l2
            else:
                for q in range(ow):
                    a0[q] += u0 * line[q] + u1 * line[q + 1] + u2 * line[q + 2]
    if has_alpha:
        for fo in range(f0, g1 + 1, max(g1 - f0, 1)):       # f0, and f1 when there are two
            slope, row = alpha[fo], out[b, fo, y]
            for q in range(ow):
                row[q] = prelu(row[q], slope)


@numba.njit(cache=True, parallel=True)
def direct_forward(xpad, w, bias, alpha, has_alpha, out):
    """Direct convolution (stride 1, ``KW = 3``), one task per output row of an image, filters in pairs."""
    n, f, oh = out.shape[0], out.shape[1], out.shape[2]
    for t in prange(n * oh):
        for f0 in range(0, f - 1, 2):
            direct_rows(xpad, w, bias, alpha, has_alpha, t // oh, t % oh, f0, f0 + 1, out)
        if f % 2:
            direct_rows(xpad, w, bias, alpha, has_alpha, t // oh, t % oh, f - 1, -1, out)
