"""Triplet loss: hand-worked values, finite differences, torch autograd, bad input."""
import numpy as np
import pytest

from scratchface.gradcheck import check_layer, rel_error
from scratchface.losses.triplet import (gradcheck_cases, mined_triplet_loss_backward,
                                        mined_triplet_loss_forward, triplet_loss, triplet_loss_backward,
                                        triplet_loss_forward)


def test_hand_worked_values():
    # unit vectors: d(a,p) = 0.36 + 0.64... worked out below by hand
    a = np.array([[1.0, 0.0], [1.0, 0.0]])
    p = np.array([[0.6, 0.8], [0.6, 0.8]])     # |a-p|^2 = 0.16 + 0.64 = 0.8
    n = np.array([[0.0, 1.0], [0.8, 0.6]])     # |a-n|^2 = 2.0 ; 0.04 + 0.36 = 0.4
    # hinge: [0.8 - 2.0 + 0.2]_+ = 0 ; [0.8 - 0.4 + 0.2]_+ = 0.6
    assert triplet_loss(a, p, n) == pytest.approx(0.3, abs=1e-15)
    assert triplet_loss(a, p, n, reduction="sum") == pytest.approx(0.6, abs=1e-15)
    assert triplet_loss(a, p, n, reduction="mean_active") == pytest.approx(0.6, abs=1e-15)
    # normalisation: scaled inputs give the same loss; without it they do not
    assert triplet_loss(3 * a, 0.5 * p, 7 * n) == pytest.approx(0.3, abs=1e-14)
    assert triplet_loss(3 * a, 0.5 * p, 7 * n, normalize=False) != pytest.approx(0.3)
    assert triplet_loss(a, p, n, alpha=1.5, reduction="sum") == pytest.approx(0.3 + 1.9, abs=1e-14)


def test_all_satisfied_gives_zero_loss_and_gradient():
    a = np.array([[1.0, 0.0, 0.0]])
    loss, cache = triplet_loss_forward(a, a * 2, np.array([[-1.0, 0.0, 0.0]]), reduction="mean_active")
    assert float(loss) == 0.0
    assert all(np.all(g == 0) for g in triplet_loss_backward(1.0, cache))


@pytest.mark.parametrize("case", gradcheck_cases(np.random.default_rng(3)), ids=lambda c: c.name)
def test_gradcheck_cases(case):
    assert case.run().passed


@pytest.mark.parametrize("shape", [(1, 2), (7, 3), (5, 16)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "mean_active"])
def test_gradcheck_shapes(shape, reduction, rng):
    # alpha > 4: every triplet active (inactive ones have exact zero gradients, see gradcheck_cases)
    a, p, n = (rng.standard_normal(shape) for _ in range(3))
    res = check_layer(triplet_loss_forward, triplet_loss_backward, {"a": a, "p": p, "n": n},
                      {"alpha": 4.5, "reduction": reduction})
    assert res.passed, res.errors


def test_float32_keeps_dtype(rng):
    a, p, n = (rng.standard_normal((6, 8)).astype(np.float32) for _ in range(3))
    loss, cache = triplet_loss_forward(a, p, n, alpha=1.0)
    grads = triplet_loss_backward(np.float32(1.0), cache)
    assert all(g.dtype == np.float32 for g in grads)
    loss64 = triplet_loss(*(x.astype(np.float64) for x in (a, p, n)), alpha=1.0)
    assert abs(float(loss) - loss64) < 1e-5


def test_torch_cross_check(torch, rng):
    F = torch.nn.functional
    a, p, n = (rng.standard_normal((9, 6)) for _ in range(3))
    loss, cache = triplet_loss_forward(a, p, n, alpha=0.8)
    grads = triplet_loss_backward(1.0, cache)
    ta, tp, tn = (torch.tensor(x, requires_grad=True) for x in (a, p, n))
    na, np_, nn = (F.normalize(t, dim=1, eps=1e-10) for t in (ta, tp, tn))
    tl = torch.relu(((na - np_) ** 2).sum(1) - ((na - nn) ** 2).sum(1) + 0.8).mean()
    tl.backward()
    assert abs(float(loss) - tl.item()) < 1e-10
    for g, t in zip(grads, (ta, tp, tn)):
        assert np.allclose(g, t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_mined_loss_torch_cross_check(torch, rng):
    F = torch.nn.functional
    e = rng.standard_normal((7, 4))
    trip = (np.array([0, 0, 1, 4, 4]), np.array([1, 2, 0, 5, 5]), np.array([3, 6, 6, 0, 2]))
    loss, cache = mined_triplet_loss_forward(e, triplets=trip, alpha=1.0, reduction="sum")
    de = mined_triplet_loss_backward(1.0, cache)
    te = torch.tensor(e, requires_grad=True)
    ne = F.normalize(te, dim=1, eps=1e-10)
    a, p, n = (ne[torch.tensor(t)] for t in trip)
    tl = torch.relu(((a - p) ** 2).sum(1) - ((a - n) ** 2).sum(1) + 1.0).sum()
    tl.backward()
    assert abs(float(loss) - tl.item()) < 1e-10
    assert rel_error(de, te.grad.numpy()) < 1e-10


def test_mined_loss_empty_triplets(rng):
    e = rng.standard_normal((4, 3))
    empty = tuple(np.zeros(0, dtype=np.int64) for _ in range(3))
    loss, cache = mined_triplet_loss_forward(e, triplets=empty)
    assert float(loss) == 0.0
    assert np.array_equal(mined_triplet_loss_backward(1.0, cache), np.zeros_like(e))


def test_bad_input(rng):
    x = rng.standard_normal((3, 4))
    with pytest.raises(ValueError, match="negative must have the shape of anchor"):
        triplet_loss(x, x, x[:2])
    with pytest.raises(ValueError, match="alpha must be a finite positive number"):
        triplet_loss(x, x, x, alpha=0)
    with pytest.raises(ValueError, match="reduction must be one of"):
        triplet_loss(x, x, x, reduction="max")
    with pytest.raises(TypeError, match="anchor must have a floating point dtype"):
        triplet_loss(np.ones((3, 4), dtype=int), x, x)
    with pytest.raises(ValueError, match=r"triplets\[2\] \(negatives\) must index rows"):
        mined_triplet_loss_forward(x, triplets=([0], [1], [3]))
    with pytest.raises(TypeError, match="triplets must be a tuple"):
        mined_triplet_loss_forward(x, triplets=[0, 1, 2, 3])
    with pytest.raises(TypeError, match="1-D integer index array"):
        mined_triplet_loss_forward(x, triplets=([0.0], [1], [2]))
    with pytest.raises(ValueError, match="one length"):
        mined_triplet_loss_forward(x, triplets=([0, 1], [1], [2]))
