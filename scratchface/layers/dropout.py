"""Inverted dropout, seeded: the random mask comes from a generator you pass.

There is no global random state: a training step that passes the same seed
(or a generator in the same state) drops the same units, so a run can be
reproduced exactly.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import as_generator, check_float_array, check_in_range
from ..backend import get_array_module, is_cupy_array
from ..gradcheck import GradcheckCase
from ._common import check_cache, check_dout

__all__ = ["dropout_forward", "dropout_backward", "DropoutCache", "gradcheck_cases"]


class DropoutCache(NamedTuple):
    """What ``dropout_backward`` needs: the scaled mask (``None`` when dropout was the identity)."""
    mask: object      # shape of x: 0 for a dropped unit, 1 / (1 - p) for a kept one; or None
    shape: tuple
    dtype: object


def dropout_forward(x, *, p=0.5, training=True, rng=None):
    """Inverted dropout: zero each unit with probability ``p``, scale the rest by ``1 / (1 - p)``.

    Parameters
    ----------
    x : float array, any shape
    p : float in [0, 1]
        Probability of dropping a unit.
    training : bool
        ``False`` (eval): the identity, no randomness.
    rng : numpy.random.Generator or int
        Where the mask comes from (an int is a seed). Required in training
        mode with ``p > 0``; a generator advances, so successive calls draw
        new masks. For CuPy input the mask is drawn on the host and copied.

    Returns
    -------
    out : array, shape and dtype of ``x``
    cache : DropoutCache
        ``cache.mask`` is the scaled mask used (``None`` for the identity).

    Raises
    ------
    TypeError
        Non-float ``x``; ``training`` not a bool; ``rng`` not a generator or int.
    ValueError
        ``p`` outside [0, 1]; training with ``p > 0`` and no ``rng``; NaN or infinity.

    Notes
    -----
    With :math:`m_i \\sim \\mathrm{Bernoulli}(1 - p)` drawn independently,

    .. math:: \\mathrm{out} = x \\odot \\frac{m}{1 - p}, \\qquad
              \\frac{\\partial L}{\\partial x} = \\mathrm{dout} \\odot \\frac{m}{1 - p}

    so :math:`E[\\mathrm{out}] = x` and eval mode needs no rescaling
    ("inverted" dropout, as PyTorch). With ``p = 1`` every unit is dropped
    (``out = 0``).

    References
    ----------
    Srivastava et al., "Dropout: a simple way to prevent neural networks from overfitting", JMLR 2014.
    """
    check_float_array(x, "x")
    p = check_in_range(p, "p", 0.0, 1.0)
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be True or False, got {training!r}")
    if not training or p == 0.0:
        return x.copy(), DropoutCache(None, tuple(x.shape), x.dtype)
    if rng is None:
        raise ValueError("dropout in training mode needs rng=: a numpy.random.Generator "
                         "(np.random.default_rng(seed)) or an int seed (no global random state)")
    keep = as_generator(rng).random(x.shape) >= p            # True with probability 1 - p
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    mask = (keep * scale).astype(x.dtype)
    if is_cupy_array(x):
        mask = get_array_module(x).asarray(mask)
    return x * mask, DropoutCache(mask, tuple(x.shape), x.dtype)


def dropout_backward(dout, cache):
    """Gradient of ``dropout_forward``: ``dx = dout * mask`` (``dout`` itself in eval mode).

    Parameters
    ----------
    dout : float array, shape of ``x``
    cache : DropoutCache

    Returns
    -------
    dx : array, shape of ``x``
    """
    check_cache(cache, DropoutCache, "dropout_forward")
    dout = check_dout(dout, cache.shape, cache.dtype)
    if cache.mask is None:
        return dout.copy()
    return dout * cache.mask


# ----------------------------------------------------------------------------- gradcheck

def _seeded_dropout(x, *, p, seed):
    """Dropout with a fresh generator from ``seed`` on every call: the same mask each time (for gradcheck)."""
    return dropout_forward(x, p=p, training=True, rng=np.random.default_rng(seed))


def gradcheck_cases(rng):
    """Dropout with a fixed mask (train) and the identity (eval) for ``scratchface gradcheck``."""
    return [
        GradcheckCase("dropout p=0.3 train", _seeded_dropout, dropout_backward,
                      {"x": rng.standard_normal((3, 4, 2, 2))}, {"p": 0.3, "seed": 7}),
        GradcheckCase("dropout eval", dropout_forward, dropout_backward,
                      {"x": rng.standard_normal((3, 5))}, {"p": 0.5, "training": False}),
    ]
