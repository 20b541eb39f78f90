"""Identification: CMC and rank-1 against brute force, open-set identification by hand."""
import numpy as np
import pytest

from scratchface.recognition.identification import (UNKNOWN, cmc_curve, correct_ranks, identify,
                                                    open_set_identification, rank_one_accuracy)


def _brute_ranks(probes, probe_labels, gallery, gallery_labels):
    ranks = []
    for p, label in zip(probes, probe_labels):
        best = {}  # identity -> nearest distance, by loops
        for g, gl in zip(gallery, gallery_labels):
            dist = float(np.sum((p - g) ** 2))
            best[gl] = min(best.get(gl, np.inf), dist)
        ranks.append(1 + sum(1 for k, v in best.items() if k != label and v < best[label]))
    return np.array(ranks)


def test_cmc_matches_brute_force(rng):
    gallery_labels = np.repeat(np.arange(8), 2)        # two enrolled images per person
    gallery = rng.standard_normal((16, 6))
    probe_labels = rng.integers(0, 8, size=40)
    probes = gallery[2 * probe_labels] + 1.2 * rng.standard_normal((40, 6))
    ranks = _brute_ranks(probes, probe_labels, gallery, gallery_labels)
    assert np.array_equal(correct_ranks(probes, probe_labels, gallery, gallery_labels, impl="reference"), ranks)
    cmc = cmc_curve(probes, probe_labels, gallery, gallery_labels, impl="reference")
    expected = [np.mean(ranks <= r) for r in range(1, 9)]
    np.testing.assert_allclose(cmc, expected)
    assert cmc[-1] == 1.0 and np.all(np.diff(cmc) >= 0)
    assert rank_one_accuracy(probes, probe_labels, gallery, gallery_labels, impl="reference") == expected[0]
    assert 0 < expected[0] < 1  # the case is neither trivial nor hopeless


def test_rank_one_hand_case():
    gallery = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    gallery_labels = np.array([5, 6, 7])
    probes = np.array([[1.0, 0.0], [9.0, 1.0], [6.0, 0.0], [1.0, 8.0]])
    probe_labels = np.array([5, 6, 5, 7])
    # third probe (6, 0) is nearer 6 (dist 16) than its own 5 (36), and farther than 7 (136): rank 2
    assert correct_ranks(probes, probe_labels, gallery, gallery_labels).tolist() == [1, 1, 2, 1]
    assert rank_one_accuracy(probes, probe_labels, gallery, gallery_labels) == 0.75
    np.testing.assert_allclose(cmc_curve(probes, probe_labels, gallery, gallery_labels, max_rank=3),
                               [0.75, 1.0, 1.0])


def test_identify_and_open_set_hand_case():
    gallery = np.array([[0.0, 0.0], [10.0, 0.0]])
    gallery_labels = np.array([1, 2])
    probes = np.array([[1.0, 0.0], [8.0, 0.0], [5.0, 6.0], [0.5, 0.0]])
    probe_labels = np.array([1, 1, 3, 9])  # 1 is enrolled; 3 and 9 are not
    labels, dist = identify(probes, gallery, gallery_labels, threshold=2.0)
    # squared distances to the nearest identity: 1, 4, 61, 0.25
    np.testing.assert_allclose(dist, [1.0, 4.0, 61.0, 0.25])
    assert labels.tolist() == [1, UNKNOWN, UNKNOWN, 1]
    closed, _ = identify(probes, gallery, gallery_labels)
    assert closed.tolist() == [1, 2, 1, 1]
    r = open_set_identification(probes, probe_labels, gallery, gallery_labels, threshold=2.0)
    # known probes: the first is named right, the second rejected -> DIR 1/2;
    # unknown probes: the impostor at 0.25 is accepted as person 1 -> FAR 1/2
    assert r == (0.5, 0.5, 2, 2)
    r = open_set_identification(probes, probe_labels, gallery, gallery_labels, threshold=0.1)
    assert r.detection_identification_rate == 0.0 and r.false_alarm_rate == 0.0


def test_cosine_metric(rng):
    gallery = rng.standard_normal((5, 4))
    labels = np.arange(5)
    probes = 3.0 * gallery  # same directions, other norms: cosine distance 0 to its own
    assert rank_one_accuracy(probes, labels, gallery, labels, metric="cosine") == 1.0


def test_errors(rng):
    g = rng.standard_normal((3, 2))
    with pytest.raises(ValueError, match="not in the gallery"):
        correct_ranks(g, np.array([0, 1, 9]), g, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="gallery is empty"):
        identify(g, np.zeros((0, 2)), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match="one label per embedding"):
        identify(g, g, np.array([0, 1]))
    with pytest.raises(TypeError, match="gallery_labels must have a signed integer"):
        identify(g, g, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="same number of columns"):
        identify(g, rng.standard_normal((3, 5)), np.arange(3))


def test_nearest_neighbour_gallery_figure(rng):
    pytest.importorskip("matplotlib")
    from scratchface.distances import nearest_neighbors
    from scratchface.recognition.plots import plot_nearest_neighbors

    images = rng.random((6, 8, 7))
    e = rng.standard_normal((6, 3))
    idx, dist = nearest_neighbors(e[:2], e, k=3, impl="reference")
    fig = plot_nearest_neighbors(images[:2], images, idx, distances=dist, query_labels=np.array([0, 1]),
                                 gallery_labels=np.array([0, 0, 1, 1, 2, 2]))
    assert len(fig.axes) == 2 * 4
    with pytest.raises(ValueError, match="gallery's rows"):
        plot_nearest_neighbors(images[:1], images, np.array([[7]]))
