"""Assignment 8 (verification metrics): the checker passes the solution and flags planted student bugs."""
import numpy as np
import pytest
from check_mutation_helpers import (
    ASSIGNMENTS,
    SOLUTIONS,
    Mutant,
    assert_mutants_flagged,
    assert_solution_passes,
    assert_student_version_generated,
    run_notebook_file,
)

from scratchface.check import check
from scratchface.check.assignments import with_replaced
from scratchface.check.__main__ import load_student_file
from scratchface.check.__main__ import main as cli_main
from scratchface.check.verification import (
    fit_threshold_variant,
    kfold_accuracy_variant,
    val_at_far_variant,
)
from scratchface.recognition import verification as ref

SOLUTION = SOLUTIONS / "08_verification_metrics.py"
NAMES = ("val_far", "val_at_far", "fit_threshold", "kfold_accuracy")


@pytest.fixture(scope="module")
def solution():
    return run_notebook_file(SOLUTION)


def test_solution_runs_and_passes(solution):
    assert_solution_passes(solution, NAMES)


def test_brute_force_agrees_with_the_library(rng):
    """The checker's loops over every candidate threshold give the library's answers."""
    for _ in range(10):
        n = int(rng.integers(20, 60))
        d = np.round(rng.random(n) * 2, 1)
        same = rng.random(n) < 0.5
        same[:2] = [True, False]
        folds = rng.integers(0, 5, size=n)
        for f in (0.0, 0.1, 0.3):
            assert val_at_far_variant(d, same, f) == pytest.approx(ref.val_at_far(d, same, f))
        assert fit_threshold_variant(d, same) == pytest.approx(ref.fit_threshold(d, same))
        accs, ts = kfold_accuracy_variant(d, same, folds)
        expected = ref.kfold_accuracy(d, same, folds=folds)
        np.testing.assert_allclose(accs, expected.per_fold)
        np.testing.assert_allclose(ts, expected.thresholds)


def test_hand_worked_example():
    """Same pairs at 1 and 3, different at 2 and 4: at FAR 0 the threshold is 1, VAL 1/2."""
    d, same = np.array([1.0, 3.0, 2.0, 4.0]), np.array([True, True, False, False])
    assert val_at_far_variant(d, same, 0.0) == (0.5, 0.0, 1.0)
    assert val_at_far_variant(d, same, 0.5) == (1.0, 0.5, 3.0)
    assert fit_threshold_variant(d, same) == (1.5, 0.75)


VAL_AT_FAR = "def val_at_far(distances, same, far=1e-3):\n    best = (0.0, 0.0, -np.inf)\n"
KFOLD = "def kfold_accuracy(distances, same, *, folds):\n    accuracies, thresholds = [], []\n"

MUTANTS = [
    Mutant("FAR over all pairs", "val_far", """
def val_far(distances, same, threshold):
    accepted = distances <= threshold
    return float(np.mean(accepted[same])), float(np.sum(accepted & ~same) / len(same))
""", "DIFFERENT-person pairs"),
    Mutant("FAR computed over the same pairs", "val_far", """
def val_far(distances, same, threshold):
    accepted = distances <= threshold
    return float(np.mean(accepted[same])), float(np.mean(accepted[same]))
""", "that is VAL"),
    Mutant("< instead of <=", "val_far", """
def val_far(distances, same, threshold):
    accepted = distances < threshold
    return float(np.mean(accepted[same])), float(np.mean(accepted[~same]))
""", "distance < threshold"),
    Mutant("similarity direction", "val_far", """
def val_far(distances, same, threshold):
    accepted = distances >= threshold
    return float(np.mean(accepted[same])), float(np.mean(accepted[~same]))
""", "small distances mean the same person"),
    Mutant("overshoots the target", "val_at_far", VAL_AT_FAR + """
    for t in np.unique(distances):
        val, achieved = val_far(distances, same, t)
        best = (val, achieved, float(t))
        if achieved > far:
            break
    return best
""", "exceeds the target"),
    Mutant("strictly below the target", "val_at_far", VAL_AT_FAR + """
    for t in np.unique(distances):
        val, achieved = val_far(distances, same, t)
        if achieved >= far:
            break
        best = (val, achieved, float(t))
    return best
""", "at most the target"),
    Mutant("thresholds at different-pair distances only", "val_at_far", VAL_AT_FAR + """
    for t in np.unique(distances[~same]):
        val, achieved = val_far(distances, same, t)
        if achieved > far:
            break
        best = (val, achieved, float(t))
    return best
""", "different pairs' distances only"),
    Mutant("first threshold of the best FAR instead of the last", "val_at_far", VAL_AT_FAR + """
    for t in np.unique(distances):
        val, achieved = val_far(distances, same, t)
        if achieved > far:
            break
        if achieved > best[1] or best[2] == -np.inf:
            best = (val, achieved, float(t))
    return best
"""),
    Mutant("a broken fit_threshold (largest of the best) under a right kfold_accuracy", "kfold_accuracy", """
def fit_threshold(distances, same):
    u = np.unique(distances)
    candidates = np.concatenate([[-np.inf], (u[:-1] + u[1:]) / 2, [np.inf]])
    accuracies = np.array([np.mean((distances <= t) == same) for t in candidates])
    k = int(np.flatnonzero(accuracies == accuracies.max())[-1])
    return float(candidates[k]), float(accuracies[k])
""" + KFOLD + """
    for k in np.unique(folds):
        test = folds == k
        t, _ = fit_threshold(distances[~test], same[~test])
        thresholds.append(t)
        accuracies.append(np.mean((distances[test] <= t) == same[test]))
    return np.asarray(accuracies), np.asarray(thresholds)
""", "fix `fit_threshold` first"),
    Mutant("percentages", "val_at_far", VAL_AT_FAR + """
    for t in np.unique(distances):
        val, achieved = val_far(distances, same, t)
        if achieved > far:
            break
        best = (100 * val, 100 * achieved, float(t))
    return best
""", "percentages"),
    Mutant("threshold at a distance value", "fit_threshold", """
def fit_threshold(distances, same):
    candidates = np.concatenate([[-np.inf], np.unique(distances)])
    accuracies = [np.mean((distances <= t) == same) for t in candidates]
    k = int(np.argmax(accuracies))
    return float(candidates[k]), float(accuracies[k])
""", "midpoint"),
    Mutant("largest of the best", "fit_threshold", """
def fit_threshold(distances, same):
    u = np.unique(distances)
    candidates = np.concatenate([[-np.inf], (u[:-1] + u[1:]) / 2, [np.inf]])
    accuracies = np.array([np.mean((distances <= t) == same) for t in candidates])
    k = int(np.flatnonzero(accuracies == accuracies.max())[-1])
    return float(candidates[k]), float(accuracies[k])
""", "return the smallest"),
    Mutant("no infinite candidates", "fit_threshold", """
def fit_threshold(distances, same):
    u = np.unique(distances)
    candidates = (u[:-1] + u[1:]) / 2 if len(u) > 1 else u
    accuracies = [np.mean((distances <= t) == same) for t in candidates]
    k = int(np.argmax(accuracies))
    return float(candidates[k]), float(accuracies[k])
""", "-inf and +inf"),
    Mutant("accuracy as a count", "fit_threshold", """
def fit_threshold(distances, same):
    u = np.unique(distances)
    candidates = np.concatenate([[-np.inf], (u[:-1] + u[1:]) / 2, [np.inf]])
    correct = [np.sum((distances <= t) == same) for t in candidates]
    k = int(np.argmax(correct))
    return float(candidates[k]), float(correct[k])
""", "count"),
    Mutant("threshold chosen on the test fold", "kfold_accuracy", KFOLD + """
    for k in np.unique(folds):
        test = folds == k
        t, _ = fit_threshold(distances[test], same[test])
        thresholds.append(t)
        accuracies.append(np.mean((distances[test] <= t) == same[test]))
    return np.asarray(accuracies), np.asarray(thresholds)
""", "chosen on the test fold"),
    Mutant("threshold chosen on all pairs", "kfold_accuracy", KFOLD + """
    t, _ = fit_threshold(distances, same)
    for k in np.unique(folds):
        test = folds == k
        thresholds.append(t)
        accuracies.append(np.mean((distances[test] <= t) == same[test]))
    return np.asarray(accuracies), np.asarray(thresholds)
""", "chosen on all pairs"),
    Mutant("folds ignored: ten contiguous blocks", "kfold_accuracy", KFOLD + """
    blocks = np.array_split(np.arange(len(distances)), 10)
    for block in blocks:
        test = np.zeros(len(distances), bool)
        test[block] = True
        t, _ = fit_threshold(distances[~test], same[~test])
        thresholds.append(t)
        accuracies.append(np.mean((distances[test] <= t) == same[test]))
    return np.asarray(accuracies), np.asarray(thresholds)
""", "folds argument is ignored"),
    Mutant("folds assumed numbered 0..n-1", "kfold_accuracy", KFOLD + """
    for k in range(len(np.unique(folds))):
        test = folds == k
        t, _ = fit_threshold(distances[~test], same[~test])
        thresholds.append(t)
        accuracies.append(np.mean((distances[test] <= t) == same[test]) if test.any() else 0.0)
    return np.asarray(accuracies), np.asarray(thresholds)
""", "np.unique(folds)"),
    Mutant("returns mean and std", "kfold_accuracy", KFOLD + """
    for k in np.unique(folds):
        test = folds == k
        t, _ = fit_threshold(distances[~test], same[~test])
        accuracies.append(np.mean((distances[test] <= t) == same[test]))
    return float(np.mean(accuracies)), float(np.std(accuracies))
""", "not their mean and std"),
]


def test_mutants_flagged(solution):
    assert len(MUTANTS) >= 10
    assert_mutants_flagged(solution[0], MUTANTS)


def test_report_in_words(solution):
    planted = dict(solution[0])
    exec(MUTANTS[4].source, planted)
    text = str(check(planted["val_at_far"], verbose=False))
    assert "VAL is 0." in text and "was expected" in text and "far=0.1" in text


def test_student_stubs_report_not_implemented():
    module = load_student_file(ASSIGNMENTS / "08_verification_metrics.py")
    for name in NAMES:
        text = str(check(getattr(module, name), verbose=False))
        assert "not implemented yet (it raised NotImplementedError)" in text


def test_cli_on_the_student_file(capsys):
    """The unsolved student notebook: the checker runs and exits 1 with a clear report."""
    assert cli_main(["kfold_accuracy", str(ASSIGNMENTS / "08_verification_metrics.py")]) == 1
    assert "kfold_accuracy is not implemented yet" in capsys.readouterr().out



def test_student_version_is_generated_from_the_solution():
    assert_student_version_generated(SOLUTION)


def test_one_coinciding_case_names_no_variant(solution):
    mutant = next(m for m in MUTANTS if m.label.startswith("first threshold of the best FAR"))
    planted = with_replaced(solution[0], mutant.source)
    text = str(check(planted["val_at_far"], namespace=planted, verbose=False))
    assert "VAL is" in text and "different pairs' distances only" not in text
