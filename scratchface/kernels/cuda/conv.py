"""Convolution on the GPU: the im2col / col2im CUDA kernels around one cuBLAS GEMM, and their host wrappers.

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

Host wrappers (CuPy arrays in and out): :func:`conv2d_output_cuda` and
:func:`conv2d_grads_cuda`, the ``impl='cuda'`` path of
:func:`scratchface.layers.conv.conv2d_forward` / ``conv2d_backward``.
"""
from __future__ import annotations

from numba import cuda

from ..._validation import check_array, check_int_pair, check_padding
from ._launch import array_module, blocks_for, check_same_dtype, launch

__all__ = ["im2col", "col2im", "conv2d_output_cuda", "conv2d_grads_cuda"]


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


# ----------------------------------------------------------------------------- host wrappers

def _geometry(x, w, stride, padding):
    """Validated stride and padding, output size, and whether the convolution is a bare GEMM (1x1)."""
    stride = check_int_pair(stride, "stride")
    padding = check_padding(padding, "padding")
    h, wd = x.shape[2:]
    kh, kw = w.shape[2:]
    oh = (h + padding[0] + padding[1] - kh) // stride[0] + 1
    ow = (wd + padding[2] + padding[3] - kw) // stride[1] + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel {kh}x{kw} is larger than the padded input {tuple(x.shape[2:])} + {padding}")
    pointwise = kh == kw == 1 and stride == (1, 1) and not any(padding)
    return stride, padding, oh, ow, pointwise


def _im2col(x, kh, kw, stride, padding, oh, ow):
    """``cols (C*KH*KW, N*OH*OW)`` of ``x``, by the :func:`im2col` kernel."""
    xp = array_module(x)
    n, c = x.shape[:2]
    cols = xp.empty((c * kh * kw, n * oh * ow), dtype=x.dtype)
    launch(im2col, blocks_for(cols.size), None, x, kh, kw, stride[0], stride[1], padding[0], padding[2],
           oh, ow, cols)
    return cols


def conv2d_output_cuda(x, w, b=None, stride=1, padding=0):
    """Convolution output on the GPU: im2col kernel, then ``W (F, C*KH*KW) @ cols`` in cuBLAS.

    Parameters
    ----------
    x : CuPy array, shape (N, C, H, W), float32 or float64
    w : CuPy array, shape (F, C, KH, KW), dtype of ``x``
    b : CuPy array, shape (F,), optional
    stride : int or (sh, sw)
    padding : int, (ph, pw) or (top, bottom, left, right)

    Returns
    -------
    out : CuPy array, shape (N, F, OH, OW)

    Notes
    -----
    ``cols`` has shape ``(C*KH*KW, N*OH*OW)`` (one GEMM for the whole batch);
    the product ``(F, N*OH*OW)`` is transposed to NCHW in the same pass that
    adds the bias. A 1x1 convolution with stride 1 and no padding needs no
    im2col: the input already is the column matrix of each image, and the
    batched product ``W @ x[n]`` writes NCHW directly.
    """
    check_array(x, "x", ndim=4, dtype_kind="f")
    check_array(w, "w", ndim=4, dtype_kind="f")
    check_same_dtype(x, w, "x", "w")
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"w has {w.shape[1]} input channels but x has {x.shape[1]} (axis 1 of NCHW)")
    xp = array_module(x, w) if b is None else array_module(x, w, b)
    stride, padding, oh, ow, pointwise = _geometry(x, w, stride, padding)
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    w2 = w.reshape(f, c * kh * kw)
    if pointwise:
        out = xp.matmul(w2, x.reshape(n, c, h * wd))                      # (N, F, H*W), batched GEMM
        if b is not None:
            out += b.reshape(1, f, 1)
    else:
        cols = _im2col(x, kh, kw, stride, padding, oh, ow)
        prod = xp.matmul(w2, cols).reshape(f, n, oh * ow)                 # (F, N, P)
        out = xp.empty((n, f, oh * ow), dtype=x.dtype)
        if b is None:
            out[...] = prod.transpose(1, 0, 2)
        else:
            xp.add(prod.transpose(1, 0, 2), b.reshape(1, f, 1), out=out)
    return out.reshape(n, f, oh, ow)


def conv2d_grads_cuda(dout, x, w, has_bias, stride, padding):
    """Gradients ``(dx, dw, db)`` of :func:`conv2d_output_cuda` (``db`` is None without bias).

    Same arguments as the Numba CPU kernel :func:`scratchface.kernels.conv.conv2d_grads_numba`.

    Notes
    -----
    With ``dout`` as ``(F, N*OH*OW)``: ``dW = dout @ cols.T`` and
    ``dcols = W.T @ dout`` (cuBLAS), then the col2im kernel adds each column
    back onto the pixels it came from. ``cols`` is recomputed from ``x``
    (cheaper than keeping it between the passes).
    """
    check_array(dout, "dout", ndim=4, dtype_kind="f")
    check_array(x, "x", ndim=4, dtype_kind="f")
    check_array(w, "w", ndim=4, dtype_kind="f")
    check_same_dtype(x, dout, "x", "dout")
    check_same_dtype(x, w, "x", "w")
    xp = array_module(dout, x, w)
    stride, padding, oh, ow, pointwise = _geometry(x, w, stride, padding)
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    if tuple(dout.shape) != (n, f, oh, ow):
        raise ValueError(f"dout must have the shape of the forward output {(n, f, oh, ow)}, got {tuple(dout.shape)}")
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    w2 = w.reshape(f, c * kh * kw)
    if pointwise:
        d3 = dout.reshape(n, f, h * wd)
        dw = xp.tensordot(d3, x.reshape(n, c, h * wd), axes=([0, 2], [0, 2])).reshape(w.shape)
        dx = xp.matmul(w2.T, d3).reshape(x.shape)
        return dx, dw, db
    dout_t = xp.ascontiguousarray(dout.reshape(n, f, oh * ow).transpose(1, 0, 2)).reshape(f, n * oh * ow)
    cols = _im2col(x, kh, kw, stride, padding, oh, ow)
    dw = xp.matmul(dout_t, cols.T).reshape(w.shape)
    dcols = xp.matmul(w2.T, dout_t)                                       # (C*KH*KW, N*P)
    dx = xp.empty(x.shape, dtype=x.dtype)
    launch(col2im, blocks_for(dx.size), None, dcols, kh, kw, stride[0], stride[1], padding[0], padding[2],
           oh, ow, dx)
    return dx, dw, db
