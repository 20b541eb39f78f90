"""Smooth L1 loss of box offsets (Fast R-CNN eq. 3), the box term of Faster R-CNN's loss.

.. math:: L = \\frac{1}{n} \\sum_i \\sum_k \\mathrm{sl}_1(p_{ik} - t_{ik}), \\quad
          \\mathrm{sl}_1(d) = \\begin{cases} d^2 / (2\\beta) & |d| < \\beta \\\\
          |d| - \\beta / 2 & \\text{otherwise} \\end{cases}

Used by the scale-friendly detector's training (``experiments/scale_friendly.py``).

References
----------
R. Girshick, "Fast R-CNN", ICCV 2015 (eq. 3).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_array, check_positive_float
from ..gradcheck import GradcheckCase

__all__ = ["SmoothL1Cache", "gradcheck_cases", "smooth_l1_backward", "smooth_l1_forward"]


class SmoothL1Cache(NamedTuple):
    diff: np.ndarray    # prediction - target, (n, 4)
    beta: float


def smooth_l1_forward(pred, *, targets, beta=1.0):
    """Smooth L1 loss of box offsets, summed over the 4 coordinates, averaged over the rows.

    .. math:: L = \\frac{1}{n} \\sum_i \\sum_k \\mathrm{sl}_1(p_{ik} - t_{ik}), \\quad
              \\mathrm{sl}_1(d) = \\begin{cases} d^2 / (2\\beta) & |d| < \\beta \\\\
              |d| - \\beta / 2 & \\text{otherwise} \\end{cases}

    Fast R-CNN eq. 3 (``beta = 1``): quadratic near 0, linear for outliers (less
    sensitive to them than L2). Backward: :math:`\\partial L / \\partial p_{ik} =
    \\frac{1}{n} \\mathrm{clip}(d_{ik} / \\beta, -1, 1)`. No rows: loss 0.

    Parameters
    ----------
    pred : float array, shape (n, 4)
    targets : array, shape (n, 4)
    beta : float > 0

    Returns
    -------
    loss : scalar of ``pred``'s dtype
    cache : SmoothL1Cache
    """
    check_array(pred, "pred", ndim=2, dtype_kind="f", finite=True)
    targets = np.asarray(targets, dtype=pred.dtype)
    if targets.shape != pred.shape:
        raise ValueError(f"targets must have the shape of pred {pred.shape}, got {targets.shape}")
    beta = check_positive_float(beta, "beta")
    diff = pred - targets
    a = np.abs(diff)
    per = np.where(a < beta, 0.5 * diff ** 2 / beta, a - 0.5 * beta)
    loss = per.sum() / len(pred) if len(pred) else 0.0
    return pred.dtype.type(loss), SmoothL1Cache(diff, beta)


def smooth_l1_backward(dloss, cache):
    """Gradient of :func:`smooth_l1_forward` with respect to ``pred``."""
    n = max(len(cache.diff), 1)
    return (float(dloss) / n * np.clip(cache.diff / cache.beta, -1.0, 1.0)).astype(cache.diff.dtype)


def gradcheck_cases(rng):
    """Smooth L1 on points away from its kink at ``|d| = beta``."""
    d = rng.uniform(0.15, 2.0, (6, 4)) * rng.choice([-1.0, 1.0], (6, 4))
    d[np.abs(np.abs(d) - 1.0) < 0.1] += 0.3
    targets = rng.standard_normal((6, 4))
    return [GradcheckCase("smooth_l1", smooth_l1_forward, smooth_l1_backward, {"pred": targets + d},
                          {"targets": targets, "beta": 1.0})]


# ----------------------------------------------------------------------------- images
