"""Contrastive loss (DeepID2's verification signal).

For a pair of features and a label "same identity" / "different identities":

.. math::

    L = \\begin{cases}
        \\tfrac12 \\lVert f_1 - f_2 \\rVert^2 & \\text{same} \\\\
        \\tfrac12 \\max(0,\\; m - \\lVert f_1 - f_2 \\rVert)^2 & \\text{different}
        \\end{cases}

pulls pairs of the same person together and pushes different people at least
``m`` apart (DeepID2's verification signal, its L2 form; Hadsell, Chopra & LeCun 2006).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_array, check_positive_float
from ..backend import get_array_module
from ..gradcheck import GradcheckCase
from ._common import check_batch, check_reduction, reduce_losses

__all__ = ["contrastive_loss_forward", "contrastive_loss_backward", "contrastive_loss", "gradcheck_cases"]


class ContrastiveCache(NamedTuple):
    diff: object      # (N, D) f1 - f2
    dist: object      # (N,) ||f1 - f2||
    same: object      # (N,) bool
    margin: float
    weight: object    # (N,) d loss / d loss_i


def _check_same(same, n):
    xp = get_array_module(same) if hasattr(same, "shape") else None
    if xp is None:
        raise TypeError(f"same must be a 1-D boolean (or 0/1 integer) array, got {type(same).__name__}")
    check_array(same, "same", ndim=1, dtype_kind="biu")
    if same.shape[0] != n:
        raise ValueError(f"same must have one entry per pair ({n}), got {same.shape[0]}")
    if same.dtype.kind != "b" and same.size and not bool(((same == 0) | (same == 1)).all()):
        raise ValueError("same must hold 0 / 1 (or booleans): 1 for a pair of the same identity")
    return same.astype(bool)


def contrastive_loss_forward(f1, f2, *, same, margin=1.0, reduction="mean"):
    """Contrastive loss, forward.

    Parameters
    ----------
    f1, f2 : arrays, shape (N, D), float
        The two features of each pair.
    same : array, shape (N,), bool or 0/1
        True for a pair of the same identity.
    margin : float > 0
        :math:`m`, the distance beyond which different pairs cost nothing.
    reduction : {'mean', 'sum', 'mean_active'}

    Returns
    -------
    loss : scalar ; cache : ContrastiveCache

    Notes
    -----
    With :math:`\\delta = f_1 - f_2`, :math:`d = \\lVert\\delta\\rVert`:
    same pairs :math:`\\partial L/\\partial f_1 = \\delta`; different pairs with
    :math:`d < m`: :math:`\\partial L/\\partial f_1 = -(m - d)\\,\\delta / d`;
    :math:`\\partial L/\\partial f_2 = -\\partial L/\\partial f_1`. At
    :math:`d = 0` the direction is undefined and the gradient used is 0.

    References
    ----------
    Sun, Wang, Tang, "Deep Learning Face Representation by Joint
    Identification-Verification" (DeepID2), NIPS 2014, sec. 2 (the verification signal).
    """
    check_batch({"f1": f1, "f2": f2})
    same = _check_same(same, f1.shape[0])
    margin = check_positive_float(margin, "margin")
    check_reduction(reduction)
    xp = get_array_module(f1)
    diff = f1 - f2
    dist = xp.sqrt((diff * diff).sum(axis=1))
    per_pair = xp.where(same, 0.5 * dist**2, 0.5 * xp.maximum(margin - dist, 0) ** 2)
    loss, weight = reduce_losses(per_pair, reduction)
    return loss, ContrastiveCache(diff, dist, same, margin, weight)


def contrastive_loss_backward(dloss, cache):
    """``(df1, df2)``, each (N, D)."""
    xp = get_array_module(cache.diff)
    diff, dist, same, margin, weight = cache
    safe = xp.where(dist > 0, dist, 1)
    coef_diff = xp.where((dist < margin) & (dist > 0), -(margin - dist) / safe, 0)
    coef = xp.where(same, 1, coef_diff) * weight * dloss
    df1 = coef[:, None] * diff
    return df1, -df1


def contrastive_loss(f1, f2, *, same, margin=1.0, reduction="mean"):
    """The contrastive loss as a Python float."""
    return float(contrastive_loss_forward(f1, f2, same=same, margin=margin, reduction=reduction)[0])


def gradcheck_cases(rng):
    """Different pairs inside the margin and same pairs (none on the kink d = m)."""
    f1, f2 = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    same = [True, False, False, True, False]
    return [GradcheckCase("contrastive_loss", contrastive_loss_forward, contrastive_loss_backward,
                          {"f1": f1, "f2": f2}, {"same": np.array(same), "margin": 10.0})]
