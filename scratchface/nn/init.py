"""Seeded weight initialisers: He (Kaiming), Xavier (Glorot), zeros.

Every function takes an explicit ``numpy.random.Generator`` (or an int seed):
no global random state, so the same seed gives the same network everywhere.
Arrays are made on the CPU with NumPy and returned as ``float32`` by default.

Fan-in and fan-out are read from the weight's shape with scratchface's layouts:

=================  ==========================  ===============  ===============
layer              weight shape                fan_in           fan_out
=================  ==========================  ===============  ===============
dense              ``(D, M)``                  ``D``            ``M``
conv2d             ``(F, C, KH, KW)``          ``C * KH * KW``  ``F * KH * KW``
locally connected  ``(OH, OW, F, C, KH, KW)``  ``C * KH * KW``  ``F * KH * KW``
=================  ==========================  ===============  ===============

or given explicitly with ``fan_in=`` / ``fan_out=``.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .._validation import as_generator

RELU_GAIN = math.sqrt(2.0)  # He et al.'s gain for ReLU layers

__all__ = ["as_generator", "compute_fans", "he_normal", "he_uniform", "xavier_normal", "xavier_uniform",
           "zeros", "get_initialiser", "INITIALISERS"]


def _check_shape(shape):
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    shape = tuple(shape)
    if not shape or any(not isinstance(s, numbers.Integral) or s <= 0 for s in shape):
        raise ValueError(f"shape must be a non-empty tuple of positive ints, got {shape}")
    return tuple(int(s) for s in shape)


def compute_fans(shape) -> tuple:
    """``(fan_in, fan_out)`` of a weight of ``shape`` (see the module docstring for the layouts)."""
    shape = _check_shape(shape)
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:                       # dense (D, M)
        return shape[0], shape[1]
    if len(shape) == 4:                       # conv (F, C, KH, KW)
        f, c, kh, kw = shape
        return c * kh * kw, f * kh * kw
    if len(shape) == 6:                       # locally connected (OH, OW, F, C, KH, KW)
        _, _, f, c, kh, kw = shape
        return c * kh * kw, f * kh * kw
    raise ValueError(f"cannot infer fan_in / fan_out from a weight of shape {shape}: "
                     "pass fan_in= and fan_out= explicitly")


def _fans(shape, fan_in, fan_out):
    if fan_in is None or fan_out is None:
        fi, fo = compute_fans(shape)
        fan_in = fi if fan_in is None else fan_in
        fan_out = fo if fan_out is None else fan_out
    return fan_in, fan_out


def he_normal(shape, rng, *, fan_in=None, gain=RELU_GAIN, dtype=np.float32):
    """He (Kaiming) normal initialisation.

    :math:`w \\sim \\mathcal N(0, \\sigma^2)` with :math:`\\sigma = \\text{gain}/\\sqrt{\\text{fan\\_in}}`.

    With the default gain :math:`\\sqrt 2` the variance of a ReLU layer's
    activations is kept from layer to layer.

    References
    ----------
    He et al., "Delving Deep into Rectifiers", ICCV 2015, eq. 10.
    """
    shape = _check_shape(shape)
    fan_in, _ = _fans(shape, fan_in, 1)
    std = gain / math.sqrt(fan_in)
    return (as_generator(rng, allow_none=True).standard_normal(shape) * std).astype(dtype)


def he_uniform(shape, rng, *, fan_in=None, gain=RELU_GAIN, dtype=np.float32):
    """He (Kaiming) uniform: :math:`w \\sim U(-a, a)`, :math:`a = \\text{gain}\\sqrt{3/\\text{fan\\_in}}`.

    Same variance as :func:`he_normal` (a uniform on ``[-a, a]`` has variance ``a^2 / 3``).
    """
    shape = _check_shape(shape)
    fan_in, _ = _fans(shape, fan_in, 1)
    bound = gain * math.sqrt(3.0 / fan_in)
    return as_generator(rng, allow_none=True).uniform(-bound, bound, size=shape).astype(dtype)


def xavier_normal(shape, rng, *, fan_in=None, fan_out=None, gain=1.0, dtype=np.float32):
    """Xavier (Glorot) normal: :math:`\\sigma = \\text{gain}\\sqrt{2 / (\\text{fan\\_in} + \\text{fan\\_out})}`.

    References
    ----------
    Glorot & Bengio, "Understanding the difficulty of training deep feedforward
    neural networks", AISTATS 2010, eq. 12 (the normal form of the same variance).
    """
    shape = _check_shape(shape)
    fan_in, fan_out = _fans(shape, fan_in, fan_out)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return (as_generator(rng, allow_none=True).standard_normal(shape) * std).astype(dtype)


def xavier_uniform(shape, rng, *, fan_in=None, fan_out=None, gain=1.0, dtype=np.float32):
    """Xavier (Glorot) uniform initialisation.

    :math:`w \\sim U(-a, a)` with :math:`a = \\text{gain}\\sqrt{6 / (\\text{fan\\_in} + \\text{fan\\_out})}`.

    References
    ----------
    Glorot & Bengio 2010, eq. 16.
    """
    shape = _check_shape(shape)
    fan_in, fan_out = _fans(shape, fan_in, fan_out)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return as_generator(rng, allow_none=True).uniform(-bound, bound, size=shape).astype(dtype)


def zeros(shape, rng=None, *, dtype=np.float32):
    """All zeros (biases); ``rng`` is accepted and ignored so every initialiser has one signature."""
    return np.zeros(_check_shape(shape), dtype=dtype)


INITIALISERS = {"he_normal": he_normal, "he_uniform": he_uniform, "xavier_normal": xavier_normal,
                "xavier_uniform": xavier_uniform, "zeros": zeros}


def get_initialiser(name_or_fn):
    """An initialiser by name (``'he_normal'``, ...) or the callable itself."""
    if callable(name_or_fn):
        return name_or_fn
    if name_or_fn not in INITIALISERS:
        raise ValueError(f"init must be one of {tuple(INITIALISERS)} or a callable, got {name_or_fn!r}")
    return INITIALISERS[name_or_fn]

