"""Gradient check of a whole module: ``backward`` against finite differences, for the input and every parameter.

The same check as :func:`scratchface.gradcheck.check_layer`, one level up: with
a fixed random ``dout`` and the scalar :math:`L = \\sum \\mathrm{forward}(x) \\odot \\mathrm{dout}`,
``module.backward(dout)`` must return :math:`\\partial L / \\partial x` and leave
:math:`\\partial L / \\partial \\theta` in every ``param.grad``. Each is compared
with finite differences by :func:`scratchface.gradcheck.compare_gradients`, the
one engine of every gradient check (4th-order central differences, float64).
This is what proves that a container (``Sequential``, ``Concat``, ``Residual``,
an inception block) routes and sums its gradients right.
"""
from __future__ import annotations

import numpy as np

from ..gradcheck import GradcheckResult, compare_gradients
from .module import Module

__all__ = ["check_module"]


def check_module(module, x, *, seed: int = 0, h: float = 1e-4, check_params=True, name: str = "") -> GradcheckResult:
    """Compare ``module.backward`` with finite differences w.r.t. ``x`` and every parameter.

    Parameters
    ----------
    module : Module
        With float64 parameters (``module.astype(np.float64)``) and a
        deterministic forward (``eval()`` mode when it holds dropout).
    x : float64 array
        The input batch; draw it away from kinks (ReLU at 0, ties in max pools).
    seed : int
        Seed of the random ``dout``.
    h : float
        Finite-difference step.
    check_params : bool
        Also check every parameter (default), not only ``x``.

    Returns
    -------
    GradcheckResult
        ``errors`` maps ``'x'`` and every parameter path (``'0.weight'``...) to the
        largest relative error; ``passed`` is ``max_error < 1e-7``.

    Notes
    -----
    The parameters' gradients are zeroed first and left holding the analytic
    gradient; each finite difference perturbs one scalar in place and restores it.
    """
    if not isinstance(module, Module):
        raise TypeError(f"module must be a scratchface.nn Module, got {type(module).__name__}")
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise TypeError("check_module needs a float64 numpy array x (finite differences in float32 are too coarse)")
    for pname, p in module.named_parameters():
        if p.data.dtype != np.float64:
            raise TypeError(f"parameter {pname!r} is {p.data.dtype}: call module.astype(np.float64) first")
    x = np.ascontiguousarray(x)
    out = module.forward(x)
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    module.zero_grad()
    dx = module.backward(dout)
    inputs = {"x": x}
    analytic = {"x": None if dx is None else np.array(dx, copy=True)}
    if check_params:
        for pname, p in module.named_parameters():
            inputs[pname] = p.data
            analytic[pname] = None if p.grad is None else p.grad.copy()

    def loss():
        return float(np.sum(module.forward(x) * dout))

    return compare_gradients(loss, inputs, analytic, h=h, name=name or type(module).__name__, shape=x.shape)
