"""DeepFace weighted chi-square and Siamese weighted L1: hand values, gradients, torch, SVM weights."""
import numpy as np
import pytest

from scratchface.gradcheck import check_layer
from scratchface.losses.chi_square import (
    chi_square_vectors,
    gradcheck_cases,
    weighted_chi_square,
    weighted_chi_square_backward,
    weighted_chi_square_forward,
    weighted_l1,
    weighted_l1_backward,
    weighted_l1_forward,
)
from scratchface.recognition.chi_square_verifier import fit_chi_square_weights


def test_hand_worked_values():
    f1 = np.array([[1.0, 0.0, 2.0, 0.0]])
    f2 = np.array([[3.0, 1.0, 2.0, 0.0]])
    # terms: 4/4 = 1 ; 1/1 = 1 ; 0/4 = 0 ; 0/0 -> 0
    assert chi_square_vectors(f1, f2).tolist() == [[1.0, 1.0, 0.0, 0.0]]
    w = np.array([0.5, 2.0, 7.0, 9.0])
    assert weighted_chi_square(f1, f2, w).tolist() == [2.5]
    assert weighted_l1(f1, f2, w).tolist() == [0.5 * 2 + 2.0 * 1]
    # a histogram identity: chi2 with unit weights of (p, q) is symmetric
    rng = np.random.default_rng(0)
    p, q = rng.uniform(0, 1, (5, 6)), rng.uniform(0, 1, (5, 6))
    assert np.allclose(weighted_chi_square(p, q, np.ones(6)), weighted_chi_square(q, p, np.ones(6)), atol=1e-15)


@pytest.mark.parametrize("case", gradcheck_cases(np.random.default_rng(4)), ids=lambda c: c.name)
def test_gradcheck_cases(case):
    assert case.run().passed


def test_gradcheck_odd_shape(rng):
    f1, f2 = rng.uniform(0.1, 2, (3, 7)), rng.uniform(0.1, 2, (3, 7))
    w = rng.standard_normal(7)
    assert check_layer(weighted_chi_square_forward, weighted_chi_square_backward,
                       {"f1": f1, "f2": f2, "w": w}).passed


def test_zero_features_give_finite_zero_gradient():
    z = np.zeros((2, 3))
    chi2, cache = weighted_chi_square_forward(z, z.copy(), np.ones(3))
    grads = weighted_chi_square_backward(np.ones(2), cache)
    assert np.all(chi2 == 0) and all(np.all(np.isfinite(g)) for g in grads)


def test_torch_cross_check(torch, rng):
    f1, f2 = rng.uniform(0.05, 1, (6, 5)), rng.uniform(0.05, 1, (6, 5))
    w = rng.standard_normal(5)
    dout = rng.standard_normal(6)
    for fwd, bwd, expr in [
        (weighted_chi_square_forward, weighted_chi_square_backward, lambda a, b, c: ((a - b) ** 2 / (a + b)) @ c),
        (weighted_l1_forward, weighted_l1_backward, lambda a, b, c: (a - b).abs() @ c),
    ]:
        out, cache = fwd(f1, f2, w)
        grads = bwd(dout, cache)
        ts = [torch.tensor(v, requires_grad=True) for v in (f1, f2, w)]
        tout = expr(*ts)
        (tout * torch.tensor(dout)).sum().backward()
        assert np.allclose(out, tout.detach().numpy(), rtol=1e-12)
        for g, t in zip(grads, ts):
            assert np.allclose(g, t.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_bad_input(rng):
    f = rng.uniform(0, 1, (3, 4))
    with pytest.raises(ValueError, match="f2 must be non-negative"):
        chi_square_vectors(f, -f)
    with pytest.raises(ValueError, match="weights must have one weight per feature \\(4\\)"):
        weighted_chi_square(f, f, np.ones(3))
    with pytest.raises(ValueError, match="f2 must have the shape of f1"):
        weighted_l1(f, f[:, :3], np.ones(4))
    with pytest.raises(ValueError, match="weights must be a 1-D array"):
        weighted_l1(f, f, np.ones((4, 1)))


def _pairs(rng, n_pairs=400, dim=12, informative=(0, 3, 5, 7, 10)):
    """Non-negative features: same pairs agree on the informative dimensions, different pairs do not."""
    f1 = rng.uniform(0, 1, (n_pairs, dim))
    f2 = rng.uniform(0, 1, (n_pairs, dim))          # uninformative: independent for every pair
    same = np.arange(n_pairs) % 2 == 0
    idx = np.array(informative)
    f2[np.ix_(same, idx)] = np.clip(f1[np.ix_(same, idx)] + rng.normal(0, 0.03, (same.sum(), len(idx))), 0, None)
    return f1, f2, same


def test_fit_weights_with_linear_svm(rng):
    pytest.importorskip("scratchface.detection.svm", reason="the LinearSVM (detection/svm.py) is not there yet")
    f1, f2, same = _pairs(rng)
    verifier = fit_chi_square_weights(f1, f2, same, C=10.0)
    w = verifier.weights
    assert w.shape == (12,)
    informative = w[[0, 3, 5, 7, 10]]
    others = np.delete(w, [0, 3, 5, 7, 10])
    assert informative.min() > np.abs(others).max()        # the SVM found the informative features
    g1, g2, gs = _pairs(np.random.default_rng(99))          # held-out pairs
    accuracy = np.mean(verifier.predict_same(g1, g2) == gs)
    # the unweighted chi-square with its best threshold (chosen on the test pairs themselves)
    unweighted = weighted_chi_square(g1, g2, np.ones(12))
    best_unweighted = max(np.mean((unweighted <= t) == gs) for t in unweighted)
    assert accuracy > 0.95 and accuracy > best_unweighted + 0.1   # measured: 0.985 vs 0.805
    with pytest.raises(ValueError, match="both same \\(True\\) and different"):
        fit_chi_square_weights(f1, f2, np.ones(len(f1), bool))
