"""Optimisers and learning-rate schedules: hand-computed steps, torch.optim in float64, bad input."""
import math

import numpy as np
import pytest

from scratchface.nn.module import Parameter
from scratchface.nn.optim import SGD, AdaGrad, Adam
from scratchface.nn.schedules import CosineSchedule, StepSchedule


def _param(values, grad):
    p = Parameter(np.array(values, dtype=np.float64))
    p.grad[...] = grad
    return p


# ----------------------------------------------------------------- hand-computed steps
def test_sgd_plain_step_by_hand():
    p = _param([1.0, -2.0], [0.5, 1.0])
    SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [0.95, -2.1], rtol=0, atol=1e-15)


def test_sgd_momentum_two_steps_by_hand():
    p = _param([1.0, -2.0], [0.5, 1.0])
    opt = SGD([p], lr=0.1, momentum=0.9)
    opt.step()                       # v = g = [0.5, 1];       p = [0.95, -2.1]
    opt.step()                       # v = 0.9 v + g = [0.95, 1.9]; p -= 0.1 v
    np.testing.assert_allclose(p.data, [0.855, -2.29], rtol=0, atol=1e-14)


def test_sgd_nesterov_first_step_by_hand():
    p = _param([1.0, -2.0], [0.5, 1.0])
    SGD([p], lr=0.1, momentum=0.9, nesterov=True).step()   # d = g + 0.9 g = 1.9 g
    np.testing.assert_allclose(p.data, [1 - 0.095, -2 - 0.19], rtol=0, atol=1e-15)


def test_sgd_weight_decay_by_hand():
    p = _param([1.0, -2.0], [0.5, 1.0])
    SGD([p], lr=0.1, weight_decay=0.01).step()              # g + 0.01 p = [0.51, 0.98]
    np.testing.assert_allclose(p.data, [1 - 0.051, -2 - 0.098], rtol=0, atol=1e-15)


def test_adam_two_steps_by_hand():
    p = _param([1.0, -2.0], [0.5, 1.0])
    opt = Adam([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    opt.step()
    # step 1: m_hat = g, v_hat = g^2 -> p -= 0.1 * g / (|g| + eps)
    expected = np.array([1 - 0.1 * 0.5 / (0.5 + 1e-8), -2 - 0.1 * 1.0 / (1.0 + 1e-8)])
    np.testing.assert_allclose(p.data, expected, rtol=0, atol=1e-15)
    p.grad[...] = [-1.0, 1.0]
    opt.step()
    # step 2: m = 0.9*0.1*g1 + 0.1*g2, v = 0.999*0.001*g1^2 + 0.001*g2^2
    m = np.array([0.09 * 0.5 - 0.1, 0.09 + 0.1])
    v = np.array([0.000999 * 0.25 + 0.001, 0.000999 + 0.001])
    m_hat, v_hat = m / (1 - 0.81), v / (1 - 0.999 ** 2)
    expected = expected - 0.1 * m_hat / (np.sqrt(v_hat) + 1e-8)
    np.testing.assert_allclose(p.data, expected, rtol=0, atol=1e-14)


def test_adagrad_two_steps_by_hand():
    p = _param([1.0, -2.0], [0.5, 1.0])
    opt = AdaGrad([p], lr=0.1, eps=1e-10)
    opt.step()                                  # s = g^2 -> p -= 0.1 sign(g)
    p.grad[...] = [1.5, -1.0]
    opt.step()                                  # s = [0.25 + 2.25, 1 + 1] = [2.5, 2]
    expected = [1 - 0.1 - 0.1 * 1.5 / math.sqrt(2.5), -2 - 0.1 + 0.1 * 1.0 / math.sqrt(2.0)]
    np.testing.assert_allclose(p.data, expected, rtol=0, atol=1e-9)


def test_optimisers_keep_float32_and_update_in_place():
    data = np.ones(3, dtype=np.float32)
    p = Parameter(data)
    p.grad[...] = 1
    for opt in (SGD([p], lr=0.1, momentum=0.5), Adam([p]), AdaGrad([p])):
        opt.step()
    assert p.data is data and p.data.dtype == np.float32
    assert np.all(p.data < 1)


# ----------------------------------------------------------------- torch.optim, float64
@pytest.mark.parametrize("name,kwargs", [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-3)),
    ("AdaGrad", dict(lr=0.1, initial_accumulator_value=0.1, weight_decay=1e-2)),
])
def test_optimisers_match_torch(torch, rng, name, kwargs):
    shapes = [(3, 4), (5,)]
    init = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(6)]
    ours = [Parameter(v.copy()) for v in init]
    theirs = [torch.tensor(v.copy(), requires_grad=True) for v in init]
    opt = {"SGD": SGD, "Adam": Adam, "AdaGrad": AdaGrad}[name](ours, **kwargs)
    torch_cls = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam, "AdaGrad": torch.optim.Adagrad}[name]
    topt = torch_cls(theirs, **kwargs)
    for step_grads in grads:
        for p, t, g in zip(ours, theirs, step_grads):
            p.grad[...] = g
            t.grad = torch.tensor(g)
        opt.step()
        topt.step()
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12, atol=1e-13)


# ----------------------------------------------------------------- schedules
def test_step_schedule_by_hand():
    opt = SGD([_param([1.0], [0.0])], lr=0.8)
    sched = StepSchedule(opt, step_size=2, gamma=0.5)
    lrs = [opt.lr] + [sched.step() for _ in range(5)]
    assert lrs == pytest.approx([0.8, 0.8, 0.4, 0.4, 0.2, 0.2], abs=1e-15)


def test_cosine_schedule_by_hand_with_warmup():
    opt = SGD([_param([1.0], [0.0])], lr=1.0)
    sched = CosineSchedule(opt, total_steps=4, min_lr=0.0, warmup_steps=3)
    lrs = [opt.lr] + [sched.step() for _ in range(9)]
    # warm-up 1/4, 2/4, 3/4; then 0.5 (1 + cos(pi s / 4)) for s = 0..4; then stays at min_lr
    c = math.cos(math.pi / 4)
    expected = [0.25, 0.5, 0.75, 1.0, 0.5 * (1 + c), 0.5, 0.5 * (1 - c), 0.0, 0.0, 0.0]
    assert lrs == pytest.approx(expected, abs=1e-15)


def test_schedules_match_torch(torch):
    p = torch.zeros(1, requires_grad=True)
    for make_ours, make_theirs, n in [
        (lambda o: StepSchedule(o, step_size=3, gamma=0.3),
         lambda t: torch.optim.lr_scheduler.StepLR(t, step_size=3, gamma=0.3), 10),
        (lambda o: CosineSchedule(o, total_steps=10, min_lr=0.01),
         lambda t: torch.optim.lr_scheduler.CosineAnnealingLR(t, T_max=10, eta_min=0.01), 10),
    ]:
        opt = SGD([_param([0.0], [0.0])], lr=0.5)
        topt = torch.optim.SGD([p], lr=0.5)
        ours, theirs = make_ours(opt), make_theirs(topt)
        for _ in range(n):
            topt.step()
            ours.step()
            theirs.step()
            assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12, abs=1e-15)


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize("lr", [0.0, -0.1, float("nan")])
def test_optimiser_rejects_nonpositive_lr(lr):
    with pytest.raises(ValueError, match="lr must be a finite positive number"):
        SGD([_param([1.0], [0.0])], lr=lr)


def test_optimiser_bad_arguments():
    p = _param([1.0], [0.0])
    with pytest.raises(ValueError, match="params is empty"):
        Adam([], lr=0.1)
    with pytest.raises(TypeError, match=r"params\[0\] must be a Parameter"):
        SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(ValueError, match="momentum must be in"):
        SGD([p], lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="weight_decay must be a finite non-negative"):
        SGD([p], lr=0.1, weight_decay=-1)
    with pytest.raises(TypeError, match="betas must be a pair"):
        Adam([p], betas=0.9)
    with pytest.raises(ValueError, match=r"betas\[1\] must be in"):
        Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="eps must be a finite positive"):
        AdaGrad([p], eps=0)


def test_schedule_bad_arguments():
    opt = SGD([_param([1.0], [0.0])], lr=0.1)
    with pytest.raises(TypeError, match="optimizer must be a scratchface.nn Optimizer"):
        StepSchedule(object(), step_size=2)
    with pytest.raises(ValueError, match="step_size must be a positive integer"):
        StepSchedule(opt, step_size=0)
    with pytest.raises(ValueError, match="gamma must be in"):
        StepSchedule(opt, step_size=1, gamma=0.0)
    with pytest.raises(ValueError, match="min_lr .* must not exceed"):
        CosineSchedule(opt, total_steps=3, min_lr=1.0)
    with pytest.raises(ValueError, match="warmup_steps must be a non-negative integer"):
        CosineSchedule(opt, total_steps=3, warmup_steps=-1)
