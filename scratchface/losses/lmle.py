"""LMLE: quintuplets and the triple-header hinge loss (Huang et al., CVPR 2016).

Large Margin Local Embedding learns from imbalanced data by keeping the
*local* structure inside a class: each class is first split into clusters
(k-means on the current features), and for every anchor :math:`x_i` four
partners are chosen:

* :math:`x_i^{p+}`: the most distant neighbour inside the anchor's cluster;
* :math:`x_i^{p-}`: the nearest neighbour of the same class but another cluster;
* :math:`x_i^{p--}`: the most distant neighbour of the same class;
* :math:`x_i^{n}`: the nearest neighbour of another class.

The loss wants, with :math:`D(a, b) = \\lVert f(a) - f(b)\\rVert^2`,

.. math:: D(x_i, x_i^{p+}) < D(x_i, x_i^{p-}) < D(x_i, x_i^{p--}) < D(x_i, x_i^{n})

with gaps :math:`g_1, g_2, g_3`, as three hinges (the "triple header"):

.. math::

    L_i = [g_1 + D(x_i, x_i^{p+}) - D(x_i, x_i^{p-})]_+
        + [g_2 + D(x_i, x_i^{p-}) - D(x_i, x_i^{p--})]_+
        + [g_3 + D(x_i, x_i^{p--}) - D(x_i, x_i^{n})]_+ .

The clusters are recomputed every few thousand iterations (5000 in the paper);
at test time a cluster-wise kNN classifies.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_choice, check_float_array, check_labels, check_positive_float
from ..backend import get_array_module, to_host
from ..gradcheck import GradcheckCase
from ._common import as_index_array, check_batch, l2_normalize_backward, l2_normalize_forward, reduce_losses
from .mining import pairwise_squared_distances

__all__ = ["lmle_quintuplets", "lmle_loss_forward", "lmle_loss_backward",
           "mined_lmle_loss_forward", "mined_lmle_loss_backward", "gradcheck_cases"]

_NAMES = ("anchor", "p_plus", "p_minus", "p_minus2", "negative")


class LMLECache(NamedTuple):
    rows: tuple          # the five (normalised) (N, D) arrays
    dd: object           # (4, N): d loss / d D(anchor, partner_k), k = p+, p-, p--, n
    norm_caches: tuple   # l2_normalize caches, or None


class MinedLMLECache(NamedTuple):
    quintuplets: tuple
    num_features: int
    inner: LMLECache
    norm_cache: object


def lmle_quintuplets(features, class_labels, cluster_labels):
    """Form the quintuplets of every anchor from its class and cluster.

    Parameters
    ----------
    features : array, shape (B, D), float
        Distances are squared Euclidean on the features as given.
    class_labels : int array, shape (B,)
    cluster_labels : int array, shape (B,)
        Cluster ids, nested in the classes (one cluster never spans two classes).

    Returns
    -------
    anchor, p_plus, p_minus, p_minus2, negative : int64 arrays, shape (T,)
        One row per anchor that has all four partners (a cluster-mate, a
        class-mate in another cluster, and a sample of another class); other
        anchors are skipped, so ``T`` may be 0. Ties: the lower index.

    Raises
    ------
    ValueError
        A cluster that holds samples of two classes.
    """
    check_float_array(features, "features", ndim=2)
    b = features.shape[0]
    labels, clusters = [], []
    for arr, name in ((class_labels, "class_labels"), (cluster_labels, "cluster_labels")):
        arr = np.asarray(arr) if isinstance(arr, (list, tuple)) else arr
        check_labels(arr, name, b)
        (labels if name == "class_labels" else clusters).append(to_host(arr).astype(np.int64))
    labels, clusters = labels[0], clusters[0]
    for c in np.unique(clusters):
        held = np.unique(labels[clusters == c])
        if held.size > 1:
            raise ValueError(f"cluster_labels must nest inside class_labels: cluster {int(c)} holds "
                             f"samples of classes {held.tolist()}")
    d = pairwise_squared_distances(features)
    not_self = ~np.eye(b, dtype=bool)
    same_class = (labels[:, None] == labels[None, :]) & not_self
    same_cluster = (clusters[:, None] == clusters[None, :]) & not_self
    other_cluster = same_class & ~same_cluster
    other_class = labels[:, None] != labels[None, :]
    ok = same_cluster.any(1) & other_cluster.any(1) & other_class.any(1)
    anchors = np.flatnonzero(ok)
    if anchors.size == 0:
        return tuple(np.zeros(0, dtype=np.int64) for _ in range(5))
    p_plus = np.argmax(np.where(same_cluster, d, -np.inf), axis=1)
    p_minus = np.argmin(np.where(other_cluster, d, np.inf), axis=1)
    p_minus2 = np.argmax(np.where(same_class, d, -np.inf), axis=1)
    negative = np.argmin(np.where(other_class, d, np.inf), axis=1)
    return tuple(x.astype(np.int64) for x in (anchors, p_plus[anchors], p_minus[anchors],
                                                p_minus2[anchors], negative[anchors]))


def _check_margins(margins):
    if not (isinstance(margins, (tuple, list)) and len(margins) == 3):
        raise TypeError(f"margins must be three numbers (g1, g2, g3), got {margins!r}"[:100])
    return tuple(check_positive_float(g, f"margins[{i}]") for i, g in enumerate(margins))


def _lmle_core(rows, margins, reduction):
    xp = get_array_module(rows[0])
    a = rows[0]
    dist = [((a - x) ** 2).sum(axis=1) for x in rows[1:]]          # D(a, p+), D(a, p-), D(a, p--), D(a, n)
    z = [margins[k] + dist[k] - dist[k + 1] for k in range(3)]
    per_anchor = sum(xp.maximum(zk, 0) for zk in z)
    loss, weight = reduce_losses(per_anchor, reduction)
    h = [(zk > 0) * weight for zk in z]                             # active hinges, weighted
    dd = xp.stack([h[0], h[1] - h[0], h[2] - h[1], -h[2]])
    return loss, dd


def lmle_loss_forward(anchor, p_plus, p_minus, p_minus2, negative, *, margins=(0.1, 0.1, 0.1),
                      normalize=True, reduction="mean"):
    """Triple-header hinge loss of LMLE, forward.

    Parameters
    ----------
    anchor, p_plus, p_minus, p_minus2, negative : arrays, shape (N, D), float
        One row per quintuplet (gather them with ``lmle_quintuplets``).
    margins : three floats > 0
        The gaps :math:`(g_1, g_2, g_3)`. The paper treats them as
        hyper-parameters; these defaults are ours.
    normalize : bool
        L2-normalise the rows first (the paper keeps features on the unit sphere).
    reduction : {'mean', 'sum'}

    Returns
    -------
    loss : scalar ; cache : LMLECache

    Notes
    -----
    With :math:`h_k = [z_k > 0]` the active hinges,
    :math:`\\partial L_i/\\partial D_1 = h_1`, :math:`\\partial L_i/\\partial D_2 = h_2 - h_1`,
    :math:`\\partial L_i/\\partial D_3 = h_3 - h_2`, :math:`\\partial L_i/\\partial D_4 = -h_3`;
    :math:`\\partial D(a, x)/\\partial a = 2(a - x)`, :math:`\\partial D(a, x)/\\partial x = 2(x - a)`.

    References
    ----------
    Huang, Li, Loy, Tang, "Learning Deep Representation for Imbalanced
    Classification", CVPR 2016, eq. 1-2.
    """
    arrays = dict(zip(_NAMES, (anchor, p_plus, p_minus, p_minus2, negative)))
    check_batch(arrays)
    margins = _check_margins(margins)
    check_choice(reduction, "reduction", ("mean", "sum"))
    if normalize:
        pairs = [l2_normalize_forward(x, axis=1) for x in arrays.values()]
        rows, caches = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
    else:
        rows, caches = tuple(arrays.values()), None
    loss, dd = _lmle_core(rows, margins, reduction)
    return loss, LMLECache(rows, dd, caches)


def lmle_loss_backward(dloss, cache):
    """``(danchor, dp_plus, dp_minus, dp_minus2, dnegative)``, each (N, D)."""
    rows, dd, caches = cache
    a = rows[0]
    grads_partner = [(2 * dloss * dd[k])[:, None] * (rows[k + 1] - a) for k in range(4)]
    da = -sum(grads_partner)
    grads = (da, *grads_partner)
    if caches is not None:
        grads = tuple(l2_normalize_backward(g, c) for g, c in zip(grads, caches))
    return grads


def mined_lmle_loss_forward(features, *, quintuplets, margins=(0.1, 0.1, 0.1), normalize=True,
                            reduction="mean"):
    """LMLE loss over a batch of features and the quintuplets ``lmle_quintuplets`` formed.

    Returns ``(loss, cache)``; the backward returns ``dfeatures`` (B, D), each
    quintuplet's gradients added into the rows it used.
    """
    check_float_array(features, "features", ndim=2)
    if not (isinstance(quintuplets, (tuple, list)) and len(quintuplets) == 5):
        raise TypeError("quintuplets must be a tuple of five index arrays, as lmle_quintuplets returns")
    b = features.shape[0]
    idx = tuple(as_index_array(q, f"quintuplets[{i}] ({name})", b)
                for i, (q, name) in enumerate(zip(quintuplets, _NAMES)))
    if len({q.shape for q in idx}) != 1:
        raise ValueError(f"the five index arrays of quintuplets must have one length, got {[len(q) for q in idx]}")
    margins = _check_margins(margins)
    check_choice(reduction, "reduction", ("mean", "sum"))
    if normalize:
        f, norm_cache = l2_normalize_forward(features, axis=1)
    else:
        f, norm_cache = features, None
    xp = get_array_module(features)
    rows = tuple(f[xp.asarray(q)] for q in idx)
    loss, cache = lmle_loss_forward(*rows, margins=margins, normalize=False, reduction=reduction)
    return loss, MinedLMLECache(idx, b, cache, norm_cache)


def mined_lmle_loss_backward(dloss, cache):
    """Backward of ``mined_lmle_loss_forward``: ``dfeatures``, shape (B, D)."""
    xp = get_array_module(cache.inner.rows[0])
    grads = lmle_loss_backward(dloss, cache.inner)
    first = cache.inner.rows[0]
    df = xp.zeros((cache.num_features, first.shape[1]), dtype=first.dtype)
    for q, g in zip(cache.quintuplets, grads):
        xp.add.at(df, xp.asarray(q), g)
    if cache.norm_cache is not None:
        df = l2_normalize_backward(df, cache.norm_cache)
    return df


def gradcheck_cases(rng):
    """Hinges 1 and 3 active, hinge 2 not (with all three active, the gradients of
    p- and p-- cancel to exact zeros, which a relative-error test cannot check)."""
    n, dim = 3, 4
    e1 = np.zeros(dim)
    e1[0] = 1.0

    def near(v):
        return v + 0.1 * rng.standard_normal((n, dim))

    rows = {"anchor": near(e1), "p_plus": near(np.roll(e1, 1)), "p_minus": near(e1),
            "p_minus2": near(-e1), "negative": near(np.roll(e1, 2))}
    feats = rng.standard_normal((8, 3))
    classes = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    clusters = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    quints = lmle_quintuplets(feats, classes, clusters)
    return [
        GradcheckCase("lmle_loss", lmle_loss_forward, lmle_loss_backward, rows, {"margins": (4.5, 0.5, 0.5)}),
        GradcheckCase("mined_lmle_loss", mined_lmle_loss_forward, mined_lmle_loss_backward,
                      {"features": feats}, {"quintuplets": quints, "margins": (4.5, 0.5, 4.5)}),
    ]
