"""Threshold clustering against SciPy's single linkage; pairwise precision / recall against pair loops."""
from itertools import combinations

import numpy as np
import pytest

from scratchface.recognition.clustering import (connected_components, pairwise_precision_recall,
                                                threshold_clustering)


def _same_partition(a, b):
    """Two labelings describe one partition when 'same cluster' agrees on every pair."""
    return np.array_equal(a[:, None] == a[None, :], b[:, None] == b[None, :])


def test_chaining_hand_case():
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [30.0]])
    # squared distances between neighbours on the line are 1: 0-1-2 chain, 10-11, 30 alone
    assert threshold_clustering(x, 1.0).tolist() == [0, 0, 0, 1, 1, 2]
    assert threshold_clustering(x, 0.5).tolist() == [0, 1, 2, 3, 4, 5]
    assert threshold_clustering(x, 1000.0).tolist() == [0] * 6
    assert threshold_clustering(np.zeros((0, 3)), 1.0).shape == (0,)


def test_matches_scipy_single_linkage(rng):
    hierarchy = pytest.importorskip("scipy.cluster.hierarchy")
    from scipy.spatial.distance import pdist

    centres = 3 * rng.standard_normal((5, 4))
    x = np.repeat(centres, 8, axis=0) + 0.6 * rng.standard_normal((40, 4))
    for threshold in (0.5, 2.0, 4.0, 8.0):
        ours = threshold_clustering(x, threshold, impl="reference")
        z = hierarchy.linkage(pdist(x, "sqeuclidean"), method="single")
        theirs = hierarchy.fcluster(z, threshold, criterion="distance")
        assert _same_partition(ours, theirs)
    n_clusters = np.unique(threshold_clustering(x, 4.0, impl="reference")).size
    assert n_clusters > 1 and n_clusters < 40


def test_connected_components_numbering():
    adj = np.zeros((5, 5), bool)
    adj[3, 1] = adj[1, 3] = adj[4, 2] = adj[2, 4] = True
    assert connected_components(adj).tolist() == [0, 1, 2, 1, 2]


def _brute_pairwise(t, p):
    tp = fp = fn = 0
    for i, j in combinations(range(len(t)), 2):
        same, together = t[i] == t[j], p[i] == p[j]
        tp += same and together
        fp += together and not same
        fn += same and not together
    return tp / (tp + fp), tp / (tp + fn)


def test_pairwise_precision_recall_matches_pair_loop(rng):
    t = rng.integers(0, 6, size=60)
    p = np.where(rng.random(60) < 0.7, t, rng.integers(0, 9, size=60))  # a noisy clustering
    precision, recall, f1 = pairwise_precision_recall(t, p)
    bp, br = _brute_pairwise(t, p)
    assert precision == pytest.approx(bp) and recall == pytest.approx(br)
    assert f1 == pytest.approx(2 * bp * br / (bp + br))


def test_pairwise_hand_cases():
    t = np.array([0, 0, 0, 1, 1])
    # everything in one cluster: 10 pairs together, 3 + 1 = 4 truly same
    assert pairwise_precision_recall(t, np.zeros(5, int))[:2] == (0.4, 1.0)
    # singletons: nothing together (precision 1 by convention), recall 0
    assert pairwise_precision_recall(t, np.arange(5))[:2] == (1.0, 0.0)
    # {0,1} {2,3,4}: together pairs (0,1) (2,3) (2,4) (3,4); same among them (0,1) (3,4)
    assert pairwise_precision_recall(t, np.array([7, 7, 8, 8, 8]))[:2] == (0.5, 0.5)
    assert pairwise_precision_recall(t, t + 100) == (1.0, 1.0, 1.0)


def test_distance_to_mean_and_figure(rng):
    from scratchface.recognition.plots import distance_to_mean, plot_distance_to_mean

    e = rng.standard_normal((9, 3))
    labels = np.array([2, 2, 2, 5, 5, 5, 5, 9, 9])
    people, d = distance_to_mean(e, labels)
    assert people.tolist() == [2, 5, 9]
    mean = e[3:7].mean(axis=0)
    np.testing.assert_allclose(d[1], [np.sum((e[i] - mean) ** 2) for i in range(3, 7)])
    pytest.importorskip("matplotlib")
    fig = plot_distance_to_mean(e, labels)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["2", "5", "9"]


def test_errors():
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        threshold_clustering(np.zeros((2, 2)), np.inf)
    with pytest.raises(ValueError, match="must be a 2-D array"):
        threshold_clustering(np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="must be one of"):
        threshold_clustering(np.zeros((2, 2)), 1.0, metric="manhattan")
    with pytest.raises(ValueError, match="one length"):
        pairwise_precision_recall(np.zeros(3, int), np.zeros(4, int))
    with pytest.raises(ValueError, match="adjacent must be square"):
        connected_components(np.zeros((2, 3), bool))
