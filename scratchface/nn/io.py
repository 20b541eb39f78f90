"""Save and load a module's parameters and buffers as a ``.npz`` file (never pickle).

The file holds one array per entry of ``model.state_dict()``, named by its path
(``'0.weight'``, ``'branch3x3.1.bias'``, ``'bn.running_mean'``): plain NumPy
arrays that any language can read, and that ``np.load(..., allow_pickle=False)``
opens without running code. Loading needs the same architecture: the module is
built first, then its arrays are filled in place.
"""
from __future__ import annotations

import os

import numpy as np

from ..backend import to_host
from ..data.atomic import savez_atomic
from .module import Module

__all__ = ["save", "load", "load_state"]


def save(model, path):
    """Write every parameter and buffer of ``model`` to ``path`` (a ``.npz`` file).

    Parameters
    ----------
    model : Module
    path : str or os.PathLike
        ``.npz`` is appended by NumPy when missing.

    Returns
    -------
    path : str
        The file written.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model must be a scratchface.nn Module, got {type(model).__name__}")
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    state = {name: to_host(array) for name, array in model.state_dict().items()}
    return savez_atomic(path, **state)  # a killed save leaves the previous file whole


def load_state(path) -> dict:
    """The ``{name: array}`` dictionary stored in a ``.npz`` file (``allow_pickle=False``)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such weights file: {path!r}")
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def load(model, path, strict: bool = True):
    """Fill ``model``'s parameters and buffers from a ``.npz`` file written by :func:`save`.

    Parameters
    ----------
    model : Module
        Built with the same architecture as the saved one.
    path : str or os.PathLike
    strict : bool
        Refuse missing and unexpected keys.

    Returns
    -------
    model : Module
        The same object, loaded.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    KeyError
        Missing or unexpected keys (with ``strict``), listed in the message.
    ValueError
        An array of another shape than the model's.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model must be a scratchface.nn Module, got {type(model).__name__}")
    return model.load_state_dict(load_state(path), strict=strict)
