"""Online triplet mining inside a mini-batch (FaceNet section 3.1).

With B embeddings of a few people in a batch there are many possible
triplets (2 people x 10 photos: 20 anchors x 9 positives x 10 negatives =
1,800), and most already satisfy the margin and teach nothing. A miner picks
the triplets worth a gradient. Every miner here returns the triplets it chose
as three int64 index arrays ``(a, p, n)`` into the batch, so that a student can
look at them, and :func:`scratchface.losses.triplet.mined_triplet_loss_forward`
consumes them.

Distances are squared Euclidean, :math:`d(i, j) = \\lVert e_i - e_j \\rVert^2`,
on the embeddings as given: pass the L2-normalised embeddings the loss sees.

* ``batch_all_triplets``: every valid triplet (optionally only those still
  violating the margin); the loss then averages over them (``reduction='mean_active'``).
* ``batch_hard_triplets``: per anchor, the hardest positive (farthest) and
  the hardest negative (nearest).
* ``semi_hard_triplets``: FaceNet's choice: every anchor-positive pair, with a
  negative farther than the positive but inside the margin,
  :math:`d(a,p) < d(a,n) < d(a,p) + \\alpha`.

A batch without any positive pair (or without any negative) has no triplet:
the miners then return three empty arrays (shape ``(0,)``), never ``None``.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_choice, check_float_array, check_labels, check_positive_float
from ..backend import to_host
from ..distances import squared_euclidean_distances

__all__ = ["batch_all_triplets", "batch_hard_triplets", "semi_hard_triplets",
           "pairwise_squared_distances"]

_CHOOSE = ("random", "hardest")
_FALLBACK = ("easiest_hard", "hardest", "skip")


def _empty():
    return tuple(np.zeros(0, dtype=np.int64) for _ in range(3))


def _pack(a, p, n):
    return tuple(np.asarray(x, dtype=np.int64) for x in (a, p, n))


def _check(embeddings, labels):
    check_float_array(embeddings, "embeddings", ndim=2)
    labels = np.asarray(labels) if isinstance(labels, (list, tuple)) else labels
    check_labels(labels, "labels", embeddings.shape[0])
    return to_host(labels).astype(np.int64)


def pairwise_squared_distances(embeddings):
    """``d[i, j] = ||e_i - e_j||^2`` for one batch (float64, clamped >= 0, zero diagonal)."""

    e = to_host(embeddings).astype(np.float64)
    return squared_euclidean_distances(e, impl="reference")


def _masks(labels):
    same = labels[:, None] == labels[None, :]
    positive = same & ~np.eye(len(labels), dtype=bool)
    return positive, ~same


def batch_all_triplets(embeddings, labels, *, alpha=None):
    """Every valid triplet of the batch, or every one that still violates the margin.

    Parameters
    ----------
    embeddings : array, shape (B, D), float
    labels : int array, shape (B,)
        Identity of each embedding.
    alpha : float > 0, optional
        When given, keep only the triplets with
        :math:`d(a,p) - d(a,n) + \\alpha > 0` (a positive loss).

    Returns
    -------
    a, p, n : int64 arrays, shape (T,)
        Sorted by anchor, then positive, then negative. ``a != p``,
        ``labels[a] == labels[p] != labels[n]``.

    Examples
    --------
    Two people with ten photos each: 20 x 9 x 10 = 1800 triplets.

    >>> e = np.zeros((20, 2)); labels = np.repeat([0, 1], 10)
    >>> len(batch_all_triplets(e, labels)[0])
    1800
    """
    labels = _check(embeddings, labels)
    if alpha is not None:
        alpha = check_positive_float(alpha, "alpha")
        d = pairwise_squared_distances(embeddings)
    positive, negative = _masks(labels)
    out = ([], [], [])
    for a in range(len(labels)):
        ps, ns = np.flatnonzero(positive[a]), np.flatnonzero(negative[a])
        if not (ps.size and ns.size):
            continue
        pp, nn = np.meshgrid(ps, ns, indexing="ij")  # every (p, n) for this anchor
        keep = np.ones(pp.shape, dtype=bool)
        if alpha is not None:
            keep = d[a, pp] - d[a, nn] + alpha > 0
        out[0].append(np.full(int(keep.sum()), a))
        out[1].append(pp[keep])
        out[2].append(nn[keep])
    if not out[0]:
        return _empty()
    return _pack(*(np.concatenate(x) for x in out))


def batch_hard_triplets(embeddings, labels):
    """Per anchor, the hardest positive and the hardest negative (Hermans et al. 2017).

    Returns
    -------
    a, p, n : int64 arrays, shape (T,)
        One triplet per anchor that has at least one positive and one
        negative: ``p = argmax d(a, .)`` over the positives, ``n = argmin d(a, .)``
        over the negatives (ties: the lower index).
    """
    labels = _check(embeddings, labels)
    d = pairwise_squared_distances(embeddings)
    positive, negative = _masks(labels)
    has = positive.any(1) & negative.any(1)
    anchors = np.flatnonzero(has)
    if anchors.size == 0:
        return _empty()
    hardest_p = np.argmax(np.where(positive, d, -np.inf), axis=1)
    hardest_n = np.argmin(np.where(negative, d, np.inf), axis=1)
    return _pack(anchors, hardest_p[anchors], hardest_n[anchors])


def semi_hard_triplets(embeddings, labels, *, alpha=0.2, rng=None, choose="random",
                       fallback="easiest_hard"):
    """FaceNet's semi-hard triplets: all anchor-positive pairs, each with a semi-hard negative.

    A negative is semi-hard for the pair ``(a, p)`` when

    .. math:: d(a, p) < d(a, n) < d(a, p) + \\alpha ,

    farther than the positive (so not one of the hardest, which FaceNet found
    leads to collapsed models early in training) but still inside the margin
    (so the loss is positive).

    Parameters
    ----------
    embeddings : array, shape (B, D), float
    labels : int array, shape (B,)
    alpha : float > 0
    rng : numpy.random.Generator
        Needed for ``choose='random'`` (no global random state).
    choose : {'random', 'hardest'}
        Among the semi-hard negatives of a pair: one uniformly at random, or
        the nearest (smallest ``d(a, n)``; ties: the lower index).
    fallback : {'easiest_hard', 'hardest', 'skip'}
        When a pair has no semi-hard negative:

        * ``'easiest_hard'`` (default; the rule of TensorFlow's
          ``triplet_semihard_loss``): the farthest negative that is still
          not farther than the positive, :math:`\\max\\{d(a,n) : d(a,n) \\le d(a,p)\\}`;
          if every negative is beyond the margin the pair has zero loss and is skipped;
        * ``'hardest'``: the nearest negative;
        * ``'skip'``: drop the pair.

    Returns
    -------
    a, p, n : int64 arrays, shape (T,)
        Pairs in order of anchor, then positive. Empty when the batch has no
        positive pair or no negative.
    """
    labels = _check(embeddings, labels)
    alpha = check_positive_float(alpha, "alpha")
    check_choice(choose, "choose", _CHOOSE)
    check_choice(fallback, "fallback", _FALLBACK)
    if choose == "random" and not isinstance(rng, np.random.Generator):
        raise TypeError("semi_hard_triplets(choose='random') needs rng=np.random.default_rng(seed), "
                        f"got {type(rng).__name__}")
    d = pairwise_squared_distances(embeddings)
    positive, negative = _masks(labels)
    out = ([], [], [])
    for a, p in zip(*np.nonzero(positive)):  # every anchor-positive pair, in row-major order
        negs = np.flatnonzero(negative[a])
        if negs.size == 0:
            continue
        d_ap, d_an = d[a, p], d[a, negs]
        window = negs[(d_an > d_ap) & (d_an < d_ap + alpha)]
        if window.size:
            if choose == "random":
                n = window[rng.integers(window.size)]
            else:
                n = window[np.argmin(d[a, window])]
        elif fallback == "hardest":
            n = negs[np.argmin(d_an)]
        elif fallback == "easiest_hard":
            hard = negs[d_an <= d_ap]
            if hard.size == 0:
                continue
            n = hard[np.argmax(d[a, hard])]
        else:
            continue
        out[0].append(a)
        out[1].append(p)
        out[2].append(n)
    if not out[0]:
        return _empty()
    return _pack(*out)
