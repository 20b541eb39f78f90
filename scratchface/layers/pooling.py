"""Max, average and L2 pooling over ``KH x KW`` windows, NCHW, with PyTorch's size rules.

Output size along one axis, with ``P = pad_before + pad_after``::

    floor_or_ceil((H + P - K) / S) + 1

and, with ``ceil_mode=True``, one window less when the last one would start
beyond the input and its left padding (``(OH - 1) * S >= H + pad_before``) -- exactly
``torch.nn.MaxPool2d``. Like PyTorch, each padding must be at most half the
kernel, so every window holds at least one real pixel.

The readable reference loops over the ``KH x KW`` kernel offsets: for one
offset the pixels every window sees form one strided slice of the padded input.
The fast path (``impl='auto'``/``'numba'``, NumPy arrays) is
:mod:`scratchface.kernels.pooling`: direct loops, parallel over the ``N * C``
planes.

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
from .conv import _check_impl, _pad, _window, check_dout

__all__ = ["max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
           "l2_pool2d_forward", "l2_pool2d_backward", "pool_output_size", "PoolCache", "gradcheck_cases"]


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


def _unpad(dxpad, x, padding):
    h, w = x.shape[2:]
    return dxpad[:, :, padding[0]:padding[0] + h, padding[2]:padding[2] + w]


# ---------------------------------------------------------------- readable reference
def pool2d_reference_forward(x, mode, kernel, stride, padding, out_hw, count_include_pad=True):
    """Readable pooling: returns ``(out, argmax)``; ``argmax`` (max pool only) is the offset ``i*KW+j``."""
    xp = get_array_module(x)
    full = _full_padding(x, kernel, stride, padding, out_hw)
    xpad = _pad(x, full, value=-np.inf if mode == "max" else 0.0)
    out = argmax = None
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            patch = _window(xpad, i, j, stride, out_hw)                  # (N, C, OH, OW)
            if mode == "max":
                if out is None:
                    out, argmax = patch.copy(), xp.zeros(patch.shape, dtype=np.int32)
                else:
                    better = patch > out                                # strict: ties keep the first
                    out = xp.where(better, patch, out)
                    argmax[better] = i * kernel[1] + j
            else:
                term = patch if mode == "avg" else patch * patch
                out = term.copy() if out is None else out + term
    if mode == "avg":
        out /= _window_counts(x, kernel, stride, padding, out_hw, count_include_pad)
    elif mode == "l2":
        out = xp.sqrt(out)
    return out, argmax


def pool2d_reference_backward(dout, cache):
    """Readable pooling backward (see the ``*_pool2d_backward`` docstrings)."""
    xp = get_array_module(dout)
    x, kernel, stride = cache.x, cache.kernel_size, cache.stride
    out_hw = dout.shape[2:]
    full = _full_padding(x, kernel, stride, cache.padding, out_hw)
    xpad = _pad(x, full) if cache.mode == "l2" else None
    dxpad = xp.zeros(x.shape[:2] + (x.shape[2] + full[0] + full[1], x.shape[3] + full[2] + full[3]),
                     dtype=x.dtype)
    if cache.mode == "avg":
        g = dout / _window_counts(x, kernel, stride, cache.padding, out_hw, cache.count_include_pad)
    elif cache.mode == "l2":                                            # d sqrt(s) = ds / (2 sqrt(s))
        safe = xp.where(cache.out > 0, cache.out, 1)
        g = xp.where(cache.out > 0, dout / safe, 0)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            target = _window(dxpad, i, j, stride, out_hw)
            if cache.mode == "max":
                target += xp.where(cache.argmax == i * kernel[1] + j, dout, 0)
            elif cache.mode == "avg":
                target += g
            else:
                target += _window(xpad, i, j, stride, out_hw) * g
    return _unpad(dxpad, x, cache.padding)


# ---------------------------------------------------------------- public, validated
def _pool_forward(mode, x, kernel_size, stride, padding, ceil_mode, count_include_pad, impl):
    kernel, stride, padding, ceil_mode, out_hw = _setup(x, kernel_size, stride, padding, ceil_mode)
    if not isinstance(count_include_pad, (bool, np.bool_)):
        raise TypeError(f"count_include_pad must be True or False, got {count_include_pad!r}")
    impl = _check_impl(impl, x, has_cuda=True)
    if impl == "numba":
        from ..kernels import pooling as _k  # noqa: PLC0415  (imports Numba: lazily)
        out, argmax = _k.pool2d_forward(x, mode, kernel, stride, padding, out_hw, bool(count_include_pad))
    elif impl == "cuda":
        from ..gpu import pool2d_forward_gpu  # noqa: PLC0415  (imports CuPy and numba.cuda: lazily)
        out, argmax = pool2d_forward_gpu(x, mode, kernel, stride, padding, out_hw, bool(count_include_pad))
    else:
        out, argmax = pool2d_reference_forward(x, mode, kernel, stride, padding, out_hw, count_include_pad)
    cache = PoolCache(mode, x, out if mode == "l2" else None, argmax, kernel, stride, padding, ceil_mode,
                      bool(count_include_pad), impl)
    return out, cache


def _pool_backward(mode, dout, cache):
    if not isinstance(cache, PoolCache) or cache.mode != mode:
        what = f"a {cache.mode} pool's PoolCache" if isinstance(cache, PoolCache) else type(cache).__name__
        raise TypeError(f"cache must be the PoolCache returned by {mode}_pool2d_forward, got {what}")
    x = cache.x
    out_hw = tuple(pool_output_size(x.shape[2 + a], cache.kernel_size[a], cache.stride[a], cache.padding[2 * a],
                                    cache.padding[2 * a + 1], cache.ceil_mode) for a in range(2))
    dout = check_dout(dout, x.shape[:2] + out_hw, x.dtype)
    if cache.impl == "numba":
        from ..kernels import pooling as _k  # noqa: PLC0415
        return _k.pool2d_backward(dout, cache)
    if cache.impl == "cuda":
        from ..gpu import pool2d_backward_gpu  # noqa: PLC0415
        return pool2d_backward_gpu(dout, cache)
    return pool2d_reference_backward(dout, cache)


_PARAMS_DOC = """
    Parameters
    ----------
    x : float array, shape (N, C, H, W)
    kernel_size : int or (KH, KW)
    stride : int or (sh, sw), optional
        Default: ``kernel_size`` (non-overlapping windows), as in PyTorch.
    padding : int, (ph, pw) or (top, bottom, left, right)
        Each at most half the kernel.
    ceil_mode : bool
        Round the number of windows up (PyTorch's rule, see the module docstring).
    impl : {'auto', 'reference', 'numba', 'cuda'}

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
"""


def max_pool2d_forward(x, *, kernel_size, stride=None, padding=0, ceil_mode=False, impl="auto"):
    return _pool_forward("max", x, kernel_size, stride, padding, ceil_mode, True, impl)


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


max_pool2d_forward.__doc__ = """Max pooling: the largest value of each window.
""" + _PARAMS_DOC + """
    Notes
    -----
    .. math:: \\mathrm{out}[n,c,p,q] = \\max_{(h,w) \\in W_{pq}} \\tilde x[n,c,h,w],
       \\quad W_{pq} = [s_h p, s_h p + K_H) \\times [s_w q, s_w q + K_W)

    over the ``-inf``-padded input :math:`\\tilde x`; same values as ``torch.nn.MaxPool2d``.

    References
    ----------
    FaceNet (Schroff et al. 2015) tables 1-2 (pool1, pool2: 3x3, stride 2); DeepFace M2.
"""
avg_pool2d_forward.__doc__ = """Average pooling: the mean of each window.
""" + _PARAMS_DOC.replace("    impl :", """    count_include_pad : bool
        Whether the zero padding counts in the divisor (``torch.nn.AvgPool2d``'s option).
    impl :""") + """
    Notes
    -----
    .. math:: \\mathrm{out}[n,c,p,q] = \\frac{1}{|W_{pq}|} \\sum_{(h,w) \\in W_{pq}} \\tilde x[n,c,h,w]

    with :math:`|W_{pq}|` the window clipped to the padded input (``count_include_pad``)
    or to the real input (otherwise); same values as ``torch.nn.AvgPool2d``.

    References
    ----------
    FaceNet (Schroff et al. 2015) table 2 (avg pool before the embedding).
"""
l2_pool2d_forward.__doc__ = """L2 pooling: the square root of the sum of squares of each window.
""" + _PARAMS_DOC + """
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
