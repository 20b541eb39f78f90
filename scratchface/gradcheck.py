"""Gradient checking: hand-written backward passes against central finite differences.

Every backward pass in scratchface is checked the same way. For a layer
``out, cache = forward(*inputs, **kwargs)`` take a fixed random ``dout`` and the
scalar

.. math:: L(x) = \\sum_k \\mathrm{out}_k(x)\\, \\mathrm{dout}_k ,

whose gradient with respect to every input is exactly what ``backward(dout,
cache)`` must return (the chain rule, one step). The numerical gradient is the
fourth-order central difference

.. math:: \\frac{\\partial L}{\\partial x_i} \\approx
   \\frac{-L(x + 2h e_i) + 8 L(x + h e_i) - 8 L(x - h e_i) + L(x - 2h e_i)}{12 h},

in float64, whose truncation error is :math:`O(h^4)` (the plain two-point
formula has :math:`O(h^2)`), so that ``h = 1e-4`` keeps both truncation and
rounding error near 1e-12 and a relative error below 1e-7 is a meaningful pass
for smooth functions. Inputs must be drawn at least ``2h`` away from kinks
(ReLU at 0, ties in a max).

The relative error of two arrays is the largest elementwise

.. math:: \\frac{|a - b|}{\\max(|a| + |b|, \\text{tiny})}.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["rel_error", "numerical_gradient", "check_layer", "check_function",
           "GradcheckCase", "GradcheckResult", "PASS_THRESHOLD"]

PASS_THRESHOLD = 1e-7
_TINY = np.finfo(np.float64).tiny


def rel_error(a, b) -> float:
    """Largest elementwise relative error ``|a-b| / max(|a|+|b|, tiny)``; 0.0 for empty arrays."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error needs arrays of one shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), _TINY)))


def numerical_gradient(f, x, h: float = 1e-4):
    """Fourth-order central-difference gradient of the scalar ``f()`` with respect to ``x``.

    ``x`` (a float64 array) is perturbed in place, one element at a time, and
    restored; ``f`` takes no arguments and reads ``x`` itself.

    Returns
    -------
    grad : ndarray, shape of ``x``
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise TypeError("numerical_gradient needs a float64 numpy array for x "
                        "(finite differences in float32 are too coarse)")
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)  # views: x must be contiguous
    if not np.shares_memory(flat, x):
        raise ValueError("numerical_gradient needs a contiguous x")
    for i in range(flat.size):
        old = flat[i]
        values = []
        for step in (2 * h, h, -h, -2 * h):
            flat[i] = old + step
            values.append(float(f()))
        flat[i] = old
        # grouped as differences so that a locally constant f gives exactly 0 (a dropped
        # unit, a pixel that is not the max), not the rounding residue of -v + 8v - 8v + v
        gflat[i] = ((values[3] - values[0]) + 8 * (values[1] - values[2])) / (12 * h)
    return grad


@dataclass
class GradcheckResult:
    """Largest relative error per checked input, with the shape it was checked on."""
    name: str
    shape: tuple
    errors: dict = field(default_factory=dict)

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    @property
    def passed(self) -> bool:
        return self.max_error < PASS_THRESHOLD


def _as_tuple(grads):
    return grads if isinstance(grads, tuple) else (grads,)


def check_layer(forward, backward, inputs: dict, kwargs=None, *, seed: int = 0,
                h: float = 1e-4, name: str = "", check=None) -> GradcheckResult:
    """Check ``backward`` against finite differences of ``forward`` for every input.

    Parameters
    ----------
    forward : callable
        ``forward(*inputs.values(), **kwargs) -> (out, cache)``.
    backward : callable
        ``backward(dout, cache) -> grads``: one gradient per input, in the order
        of ``inputs`` (a tuple, or a bare array when there is one input; a
        ``None`` gradient, e.g. for an absent bias, is skipped).
    inputs : dict of str to float64 array
        The differentiable arguments, by name (``{'x': x, 'w': w, 'b': b}``).
    kwargs : dict, optional
        Hyper-parameters, passed by keyword.
    seed : int
        Seed of the random ``dout``.
    check : iterable of str, optional
        Only these inputs (default: all).

    Returns
    -------
    GradcheckResult
    """
    kwargs = dict(kwargs or {})
    arrays = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in inputs.items()}
    out, cache = forward(*arrays.values(), **kwargs)
    out = np.asarray(out)
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    grads = _as_tuple(backward(dout if out.ndim else float(dout), cache))
    if len(grads) != len(arrays):
        raise ValueError(f"backward returned {len(grads)} gradients for {len(arrays)} inputs")

    def loss():
        o, _ = forward(*arrays.values(), **kwargs)
        return float(np.sum(np.asarray(o) * dout))

    first = next(iter(arrays.values()))
    result = GradcheckResult(name=name, shape=tuple(first.shape))
    for (key, x), g in zip(arrays.items(), grads):
        if g is None or (check is not None and key not in check):
            continue
        result.errors[key] = rel_error(g, numerical_gradient(loss, x, h))
    return result


def check_function(f, grad, x, *, h: float = 1e-4, name: str = "") -> GradcheckResult:
    """Check ``grad(x)`` against finite differences of the scalar ``f(x)`` (float64)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    analytic = grad(x)
    numeric = numerical_gradient(lambda: f(x), x, h)
    return GradcheckResult(name=name, shape=tuple(x.shape), errors={"x": rel_error(analytic, numeric)})


@dataclass
class GradcheckCase:
    """One layer gradcheck the ``scratchface gradcheck`` command and the tests share.

    Each ``scratchface/layers/<topic>.py`` exposes ``gradcheck_cases(rng)``
    returning a list of these.
    """
    name: str
    forward: object
    backward: object
    inputs: dict
    kwargs: dict = field(default_factory=dict)

    def run(self, seed: int = 0) -> GradcheckResult:
        return check_layer(self.forward, self.backward, self.inputs, self.kwargs,
                           seed=seed, name=self.name)
