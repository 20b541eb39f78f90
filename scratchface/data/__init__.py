"""Shipped weights and loaders of the face sets (ORL, Yale, the dlib photos).

The face sets are not shipped: :func:`find_data_dir` says where they are.
"""
from __future__ import annotations

import os
import pathlib

__all__ = ["find_data_dir"]


def find_data_dir(start=None):
    """The folder holding the face sets (``orl_faces/``, ``yalefaces/``, ``dlib_faces/``), or ``None``.

    ``$SCRATCHFACE_DATA`` when it is set (``None`` if it names no folder); otherwise, walking up
    from ``start`` (default: the working directory) to the first folder holding ``setup.cfg``
    (this repository), the ``shared/data`` beside it, if there.
    """
    env = os.environ.get("SCRATCHFACE_DATA")
    if env:
        return pathlib.Path(env) if pathlib.Path(env).is_dir() else None
    here = pathlib.Path.cwd() if start is None else pathlib.Path(start).resolve()
    for folder in (here, *here.parents):
        if (folder / "setup.cfg").is_file():
            candidate = folder.parent / "shared" / "data"
            return candidate if candidate.is_dir() else None
    return None
