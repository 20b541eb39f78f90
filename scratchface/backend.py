"""One place that decides the array module: NumPy by default, CuPy when asked for.

Layer code never imports NumPy or CuPy for its arithmetic directly; it asks::

    xp = get_array_module(x)

and writes ``xp.maximum(x, 0)``. The same readable code then runs on the CPU
(NumPy arrays in) or on the GPU (CuPy arrays in). ``set_backend('cupy')``
changes what *new* arrays are created with (``asarray``, initialisers, the
data loaders); arrays that already exist keep their device.

CuPy is optional (the ``[gpu]`` extra). Importing scratchface never imports it:
it is imported the first time it is asked for.
"""
from __future__ import annotations

import contextlib

import numpy as np

__all__ = [
    "get_array_module", "set_backend", "get_backend", "use_backend", "asarray",
    "to_device", "to_host", "cupy_available", "is_cupy_array",
]

_BACKENDS = ("numpy", "cupy")
_state = {"name": "numpy"}


def _import_cupy():
    try:
        import cupy  # noqa: PLC0415  (optional, imported lazily)
    except Exception as exc:  # ImportError, or a CUDA driver error at import
        raise RuntimeError(
            "the 'cupy' backend needs CuPy and a CUDA GPU: pip install 'scratchface[gpu]' "
            f"(importing cupy failed: {exc})") from exc
    return cupy


def cupy_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        cupy = _import_cupy()
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def is_cupy_array(x) -> bool:
    """True for a CuPy ndarray, without importing CuPy."""
    kind = type(x)
    return kind is not np.ndarray and kind.__module__.split(".")[0] == "cupy"


def set_backend(name: str) -> None:
    """Choose the module new arrays are made with: ``'numpy'`` (default) or ``'cupy'``."""
    if name not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {name!r}")
    if name == "cupy":
        _import_cupy()
    _state["name"] = name


def get_backend() -> str:
    """The name of the current backend, ``'numpy'`` or ``'cupy'``."""
    return _state["name"]


@contextlib.contextmanager
def use_backend(name: str):
    """Context manager: ``with use_backend('cupy'): ...`` then restore the previous one."""
    previous = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        _state["name"] = previous


def get_array_module(*arrays):
    """The array module (``numpy`` or ``cupy``) of the given arrays.

    With no arrays, the module of the current backend. Mixing CuPy and NumPy
    arrays is an error: say ``to_device``/``to_host`` first.
    """
    if not arrays:
        return _import_cupy() if _state["name"] == "cupy" else np
    if all(type(a) is np.ndarray for a in arrays):   # the common case, without the set below (a layer call's
        return np                                    # checks ask this several times)
    kinds = {is_cupy_array(a) for a in arrays if a is not None and hasattr(a, "shape")}
    if kinds == {True}:
        return _import_cupy()
    if kinds == {True, False}:
        raise TypeError("arrays mix CuPy (GPU) and NumPy (CPU) arrays: move them with "
                        "scratchface.backend.to_device or to_host first")
    return np


def asarray(x, dtype=None):
    """``x`` as an array of the current backend."""
    return get_array_module().asarray(x, dtype=dtype)


def to_device(x):
    """Copy a NumPy array to the GPU (a CuPy array); CuPy arrays pass through."""
    if is_cupy_array(x):
        return x
    return _import_cupy().asarray(x)


def to_host(x):
    """Copy a CuPy array to the CPU (a NumPy array); NumPy arrays pass through."""
    if is_cupy_array(x):
        return x.get()
    return np.asarray(x)
