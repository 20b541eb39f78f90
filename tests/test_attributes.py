"""Yale attributes: balanced accuracy, leave-people-out folds, class re-weighting, LMLE, the pipeline."""
import numpy as np
import pytest

import experiments.attributes as xat
from scratchface.detection.svm import LinearSVM, hinge_objective
from scratchface.recognition import attributes as at

# ----------------------------------------------------------------------------- the metric


def test_balanced_accuracy_by_hand():
    # TPR = 1/1, TNR = 2/3 -> (1 + 2/3) / 2
    assert at.balanced_accuracy([1, 0, 0, 0], [1, 0, 0, 1]) == pytest.approx(5 / 6)
    # always "no" on 1 positive in 11: plain accuracy 10/11, balanced accuracy 1/2
    y = np.array([1] + [0] * 10)
    assert at.balanced_accuracy(y, np.zeros(11, int)) == 0.5
    # three classes: recalls 1/2, 1/1, 2/3
    assert at.balanced_accuracy([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0]) == pytest.approx((1 / 2 + 1 + 2 / 3) / 3)
    # a predicted class absent from y_true only lowers the recall of the true class
    assert at.balanced_accuracy([0, 0], [0, 5]) == 0.5
    assert at.balanced_accuracy(np.array([True, False]), np.array([True, False])) == 1.0


def test_balanced_accuracy_errors():
    with pytest.raises(ValueError, match="non-empty and of one shape"):
        at.balanced_accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="non-empty"):
        at.balanced_accuracy(np.zeros(0, int), np.zeros(0, int))
    with pytest.raises(TypeError, match="y_true"):
        at.balanced_accuracy([0.5, 1.0], [0, 1])


# ----------------------------------------------------------------------------- labels and folds

def test_attribute_labels_by_hand():
    conditions = ["happy", "glasses", "noglasses", "normal", "leftlight", "glasses"]
    index, y = at.attribute_labels(conditions, "glasses")
    assert index.tolist() == [1, 2, 5] and y.tolist() == [1, 0, 1]
    index, y = at.attribute_labels(conditions, "happy")
    assert index.tolist() == list(range(6)) and y.tolist() == [1, 0, 0, 0, 0, 0]
    index, y = at.attribute_labels(conditions, "leftlight")
    assert y.tolist() == [0, 0, 0, 0, 1, 0]
    with pytest.raises(ValueError, match="attribute must be one of"):
        at.attribute_labels(conditions, "beard")


def test_subject_folds_never_share_a_subject():
    subjects = np.repeat(np.arange(1, 16), 11)[:-1]          # 15 people, 164 images like Yale
    fold = at.subject_folds(subjects, 5, rng=3)
    assert fold.shape == subjects.shape and set(fold.tolist()) == set(range(5))
    for k in range(5):
        inside, outside = set(subjects[fold == k]), set(subjects[fold != k])
        assert inside.isdisjoint(outside)
        assert len(inside) == 3                               # 15 people dealt into 5 folds of 3
    for s in np.unique(subjects):
        assert np.unique(fold[subjects == s]).size == 1
    np.testing.assert_array_equal(fold, at.subject_folds(subjects, 5, rng=3))   # seeded
    assert not np.array_equal(fold, at.subject_folds(subjects, 5, rng=4))
    with pytest.raises(ValueError, match="n_folds must be at most the number of subjects"):
        at.subject_folds([1, 1, 2], 3)


def test_standardize_uses_training_statistics():
    train = np.array([[0.0, 5.0], [2.0, 5.0]])
    a, b = at.standardize(train, np.array([[4.0, 6.0]]))
    np.testing.assert_allclose(a, [[-1, 0], [1, 0]])
    np.testing.assert_allclose(b, [[3, 1]])                   # constant column: divided by 1


# ----------------------------------------------------------------------------- re-weighting

def test_balanced_class_weights_formula():
    y = np.array([0] * 9 + [1] * 3)
    w = at.balanced_class_weights(y)
    assert w == pytest.approx({0: 12 / (2 * 9), 1: 12 / (2 * 3)})      # 2/3 and 2
    assert 9 * w[0] == pytest.approx(3 * w[1])                         # each class weighs n / k = 6
    three = at.balanced_class_weights([5, 5, 7, 9, 9, 9])
    assert three == pytest.approx({5: 1.0, 7: 2.0, 9: 2 / 3})
    assert at.balanced_class_weights([1, 1, 0, 0]) == {0: 1.0, 1: 1.0}
    with pytest.raises(ValueError, match="at least one label"):
        at.balanced_class_weights(np.zeros(0, int))


def test_reweighting_changes_the_svm_the_way_the_formula_says(rng):
    x = np.vstack([rng.normal(0.0, 1.0, (40, 3)), rng.normal(1.0, 1.0, (6, 3))])
    y = np.array([0] * 40 + [1] * 6)
    weights = at.balanced_class_weights(y)
    svm = LinearSVM(C=0.5, class_weight=weights, tol=1e-8, max_iter=5000).fit(x, y)
    # the objective the SVM reports is the hinge loss with C_i = C * w[y_i], recomputed here by hand
    sample_c = 0.5 * np.where(y == 1, 46 / 12, 46 / 80)
    by_hand = hinge_objective(svm.coef_, svm.intercept_, x, np.where(y == 1, 1.0, -1.0), sample_c)
    assert svm.objective(x, y) == pytest.approx(by_hand, rel=1e-12)
    assert np.all(svm.dual_coef_[y == 1] <= sample_c[y == 1] + 1e-12)
    assert np.any(np.isclose(svm.dual_coef_[y == 1], sample_c[y == 1]))   # the larger box is used
    # the same weights as the SVM's own 'balanced' option
    other = LinearSVM(C=0.5, class_weight="balanced", tol=1e-8, max_iter=5000).fit(x, y)
    np.testing.assert_allclose(svm.coef_, other.coef_, atol=1e-10)
    # and they recover the minority class the plain SVM gives up on
    plain = LinearSVM(C=0.5, tol=1e-8, max_iter=5000).fit(x, y)
    assert np.sum(svm.predict(x) == 1) > np.sum(plain.predict(x) == 1)


# ----------------------------------------------------------------------------- LMLE

def test_cluster_knn_by_hand():
    centroids = np.array([[0.0], [1.0], [3.0]])
    labels = np.array([0, 0, 1])
    # q = 2.4: D = 5.76, 1.96, 0.36; gap(1) = 1.96 - 0.36 > 0 > gap(0) = 0.36 - 5.76
    # q = 1.2: D = 1.44, 0.04, 3.24; gap(0) = 3.24 - 1.44 > gap(1) = 0.04 - 3.24
    # q = -1 with k = 2: both neighbours of class 0
    z = np.array([[2.4], [1.2], [-1.0]])
    assert at.cluster_knn_predict(z, centroids, labels, k=3).tolist() == [1, 0, 0]
    assert at.cluster_knn_predict(z[2:], centroids, labels, k=2).tolist() == [0]
    # the nearest centroid is class 0 (D = 0.09), the next class 1 (0.81), then class 0 again (1.44)
    centroids = np.array([[0.0, 0.0], [0.3, 0.0], [-1.2, 0.0], [5.0, 0.0]])
    labels = np.array([1, 0, 0, 1])
    q = np.array([[-0.9, 0.0]])
    # D: 0.81 (1), 1.44 (0), 0.09 (0), 34.81 (1); k = 3 -> gap(0) = 0.81 - 1.44 < 0, gap(1) = 0.09 - 0.81 < 0
    # gap(0) = -0.63 > gap(1) = -0.72 -> class 0
    assert at.cluster_knn_predict(q, centroids, labels, k=3).tolist() == [0]
    with pytest.raises(ValueError, match="k must be at most"):
        at.cluster_knn_predict(q, centroids, labels, k=5)
    with pytest.raises(ValueError, match="one label per centroid"):
        at.cluster_knn_predict(q, centroids, labels[:2], k=1)


def _imbalanced_toy(rng):
    """60 negatives around 0 and 8 positives in two small groups, in 12-d, the signal in 2 dims."""
    neg = rng.normal(0.0, 1.0, (60, 12))
    pos = rng.normal(0.0, 1.0, (8, 12)) * 0.5
    pos[:4, 0] += 3.0
    pos[4:, 1] += 3.0
    return np.vstack([neg, pos]), np.array([0] * 60 + [1] * 8)


def test_lmle_projection_learns(rng):
    x, y = _imbalanced_toy(rng)
    model = at.LMLEProjection(dim=4, cluster_size=4, steps=60, recluster_every=20, lr=2e-2, rng=0).fit(x, y)
    history = model.loss_history_
    assert len(history) == 60 and np.all(np.isfinite(history))
    assert np.mean(history[-10:]) < 0.7 * np.mean(history[:10]), (history[:10], history[-10:])
    z = model.transform(x)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0)
    assert at.balanced_accuracy(y, model.predict(x)) > 0.8
    assert set(model.centroid_labels_.tolist()) == {0, 1}
    again = at.LMLEProjection(dim=4, cluster_size=4, steps=60, recluster_every=20, lr=2e-2, rng=0).fit(x, y)
    assert again.loss_history_ == history                         # seeded
    with pytest.raises(RuntimeError, match="not fitted"):
        at.LMLEProjection().predict(x)


def test_evaluate_attribute_on_toy_data(rng):
    x, y = _imbalanced_toy(rng)
    subjects = np.arange(len(y)) % 6
    options = {"dim": 4, "cluster_size": 4, "steps": 40, "lr": 2e-2}
    results = {m: at.evaluate_attribute(x, y, subjects, method=m, n_folds=3, C=0.1, lmle_options=options)
               for m in at.METHODS}
    for r in results.values():
        assert r["n"] == 68 and r["n_positive"] == 8 and r["predictions"].shape == (68,)
        assert r["balanced_accuracy"] == pytest.approx((r["tpr"] + r["tnr"]) / 2)
    assert results["plain"]["tpr"] < results["reweighted"]["tpr"]
    with pytest.raises(ValueError, match="method must be one of"):
        at.evaluate_attribute(x, y, subjects, method="smote")
    with pytest.raises(ValueError, match="one row per image"):
        at.evaluate_attribute(x, y[:-1], subjects)


# ----------------------------------------------------------------------------- the real pipeline on a subset

@pytest.fixture(scope="module")
def yale_subset(data_dir, tmp_path_factory):
    """4 people x 3 conditions of Yale, detected, aligned and described once (cached in a temp file)."""
    cache = tmp_path_factory.mktemp("yale") / "features.npz"
    feats = at.yale_features(data_dir, subjects=[2, 3, 4, 5], conditions=["leftlight", "normal", "rightlight"],
                             cache=cache, progress=False)
    return feats, cache


def test_yale_features_subset(yale_subset):
    feats, cache = yale_subset
    assert feats.embedding.shape == (12, 128) and feats.block.shape == (12, 4096)
    assert feats.subjects.tolist() == [2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5]
    assert feats.conditions[:3].tolist() == ["leftlight", "normal", "rightlight"]
    x1, y1, x2, y2 = feats.boxes.T          # Yale is 320 x 243, faces ~100-150 px wide near the middle
    assert np.all((x1 >= 0) & (x2 <= 320) & (y1 >= 0) & (y2 <= 243))
    assert np.all((x2 - x1 > 60) & (x2 - x1 < 240))
    assert np.all(feats.block >= 0)        # a ReLU's output
    # dlib's descriptor: one person's photos closer than different people's, on average
    e = feats.embedding
    d = np.linalg.norm(e[:, None] - e[None], axis=2)
    same = feats.subjects[:, None] == feats.subjects[None]
    assert d[same & ~np.eye(12, dtype=bool)].mean() < d[~same].mean()
    reloaded = at.yale_features(cache=cache)            # read back, nothing recomputed
    for a, b in zip(reloaded, feats):
        np.testing.assert_array_equal(a, b)


def test_end_to_end_table_on_subset(yale_subset):
    feats, _ = yale_subset
    rows = xat.attribute_table(feats.block, feats.conditions, feats.subjects, n_folds=4,
                              lmle_options={"steps": 30, "cluster_size": 2})
    # only the two lighting attributes have both classes in this subset
    assert [r["attribute"] for r in rows] == ["leftlight", "rightlight"]
    for r in rows:
        assert r["n"] == 12 and r["n_positive"] == 4
        for m in at.METHODS:
            assert 0.0 <= r[m]["balanced_accuracy"] <= 1.0
    # floor, measured 81% and 100% for the re-weighted SVM (chance: 50%)
    assert np.mean([r["reweighted"]["balanced_accuracy"] for r in rows]) >= 0.7
    text = xat.format_table(rows, title="subset")
    assert "leftlight" in text and "(b) re-weighted SVM" in text and "mean" in text


def test_command_line(yale_subset, capsys, tmp_path):
    _, cache = yale_subset
    assert xat.main(["--cache", str(cache), "--features", "embedding", "--folds", "2", "--lmle-steps", "20",
                    "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "features: embedding (128-d)" in out and "rightlight" in out
    with pytest.raises(SystemExit):
        xat.main(["--features", "pixels"])
    assert xat.main(["--data", str(tmp_path), "--no-progress"]) == 2
    assert "Yale faces not found" in capsys.readouterr().err
