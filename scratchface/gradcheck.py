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

.. math:: \\frac{\\max(|a - b| - \\text{atol}, 0)}{\\max(|a| + |b|, \\text{tiny})}

(``atol = 0`` unless asked: the tests use 1e-10 so that an exactly-zero
gradient is not failed by 1e-13 of rounding in the differences).

One engine, :func:`compare_gradients`, does the finite differences for every
check: :func:`check_layer` (a ``forward`` / ``backward`` pair),
:func:`scratchface.nn.gradcheck.check_module` (a whole module and its
parameters) and the tests' ``assert_gradients``. A backward that returns
``None`` for an input that was given (a forgotten ``db``) fails, with a
message saying so. :func:`collect_gradcheck_cases` finds every
``gradcheck_cases(rng)`` of the modules of ``scratchface.layers`` and
``scratchface.losses``: what ``scratchface gradcheck`` runs.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field

import numpy as np

__all__ = ["rel_error", "numerical_gradient", "compare_gradients", "check_layer", "check_function",
           "collect_gradcheck_cases", "GradcheckCase", "GradcheckResult", "PASS_THRESHOLD", "CASE_PACKAGES"]

PASS_THRESHOLD = 1e-7
_TINY = np.finfo(np.float64).tiny


def rel_error(a, b, atol: float = 0.0) -> float:
    """Largest elementwise relative error ``max(|a-b| - atol, 0) / max(|a|+|b|, tiny)``; 0.0 for empty arrays."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error needs arrays of one shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.maximum(np.abs(a - b) - atol, 0.0) / np.maximum(np.abs(a) + np.abs(b), _TINY)))


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
    """Largest relative error per checked input, with the shape it was checked on.

    ``problems`` lists what failed outright (a ``None`` or misshapen gradient); such an input's
    error is ``inf``.
    """
    name: str
    shape: tuple
    errors: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    @property
    def passed(self) -> bool:
        return not self.problems and self.max_error < PASS_THRESHOLD

    def report(self) -> str:
        """One line per input: its error, or what went wrong."""
        lines = [f"{self.name or 'gradcheck'} on shape {self.shape}:"]
        lines += [f"  {key}: max relative error {err:.2e}" for key, err in self.errors.items()]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def compare_gradients(loss, inputs: dict, analytic: dict, *, h: float = 1e-4, atol: float = 0.0,
                      name: str = "", shape=None) -> GradcheckResult:
    """The finite-difference engine: each analytic gradient against :func:`numerical_gradient` of ``loss``.

    Parameters
    ----------
    loss : callable
        ``loss()`` -> float, reading the arrays of ``inputs`` (perturbed in place, one element
        at a time, and restored).
    inputs : dict of str to float64 array
        The arrays to differentiate with respect to, by name.
    analytic : dict of str to array or None
        The hand-written gradient of each input (same keys). ``None`` fails the check: the
        input was given, so its gradient must be returned (a forgotten ``db`` is not 0).
    h : float
        Finite-difference step.
    atol : float
        Differences up to ``atol`` count as equal (see :func:`rel_error`).
    name : str
    shape : tuple, optional
        Shape recorded in the result (default: the first input's).

    Returns
    -------
    GradcheckResult
        ``errors[key]`` the largest relative error of each input; ``problems`` what failed outright.
    """
    if shape is None:
        shape = tuple(np.shape(next(iter(inputs.values())))) if inputs else ()
    result = GradcheckResult(name=name, shape=tuple(shape))
    for key, x in inputs.items():
        g = analytic.get(key)
        if g is None:
            result.errors[key] = float("inf")
            result.problems.append(f"backward returned None for {key!r}, an input that was given "
                                   "(a forgotten gradient is not 0)")
            continue
        g = np.asarray(g)
        if g.shape != x.shape:
            result.errors[key] = float("inf")
            result.problems.append(f"the gradient of {key!r} has shape {g.shape}, the input has {x.shape}")
            continue
        result.errors[key] = rel_error(g, numerical_gradient(loss, x, h), atol)
    return result


def _as_tuple(grads):
    return grads if isinstance(grads, tuple) else (grads,)


def check_layer(forward, backward, inputs: dict, kwargs=None, *, seed: int = 0,
                h: float = 1e-4, name: str = "", check=None, atol: float = 0.0) -> GradcheckResult:
    """Check ``backward`` against finite differences of ``forward`` for every input.

    Parameters
    ----------
    forward : callable
        ``forward(*inputs.values(), **kwargs) -> (out, cache)``.
    backward : callable
        ``backward(dout, cache) -> grads``: one gradient per input, in the order
        of ``inputs`` (a tuple, or a bare array when there is one input). A ``None``
        gradient fails the check: every input given must get its gradient.
    inputs : dict of str to float64 array
        The differentiable arguments, by name (``{'x': x, 'w': w, 'b': b}``).
    kwargs : dict, optional
        Hyper-parameters, passed by keyword.
    seed : int
        Seed of the random ``dout``.
    check : iterable of str, optional
        Only these inputs (default: all).
    atol : float
        See :func:`rel_error`.

    Returns
    -------
    GradcheckResult
    """
    kwargs = dict(kwargs or {})
    arrays = {k: np.array(v, dtype=np.float64, order="C") for k, v in inputs.items()}
    out, cache = forward(*arrays.values(), **kwargs)
    out = np.asarray(out)
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    grads = _as_tuple(backward(dout if out.ndim else float(dout), cache))
    if len(grads) != len(arrays):
        raise ValueError(f"backward returned {len(grads)} gradients for {len(arrays)} inputs")

    def loss():
        o, _ = forward(*arrays.values(), **kwargs)
        return float(np.sum(np.asarray(o) * dout))

    checked = {k: x for k, x in arrays.items() if check is None or k in check}
    analytic = dict(zip(arrays, grads))
    first = next(iter(arrays.values()))
    return compare_gradients(loss, checked, analytic, h=h, atol=atol, name=name, shape=first.shape)


def check_function(f, grad, x, *, h: float = 1e-4, name: str = "") -> GradcheckResult:
    """Check ``grad(x)`` against finite differences of the scalar ``f(x)`` (float64)."""
    x = np.array(x, dtype=np.float64, order="C")
    return compare_gradients(lambda: f(x), {"x": x}, {"x": grad(x)}, h=h, name=name)


@dataclass
class GradcheckCase:
    """One layer gradcheck the ``scratchface gradcheck`` command and the tests share.

    Each module of ``scratchface/layers`` and ``scratchface/losses`` with a
    backward pass exposes ``gradcheck_cases(rng)`` returning a list of these.
    """
    name: str
    forward: object
    backward: object
    inputs: dict
    kwargs: dict = field(default_factory=dict)

    def run(self, seed: int = 0) -> GradcheckResult:
        return check_layer(self.forward, self.backward, self.inputs, self.kwargs,
                           seed=seed, name=self.name)


CASE_PACKAGES = ("scratchface.layers", "scratchface.losses")


def _case_modules(packages):
    """Every module of the packages (subpackages included), by name; private ``_modules`` skipped."""
    for package_name in packages:
        package = importlib.import_module(package_name)
        found = pkgutil.walk_packages(package.__path__, prefix=package_name + ".")
        for info in sorted(found, key=lambda m: m.name):
            if not info.name.rsplit(".", 1)[-1].startswith("_"):
                yield info.name


def collect_gradcheck_cases(seed: int = 0, packages=CASE_PACKAGES):
    """Every ``gradcheck_cases(rng)`` of every module of ``packages``, in module order.

    The modules are found by walking the packages (``pkgutil``), so a new layer
    or loss module with a ``gradcheck_cases`` is checked without being listed
    anywhere. Each module gets its own generator seeded with ``seed``.
    """
    cases = []
    for name in _case_modules(packages):
        # imported by name: the layers import this module, so it cannot import them at the top
        make = getattr(importlib.import_module(name), "gradcheck_cases", None)
        if make is not None:
            cases.extend(make(np.random.default_rng(seed)))
    return cases
