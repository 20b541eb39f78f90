"""Normalisation layers: local response normalisation, batch normalisation, L2 normalisation.

* ``lrn``: AlexNet's local response normalisation across channels, in the form
  of ``torch.nn.LocalResponseNorm`` (FaceNet NN1's ``rnorm1``/``rnorm2``, NN2's
  ``norm``).
* ``batch_norm``: per-channel standardisation with batch statistics (train) or
  running statistics (eval), ``(N, C)`` or ``(N, C, H, W)``.
* ``l2_normalize``: scale each embedding to unit length (FaceNet's last layer),
  as ``torch.nn.functional.normalize``.

All are a handful of whole-array NumPy (or CuPy) operations, bandwidth-bound,
so there is one readable implementation, except for LRN, whose power
``D^{-beta}`` is a scalar ``powf`` per element in NumPy: its Numba kernel
(:mod:`scratchface.kernels.normalization`, ``impl='numba'``, the default for NumPy
arrays) fuses the passes and takes ``beta = 3/4`` as two square roots, tested equal.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_float_array, check_in_range, check_positive_float, check_positive_int
from ..backend import get_array_module
from ..gradcheck import GradcheckCase
from ._common import check_axis, check_cache, check_dout, check_impl, per_channel

__all__ = ["lrn_forward", "lrn_backward", "batch_norm_forward", "batch_norm_backward",
           "l2_normalize_forward", "l2_normalize_backward", "LrnCache", "BatchNormCache",
           "L2NormalizeCache", "gradcheck_cases"]


# ----------------------------------------------------------------------------- LRN

class LrnCache(NamedTuple):
    """What ``lrn_backward`` needs."""
    x: object          # (N, C, ...)
    denom: object      # k + alpha / size * (window sum of x^2), shape of x
    size: int
    alpha: float
    beta: float
    impl: str = "reference"   # 'reference' or 'numba': the backward's path


def _channel_window_sum(v, before, after):
    """``s[:, c] = sum(v[:, c - before : c + after + 1])`` along axis 1, zeros outside ``[0, C)``."""
    xp = get_array_module(v)
    c = v.shape[1]
    pad = [(0, 0)] * v.ndim
    pad[1] = (before, after)
    vpad = xp.pad(v, pad)
    total = xp.zeros_like(v)
    for i in range(before + after + 1):       # one shifted slice per window position
        total += vpad[:, i:i + c]
    return total


def lrn_forward(x, *, size, alpha=1e-4, beta=0.75, k=1.0, impl="auto"):
    """Local response normalisation across channels (``torch.nn.LocalResponseNorm``).

    Parameters
    ----------
    x : float array, shape (N, C, H, W) (any ``(N, C, ...)``)
    size : int
        ``n``, the number of neighbouring channels in the window.
    alpha, beta, k : float
        Scale, exponent and additive constant (defaults are PyTorch's).
    impl : {'auto', 'reference', 'numba'}
        ``'reference'``: the NumPy lines of this function; ``'auto'``: the Numba kernel
        (:mod:`scratchface.kernels.normalization`) for NumPy arrays, the reference for CuPy.

    Returns
    -------
    out : array, shape of ``x``
    cache : LrnCache

    Raises
    ------
    TypeError
        Non-float ``x``; ``size`` not an int; a hyper-parameter not a number.
    ValueError
        Rank < 2, ``size`` <= 0, ``alpha`` < 0, ``beta`` < 0, ``k`` <= 0, NaN or infinity.

    Notes
    -----
    .. math:: \\mathrm{out}_c = x_c\\, D_c^{-\\beta}, \\qquad
              D_c = k + \\frac{\\alpha}{n} \\sum_{c' = c - \\lfloor n/2 \\rfloor}^{c + \\lfloor (n-1)/2 \\rfloor}
              x_{c'}^2

    with channels outside ``[0, C)`` counting as zero (PyTorch pads ``floor(n/2)``
    channels before and ``floor((n-1)/2)`` after, so an even ``n`` looks one
    channel further back than forward). Note ``alpha / n``: PyTorch (and
    Caffe) divide by the window size, AlexNet's paper does not.

    Backward, with :math:`W(j) = \\{c : j \\in \\text{window}(c)\\}`:

    .. math:: \\frac{\\partial L}{\\partial x_j} = \\mathrm{dout}_j D_j^{-\\beta}
              - \\frac{2 \\alpha \\beta}{n}\\, x_j \\sum_{c \\in W(j)} \\mathrm{dout}_c\\, x_c\\, D_c^{-\\beta - 1}

    where :math:`c \\in W(j)` iff :math:`j - \\lfloor (n-1)/2 \\rfloor \\le c \\le j + \\lfloor n/2 \\rfloor`.

    References
    ----------
    Krizhevsky et al., "ImageNet classification with deep CNNs" (AlexNet), 2012, sec. 3.3;
    FaceNet (Schroff et al. 2015) tables 1 and 2 (rnorm, norm).
    """
    check_float_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must be an (N, C, H, W) array (rank >= 2), got shape {tuple(x.shape)}")
    size = check_positive_int(size, "size")
    alpha = check_positive_float(alpha, "alpha", allow_zero=True)
    beta = check_positive_float(beta, "beta", allow_zero=True)
    k = check_positive_float(k, "k")
    impl = check_impl(impl, x)
    if impl == "numba":
        from ..kernels.normalization import lrn_output_numba  # noqa: PLC0415  (imports Numba: lazily)
        out, denom = lrn_output_numba(x, size, alpha, beta, k)
        return out, LrnCache(x, denom, size, alpha, beta, impl)
    window_sum = _channel_window_sum(x * x, size // 2, (size - 1) // 2)
    denom = k + (alpha / size) * window_sum
    out = x * denom ** -beta
    return out, LrnCache(x, denom, size, alpha, beta)


def lrn_backward(dout, cache):
    """Gradient of ``lrn_forward`` (see its Notes).

    Parameters
    ----------
    dout : float array, shape of ``x``
    cache : LrnCache

    Returns
    -------
    dx : array, shape of ``x``
    """
    check_cache(cache, LrnCache, "lrn_forward")
    x, denom, size, alpha, beta, impl = cache
    dout = check_dout(dout, x.shape, x.dtype)
    if impl == "numba":
        from ..kernels.normalization import lrn_dx_numba  # noqa: PLC0415  (imports Numba: lazily)
        return lrn_dx_numba(dout, x, denom, size, alpha, beta)
    scaled = denom ** -beta                                   # D^-beta
    # every c whose window contains j: the window reflected (after <-> before)
    back = _channel_window_sum(dout * x * scaled / denom, (size - 1) // 2, size // 2)
    return dout * scaled - (2 * alpha * beta / size) * x * back


# ----------------------------------------------------------------------------- batch norm

class BatchNormCache(NamedTuple):
    """What ``batch_norm_backward`` needs, and the updated running statistics.

    ``running_mean`` / ``running_var`` are the statistics after this step
    (new arrays; in eval mode the ones passed in). Keep them for the next call.
    """
    x_hat: object         # (x - mean) / sqrt(var + eps), shape of x
    inv_std: object       # (C,) 1 / sqrt(var + eps) of the statistics used
    gamma: object         # (C,)
    training: bool
    running_mean: object  # (C,)
    running_var: object   # (C,)


def batch_norm_forward(x, gamma, beta, *, running_mean=None, running_var=None, training=True,
                       momentum=0.1, eps=1e-5):
    """Batch normalisation per channel (axis 1), train or eval mode, without hidden state.

    Parameters
    ----------
    x : float array, shape (N, C) or (N, C, H, W) (any ``(N, C, ...)``)
    gamma, beta : float arrays, shape (C,)
        Scale and shift (same dtype as ``x``).
    running_mean, running_var : float arrays, shape (C,), optional
        Running statistics. Required in eval mode. In training mode ``None``
        means a fresh layer (PyTorch's start, mean 0 and variance 1). Never
        modified: the updated ones are returned in the cache.
    training : bool
        ``True``: normalise with this batch's statistics and update the running
        ones. ``False`` (eval): normalise with the running statistics.
    momentum : float in [0, 1]
        ``running = (1 - momentum) * running + momentum * batch_statistic`` (PyTorch's convention).
    eps : float > 0
        Added to the variance before the square root.

    Returns
    -------
    out : array, shape of ``x``
    cache : BatchNormCache
        ``cache.running_mean`` and ``cache.running_var`` hold the updated
        running statistics (new arrays; the arguments are left as they were).

    Raises
    ------
    TypeError
        Non-float arrays, mixed dtypes, ``training`` not a bool.
    ValueError
        Rank < 2; parameters not of shape ``(C,)``; eval mode without running
        statistics; training with one value per channel; negative running
        variance; NaN or infinity.

    Notes
    -----
    Over the ``M = N H W`` values of channel ``c`` (training):

    .. math:: \\mu_c = \\frac{1}{M} \\sum x, \\quad \\sigma^2_c = \\frac{1}{M} \\sum (x - \\mu_c)^2, \\quad
              \\hat x = \\frac{x - \\mu_c}{\\sqrt{\\sigma^2_c + \\epsilon}}, \\quad
              \\mathrm{out} = \\gamma_c \\hat x + \\beta_c

    normalising with the biased variance :math:`\\sigma^2_c` but updating the
    running variance with the unbiased :math:`\\sigma^2_c M / (M - 1)` (as PyTorch).
    In eval mode :math:`\\mu, \\sigma^2` are the running statistics (constants).

    Backward (training; sums over the ``M`` values of a channel):

    .. math:: \\frac{\\partial L}{\\partial \\beta_c} = \\sum \\mathrm{dout}, \\quad
              \\frac{\\partial L}{\\partial \\gamma_c} = \\sum \\mathrm{dout}\\, \\hat x, \\quad
              \\frac{\\partial L}{\\partial x} = \\frac{\\gamma_c}{M \\sqrt{\\sigma^2_c + \\epsilon}}
              \\Big( M\\, \\mathrm{dout} - \\sum \\mathrm{dout} - \\hat x \\sum \\mathrm{dout}\\, \\hat x \\Big)

    and in eval mode :math:`\\partial L / \\partial x = \\mathrm{dout}\\, \\gamma_c / \\sqrt{\\sigma^2_c + \\epsilon}`.

    References
    ----------
    Ioffe & Szegedy, "Batch normalization", ICML 2015, algorithm 1 and sec. 3.1.
    """
    check_float_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must be an (N, C) or (N, C, H, W) array (rank >= 2), got shape {tuple(x.shape)}")
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be True or False, got {training!r}")
    momentum = check_in_range(momentum, "momentum", 0.0, 1.0)
    eps = check_positive_float(eps, "eps")
    c = x.shape[1]
    for name, v in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if v is None and name in ("running_mean", "running_var"):
            continue
        check_float_array(v, name, ndim=1)
        if v.dtype != x.dtype:
            raise TypeError(f"{name} must have the dtype of x ({x.dtype}), got {v.dtype}")
        if v.shape[0] != c:
            raise ValueError(f"{name} must have shape (C,) = ({c},), one value per channel of x "
                             f"(axis 1 of shape {tuple(x.shape)}), got {tuple(v.shape)}")
    xp = get_array_module(x, gamma, beta, running_mean, running_var)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must be given together (or both None)")
    if running_var is not None and bool((running_var < 0).any()):
        raise ValueError("running_var must be >= 0")
    axes = (0,) + tuple(range(2, x.ndim))
    m = x.size // c if c else 0

    if training:
        if m < 2:
            raise ValueError(f"batch norm in training mode needs more than one value per channel, "
                             f"got x of shape {tuple(x.shape)}: use a bigger batch or training=False")
        mean = x.mean(axis=axes)
        var = ((x - per_channel(mean, x.ndim)) ** 2).mean(axis=axes)      # biased: normalises
        if running_mean is None:
            running_mean, running_var = xp.zeros(c, x.dtype), xp.ones(c, x.dtype)
        new_mean = (1 - momentum) * running_mean + momentum * mean
        new_var = (1 - momentum) * running_var + momentum * var * (m / (m - 1))  # unbiased
    else:
        if running_mean is None:
            raise ValueError("batch norm in eval mode (training=False) needs running_mean and running_var")
        mean, var = running_mean, running_var
        new_mean, new_var = running_mean, running_var
    inv_std = 1 / xp.sqrt(var + eps)
    x_hat = (x - per_channel(mean, x.ndim)) * per_channel(inv_std, x.ndim)
    out = per_channel(gamma, x.ndim) * x_hat + per_channel(beta, x.ndim)
    return out, BatchNormCache(x_hat, inv_std, gamma, bool(training), new_mean, new_var)


def batch_norm_backward(dout, cache):
    """Gradients of ``batch_norm_forward`` in the mode it ran in (see its Notes).

    Parameters
    ----------
    dout : float array, shape of ``x``
    cache : BatchNormCache

    Returns
    -------
    dx : array, shape of ``x``
    dgamma : array, shape (C,)
    dbeta : array, shape (C,)
    """
    check_cache(cache, BatchNormCache, "batch_norm_forward")
    x_hat, inv_std, gamma = cache.x_hat, cache.inv_std, cache.gamma
    dout = check_dout(dout, x_hat.shape, x_hat.dtype)
    ndim = x_hat.ndim
    axes = (0,) + tuple(range(2, ndim))
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * x_hat).sum(axis=axes)
    scale = per_channel(gamma * inv_std, ndim)
    if not cache.training:                 # the statistics are constants
        return dout * scale, dgamma, dbeta
    m = x_hat.size // x_hat.shape[1]
    dx = scale * (dout - per_channel(dbeta / m, ndim) - x_hat * per_channel(dgamma / m, ndim))
    return dx, dgamma, dbeta


# ----------------------------------------------------------------------------- L2 normalisation

class L2NormalizeCache(NamedTuple):
    """What ``l2_normalize_backward`` needs."""
    y: object       # the output, shape of x
    norm: object    # ||x|| along axis, keepdims
    axis: int
    eps: float


def l2_normalize_forward(x, *, axis=1, eps=1e-10):
    """Scale each vector along ``axis`` to unit L2 norm (``torch.nn.functional.normalize``).

    Parameters
    ----------
    x : float array, shape (N, D) (any rank)
        Embeddings, one per row for ``axis=1``.
    axis : int
        The axis holding each vector.
    eps : float > 0
        Norms below ``eps`` are replaced by ``eps`` (so a zero vector stays zero, no NaN).

    Returns
    -------
    out : array, shape of ``x``
    cache : L2NormalizeCache

    Raises
    ------
    TypeError
        Non-float ``x``; ``axis`` not an int.
    ValueError
        ``axis`` out of range, ``eps`` <= 0, NaN or infinity.

    Notes
    -----
    .. math:: y = \\frac{x}{\\max(\\|x\\|_2, \\epsilon)}

    Backward, where :math:`\\|x\\| > \\epsilon` (the Jacobian
    :math:`(I - y y^\\top) / \\|x\\|` applied to ``dout``):

    .. math:: \\frac{\\partial L}{\\partial x} = \\frac{\\mathrm{dout} - y\\, (y \\cdot \\mathrm{dout})}{\\|x\\|}

    and :math:`\\mathrm{dout} / \\epsilon` where the norm is clamped.

    References
    ----------
    FaceNet (Schroff et al. 2015), sec. 3: the embedding :math:`\\|f(x)\\|_2 = 1`; tables 1 and 2 (L2).
    """
    check_float_array(x, "x")
    if x.ndim < 1:
        raise ValueError("x must be an array of rank >= 1, got a 0-D array")
    axis = check_axis(axis, x.ndim)
    eps = check_positive_float(eps, "eps")
    xp = get_array_module(x)
    norm = xp.sqrt((x * x).sum(axis=axis, keepdims=True))
    y = x / xp.maximum(norm, eps)
    return y, L2NormalizeCache(y, norm, axis, eps)


def l2_normalize_backward(dout, cache):
    """Gradient of ``l2_normalize_forward`` (see its Notes).

    Parameters
    ----------
    dout : float array, shape of ``x``
    cache : L2NormalizeCache

    Returns
    -------
    dx : array, shape of ``x``
    """
    check_cache(cache, L2NormalizeCache, "l2_normalize_forward")
    y, norm, axis, eps = cache
    dout = check_dout(dout, y.shape, y.dtype)
    xp = get_array_module(y)
    projection = (y * dout).sum(axis=axis, keepdims=True)
    return xp.where(norm > eps, (dout - y * projection) / xp.maximum(norm, eps), dout / eps)


# ----------------------------------------------------------------------------- gradcheck

def gradcheck_cases(rng):
    """Small LRN, batch norm (train and eval) and L2 normalisation cases for ``scratchface gradcheck``."""
    c = 5
    return [
        GradcheckCase("lrn size=3", lrn_forward, lrn_backward, {"x": rng.standard_normal((2, 6, 3, 3))},
                      {"size": 3, "alpha": 0.5, "beta": 0.75, "k": 1.0}),
        GradcheckCase("lrn size=4 (even)", lrn_forward, lrn_backward, {"x": rng.standard_normal((2, 5, 2, 3))},
                      {"size": 4, "alpha": 1.0, "beta": 0.6, "k": 2.0}),
        GradcheckCase("batch_norm train (N, C, H, W)", batch_norm_forward, batch_norm_backward,
                      {"x": rng.standard_normal((3, c, 2, 3)), "gamma": rng.standard_normal(c),
                       "beta": rng.standard_normal(c)}, {"training": True}),
        GradcheckCase("batch_norm eval (N, C)", batch_norm_forward, batch_norm_backward,
                      {"x": rng.standard_normal((4, c)), "gamma": rng.standard_normal(c),
                       "beta": rng.standard_normal(c)},
                      {"training": False, "running_mean": rng.standard_normal(c),
                       "running_var": rng.uniform(0.5, 2.0, c)}),
        GradcheckCase("l2_normalize", l2_normalize_forward, l2_normalize_backward,
                      {"x": rng.standard_normal((4, 7))}),
    ]
