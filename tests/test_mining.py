"""Triplet miners against brute-force enumeration of every triplet of a small batch."""
import itertools

import numpy as np
import pytest

from scratchface.losses.mining import batch_all_triplets, batch_hard_triplets, semi_hard_triplets


def _batch(rng, people=4, photos=(3, 4, 2, 5), dim=3):
    labels = np.repeat(np.arange(people), photos)
    e = rng.standard_normal((len(labels), dim))
    return e / np.linalg.norm(e, axis=1, keepdims=True), labels


def _d(e):
    """Squared distances by the definition, in a loop."""
    n = len(e)
    return np.array([[float(((e[i] - e[j]) ** 2).sum()) for j in range(n)] for i in range(n)])


def _all_triplets(labels):
    n = len(labels)
    return [(a, p, q) for a, p, q in itertools.product(range(n), repeat=3)
            if a != p and labels[a] == labels[p] and labels[q] != labels[a]]


def _as_list(triplets):
    a, p, n = triplets
    assert a.dtype == p.dtype == n.dtype == np.int64
    return list(zip(a.tolist(), p.tolist(), n.tolist()))


def test_lecture_count_two_people_ten_photos(rng):
    labels = np.repeat([0, 1], 10)
    triplets = batch_all_triplets(rng.standard_normal((20, 8)), labels)
    assert len(triplets[0]) == 2 * 10 * 9 * 10 == 1800
    assert len(set(_as_list(triplets))) == 1800


def test_batch_all_matches_brute_force(rng):
    e, labels = _batch(rng)
    assert _as_list(batch_all_triplets(e, labels)) == _all_triplets(labels)
    d = _d(e)
    for alpha in (0.05, 0.2, 1.0):
        want = [t for t in _all_triplets(labels) if d[t[0], t[1]] - d[t[0], t[2]] + alpha > 0]
        got = _as_list(batch_all_triplets(e, labels, alpha=alpha))
        assert got == want and 0 < len(want) < len(_all_triplets(labels))


def test_batch_hard_matches_brute_force(rng):
    e, labels = _batch(rng)
    d = _d(e)
    want = []
    for a in range(len(labels)):
        pos = [j for j in range(len(labels)) if j != a and labels[j] == labels[a]]
        neg = [j for j in range(len(labels)) if labels[j] != labels[a]]
        if pos and neg:
            want.append((a, max(pos, key=lambda j: d[a, j]), min(neg, key=lambda j: d[a, j])))
    assert _as_list(batch_hard_triplets(e, labels)) == want


def _semi_hard_expected(d, labels, alpha, fallback):
    """Brute force, one anchor-positive pair at a time."""
    out = []
    n = len(labels)
    for a, p in itertools.product(range(n), repeat=2):
        if a == p or labels[a] != labels[p]:
            continue
        neg = [j for j in range(n) if labels[j] != labels[a]]
        window = [j for j in neg if d[a, p] < d[a, j] < d[a, p] + alpha]
        if window:
            out.append((a, p, min(window, key=lambda j: d[a, j]), tuple(window)))
        elif fallback == "hardest" and neg:
            out.append((a, p, min(neg, key=lambda j: d[a, j]), None))
        elif fallback == "easiest_hard":
            hard = [j for j in neg if d[a, j] <= d[a, p]]
            if hard:
                out.append((a, p, max(hard, key=lambda j: d[a, j]), None))
    return out


@pytest.mark.parametrize("fallback", ["easiest_hard", "hardest", "skip"])
def test_semi_hard_hardest_choice_matches_brute_force(fallback, rng):
    e, labels = _batch(rng, people=3, photos=(4, 3, 5), dim=2)
    d = _d(e)
    want = _semi_hard_expected(d, labels, 0.3, fallback)
    got = _as_list(semi_hard_triplets(e, labels, alpha=0.3, choose="hardest", fallback=fallback))
    assert got == [w[:3] for w in want]
    if fallback != "skip":  # this batch exercises both branches
        assert any(w[3] is None for w in want) and any(w[3] is not None for w in want)


def test_semi_hard_random_choice(rng):
    e, labels = _batch(rng, people=3, photos=(4, 3, 5), dim=2)
    d = _d(e)
    want = _semi_hard_expected(d, labels, 0.5, "easiest_hard")
    seen = {}
    for seed in range(40):
        got = _as_list(semi_hard_triplets(e, labels, alpha=0.5, rng=np.random.default_rng(seed)))
        assert [g[:2] for g in got] == [w[:2] for w in want]
        for g, w in zip(got, want):
            if w[3] is None:
                assert g[2] == w[2]             # fallback: deterministic
            else:
                assert g[2] in w[3]             # a semi-hard negative
                seen.setdefault(g[:2], set()).add(g[2])
    # uniform choice: over 40 draws every member of each (small) window shows up
    for w in want:
        if w[3] is not None and len(w[3]) <= 3:
            assert seen[w[:2]] == set(w[3])
    again = semi_hard_triplets(e, labels, alpha=0.5, rng=np.random.default_rng(7))
    assert _as_list(again) == _as_list(semi_hard_triplets(e, labels, alpha=0.5, rng=np.random.default_rng(7)))


@pytest.mark.parametrize("labels", [np.arange(5), np.zeros(5, dtype=int)], ids=["no positive", "no negative"])
def test_empty_result_has_stable_shape(labels, rng):
    e = rng.standard_normal((5, 3))
    for triplets in (batch_all_triplets(e, labels), batch_all_triplets(e, labels, alpha=0.2),
                     batch_hard_triplets(e, labels),
                     semi_hard_triplets(e, labels, rng=rng)):
        assert [t.shape for t in triplets] == [(0,), (0,), (0,)]
        assert all(t.dtype == np.int64 for t in triplets)


def test_bad_input(rng):
    e = rng.standard_normal((4, 3))
    with pytest.raises(TypeError, match="labels must have a signed integer or unsigned integer dtype"):
        batch_all_triplets(e, np.zeros(4))
    with pytest.raises(ValueError, match="labels must have one label per sample \\(4\\), got 3"):
        batch_hard_triplets(e, np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="alpha must be a finite positive number"):
        semi_hard_triplets(e, np.zeros(4, dtype=int), alpha=-0.1, rng=rng)
    with pytest.raises(ValueError, match="alpha must be a finite positive number"):
        batch_all_triplets(e, np.zeros(4, dtype=int), alpha=0)
    with pytest.raises(ValueError, match="choose must be one of"):
        semi_hard_triplets(e, np.zeros(4, dtype=int), choose="easiest", rng=rng)
    with pytest.raises(ValueError, match="fallback must be one of"):
        semi_hard_triplets(e, np.zeros(4, dtype=int), fallback="none", rng=rng)
    with pytest.raises(TypeError, match="needs rng=np.random.default_rng"):
        semi_hard_triplets(e, np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="embeddings must be a 2-D array"):
        batch_all_triplets(np.zeros(4), np.zeros(4, dtype=int))
