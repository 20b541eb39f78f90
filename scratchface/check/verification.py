"""Checkers for assignment 8: verification metrics (VAL and FAR, VAL at FAR, the 10-fold protocol).

The student writes (the names of :mod:`scratchface.recognition.verification`)::

    val_far(distances, same, threshold)            -> (val, far)
    val_at_far(distances, same, far=1e-3)          -> (val, achieved_far, threshold)
    fit_threshold(distances, same)                 -> (threshold, accuracy)
    kfold_accuracy(distances, same, *, folds)      -> (accuracies, thresholds), one per fold

Small distances mean *same person*: a pair is accepted when ``distance <= threshold``. VAL is a
fraction of the same-person pairs, FAR of the different-person pairs (FaceNet section 4).
``val_at_far`` takes the largest threshold (``-inf`` or one of the distances) whose FAR does not
exceed the target. ``fit_threshold`` tries ``-inf``, the midpoints between consecutive distinct
distances and ``+inf`` and returns the smallest of the best. ``kfold_accuracy`` fits the threshold
on the other folds and measures each held-out fold (folds in increasing order of their label).

References: the library functions above, and brute-force loops over every candidate threshold here
(:func:`fit_threshold_variant`, :func:`val_at_far_variant`), which also plant the typical mistakes.
"""
from __future__ import annotations

import numpy as np

from ._core import CheckResult, compare, register
from ._library import verification_module as _ref
from ._variants import compare_scalar, first_matching, run_student, variant_hint

__all__ = ["val_far_variant", "val_at_far_variant", "fit_threshold_variant", "kfold_accuracy_variant",
           "check_val_far", "check_val_at_far", "check_fit_threshold", "check_kfold_accuracy"]


# ----------------------------------------------------------------------------- brute force, with mistakes

def _accept(d, t, rule):
    return {"<=": d <= t, "<": d < t, ">=": d >= t}[rule]


def val_far_variant(d, same, t, *, rule="<=", val_over="same", far_over="different", far_counts="different",
                    swap=False):
    """VAL and FAR by counting; val_over / far_over : 'same', 'different' or 'all' pairs (the right
    denominators are 'same' and 'different'); far_counts : which accepted pairs FAR counts
    ('different', right, or 'same'); rule : '<=' (right), '<', '>='; swap : returned (far, val)."""
    d, same = np.asarray(d, dtype=np.float64), np.asarray(same, dtype=bool)
    acc = _accept(d, t, rule)
    pools = {"same": same, "different": ~same, "all": np.ones_like(same)}
    val = np.sum(acc & same) / np.sum(pools[val_over])
    far = np.sum(acc & pools[far_counts]) / np.sum(pools[far_over if far_counts == "different" else "same"])
    return (far, val) if swap else (val, far)


def val_at_far_variant(d, same, target, *, candidates="all", rule="<=", strict=False, overshoot=False,
                       far_over="different", percent=False):
    """Brute-force VAL at FAR: try ``-inf`` and every distinct distance, keep the largest whose FAR
    is at most ``target``. Switches: candidates 'all' (right) or 'different' (only different-pair
    distances); rule as in :func:`val_far_variant`; strict : FAR < target; overshoot : the smallest
    threshold whose FAR exceeds the target; far_over : FAR's denominator; percent : values x 100."""
    d, same = np.asarray(d, dtype=np.float64), np.asarray(same, dtype=bool)
    pool = d if candidates == "all" else d[~same]
    best = (0.0, 0.0, -np.inf)
    for t in np.concatenate([[-np.inf], np.unique(pool)]):
        val, far = val_far_variant(d, same, t, rule=rule, far_over=far_over)
        ok = (far < target) if strict else (far <= target + 1e-12)
        if overshoot and not ok:
            best = (val, far, t)
            break
        if ok:
            best = (val, far, t)
    val, far, t = best
    return (100 * val, 100 * far, t) if percent else (float(val), float(far), float(t))


def fit_threshold_variant(d, same, *, candidates="midpoints", ties="smallest", infinite=True, count=False,
                          rule="<="):
    """Brute-force best threshold: accuracy counted at every candidate.

    candidates : 'midpoints' between consecutive distinct distances (right) or 'values' (the
    distances themselves); ties : 'smallest' (right) or 'largest'; infinite : include -inf and +inf;
    count : accuracy as a count, not a fraction; rule : '<=' (right) or '>='.
    """
    d, same = np.asarray(d, dtype=np.float64), np.asarray(same, dtype=bool)
    u = np.unique(d)
    inner = (u[:-1] + u[1:]) / 2 if candidates == "midpoints" else u
    ts = np.concatenate([[-np.inf], inner, [np.inf]]) if infinite else inner
    if ts.size == 0:
        ts = u
    correct = np.array([np.sum(_accept(d, t, rule) == same) for t in ts])
    best = np.flatnonzero(correct == correct.max())
    k = best[0] if ties == "smallest" else best[-1]
    return float(ts[k]), float(correct[k] if count else correct[k] / d.size)


def kfold_accuracy_variant(d, same, folds, *, fit_on="others", measure_on="test", fold_ids="labels",
                           empty=np.nan):
    """Per-fold accuracy and threshold. fit_on : 'others' (right), 'test' (the held-out fold itself),
    'all'; measure_on : 'test' (right) or 'train'; fold_ids : 'labels' (right: np.unique(folds)),
    'range' (0 .. n_folds - 1), 'contiguous' (folds ignored: ten contiguous blocks); empty : the
    accuracy given to a fold without pairs (only 'range' makes one)."""
    d, same, folds = np.asarray(d, dtype=np.float64), np.asarray(same, dtype=bool), np.asarray(folds)
    if fold_ids == "contiguous":
        folds = _ref.default_folds(d.size, 10)
    labels = np.unique(folds) if fold_ids != "range" else np.arange(np.unique(folds).size)
    accs, ts = [], []
    for k in labels:
        test = folds == k
        fit = {"others": ~test, "test": test, "all": np.ones_like(test)}[fit_on]
        t, _ = fit_threshold_variant(d[fit], same[fit]) if fit.any() else (np.inf, 0.0)
        measure = test if measure_on == "test" else ~test
        accs.append(np.mean((d[measure] <= t) == same[measure]) if measure.any() else empty)
        ts.append(t)
    return np.asarray(accs), np.asarray(ts)


# ----------------------------------------------------------------------------- data

def _pairs(rng, n_same, n_diff, *, step=0.05):
    """Distances of same pairs around 0.9, different pairs around 1.3, rounded to ``step`` (ties)."""
    d = np.concatenate([rng.normal(0.9, 0.25, n_same), rng.normal(1.3, 0.25, n_diff)])
    same = np.concatenate([np.ones(n_same, bool), np.zeros(n_diff, bool)])
    order = rng.permutation(d.size)
    return np.round(np.abs(d[order]) / step) * step, same[order]


def _scalar_outputs(result, out, names, case):
    """The student's tuple of ``len(names)`` scalars, or None after a Problem."""
    if not (isinstance(out, (tuple, list)) and len(out) == len(names)):
        result.add(f"expected a tuple ({', '.join(names)}); got {type(out).__name__}"
                   + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""), case)
        return None
    return out


def _tuple_hint(outputs, variants):
    """A hint that diagnoses from the student's whole tuple of numbers: a variant matches only when
    every output agrees (VAL alone cannot tell "FAR over all pairs" from "overshot the target")."""
    try:
        student = np.asarray([float(x) for x in outputs])
    except (TypeError, ValueError):
        return ""
    candidates = [(text, (lambda make=make: np.asarray(make(), dtype=np.float64))) for text, make in variants]
    return first_matching(student, candidates)


def _compare_outputs(result, outputs, expected, names, variants, case):
    """Compare each number in order; at the first that differs, report it with the tuple's diagnosis."""
    for name, got, exp in zip(names, outputs, expected):
        if not compare_scalar(result, got, exp, what=name, case=case,
                              hint=lambda a, e: _tuple_hint(outputs, variants)):
            return False
    return True


# ----------------------------------------------------------------------------- val_far

@register("val_far")
def check_val_far(student_fn, namespace) -> CheckResult:
    """VAL and FAR at given thresholds against counting by hand."""
    result = CheckResult("val_far")
    rng = np.random.default_rng(8)
    d, same = _pairs(rng, 30, 50)
    cases = [(f"80 pairs (30 same, 50 different), threshold={t}", d, same, t) for t in (0.9, 1.15, 1.4)]
    cases.append(("a threshold equal to some distances (accepted: distance <= threshold)", d, same, float(d[0])))
    cases.append(("threshold -inf (nothing accepted)", d, same, -np.inf))
    for case, d, same, t in cases:
        result.n_cases += 1
        raised, out = run_student(result, student_fn, d.copy(), same.copy(), t, case=case)
        if raised == "not implemented":
            break
        if raised or _scalar_outputs(result, out, ("val", "far"), case) is None:
            continue
        def v(**kw):
            return lambda: val_far_variant(d, same, t, **kw)
        _compare_outputs(result, out, _ref.val_far(d, same, t), ("VAL", "FAR"), [
            ("FAR is a fraction of the DIFFERENT-person pairs (false accepts / |P_diff|)", v(far_over="all")),
            ("VAL is a fraction of the SAME-person pairs (true accepts / |P_same|)", v(val_over="all")),
            ("FAR counted the accepted SAME-person pairs (that is VAL); it counts the accepted different-person "
             "pairs", v(far_counts="same")),
            ("accepted with distance < threshold; the rule is distance <= threshold", v(rule="<")),
            ("accepted with distance >= threshold: small distances mean the same person", v(rule=">=")),
            ("returned (far, val); return (val, far)", v(swap=True)),
        ], case)
    return result


# ----------------------------------------------------------------------------- val_at_far

@register("val_at_far")
def check_val_at_far(student_fn, namespace) -> CheckResult:
    """VAL at FAR against :func:`scratchface.recognition.verification.val_at_far`."""
    result = CheckResult("val_at_far")
    rng = np.random.default_rng(88)
    d, same = _pairs(rng, 100, 100, step=0.02)
    first_diff = np.array([0.3, 0.5, 0.6, 0.9, 1.0]), np.array([False, True, True, False, True])
    cases = [(f"200 pairs (100 same, 100 different), far={f}", d, same, f) for f in (0.1, 0.05, 0.013)]
    cases.append(("far=0.001 with 100 different pairs: only FAR = 0 is allowed", d, same, 1e-3))
    cases.append(("the nearest pair is a different one and far=0: threshold -inf, VAL 0",
                  *first_diff, 0.0))
    cases.append(("far left at its default 1e-3", d, same, None))
    for case, d, same, f in cases:
        result.n_cases += 1
        args = (d.copy(), same.copy()) if f is None else (d.copy(), same.copy(), f)
        f = 1e-3 if f is None else f
        raised, out = run_student(result, student_fn, *args, case=case)
        if raised == "not implemented":
            break
        if raised or _scalar_outputs(result, out, ("val", "far", "threshold"), case) is None:
            continue
        def v(**kw):
            return lambda: val_at_far_variant(d, same, f, **kw)
        _compare_outputs(result, out, _ref.val_at_far(d, same, f), ("VAL", "achieved FAR", "threshold"), [
            ("FAR is a fraction of the DIFFERENT-person pairs, not of all pairs", v(far_over="all")),
            ("FAR must be at most the target (<=), not strictly below it", v(strict=True)),
            ("that threshold's FAR exceeds the target: take the largest threshold whose FAR is still <= far",
             v(overshoot=True)),
            ("the threshold was taken among the different pairs' distances only; the same pairs above the "
             "last false accept count too: try every distinct distance", v(candidates="different")),
            ("pairs accepted with distance < threshold; the rule is <=", v(rule="<")),
            ("returned percentages; return fractions in [0, 1]", v(percent=True)),
        ], case)
    return result


# ----------------------------------------------------------------------------- fit_threshold

def _fit_cases(rng):
    d, same = _pairs(rng, 25, 35)
    return [
        ("60 pairs with tied distances", d, same),
        ("separable: same pairs at 0.1, 0.2, 0.3, different at 0.5, 0.6 (threshold 0.4, midway)",
         np.array([0.1, 0.5, 0.2, 0.6, 0.3]), np.array([True, False, True, False, True])),
        ("two cuts equally good (thresholds 1.5 and 3.5): the smallest", np.array([1.0, 2.0, 3.0, 4.0]),
         np.array([True, False, True, False])),
        ("only same-person pairs (threshold +inf: everything same)", np.array([0.5, 0.7, 0.9]), np.ones(3, bool)),
        ("different pairs nearer than same pairs (threshold -inf: everything different)",
         np.array([3.0, 1.0, 4.0, 2.0, 2.5]), np.array([True, False, True, False, False])),
    ]


@register("fit_threshold")
def check_fit_threshold(student_fn, namespace) -> CheckResult:
    """The best threshold and its accuracy against the library's and a brute-force count."""
    result = CheckResult("fit_threshold")
    for case, d, same in _fit_cases(np.random.default_rng(9)):
        result.n_cases += 1
        raised, out = run_student(result, student_fn, d.copy(), same.copy(), case=case)
        if raised == "not implemented":
            break
        if raised or _scalar_outputs(result, out, ("threshold", "accuracy"), case) is None:
            continue
        def v(**kw):
            return lambda: fit_threshold_variant(d, same, **kw)
        _compare_outputs(result, out, _ref.fit_threshold(d, same), ("threshold", "accuracy"), [
            ("the threshold is one of the distances; take the midpoint between consecutive distinct "
             "distances (it generalises better to new pairs)", v(candidates="values")),
            ("ties between equally good thresholds: return the smallest", v(ties="largest")),
            ("-inf and +inf are candidates too (call everything different / everything same)", v(infinite=False)),
            ("the accuracy is a count; divide by the number of pairs", v(count=True)),
            ("accepted with distance >= threshold: small distances mean the same person", v(rule=">=")),
        ], case)
    return result


# ----------------------------------------------------------------------------- kfold_accuracy

@register("kfold_accuracy")
def check_kfold_accuracy(student_fn, namespace) -> CheckResult:
    """Per-fold accuracies and thresholds against :func:`scratchface.recognition.verification.kfold_accuracy`."""
    result = CheckResult("kfold_accuracy")
    rng = np.random.default_rng(10)
    d, same = _pairs(rng, 60, 60)
    shuffled = rng.permutation(np.repeat(np.arange(10), 12))
    cases = [("120 pairs in 10 contiguous folds (as LFW's pairs.txt)", d, same, np.repeat(np.arange(10), 12)),
             ("120 pairs, 10 folds interleaved at random", d, same, shuffled),
             ("120 pairs in 4 folds labelled 1 to 4", d, same, np.repeat(np.arange(1, 5), 30))]
    for case, d, same, folds in cases:
        result.n_cases += 1
        raised, out = run_student(result, student_fn, d.copy(), same.copy(), folds=folds.copy(), case=case)
        if raised == "not implemented":
            break
        if raised:
            continue
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            result.add(f"kfold_accuracy must return (accuracies, thresholds), one per fold; got "
                       f"{type(out).__name__}", case,
                       "return the per-fold arrays; their mean and std are what a paper reports")
            continue
        if np.ndim(out[0]) == 0:
            result.add(f"kfold_accuracy returned the numbers {out[0]!r}, {out[1]!r}; expected (accuracies, "
                       "thresholds), two arrays with one entry per fold", case,
                       "return the per-fold arrays, not their mean and std (accuracies.mean() is one line later)")
            continue
        expected = _ref.kfold_accuracy(d, same, folds=folds)
        for k, (name, exp) in enumerate((("per-fold accuracies", expected.per_fold),
                                         ("per-fold thresholds", expected.thresholds))):
            def v(**kw):
                return lambda: kfold_accuracy_variant(d, same, folds, **kw)[k]
            if not compare(result, out[k], exp, what=name, case=case, hint=variant_hint([
                ("the threshold was chosen on the test fold itself; choose it on the OTHER folds (else "
                 "the accuracy is optimistic)", v(fit_on="test")),
                ("the threshold was chosen on all pairs, test fold included; choose it on the other folds",
                 v(fit_on="all")),
                ("accuracy measured on the training folds; measure it on the held-out fold", v(measure_on="train")),
                ("the folds argument is ignored (ten contiguous blocks); use the fold of each pair",
                 v(fold_ids="contiguous")),
                ("folds numbered 0 .. n-1 assumed; loop over np.unique(folds)", v(fold_ids="range")),
                ("folds numbered 0 .. n-1 assumed; loop over np.unique(folds)", v(fold_ids="range", empty=0.0)),
            ])):
                break
    return result
