"""Verification metrics against brute-force counts and cases worked by hand."""
import numpy as np
import pytest

from scratchface.recognition import verification as V


def _random_pairs(rng, n=120, ties=False):
    same = rng.random(n) < 0.4
    d = rng.normal(1.0, 0.5, n) + np.where(same, 0.0, 0.8)
    if ties:
        d = np.round(d, 1)  # many equal distances
    return d, same


# ----------------------------------------------------------------------------- ROC / AUC

@pytest.mark.parametrize("ties", [False, True])
def test_roc_auc_is_mann_whitney_count(rng, ties):
    d, same = _random_pairs(rng, ties=ties)
    ds, dd = d[same], d[~same]
    # brute force: every (same pair, different pair) combination, ties one half
    wins = sum((b > a) + 0.5 * (b == a) for a in ds for b in dd)
    assert V.roc_auc(d, same) == pytest.approx(wins / (ds.size * dd.size), abs=1e-12)


def test_roc_curve_points_match_a_loop_over_thresholds(rng):
    d, same = _random_pairs(rng, n=40, ties=True)
    roc = V.roc_curve(d, same)
    assert roc.thresholds[0] == -np.inf and (roc.far[0], roc.tar[0]) == (0, 0)
    assert (roc.far[-1], roc.tar[-1]) == (1, 1)
    assert np.all(np.diff(roc.thresholds) > 0)
    for t, far, tar in zip(roc.thresholds, roc.far, roc.tar):
        assert tar == sum(1 for x, s in zip(d, same) if s and x <= t) / same.sum()
        assert far == sum(1 for x, s in zip(d, same) if not s and x <= t) / (~same).sum()


def test_auc_hand_cases():
    same = np.array([True, True, False, False])
    assert V.roc_auc(np.array([0.1, 0.2, 0.3, 0.4]), same) == 1.0   # perfectly separated
    assert V.roc_auc(np.array([0.3, 0.4, 0.1, 0.2]), same) == 0.0   # exactly wrong
    assert V.roc_auc(np.ones(4), same) == 0.5                        # all tied: chance
    # same {1, 3}, different {2, 4}: of the 4 combinations, 3 have the different pair farther
    assert V.roc_auc(np.array([1.0, 3.0, 2.0, 4.0]), same) == 0.75
    assert V.auc([0, 1], [1, 1]) == 1.0


# ----------------------------------------------------------------------------- thresholds

def _brute_best(d, same):
    """Try every distinct cut; return (lowest best threshold index semantics, best accuracy)."""
    candidates = np.concatenate([[-np.inf], np.unique(d)])
    accs = [np.mean((d <= t) == same) for t in candidates]
    return candidates[int(np.argmax(accs))], max(accs)


@pytest.mark.parametrize("ties", [False, True])
def test_fit_threshold_reaches_the_brute_force_optimum(rng, ties):
    d, same = _random_pairs(rng, ties=ties)
    t, acc = V.fit_threshold(d, same)
    cut, best = _brute_best(d, same)
    assert acc == pytest.approx(best, abs=1e-15)
    assert V.accuracy_at_threshold(d, same, t) == pytest.approx(best, abs=1e-15)
    # the fitted threshold makes the same decisions on these pairs as the brute-force cut
    assert np.array_equal(d <= t, d <= cut)


def test_fit_threshold_hand_case():
    # same at 1, 2; different at 3, 4: any threshold in [2, 3) is perfect; halfway is 2.5
    t, acc = V.fit_threshold(np.array([1.0, 2.0, 3.0, 4.0]), np.array([True, True, False, False]))
    assert (t, acc) == (2.5, 1.0)


def test_kfold_accuracy_matches_a_loop_over_folds(rng):
    d, same = _random_pairs(rng, n=200, ties=True)
    result = V.kfold_accuracy(d, same, n_folds=10)
    folds = np.arange(200) * 10 // 200
    expected = []
    for k in range(10):
        test = folds == k
        u = np.unique(d[~test])
        candidates = np.concatenate([[-np.inf], (u[:-1] + u[1:]) / 2, [np.inf]])  # halfway cuts
        accs = [np.mean((d[~test] <= t) == same[~test]) for t in candidates]
        cut = candidates[int(np.argmax(accs))]  # the lowest of the best
        expected.append(np.mean((d[test] <= cut) == same[test]))
    np.testing.assert_array_equal(result.per_fold, expected)
    assert result.mean == pytest.approx(np.mean(result.per_fold))
    assert result.std == pytest.approx(np.std(result.per_fold))
    assert len(result.thresholds) == 10


def test_kfold_accuracy_with_grid_loop_and_explicit_folds(rng):
    # the LFW reference implementation: a fine grid of thresholds, the first best on the 9 training folds
    d, same = _random_pairs(rng, n=300)
    folds = rng.integers(0, 10, size=300)
    result = V.kfold_accuracy(d, same, folds=folds)
    grid = np.sort(np.concatenate([np.unique(d) - 1e-9, [np.inf]]))
    for k in range(10):
        test = folds == k
        train_acc = [np.mean((d[~test] <= t) == same[~test]) for t in grid]
        best_train = max(train_acc)
        # the threshold chosen reaches the training optimum, and its test accuracy is reported
        assert np.mean((d[~test] <= result.thresholds[k]) == same[~test]) == pytest.approx(best_train)
        assert result.per_fold[k] == pytest.approx(np.mean((d[test] <= result.thresholds[k]) == same[test]))


def test_perfect_separation_gives_full_kfold_accuracy(rng):
    same = np.repeat([True, False], 50)
    d = np.where(same, rng.uniform(0, 1, 100), rng.uniform(2, 3, 100))
    assert V.kfold_accuracy(d, same).mean == 1.0


# ----------------------------------------------------------------------------- VAL / FAR, EER

def test_val_far_hand_case():
    d = np.array([0.1, 0.2, 0.3, 0.4, 0.25, 0.5, 0.6, 0.7])
    same = np.array([True] * 4 + [False] * 4)
    assert V.val_far(d, same, 0.3) == (0.75, 0.25)   # TA = {0.1, 0.2, 0.3}, FA = {0.25}
    assert V.val_at_far(d, same, far=0.25) == (1.0, 0.25, 0.4)
    assert V.val_at_far(d, same, far=0.0) == (0.5, 0.0, 0.2)   # below the first impostor at 0.25
    assert V.val_at_far(d, same, far=1.0) == (1.0, 1.0, 0.7)


def test_val_at_far_never_exceeds_the_target(rng):
    d, same = _random_pairs(rng, n=400)
    for target in (0.0, 0.01, 0.1, 0.5):
        val, far, t = V.val_at_far(d, same, far=target)
        assert far <= target
        assert V.val_far(d, same, t) == (val, far)
        # one more distance (the next distinct one) would exceed the target
        bigger = d[d > t]
        if bigger.size:
            assert V.val_far(d, same, bigger.min())[1] > target


def _brute_force_kfold_val_at_far(d, same, folds, far):
    """Per fold: the largest threshold (-inf or a training distance) whose FAR on the OTHER folds'
    different pairs is <= far, then VAL = the fraction of the fold's same pairs accepted (d <= t)."""
    vals, thresholds = [], []
    for k in sorted(set(folds.tolist())):
        train, test = folds != k, folds == k
        best = -np.inf
        for t in [-np.inf] + sorted(set(d[train].tolist())):
            accepted = [d[i] <= t for i in range(d.size) if train[i] and not same[i]]
            if sum(accepted) / len(accepted) <= far:
                best = max(best, t)
        thresholds.append(best)
        held_out = [d[i] <= best for i in range(d.size) if test[i] and same[i]]
        vals.append(sum(held_out) / len(held_out))
    return np.array(vals), np.array(thresholds)


@pytest.mark.parametrize("far", [0.0, 0.05, 0.1, 0.3])
def test_kfold_val_at_far(rng, far):
    d, same = _random_pairs(rng, n=400)
    folds = rng.permutation(np.arange(400) % 10)
    r = V.kfold_val_at_far(d, same, far=far, folds=folds)
    vals, thresholds = _brute_force_kfold_val_at_far(d, same, folds, far)
    np.testing.assert_array_equal(r.thresholds, thresholds)
    np.testing.assert_allclose(r.per_fold, vals, rtol=0, atol=1e-12)
    assert r.mean == pytest.approx(vals.mean()) and r.std == pytest.approx(vals.std())
    default = V.kfold_val_at_far(d, same, far=far)  # the default folds: still VAL on held-out same pairs
    assert default.per_fold.shape == (10,) and 0 <= default.mean <= 1


def test_equal_error_rate_hand_cases():
    same = np.array([True, True, False, False])
    assert V.equal_error_rate(np.array([1.0, 3.0, 2.0, 4.0]), same) == (0.5, 2.0)
    eer, t = V.equal_error_rate(np.array([1.0, 2.0, 3.0, 4.0]), same)
    assert eer == 0.0 and t == 2.0
    # 4 same {1,2,3,6}, 4 different {4,5,7,8}: at t=3 FAR 0, FRR 1/4; at t=4 FAR 1/4, FRR 1/4
    d = np.array([1.0, 2.0, 3.0, 6.0, 4.0, 5.0, 7.0, 8.0])
    assert V.equal_error_rate(d, np.array([True] * 4 + [False] * 4)) == (0.25, 4.0)


def test_equal_error_rate_interpolates_where_far_meets_frr():
    # same {1, 2, 5}, different {3, 4}: t=2: FAR 0, FRR 1/3 (gap -1/3); t=3: FAR 1/2, FRR 1/3 (gap 1/6)
    # crossing at 2/3 of the way: EER = 0 + 2/3 * 1/2 = 1/3, threshold 2 + 2/3
    d = np.array([1.0, 2.0, 5.0, 3.0, 4.0])
    eer, t = V.equal_error_rate(d, np.array([True, True, True, False, False]))
    assert eer == pytest.approx(1 / 3) and t == pytest.approx(2 + 2 / 3)


# ----------------------------------------------------------------------------- errors

def test_errors():
    d, same = np.array([0.1, 0.2]), np.array([True, False])
    with pytest.raises(ValueError, match="one entry per distance"):
        V.roc_curve(d, np.array([True]))
    with pytest.raises(TypeError, match="same must have a boolean dtype"):
        V.roc_curve(d, np.array([1, 0]))
    with pytest.raises(ValueError, match="both same-person and different-person"):
        V.roc_auc(d, np.array([True, True]))
    with pytest.raises(ValueError, match="far must be in"):
        V.val_at_far(d, same, far=1.5)
    with pytest.raises(ValueError, match="at least 2 folds"):
        V.kfold_accuracy(d, same, folds=np.array([0, 0]))
    with pytest.raises(ValueError, match="folds must have one entry per pair"):
        V.kfold_accuracy(d, same, folds=np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="distances contains NaN"):
        V.fit_threshold(np.array([np.nan, 1.0]), same)
    with pytest.raises(ValueError, match="at least one pair"):
        V.fit_threshold(np.zeros(0), np.zeros(0, bool))
    with pytest.raises(ValueError, match="same length"):
        V.auc([0, 1], [0])


# ----------------------------------------------------------------------------- plots

def test_plots_draw(rng):
    pytest.importorskip("matplotlib")
    from scratchface.recognition.plots import plot_distance_histograms, plot_roc

    d, same = _random_pairs(rng)
    fig = plot_roc(d, same, label="random")
    assert len(fig.axes) == 1 and fig.axes[0].get_xlabel().startswith("false accept")
    fig = plot_distance_histograms(d, same, threshold=1.2)
    assert len(fig.axes[0].patches) == 80  # 40 bins x 2 histograms
