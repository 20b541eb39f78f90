"""Layers that only move values around: flatten, concatenate along channels, residual add.

Their backward passes are the inverse bookkeeping: reshape back, split the
gradient into the pieces that were joined, send the gradient down both
branches of a sum. They are what joins the branches of an inception block
(concat) and of a residual block (add).
"""
from __future__ import annotations

from typing import NamedTuple

from .._validation import check_float_array
from ..backend import get_array_module
from ..gradcheck import GradcheckCase
from ._common import check_axis, check_cache, check_dout

__all__ = ["flatten_forward", "flatten_backward", "concat_forward", "concat_backward",
           "add_forward", "add_backward", "FlattenCache", "ConcatCache", "AddCache", "gradcheck_cases"]


# ----------------------------------------------------------------------------- flatten

class FlattenCache(NamedTuple):
    """What ``flatten_backward`` needs."""
    x_shape: tuple
    dtype: object


def flatten_forward(x):
    """Flatten every sample to a vector: ``(N, C, H, W) -> (N, C*H*W)``.

    Parameters
    ----------
    x : float array, shape (N, ...) (rank >= 1)

    Returns
    -------
    out : array, shape (N, D) with ``D`` the product of ``x.shape[1:]`` (a view when ``x`` is contiguous)
    cache : FlattenCache

    Raises
    ------
    TypeError
        Non-float ``x``.
    ValueError
        A 0-D ``x``, NaN or infinity.

    Notes
    -----
    Row-major (C) order: ``out[n, (c H + h) W + w] = x[n, c, h, w]``, as
    ``torch.flatten(x, 1)``. Backward reshapes ``dout`` back to ``x.shape``.
    (Caffe-converted weights may expect another order; transpose ``x`` first.)
    """
    check_float_array(x, "x")
    if x.ndim < 1:
        raise ValueError("x must have a batch axis (rank >= 1), got a 0-D array")
    out = x.reshape(x.shape[0], -1) if x.shape[0] else x.reshape(0, _prod(x.shape[1:]))
    return out, FlattenCache(tuple(x.shape), x.dtype)


def _prod(shape):
    size = 1
    for s in shape:
        size *= s
    return size


def flatten_backward(dout, cache):
    """Gradient of ``flatten_forward``: ``dout`` reshaped to the input's shape.

    Parameters
    ----------
    dout : float array, shape (N, D)
    cache : FlattenCache

    Returns
    -------
    dx : array, shape of ``x``
    """
    check_cache(cache, FlattenCache, "flatten_forward")
    shape = cache.x_shape
    dout = check_dout(dout, (shape[0], _prod(shape[1:])), cache.dtype)
    return dout.reshape(shape)


# ----------------------------------------------------------------------------- concat

class ConcatCache(NamedTuple):
    """What ``concat_backward`` needs: where each input's slice ends along ``axis``."""
    sizes: tuple      # the inputs' lengths along axis
    axis: int
    out_shape: tuple
    dtype: object


def concat_forward(*xs, axis=1):
    """Concatenate arrays along ``axis`` (channels by default): an inception block's output.

    Parameters
    ----------
    *xs : float arrays, shapes (N, C_i, H, W)
        One or more arrays of one dtype and rank, equal in every axis but ``axis``.
    axis : int
        The axis to join along (default 1, channels; negative counts from the end).

    Returns
    -------
    out : array, shape (N, sum_i C_i, H, W)
    cache : ConcatCache

    Raises
    ------
    TypeError
        No inputs, non-float arrays, mixed dtypes, ``axis`` not an int.
    ValueError
        Ranks differ, other axes differ, ``axis`` out of range, NaN or infinity.

    Notes
    -----
    .. math:: \\mathrm{out} = [x_1; x_2; \\dots; x_k] \\text{ along the axis}, \\qquad
              \\frac{\\partial L}{\\partial x_i} = \\mathrm{dout}[\\dots, o_i : o_i + C_i, \\dots],
              \\; o_i = \\textstyle\\sum_{j < i} C_j

    References
    ----------
    Szegedy et al., "Going deeper with convolutions" (GoogLeNet), 2015, fig. 2 (filter concatenation);
    FaceNet (Schroff et al. 2015) table 2.
    """
    if not xs:
        raise TypeError("concat_forward needs at least one array")
    for i, x in enumerate(xs):
        check_float_array(x, f"xs[{i}]")
    first = xs[0]
    if first.ndim < 1:
        raise ValueError("xs[0] must have rank >= 1, got a 0-D array")
    axis = check_axis(axis, first.ndim)
    for i, x in enumerate(xs[1:], start=1):
        if x.dtype != first.dtype:
            raise TypeError(f"xs[{i}] must have the dtype of xs[0] ({first.dtype}), got {x.dtype}")
        if x.ndim != first.ndim:
            raise ValueError(f"xs[{i}] must have the rank of xs[0] ({first.ndim}), got shape {tuple(x.shape)}")
        other = [s for a, s in enumerate(x.shape) if a != axis]
        want = [s for a, s in enumerate(first.shape) if a != axis]
        if other != want:
            raise ValueError(f"xs[{i}] must match xs[0] {tuple(first.shape)} in every axis but {axis}, "
                             f"got {tuple(x.shape)}")
    xp = get_array_module(*xs)
    out = xp.concatenate(xs, axis=axis)
    sizes = tuple(int(x.shape[axis]) for x in xs)
    return out, ConcatCache(sizes, axis, tuple(out.shape), first.dtype)


def concat_backward(dout, cache):
    """Gradient of ``concat_forward``: ``dout`` split back into the inputs' pieces.

    Parameters
    ----------
    dout : float array, shape of the forward output
    cache : ConcatCache

    Returns
    -------
    dxs : tuple of arrays, one per input, in order
    """
    check_cache(cache, ConcatCache, "concat_forward")
    dout = check_dout(dout, cache.out_shape, cache.dtype)
    dxs, start = [], 0
    for size in cache.sizes:
        index = [slice(None)] * dout.ndim
        index[cache.axis] = slice(start, start + size)
        dxs.append(dout[tuple(index)])
        start += size
    return tuple(dxs)


# ----------------------------------------------------------------------------- residual add

class AddCache(NamedTuple):
    """What ``add_backward`` needs."""
    shape: tuple
    dtype: object


def add_forward(a, b):
    """Residual connection: ``a + b`` for two arrays of one shape (no broadcasting).

    Parameters
    ----------
    a, b : float arrays of one shape and dtype, e.g. (N, C, H, W)
        The shortcut and the residual branch.

    Returns
    -------
    out : array, shape of ``a``
    cache : AddCache

    Raises
    ------
    TypeError
        Non-float arrays, different dtypes.
    ValueError
        Different shapes (project the shortcut first, e.g. with a 1x1 conv), NaN or infinity.

    Notes
    -----
    .. math:: \\mathrm{out} = a + b, \\qquad \\frac{\\partial L}{\\partial a} =
              \\frac{\\partial L}{\\partial b} = \\mathrm{dout}

    References
    ----------
    He et al., "Deep residual learning for image recognition", CVPR 2016, eq. 1.
    """
    check_float_array(a, "a")
    check_float_array(b, "b")
    if a.dtype != b.dtype:
        raise TypeError(f"b must have the dtype of a ({a.dtype}), got {b.dtype}")
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"a and b must have one shape for a residual add (no broadcasting), "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")
    get_array_module(a, b)  # refuses a NumPy / CuPy mix
    return a + b, AddCache(tuple(a.shape), a.dtype)


def add_backward(dout, cache):
    """Gradients of ``add_forward``: ``dout`` for both inputs.

    Parameters
    ----------
    dout : float array, shape of ``a``
    cache : AddCache

    Returns
    -------
    da, db : arrays, shape of ``a``
        Two separate arrays (copies), so accumulating into one never changes the other.
    """
    check_cache(cache, AddCache, "add_forward")
    dout = check_dout(dout, cache.shape, cache.dtype)
    return dout.copy(), dout.copy()


# ----------------------------------------------------------------------------- gradcheck

def _concat3(a, b, c, *, axis):
    return concat_forward(a, b, c, axis=axis)


def gradcheck_cases(rng):
    """Flatten, a three-way channel concat and a residual add for ``scratchface gradcheck``."""
    return [
        GradcheckCase("flatten", flatten_forward, flatten_backward, {"x": rng.standard_normal((2, 3, 2, 3))}),
        GradcheckCase("concat 3 inputs, channels", _concat3, concat_backward,
                      {"a": rng.standard_normal((2, 1, 3, 2)), "b": rng.standard_normal((2, 3, 3, 2)),
                       "c": rng.standard_normal((2, 2, 3, 2))}, {"axis": 1}),
        GradcheckCase("add (residual)", add_forward, add_backward,
                      {"a": rng.standard_normal((2, 3, 2, 2)), "b": rng.standard_normal((2, 3, 2, 2))}),
    ]
