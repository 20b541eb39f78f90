"""2-D convolution (cross-correlation, as in every deep learning library), NCHW.

The readable reference loops over the ``KH x KW`` kernel offsets only: for one
offset ``(i, j)`` the input pixels that meet weight ``w[:, :, i, j]`` form a
strided slice of the padded input, one ``(N, C, OH, OW)`` block, and the whole
offset is one matrix product over the channels. ``KH * KW`` small products
instead of ``N * F * OH * OW * C * KH * KW`` scalar multiplications.

The fast path (``impl='auto'`` or ``'numba'`` for NumPy arrays) is
:mod:`scratchface.kernels.conv`: each Numba thread unrolls a chunk of rows (im2col)
and multiplies it by the weights in BLAS, one thread pool for both; for CuPy arrays
:mod:`scratchface.kernels.cuda.conv` (im2col kernel + cuBLAS). All are tested equal.
"""
from __future__ import annotations

from typing import NamedTuple

from .._validation import check_float_array, check_int_pair, check_padding
from ..backend import get_array_module
from ..gradcheck import GradcheckCase
from ._common import check_dout, check_impl, pad_spatial, window
from .activations import _check_alpha, prelu_forward

__all__ = ["conv2d_forward", "conv2d_backward", "conv2d_prelu", "conv2d_reference_forward",
           "conv2d_reference_backward", "conv_output_size", "Conv2dCache", "gradcheck_cases"]


class Conv2dCache(NamedTuple):
    """What ``conv2d_backward`` needs from the forward pass."""
    x: object          # (N, C, H, W) input
    w: object          # (F, C, KH, KW) weights
    has_bias: bool
    stride: tuple      # (sh, sw)
    padding: tuple     # (top, bottom, left, right)
    out_shape: tuple   # (N, F, OH, OW)
    impl: str          # 'reference' or 'numba'


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                     name: str = "kernel_size") -> int:
    """``floor((size + pad_before + pad_after - kernel) / stride) + 1``; raise if the kernel does not fit."""
    padded = size + pad_before + pad_after
    if kernel > padded:
        raise ValueError(f"{name} {kernel} is larger than the padded input ({size} + {pad_before} + "
                         f"{pad_after} = {padded}): use a smaller kernel or more padding")
    return (padded - kernel) // stride + 1


# ---------------------------------------------------------------- readable reference
def conv2d_reference_forward(x, w, b, stride, padding):
    """Readable convolution: one channel-contraction per kernel offset (see ``conv2d_forward``)."""
    xp = get_array_module(x, w)
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh = conv_output_size(h, kh, stride[0], padding[0], padding[1])
    ow = conv_output_size(wd, kw, stride[1], padding[2], padding[3])
    xpad = pad_spatial(x, padding)
    out = xp.zeros((n, f, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            patch = window(xpad, i, j, stride, (oh, ow))               # (N, C, OH, OW)
            out += xp.einsum("nchw,fc->nfhw", patch, w[:, :, i, j])     # sum over channels c
    if b is not None:
        out += b.reshape(1, f, 1, 1)
    return out


def conv2d_reference_backward(dout, x, w, has_bias, stride, padding):
    """Readable gradients ``(dx, dw, db)`` of the convolution (see ``conv2d_backward``)."""
    xp = get_array_module(dout, x)
    _, _, h, wd = x.shape
    _, _, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    xpad = pad_spatial(x, padding)
    dxpad = xp.zeros_like(xpad)
    dw = xp.zeros_like(w)
    for i in range(kh):
        for j in range(kw):
            patch = window(xpad, i, j, stride, (oh, ow))
            dw[:, :, i, j] = xp.einsum("nfhw,nchw->fc", dout, patch)
            window(dxpad, i, j, stride, (oh, ow))[...] += xp.einsum("nfhw,fc->nchw", dout, w[:, :, i, j])
    top, left = padding[0], padding[2]
    dx = dxpad[:, :, top:top + h, left:left + wd]
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return dx, dw, db


# ---------------------------------------------------------------- public, validated


def _check_params(x, w, b, names=("x", "w", "b")):
    check_float_array(x, names[0], ndim=4)
    check_float_array(w, names[1], ndim=4)
    if w.dtype != x.dtype:
        raise TypeError(f"{names[1]} must have the dtype of {names[0]} ({x.dtype}), got {w.dtype}")
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"{names[1]} has {w.shape[1]} input channels (shape (F, C, KH, KW) = "
                         f"{tuple(w.shape)}) but {names[0]} has {x.shape[1]} channels (axis 1 of NCHW)")
    if b is not None:
        check_float_array(b, names[2], ndim=1)
        if b.dtype != x.dtype:
            raise TypeError(f"{names[2]} must have the dtype of {names[0]} ({x.dtype}), got {b.dtype}")
        if b.shape[0] != w.shape[0]:
            raise ValueError(f"{names[2]} must have one value per filter ({w.shape[0]}), got shape {tuple(b.shape)}")


def conv2d_forward(x, w, b=None, *, stride=1, padding=0, impl="auto"):
    """2-D convolution (cross-correlation) of a batch of images with a bank of filters.

    Parameters
    ----------
    x : float array, shape (N, C, H, W)
        Input batch.
    w : float array, shape (F, C, KH, KW)
        ``F`` filters of ``C`` channels, ``KH x KW`` each; same dtype as ``x``.
    b : float array, shape (F,), optional
        One bias per filter; ``None`` for no bias.
    stride : int or (sh, sw)
    padding : int, (ph, pw) or (top, bottom, left, right)
        Zero padding. Four values give asymmetric padding, e.g. TensorFlow's
        ``'same'`` with an even kernel or stride 2 pads one more at the bottom/right.
    impl : {'auto', 'reference', 'numba', 'cuda'}
        ``'auto'``: Numba kernels for NumPy arrays, the CUDA kernels (im2col + cuBLAS) for CuPy.

    Returns
    -------
    out : array, shape (N, F, OH, OW)
        ``OH = floor((H + top + bottom - KH) / sh) + 1`` and likewise ``OW``.
    cache : Conv2dCache

    Raises
    ------
    TypeError
        Non-float arrays, arrays of different dtypes, bad ``stride``/``padding`` types.
    ValueError
        Wrong ranks, channel mismatch, NaN/inf, stride <= 0, kernel larger than the padded input.

    Notes
    -----
    With :math:`\\tilde x` the zero-padded input,

    .. math:: \\mathrm{out}[n, f, p, q] = b_f + \\sum_{c,i,j} w[f, c, i, j]\\,
              \\tilde x[n, c, s_h p + i, s_w q + j].

    The reference computes it as ``KH * KW`` contractions over ``c`` of a strided
    slice of :math:`\\tilde x`; the Numba path by the route measured fastest for the
    shape (the table in ``scratchface.kernels.conv``): mostly as an implicit GEMM whose
    register-blocked micro-kernel reads each patch where it lies in the channels-last
    input (``scratchface.kernels.implicit_conv``), on some shapes as ``cols @ W.T`` with
    the patches unrolled into columns (im2col), 1x1 convolutions as matrix products on
    NCHW as it is, and NN2's large 3x3 layers by Winograd F(2x2, 3x3)
    (``scratchface.kernels.winograd``; Lavin & Gray 2016).

    References
    ----------
    FaceNet (Schroff et al. 2015) table 2 (NN2) for the shapes benchmarked;
    CS231n "Convolutional Neural Networks" notes for im2col; Lavin & Gray, "Fast
    Algorithms for Convolutional Neural Networks" (CVPR 2016) for Winograd.
    """
    _check_params(x, w, b)
    stride = check_int_pair(stride, "stride")
    padding = check_padding(padding, "padding")
    impl = check_impl(impl, x, has_cuda=True)
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh = conv_output_size(h, kh, stride[0], padding[0], padding[1])
    ow = conv_output_size(wd, kw, stride[1], padding[2], padding[3])
    if impl == "numba":
        from ..kernels.conv import conv2d_output_numba  # noqa: PLC0415  (imports Numba: lazily)
        out = conv2d_output_numba(x, w, b, stride, padding)
    elif impl == "cuda":
        from ..kernels.cuda.conv import conv2d_output_cuda  # noqa: PLC0415  (imports numba.cuda, CuPy: lazily)
        out = conv2d_output_cuda(x, w, b, stride, padding)
    else:
        out = conv2d_reference_forward(x, w, b, stride, padding)
    return out, Conv2dCache(x, w, b is not None, stride, padding, (n, f, oh, ow), impl)


def conv2d_prelu(x, w, b, alpha, *, stride=1, padding=0, impl="auto"):
    """Convolution then PReLU, in one pass: the conv + PReLU block of MTCNN's nets, for inference.

    Parameters
    ----------
    x, w, b, stride, padding, impl
        As in :func:`conv2d_forward`.
    alpha : float array, shape (F,)
        One PReLU slope per filter (:func:`scratchface.layers.activations.prelu_forward`).

    Returns
    -------
    out : array, shape (N, F, OH, OW)
        ``prelu_forward(conv2d_forward(x, w, b)[0], alpha)[0]``, the same numbers. No cache:
        to train, call the two layers (their caches give the backward).

    Notes
    -----
    .. math:: \\mathrm{out} = \\max(z, 0) + \\alpha_f \\min(z, 0), \\qquad
              z = \\mathrm{conv2d}(x, w) + b_f

    The Numba path applies the bias and the slope where the GEMM's result is written
    (the epilogue), instead of a second pass over the output.
    """
    _check_params(x, w, b)
    _check_alpha(alpha, x.dtype, w.shape[0], "of the output (one per filter of w)")
    if check_impl(impl, x, has_cuda=True) != "numba":
        out, _ = conv2d_forward(x, w, b, stride=stride, padding=padding, impl=impl)
        return prelu_forward(out, alpha, impl=impl)[0]
    stride = check_int_pair(stride, "stride")
    padding = check_padding(padding, "padding")
    for axis in range(2):                       # the kernel must fit (clear error, as conv2d_forward)
        conv_output_size(x.shape[2 + axis], w.shape[2 + axis], stride[axis], *padding[2 * axis:2 * axis + 2])
    from ..kernels.conv import conv2d_output_numba  # noqa: PLC0415  (imports Numba: lazily)
    return conv2d_output_numba(x, w, b, stride, padding, alpha)


def conv2d_backward(dout, cache):
    """Gradients of ``conv2d_forward``.

    Parameters
    ----------
    dout : float array, shape (N, F, OH, OW)
        Upstream gradient, the shape of the forward output.
    cache : Conv2dCache

    Returns
    -------
    dx : array, shape (N, C, H, W)
    dw : array, shape (F, C, KH, KW)
    db : array, shape (F,), or None when the forward had no bias

    Notes
    -----
    .. math::
        \\frac{\\partial L}{\\partial w[f,c,i,j]} = \\sum_{n,p,q} \\mathrm{dout}[n,f,p,q]\\,
            \\tilde x[n,c,s_h p+i,s_w q+j], \\qquad
        \\frac{\\partial L}{\\partial b_f} = \\sum_{n,p,q} \\mathrm{dout}[n,f,p,q],

    .. math::
        \\frac{\\partial L}{\\partial \\tilde x[n,c,s_h p+i,s_w q+j]} \\mathrel{+}=
            \\sum_f \\mathrm{dout}[n,f,p,q]\\, w[f,c,i,j],

    and ``dx`` is the interior of :math:`\\partial L/\\partial \\tilde x` (the padding is
    cut off). In matrix form: ``dW = dout @ cols.T``, ``dcols = W.T @ dout``, then
    col2im adds the columns back onto the image.
    """
    if not isinstance(cache, Conv2dCache):
        raise TypeError(f"cache must be the Conv2dCache returned by conv2d_forward, got {type(cache).__name__}")
    dout = check_dout(dout, cache.out_shape, cache.x.dtype)
    if cache.impl == "numba":
        from ..kernels.conv import conv2d_grads_numba  # noqa: PLC0415  (imports Numba: lazily)
        return conv2d_grads_numba(dout, cache.x, cache.w, cache.has_bias, cache.stride, cache.padding)
    if cache.impl == "cuda":
        from ..kernels.cuda.conv import conv2d_grads_cuda  # noqa: PLC0415  (imports numba.cuda, CuPy: lazily)
        return conv2d_grads_cuda(dout, cache.x, cache.w, cache.has_bias, cache.stride, cache.padding)
    return conv2d_reference_backward(dout, cache.x, cache.w, cache.has_bias, cache.stride, cache.padding)


def gradcheck_cases(rng):
    """A few small convolutions for ``scratchface gradcheck``."""
    def case(name, n, c, h, w_, f, k, **kw):
        kh, kwid = (k, k) if isinstance(k, int) else k
        return GradcheckCase(name, conv2d_forward, conv2d_backward,
                             {"x": rng.standard_normal((n, c, h, w_)),
                              "w": rng.standard_normal((f, c, kh, kwid)),
                              "b": rng.standard_normal(f)}, kw)
    return [
        case("conv2d 3x3 pad 1", 2, 3, 5, 6, 4, 3, padding=1),
        case("conv2d 3x3 stride 2", 2, 2, 7, 9, 3, 3, stride=2),
        case("conv2d 2x2 'same' (0,1,0,1)", 1, 2, 5, 5, 3, 2, padding=(0, 1, 0, 1)),
        case("conv2d 1x1", 2, 4, 3, 3, 5, 1),
    ]
