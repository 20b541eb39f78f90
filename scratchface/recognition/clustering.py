"""Clustering faces by a distance threshold, and pairwise precision / recall of a clustering.

"Which photos show the same person?" without any labels: join two faces when
their embeddings are closer than the verification threshold, and call every
connected group a person. That is **single-linkage** agglomerative clustering
cut at the threshold: two faces end in one cluster when a chain of faces
links them, each step at most ``threshold`` apart. It is what photo libraries
do ("people" albums) and what ``scratchface cluster DIR`` prints.

A clustering is scored on pairs of faces: **pairwise precision** is the
fraction of the pairs put together that really are one person, **pairwise
recall** the fraction of the same-person pairs that were put together. With
the contingency counts :math:`n_{ij}` (faces of person :math:`i` in cluster
:math:`j`), cluster sizes :math:`b_j` and person sizes :math:`a_i`:

.. math::

    \\text{precision} = \\frac{\\sum_{ij} \\binom{n_{ij}}{2}}{\\sum_j \\binom{b_j}{2}}, \\qquad
    \\text{recall} = \\frac{\\sum_{ij} \\binom{n_{ij}}{2}}{\\sum_i \\binom{a_i}{2}} .

References
----------
Otto, Wang, Jain, "Clustering millions of faces by identity", TPAMI 2018
(pairwise precision / recall, section 5).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_array, check_choice, check_float_array
from .distances import pairwise_distances

__all__ = ["threshold_clustering", "connected_components", "PairwiseScores", "pairwise_precision_recall"]


class PairwiseScores(NamedTuple):
    """Pairwise scores of a clustering against the true identities."""
    precision: float  #: same-person pairs among the pairs clustered together (1.0 when none are)
    recall: float     #: clustered-together pairs among the same-person pairs (1.0 when there are none)
    f1: float         #: harmonic mean of the two


def connected_components(adjacent):
    """Connected components of an undirected graph given by a boolean adjacency matrix.

    Union-find with path halving: every edge ``(i, j)`` joins the sets of ``i``
    and ``j``.

    Parameters
    ----------
    adjacent : bool array, shape (n, n), symmetric

    Returns
    -------
    labels : int64 array, shape (n,)
        Component numbers 0, 1, ... in order of each component's first node.
    """
    check_array(adjacent, "adjacent", ndim=2, dtype_kind="b")
    n = adjacent.shape[0]
    if adjacent.shape[1] != n:
        raise ValueError(f"adjacent must be square, got shape {adjacent.shape}")
    parent = np.arange(n)

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(adjacent, k=1) | np.triu(adjacent.T, k=1))):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    _, labels = np.unique(roots, return_inverse=True)  # roots are each component's smallest node
    return labels.astype(np.int64)


def threshold_clustering(embeddings, threshold, *, metric="sqeuclidean", impl="auto"):
    """Single-linkage clusters: faces chained by distances ``<= threshold`` share a label.

    Parameters
    ----------
    embeddings : float array, shape (n, D)
    threshold : float
        In the units of ``metric`` (squared Euclidean by default: use the
        verification threshold, e.g. from
        :func:`scratchface.recognition.verification.fit_threshold`).
    metric : {'sqeuclidean', 'cosine'}
    impl : {'auto', 'reference', 'numba'}
        For the distance matrix.

    Returns
    -------
    labels : int64 array, shape (n,)
        Cluster numbers 0, 1, ... in order of first appearance; an empty
        input gives an empty array.

    Notes
    -----
    Equals SciPy's ``fcluster(linkage(y, 'single'), threshold, 'distance')`` up
    to the numbering. The full ``n x n`` distance matrix is formed: fine for
    a few thousand faces.
    """
    check_float_array(embeddings, "embeddings", ndim=2)
    check_choice(metric, "metric", ("sqeuclidean", "cosine"))
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold}")
    if embeddings.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    d = pairwise_distances(embeddings, metric=metric, impl=impl)
    return connected_components(np.asarray(d) <= threshold)


def _pairs(counts):
    counts = np.asarray(counts, dtype=np.int64)
    return int((counts * (counts - 1) // 2).sum())


def pairwise_precision_recall(true_labels, predicted_labels):
    """Pairwise precision, recall and F1 of a clustering.

    Parameters
    ----------
    true_labels : int array, shape (n,)
        Identities.
    predicted_labels : int array, shape (n,)
        Clusters (any integers; only equality matters).

    Returns
    -------
    PairwiseScores
    """
    t = np.asarray(true_labels)
    p = np.asarray(predicted_labels)
    check_array(t, "true_labels", ndim=1, dtype_kind="iu")
    check_array(p, "predicted_labels", ndim=1, dtype_kind="iu")
    if t.shape != p.shape:
        raise ValueError(f"true_labels and predicted_labels must have one length, got {t.size} and {p.size}")
    _, ti = np.unique(t, return_inverse=True)
    _, pi = np.unique(p, return_inverse=True)
    table = np.zeros((ti.max(initial=-1) + 1, pi.max(initial=-1) + 1), dtype=np.int64)
    np.add.at(table, (ti, pi), 1)
    together_and_same = _pairs(table)
    together = _pairs(table.sum(axis=0))
    same = _pairs(table.sum(axis=1))
    precision = together_and_same / together if together else 1.0
    recall = together_and_same / same if same else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PairwiseScores(float(precision), float(recall), float(f1))
