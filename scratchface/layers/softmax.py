"""Softmax, log-softmax and softmax cross-entropy, numerically stable.

The one trick: ``softmax(x) = softmax(x - max(x))``. Subtracting the largest
logit first makes every exponent <= 0, so ``exp`` never overflows (logits of
1e4 are fine in float32), and the largest term is exactly 1, so the sum never
underflows to 0 and ``log`` never sees 0. The log-softmax is computed as
``(x - max) - log(sum(exp(x - max)))`` (the log-sum-exp), never as
``log(softmax(x))``, which would give ``-inf`` for tiny probabilities.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_float_array, check_labels
from ..backend import get_array_module
from ..gradcheck import GradcheckCase
from ._common import check_axis, check_cache, check_dout

__all__ = ["softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward",
           "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
           "SoftmaxCache", "LogSoftmaxCache", "SoftmaxCrossEntropyCache", "gradcheck_cases"]


def _shifted(x, axis):
    """``x - max(x)`` along ``axis`` (every entry <= 0, the largest exactly 0)."""
    return x - x.max(axis=axis, keepdims=True)


def _log_softmax(x, axis):
    xp = get_array_module(x)
    z = _shifted(x, axis)
    return z - xp.log(xp.exp(z).sum(axis=axis, keepdims=True))


def _check_logits(x, name, axis):
    check_float_array(x, name)
    if x.ndim < 1:
        raise ValueError(f"{name} must have rank >= 1, got a 0-D array")
    axis = check_axis(axis, x.ndim)
    if x.shape[axis] == 0:
        raise ValueError(f"{name} must have at least one class along axis {axis}, got shape {tuple(x.shape)}")
    return axis


# ----------------------------------------------------------------------------- softmax

class SoftmaxCache(NamedTuple):
    """What ``softmax_backward`` needs."""
    y: object      # the probabilities, shape of x
    axis: int


def softmax_forward(x, *, axis=1):
    """Softmax along ``axis``: non-negative values that sum to 1.

    Parameters
    ----------
    x : float array, shape (N, K) (any rank)
        Logits (scores), ``K`` classes along ``axis``.
    axis : int
        The class axis (default 1; negative counts from the end).

    Returns
    -------
    y : array, shape of ``x``
    cache : SoftmaxCache

    Raises
    ------
    TypeError
        Non-float ``x``; ``axis`` not an int.
    ValueError
        ``axis`` out of range, no classes, NaN or infinity.

    Notes
    -----
    .. math:: y_k = \\frac{e^{x_k - m}}{\\sum_j e^{x_j - m}}, \\quad m = \\max_j x_j

    Backward (the Jacobian :math:`\\partial y_k / \\partial x_j = y_k(\\delta_{kj} - y_j)` applied to ``dout``):

    .. math:: \\frac{\\partial L}{\\partial x} =
              y \\odot \\big(\\mathrm{dout} - \\textstyle\\sum_k \\mathrm{dout}_k y_k\\big)
    """
    axis = _check_logits(x, "x", axis)
    xp = get_array_module(x)
    e = xp.exp(_shifted(x, axis))
    y = e / e.sum(axis=axis, keepdims=True)
    return y, SoftmaxCache(y, axis)


def softmax_backward(dout, cache):
    """Gradient of ``softmax_forward`` (see its Notes).

    Parameters
    ----------
    dout : float array, shape of ``x``
    cache : SoftmaxCache

    Returns
    -------
    dx : array, shape of ``x``
    """
    check_cache(cache, SoftmaxCache, "softmax_forward")
    y, axis = cache
    dout = check_dout(dout, y.shape, y.dtype)
    return y * (dout - (dout * y).sum(axis=axis, keepdims=True))


# ----------------------------------------------------------------------------- log-softmax

class LogSoftmaxCache(NamedTuple):
    """What ``log_softmax_backward`` needs."""
    y: object      # the softmax probabilities exp(out), shape of x
    axis: int


def log_softmax_forward(x, *, axis=1):
    """Log-softmax along ``axis``, by the stable log-sum-exp.

    Parameters
    ----------
    x : float array, shape (N, K) (any rank)
    axis : int
        The class axis (default 1).

    Returns
    -------
    out : array, shape of ``x``
        :math:`\\log \\mathrm{softmax}(x)`, finite even where the probability underflows.
    cache : LogSoftmaxCache

    Raises
    ------
    TypeError, ValueError
        As ``softmax_forward``.

    Notes
    -----
    .. math:: \\mathrm{out}_k = (x_k - m) - \\log \\sum_j e^{x_j - m}, \\quad m = \\max_j x_j

    Backward, with :math:`y = e^{\\mathrm{out}}` the softmax:

    .. math:: \\frac{\\partial L}{\\partial x} = \\mathrm{dout} - y \\textstyle\\sum_k \\mathrm{dout}_k
    """
    axis = _check_logits(x, "x", axis)
    xp = get_array_module(x)
    out = _log_softmax(x, axis)
    return out, LogSoftmaxCache(xp.exp(out), axis)


def log_softmax_backward(dout, cache):
    """Gradient of ``log_softmax_forward`` (see its Notes).

    Parameters
    ----------
    dout : float array, shape of ``x``
    cache : LogSoftmaxCache

    Returns
    -------
    dx : array, shape of ``x``
    """
    check_cache(cache, LogSoftmaxCache, "log_softmax_forward")
    y, axis = cache
    dout = check_dout(dout, y.shape, y.dtype)
    return dout - y * dout.sum(axis=axis, keepdims=True)


# ----------------------------------------------------------------------------- cross-entropy

class SoftmaxCrossEntropyCache(NamedTuple):
    """What ``softmax_cross_entropy_backward`` needs."""
    probs: object    # (N, K) softmax of the logits
    labels: object   # (N,) integer labels


def softmax_cross_entropy_forward(logits, *, labels):
    """Mean softmax cross-entropy of integer class labels (the classifier loss).

    Parameters
    ----------
    logits : float array, shape (N, K)
        Scores of ``K`` classes for ``N`` samples.
    labels : int array, shape (N,)
        The true class of each sample, in ``[0, K)``.

    Returns
    -------
    loss : scalar of the dtype of ``logits``
        The mean over the batch (0 for an empty batch). A NumPy scalar for
        NumPy input, a 0-d array for CuPy (no device-to-host copy).
    cache : SoftmaxCrossEntropyCache

    Raises
    ------
    TypeError
        Non-float ``logits``; non-integer ``labels`` (e.g. floats or one-hot rows).
    ValueError
        ``logits`` not 2-D or without classes; ``labels`` not 1-D, not one per
        sample, or outside ``[0, K)``; NaN or infinity.

    Notes
    -----
    .. math:: L = \\frac{1}{N} \\sum_i -\\log \\frac{e^{x_{i, y_i}}}{\\sum_j e^{x_{ij}}}
              = \\frac{1}{N} \\sum_i \\Big( \\log \\sum_j e^{x_{ij} - m_i} - (x_{i, y_i} - m_i) \\Big)

    with :math:`m_i = \\max_j x_{ij}` (stable at any logit size). Backward,
    with :math:`p = \\mathrm{softmax}(x)` and the one-hot :math:`\\mathbb{1}[j = y_i]`:

    .. math:: \\frac{\\partial L}{\\partial x_{ij}} = \\frac{1}{N} \\big( p_{ij} - \\mathbb{1}[j = y_i] \\big)

    References
    ----------
    The softmax loss of the lectures (L_i = -log(exp(W_y^T x_i + b_y) / sum_j exp(W_j^T x_i + b_j)));
    Taigman et al., DeepFace, 2014 (F8); Parkhi et al., VGG-Face, 2015.
    """
    check_float_array(logits, "logits", ndim=2)
    n, k = logits.shape
    if k == 0:
        raise ValueError(f"logits must have at least one class (shape (N, K) with K > 0), got {tuple(logits.shape)}")
    check_labels(labels, "labels", n, k)
    xp = get_array_module(logits, labels)
    log_p = _log_softmax(logits, 1)
    picked = log_p[xp.arange(n), labels]
    loss = -picked.sum() / max(n, 1)
    return loss, SoftmaxCrossEntropyCache(xp.exp(log_p), labels)


def softmax_cross_entropy_backward(dloss, cache):
    """Gradient of ``softmax_cross_entropy_forward`` w.r.t. the logits.

    Parameters
    ----------
    dloss : float (or 0-d float array)
        The upstream gradient of the scalar loss (1.0 when it is the final loss).
    cache : SoftmaxCrossEntropyCache

    Returns
    -------
    dlogits : array, shape (N, K)
    """
    check_cache(cache, SoftmaxCrossEntropyCache, "softmax_cross_entropy_forward")
    probs, labels = cache
    if hasattr(dloss, "shape"):
        if tuple(dloss.shape) != ():
            raise ValueError(f"dloss must be a scalar (the loss is a scalar), got shape {tuple(dloss.shape)}")
        check_float_array(dloss, "dloss")
    elif isinstance(dloss, (bool, np.bool_)) or not isinstance(dloss, (int, float, np.floating, np.integer)):
        raise TypeError(f"dloss must be a real number, got {type(dloss).__name__}")
    elif not np.isfinite(dloss):
        raise ValueError("dloss contains NaN or infinity")
    xp = get_array_module(probs)
    n = probs.shape[0]
    dlogits = probs.copy()
    dlogits[xp.arange(n), labels] -= 1
    dlogits *= xp.asarray(dloss, dtype=probs.dtype) / max(n, 1)   # keeps the logits' dtype
    return dlogits


# ----------------------------------------------------------------------------- gradcheck

def gradcheck_cases(rng):
    """Softmax, log-softmax (two axes) and cross-entropy for ``scratchface gradcheck``."""
    return [
        GradcheckCase("softmax", softmax_forward, softmax_backward, {"x": rng.standard_normal((4, 5))}),
        GradcheckCase("log_softmax axis=-1", log_softmax_forward, log_softmax_backward,
                      {"x": rng.standard_normal((2, 3, 4))}, {"axis": -1}),
        GradcheckCase("softmax_cross_entropy", softmax_cross_entropy_forward, softmax_cross_entropy_backward,
                      {"logits": rng.standard_normal((5, 4))}, {"labels": rng.integers(0, 4, 5)}),
    ]
