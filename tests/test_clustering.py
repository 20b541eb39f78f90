"""Clustering: every method against SciPy or a naive loop on small cases worked by hand; the scores against
pair / item loops; the default on real collections (Yale, ORL) against the figures in docs/results.md."""
from itertools import combinations

import numpy as np
import pytest

from scratchface.recognition.clustering import (DEFAULT_THRESHOLD, average_linkage, average_linkage_reference,
                                                chinese_whispers, cluster_faces, connected_components,
                                                neighbour_pairs, single_linkage, threshold_clustering)
from scratchface.recognition.clustering_scores import bcubed_precision_recall, pairwise_precision_recall


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


# ----------------------------------------------------------------------------- the new methods

def _blobs(rng, people=6, per=7, spread=0.15, gap=1.0, dim=8):
    centres = gap * rng.standard_normal((people, dim))
    labels = np.repeat(np.arange(people), per)
    return centres[labels] + spread * rng.standard_normal((people * per, dim)), labels


def test_neighbour_pairs_equal_brute_force_for_any_block_size(rng):
    x = rng.standard_normal((23, 3))
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    want = [(i, j) for i in range(23) for j in range(i + 1, 23) if d[i, j] <= 1.2]
    for block in (1, 4, 7, 23, 100):
        first, second, dist = neighbour_pairs(x, 1.2, block_size=block)
        assert list(zip(first.tolist(), second.tolist())) == want
        np.testing.assert_allclose(dist, [d[i, j] for i, j in want], atol=1e-12)


def test_average_linkage_hand_case():
    # points on a line: 0, 1 | 2.9 | 10, 10.5 ; Euclidean distances
    x = np.array([[0.0], [1.0], [2.9], [10.0], [10.5]])
    # threshold 1: {0,1} (d=1), {10,10.5} (0.5); 2.9 is 1.9 from 1 and (2.9+1.9)/2 = 2.4 on average from {0,1}
    assert average_linkage_reference(x, 1.0).tolist() == [0, 0, 1, 2, 2]
    assert average_linkage(x, 1.0).tolist() == [0, 0, 1, 2, 2]
    # threshold 2: single linkage chains 2.9 onto {0,1} (1.9 <= 2); average linkage does not (2.4 > 2)
    assert single_linkage(x, 2.0).tolist() == [0, 0, 0, 1, 1]
    assert average_linkage(x, 2.0).tolist() == [0, 0, 1, 2, 2]
    # threshold 2.4: the mean distance is exactly 2.4, merged
    assert average_linkage(x, 2.4).tolist() == [0, 0, 0, 1, 1]
    # the same without distance matrices (the path of groups larger than DENSE_GROUP_MAX): at 2.4 the pair
    # ({0, 1}, {2.9}) has one edge (1.9) and one pair above the threshold, so its lower bound is
    # (1.9 + 2.4) / 2 = 2.15; the exact mean 2.4 is then computed and still merges
    for threshold, want in ((1.0, [0, 0, 1, 2, 2]), (2.0, [0, 0, 1, 2, 2]), (2.4, [0, 0, 0, 1, 1]),
                            (2.3, [0, 0, 1, 2, 2])):
        assert average_linkage(x, threshold, dense_max=1).tolist() == want


def test_average_linkage_equals_reference_and_scipy(rng):
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    for trial in range(4):
        x, _ = _blobs(rng, people=5, per=6, spread=0.4, gap=1.0, dim=4)
        for threshold in (0.3, 0.8, 1.5, 3.0):
            fast = average_linkage(x, threshold, block_size=7)
            assert np.array_equal(fast, average_linkage_reference(x, threshold))
            assert np.array_equal(average_linkage(x, threshold, dense_max=1), fast)  # no distance matrix
            assert _same_partition(fast, fcluster(linkage(pdist(x), "average"), threshold, "distance"))
    x, _ = _blobs(rng, people=20, per=6, spread=0.5, gap=0.8, dim=6)  # groups of the graph that chain people
    for threshold in (0.6, 1.0, 1.4):
        want = fcluster(linkage(pdist(x), "average"), threshold, "distance")
        assert _same_partition(average_linkage(x, threshold, dense_max=1), want)


def test_single_linkage_equals_scipy_in_euclidean_units(rng):
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    x, _ = _blobs(rng, spread=0.5)
    for threshold in (0.2, 0.7, 1.5):
        ours = single_linkage(x, threshold, block_size=5)
        assert _same_partition(ours, fcluster(linkage(pdist(x), "single"), threshold, "distance"))
        assert np.array_equal(ours, threshold_clustering(x, threshold ** 2, impl="reference"))


def test_chinese_whispers_hand_cases():
    # two triangles (side 1) 1.6 apart and a lone point, threshold 1.45: each triangle agrees on one label
    # within a sweep or two, labels never cross between unconnected groups, the lone point keeps its own
    h = np.sqrt(3) / 2
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, h], [2.6, 0.0], [3.6, 0.0], [3.1, h], [9.0, 9.0]])
    for seed in range(10):
        assert chinese_whispers(x, 1.45, rng=seed).tolist() == [0, 0, 0, 1, 1, 1, 2]
    # a face with no neighbour keeps its own label; a lone pair shares one
    y = np.array([[0.0], [0.1], [5.0]])
    assert chinese_whispers(y, 0.5).tolist() == [0, 0, 1]


def test_chinese_whispers_converges_to_a_fixed_point_and_is_seeded(rng):
    x, _ = _blobs(rng, people=5, per=8, spread=0.35, gap=1.0, dim=3)
    first, second, _ = neighbour_pairs(x, 0.8)
    a = chinese_whispers(x, 0.8, rng=3)
    assert np.array_equal(a, chinese_whispers(x, 0.8, rng=np.random.default_rng(3)))
    # at convergence every face holds a most common label among its neighbours (the update rule, checked directly)
    for i in range(len(x)):
        nb = np.concatenate([second[first == i], first[second == i]])
        if nb.size:
            counts = np.bincount(a[nb], minlength=a.max() + 1)
            assert counts[a[i]] == counts.max()


def test_bcubed_matches_item_loop(rng):
    t = rng.integers(0, 5, size=40)
    p = np.where(rng.random(40) < 0.6, t, rng.integers(0, 8, size=40))
    precision = np.mean([np.sum((p == p[i]) & (t == t[i])) / np.sum(p == p[i]) for i in range(40)])
    recall = np.mean([np.sum((p == p[i]) & (t == t[i])) / np.sum(t == t[i]) for i in range(40)])
    got = bcubed_precision_recall(t, p)
    assert got.precision == pytest.approx(precision) and got.recall == pytest.approx(recall)
    assert got.f1 == pytest.approx(2 * precision * recall / (precision + recall))
    # by hand: {0,0,1} in one cluster, {1} alone: precision (2/3+2/3+1/3+1)/4, recall (1+1+1/2+1/2)/4
    assert bcubed_precision_recall(np.array([0, 0, 1, 1]), np.array([5, 5, 5, 6]))[:2] == \
        pytest.approx(((2 / 3 + 2 / 3 + 1 / 3 + 1) / 4, 0.75))


def test_cluster_faces_leaves_out_low_scores_and_keeps_singletons(rng):
    x, labels = _blobs(rng, people=3, per=5, spread=0.05, gap=2.0)
    # a face half way between people 0 and 1: with single linkage it would glue them together
    bridge = (x[labels == 0].mean(0) + x[labels == 1].mean(0)) / 2
    lone = x[0] + 50.0
    e = np.vstack([x, bridge, lone])
    scores = np.r_[np.full(len(x), 0.99), 0.3, 0.99]
    out = cluster_faces(e, method="single", threshold=np.linalg.norm(bridge - x[0]) * 1.05, scores=scores,
                        min_score=0.9)
    assert out[len(x)] == -1                      # the low-score face is left out
    assert out[-1] not in out[:len(x)]            # the lone face stays alone
    assert _same_partition(out[:len(x)], labels)  # the three people stay apart
    for method in ("average", "single", "chinese_whispers"):
        assert _same_partition(cluster_faces(x, method=method, threshold=0.5), labels)


def test_clustering_bad_input():
    e = np.zeros((3, 2))
    with pytest.raises(ValueError, match="threshold must be a finite number >= 0"):
        cluster_faces(e, threshold=-1.0)
    with pytest.raises(ValueError, match="method must be one of"):
        cluster_faces(e, method="kmeans")
    with pytest.raises(ValueError, match="scores and min_score go together"):
        cluster_faces(e, scores=np.ones(3))
    with pytest.raises(ValueError, match=r"scores must have shape \(3,\)"):
        cluster_faces(e, scores=np.ones(2), min_score=0.5)
    with pytest.raises(TypeError, match="rng must be an int seed"):
        chinese_whispers(e, 0.5, rng="seed")
    with pytest.raises(ValueError, match="must be a 2-D array"):
        average_linkage(np.zeros(3))
    # one face, no face: clear, trivial results
    assert cluster_faces(np.zeros((1, 4))).tolist() == [0]
    assert cluster_faces(np.zeros((0, 4))).shape == (0,)


# ----------------------------------------------------------------------------- real collections

@pytest.fixture(scope="module")
def face_sets(data_dir):
    """Yale (all 164) and ORL (all 400) embedded by the pipeline (about a minute and a half of CPU)."""
    from experiments.clustering import embed_largest_faces
    from scratchface.data.orl import load_orl_faces
    from scratchface.data.yale import load_yale_faces

    yale = load_yale_faces(data_dir / "yalefaces")
    y, y_scores, y_kept = embed_largest_faces(yale.images)
    images, labels = load_orl_faces(data_dir / "orl_faces")
    o, o_scores, o_kept = embed_largest_faces(images)
    orl_labels = labels[o_kept]
    odd = ((np.arange(len(labels)) % 10) % 2 == 0)[o_kept]  # photos 1, 3, 5, 7, 9 of each person
    return {"yale": (y, np.asarray(yale.labels)[y_kept]), "orl": (o[odd], orl_labels[odd]),
            "orl_all": (o, orl_labels), "kept": (y_kept, o_kept), "scores": (y_scores, o_scores)}


@pytest.mark.slow
def test_real_faces_pass_the_cluster_commands_min_score(face_sets):
    """docs/usage.md / cli.DEFAULT_MIN_SCORE: every photo of Yale and ORL has a face, and each scores >= 0.975 > 0.9."""
    from scratchface.cli_cluster import DEFAULT_MIN_SCORE

    assert all(kept.all() for kept in face_sets["kept"])
    lowest = min(scores.min() for scores in face_sets["scores"])
    assert lowest >= 0.975 > DEFAULT_MIN_SCORE, lowest


@pytest.mark.slow
@pytest.mark.parametrize("collection, precision, recall", [("yale", 1.0, 0.919), ("orl", 1.0, 0.927)])
def test_default_clustering_on_real_collections(face_sets, collection, precision, recall):
    """docs/results.md: average linkage at 0.45, pairwise P / R 1.000 / 0.919 (Yale, 164), 1.000 / 0.927 (ORL odd)."""
    e, labels = face_sets[collection]
    scores = pairwise_precision_recall(labels, cluster_faces(e))
    assert DEFAULT_THRESHOLD == 0.45
    assert scores.precision == pytest.approx(precision, abs=5e-4)
    assert scores.recall == pytest.approx(recall, abs=5e-4)
    # and the old default (single linkage at dlib's 0.6) is as bad as the issue measured
    old = pairwise_precision_recall(labels, single_linkage(e, 0.6))
    assert old.precision < 0.2 and old.recall == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("collection, n_pairs, accuracy, low, high, accuracy_06, far_06, far_picked", [
    ("orl_all", 3600, 0.9947, 0.539, 0.564, 0.9886, 0.0222, 0.0061),
    ("yale", 1630, 0.9865, 0.522, 0.532, 0.9755, 0.0491, 0.0184)])
def test_verify_default_threshold_figures(face_sets, collection, n_pairs, accuracy, low, high, accuracy_06, far_06,
                                          far_picked):
    """docs/usage.md, Thresholds (verify / identify keep 0.6): FAR and accuracy at 0.6 against the threshold the 10-fold protocol picks.

    ORL (400 photos) and Yale (164), balanced pairs of ``make_pairs(labels, rng=0)``: 10-fold accuracy 0.9947 /
    0.9865 with thresholds 0.539-0.564 / 0.522-0.532; at 0.6 accuracy 0.9886 / 0.9755 and FAR 0.0222 / 0.0491;
    at the median picked threshold FAR 0.0061 / 0.0184. The rates are counted here pair by pair.
    """
    from scratchface.data.pairs import make_pairs
    from scratchface.recognition.verification import kfold_accuracy

    e, labels = face_sets[collection]
    pairs = make_pairs(labels, rng=0)
    d = [float(np.sqrt(((e[i] - e[j]) ** 2).sum())) for i, j in zip(pairs.first, pairs.second)]
    same = [bool(s) for s in pairs.same]
    assert len(d) == n_pairs

    def far(t):
        return sum(x <= t for x, s in zip(d, same) if not s) / sum(not s for s in same)

    result = kfold_accuracy(np.array(d), np.array(same), folds=pairs.fold)
    assert result.mean == pytest.approx(accuracy, abs=5e-5)
    assert (result.thresholds.min(), result.thresholds.max()) == pytest.approx((low, high), abs=5e-4)
    assert sum((x <= 0.6) == s for x, s in zip(d, same)) / len(d) == pytest.approx(accuracy_06, abs=5e-5)
    assert far(0.6) == pytest.approx(far_06, abs=5e-5)
    assert far(float(np.median(result.thresholds))) == pytest.approx(far_picked, abs=5e-5)
