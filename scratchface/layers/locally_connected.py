"""Locally connected 2-D layer: a convolution whose filters are *not* shared across positions.

DeepFace's L4-L6 (Taigman et al. 2014): after alignment every face region sits
at the same place in the image, so the eyes can learn other filters than the
mouth. Each output position ``(p, q)`` has its own bank of ``F`` filters.

Weight layout (our choice; no common standard exists)::

    w : (OH, OW, F, C, KH, KW)   w[p, q] is the (F, C, KH, KW) filter bank of output pixel (p, q)
    b : (F, OH, OW)              one bias per filter and output pixel

so ``w[p, q]`` reads like a convolution's weights. The readable reference loops
over the ``KH x KW`` kernel offsets, as the convolution does; the fast path
(:mod:`scratchface.kernels.locally_connected`) unrolls the patches of every
position into ``(OH*OW, N, C*KH*KW)`` and does one batch of matrix products.
"""
from __future__ import annotations

from typing import NamedTuple

from .._validation import check_float_array, check_int_pair, check_padding
from ..backend import get_array_module
from ..gradcheck import GradcheckCase
from ._common import check_dout, check_impl, pad_spatial, window
from .conv import conv_output_size

__all__ = ["locally_connected2d_forward", "locally_connected2d_backward", "LocallyConnectedCache",
           "gradcheck_cases"]


class LocallyConnectedCache(NamedTuple):
    """What ``locally_connected2d_backward`` needs from the forward pass."""
    x: object
    w: object
    has_bias: bool
    stride: tuple
    padding: tuple
    impl: str


def locally_connected2d_reference_forward(x, w, b, stride, padding):
    """Readable forward: one contraction over the channels per kernel offset (see the public docstring)."""
    xp = get_array_module(x, w)
    oh, ow, f, _, kh, kw = w.shape
    xpad = pad_spatial(x, padding)
    out = xp.zeros((x.shape[0], f, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            patch = window(xpad, i, j, stride, (oh, ow))                    # (N, C, OH, OW)
            out += xp.einsum("nchw,hwfc->nfhw", patch, w[:, :, :, :, i, j])  # own filter per (h, w)
    if b is not None:
        out += b[None]
    return out


def locally_connected2d_reference_backward(dout, x, w, has_bias, stride, padding):
    """Readable ``(dx, dw, db)`` (see ``locally_connected2d_backward``)."""
    xp = get_array_module(dout, x)
    oh, ow, _, _, kh, kw = w.shape
    h, wd = x.shape[2:]
    xpad = pad_spatial(x, padding)
    dxpad = xp.zeros_like(xpad)
    dw = xp.zeros_like(w)
    for i in range(kh):
        for j in range(kw):
            patch = window(xpad, i, j, stride, (oh, ow))
            dw[:, :, :, :, i, j] = xp.einsum("nfhw,nchw->hwfc", dout, patch)
            window(dxpad, i, j, stride, (oh, ow))[...] += xp.einsum("nfhw,hwfc->nchw", dout, w[:, :, :, :, i, j])
    dx = dxpad[:, :, padding[0]:padding[0] + h, padding[2]:padding[2] + wd]
    db = dout.sum(axis=0) if has_bias else None
    return dx, dw, db


def locally_connected2d_forward(x, w, b=None, *, stride=1, padding=0, impl="auto"):
    """Locally connected layer: a convolution with a separate filter bank at every output pixel.

    Parameters
    ----------
    x : float array, shape (N, C, H, W)
    w : float array, shape (OH, OW, F, C, KH, KW)
        ``w[p, q]`` is the filter bank of output pixel ``(p, q)``; ``OH, OW`` must be the
        output size the stride and padding give.
    b : float array, shape (F, OH, OW), optional
    stride : int or (sh, sw)
    padding : int, (ph, pw) or (top, bottom, left, right)
        Zero padding (DeepFace uses none).
    impl : {'auto', 'reference', 'numba'}

    Returns
    -------
    out : array, shape (N, F, OH, OW)
    cache : LocallyConnectedCache

    Raises
    ------
    TypeError
        Non-float arrays or mixed dtypes.
    ValueError
        Wrong ranks, channel mismatch, ``w.shape[:2]`` not the output size, ``b`` of the wrong
        shape, NaN/inf, stride <= 0, kernel larger than the padded input.

    Notes
    -----
    .. math:: \\mathrm{out}[n,f,p,q] = b[f,p,q] + \\sum_{c,i,j} w[p,q,f,c,i,j]\\,
              \\tilde x[n,c,s_h p+i,s_w q+j]

    the convolution's formula with ``w`` indexed by the output pixel as well. Parameters:
    ``OH*OW`` times a convolution's, which is why DeepFace's L4-L6 hold most of its 120M.

    References
    ----------
    Taigman et al., "DeepFace", CVPR 2014, section 3 (L4: 16 9x9, L5: 16 7x7, L6: 16 5x5).
    """
    check_float_array(x, "x", ndim=4)
    check_float_array(w, "w", ndim=6)
    if w.dtype != x.dtype:
        raise TypeError(f"w must have the dtype of x ({x.dtype}), got {w.dtype}")
    stride = check_int_pair(stride, "stride")
    padding = check_padding(padding, "padding")
    impl = check_impl(impl, x)
    woh, wow, f, c, kh, kw = w.shape
    if c != x.shape[1]:
        raise ValueError(f"w has {c} input channels (shape (OH, OW, F, C, KH, KW) = {tuple(w.shape)}) "
                         f"but x has {x.shape[1]} channels (axis 1 of NCHW)")
    oh = conv_output_size(x.shape[2], kh, stride[0], padding[0], padding[1])
    ow = conv_output_size(x.shape[3], kw, stride[1], padding[2], padding[3])
    if (woh, wow) != (oh, ow):
        raise ValueError(f"w must have one filter bank per output pixel: shape[:2] = ({oh}, {ow}) for this "
                         f"input, stride and padding, got ({woh}, {wow})")
    if b is not None:
        check_float_array(b, "b", ndim=3)
        if b.dtype != x.dtype:
            raise TypeError(f"b must have the dtype of x ({x.dtype}), got {b.dtype}")
        if tuple(b.shape) != (f, oh, ow):
            raise ValueError(f"b must have shape (F, OH, OW) = {(f, oh, ow)}, got {tuple(b.shape)}")
    if impl == "numba":
        from ..kernels import locally_connected as _k  # noqa: PLC0415  (imports Numba: lazily)
        out = _k.locally_connected2d_output_numba(x, w, b, stride, padding)
    else:
        out = locally_connected2d_reference_forward(x, w, b, stride, padding)
    return out, LocallyConnectedCache(x, w, b is not None, stride, padding, impl)


def locally_connected2d_backward(dout, cache):
    """Gradients of ``locally_connected2d_forward``.

    Parameters
    ----------
    dout : float array, shape (N, F, OH, OW)
    cache : LocallyConnectedCache

    Returns
    -------
    dx : array, shape (N, C, H, W)
    dw : array, shape (OH, OW, F, C, KH, KW)
    db : array, shape (F, OH, OW), or None without bias

    Notes
    -----
    As the convolution's, with no sum over the positions for the parameters:

    .. math:: \\frac{\\partial L}{\\partial w[p,q,f,c,i,j]} = \\sum_n \\mathrm{dout}[n,f,p,q]\\,
              \\tilde x[n,c,s_h p+i,s_w q+j], \\qquad
              \\frac{\\partial L}{\\partial b[f,p,q]} = \\sum_n \\mathrm{dout}[n,f,p,q],

    .. math:: \\frac{\\partial L}{\\partial \\tilde x[n,c,s_h p+i,s_w q+j]} \\mathrel{+}=
              \\sum_f \\mathrm{dout}[n,f,p,q]\\, w[p,q,f,c,i,j].
    """
    if not isinstance(cache, LocallyConnectedCache):
        raise TypeError("cache must be the LocallyConnectedCache returned by locally_connected2d_forward, "
                        f"got {type(cache).__name__}")
    x, w = cache.x, cache.w
    dout = check_dout(dout, (x.shape[0], w.shape[2], w.shape[0], w.shape[1]), x.dtype)
    if cache.impl == "numba":
        from ..kernels import locally_connected as _k  # noqa: PLC0415  (imports Numba: lazily)
        return _k.locally_connected2d_grads_numba(dout, x, w, cache.has_bias, cache.stride, cache.padding)
    return locally_connected2d_reference_backward(dout, x, w, cache.has_bias, cache.stride, cache.padding)


def gradcheck_cases(rng):
    """Small locally connected layers for ``scratchface gradcheck``."""
    def case(name, n, c, h, wd, f, k, stride=1, padding=0):
        oh = (h + 2 * padding - k) // stride + 1
        ow = (wd + 2 * padding - k) // stride + 1
        return GradcheckCase(name, locally_connected2d_forward, locally_connected2d_backward,
                             {"x": rng.standard_normal((n, c, h, wd)),
                              "w": rng.standard_normal((oh, ow, f, c, k, k)),
                              "b": rng.standard_normal((f, oh, ow))},
                             {"stride": stride, "padding": padding})
    return [
        case("locally_connected2d 3x3", 2, 2, 5, 6, 3, 3),
        case("locally_connected2d 2x2/2 pad 1", 2, 2, 5, 5, 2, 2, stride=2, padding=1),
    ]
