"""Max, average and L2 pooling over ``KH x KW`` windows, NCHW, with PyTorch's size rules.

Output size along one axis, with ``P = pad_before + pad_after``::

    floor_or_ceil((H + P - K) / S) + 1

and, with ``ceil_mode=True``, one window less when the last one would start
beyond the input and its left padding (``(OH - 1) * S >= H + pad_before``) -- exactly
``torch.nn.MaxPool2d``. Like PyTorch, each padding must be at most half the
kernel, so every window holds at least one real pixel.

Each pooling has its own readable reference, forward and backward
(``max_pool2d_reference_forward`` ... ``l2_pool2d_reference_backward``): a loop
over the ``KH x KW`` kernel offsets, where for one offset the pixels every
window sees form one strided slice of the padded input. The fast paths are
:mod:`scratchface.kernels.pooling` (Numba, NumPy arrays: direct loops, parallel
over the ``N * C`` planes) and :mod:`scratchface.kernels.cuda.pooling` (CuPy
arrays), one kernel for the three modes, tested equal to each reference.

* max pool: padding is ``-inf`` (never chosen); ties go to the first maximum in
  row-major window order; the gradient goes to the chosen pixel.
* average pool: ``count_include_pad`` as in ``torch.nn.AvgPool2d`` (the divisor
  counts the zero padding but never the part of a ``ceil_mode`` window that
  hangs off the padded input).
* L2 pool (FaceNet NN2): :math:`\\sqrt{\\sum_{window} x^2}`, the square root of the
  sum of squares, as ``torch.nn.LPPool2d(2)``. ``LPPool2d`` has no padding;
  here padding is zeros (they add nothing to the sum). Where a ``ceil_mode``
  window is partial, ``LPPool2d`` multiplies the mean by the full ``KH*KW`` (so
  its value is not the sum over the window); we return the true sum.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_float_array, check_int_pair, check_padding
from ..backend import get_array_module
from ..gradcheck import GradcheckCase
from ._common import check_dout, check_impl, pad_spatial, window

__all__ = ["max_pool2d", "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
           "l2_pool2d_forward", "l2_pool2d_backward", "max_pool2d_reference_forward", "max_pool2d_reference_backward",
           "avg_pool2d_reference_forward", "avg_pool2d_reference_backward", "l2_pool2d_reference_forward",
           "l2_pool2d_reference_backward", "pool_output_size", "PoolCache", "gradcheck_cases"]


class PoolCache(NamedTuple):
    """What the pooling backward passes need."""
    mode: str            # 'max', 'avg' or 'l2'
    x: object            # (N, C, H, W)
    out: object          # (N, C, OH, OW)
    argmax: object       # max pool: flat index into the padded window (reference) or input plane (numba)
    kernel_size: tuple
    stride: tuple
    padding: tuple       # (top, bottom, left, right)
    ceil_mode: bool
    count_include_pad: bool
    impl: str


def pool_output_size(size, kernel, stride, pad_before, pad_after, ceil_mode, name="kernel_size"):
    """Number of windows along one axis, PyTorch's rule (see the module docstring)."""
    padded = size + pad_before + pad_after
    if kernel > padded:
        raise ValueError(f"{name} {kernel} is larger than the padded input ({size} + {pad_before} + "
                         f"{pad_after} = {padded}): use a smaller kernel or more padding")
    if ceil_mode:
        out = -(-(padded - kernel) // stride) + 1
        if (out - 1) * stride >= size + pad_before:
            out -= 1
    else:
        out = (padded - kernel) // stride + 1
    return out


def _setup(x, kernel_size, stride, padding, ceil_mode):
    check_float_array(x, "x", ndim=4)
    kernel = check_int_pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else check_int_pair(stride, "stride")
    padding = check_padding(padding, "padding")
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode must be True or False, got {ceil_mode!r}")
    for pad, k, side in zip(padding, (kernel[0], kernel[0], kernel[1], kernel[1]),
                            ("top", "bottom", "left", "right")):
        if pad > k // 2:
            raise ValueError(f"padding ({side} {pad}) must be at most half the kernel size ({k} // 2 = "
                             f"{k // 2}), as in PyTorch, so that every window holds a real pixel")
    h, w = x.shape[2:]
    oh = pool_output_size(h, kernel[0], stride[0], padding[0], padding[1], ceil_mode)
    ow = pool_output_size(w, kernel[1], stride[1], padding[2], padding[3], ceil_mode)
    return kernel, stride, padding, bool(ceil_mode), (oh, ow)


def _full_padding(x, kernel, stride, padding, out_hw):
    """Padding that also covers ``ceil_mode`` windows hanging off the bottom/right edge."""
    (h, w), (oh, ow) = x.shape[2:], out_hw
    top, bottom, left, right = padding
    extra_h = max(0, (oh - 1) * stride[0] + kernel[0] - (h + top + bottom))
    extra_w = max(0, (ow - 1) * stride[1] + kernel[1] - (w + left + right))
    return (top, bottom + extra_h, left, right + extra_w)


def _window_counts(x, kernel, stride, padding, out_hw, count_include_pad):
    """Divisor of the average pool per output pixel, shape (OH, OW)."""
    xp = get_array_module(x)
    counts = []
    for axis in range(2):
        size, k, s = x.shape[2 + axis], kernel[axis], stride[axis]
        before, after = padding[2 * axis], padding[2 * axis + 1]
        start = xp.arange(out_hw[axis]) * s                      # window start in padded coordinates
        if count_include_pad:
            counts.append(xp.minimum(start + k, size + before + after) - start)
        else:
            counts.append(xp.minimum(start + k, before + size) - xp.maximum(start, before))
    return (counts[0][:, None] * counts[1][None, :]).astype(x.dtype)


def _padded_zeros(x, kernel, stride, padding, out_hw):
    """Zeros of the fully padded input's shape: where the backward passes gather ``dx`` before unpadding."""
    top, bottom, left, right = _full_padding(x, kernel, stride, padding, out_hw)
    shape = x.shape[:2] + (x.shape[2] + top + bottom, x.shape[3] + left + right)
    return get_array_module(x).zeros(shape, dtype=x.dtype)


def _unpad(dxpad, x, padding):
    """The interior of a padded gradient: the ``(H, W)`` part that lies on the input."""
    h, w = x.shape[2:]
    return dxpad[:, :, padding[0]:padding[0] + h, padding[2]:padding[2] + w]


# ---------------------------------------------------------------- readable references
# One function per pooling and pass. Each loops over the KH x KW kernel offsets (i, j): the pixel
# that offset sees in every window is one strided slice of the padded input (``window``), so a
# whole offset is one array operation. ``_full_padding`` adds, at the bottom/right, the part of a
# ``ceil_mode`` window that hangs off the padded input.

def max_pool2d_reference_forward(x, kernel, stride, padding, out_hw):
    """Readable max pooling: ``(out, argmax)``, ``argmax`` the offset ``i*KW + j`` of each window's maximum.

    .. math:: \\mathrm{out}[n,c,p,q] = \\max_{0 \\le i < K_H,\\ 0 \\le j < K_W}
              \\tilde x[n, c, s_h p + i, s_w q + j]

    over the ``-inf``-padded input :math:`\\tilde x` (padding is never chosen). A later offset
    replaces the running maximum only when strictly larger: ties go to the first maximum in
    row-major window order.
    """
    xp = get_array_module(x)
    xpad = pad_spatial(x, _full_padding(x, kernel, stride, padding, out_hw), value=-np.inf)
    out = window(xpad, 0, 0, stride, out_hw).copy()
    argmax = xp.zeros(out.shape, dtype=np.int32)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            patch = window(xpad, i, j, stride, out_hw)                  # (N, C, OH, OW)
            better = patch > out                                        # strict: ties keep the first
            out = xp.where(better, patch, out)
            argmax[better] = i * kernel[1] + j
    return out, argmax


def max_pool2d_reference_backward(dout, x, argmax, kernel, stride, padding):
    """Readable max pooling backward: each window's ``dout`` goes to the pixel it chose.

    .. math:: \\frac{\\partial L}{\\partial \\tilde x[n,c,s_h p+i,s_w q+j]} \\mathrel{+}=
              \\mathrm{dout}[n,c,p,q]\\,[\\mathrm{argmax}[n,c,p,q] = i K_W + j]

    then the padding is cut off. Overlapping windows add up.
    """
    out_hw = dout.shape[2:]
    dxpad = _padded_zeros(x, kernel, stride, padding, out_hw)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            chosen = argmax == i * kernel[1] + j
            window(dxpad, i, j, stride, out_hw)[...] += get_array_module(dout).where(chosen, dout, 0)
    return _unpad(dxpad, x, padding)


def avg_pool2d_reference_forward(x, kernel, stride, padding, out_hw, count_include_pad=True):
    """Readable average pooling: the sum over the kernel offsets, divided by each window's size.

    .. math:: \\mathrm{out}[n,c,p,q] = \\frac{1}{|W_{pq}|} \\sum_{i,j} \\tilde x[n,c,s_h p+i,s_w q+j]

    over the zero-padded input; :math:`|W_{pq}|` counts the padding or not (``count_include_pad``).
    """
    xpad = pad_spatial(x, _full_padding(x, kernel, stride, padding, out_hw))
    out = get_array_module(x).zeros(x.shape[:2] + tuple(out_hw), dtype=x.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            out += window(xpad, i, j, stride, out_hw)
    return out / _window_counts(x, kernel, stride, padding, out_hw, count_include_pad)


def avg_pool2d_reference_backward(dout, x, kernel, stride, padding, count_include_pad=True):
    """Readable average pooling backward: every pixel of window :math:`W_{pq}` receives
    :math:`\\mathrm{dout}[n,c,p,q] / |W_{pq}|`; overlapping windows add up."""
    out_hw = dout.shape[2:]
    share = dout / _window_counts(x, kernel, stride, padding, out_hw, count_include_pad)
    dxpad = _padded_zeros(x, kernel, stride, padding, out_hw)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            window(dxpad, i, j, stride, out_hw)[...] += share
    return _unpad(dxpad, x, padding)


def l2_pool2d_reference_forward(x, kernel, stride, padding, out_hw):
    """Readable L2 pooling: the square root of the sum of squares over the kernel offsets.

    .. math:: \\mathrm{out}[n,c,p,q] = \\sqrt{\\textstyle\\sum_{i,j} \\tilde x[n,c,s_h p+i,s_w q+j]^2}

    over the zero-padded input (zeros add nothing to the sum).
    """
    xp = get_array_module(x)
    xpad = pad_spatial(x, _full_padding(x, kernel, stride, padding, out_hw))
    total = xp.zeros(x.shape[:2] + tuple(out_hw), dtype=x.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            patch = window(xpad, i, j, stride, out_hw)
            total += patch * patch
    return xp.sqrt(total)


def l2_pool2d_reference_backward(dout, x, out, kernel, stride, padding):
    """Readable L2 pooling backward: pixel :math:`x_{hw}` of window :math:`W_{pq}` receives
    :math:`\\mathrm{dout}_{pq}\\, x_{hw} / o_{pq}` (0 where :math:`o_{pq} = 0`); windows add up."""
    xp = get_array_module(dout)
    out_hw = dout.shape[2:]
    full = _full_padding(x, kernel, stride, padding, out_hw)
    xpad = pad_spatial(x, full)
    g = xp.where(out > 0, dout / xp.where(out > 0, out, 1), 0)        # d sqrt(s) = ds / (2 sqrt(s))
    dxpad = _padded_zeros(x, kernel, stride, padding, out_hw)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            window(dxpad, i, j, stride, out_hw)[...] += window(xpad, i, j, stride, out_hw) * g
    return _unpad(dxpad, x, padding)


# ---------------------------------------------------------------- public, validated
def _pool_forward(mode, x, kernel_size, stride, padding, ceil_mode, count_include_pad, impl):
    kernel, stride, padding, ceil_mode, out_hw = _setup(x, kernel_size, stride, padding, ceil_mode)
    if not isinstance(count_include_pad, (bool, np.bool_)):
        raise TypeError(f"count_include_pad must be True or False, got {count_include_pad!r}")
    count_include_pad = bool(count_include_pad)
    impl = check_impl(impl, x, has_cuda=True)
    if impl == "numba":
        from ..kernels.pooling import pool2d_output_numba  # noqa: PLC0415  (imports Numba: lazily)
        out, argmax = pool2d_output_numba(x, mode, kernel, stride, padding, out_hw, count_include_pad)
    elif impl == "cuda":
        from ..kernels.cuda.pooling import pool2d_output_cuda  # noqa: PLC0415  (imports numba.cuda, CuPy: lazily)
        out, argmax = pool2d_output_cuda(x, mode, kernel, stride, padding, out_hw, count_include_pad)
    elif mode == "max":
        out, argmax = max_pool2d_reference_forward(x, kernel, stride, padding, out_hw)
    elif mode == "avg":
        out, argmax = avg_pool2d_reference_forward(x, kernel, stride, padding, out_hw, count_include_pad), None
    else:
        out, argmax = l2_pool2d_reference_forward(x, kernel, stride, padding, out_hw), None
    cache = PoolCache(mode, x, out if mode == "l2" else None, argmax, kernel, stride, padding, ceil_mode,
                      count_include_pad, impl)
    return out, cache


def _pool_backward(mode, dout, cache):
    if not isinstance(cache, PoolCache) or cache.mode != mode:
        what = f"a {cache.mode} pool's PoolCache" if isinstance(cache, PoolCache) else type(cache).__name__
        raise TypeError(f"cache must be the PoolCache returned by {mode}_pool2d_forward, got {what}")
    x, kernel, stride, padding = cache.x, cache.kernel_size, cache.stride, cache.padding
    out_hw = tuple(pool_output_size(x.shape[2 + a], kernel[a], stride[a], padding[2 * a], padding[2 * a + 1],
                                    cache.ceil_mode) for a in range(2))
    dout = check_dout(dout, x.shape[:2] + out_hw, x.dtype)
    fields = (x, cache.out, cache.argmax, mode, kernel, stride, padding, cache.count_include_pad)
    if cache.impl == "numba":
        from ..kernels.pooling import pool2d_dx_numba  # noqa: PLC0415  (imports Numba: lazily)
        return pool2d_dx_numba(dout, *fields)
    if cache.impl == "cuda":
        from ..kernels.cuda.pooling import pool2d_dx_cuda  # noqa: PLC0415  (imports numba.cuda, CuPy: lazily)
        return pool2d_dx_cuda(dout, *fields)
    if mode == "max":
        return max_pool2d_reference_backward(dout, x, cache.argmax, kernel, stride, padding)
    if mode == "avg":
        return avg_pool2d_reference_backward(dout, x, kernel, stride, padding, cache.count_include_pad)
    return l2_pool2d_reference_backward(dout, x, cache.out, kernel, stride, padding)


def max_pool2d_forward(x, *, kernel_size, stride=None, padding=0, ceil_mode=False, impl="auto"):
    """Max pooling: the largest value of each window.

    Parameters
    ----------
    x : float array, shape (N, C, H, W)
    kernel_size : int or (KH, KW)
    stride : int or (sh, sw), optional
        Default: ``kernel_size`` (non-overlapping windows), as in PyTorch.
    padding : int, (ph, pw) or (top, bottom, left, right)
        Each at most half the kernel; padding is ``-inf``, never chosen.
    ceil_mode : bool
        Round the number of windows up (PyTorch's rule, see the module docstring).
    impl : {'auto', 'reference', 'numba', 'cuda'}
        ``'reference'``: :func:`max_pool2d_reference_forward`; ``'auto'``: the Numba kernel for
        NumPy arrays, the CUDA kernel for CuPy arrays.

    Returns
    -------
    out : array, shape (N, C, OH, OW)
    cache : PoolCache

    Raises
    ------
    TypeError
        Non-float ``x``, bad types for the hyper-parameters.
    ValueError
        Wrong rank, NaN/inf, kernel/stride <= 0, padding over half the kernel, kernel larger than
        the padded input.

    Notes
    -----
    .. math:: \\mathrm{out}[n,c,p,q] = \\max_{(h,w) \\in W_{pq}} \\tilde x[n,c,h,w],
       \\quad W_{pq} = [s_h p, s_h p + K_H) \\times [s_w q, s_w q + K_W)

    over the ``-inf``-padded input :math:`\\tilde x`; same values as ``torch.nn.MaxPool2d``.
    Ties go to the first maximum in row-major window order.

    References
    ----------
    FaceNet (Schroff et al. 2015) tables 1-2 (pool1, pool2: 3x3, stride 2); DeepFace M2.
    """
    return _pool_forward("max", x, kernel_size, stride, padding, ceil_mode, True, impl)


def max_pool2d(x, *, kernel_size, stride=None, padding=0, ceil_mode=False, impl="auto"):
    """Max pooling for inference: :func:`max_pool2d_forward`'s ``out``, without the cache.

    Same arguments, checks and values. No argmax is recorded, so the Numba path
    (:func:`scratchface.kernels.pooling.max_pool2d_values_numba`) can take the maximum
    separably, over the window's rows, then its columns. To train, use
    :func:`max_pool2d_forward` and :func:`max_pool2d_backward`.

    Returns
    -------
    out : array, shape (N, C, OH, OW)
    """
    kernel, stride, padding, _, out_hw = _setup(x, kernel_size, stride, padding, ceil_mode)
    if check_impl(impl, x, has_cuda=True) != "numba":
        return _pool_forward("max", x, kernel_size, stride, padding, ceil_mode, True, impl)[0]
    from ..kernels.pooling import max_pool2d_values_numba  # noqa: PLC0415  (imports Numba: lazily)
    return max_pool2d_values_numba(x, kernel, stride, padding, out_hw)


def max_pool2d_backward(dout, cache):
    """Gradient of ``max_pool2d_forward``: ``dx`` of shape (N, C, H, W).

    Notes
    -----
    .. math:: \\frac{\\partial L}{\\partial x[n,c,h,w]} = \\sum_{(p,q):\\ (h,w) = \\arg\\max W_{pq}}
              \\mathrm{dout}[n,c,p,q]

    each window's gradient goes to its (first) maximum; overlapping windows add up.
    """
    return _pool_backward("max", dout, cache)


def avg_pool2d_forward(x, *, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                       impl="auto"):
    """Average pooling: the mean of each window.

    Parameters
    ----------
    x : float array, shape (N, C, H, W)
    kernel_size : int or (KH, KW)
    stride : int or (sh, sw), optional
        Default: ``kernel_size`` (non-overlapping windows), as in PyTorch.
    padding : int, (ph, pw) or (top, bottom, left, right)
        Zeros, each at most half the kernel.
    ceil_mode : bool
        Round the number of windows up (PyTorch's rule, see the module docstring).
    count_include_pad : bool
        Whether the zero padding counts in the divisor (``torch.nn.AvgPool2d``'s option).
    impl : {'auto', 'reference', 'numba', 'cuda'}
        ``'reference'``: :func:`avg_pool2d_reference_forward`.

    Returns
    -------
    out : array, shape (N, C, OH, OW)
    cache : PoolCache

    Raises
    ------
    TypeError
        Non-float ``x``, bad types for the hyper-parameters.
    ValueError
        Wrong rank, NaN/inf, kernel/stride <= 0, padding over half the kernel, kernel larger than
        the padded input.

    Notes
    -----
    .. math:: \\mathrm{out}[n,c,p,q] = \\frac{1}{|W_{pq}|} \\sum_{(h,w) \\in W_{pq}} \\tilde x[n,c,h,w]

    with :math:`|W_{pq}|` the window clipped to the padded input (``count_include_pad``)
    or to the real input (otherwise); same values as ``torch.nn.AvgPool2d``.

    References
    ----------
    FaceNet (Schroff et al. 2015) table 2 (avg pool before the embedding).
    """
    return _pool_forward("avg", x, kernel_size, stride, padding, ceil_mode, count_include_pad, impl)


def avg_pool2d_backward(dout, cache):
    """Gradient of ``avg_pool2d_forward``: ``dx`` of shape (N, C, H, W).

    Notes
    -----
    .. math:: \\frac{\\partial L}{\\partial x[n,c,h,w]} = \\sum_{(p,q):\\ (h,w) \\in W_{pq}}
              \\frac{\\mathrm{dout}[n,c,p,q]}{|W_{pq}|}
    """
    return _pool_backward("avg", dout, cache)


def l2_pool2d_forward(x, *, kernel_size, stride=None, padding=0, ceil_mode=False, impl="auto"):
    """L2 pooling: the square root of the sum of squares of each window.

    Parameters
    ----------
    x : float array, shape (N, C, H, W)
    kernel_size : int or (KH, KW)
    stride : int or (sh, sw), optional
        Default: ``kernel_size`` (non-overlapping windows), as in PyTorch.
    padding : int, (ph, pw) or (top, bottom, left, right)
        Zeros, each at most half the kernel.
    ceil_mode : bool
        Round the number of windows up (PyTorch's rule, see the module docstring).
    impl : {'auto', 'reference', 'numba', 'cuda'}
        ``'reference'``: :func:`l2_pool2d_reference_forward`.

    Returns
    -------
    out : array, shape (N, C, OH, OW)
    cache : PoolCache

    Raises
    ------
    TypeError
        Non-float ``x``, bad types for the hyper-parameters.
    ValueError
        Wrong rank, NaN/inf, kernel/stride <= 0, padding over half the kernel, kernel larger than
        the padded input.

    Notes
    -----
    .. math:: \\mathrm{out}[n,c,p,q] = \\sqrt{\\textstyle\\sum_{(h,w) \\in W_{pq}} \\tilde x[n,c,h,w]^2}

    over the zero-padded input. Equals ``torch.nn.LPPool2d(2)`` for full windows without
    padding (LPPool2d has no padding; on ``ceil_mode``'s partial windows it scales the
    mean by ``KH*KW`` instead of summing; we sum).

    References
    ----------
    FaceNet (Schroff et al. 2015) table 2 (NN2: "L2" pooling, 3x3, stride 1 in the inception blocks).
    """
    return _pool_forward("l2", x, kernel_size, stride, padding, ceil_mode, True, impl)


def l2_pool2d_backward(dout, cache):
    """Gradient of ``l2_pool2d_forward``: ``dx`` of shape (N, C, H, W).

    Notes
    -----
    With :math:`o_{pq} = \\sqrt{\\sum_{(h,w)\\in W_{pq}} x_{hw}^2}`,

    .. math:: \\frac{\\partial L}{\\partial x_{hw}} = \\sum_{(p,q):\\ (h,w) \\in W_{pq}}
              \\mathrm{dout}_{pq}\\, \\frac{x_{hw}}{o_{pq}},

    taken as 0 where :math:`o_{pq} = 0` (an all-zero window; the square root has no
    derivative there, 0 is a subgradient).
    """
    return _pool_backward("l2", dout, cache)


def gradcheck_cases(rng):
    """Small pools for ``scratchface gradcheck`` (max-pool inputs without ties)."""
    def distinct(shape):  # magnitudes in [0.5, 1.5), at least 0.5 / size apart, random signs
        size = int(np.prod(shape))
        values = (rng.permutation(size).reshape(shape) + 0.5 * rng.random(shape)) / size + 0.5
        return values * rng.choice([-1.0, 1.0], size=shape)
    return [
        GradcheckCase("max_pool2d 3x3/2 ceil", max_pool2d_forward, max_pool2d_backward,
                      {"x": distinct((2, 2, 6, 7))}, {"kernel_size": 3, "stride": 2, "ceil_mode": True}),
        GradcheckCase("avg_pool2d 3x3/2 pad 1", avg_pool2d_forward, avg_pool2d_backward,
                      {"x": distinct((2, 2, 5, 6))}, {"kernel_size": 3, "stride": 2, "padding": 1}),
        GradcheckCase("l2_pool2d 3x3/1 pad 1", l2_pool2d_forward, l2_pool2d_backward,
                      {"x": distinct((2, 2, 5, 5))}, {"kernel_size": 3, "stride": 1, "padding": 1}),
    ]
