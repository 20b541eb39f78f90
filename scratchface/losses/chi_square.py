"""DeepFace's verification metrics: the weighted chi-square distance and the Siamese weighted L1.

DeepFace's features are non-negative (they come out of a ReLU and are
normalised to [0, 1]), which makes the chi-square distance of histograms a
natural choice:

.. math:: \\chi^2_w(f_1, f_2) = \\sum_i w_i \\frac{(f_1[i] - f_2[i])^2}{f_1[i] + f_2[i]} .

The weights :math:`w` are learned by a linear SVM on the vectors
:math:`v[i] = (f_1[i] - f_2[i])^2 / (f_1[i] + f_2[i])` of labelled same /
different pairs (:func:`scratchface.recognition.chi_square_verifier.fit_chi_square_weights`). The Siamese variant instead
trains the network end to end on :math:`d(f_1, f_2) = \\sum_i \\alpha_i |f_1[i] - f_2[i]|`
followed by a logistic unit.

Terms with :math:`f_1[i] + f_2[i] = 0` (both features zero) count 0.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_float_array
from ..backend import get_array_module
from ..gradcheck import GradcheckCase
from ._common import check_batch

__all__ = ["chi_square_vectors", "weighted_chi_square_forward", "weighted_chi_square_backward",
           "weighted_chi_square", "weighted_l1_forward", "weighted_l1_backward", "weighted_l1",
           "gradcheck_cases"]


class ChiSquareCache(NamedTuple):
    f1: object
    f2: object
    weights: object
    terms: object      # (N, D) the chi-square terms v


class WeightedL1Cache(NamedTuple):
    diff: object
    weights: object


def _check_pair(f1, f2):
    check_batch({"f1": f1, "f2": f2})
    xp = get_array_module(f1)
    for f, name in ((f1, "f1"), (f2, "f2")):
        if f.size and bool((f < 0).any()):
            raise ValueError(f"{name} must be non-negative (chi-square compares histogram-like features, "
                             "e.g. after a ReLU); got a minimum of " f"{float(xp.min(f)):.3g}")


def _check_weights(weights, d):
    check_float_array(weights, "weights", ndim=1)
    if weights.shape[0] != d:
        raise ValueError(f"weights must have one weight per feature ({d}), got {weights.shape[0]}")


def chi_square_vectors(f1, f2):
    """The per-feature chi-square terms :math:`(f_1 - f_2)^2 / (f_1 + f_2)`, shape (N, D).

    These are the SVM's inputs in DeepFace; 0 where both features are 0.
    """
    _check_pair(f1, f2)
    return _terms(f1, f2)


def _terms(f1, f2):
    xp = get_array_module(f1)
    s = f1 + f2
    safe = xp.where(s > 0, s, 1)
    return xp.where(s > 0, (f1 - f2) ** 2 / safe, 0)


def weighted_chi_square_forward(f1, f2, weights):
    """Weighted chi-square distance of each pair, forward.

    Parameters
    ----------
    f1, f2 : arrays, shape (N, D), float, non-negative
    weights : array, shape (D,), float

    Returns
    -------
    chi2 : array, shape (N,) ; cache : ChiSquareCache

    Notes
    -----
    With :math:`s = f_1 + f_2`, :math:`\\delta = f_1 - f_2`:

    .. math:: \\frac{\\partial}{\\partial f_1} \\frac{\\delta^2}{s}
              = \\frac{\\delta (f_1 + 3 f_2)}{s^2}, \\qquad
              \\frac{\\partial}{\\partial f_2} \\frac{\\delta^2}{s}
              = -\\frac{\\delta (f_2 + 3 f_1)}{s^2},

    and :math:`\\partial \\chi^2 / \\partial w_i = v_i`. Where :math:`s = 0` the
    gradient used is 0 (the function is not differentiable there).

    References
    ----------
    Taigman et al., "DeepFace: Closing the Gap to Human-Level Performance", CVPR 2014, sec. 4.
    """
    _check_pair(f1, f2)
    _check_weights(weights, f1.shape[1])
    terms = _terms(f1, f2)
    return terms @ weights, ChiSquareCache(f1, f2, weights, terms)


def weighted_chi_square_backward(dchi2, cache):
    """``(df1, df2, dweights)`` from ``dchi2`` of shape (N,)."""
    xp = get_array_module(cache.f1)
    f1, f2, w, terms = cache
    s = f1 + f2
    safe = xp.where(s > 0, s, 1)
    delta = f1 - f2
    g = dchi2[:, None] * w[None, :]
    df1 = xp.where(s > 0, g * delta * (f1 + 3 * f2) / safe**2, 0)
    df2 = xp.where(s > 0, -g * delta * (f2 + 3 * f1) / safe**2, 0)
    return df1, df2, dchi2 @ terms


def weighted_chi_square(f1, f2, weights):
    """The weighted chi-square distances (N,), without the cache."""
    return weighted_chi_square_forward(f1, f2, weights)[0]


def weighted_l1_forward(f1, f2, weights):
    """Siamese weighted L1 distance :math:`d = \\sum_i \\alpha_i |f_1[i] - f_2[i]|`, forward.

    Parameters
    ----------
    f1, f2 : arrays, shape (N, D), float
    weights : array, shape (D,)  (the :math:`\\alpha_i`)

    Returns
    -------
    d : array, shape (N,) ; cache : WeightedL1Cache

    Notes
    -----
    :math:`\\partial d/\\partial f_1 = \\alpha\\,\\mathrm{sign}(f_1 - f_2)` (0 at
    equality), :math:`\\partial d/\\partial f_2 = -\\partial d/\\partial f_1`,
    :math:`\\partial d/\\partial \\alpha_i = |f_1[i] - f_2[i]|`.

    References
    ----------
    Taigman et al., DeepFace, CVPR 2014, sec. 4.2 (Siamese network).
    """
    check_batch({"f1": f1, "f2": f2})
    _check_weights(weights, f1.shape[1])
    xp = get_array_module(f1)
    diff = f1 - f2
    return xp.abs(diff) @ weights, WeightedL1Cache(diff, weights)


def weighted_l1_backward(dd, cache):
    """``(df1, df2, dweights)`` from ``dd`` of shape (N,)."""
    xp = get_array_module(cache.diff)
    df1 = dd[:, None] * cache.weights[None, :] * xp.sign(cache.diff)
    return df1, -df1, dd @ xp.abs(cache.diff)


def weighted_l1(f1, f2, weights):
    """The weighted L1 distances (N,), without the cache."""
    return weighted_l1_forward(f1, f2, weights)[0]


def gradcheck_cases(rng):
    """Positive features (away from f1 + f2 = 0) and pairs that differ (away from the L1 kink)."""
    f1 = rng.uniform(0.2, 1.0, (4, 5))
    f2 = rng.uniform(0.2, 1.0, (4, 5))
    w = rng.standard_normal(5)
    return [
        GradcheckCase("weighted_chi_square", weighted_chi_square_forward, weighted_chi_square_backward,
                      {"f1": f1, "f2": f2, "weights": w}),
        GradcheckCase("weighted_l1", weighted_l1_forward, weighted_l1_backward,
                      {"f1": f1, "f2": f2 + np.sign(f2 - f1) * 0.05, "weights": w}),
    ]
