"""Lazy public names for a subpackage (PEP 562): ``from scratchface.detection import nms`` imports one module.

Each subpackage's ``__init__`` lists its public names and the module that defines each; a name's
module is imported the first time the name is used, so importing a subpackage stays light (no Numba,
SciPy or matplotlib until a function that needs them is reached) and the package's ``__init__`` adds
no import edges between its modules.
"""
from __future__ import annotations

import importlib

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict):
    """``(__getattr__, __dir__)`` for a package whose public ``name`` lives in module ``exports[name]``.

    A module name is relative to the package, or absolute (``'scratchface.distances'``) for a name
    that a lower layer defines and this package re-exports.
    """

    def __getattr__(name):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        absolute = module if module.startswith("scratchface.") else f"{package}.{module}"
        value = getattr(importlib.import_module(absolute), name)
        importlib.import_module(package).__dict__[name] = value  # later look-ups skip this function
        return value

    def __dir__():
        return sorted(set(importlib.import_module(package).__dict__) | set(exports))

    return __getattr__, __dir__
