"""Checkers for assignment 6: the triplet loss (FaceNet eq. 1-3) and semi-hard mining.

The student writes::

    triplet_loss_forward(anchor, positive, negative, *, alpha=0.2)   -> (loss, cache)
    triplet_loss_backward(dloss, cache)                               -> (danchor, dpositive, dnegative)
    pairwise_squared_distances(embeddings)                            -> (B, B)
    semi_hard_negatives(distances, labels, anchor, positive, *, alpha=0.2) -> int indices, ascending
    semi_hard_triplets(embeddings, labels, *, alpha=0.2)              -> (a, p, n) int arrays

The loss is the *mean* over the N triplets of :math:`[d(a,p) - d(a,n) + \\alpha]_+` on the rows as
given (no normalisation inside), i.e. :func:`scratchface.losses.triplet.triplet_loss_forward` with
``normalize=False, reduction='mean'``. The backward pass is compared with finite differences of
that reference. ``semi_hard_triplets`` takes, for every anchor-positive pair in row-major order, the
*nearest* semi-hard negative, :math:`d(a,p) < d(a,n) < d(a,p) + \\alpha` (ties: the lower index), and
skips pairs without one: :func:`scratchface.losses.mining.semi_hard_triplets` with
``choose='hardest', fallback='skip'``, and the brute-force loops below.
"""
from __future__ import annotations

import functools

import numpy as np

from ._core import CheckResult, compare, register
from ._library import mining_module as _mining
from ._library import numerical_gradient
from ._library import triplet_module as _triplet
from ._variants import (
    compare_indices,
    compare_scalar,
    run_backward,
    run_student,
    shape_of,
    split_forward,
    variant_hint,
)

__all__ = ["triplet_loss_variant", "triplet_grads_variant", "semi_hard_negatives_variant",
           "semi_hard_triplets_variant", "check_triplet_loss_forward", "check_triplet_loss_backward",
           "check_pairwise_squared_distances", "check_semi_hard_negatives", "check_semi_hard_triplets"]


# ----------------------------------------------------------------------------- the loss, plainly

def _distances(a, p, n, *, squared=True, axis=1):
    d_ap, d_an = ((a - p) ** 2).sum(axis=axis), ((a - n) ** 2).sum(axis=axis)
    return (d_ap, d_an) if squared else (np.sqrt(d_ap), np.sqrt(d_an))


def triplet_loss_variant(a, p, n, alpha, *, hinge="each", squared=True, reduction="mean", alpha_sign=1,
                         swap=False, axis=1, alpha_outside=False):
    """The mean triplet loss written plainly, with switches that plant one mistake each.

    hinge : 'each' (right), 'none', 'after_mean'; squared : squared distances (right) or plain;
    reduction : 'mean' (right), 'sum', 'mean_active'; alpha_sign : -1 subtracts the margin;
    swap : positive and negative exchanged; axis : 0 sums over the batch instead of the features;
    alpha_outside : the margin added after the hinge.
    """
    if swap:
        p, n = n, p
    d_ap, d_an = _distances(a, p, n, squared=squared, axis=axis)
    z = d_ap - d_an + (0 if alpha_outside else alpha_sign * alpha)
    if hinge == "after_mean":
        return max(float(np.mean(z)), 0.0)
    per = np.maximum(z, 0) if hinge == "each" else z
    if alpha_outside:
        per = per + alpha
    if reduction == "sum":
        return float(per.sum())
    if reduction == "mean_active":
        active = per > 0
        return float(per[active].mean()) if active.any() else 0.0
    return float(per.mean())


def triplet_grads_variant(a, p, n, alpha, dloss, *, hinge=True, factor=2.0, mean=True, use_dloss=True,
                          sign=1.0, danchor="right", swap_outputs=False):
    """``(da, dp, dn)`` of the mean triplet loss, with switches that plant one mistake each.

    danchor : 'right' :math:`2(n - p)`, 'positive_only' :math:`2(a - p)` (the d(a, n) term forgotten),
    'plus' :math:`2(a-p) + 2(a-n)` (its sign wrong).
    """
    d_ap, d_an = _distances(a, p, n)
    z = d_ap - d_an + alpha
    w = (z > 0).astype(float) if hinge else np.ones_like(z)
    g = (factor * w * (dloss if use_dloss else 1.0) / (len(a) if mean else 1.0) * sign)[:, None]
    da = {"right": n - p, "positive_only": a - p, "plus": (a - p) + (a - n)}[danchor] * g
    dp, dn = g * (p - a), g * (a - n)
    return (da, dn, dp) if swap_outputs else (da, dp, dn)


# ----------------------------------------------------------------------------- cases

def _triplets(rng, n, d, alpha, *, scale=0.4, active="mixed"):
    """Random triplets, each at least 0.02 away from the hinge's kink; 'mixed' has both kinds."""
    for _ in range(1000):
        a, p, m = (scale * rng.standard_normal((n, d)) for _ in range(3))
        if active == "none":
            m = a + 3.0 + scale * rng.standard_normal((n, d))
        z = ((a - p) ** 2).sum(1) - ((a - m) ** 2).sum(1) + alpha
        if np.all(np.abs(z) > 0.02) and (active != "mixed" or (np.any(z > 0) and np.any(z < 0))):
            return a, p, m
    raise RuntimeError("could not draw triplets away from the kink")  # pragma: no cover


def _loss_cases():
    rng = np.random.default_rng(6)
    return [
        ("7 random triplets in 5-D (some with loss 0), alpha=0.2", *_triplets(rng, 7, 5, 0.2), 0.2),
        ("4 random triplets in 3-D, alpha=0.5", *_triplets(rng, 4, 3, 0.5), 0.5),
        ("5 triplets that all satisfy the margin (loss 0)", *_triplets(rng, 5, 4, 0.2, active="none"), 0.2),
        ("a single triplet in 6-D, alpha=0.3", *_triplets(rng, 1, 6, 0.3, active="any"), 0.3),
        ("6 triplets in 4-D, alpha left at its default 0.2", *_triplets(rng, 6, 4, 0.2), None),
    ]


def _reference_loss(a, p, n, alpha):
    loss, _ = _triplet.triplet_loss_forward(a, p, n, alpha=alpha, normalize=False, reduction="mean")
    return float(loss)


def _loss_hint(a, p, n, alpha):
    def v(**kw):
        return lambda: triplet_loss_variant(a, p, n, alpha, **kw)
    return variant_hint([
        ("forgot the hinge on each triplet (or applied it after averaging): apply max(0, .) to each "
         "triplet, then average", v(hinge="after_mean")),
        ("forgot the hinge [.]_+ = max(0, .): triplets that satisfy the margin must count 0, not negative",
         v(hinge="none")),
        ("summed over the triplets; this assignment's loss is the mean (FaceNet eq. 3 writes a sum)",
         v(reduction="sum")),
        ("averaged over the active triplets only; average over all N triplets", v(reduction="mean_active")),
        ("used the distance, not the squared distance ||f(a) - f(p)||^2", v(squared=False)),
        ("the margin alpha is subtracted; it is added: d(a,p) - d(a,n) + alpha", v(alpha_sign=-1)),
        ("positive and negative are swapped: the loss is d(a,p) - d(a,n) + alpha", v(swap=True)),
        ("the squared differences are summed over axis 0 (the triplets); sum over axis 1 (the features)",
         v(axis=0)),
        ("alpha is added outside the hinge; it belongs inside: max(0, d(a,p) - d(a,n) + alpha)",
         v(alpha_outside=True)),
    ])


@register("triplet_loss_forward")
def check_triplet_loss_forward(student_fn, namespace) -> CheckResult:
    """The loss against ``scratchface.losses.triplet`` (``normalize=False, reduction='mean'``)."""
    result = CheckResult("triplet_loss_forward")
    for case, a, p, n, alpha in _loss_cases():
        result.n_cases += 1
        kwargs = {} if alpha is None else {"alpha": alpha}
        alpha = 0.2 if alpha is None else alpha
        raised, out = run_student(result, student_fn, a.copy(), p.copy(), n.copy(), case=case, **kwargs)
        if raised == "not implemented":
            break
        if raised or split_forward(result, out, "triplet_loss_forward", case) is None:
            continue
        compare_scalar(result, out[0], _reference_loss(a, p, n, alpha), what="loss", case=case,
                       hint=_loss_hint(a, p, n, alpha))
    return result


@functools.cache
def _numerical_grads(case_index, dloss):
    """Finite-difference gradients of ``dloss *`` the reference loss on loss case ``case_index``
    (the cases are fixed, so they are computed once per process)."""
    _, a, p, n, alpha = _loss_cases()[case_index]
    arrays = [np.array(x, dtype=np.float64) for x in (a, p, n)]

    def loss():
        return dloss * _reference_loss(*arrays, alpha)
    return tuple(numerical_gradient(loss, x) for x in arrays)


@register("triplet_loss_backward")
def check_triplet_loss_backward(student_fn, namespace) -> CheckResult:
    """The three gradients against finite differences of the reference loss.

    The cache comes from the student's own ``triplet_loss_forward`` (found in ``namespace``).
    """
    result = CheckResult("triplet_loss_backward")
    names = ("danchor", "dpositive", "dnegative")
    for index, ((case, a, p, n, alpha), dloss) in enumerate(zip(_loss_cases()[:4], (1.0, 1.7, 0.6, 2.5))):
        result.n_cases += 1
        case = f"{case}, dloss={dloss}"
        stop, grads = run_backward(result, student_fn, namespace, "triplet_loss_forward",
                                   (a.copy(), p.copy(), n.copy()), {"alpha": alpha}, dloss=dloss,
                                   reference_loss=_reference_loss(a, p, n, alpha), names=names, case=case)
        if stop:
            break
        if grads is None:
            continue
        expected = _numerical_grads(index, dloss)
        for k, (name, got, exp) in enumerate(zip(names, grads, expected)):
            compare(result, got, exp, what=name, case=case, rtol=1e-5, atol=1e-8,
                    hint=_grad_hint(a, p, n, alpha, dloss, k))
    return result


def _grad_hint(a, p, n, alpha, dloss, k):
    def v(**kw):
        return lambda: triplet_grads_variant(a, p, n, alpha, dloss, **kw)[k]
    variants = [
        ("the gradient is not masked by the hinge: triplets with loss 0 must get zero gradient",
         v(hinge=False)),
        ("missing the factor 2 of d||u||^2/du = 2u", v(factor=1.0)),
        ("missing the 1/N of the mean", v(mean=False)),
        ("dloss (the upstream gradient) is not multiplied in", v(use_dloss=False)),
        ("the sign is flipped (check the order of the subtraction)", v(sign=-1.0)),
        ("dpositive and dnegative are swapped in the returned tuple", v(swap_outputs=True)),
    ]
    if k == 0:
        variants += [
            ("danchor lacks the d(a, n) term: d/da [||a-p||^2 - ||a-n||^2] = 2(a-p) - 2(a-n) = 2(n-p)",
             v(danchor="positive_only")),
            ("danchor: the d(a, n) term has the wrong sign; 2(a-p) - 2(a-n) = 2(n-p)", v(danchor="plus")),
        ]
    return variant_hint(variants, rtol=1e-5, atol=1e-8)


# ----------------------------------------------------------------------------- distances

@register("pairwise_squared_distances")
def check_pairwise_squared_distances(student_fn, namespace) -> CheckResult:
    """``d[i, j] = ||e_i - e_j||^2`` against a double loop."""
    result = CheckResult("pairwise_squared_distances")
    rng = np.random.default_rng(60)
    far = np.array([[1000.1, 2000.3, -500.7]] * 3) + np.array([[0.0], [1e-3], [0.0]])
    cases = [("9 random embeddings in 4-D", rng.standard_normal((9, 4))),
             ("3 embeddings in 7-D", rng.standard_normal((3, 7))),
             ("rows far from the origin, two identical (rounding can make |a|^2 + |b|^2 - 2ab < 0)", far),
             ("one embedding", rng.standard_normal((1, 5)))]
    for case, e in cases:
        result.n_cases += 1
        raised, got = run_student(result, student_fn, e.copy(), case=case)
        if raised == "not implemented":
            break
        if raised:
            continue
        expected = np.array([[np.sum((x - y) ** 2) for y in e] for x in e])
        hint = variant_hint([
            ("took the square root: these are SQUARED distances", lambda: np.sqrt(expected)),
            ("missing the factor 2 in |a|^2 + |b|^2 - 2 a.b",
             lambda: (e * e).sum(1)[:, None] + (e * e).sum(1)[None, :] - e @ e.T),
            ("the Gram matrix must be e @ e.T, (B, D) @ (D, B)", lambda: e.T @ e),
        ], rtol=1e-6, atol=1e-6)
        if compare(result, got, expected, what="distances", case=case, rtol=1e-6, atol=1e-6, hint=hint):
            if np.any(np.asarray(got) < 0):
                result.add("some distances are negative", case,
                           "rounding in |a|^2 + |b|^2 - 2 a.b can go below 0: clamp with np.maximum(d, 0)")
    return result


# ----------------------------------------------------------------------------- semi-hard mining

def semi_hard_negatives_variant(d, labels, a, p, alpha, *, lower=True, upper=True, lower_eq=False,
                                upper_eq=False, check_labels=True, row="anchor"):
    """Brute force: every negative ``n`` with ``d[a,p] < d[a,n] < d[a,p] + alpha``; switches plant a mistake."""
    labels = np.asarray(labels)
    src = a if row == "anchor" else p
    out = []
    for n in range(len(labels)):
        if (labels[n] == labels[a]) if check_labels else (n in (a, p)):
            continue
        lo = (d[src, n] >= d[a, p]) if lower_eq else (d[src, n] > d[a, p])
        hi = (d[src, n] <= d[a, p] + alpha) if upper_eq else (d[src, n] < d[a, p] + alpha)
        if (lo or not lower) and (hi or not upper):
            out.append(n)
    return np.asarray(out, dtype=np.int64)


def semi_hard_triplets_variant(e, labels, alpha, *, pick="nearest", window="semi_hard", fallback="skip",
                               self_pairs=False, squared=True, positives="all", order="anchor"):
    """Brute-force semi-hard triplets, with switches that plant one mistake each.

    pick : 'nearest' (right) or 'farthest' negative of the window; window : 'semi_hard' (right),
    'none' (all negatives: the hardest), 'no_upper'; fallback : 'skip' (right) or 'hardest';
    self_pairs : allow a == p; squared : squared distances (right) or plain; positives : 'all'
    (right) or 'hardest' (one per anchor); order : 'anchor' (right) or 'positive' (column-major).
    """
    labels = np.asarray(labels)
    d = np.array([[np.sum((x - y) ** 2) for y in e] for x in e])
    if not squared:
        d = np.sqrt(d)
    b = len(labels)
    pairs = [(a, p) for a in range(b) for p in range(b) if labels[a] == labels[p] and (self_pairs or a != p)]
    if positives == "hardest":
        best = {}
        for a, p in pairs:
            if a not in best or d[a, p] > d[a, best[a]]:
                best[a] = p
        pairs = sorted(best.items())
    if order == "positive":
        pairs = sorted(pairs, key=lambda ap: (ap[1], ap[0]))
    out = []
    for a, p in pairs:
        negs = [n for n in range(b) if labels[n] != labels[a]]
        if window == "none":
            cand = negs
        elif window == "no_upper":
            cand = [n for n in negs if d[a, n] > d[a, p]]
        else:
            cand = [n for n in negs if d[a, p] < d[a, n] < d[a, p] + alpha]
        if not cand and fallback == "hardest" and negs:
            cand = [min(negs, key=lambda n: (d[a, n], n))]
        if cand:
            key = (lambda n: (d[a, n], n)) if pick == "nearest" else (lambda n: (-d[a, n], n))
            out.append((a, p, min(cand, key=key)))
    return np.asarray(out, dtype=np.int64).reshape(-1, 3)


def _grid_batch(rng, b, ids, dim=2):
    """Embeddings on a grid of step 1/4, so squared distances are exact and ties and boundaries occur."""
    return rng.integers(0, 7, size=(b, dim)) / 4.0, rng.integers(0, ids, size=b)


def _boundary_batch():
    """1-D: anchor 0, positive 0.5 (d = 0.25); negatives at d = 0.25 (= d(a,p)), 0.390625 (inside),
    0.5625 (= d(a,p) + alpha for alpha = 0.3125) and 1.0 (beyond): only index 3 is semi-hard for (0, 1)."""
    e = np.array([[0.0], [0.5], [0.5], [0.625], [0.75], [1.0]])
    return e, np.array([0, 0, 1, 1, 2, 2]), 0.3125


def _mining_cases():
    rng = np.random.default_rng(66)
    e1, l1 = _grid_batch(rng, 12, 3)
    e2, l2 = _grid_batch(rng, 10, 2, dim=3)
    eb, lb, ab = _boundary_batch()
    far = np.array([[0.0], [0.25], [5.0], [5.25]])
    return [
        ("12 embeddings of 3 people on a grid, alpha=0.5", e1, l1, 0.5),
        ("10 embeddings of 2 people in 3-D, alpha=0.25", e2, l2, 0.25),
        ("negatives exactly at d(a,p) and at d(a,p) + alpha (both excluded: strict <)", eb, lb, ab),
        ("every negative far beyond the margin (no semi-hard negative at all)", far, np.array([0, 0, 1, 1]), 0.2),
        ("every embedding a different person (no positive pair)", e1[:5], np.arange(5), 0.5),
        ("one person only (no negative)", e1[:4], np.zeros(4, dtype=int), 0.5),
    ]


def _show(triplets):
    return str(triplets.tolist()) if len(triplets) <= 8 else f"{len(triplets)} triplets"


def _check_index_array(result, got, case, what):
    arr = np.asarray(got)
    if arr.size == 0 and arr.dtype.kind not in "iu":
        result.add(f"{what} has dtype {arr.dtype}, expected integers", case,
                   "np.array([]) is float64: use np.array(indices, dtype=np.int64)")
        return False
    return True


@register("semi_hard_negatives")
def check_semi_hard_negatives(student_fn, namespace) -> CheckResult:
    """The semi-hard negatives of chosen (anchor, positive) pairs, against a brute-force loop."""
    result = CheckResult("semi_hard_negatives")
    for case, e, labels, alpha in _mining_cases()[:4]:
        d = _mining.pairwise_squared_distances(e)
        pairs = [(a, p) for a in range(len(labels)) for p in range(len(labels))
                 if a != p and labels[a] == labels[p]][:6]
        for a, p in pairs:
            result.n_cases += 1
            where = f"{case}; anchor={a}, positive={p}"
            raised, got = run_student(result, student_fn, d.copy(), labels.copy(), a, p, alpha=alpha, case=where)
            if raised == "not implemented":
                return result
            if raised:
                continue
            expected = semi_hard_negatives_variant(d, labels, a, p, alpha)
            if shape_of(got) == (len(labels),) and np.asarray(got).dtype == bool:
                result.add("returned a boolean mask; return the indices (np.flatnonzero(mask))", where)
                continue

            def v(**kw):
                return lambda: semi_hard_negatives_variant(d, labels, a, p, alpha, **kw)
            hint = variant_hint([
                ("forgot the upper bound d(a,n) < d(a,p) + alpha", v(upper=False)),
                ("forgot the lower bound d(a,n) > d(a,p): those are hard negatives, not semi-hard", v(lower=False)),
                ("used d(a,n) >= d(a,p); the lower bound is strict", v(lower_eq=True)),
                ("used d(a,n) <= d(a,p) + alpha; the upper bound is strict", v(upper_eq=True)),
                ("labels not checked: a negative must be a different person", v(check_labels=False)),
                ("distances taken from the positive, d(p, n); they are from the anchor, d(a, n)",
                 v(row="positive")),
                ("returned the hardest (nearest) negative; return every semi-hard one",
                 lambda: np.array([min((n for n in range(len(labels)) if labels[n] != labels[a]),
                                       key=lambda n: (d[a, n], n))])),
            ])
            if compare_indices(result, got, expected, what="semi-hard negatives", case=where, hint=hint):
                _check_index_array(result, got, where, "semi-hard negatives")
    return result


@register("semi_hard_triplets")
def check_semi_hard_triplets(student_fn, namespace) -> CheckResult:
    """The mined triplets against the library's miner (nearest semi-hard negative, skip otherwise)."""
    result = CheckResult("semi_hard_triplets")
    for case, e, labels, alpha in _mining_cases():
        result.n_cases += 1
        raised, got = run_student(result, student_fn, e.copy(), labels.copy(), alpha=alpha, case=case)
        if raised == "not implemented":
            break
        if raised:
            continue
        if not (isinstance(got, (tuple, list)) and len(got) == 3):
            result.add(f"semi_hard_triplets must return three index arrays (a, p, n); got {type(got).__name__}",
                       case)
            continue
        shapes = [shape_of(x) for x in got]
        if None in shapes or len(set(shapes)) != 1 or len(shapes[0]) != 1:
            result.add(f"a, p and n must be 1-D arrays of one length; got shapes {shapes}", case)
            continue
        arrays = [np.asarray(x) for x in got]
        expected = np.column_stack(_mining.semi_hard_triplets(e, labels, alpha=alpha, choose="hardest",
                                                              fallback="skip")).reshape(-1, 3)
        actual = np.column_stack(arrays).reshape(-1, 3)

        def v(**kw):
            return lambda: semi_hard_triplets_variant(e, labels, alpha, **kw)
        hint = variant_hint([
            ("picked the hardest negative (nearest of all); FaceNet's semi-hard one is farther than the "
             "positive: d(a,p) < d(a,n) < d(a,p) + alpha", v(window="none")),
            ("forgot the upper bound d(a,n) < d(a,p) + alpha", v(window="no_upper")),
            ("picked the farthest semi-hard negative; take the nearest", v(pick="farthest")),
            ("pairs without a semi-hard negative got the hardest negative; skip them", v(fallback="hardest")),
            ("an anchor was paired with itself; a positive is ANOTHER photo of the same person",
             v(self_pairs=True)),
            ("used plain distances; the window is on SQUARED distances", v(squared=False)),
            ("one positive per anchor; take every anchor-positive pair", v(positives="hardest")),
            ("the pairs are ordered by positive; order them by anchor, then positive", v(order="positive")),
        ])
        if actual.shape != expected.shape or not np.array_equal(actual, expected):
            wrong = next((k for k in range(min(len(actual), len(expected)))
                          if not np.array_equal(actual[k], expected[k])), min(len(actual), len(expected)))
            result.add(f"mined {_show(actual)} where {_show(expected)} expected (rows a, p, n); first "
                       f"difference at row {wrong}", case, hint(actual, expected))
            continue
        for x, name in zip(arrays, "apn"):
            if not _check_index_array(result, x, case, name):
                break
    return result

