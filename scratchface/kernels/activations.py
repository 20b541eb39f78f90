"""Numba kernel for PReLU's forward pass (NumPy arrays only).

NumPy's ``where(x > 0, x, alpha * x)`` makes three passes over the array and
two temporaries as large as it (the mask and ``alpha * x``); MTCNN applies it
after every convolution (its share of ``detect_faces``: docs/results.md, #16).
This kernel makes one pass, parallel over the ``N * C`` planes, and writes
each output element once. The validated entry point is
:func:`scratchface.layers.activations.prelu_forward`, which imports this module
lazily (it imports Numba).
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._numba import single_thread_below

__all__ = ["prelu", "prelu_output_numba"]


@numba.njit(cache=True, inline="always")
def prelu(v, slope):
    """``v if v > 0 else slope * v``: PReLU of one value (also the convolutions' epilogue)."""
    return v if v > 0 else slope * v


@numba.njit(cache=True, parallel=True)
def _prelu_forward(x, alpha, out):
    """``out[b, c, p] = x if x > 0 else alpha[c] * x`` on (N, C, P) arrays."""
    n, c, npix = x.shape
    for t in prange(n * c):
        b = t // c
        ch = t % c
        slope = alpha[ch]
        src = x[b, ch]
        dst = out[b, ch]
        for p in range(npix):
            v = src[p]
            dst[p] = prelu(v, slope)


def prelu_output_numba(x, alpha):
    """PReLU of a validated NumPy array ``x`` (N, C, ...) with slopes ``alpha`` (C,), same dtype."""
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    shape3 = (x.shape[0], x.shape[1], int(np.prod(x.shape[2:])))
    with single_thread_below(x.size):
        _prelu_forward(x.reshape(shape3), np.ascontiguousarray(alpha), out.reshape(shape3))
    return out
