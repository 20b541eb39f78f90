"""Activation functions: ReLU, PReLU (one slope per channel) and maxout (``p`` pieces).

Each is elementwise (or a max over a few neighbouring channels), memory-bound
work that NumPy (or CuPy) does at nearly full speed, so there is one
implementation, the readable one, except for PReLU's forward pass, which
MTCNN runs after every convolution: its NumPy expression makes three passes
and two temporaries, the Numba kernel (``impl='numba'``) one pass. Layout ``(N, C, ...)``: axis 1 is the
channel / feature axis, so the same functions serve dense ``(N, C)`` and
convolutional ``(N, C, H, W)`` activations.
"""
from __future__ import annotations

from typing import NamedTuple

from .._validation import check_float_array, check_positive_int, nonfinite_error
from ..backend import get_array_module, is_cupy_array
from ..gradcheck import GradcheckCase
from ._common import check_cache, check_dout, check_impl, per_channel

__all__ = ["relu_forward", "relu_backward", "prelu_forward", "prelu_backward",
           "maxout_forward", "maxout_backward", "ReluCache", "PreluCache", "MaxoutCache",
           "gradcheck_cases"]


# ----------------------------------------------------------------------------- ReLU

class ReluCache(NamedTuple):
    """What ``relu_backward`` needs: where the input was positive."""
    positive: object   # bool array, shape of x
    dtype: object      # dtype of x (dx is returned in it)


def relu_forward(x, *, impl="auto"):
    """Rectified linear unit, ``max(x, 0)`` elementwise.

    Parameters
    ----------
    x : float array, any shape (e.g. (N, C, H, W) or (N, D))
    impl : {'auto', 'reference', 'numba'}
        'reference' is the NumPy code below (any array module); 'numba' one parallel pass that also
        checks finiteness (:mod:`scratchface.kernels.activations`), equal to it; 'auto' is 'numba'
        for NumPy and 'reference' for CuPy arrays.

    Returns
    -------
    out : array, shape and dtype of ``x``
    cache : ReluCache

    Raises
    ------
    TypeError
        ``x`` is not a float array.
    ValueError
        ``x`` contains NaN or infinity.

    Notes
    -----
    .. math:: \\mathrm{out} = \\max(x, 0), \\qquad
              \\frac{\\partial L}{\\partial x} = \\mathrm{dout} \\cdot [x > 0]

    The derivative at exactly 0 is taken as 0 (as in PyTorch).

    References
    ----------
    Nair & Hinton, "Rectified linear units improve restricted Boltzmann machines", ICML 2010.
    """
    impl = check_impl(impl, x)
    if impl == "numba":  # one pass: out, the mask and the finiteness check; same values as below
        check_float_array(x, "x", finite=False)
        from ..kernels.activations import relu_output_numba  # noqa: PLC0415  (imports Numba: lazily)
        out, positive, nonfinite = relu_output_numba(x)
        if nonfinite:
            raise nonfinite_error("x")
        return out, ReluCache(positive, x.dtype)
    check_float_array(x, "x")
    xp = get_array_module(x)
    out = xp.maximum(x, 0)
    return out, ReluCache(x > 0, x.dtype)


def relu_backward(dout, cache, *, impl="auto"):
    """Gradient of ``relu_forward``: ``dx = dout * [x > 0]``.

    Parameters
    ----------
    dout : float array, shape of ``x``
    cache : ReluCache
    impl : {'auto', 'reference', 'numba'}
        As in ``relu_forward``.

    Returns
    -------
    dx : array, shape of ``x``
    """
    check_cache(cache, ReluCache, "relu_forward")
    impl = check_impl(impl, cache.positive)
    if impl == "numba":  # one pass: the product and the finiteness check; same values as below
        dout = check_dout(dout, cache.positive.shape, cache.dtype, finite=False)
        from ..kernels.activations import relu_grad_numba  # noqa: PLC0415  (imports Numba: lazily)
        dx, nonfinite = relu_grad_numba(dout, cache.positive)
        if nonfinite:
            raise nonfinite_error("dout")
        return dx
    dout = check_dout(dout, cache.positive.shape, cache.dtype)
    return dout * cache.positive


# ----------------------------------------------------------------------------- PReLU

class PreluCache(NamedTuple):
    """What ``prelu_backward`` needs."""
    x: object       # (N, C, ...)
    alpha: object   # (C,)




def _check_alpha(alpha, dtype, channels, of):
    """``alpha``: a finite float array of shape ``(channels,)`` and the given dtype (one slope per channel ``of``)."""
    check_float_array(alpha, "alpha", ndim=1)
    if alpha.dtype != dtype:
        raise TypeError(f"alpha must have the dtype of x ({dtype}), got {alpha.dtype}")
    if alpha.shape[0] != channels:
        raise ValueError(f"alpha must have shape (C,) = ({channels},), one slope per channel {of}, "
                         f"got {tuple(alpha.shape)}")


def prelu_forward(x, alpha, *, impl="auto"):
    """Parametric ReLU with one learned slope per channel (MTCNN's activation).

    Parameters
    ----------
    x : float array, shape (N, C) or (N, C, H, W) (any ``(N, C, ...)``)
    alpha : float array, shape (C,)
        The slope for negative inputs of each channel (axis 1 of ``x``); same dtype as ``x``.
    impl : {'auto', 'reference', 'numba', 'cuda'}
        'reference' is the NumPy expression ``where(x > 0, x, alpha * x)``;
        'numba' one fused pass (:mod:`scratchface.kernels.activations`),
        equal to it; 'auto' picks 'numba' for NumPy and 'cuda' for CuPy arrays.

    Returns
    -------
    out : array, shape of ``x``
    cache : PreluCache

    Raises
    ------
    TypeError
        Non-float arrays, or ``alpha`` of another dtype than ``x``.
    ValueError
        ``x`` of rank < 2, ``alpha`` not of shape ``(C,)``, NaN or infinity.

    Notes
    -----
    .. math:: \\mathrm{out}_{n,c,\\dots} = \\begin{cases} x & x > 0 \\\\ \\alpha_c\\, x & x \\le 0 \\end{cases}

    Backward:

    .. math:: \\frac{\\partial L}{\\partial x} = \\mathrm{dout} \\cdot
              \\begin{cases} 1 & x > 0 \\\\ \\alpha_c & x \\le 0 \\end{cases}, \\qquad
              \\frac{\\partial L}{\\partial \\alpha_c} =
              \\sum_{n, h, w} \\mathrm{dout}_{n,c,h,w}\\; x_{n,c,h,w}\\, [x_{n,c,h,w} \\le 0]

    Same as ``torch.nn.PReLU(num_parameters=C)``.

    References
    ----------
    He et al., "Delving deep into rectifiers", ICCV 2015; Zhang et al., MTCNN, 2016.
    """
    check_float_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must be an (N, C) or (N, C, H, W) array (rank >= 2), got shape {tuple(x.shape)}")
    _check_alpha(alpha, x.dtype, x.shape[1], f"of x (axis 1 of shape {tuple(x.shape)})")
    impl = check_impl(impl, x, has_cuda=True)
    if impl == "cuda":  # the fused CUDA kernel; same values as the reference line below
        from ..kernels.cuda.prelu import prelu_output_cuda  # noqa: PLC0415  (imports numba.cuda, CuPy: lazily)
        return prelu_output_cuda(x, alpha), PreluCache(x, alpha)
    if impl == "numba":  # one fused pass; same values as the reference line below
        from ..kernels.activations import prelu_output_numba  # noqa: PLC0415  (imports Numba: lazily)
        return prelu_output_numba(x, alpha), PreluCache(x, alpha)
    xp = get_array_module(x, alpha)
    out = xp.where(x > 0, x, per_channel(alpha, x.ndim) * x)
    return out, PreluCache(x, alpha)


def prelu_backward(dout, cache):
    """Gradients of ``prelu_forward``.

    Parameters
    ----------
    dout : float array, shape of ``x``
    cache : PreluCache

    Returns
    -------
    dx : array, shape of ``x``
    dalpha : array, shape (C,)
    """
    check_cache(cache, PreluCache, "prelu_forward")
    x, alpha = cache
    dout = check_dout(dout, x.shape, x.dtype)
    if is_cupy_array(x):
        from ..kernels.cuda.prelu import prelu_grads_cuda  # noqa: PLC0415  (imports numba.cuda, CuPy: lazily)
        return prelu_grads_cuda(dout, x, alpha)
    xp = get_array_module(x)
    negative = x <= 0
    dx = xp.where(negative, per_channel(alpha, x.ndim) * dout, dout)
    other_axes = (0,) + tuple(range(2, x.ndim))
    dalpha = (dout * x * negative).sum(axis=other_axes)
    return dx, dalpha


# ----------------------------------------------------------------------------- maxout

class MaxoutCache(NamedTuple):
    """What ``maxout_backward`` needs."""
    argmax: object      # (N, M, ...) index k in [0, pieces) of the chosen piece
    x_shape: tuple      # (N, M * pieces, ...)
    pieces: int
    dtype: object       # dtype of x


def maxout_forward(x, *, pieces):
    """Maxout: the maximum over groups of ``pieces`` consecutive channels.

    Parameters
    ----------
    x : float array, shape (N, D) or (N, D, H, W) with ``D = M * pieces``
    pieces : int
        ``p``, the number of linear pieces each output takes the max over
        (FaceNet NN1's fc1 and fc2 use ``p = 2``).

    Returns
    -------
    out : array, shape (N, M) or (N, M, H, W)
    cache : MaxoutCache

    Raises
    ------
    TypeError
        ``x`` is not a float array; ``pieces`` not an int.
    ValueError
        ``x`` of rank < 2; ``pieces`` <= 0 or not dividing ``D``; NaN or infinity.

    Notes
    -----
    Grouping: output ``j`` takes the consecutive inputs ``j*p, ..., j*p + p - 1``,

    .. math:: \\mathrm{out}[:, j] = \\max_{0 \\le k < p} x[:, j p + k]

    (for 4-D input the same along the channel axis, at every pixel), i.e.
    ``x.reshape(N, M, p, ...).max(axis=2)``. The preceding dense (or 1x1 conv)
    layer has ``M * p`` outputs; maxout is that layer's ``p`` affine pieces
    followed by the max. Backward sends ``dout`` to the chosen piece only; on a
    tie, to the first maximum (lowest ``k``):

    .. math:: \\frac{\\partial L}{\\partial x[:, j p + k]} = \\mathrm{dout}[:, j]\\,
              [k = \\arg\\max_{k'} x[:, j p + k']]

    References
    ----------
    Goodfellow et al., "Maxout networks", ICML 2013; FaceNet (Schroff et al. 2015) table 1.
    """
    check_float_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must be an (N, D) or (N, D, H, W) array (rank >= 2), got shape {tuple(x.shape)}")
    pieces = check_positive_int(pieces, "pieces")
    n, d = x.shape[:2]
    if d % pieces:
        raise ValueError(f"pieces ({pieces}) must divide the width of x (axis 1 has {d}): "
                         f"maxout groups {pieces} consecutive channels per output")
    xp = get_array_module(x)
    grouped = x.reshape((n, d // pieces, pieces) + tuple(x.shape[2:]))
    argmax = grouped.argmax(axis=2)                                  # first maximum on ties
    out = xp.take_along_axis(grouped, xp.expand_dims(argmax, 2), axis=2).squeeze(2)
    return out, MaxoutCache(argmax, tuple(x.shape), pieces, x.dtype)


def maxout_backward(dout, cache):
    """Gradient of ``maxout_forward``: ``dout`` goes to the chosen piece of each group.

    Parameters
    ----------
    dout : float array, shape (N, M) or (N, M, H, W)
    cache : MaxoutCache

    Returns
    -------
    dx : array, shape (N, M * pieces) or (N, M * pieces, H, W)
    """
    check_cache(cache, MaxoutCache, "maxout_forward")
    argmax, x_shape, pieces, dtype = cache
    dout = check_dout(dout, argmax.shape, dtype)
    xp = get_array_module(dout)
    k = xp.arange(pieces).reshape((1, 1, pieces) + (1,) * (len(x_shape) - 2))
    chosen = xp.expand_dims(argmax, 2) == k                         # one-hot over the pieces
    dx = chosen * xp.expand_dims(dout, 2)                           # (N, M, p, ...)
    return dx.reshape(x_shape)


# ----------------------------------------------------------------------------- gradcheck

def _away_from_zero(rng, shape, margin=0.1):
    """Normal samples pushed at least ``margin`` away from 0 (ReLU / PReLU kinks)."""
    x = rng.standard_normal(shape)
    return x + margin * (2 * (x >= 0) - 1)


def _distinct(rng, shape):
    """Samples whose values are all at least ~0.1 apart (no near-ties for maxout)."""
    size = 1
    for s in shape:
        size *= s
    return (rng.permutation(size) * 0.1 - 0.05 * size).reshape(shape) + 0.01 * rng.random(shape)


def gradcheck_cases(rng):
    """Small ReLU, PReLU and maxout cases for ``scratchface gradcheck``."""
    return [
        GradcheckCase("relu", relu_forward, relu_backward, {"x": _away_from_zero(rng, (2, 3, 4, 5))}),
        GradcheckCase("prelu (N, C, H, W)", prelu_forward, prelu_backward,
                      {"x": _away_from_zero(rng, (2, 3, 4, 5)), "alpha": rng.uniform(-0.5, 0.5, 3)}),
        GradcheckCase("prelu (N, C)", prelu_forward, prelu_backward,
                      {"x": _away_from_zero(rng, (4, 6)), "alpha": rng.uniform(0.1, 0.3, 6)}),
        GradcheckCase("maxout p=2", maxout_forward, maxout_backward, {"x": _distinct(rng, (3, 8))},
                      {"pieces": 2}),
        GradcheckCase("maxout p=3 (N, C, H, W)", maxout_forward, maxout_backward,
                      {"x": _distinct(rng, (2, 6, 3, 3))}, {"pieces": 3}),
    ]
