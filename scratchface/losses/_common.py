"""Helpers the loss modules share: the layers they build on, reductions, checks.

The losses reuse two layers of :mod:`scratchface.layers` rather than repeat
their math: ``l2_normalize`` (normalization.py) and ``softmax_cross_entropy``
(softmax.py, a max-shifted log-sum-exp).
"""
from __future__ import annotations

import numpy as np

from .._validation import check_choice, check_float_array
from ..backend import get_array_module
from ..layers.normalization import l2_normalize_backward, l2_normalize_forward
from ..layers.softmax import softmax_cross_entropy_backward, softmax_cross_entropy_forward

__all__ = ["REDUCTIONS", "l2_normalize_forward", "l2_normalize_backward", "softmax_cross_entropy_forward",
           "softmax_cross_entropy_backward", "reduce_losses", "check_reduction", "check_batch", "as_index_array"]

REDUCTIONS = ("mean", "sum", "mean_active")


# ----------------------------------------------------------------------------- reductions

def reduce_losses(per_sample, reduction):
    """Scalar loss and the weight of each sample in it.

    'mean': average over all samples; 'sum': their sum; 'mean_active': average
    over the samples whose loss is > 0 (the batch-all rule of the triplet
    lecture; 0 when none is).
    """
    xp = get_array_module(per_sample)
    n = per_sample.shape[0]
    if reduction == "sum":
        weight = xp.ones_like(per_sample)
    elif reduction == "mean":
        weight = xp.full_like(per_sample, 1.0 / max(n, 1))
    else:
        active = per_sample > 0
        count = int(active.sum())
        weight = active.astype(per_sample.dtype) / max(count, 1)
    return (weight * per_sample).sum(), weight


def check_reduction(reduction):
    return check_choice(reduction, "reduction", REDUCTIONS)


def check_batch(arrays: dict, *, ndim=2):
    """Float arrays of one shape ``(N, D)``; returns N."""
    first_name, first = next(iter(arrays.items()))
    for name, a in arrays.items():
        check_float_array(a, name, ndim=ndim)
    get_array_module(*arrays.values())
    for name, a in arrays.items():
        if tuple(a.shape) != tuple(first.shape):
            raise ValueError(f"{name} must have the shape of {first_name} {tuple(first.shape)} "
                             f"(one row per pair / triplet), got {tuple(a.shape)}")
    return first.shape[0]


def as_index_array(idx, name, n):
    """A 1-D integer index array with values in ``[0, n)``."""
    idx = np.asarray(idx) if isinstance(idx, (list, tuple)) else idx
    if not (hasattr(idx, "dtype") and idx.ndim == 1 and (idx.dtype.kind in "iu" or idx.size == 0)):
        raise TypeError(f"{name} must be a 1-D integer index array, got {idx!r}"[:120])
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise ValueError(f"{name} must index rows of the embeddings, in [0, {n}), "
                         f"got values from {int(idx.min())} to {int(idx.max())}")
    return idx.astype(np.int64, copy=False)
