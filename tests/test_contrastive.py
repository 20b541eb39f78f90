"""Contrastive loss: hand values, finite differences, torch autograd, bad input."""
import numpy as np
import pytest

from scratchface.gradcheck import check_layer
from scratchface.losses.contrastive import (contrastive_loss, contrastive_loss_backward,
                                            contrastive_loss_forward, gradcheck_cases)


def test_hand_worked_values():
    f1 = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    f2 = np.array([[3.0, 4.0], [0.3, 0.4], [3.0, 4.0]])   # distances 5, 0.5, 5
    same = np.array([True, False, False])
    # same: 0.5 * 25 ; different inside the margin 1: 0.5 * (1 - 0.5)^2 ; beyond: 0
    assert contrastive_loss(f1, f2, same=same, reduction="sum") == pytest.approx(12.5 + 0.125, abs=1e-14)
    assert contrastive_loss(f1, f2, same=same) == pytest.approx((12.5 + 0.125) / 3, abs=1e-14)
    assert contrastive_loss(f1, f2, same=np.array([1, 0, 0]), margin=6.0, reduction="sum") == \
        pytest.approx(12.5 + 0.5 * 5.5**2 + 0.5, abs=1e-13)


@pytest.mark.parametrize("case", gradcheck_cases(np.random.default_rng(5)), ids=lambda c: c.name)
def test_gradcheck_cases(case):
    assert case.run().passed


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradcheck_shapes(reduction, rng):
    f1, f2 = rng.standard_normal((7, 4)), rng.standard_normal((7, 4))
    same = rng.integers(0, 2, 7).astype(bool)
    res = check_layer(contrastive_loss_forward, contrastive_loss_backward, {"f1": f1, "f2": f2},
                      {"same": same, "margin": 20.0, "reduction": reduction})
    assert res.passed, res.errors


def test_zero_distance_different_pair_is_finite():
    f = np.ones((2, 3))
    loss, cache = contrastive_loss_forward(f, f.copy(), same=np.array([False, True]))
    df1, df2 = contrastive_loss_backward(1.0, cache)
    assert float(loss) == pytest.approx(0.25)
    assert np.all(np.isfinite(df1)) and np.all(df1 == 0) and np.all(df2 == 0)


def test_torch_cross_check(torch, rng):
    f1, f2 = rng.standard_normal((9, 5)), rng.standard_normal((9, 5))
    same = rng.integers(0, 2, 9).astype(bool)
    loss, cache = contrastive_loss_forward(f1, f2, same=same, margin=3.0)
    df1, df2 = contrastive_loss_backward(1.0, cache)
    t1, t2 = torch.tensor(f1, requires_grad=True), torch.tensor(f2, requires_grad=True)
    d = (t1 - t2).norm(dim=1)
    tl = torch.where(torch.tensor(same), 0.5 * d**2, 0.5 * torch.relu(3.0 - d) ** 2).mean()
    tl.backward()
    assert abs(float(loss) - tl.item()) < 1e-12
    assert np.allclose(df1, t1.grad.numpy(), rtol=1e-10, atol=1e-13)
    assert np.allclose(df2, t2.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_bad_input(rng):
    x = rng.standard_normal((3, 2))
    with pytest.raises(ValueError, match="f2 must have the shape of f1"):
        contrastive_loss(x, x[:2], same=np.ones(3, bool))
    with pytest.raises(ValueError, match="same must have one entry per pair \\(3\\)"):
        contrastive_loss(x, x, same=np.ones(2, bool))
    with pytest.raises(ValueError, match="same must hold 0 / 1"):
        contrastive_loss(x, x, same=np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="same must have a boolean"):
        contrastive_loss(x, x, same=np.ones(3))
    with pytest.raises(TypeError, match="same must be a 1-D boolean"):
        contrastive_loss(x, x, same=[True, False, True])
    with pytest.raises(ValueError, match="margin must be a finite positive number"):
        contrastive_loss(x, x, same=np.ones(3, bool), margin=0.0)
