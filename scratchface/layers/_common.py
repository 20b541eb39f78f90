"""What the layer modules share: argument checks, spatial padding and the strided window of a kernel offset.

One home for the helpers every ``scratchface/layers/<topic>.py`` needs, so
that no layer imports another layer's internals. Nothing here computes a
layer; the readable references are in the topic modules.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_choice, check_float_array
from ..backend import get_array_module, is_cupy_array

__all__ = ["IMPLS", "check_impl", "check_cache", "check_dout", "check_axis", "per_channel", "pad_spatial",
           "window"]

IMPLS = ("auto", "reference", "numba", "cuda")


def check_impl(impl, x, *, has_cuda=False):
    """Resolve ``impl`` for the array ``x``.

    ``'auto'`` is ``'numba'`` for NumPy arrays; for CuPy arrays ``'cuda'``
    where the layer has CUDA kernels (:mod:`scratchface.kernels.cuda`), else
    the readable ``'reference'`` (array code runs on CuPy as it is).
    """
    check_choice(impl, "impl", IMPLS)
    cupy = is_cupy_array(x)
    if impl == "numba" and cupy:
        raise TypeError("impl='numba' needs NumPy arrays (the Numba kernels run on the CPU); "
                        "use impl='auto', 'cuda' or 'reference' for CuPy arrays")
    if impl == "cuda":
        if not has_cuda:
            raise ValueError("impl='cuda' is not available for this layer: use 'auto' or 'reference'")
        if not cupy:
            raise TypeError("impl='cuda' needs CuPy arrays (move them with scratchface.backend.to_device)")
    if impl == "auto":
        return ("cuda" if has_cuda else "reference") if cupy else "numba"
    return impl


def check_cache(cache, cache_type, forward_name):
    """``cache`` must be what ``forward_name`` returned (not e.g. the forward output by mistake)."""
    if not isinstance(cache, cache_type):
        raise TypeError(f"cache must be the {cache_type.__name__} returned by {forward_name}, "
                        f"got {type(cache).__name__}")


def check_dout(dout, shape, dtype, name="dout", *, finite=True):
    """``dout`` must be a float array (finite, unless ``finite`` is False: a kernel checks it) of the
    forward output's ``shape``; returned in ``dtype``."""
    check_float_array(dout, name, finite=finite)
    if tuple(dout.shape) != tuple(shape):
        raise ValueError(f"{name} must have the shape of the forward output {tuple(shape)}, "
                         f"got {tuple(dout.shape)}")
    return dout.astype(dtype, copy=False)


def check_axis(axis, ndim, name="axis"):
    """An int axis of an ``ndim``-D array (negative counts from the end), returned non-negative."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(axis).__name__} {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name} must be in [-{ndim}, {ndim}) for a {ndim}-D array, got {axis}")
    return int(axis) % ndim


def per_channel(v, ndim):
    """A ``(C,)`` vector reshaped to ``(1, C, 1, ..., 1)`` so it broadcasts along axis 1 of an ``ndim``-D array."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def pad_spatial(x, padding, value=0.0):
    """Pad the two spatial axes of an NCHW array by ``(top, bottom, left, right)`` with ``value``."""
    xp = get_array_module(x)
    top, bottom, left, right = padding
    if not any(padding):
        return x
    return xp.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), mode="constant", constant_values=value)


def window(xpad, i, j, stride, out_hw):
    """The ``(N, C, OH, OW)`` block of ``xpad`` that kernel offset ``(i, j)`` sees at every output pixel.

    With stride ``(sh, sw)``, output pixel ``(p, q)`` meets padded pixel
    ``(sh p + i, sw q + j)``: one strided slice (a view, no copy).
    """
    (sh, sw), (oh, ow) = stride, out_hw
    return xpad[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
