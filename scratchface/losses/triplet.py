"""The triplet loss of FaceNet, on L2-normalised embeddings.

A triplet is an anchor :math:`a`, a positive :math:`p` (another photo of the
same person) and a negative :math:`n` (someone else). FaceNet wants

.. math:: \\lVert f(a) - f(p) \\rVert^2 + \\alpha < \\lVert f(a) - f(n) \\rVert^2

and minimises the hinge of the violation (FaceNet eq. 1-3)

.. math:: L = \\sum_i \\big[\\, \\lVert f(a_i) - f(p_i) \\rVert^2
          - \\lVert f(a_i) - f(n_i) \\rVert^2 + \\alpha \\,\\big]_+ .

The embeddings live on the unit sphere (``normalize=True`` passes them through
the ``l2_normalize`` layer, forward and backward), so squared distances are in
``[0, 4]`` and ``alpha = 0.2`` means something fixed.

Two entry points:

* ``triplet_loss_forward(anchor, positive, negative)``: three ``(N, D)``
  arrays, one row per triplet;
* ``mined_triplet_loss_forward(embeddings, triplets=(a, p, n))``: one batch of
  embeddings and the index arrays a miner of :mod:`scratchface.losses.mining`
  chose; the backward pass adds each triplet's gradient into the rows it used.
"""
from __future__ import annotations

from typing import NamedTuple

from .._validation import check_float_array, check_positive_float
from ..backend import get_array_module
from ..gradcheck import GradcheckCase
from ._common import (
    as_index_array,
    check_batch,
    check_reduction,
    l2_normalize_backward,
    l2_normalize_forward,
    reduce_losses,
)

__all__ = ["triplet_loss_forward", "triplet_loss_backward", "triplet_loss",
           "mined_triplet_loss_forward", "mined_triplet_loss_backward", "gradcheck_cases"]


class TripletCache(NamedTuple):
    anchor: object          # (N, D) the (normalised) embeddings the distances were taken on
    positive: object
    negative: object
    weight: object          # (N,) d loss / d loss_i: 0 for inactive triplets
    norm_caches: tuple      # l2_normalize caches of (anchor, positive, negative), or None


class MinedTripletCache(NamedTuple):
    triplets: tuple         # (a, p, n) int64 index arrays
    num_embeddings: int
    inner: TripletCache
    norm_cache: object      # l2_normalize cache of the embeddings, or None


def _check_hyper(alpha, reduction):
    alpha = check_positive_float(alpha, "alpha")
    check_reduction(reduction)
    return alpha


def _triplet_core(a, p, n, alpha, reduction):
    xp = get_array_module(a)
    d_ap = ((a - p) ** 2).sum(axis=1)
    d_an = ((a - n) ** 2).sum(axis=1)
    per_triplet = xp.maximum(d_ap - d_an + alpha, 0)
    loss, weight = reduce_losses(per_triplet, reduction)
    weight = weight * (d_ap - d_an + alpha > 0)
    return loss, weight


def triplet_loss_forward(anchor, positive, negative, *, alpha=0.2, normalize=True, reduction="mean"):
    """Triplet loss, forward.

    Parameters
    ----------
    anchor, positive, negative : arrays, shape (N, D), float
        One row per triplet.
    alpha : float > 0
        The margin (FaceNet: 0.2 on unit-length embeddings).
    normalize : bool
        L2-normalise each row first (through the ``l2_normalize`` layer, so the
        gradient flows back through it). With ``False`` the rows are used as given.
    reduction : {'mean', 'sum', 'mean_active'}
        Average over the N triplets, their sum (FaceNet eq. 3), or the average
        over the triplets with a positive loss (0 when there is none).

    Returns
    -------
    loss : scalar array (0-d)
    cache : TripletCache

    Notes
    -----
    With :math:`z_i = \\lVert a_i - p_i \\rVert^2 - \\lVert a_i - n_i \\rVert^2 + \\alpha`
    and :math:`g_i = \\partial L / \\partial \\ell_i \\cdot [z_i > 0]`:

    .. math:: \\partial L/\\partial a_i = 2 g_i (n_i - p_i), \\quad
              \\partial L/\\partial p_i = 2 g_i (p_i - a_i), \\quad
              \\partial L/\\partial n_i = 2 g_i (a_i - n_i),

    then back through the normalisation. The hinge has a kink at :math:`z_i = 0`
    (the gradient used there is 0).

    References
    ----------
    Schroff, Kalenichenko, Philbin, "FaceNet", CVPR 2015, eq. 1-3.
    """
    check_batch({"anchor": anchor, "positive": positive, "negative": negative})
    alpha = _check_hyper(alpha, reduction)
    if normalize:
        (a, ca), (p, cp), (n, cn) = (l2_normalize_forward(x, axis=1) for x in (anchor, positive, negative))
        caches = (ca, cp, cn)
    else:
        a, p, n, caches = anchor, positive, negative, None
    loss, weight = _triplet_core(a, p, n, alpha, reduction)
    return loss, TripletCache(a, p, n, weight, caches)


def triplet_loss_backward(dloss, cache):
    """Triplet loss, backward: ``(danchor, dpositive, dnegative)``, each ``(N, D)``."""
    a, p, n, weight, caches = cache
    g = (2 * dloss * weight)[:, None]
    da, dp, dn = g * (n - p), g * (p - a), g * (a - n)
    if caches is not None:
        da, dp, dn = (l2_normalize_backward(d, c) for d, c in zip((da, dp, dn), caches))
    return da, dp, dn


def triplet_loss(anchor, positive, negative, *, alpha=0.2, normalize=True, reduction="mean"):
    """The triplet loss as a Python float (``triplet_loss_forward`` without the cache)."""
    loss, _ = triplet_loss_forward(anchor, positive, negative, alpha=alpha, normalize=normalize,
                                   reduction=reduction)
    return float(loss)


def mined_triplet_loss_forward(embeddings, *, triplets, alpha=0.2, normalize=True, reduction="mean"):
    """Triplet loss over a batch of embeddings and the triplets a miner chose.

    Parameters
    ----------
    embeddings : array, shape (B, D), float
    triplets : tuple of three int arrays, each shape (T,)
        Row indices ``(a, p, n)``, e.g. from ``semi_hard_triplets``. ``T = 0`` gives loss 0.
    alpha, normalize, reduction
        As in ``triplet_loss_forward``. The embeddings are normalised once,
        before the rows are gathered.

    Returns
    -------
    loss : scalar array
    cache : MinedTripletCache

    Notes
    -----
    Backward: each triplet's gradients (``triplet_loss_backward``) are added
    into the rows they came from (an embedding used by several triplets gets
    the sum), then go back through the normalisation.
    """
    check_float_array(embeddings, "embeddings", ndim=2)
    alpha = _check_hyper(alpha, reduction)
    if not (isinstance(triplets, (tuple, list)) and len(triplets) == 3):
        raise TypeError("triplets must be a tuple (a, p, n) of three index arrays, as the miners return")
    b = embeddings.shape[0]
    idx = tuple(as_index_array(t, name, b) for t, name in zip(triplets, ("triplets[0] (anchors)",
                                                                        "triplets[1] (positives)",
                                                                        "triplets[2] (negatives)")))
    if not idx[0].shape == idx[1].shape == idx[2].shape:
        raise ValueError(f"the three index arrays of triplets must have one length, got "
                         f"{[len(t) for t in idx]}")
    if normalize:
        e, norm_cache = l2_normalize_forward(embeddings, axis=1)
    else:
        e, norm_cache = embeddings, None
    xp = get_array_module(embeddings)
    gathered = [e[xp.asarray(t)] for t in idx]
    loss, weight = _triplet_core(*gathered, alpha, reduction)
    inner = TripletCache(*gathered, weight, None)
    return loss, MinedTripletCache(idx, b, inner, norm_cache)


def mined_triplet_loss_backward(dloss, cache):
    """Backward of ``mined_triplet_loss_forward``: ``dembeddings``, shape (B, D)."""
    xp = get_array_module(cache.inner.anchor)
    grads = triplet_loss_backward(dloss, cache.inner)
    de = xp.zeros((cache.num_embeddings, cache.inner.anchor.shape[1]), dtype=cache.inner.anchor.dtype)
    for t, g in zip(cache.triplets, grads):
        xp.add.at(de, xp.asarray(t), g)  # accumulate: a row may appear in many triplets
    if cache.norm_cache is not None:
        de = l2_normalize_backward(de, cache.norm_cache)
    return de


def gradcheck_cases(rng):
    """Small float64 cases for ``scratchface gradcheck``.

    The margins are large enough that every triplet is active: an inactive
    one has an exactly zero gradient, which a relative-error test cannot
    compare with the finite difference's rounding noise.
    """
    a, p, n = (rng.standard_normal((4, 5)) for _ in range(3))
    e = rng.standard_normal((6, 3))
    trip = ([0, 0, 1, 2, 3, 5], [1, 2, 0, 3, 2, 4], [3, 4, 5, 0, 1, 1])
    return [
        GradcheckCase("triplet_loss (normalize)", triplet_loss_forward, triplet_loss_backward,
                      {"anchor": a, "positive": p, "negative": n}, {"alpha": 4.5}),
        GradcheckCase("triplet_loss (raw, sum)", triplet_loss_forward, triplet_loss_backward,
                      {"anchor": a, "positive": p, "negative": n},
                      {"alpha": 100.0, "normalize": False, "reduction": "sum"}),
        GradcheckCase("mined_triplet_loss", mined_triplet_loss_forward, mined_triplet_loss_backward,
                      {"embeddings": e}, {"triplets": trip, "alpha": 4.5}),
    ]
