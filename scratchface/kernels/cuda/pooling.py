"""Max, average and L2 pooling on the GPU: the CUDA kernels, forward and backward, NCHW, and their host wrappers.

Same semantics as :mod:`scratchface.layers.pooling` (PyTorch's window rules,
``ceil_mode``, ``count_include_pad``); windows are given in *padded*
coordinates: output ``(p, q)`` covers padded rows ``[p*sh, p*sh + KH)``, i.e.
input rows ``[p*sh - top, p*sh - top + KH)`` clipped to the image.

* forward: one thread per output element, reading its window in place.
  Max pool records the flat index ``y*W + x`` of the first maximum in
  row-major window order (the padding, ``-inf``, is never chosen) -- the
  convention of the Numba CPU kernel.
* backward: one thread per *input* pixel, which gathers from the (at most
  ``ceil(KH/sh) * ceil(KW/sw)``) windows that contain it. No atomics: the
  result is deterministic, unlike a scatter with ``atomicAdd``.

``mode``: 0 max, 1 average, 2 L2 (as in :mod:`scratchface.kernels.pooling`).

Host wrappers (CuPy arrays): :func:`pool2d_output_cuda` and :func:`pool2d_dx_cuda`,
the ``impl='cuda'`` path of the three poolings of :mod:`scratchface.layers.pooling`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from ..._validation import check_array, check_choice
from ._launch import array_module, blocks_for, check_same_dtype, larger, launch, smaller

__all__ = ["pool2d_output_kernel", "pool2d_dx_kernel", "pool2d_output_cuda", "pool2d_dx_cuda", "MAX", "AVG", "L2",
           "MODES"]

MAX, AVG, L2 = 0, 1, 2
MODES = {"max": MAX, "avg": AVG, "l2": L2}


@cuda.jit(device=True)
def _window_count(p, q, kh, kw, sh, sw, h, w, top, bottom, left, right, include_pad):
    """Divisor of the average pool at output ``(p, q)`` (``torch.nn.AvgPool2d``'s rule)."""
    r0 = p * sh
    c0 = q * sw
    if include_pad:            # the window clipped to the padded input
        rows = smaller(r0 + kh, h + top + bottom) - r0
        cols = smaller(c0 + kw, w + left + right) - c0
    else:                      # the window clipped to the real input
        rows = smaller(r0 + kh, top + h) - larger(r0, top)
        cols = smaller(c0 + kw, left + w) - larger(c0, left)
    return rows * cols


@cuda.jit(cache=True)
def pool2d_output_kernel(x, mode, kh, kw, sh, sw, top, bottom, left, right, include_pad, out, argmax):
    """``out (N, C, OH, OW)`` (and ``argmax`` for max pool); one thread per output element."""
    n, c, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    idx = cuda.grid(1)
    if idx >= n * c * oh * ow:
        return
    q = idx % ow
    p = (idx // ow) % oh
    ch = (idx // (ow * oh)) % c
    b = idx // (ow * oh * c)
    y0 = p * sh - top
    x0 = q * sw - left
    if mode == MAX:
        best = -math.inf
        best_at = -1
        for i in range(kh):
            y = y0 + i
            if y < 0 or y >= h:
                continue
            for j in range(kw):
                xx = x0 + j
                if xx < 0 or xx >= w:
                    continue
                v = x[b, ch, y, xx]
                if v > best:                          # strict: ties keep the first maximum
                    best = v
                    best_at = y * w + xx
        out[b, ch, p, q] = best
        argmax[b, ch, p, q] = best_at
    else:
        acc = 0.0
        for i in range(kh):
            y = y0 + i
            if y < 0 or y >= h:
                continue
            for j in range(kw):
                xx = x0 + j
                if xx < 0 or xx >= w:
                    continue
                v = x[b, ch, y, xx]
                acc += v if mode == AVG else v * v
        if mode == AVG:
            out[b, ch, p, q] = acc / _window_count(p, q, kh, kw, sh, sw, h, w, top, bottom, left, right,
                                                   include_pad)
        else:
            out[b, ch, p, q] = math.sqrt(acc)


@cuda.jit(cache=True)
def pool2d_dx_kernel(dout, x, out, argmax, mode, kh, kw, sh, sw, top, bottom, left, right, include_pad, dx):
    """``dx (N, C, H, W)``; one thread per input pixel, gathering over the windows that hold it.

    Input row ``y`` lies in the window of output row ``p`` when
    ``p*sh - top <= y < p*sh - top + KH``, i.e. ``p`` from
    ``ceil((y + top - KH + 1) / sh)`` to ``floor((y + top) / sh)``, clipped to ``[0, OH)``.
    """
    n, c, h, w = x.shape
    oh, ow = dout.shape[2], dout.shape[3]
    idx = cuda.grid(1)
    if idx >= n * c * h * w:
        return
    xx = idx % w
    y = (idx // w) % h
    ch = (idx // (w * h)) % c
    b = idx // (w * h * c)
    ty = y + top
    tx = xx + left
    p_lo = larger(0, (ty - kh + sh) // sh)       # ceil((ty - kh + 1) / sh) for ty - kh + 1 >= -sh + 1
    p_hi = smaller(oh - 1, ty // sh)
    q_lo = larger(0, (tx - kw + sw) // sw)
    q_hi = smaller(ow - 1, tx // sw)
    me = y * w + xx
    acc = 0.0
    for p in range(p_lo, p_hi + 1):
        for q in range(q_lo, q_hi + 1):
            g = dout[b, ch, p, q]
            if mode == MAX:
                if argmax[b, ch, p, q] == me:
                    acc += g
            elif mode == AVG:
                acc += g / _window_count(p, q, kh, kw, sh, sw, h, w, top, bottom, left, right, include_pad)
            else:                                  # d sqrt(s) / dx = x / sqrt(s); 0 on an all-zero window
                o = out[b, ch, p, q]
                if o > 0:
                    acc += g * x[b, ch, y, xx] / o
    dx[b, ch, y, xx] = acc


# ----------------------------------------------------------------------------- host wrappers

def pool2d_output_cuda(x, mode, kernel, stride, padding, out_hw, count_include_pad=True):
    """Pooling on the GPU: ``(out, argmax)``; ``argmax`` (max pool only, else None) indexes the H*W plane.

    Same arguments and results as the Numba CPU kernel
    :func:`scratchface.kernels.pooling.pool2d_output_numba`: ``mode`` in
    ``{'max', 'avg', 'l2'}``, validated ``kernel``/``stride`` pairs, ``padding``
    ``(top, bottom, left, right)`` and the output size ``out_hw`` computed by
    ``scratchface.layers.pooling.pool_output_size``.
    """
    check_array(x, "x", ndim=4, dtype_kind="f")
    check_choice(mode, "mode", tuple(MODES))
    xp = array_module(x)
    n, c = x.shape[:2]
    out = xp.empty((n, c) + tuple(out_hw), dtype=x.dtype)
    argmax = xp.empty(out.shape if mode == "max" else (1, 1, 1, 1), dtype=np.int64)
    launch(pool2d_output_kernel, blocks_for(out.size), None, x, MODES[mode], kernel[0], kernel[1], stride[0],
           stride[1], *padding, bool(count_include_pad), out, argmax)
    return out, (argmax if mode == "max" else None)


def pool2d_dx_cuda(dout, x, out, argmax, mode, kernel, stride, padding, count_include_pad=True):
    """``dx`` of :func:`pool2d_output_cuda`: ``out`` is needed by L2 pooling, ``argmax`` by max pooling
    (None otherwise); the other arguments as given to the forward."""
    check_array(dout, "dout", ndim=4, dtype_kind="f")
    check_same_dtype(x, dout, "x", "dout")
    check_choice(mode, "mode", tuple(MODES))
    xp = array_module(dout, x)
    out = out if out is not None else xp.empty((1, 1, 1, 1), dtype=x.dtype)
    argmax = argmax if argmax is not None else xp.empty((1, 1, 1, 1), dtype=np.int64)
    dx = xp.empty(x.shape, dtype=x.dtype)
    launch(pool2d_dx_kernel, blocks_for(dx.size), None, dout, x, out, argmax, MODES[mode], *kernel, *stride,
           *padding, bool(count_include_pad), dx)
    return dx
