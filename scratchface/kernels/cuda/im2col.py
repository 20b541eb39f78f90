"""im2col and col2im as CUDA kernels: the data movement around convolution's one GEMM.

With ``K = C*KH*KW`` and ``P = OH*OW``, the column matrix ``cols`` has shape
``(K, N*P)``: row ``(c, i, j)`` holds, for every output pixel ``(n, p, q)``,
the input pixel that weight ``w[:, c, i, j]`` meets there,

.. math:: \\mathrm{cols}[(c,i,j),\\ nP + pOW + q] = \\tilde x[n, c, s_h p + i, s_w q + j]

(zero in the padding). Then ``out = W.reshape(F, K) @ cols`` is the whole
convolution (cuBLAS, via ``cupy.matmul``), and in the backward pass
``dcols = W.T @ dout`` goes back onto the image with col2im. The layout is the
one of the CPU kernels (:mod:`scratchface.kernels.conv`), so the two can be
read side by side.

* ``im2col``: one thread per element of ``cols``; consecutive threads write
  consecutive columns (coalesced writes).
* ``col2im``: one thread per *input* pixel, which gathers the ``KH*KW`` (at
  most) column entries that came from it. No two threads write the same
  pixel, so no atomics: the sum is in a fixed order and deterministic.
"""
from __future__ import annotations

from numba import cuda

__all__ = ["im2col", "col2im"]


@cuda.jit(cache=True)
def im2col(x, kh, kw, sh, sw, top, left, oh, ow, cols):
    """``cols (K, N*OH*OW)`` from ``x (N, C, H, W)``; launch with one thread per element of ``cols``."""
    n, _, h, w = x.shape
    npix = oh * ow
    ncols = n * npix
    idx = cuda.grid(1)
    if idx >= cols.shape[0] * ncols:
        return
    r = idx // ncols                   # row of cols: (channel, kernel row, kernel col)
    col = idx - r * ncols              # column of cols: (image, output row, output col)
    ci = r // (kh * kw)
    i = (r // kw) % kh
    j = r % kw
    b = col // npix
    p = (col // ow) % oh
    q = col % ow
    y = p * sh + i - top               # input row seen by this kernel offset at output (p, q)
    xx = q * sw + j - left
    if 0 <= y < h and 0 <= xx < w:
        cols[r, col] = x[b, ci, y, xx]
    else:
        cols[r, col] = 0


@cuda.jit(cache=True)
def col2im(dcols, kh, kw, sh, sw, top, left, oh, ow, dx):
    """``dx (N, C, H, W)`` from ``dcols (K, N*OH*OW)``; one thread per input pixel, gathering.

    Input pixel ``(y, x)`` met kernel offset ``i`` at output row ``p`` when
    ``p * sh + i - top == y``, i.e. when ``y + top - i`` is a non-negative
    multiple of ``sh`` and ``p = (y + top - i) / sh < OH``; likewise for columns.
    """
    n, c, h, w = dx.shape
    npix = oh * ow
    idx = cuda.grid(1)
    if idx >= n * c * h * w:
        return
    xx = idx % w
    y = (idx // w) % h
    ci = (idx // (w * h)) % c
    b = idx // (w * h * c)
    acc = dcols[0, 0] * 0              # a zero of the array's dtype
    for i in range(kh):
        ty = y + top - i
        if ty < 0 or ty % sh != 0:
            continue
        p = ty // sh
        if p >= oh:
            continue
        for j in range(kw):
            tx = xx + left - j
            if tx < 0 or tx % sw != 0:
                continue
            q = tx // sw
            if q >= ow:
                continue
            acc += dcols[(ci * kh + i) * kw + j, b * npix + p * ow + q]
    dx[b, ci, y, xx] = acc
