"""Learning-rate schedules: step decay and cosine annealing, each with optional linear warm-up.

A schedule is a pure function of the step number, ``lr_at(step)``, so it can be
plotted and tested on its own; ``schedule.step()`` advances the count and writes
the new rate into the optimiser's ``lr``. Call ``step()`` once per epoch or once
per batch: the unit is yours (``step_size`` and ``total_steps`` count the same
unit). Step 0 is the rate before the first call.
"""
from __future__ import annotations

import math

from .._validation import check_in_range, check_nonnegative_int, check_positive_float, check_positive_int
from .optim import Optimizer

__all__ = ["Schedule", "StepSchedule", "CosineSchedule"]


class Schedule:
    """Base class: ``lr_at(step)``, and ``step()`` that applies it to the optimiser.

    Parameters
    ----------
    optimizer : Optimizer
        Its ``lr`` at construction is the base rate :math:`\\eta_0`.
    warmup_steps : int
        Linear warm-up: :math:`\\eta_s = \\eta_0 (s + 1) / (W + 1)` for
        :math:`s < W`, then the schedule proper, shifted by :math:`W` steps.
    """

    def __init__(self, optimizer, warmup_steps=0):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a scratchface.nn Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.warmup_steps = check_nonnegative_int(warmup_steps, "warmup_steps")
        self.last_step = 0
        optimizer.lr = self.lr_at(0)

    def lr_at(self, step: int) -> float:
        step = check_nonnegative_int(step, "step")
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / (self.warmup_steps + 1)
        return self._after_warmup(step - self.warmup_steps)

    def _after_warmup(self, step: int) -> float:
        raise NotImplementedError

    def step(self) -> float:
        """Advance one step; set and return the optimiser's new ``lr``."""
        self.last_step += 1
        self.optimizer.lr = self.lr_at(self.last_step)
        return self.optimizer.lr


class StepSchedule(Schedule):
    """Multiply the rate by ``gamma`` every ``step_size`` steps.

    Notes
    -----
    .. math:: \\eta_s = \\eta_0\\, \\gamma^{\\lfloor s / \\text{step\\_size} \\rfloor}

    (``torch.optim.lr_scheduler.StepLR``).
    """

    def __init__(self, optimizer, step_size, gamma=0.1, warmup_steps=0):
        self.step_size = check_positive_int(step_size, "step_size")
        self.gamma = check_in_range(gamma, "gamma", 0.0, 1.0, inclusive=(False, True))
        super().__init__(optimizer, warmup_steps)

    def _after_warmup(self, step):
        return self.base_lr * self.gamma ** (step // self.step_size)


class CosineSchedule(Schedule):
    """Cosine annealing from the base rate to ``min_lr`` over ``total_steps``, then ``min_lr``.

    Notes
    -----
    .. math:: \\eta_s = \\eta_{\\min} + \\tfrac12 (\\eta_0 - \\eta_{\\min})
              \\left(1 + \\cos\\frac{\\pi\\, \\min(s, T)}{T}\\right)

    with :math:`T` = ``total_steps`` (counted after the warm-up).

    References
    ----------
    Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
    ICLR 2017, eq. 5 (one cycle, no restart; ``torch.optim.lr_scheduler.CosineAnnealingLR``).
    """

    def __init__(self, optimizer, total_steps, min_lr=0.0, warmup_steps=0):
        self.total_steps = check_positive_int(total_steps, "total_steps")
        self.min_lr = check_positive_float(min_lr, "min_lr", allow_zero=True)
        if isinstance(optimizer, Optimizer) and self.min_lr > optimizer.lr:
            raise ValueError(f"min_lr ({min_lr}) must not exceed the optimizer's lr ({optimizer.lr})")
        super().__init__(optimizer, warmup_steps)

    def _after_warmup(self, step):
        s = min(step, self.total_steps)
        return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * s / self.total_steps))
