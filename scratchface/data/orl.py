"""The ORL (AT&T) face database: 40 people x 10 grey 92x112 PGM images, ``sK/N.pgm``; its split.

Read from the ``path`` argument, else ``$SCRATCHFACE_DATA/orl_faces``; nothing
is downloaded or copied. Credit: Olivetti Research Laboratory.

The embeddings trained here (:mod:`scratchface.recognition.orl_embedding`)
learn on people 1-30 (:data:`TRAIN_PEOPLE`) and are tested on people 31-40
(:data:`TEST_PEOPLE`), whom they never saw; the network input is
:data:`INPUT_SIZE` and aligned faces sit in :data:`ALIGNED_FRAME` with MTCNN's
five points at :data:`ORL_TEMPLATE` (the preprocessing itself is
:mod:`scratchface.recognition.orl_preprocessing`).
"""
from __future__ import annotations

import os
import pathlib

import numpy as np

__all__ = ["ALIGNED_FRAME", "INPUT_SIZE", "ORL_TEMPLATE", "TEST_PEOPLE", "TRAIN_PEOPLE", "load_orl_faces",
           "orl_faces_dir"]

TRAIN_PEOPLE = tuple(range(1, 31))   #: ORL subjects the network is trained on
TEST_PEOPLE = tuple(range(31, 41))   #: ORL subjects it is evaluated on, never seen
INPUT_SIZE = (56, 48)                #: network input (rows, cols): ORL at half resolution, 1 column padded each side
ALIGNED_FRAME = (112, 96)            #: full-resolution frame the faces are aligned in before halving
#: Where alignment puts MTCNN's five points (x, y) in the 112 x 96 frame: the mean over ORL people 1-30,
#: made mirror-symmetric about the frame's centre line (so that flipping an aligned face keeps it aligned).
ORL_TEMPLATE = np.array([[30.7, 53.4], [65.3, 53.4], [48.0, 71.7], [33.1, 87.9], [62.9, 87.9]])


def orl_faces_dir(path=None) -> pathlib.Path:
    """The folder holding ``s1`` .. ``s40``: ``path``, else ``$SCRATCHFACE_DATA/orl_faces``."""
    if path is None:
        root = os.environ.get("SCRATCHFACE_DATA")
        if root is None:
            raise FileNotFoundError("no path given and $SCRATCHFACE_DATA is not set: pass the folder "
                                    "that holds the ORL s1 .. s40 folders")
        path = pathlib.Path(root) / "orl_faces"
    path = pathlib.Path(path)
    if (path / "orl_faces").is_dir() and not (path / "s1").is_dir():
        path = path / "orl_faces"
    if not (path / "s1").is_dir():
        raise FileNotFoundError(f"ORL faces not found in {path} (expected folders s1 .. s40)")
    return path


def load_orl_faces(path=None, subjects=None):
    """All images as one array.

    Parameters
    ----------
    path : str or path-like, optional
    subjects : iterable of int, optional
        Subject numbers 1..40 to load (default all that exist).

    Returns
    -------
    images : uint8 array, shape (N, 112, 92)
    labels : int64 array, shape (N,)
        The subject number ``K`` of ``sK`` (1..40).
    """
    from PIL import Image  # lazy: Pillow only when files are read (importing scratchface stays light)

    folder = orl_faces_dir(path)
    if subjects is None:
        subjects = sorted(int(p.name[1:]) for p in folder.glob("s*") if p.name[1:].isdigit())
    images, labels = [], []
    for k in subjects:
        sub = folder / f"s{int(k)}"
        if not sub.is_dir():
            raise FileNotFoundError(f"subject folder {sub} not found")
        for file in sorted(sub.glob("*.pgm"), key=lambda p: int(p.stem)):
            with Image.open(file) as img:
                images.append(np.asarray(img.convert("L")))
            labels.append(int(k))
    return np.stack(images), np.asarray(labels, dtype=np.int64)
