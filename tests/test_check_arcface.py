"""Assignment 7 (ArcFace): the checker passes the solution and flags planted student bugs."""
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
from scratchface.check.__main__ import load_student_file
from scratchface.check.arcface import (
    arcface_grads_variant,
    arcface_loss_variant,
    arcface_target_variant,
)
from scratchface.gradcheck import numerical_gradient

SOLUTION = SOLUTIONS / "07_arcface.py"
NAMES = ("arcface_target", "arcface_loss_forward", "arcface_loss_backward")


@pytest.fixture(scope="module")
def solution():
    return run_notebook_file(SOLUTION)


def test_solution_runs_and_passes(solution):
    assert_solution_passes(solution, NAMES)


def test_plain_implementation_against_hand_values_and_finite_differences(rng):
    """The checker's plain ArcFace: cos(theta + m) by hand, the fallback, gradients by differences."""
    t, dt = arcface_target_variant(np.array([np.cos(1.0), np.cos(3.0)]), 0.5)
    assert t[0] == pytest.approx(np.cos(1.5)) and dt[0] == pytest.approx(np.sin(1.5) / np.sin(1.0))
    assert t[1] == pytest.approx(np.cos(3.0) - 0.5 * np.sin(0.5)) and dt[1] == 1.0
    # one sample, two classes, by hand: logits s*cos(theta_y + m) and s*cos(theta_other)
    x, w = np.array([[2.0, 0.0]]), np.array([[np.cos(0.3), 0.0], [np.sin(0.3), 3.0]])
    z = np.array([4 * np.cos(0.3 + 0.2), 4 * np.cos(np.pi / 2)])
    assert arcface_loss_variant(x, w, np.array([0]), 4.0, 0.2) == pytest.approx(-z[0] + np.log(np.exp(z).sum()))
    x, w, labels = rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), np.array([0, 2, 4, 1])
    dx, dw = arcface_grads_variant(x, w, labels, 6.0, 0.4, 1.3)
    np.testing.assert_allclose(dx, numerical_gradient(lambda: 1.3 * arcface_loss_variant(x, w, labels, 6.0, 0.4), x),
                               atol=1e-8)
    np.testing.assert_allclose(dw, numerical_gradient(lambda: 1.3 * arcface_loss_variant(x, w, labels, 6.0, 0.4), w),
                               atol=1e-8)


TARGET = "def arcface_target(cos_theta, *, margin=0.5):\n"
FORWARD = """def arcface_loss_forward(features, weights, *, labels, scale=64.0, margin=0.5):
    x_hat, x_cache = l2_normalize_forward(features, axis=1)
    w_hat, w_cache = l2_normalize_forward(weights, axis=0)
    cos = x_hat @ w_hat
    rows = np.arange(len(labels))
    target, dtarget = arcface_target(cos[rows, labels], margin=margin)
"""
FORWARD_TAIL = """    loss, ce_cache = softmax_cross_entropy_forward(logits, labels=labels)
    return loss, (x_hat, x_cache, w_hat, w_cache, dtarget, scale, labels, ce_cache)
"""
BACKWARD = """def arcface_loss_backward(dloss, cache):
    x_hat, x_cache, w_hat, w_cache, dtarget, scale, labels, ce_cache = cache
    rows = np.arange(len(labels))
"""

MUTANTS = [
    Mutant("no clip before arccos", "arcface_target", TARGET + """
    theta = np.arccos(cos_theta)
    use = theta + margin <= np.pi
    return (np.where(use, np.cos(theta + margin), cos_theta - margin * np.sin(margin)),
            np.where(use, np.sin(theta + margin) / np.sin(theta), 1.0))
""", "clip the cosine"),
    Mutant("no fallback", "arcface_target", TARGET + """
    theta = np.arccos(np.clip(cos_theta, -1 + 1e-7, 1 - 1e-7))
    return np.cos(theta + margin), np.sin(theta + margin) / np.sin(theta)
""", "no fallback"),
    Mutant("margin on the cosine (CosFace)", "arcface_target", TARGET + """
    return cos_theta - margin, np.ones_like(cos_theta)
""", "that is CosFace"),
    Mutant("derivative without d theta / d cos", "arcface_target", TARGET + """
    theta = np.arccos(np.clip(cos_theta, -1 + 1e-7, 1 - 1e-7))
    use = theta + margin <= np.pi
    return (np.where(use, np.cos(theta + margin), cos_theta - margin * np.sin(margin)),
            np.where(use, -np.sin(theta + margin), 1.0))
""", "forgot d theta / d cos"),
    Mutant("CosFace fallback", "arcface_target", TARGET + """
    theta = np.arccos(np.clip(cos_theta, -1 + 1e-7, 1 - 1e-7))
    use = theta + margin <= np.pi
    return (np.where(use, np.cos(theta + margin), cos_theta - margin),
            np.where(use, np.sin(theta + margin) / np.sin(theta), 1.0))
""", "CosFace's"),
    Mutant("a broken arcface_target (no fallback) under a right forward", "arcface_loss_forward", TARGET + """
    theta = np.arccos(np.clip(cos_theta, -1 + 1e-7, 1 - 1e-7))
    return np.cos(theta + margin), np.sin(theta + margin) / np.sin(theta)
""" + FORWARD + """
    logits = scale * cos
    logits[rows, labels] = scale * target
""" + FORWARD_TAIL, "fix `arcface_target` first"),
    Mutant("margin on every class", "arcface_loss_forward", FORWARD + """
    logits = scale * arcface_target(cos, margin=margin)[0]
""" + FORWARD_TAIL, "every class"),
    Mutant("no scale", "arcface_loss_forward", FORWARD + """
    logits = cos.copy()
    logits[rows, labels] = target
""" + FORWARD_TAIL, "missing the scale"),
    Mutant("softmax over the batch axis", "arcface_loss_forward", FORWARD + """
    logits = scale * cos
    logits[rows, labels] = scale * target
    shifted = logits - logits.max(axis=0)
    logp = shifted - np.log(np.exp(shifted).sum(axis=0))
    return -logp[rows, labels].mean(), (x_hat, x_cache, w_hat, w_cache, dtarget, scale, labels, None)
""", "wrong axis"),
    Mutant("weights normalised per row", "arcface_loss_forward", """
def arcface_loss_forward(features, weights, *, labels, scale=64.0, margin=0.5):
    x_hat, x_cache = l2_normalize_forward(features, axis=1)
    w_hat, w_cache = l2_normalize_forward(weights, axis=1)
    cos = x_hat @ w_hat
    rows = np.arange(len(labels))
    target, dtarget = arcface_target(cos[rows, labels], margin=margin)
    logits = scale * cos
    logits[rows, labels] = scale * target
""" + FORWARD_TAIL, "normalised per row"),
    Mutant("features not normalised", "arcface_loss_forward", """
def arcface_loss_forward(features, weights, *, labels, scale=64.0, margin=0.5):
    w_hat, w_cache = l2_normalize_forward(weights, axis=0)
    cos = features @ w_hat
    rows = np.arange(len(labels))
    target, dtarget = arcface_target(cos[rows, labels], margin=margin)
    logits = scale * cos
    logits[rows, labels] = scale * target
    loss, ce_cache = softmax_cross_entropy_forward(logits, labels=labels)
    return loss, (features, None, w_hat, w_cache, dtarget, scale, labels, ce_cache)
""", "features are not L2-normalised"),
    Mutant("margin subtracted from the angle", "arcface_loss_forward", FORWARD + """
    theta = np.arccos(np.clip(cos[rows, labels], -1 + 1e-7, 1 - 1e-7))
    logits = scale * cos
    logits[rows, labels] = scale * np.cos(theta - margin)
""" + FORWARD_TAIL, "subtracted from the angle"),
    Mutant("summed over the batch", "arcface_loss_forward", FORWARD + """
    logits = scale * cos
    logits[rows, labels] = scale * target
    loss, ce_cache = softmax_cross_entropy_forward(logits, labels=labels)
    return loss * len(labels), (x_hat, x_cache, w_hat, w_cache, dtarget, scale, labels, ce_cache)
""", "summed over the batch"),
    Mutant("dtarget not applied", "arcface_loss_backward", BACKWARD + """
    dcos = scale * softmax_cross_entropy_backward(dloss, ce_cache)
    return l2_normalize_backward(dcos @ w_hat.T, x_cache), l2_normalize_backward(x_hat.T @ dcos, w_cache)
""", "margin's derivative is missing"),
    Mutant("scale forgotten in backward", "arcface_loss_backward", BACKWARD + """
    dcos = softmax_cross_entropy_backward(dloss, ce_cache)
    dcos[rows, labels] *= dtarget
    return l2_normalize_backward(dcos @ w_hat.T, x_cache), l2_normalize_backward(x_hat.T @ dcos, w_cache)
""", "missing the scale s in backward"),
    Mutant("normalisation not back-propagated", "arcface_loss_backward", BACKWARD + """
    dcos = scale * softmax_cross_entropy_backward(dloss, ce_cache)
    dcos[rows, labels] *= dtarget
    return dcos @ w_hat.T, x_hat.T @ dcos
""", "L2 normalisation"),
    Mutant("dloss ignored", "arcface_loss_backward", BACKWARD + """
    dcos = scale * softmax_cross_entropy_backward(1.0, ce_cache)
    dcos[rows, labels] *= dtarget
    return l2_normalize_backward(dcos @ w_hat.T, x_cache), l2_normalize_backward(x_hat.T @ dcos, w_cache)
""", "dloss"),
    Mutant("dweights transposed", "arcface_loss_backward", BACKWARD + """
    dcos = scale * softmax_cross_entropy_backward(dloss, ce_cache)
    dcos[rows, labels] *= dtarget
    return l2_normalize_backward(dcos @ w_hat.T, x_cache), l2_normalize_backward(x_hat.T @ dcos, w_cache).T
""", "transposed"),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the planted NaN of arccos(1 + 1e-12)
def test_mutants_flagged(solution):
    assert len(MUTANTS) >= 10
    assert_mutants_flagged(solution[0], MUTANTS)


def test_report_says_which_gradient_and_element(solution):
    planted = dict(solution[0])
    exec(next(m for m in MUTANTS if m.label == "dtarget not applied").source, planted)
    text = str(check(planted["arcface_loss_backward"], verbose=False))
    assert "dfeatures differs in" in text and "dweights differs in" in text and "worst at [" in text


def test_student_stubs_report_not_implemented():
    module = load_student_file(ASSIGNMENTS / "07_arcface.py")
    for name in NAMES:
        text = str(check(getattr(module, name), verbose=False))
        assert "not implemented yet (it raised NotImplementedError)" in text



def test_student_version_is_generated_from_the_solution():
    assert_student_version_generated(SOLUTION)
