"""Sigmoid (binary) cross-entropy against soft targets, with a weight on the positive term.

.. math:: L = \\frac{1}{n} \\sum_k -w\\, t_k \\log \\sigma(z_k) - (1 - t_k) \\log (1 - \\sigma(z_k))

The loss of the Faceness part network (:mod:`scratchface.models.faceness_nets`):
one sigmoid output per part and map cell, against the fraction of the cell the
part covers (part-level masks as supervision, Faceness-Net); it is
``torch.nn.BCEWithLogitsLoss(pos_weight=w)``.

References
----------
S. Yang, P. Luo, C. C. Loy, X. Tang, "From Facial Part Responses to Face
Detection: A Deep Learning Approach", ICCV 2015 (sec. 3.1, partness maps).
S. Yang, P. Luo, C. C. Loy, X. Tang, "Faceness-Net: Face Detection through
Deep Facial Part Responses", TPAMI 40(8), 2018 (part-level masks as supervision).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_float_array, check_positive_float
from ..backend import get_array_module
from ..gradcheck import GradcheckCase

__all__ = ["SigmoidCrossEntropyCache", "gradcheck_cases", "sigmoid_cross_entropy_backward",
           "sigmoid_cross_entropy_forward"]


class SigmoidCrossEntropyCache(NamedTuple):
    probs: np.ndarray      #: sigmoid of the logits
    targets: np.ndarray    #: the soft targets, same shape
    pos_weight: float
    count: int             #: number of elements averaged over


def _softplus(xp, z):
    """``log(1 + exp(z))`` without overflow: ``max(z, 0) + log1p(exp(-|z|))``."""
    return xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))


def sigmoid_cross_entropy_forward(logits, *, targets, pos_weight=1.0):
    """Mean binary cross-entropy of sigmoid outputs against soft targets in [0, 1].

    Parameters
    ----------
    logits : float array, any shape (here (N, P, H', W'))
    targets : float array, same shape, values in [0, 1]
        Keyword-only (not differentiated).
    pos_weight : float > 0
        Weight of the positive term (parts cover few cells; > 1 counters that).

    Returns
    -------
    loss : scalar array of the logits' dtype
    cache : SigmoidCrossEntropyCache

    Notes
    -----
    With :math:`\\sigma(z) = 1 / (1 + e^{-z})` and weight :math:`w`,

    .. math:: L = \\frac{1}{n} \\sum_k -w\\, t_k \\log \\sigma(z_k) - (1 - t_k) \\log (1 - \\sigma(z_k))
              = \\frac{1}{n} \\sum_k w\\, t_k\\, \\mathrm{softplus}(-z_k) + (1 - t_k)\\, \\mathrm{softplus}(z_k),

    computed with the stable ``softplus(z) = max(z, 0) + log1p(exp(-|z|))``.
    Backward: :math:`\\partial L / \\partial z_k = (\\sigma(z_k)(w t_k + 1 - t_k) - w t_k) / n`
    (with :math:`w = 1`: :math:`(\\sigma(z_k) - t_k) / n`). The same loss as
    ``torch.nn.BCEWithLogitsLoss(pos_weight=w)``.
    """
    xp = get_array_module(logits, targets)
    check_float_array(logits, "logits")
    check_float_array(targets, "targets")
    if targets.shape != logits.shape:
        raise ValueError(f"targets must have the logits' shape {tuple(logits.shape)}, got {tuple(targets.shape)}")
    if float(targets.min()) < 0.0 or float(targets.max()) > 1.0:
        raise ValueError("targets must lie in [0, 1] (fractions of a cell covered by the part)")
    pos_weight = check_positive_float(pos_weight, "pos_weight")
    if logits.size == 0:
        raise ValueError("logits is empty")
    t = targets.astype(logits.dtype, copy=False)
    loss_terms = pos_weight * t * _softplus(xp, -logits) + (1 - t) * _softplus(xp, logits)
    loss = loss_terms.mean(dtype=logits.dtype)
    probs = 0.5 * (1.0 + xp.tanh(0.5 * logits))  # the sigmoid, without overflow
    return loss, SigmoidCrossEntropyCache(probs, t, pos_weight, int(logits.size))


def sigmoid_cross_entropy_backward(dout, cache):
    """Gradient with respect to the logits (see :func:`sigmoid_cross_entropy_forward`)."""
    p, t, w = cache.probs, cache.targets, cache.pos_weight
    return (dout / cache.count) * (p * (w * t + 1 - t) - w * t)


def gradcheck_cases(rng):
    """Soft and hard targets, with and without a positive weight."""
    logits = rng.standard_normal((2, 5, 3, 4)) * 2
    soft = rng.uniform(0, 1, (2, 5, 3, 4))
    hard = (rng.uniform(0, 1, (3, 4)) > 0.5).astype(np.float64)
    return [GradcheckCase("sigmoid_cross_entropy", sigmoid_cross_entropy_forward, sigmoid_cross_entropy_backward,
                          {"logits": logits}, {"targets": soft}),
            GradcheckCase("sigmoid_cross_entropy_pos_weight", sigmoid_cross_entropy_forward,
                          sigmoid_cross_entropy_backward, {"logits": rng.standard_normal((3, 4))},
                          {"targets": hard, "pos_weight": 3.0})]
