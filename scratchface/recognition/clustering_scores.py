"""Scoring a clustering against the true identities: pairwise and BCubed precision / recall.

A clustering of faces is judged two ways (Amigó et al. 2009 compare them):

**Pairwise** (Otto, Wang, Jain 2018, section 5): over *pairs* of faces. Precision
is the fraction of the pairs put together that really are one person, recall the
fraction of same-person pairs that were put together. With the contingency counts
:math:`n_{ij}` (faces of person :math:`i` in cluster :math:`j`), cluster sizes
:math:`b_j` and person sizes :math:`a_i`:

.. math::

    P_{\\text{pair}} = \\frac{\\sum_{ij} \\binom{n_{ij}}{2}}{\\sum_j \\binom{b_j}{2}}, \\qquad
    R_{\\text{pair}} = \\frac{\\sum_{ij} \\binom{n_{ij}}{2}}{\\sum_i \\binom{a_i}{2}} .

Pairs grow with the square of a cluster's size, so one big wrong merge weighs
much more than many small ones.

**BCubed** (Bagga and Baldwin 1998): over *faces*. For face :math:`x` in cluster
:math:`C(x)` with identity :math:`L(x)`,

.. math::

    P_{\\text{B}} = \\frac{1}{n} \\sum_x \\frac{|C(x) \\cap L(x)|}{|C(x)|}, \\qquad
    R_{\\text{B}} = \\frac{1}{n} \\sum_x \\frac{|C(x) \\cap L(x)|}{|L(x)|} ,

(each face counts itself), so a singleton left alone scores precision and
recall 1, and every face weighs the same.

References
----------
Otto, Wang, Jain, "Clustering millions of faces by identity", TPAMI 2018.
Bagga, Baldwin, "Entity-based cross-document coreferencing using the vector space model", ACL 1998.
Amigó, Gonzalo, Artiles, Verdejo, "A comparison of extrinsic clustering evaluation metrics based on
formal constraints", Information Retrieval 2009.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_array

__all__ = ["ClusterScores", "pairwise_precision_recall", "bcubed_precision_recall", "contingency_table"]


class ClusterScores(NamedTuple):
    """Precision, recall and their harmonic mean (F-measure) of a clustering."""
    precision: float
    recall: float
    f1: float


PairwiseScores = ClusterScores  # the name this type had before BCubed joined it


def _f1(precision, recall):
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def contingency_table(true_labels, predicted_labels):
    """``table[i, j]``: the number of faces of identity ``i`` put in cluster ``j`` (both renumbered 0, 1, ...).

    Raises
    ------
    ValueError, TypeError
        Labels that are not 1-d integer arrays of one length.
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
    return table


def _pairs(counts):
    counts = np.asarray(counts, dtype=np.int64)
    return int((counts * (counts - 1) // 2).sum())


def pairwise_precision_recall(true_labels, predicted_labels):
    """Pairwise precision, recall and F1 of a clustering (the module's first formula).

    Parameters
    ----------
    true_labels : int array, shape (n,)
        Identities.
    predicted_labels : int array, shape (n,)
        Clusters (any integers; only equality matters).

    Returns
    -------
    ClusterScores
        Precision is 1.0 when no two faces are put together; recall is 1.0 when
        no two faces share an identity.
    """
    table = contingency_table(true_labels, predicted_labels)
    together_and_same = _pairs(table)
    together = _pairs(table.sum(axis=0))
    same = _pairs(table.sum(axis=1))
    precision = together_and_same / together if together else 1.0
    recall = together_and_same / same if same else 1.0
    return ClusterScores(float(precision), float(recall), float(_f1(precision, recall)))


def bcubed_precision_recall(true_labels, predicted_labels):
    """BCubed precision, recall and F1 of a clustering (the module's second formula).

    Computed from the contingency table: the faces of cell :math:`(i, j)` each
    score :math:`n_{ij} / b_j` for precision and :math:`n_{ij} / a_i` for recall.

    Returns
    -------
    ClusterScores
        Both 1.0 for an empty input.
    """
    table = contingency_table(true_labels, predicted_labels).astype(np.float64)
    n = table.sum()
    if n == 0:
        return ClusterScores(1.0, 1.0, 1.0)
    cluster_sizes = table.sum(axis=0, keepdims=True)
    person_sizes = table.sum(axis=1, keepdims=True)
    precision = float((table ** 2 / cluster_sizes).sum() / n)
    recall = float((table ** 2 / person_sizes).sum() / n)
    return ClusterScores(precision, recall, float(_f1(precision, recall)))
