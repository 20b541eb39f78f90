"""Face verification metrics: "same person?" decided by a distance threshold, and how good that is.

Given the distances :math:`d_k` of ``P`` labelled pairs (``same[k]`` True when
both faces show one person), a threshold :math:`t` answers *same* for
:math:`d_k \\le t`. Over all thresholds this gives

* the **ROC curve**: true accept rate :math:`TAR(t) = |\\{k: same_k, d_k \\le t\\}| / |P_{same}|`
  against false accept rate :math:`FAR(t) = |\\{k: \\lnot same_k, d_k \\le t\\}| / |P_{diff}|`;
  its **AUC** is the probability that a random different pair is farther apart
  than a random same pair (ties count one half: the Mann-Whitney statistic);
* **VAL at FAR** (FaceNet section 4): the true accept rate
  :math:`VAL(t) = |TA(t)| / |P_{same}|` at the largest threshold whose
  :math:`FAR(t) = |FA(t)| / |P_{diff}|` does not exceed a target such as :math:`10^{-3}`;
* the **EER**: the error rate where FAR equals the false reject rate :math:`1 - TAR`;
* the **10-fold accuracy** of the LFW protocol: for each fold, the threshold
  that maximises accuracy on the other nine folds is applied to it; the mean
  and standard deviation of the ten accuracies are reported.

Everything takes *distances* (small means same). For similarities (cosine
similarity, a classifier's score) pass their negatives.
:func:`evaluate_embedding` gives all of them (and rank-1 identification) for
an embedding of held-out people, as the ORL tables of ``docs/results.md`` report them.

References
----------
Schroff, Kalenichenko, Philbin, "FaceNet", CVPR 2015, section 4 (VAL, FAR).
Huang et al., "Labeled Faces in the Wild", 2007 (10-fold protocol).
Fawcett, "An introduction to ROC analysis", Pattern Recognition Letters 27, 2006.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_array, check_float_array, check_in_range, check_positive_int
from ..data.pairs import make_pairs, pair_distances
from .identification import rank_one_accuracy

__all__ = ["RocCurve", "KFoldResult", "roc_curve", "roc_auc", "auc", "accuracy_at_threshold",
           "fit_threshold", "kfold_accuracy", "val_far", "val_at_far", "kfold_val_at_far",
           "equal_error_rate", "default_folds", "evaluate_embedding", "check_pairs"]


class RocCurve(NamedTuple):
    """The ROC curve, one point per distinct threshold, from (0, 0) to (1, 1)."""
    far: np.ndarray         #: (T,) false accept rate, non-decreasing
    tar: np.ndarray         #: (T,) true accept rate, non-decreasing
    thresholds: np.ndarray  #: (T,) ``-inf`` then the distinct distances, ascending


class KFoldResult(NamedTuple):
    """Result of the 10-fold protocol."""
    mean: float              #: mean of the per-fold values
    std: float               #: their standard deviation (``ddof=0``, as LFW results are usually given)
    per_fold: np.ndarray     #: (n_folds,) the value measured on each held-out fold
    thresholds: np.ndarray   #: (n_folds,) the threshold chosen on the other folds


# ----------------------------------------------------------------------------- validation

def check_pairs(distances, same):
    """``(distances, same)`` checked: 1-D float distances and one bool per distance (lists are converted)."""
    if isinstance(distances, (list, tuple)):
        distances = np.asarray(distances, dtype=np.float64)
    if isinstance(same, (list, tuple)):
        same = np.asarray(same)
    check_float_array(distances, "distances", ndim=1)
    check_array(same, "same", ndim=1, dtype_kind="b")
    if same.shape[0] != distances.shape[0]:
        raise ValueError(f"same must have one entry per distance ({distances.shape[0]}), got {same.shape[0]}")
    d = np.asarray(distances, dtype=np.float64)
    s = np.asarray(same, dtype=bool)
    return d, s


def _need_both(same, what):
    if same.all() or not same.any():
        raise ValueError(f"{what} needs both same-person and different-person pairs, "
                         f"got {int(same.sum())} same and {int((~same).sum())} different")


def default_folds(n_pairs, n_folds=10):
    """Contiguous folds, as LFW's ``pairs.txt`` is laid out: pair ``k`` is in fold ``k * n_folds // n_pairs``."""
    n_pairs = check_positive_int(n_pairs, "n_pairs")
    n_folds = check_positive_int(n_folds, "n_folds")
    return (np.arange(n_pairs) * n_folds) // n_pairs


def _counts_below(d, same):
    """Distinct distances ``u`` and, for each, the same / different pairs with ``d <= u``."""
    u = np.unique(d)
    same_sorted = np.sort(d[same])
    diff_sorted = np.sort(d[~same])
    n_same_le = np.searchsorted(same_sorted, u, side="right")
    n_diff_le = np.searchsorted(diff_sorted, u, side="right")
    return u, n_same_le, n_diff_le


# ----------------------------------------------------------------------------- ROC

def roc_curve(distances, same):
    """FAR and TAR at every distinct threshold.

    Parameters
    ----------
    distances : float array, shape (P,)
    same : bool array, shape (P,)

    Returns
    -------
    RocCurve
        ``(far, tar, thresholds)``, the first point ``(0, 0)`` at threshold
        ``-inf`` and the last ``(1, 1)`` at the largest distance.
    """
    d, s = check_pairs(distances, same)
    _need_both(s, "roc_curve")
    u, n_same_le, n_diff_le = _counts_below(d, s)
    tar = np.concatenate([[0.0], n_same_le / s.sum()])
    far = np.concatenate([[0.0], n_diff_le / (~s).sum()])
    return RocCurve(far, tar, np.concatenate([[-np.inf], u]))


def auc(far, tar):
    """Area under a curve given by its points (trapezoids), e.g. ``auc(*roc_curve(d, same)[:2])``."""
    far = np.asarray(far, dtype=np.float64)
    tar = np.asarray(tar, dtype=np.float64)
    if far.ndim != 1 or far.shape != tar.shape or far.size < 2:
        raise ValueError(f"far and tar must be 1-D of the same length >= 2, got {far.shape} and {tar.shape}")
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2))


def roc_auc(distances, same):
    """Area under the ROC curve.

    Returns
    -------
    float in [0, 1]
        :math:`P(d_{diff} > d_{same}) + \\tfrac12 P(d_{diff} = d_{same})` over
        all (same pair, different pair) combinations; 1 is perfect, 0.5 chance.
    """
    roc = roc_curve(distances, same)
    return auc(roc.far, roc.tar)


# ----------------------------------------------------------------------------- one threshold

def accuracy_at_threshold(distances, same, threshold):
    """Fraction of pairs classified right by "same iff distance <= threshold"."""
    d, s = check_pairs(distances, same)
    if d.size == 0:
        raise ValueError("accuracy_at_threshold needs at least one pair")
    threshold = float(threshold)
    return float(np.mean((d <= threshold) == s))


def fit_threshold(distances, same):
    """The threshold that classifies labelled pairs best.

    Every distinct way of cutting the sorted distances is tried: thresholds
    halfway between consecutive distinct distances, plus ``-inf`` (all
    different) and ``+inf`` (all same).

    Parameters
    ----------
    distances : float array, shape (P,)
    same : bool array, shape (P,)

    Returns
    -------
    threshold : float
        The smallest of the best cuts (ties: the lowest threshold).
    accuracy : float
        Accuracy on these pairs at ``threshold``.
    """
    d, s = check_pairs(distances, same)
    if d.size == 0:
        raise ValueError("fit_threshold needs at least one pair")
    u, n_same_le, n_diff_le = _counts_below(d, s)
    n_diff = int((~s).sum())
    # cut k (k = 0..T): "same" for the k smallest distinct values; cut 0 calls everything different
    correct = np.concatenate([[n_diff], n_same_le + (n_diff - n_diff_le)])
    k = int(np.argmax(correct))
    edges = np.concatenate([[-np.inf], (u[:-1] + u[1:]) / 2, [np.inf]])
    return float(edges[k]), float(correct[k] / d.size)


def val_far(distances, same, threshold):
    """FaceNet's VAL and FAR at one threshold.

    .. math:: VAL(t) = \\frac{|\\{(i,j) \\in P_{same}: D_{ij} \\le t\\}|}{|P_{same}|}, \\qquad
              FAR(t) = \\frac{|\\{(i,j) \\in P_{diff}: D_{ij} \\le t\\}|}{|P_{diff}|}

    Returns
    -------
    val, far : float
    """
    d, s = check_pairs(distances, same)
    _need_both(s, "val_far")
    t = float(threshold)
    return float(np.mean(d[s] <= t)), float(np.mean(d[~s] <= t))


def val_at_far(distances, same, far=1e-3):
    """VAL at the largest threshold whose FAR is at most ``far``.

    Parameters
    ----------
    distances, same : arrays, shape (P,)
    far : float in [0, 1]
        Target false accept rate (FaceNet reports :math:`10^{-3}`). It can only
        be resolved to about ``1 / |P_diff|``: with 450 different pairs the
        achievable FARs are multiples of 1/450.

    Returns
    -------
    val : float
    achieved_far : float, <= far
    threshold : float
        A distance of the set (``-inf`` when even the smallest different-pair
        distance would exceed the target).
    """
    target = check_in_range(far, "far", 0.0, 1.0)
    roc = roc_curve(distances, same)
    k = int(np.flatnonzero(roc.far <= target + 1e-12)[-1])  # far is non-decreasing; far[0] = 0
    return float(roc.tar[k]), float(roc.far[k]), float(roc.thresholds[k])


# ----------------------------------------------------------------------------- folds

def _fold_array(n, folds, n_folds):
    if folds is None:
        return default_folds(n, n_folds)
    folds = np.asarray(folds)
    check_array(folds, "folds", ndim=1, dtype_kind="iu")
    if folds.shape[0] != n:
        raise ValueError(f"folds must have one entry per pair ({n}), got {folds.shape[0]}")
    return folds.astype(np.int64)


def kfold_accuracy(distances, same, *, folds=None, n_folds=10):
    """Verification accuracy by the LFW protocol: threshold fitted on the other folds.

    Parameters
    ----------
    distances : float array, shape (P,)
    same : bool array, shape (P,)
    folds : int array, shape (P,), optional
        Fold of each pair (e.g. ``Pairs.fold`` from :func:`scratchface.data.pairs.make_pairs`);
        default: ``n_folds`` contiguous blocks (:func:`default_folds`).
    n_folds : int
        Used when ``folds`` is not given.

    Returns
    -------
    KFoldResult
        ``mean`` and ``std`` of the held-out accuracies, each fold's accuracy
        and the threshold :func:`fit_threshold` chose on the other folds.
    """
    d, s = check_pairs(distances, same)
    f = _fold_array(d.size, folds, n_folds)
    labels = np.unique(f)
    if labels.size < 2:
        raise ValueError(f"kfold_accuracy needs at least 2 folds, got {labels.size}")
    accs, thresholds = [], []
    for k in labels:
        test = f == k
        t, _ = fit_threshold(d[~test], s[~test])
        thresholds.append(t)
        accs.append(np.mean((d[test] <= t) == s[test]))
    accs = np.asarray(accs)
    return KFoldResult(float(accs.mean()), float(accs.std()), accs, np.asarray(thresholds))


def kfold_val_at_far(distances, same, far=1e-3, *, folds=None, n_folds=10):
    """VAL at FAR with the threshold chosen on the other folds, measured on each held-out fold.

    Returns
    -------
    KFoldResult
        Per-fold VAL, with ``thresholds`` the threshold from the other folds.
        The FAR actually reached on each fold can exceed the target (the
        threshold was not chosen on it).
    """
    d, s = check_pairs(distances, same)
    f = _fold_array(d.size, folds, n_folds)
    vals, thresholds = [], []
    for k in np.unique(f):
        test = f == k
        _, _, t = val_at_far(d[~test], s[~test], far)
        thresholds.append(t)
        vals.append(np.mean(d[test & s] <= t) if (test & s).any() else np.nan)
    vals = np.asarray(vals)
    return KFoldResult(float(np.nanmean(vals)), float(np.nanstd(vals)), vals, np.asarray(thresholds))


def equal_error_rate(distances, same):
    """The equal error rate: where the ROC curve crosses FAR = 1 - TAR.

    Between two ROC points the curve is taken as a straight line, so the EER
    and its threshold are interpolated linearly.

    Returns
    -------
    eer : float in [0, 1]
    threshold : float
        Interpolated between the two thresholds around the crossing.

    Examples
    --------
    Same pairs at 1 and 3, different pairs at 2 and 4: at threshold 1, FAR = 0
    and FRR = 1/2; at 2, FAR = 1/2 and FRR = 1/2.

    >>> equal_error_rate(np.array([1.0, 3.0, 2.0, 4.0]), np.array([True, True, False, False]))
    (0.5, 2.0)
    """
    roc = roc_curve(distances, same)
    gap = roc.far - (1.0 - roc.tar)     # from -1 at (0, 0) up to +1 at (1, 1)
    k = int(np.argmax(gap >= 0))        # the first point on or past the crossing (k >= 1)
    if gap[k] == 0:
        return float(roc.far[k]), float(roc.thresholds[k])
    frac = -gap[k - 1] / (gap[k] - gap[k - 1])
    eer = roc.far[k - 1] + frac * (roc.far[k] - roc.far[k - 1])
    t0, t1 = roc.thresholds[k - 1], roc.thresholds[k]
    threshold = t1 if not np.isfinite(t0) else t0 + frac * (t1 - t0)
    return float(eer), float(threshold)


def evaluate_embedding(embeddings, labels, *, rng=0, n_folds=10):
    """Verification and identification numbers of an embedding on held-out people.

    Parameters
    ----------
    embeddings : float array, shape (N, D)
    labels : int array, shape (N,)
    rng : int or Generator
        Seeds the choice of the different-person pairs.

    Returns
    -------
    dict
        ``'accuracy'``, ``'accuracy_std'`` (10-fold verification, squared
        Euclidean distance), ``'auc'``, ``'eer'``, ``'val_at_far_1e-2'``,
        ``'rank1'`` (one gallery image per person, mean over which image is
        enrolled) and ``'n_pairs'``.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    pairs = make_pairs(labels, n_folds=n_folds, rng=rng)
    d = pair_distances(embeddings, pairs)
    acc = kfold_accuracy(d, pairs.same, folds=pairs.fold)
    # rank-1 with one enrolled image: the j-th image of every person, for every j
    position = np.zeros(labels.size, dtype=np.int64)
    for person in np.unique(labels):
        mine = np.flatnonzero(labels == person)
        position[mine] = np.arange(mine.size)
    rank1 = []
    for j in range(int(np.bincount(position).size)):
        gallery = position == j
        if np.unique(labels[gallery]).size != np.unique(labels).size:
            continue
        rank1.append(rank_one_accuracy(embeddings[~gallery], labels[~gallery], embeddings[gallery],
                                       labels[gallery], impl="reference"))
    return {"accuracy": acc.mean, "accuracy_std": acc.std, "auc": roc_auc(d, pairs.same),
            "eer": equal_error_rate(d, pairs.same)[0], "val_at_far_1e-2": val_at_far(d, pairs.same, 1e-2)[0],
            "rank1": float(np.mean(rank1)), "n_pairs": int(d.size)}
