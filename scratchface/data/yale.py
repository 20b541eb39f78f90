"""Loader for the Yale face database: 15 people, GIF 320 x 243 grey, files ``subjectNN.CONDITION``.

The files have no extension; the condition after the dot is one of
``centerlight, glasses, happy, leftlight, noglasses, normal, rightlight, sad,
sleepy, surprised, wink`` (the usual copy has 164 of the 165 images:
``subject01.centerlight`` is missing). Each condition changes one thing, which
:func:`yale_attributes` spells out: the lighting, the glasses or the
expression. The faces are not cropped: detect them first.

Read from the ``path`` argument, else ``$SCRATCHFACE_DATA/yalefaces``;
nothing is downloaded or copied. Research use; credit: Yale University
(Belhumeur, Hespanha, Kriegman, "Eigenfaces vs. Fisherfaces", TPAMI 1997).
"""
from __future__ import annotations

import os
import pathlib
import re
from typing import NamedTuple

import numpy as np

__all__ = ["YALE_CONDITIONS", "YaleFaces", "yale_faces_dir", "yale_attributes", "load_yale_faces"]

YALE_CONDITIONS = ("centerlight", "glasses", "happy", "leftlight", "noglasses", "normal", "rightlight",
                   "sad", "sleepy", "surprised", "wink")
_NAME = re.compile(r"^subject(\d+)\.([a-z]+)$")


class YaleFaces(NamedTuple):
    """The loaded images, one row per file, sorted by subject then condition."""
    images: np.ndarray      #: (N, 243, 320) uint8
    labels: np.ndarray      #: (N,) int64 subject number NN (1..15)
    conditions: np.ndarray  #: (N,) str, the condition of each image
    paths: list             #: the N files


def yale_faces_dir(path=None) -> pathlib.Path:
    """The folder holding ``subject01.*``: ``path``, else ``$SCRATCHFACE_DATA/yalefaces``."""
    if path is None:
        root = os.environ.get("SCRATCHFACE_DATA")
        if root is None:
            raise FileNotFoundError("no path given and $SCRATCHFACE_DATA is not set: pass the folder "
                                    "that holds the Yale subjectNN.condition files")
        path = pathlib.Path(root) / "yalefaces"
    path = pathlib.Path(path)
    if (path / "yalefaces").is_dir() and not any(path.glob("subject*")):
        path = path / "yalefaces"
    if not path.is_dir() or not any(_NAME.match(p.name) for p in path.iterdir()):
        raise FileNotFoundError(f"Yale faces not found in {path} (expected files named subjectNN.condition)")
    return path


def yale_attributes(condition: str) -> dict:
    """What a Yale condition says about the photo.

    Parameters
    ----------
    condition : str
        One of :data:`YALE_CONDITIONS`.

    Returns
    -------
    dict
        ``lighting``: ``'center'``, ``'left'``, ``'right'`` or ``None`` (the
        ordinary lighting of the other conditions); ``glasses``: ``True``,
        ``False`` or ``None`` (not stated); ``expression``: ``'happy'``,
        ``'sad'``, ``'sleepy'``, ``'surprised'``, ``'wink'`` or ``'neutral'``.

    Examples
    --------
    >>> yale_attributes('leftlight')
    {'lighting': 'left', 'glasses': None, 'expression': 'neutral'}
    """
    if condition not in YALE_CONDITIONS:
        raise ValueError(f"condition must be one of {YALE_CONDITIONS}, got {condition!r}")
    lighting = condition[:-len("light")] if condition.endswith("light") else None
    glasses = {"glasses": True, "noglasses": False}.get(condition)
    expression = condition if condition in ("happy", "sad", "sleepy", "surprised", "wink") else "neutral"
    return {"lighting": lighting, "glasses": glasses, "expression": expression}


def load_yale_faces(path=None, *, subjects=None, conditions=None) -> YaleFaces:
    """Read the Yale images.

    Parameters
    ----------
    path : str or path-like, optional
        The ``yalefaces`` folder (or its parent); default ``$SCRATCHFACE_DATA/yalefaces``.
    subjects : iterable of int, optional
        Subject numbers to keep (default all).
    conditions : iterable of str, optional
        Conditions to keep (default all), from :data:`YALE_CONDITIONS`.

    Returns
    -------
    YaleFaces
        ``(images, labels, conditions, paths)``; unpack it or use the fields.

    Raises
    ------
    FileNotFoundError
        No folder, or no file left after the selection.
    ValueError
        An unknown condition, or a file that is not a readable image.
    """
    from PIL import Image, UnidentifiedImageError  # lazy: Pillow only when files are read

    folder = yale_faces_dir(path)
    if conditions is not None:
        conditions = [str(c) for c in conditions]
        for c in conditions:
            if c not in YALE_CONDITIONS:
                raise ValueError(f"conditions must be taken from {YALE_CONDITIONS}, got {c!r}")
    subjects = None if subjects is None else {int(s) for s in subjects}
    entries = []
    for file in folder.iterdir():
        m = _NAME.match(file.name)
        if not m or m.group(2) not in YALE_CONDITIONS:
            continue  # e.g. a README, or an image someone converted to .gif
        k, cond = int(m.group(1)), m.group(2)
        if (subjects is None or k in subjects) and (conditions is None or cond in conditions):
            entries.append((k, cond, file))
    if not entries:
        raise FileNotFoundError(f"no Yale image in {folder} matches subjects={subjects} conditions={conditions}")
    entries.sort()
    images = []
    for _, _, file in entries:
        try:
            with Image.open(file) as img:
                images.append(np.asarray(img.convert("L")))
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"{file} is not a readable image ({exc})") from exc
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ValueError(f"Yale images differ in size: {sorted(shapes)}")
    return YaleFaces(np.stack(images), np.array([k for k, _, _ in entries], dtype=np.int64),
                     np.array([c for _, c, _ in entries]), [f for _, _, f in entries])
