"""Assignment 6 (triplet loss, semi-hard mining): the checker passes the solution, flags planted bugs."""
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

from scratchface.check import check, get_checker
from scratchface.check.__main__ import load_student_file
from scratchface.check.triplet import (
    semi_hard_triplets_variant,
    triplet_grads_variant,
    triplet_loss_variant,
)
from scratchface.gradcheck import numerical_gradient
from scratchface.losses.mining import semi_hard_triplets
from scratchface.losses.triplet import triplet_loss_forward

SOLUTION = SOLUTIONS / "06_triplet_mining.py"
NAMES = ("triplet_loss_forward", "triplet_loss_backward", "pairwise_squared_distances",
         "semi_hard_negatives", "semi_hard_triplets")


@pytest.fixture(scope="module")
def solution():
    return run_notebook_file(SOLUTION)


def test_solution_runs_and_passes(solution):
    assert_solution_passes(solution, NAMES)


def test_plain_variants_match_independent_references(rng):
    """The checker's plain loss / gradient / miner agree with the library and finite differences."""
    a, p, n = (0.5 * rng.standard_normal((6, 3)) for _ in range(3))
    loss, _ = triplet_loss_forward(a, p, n, alpha=0.3, normalize=False)
    assert triplet_loss_variant(a, p, n, 0.3) == pytest.approx(float(loss), rel=1e-12)
    arrays = [a.copy(), p.copy(), n.copy()]
    grads = triplet_grads_variant(a, p, n, 0.3, 1.5)
    for k, x in enumerate(arrays):
        numeric = numerical_gradient(lambda: 1.5 * triplet_loss_variant(*arrays, 0.3), x)
        np.testing.assert_allclose(grads[k], numeric, atol=1e-8)
    for _ in range(5):
        e = rng.integers(0, 6, size=(11, 2)) / 4.0
        labels = rng.integers(0, 3, size=11)
        expected = np.column_stack(semi_hard_triplets(e, labels, alpha=0.4, choose="hardest",
                                                      fallback="skip")).reshape(-1, 3)
        np.testing.assert_array_equal(semi_hard_triplets_variant(e, labels, 0.4), expected)


def test_facenet_triplet_count():
    """Lecture: 2 people x 10 photos, every triplet: 20 anchors x 9 positives x 10 negatives = 1800."""
    e, labels = np.zeros((20, 2)), np.repeat([0, 1], 10)
    mined = semi_hard_triplets_variant(e, labels, 0.2, window="none")  # one negative per pair: 180 pairs
    assert len(mined) == 20 * 9


FORWARD = "def triplet_loss_forward(anchor, positive, negative, *, alpha=0.2):\n"
BACKWARD = "def triplet_loss_backward(dloss, cache):\n    anchor, positive, negative, active = cache\n"
MINER = "def semi_hard_triplets(embeddings, labels, *, alpha=0.2):\n    d = pairwise_squared_distances(embeddings)\n"

MUTANTS = [
    Mutant("no hinge", "triplet_loss_forward", FORWARD + """
    z = ((anchor - positive) ** 2).sum(1) - ((anchor - negative) ** 2).sum(1) + alpha
    return z.mean(), (anchor, positive, negative, z > 0)
""", "forgot the hinge"),
    Mutant("sum instead of mean", "triplet_loss_forward", FORWARD + """
    z = ((anchor - positive) ** 2).sum(1) - ((anchor - negative) ** 2).sum(1) + alpha
    return np.maximum(z, 0).sum(), (anchor, positive, negative, z > 0)
""", "summed over the triplets"),
    Mutant("plain distances", "triplet_loss_forward", FORWARD + """
    z = np.linalg.norm(anchor - positive, axis=1) - np.linalg.norm(anchor - negative, axis=1) + alpha
    return np.maximum(z, 0).mean(), (anchor, positive, negative, z > 0)
""", "not the squared distance"),
    Mutant("hinge after the mean", "triplet_loss_forward", FORWARD + """
    z = ((anchor - positive) ** 2).sum(1) - ((anchor - negative) ** 2).sum(1) + alpha
    return max(z.mean(), 0.0), (anchor, positive, negative, z > 0)
""", "after averaging"),
    Mutant("sum over the wrong axis", "triplet_loss_forward", FORWARD + """
    z = ((anchor - positive) ** 2).sum(0) - ((anchor - negative) ** 2).sum(0) + alpha
    return np.maximum(z, 0).mean(), (anchor, positive, negative, z > 0)
""", "axis 0"),
    Mutant("positive and negative swapped", "triplet_loss_forward", FORWARD + """
    z = ((anchor - negative) ** 2).sum(1) - ((anchor - positive) ** 2).sum(1) + alpha
    return np.maximum(z, 0).mean(), (anchor, positive, negative, z > 0)
""", "swapped"),
    Mutant("returns the loss only", "triplet_loss_forward", FORWARD + """
    z = ((anchor - positive) ** 2).sum(1) - ((anchor - negative) ** 2).sum(1) + alpha
    return np.maximum(z, 0).mean()
""", "return loss, cache"),
    Mutant("gradient not masked by the hinge", "triplet_loss_backward", BACKWARD + """
    g = 2.0 * dloss / len(anchor)
    return g * (negative - positive), g * (positive - anchor), g * (anchor - negative)
""", "not masked by the hinge"),
    Mutant("missing factor 2", "triplet_loss_backward", BACKWARD + """
    g = (dloss * active / len(anchor))[:, None]
    return g * (negative - positive), g * (positive - anchor), g * (anchor - negative)
""", "factor 2"),
    Mutant("missing 1/N", "triplet_loss_backward", BACKWARD + """
    g = (2.0 * dloss * active)[:, None]
    return g * (negative - positive), g * (positive - anchor), g * (anchor - negative)
""", "1/N"),
    Mutant("dloss ignored", "triplet_loss_backward", BACKWARD + """
    g = (2.0 * active / len(anchor))[:, None]
    return g * (negative - positive), g * (positive - anchor), g * (anchor - negative)
""", "dloss"),
    Mutant("danchor without the negative term", "triplet_loss_backward", BACKWARD + """
    g = (2.0 * dloss * active / len(anchor))[:, None]
    return g * (anchor - positive), g * (positive - anchor), g * (anchor - negative)
""", "lacks the d(a, n) term"),
    Mutant("dnegative with the wrong sign", "triplet_loss_backward", BACKWARD + """
    g = (2.0 * dloss * active / len(anchor))[:, None]
    return g * (negative - positive), g * (positive - anchor), g * (negative - anchor)
""", "sign is flipped"),
    Mutant("distances not squared", "pairwise_squared_distances", """
def pairwise_squared_distances(embeddings):
    return np.sqrt(((embeddings[:, None, :] - embeddings[None, :, :]) ** 2).sum(-1))
""", "square root"),
    Mutant("no clamp at 0", "pairwise_squared_distances", """
def pairwise_squared_distances(embeddings):
    sq = (embeddings * embeddings).sum(axis=1)
    return sq[:, None] + sq[None, :] - 2.0 * embeddings @ embeddings.T
""", "clamp"),
    Mutant("e.T @ e", "pairwise_squared_distances", """
def pairwise_squared_distances(embeddings):
    sq = (embeddings * embeddings).sum(axis=1)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * embeddings.T @ embeddings, 0)
"""),
    Mutant("no upper bound", "semi_hard_negatives", """
def semi_hard_negatives(distances, labels, anchor, positive, *, alpha=0.2):
    window = (labels != labels[anchor]) & (distances[anchor] > distances[anchor, positive])
    return np.flatnonzero(window)
""", "upper bound"),
    Mutant("<= at the lower bound", "semi_hard_negatives", """
def semi_hard_negatives(distances, labels, anchor, positive, *, alpha=0.2):
    d_ap, d_an = distances[anchor, positive], distances[anchor]
    return np.flatnonzero((labels != labels[anchor]) & (d_an >= d_ap) & (d_an < d_ap + alpha))
""", "lower bound is strict"),
    Mutant("labels not checked", "semi_hard_negatives", """
def semi_hard_negatives(distances, labels, anchor, positive, *, alpha=0.2):
    d_ap, d_an = distances[anchor, positive], distances[anchor]
    return np.flatnonzero((d_an > d_ap) & (d_an < d_ap + alpha))
""", "labels not checked"),
    Mutant("a mask instead of indices", "semi_hard_negatives", """
def semi_hard_negatives(distances, labels, anchor, positive, *, alpha=0.2):
    d_ap, d_an = distances[anchor, positive], distances[anchor]
    return (labels != labels[anchor]) & (d_an > d_ap) & (d_an < d_ap + alpha)
"""),
    Mutant("hardest negative", "semi_hard_triplets", MINER + """
    out = [(a, p, min((n for n in range(len(labels)) if labels[n] != labels[a]), key=lambda n: d[a, n]))
           for a in range(len(labels)) for p in range(len(labels))
           if p != a and labels[p] == labels[a] and (labels != labels[a]).any()]
    return tuple(np.array(c, dtype=np.int64) for c in zip(*out)) if out else tuple(np.zeros(0, int) for _ in "apn")
""", "hardest negative"),
    Mutant("farthest semi-hard", "semi_hard_triplets", MINER + """
    out = []
    for a in range(len(labels)):
        for p in range(len(labels)):
            if p != a and labels[p] == labels[a]:
                negs = semi_hard_negatives(d, labels, a, p, alpha=alpha)
                if negs.size:
                    out.append((a, p, negs[np.argmax(d[a, negs])]))
    return tuple(np.array(c, dtype=np.int64) for c in zip(*out)) if out else tuple(np.zeros(0, int) for _ in "apn")
""", "farthest"),
    Mutant("anchor paired with itself", "semi_hard_triplets", MINER + """
    out = []
    for a in range(len(labels)):
        for p in range(len(labels)):
            if labels[p] == labels[a]:
                negs = semi_hard_negatives(d, labels, a, p, alpha=alpha)
                if negs.size:
                    out.append((a, p, negs[np.argmin(d[a, negs])]))
    return tuple(np.array(c, dtype=np.int64) for c in zip(*out)) if out else tuple(np.zeros(0, int) for _ in "apn")
""", "paired with itself"),
    Mutant("None when nothing is found", "semi_hard_triplets", MINER + """
    out = []
    for a in range(len(labels)):
        for p in range(len(labels)):
            if p != a and labels[p] == labels[a]:
                negs = semi_hard_negatives(d, labels, a, p, alpha=alpha)
                if negs.size:
                    out.append((a, p, negs[np.argmin(d[a, negs])]))
    return tuple(np.array(c, dtype=np.int64) for c in zip(*out)) if out else None
"""),
    Mutant("fallback to the hardest negative", "semi_hard_triplets", MINER + """
    out = []
    for a in range(len(labels)):
        negatives = np.flatnonzero(labels != labels[a])
        for p in range(len(labels)):
            if p != a and labels[p] == labels[a] and negatives.size:
                negs = semi_hard_negatives(d, labels, a, p, alpha=alpha)
                if negs.size == 0:
                    negs = negatives
                out.append((a, p, negs[np.argmin(d[a, negs])]))
    return tuple(np.array(c, dtype=np.int64) for c in zip(*out)) if out else tuple(np.zeros(0, int) for _ in "apn")
""", "skip them"),
]


def test_mutants_flagged(solution):
    assert_mutants_flagged(solution[0], MUTANTS)
    assert len(MUTANTS) >= 10


def test_backward_uses_the_students_forward(solution):
    planted = dict(solution[0])
    del planted["triplet_loss_forward"]
    result = get_checker("triplet_loss_backward")(solution[0]["triplet_loss_backward"], planted)
    assert not result and "needs your triplet_loss_forward" in str(result)


def test_report_names_the_gradient_and_element(solution):
    planted = dict(solution[0])
    exec(MUTANTS[10].source, planted)  # dloss ignored
    text = str(check(planted["triplet_loss_backward"], verbose=False))
    assert "danchor differs in" in text and "worst at [" in text and "dloss=1.7" in text


def test_student_stubs_report_not_implemented():
    module = load_student_file(ASSIGNMENTS / "06_triplet_mining.py")
    for name in NAMES:
        result = check(getattr(module, name), verbose=False)
        assert not result
        assert "not implemented yet (it raised NotImplementedError)" in str(result)



def test_student_version_is_generated_from_the_solution():
    assert_student_version_generated(SOLUTION)
