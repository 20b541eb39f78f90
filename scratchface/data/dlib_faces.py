"""Loader for dlib's face-detection examples (imglab XML): boxes and 68-point landmarks.

The set (nine PASCAL VOC photos, ``training.xml`` with 18 faces and
``testing.xml`` with 25; ``*_with_face_landmarks.xml`` add the iBUG 68
landmarks) is read from where the user keeps it: the ``path`` argument, else
``$SCRATCHFACE_DATA/dlib_faces``. Nothing is downloaded and nothing is copied.

Boxes in the XML are ``<box top left width height>``; they are returned as
``(x1, y1, x2, y2) = (left, top, left + width, top + height)`` floats, the
convention of :mod:`scratchface.detection.nms`.
"""
from __future__ import annotations

import os
import pathlib
import xml.etree.ElementTree as ET
from typing import NamedTuple

import numpy as np

__all__ = ["DlibFaceImage", "dlib_faces_dir", "load_dlib_faces"]


class DlibFaceImage(NamedTuple):
    """One photo of the set."""
    path: pathlib.Path          #: the image file
    boxes: np.ndarray           #: (n, 4) float64, rows (x1, y1, x2, y2)
    landmarks: np.ndarray       #: (n, 68, 2) float64 (x, y); NaN where a point is missing; (n, 0, 2) without
    ignore: np.ndarray          #: (n,) bool, boxes marked ignore='1' in the XML


def dlib_faces_dir(path=None) -> pathlib.Path:
    """The folder holding ``training.xml``: ``path``, else ``$SCRATCHFACE_DATA/dlib_faces``."""
    if path is None:
        root = os.environ.get("SCRATCHFACE_DATA")
        if root is None:
            raise FileNotFoundError("no path given and $SCRATCHFACE_DATA is not set: pass the folder "
                                    "that holds dlib's training.xml / testing.xml")
        path = pathlib.Path(root) / "dlib_faces"
    path = pathlib.Path(path)
    if (path / "dlib_faces").is_dir() and not (path / "training.xml").is_file():
        path = path / "dlib_faces"
    if not path.is_dir():
        raise FileNotFoundError(f"dlib_faces folder not found: {path}")
    return path


def load_dlib_faces(path=None, split="all", *, landmarks=False) -> list[DlibFaceImage]:
    """Read the labelled photos of one split.

    Parameters
    ----------
    path : str or path-like, optional
        The ``dlib_faces`` folder (or its parent); default ``$SCRATCHFACE_DATA/dlib_faces``.
    split : {'training', 'testing', 'all'}
        ``'all'``: training then testing (43 faces on 9 photos).
    landmarks : bool
        Read the ``*_with_face_landmarks.xml`` files and fill ``landmarks``.

    Returns
    -------
    list of DlibFaceImage, in the order of the XML file(s).
    """
    if split not in ("training", "testing", "all"):
        raise ValueError(f"split must be 'training', 'testing' or 'all', got {split!r}")
    folder = dlib_faces_dir(path)
    splits = ("training", "testing") if split == "all" else (split,)
    out = []
    for name in splits:
        xml = folder / (f"{name}_with_face_landmarks.xml" if landmarks else f"{name}.xml")
        if not xml.is_file():
            raise FileNotFoundError(f"{xml} not found")
        out.extend(_parse(xml, folder, landmarks))
    return out


def _parse(xml_path, folder, with_landmarks):
    root = ET.parse(xml_path).getroot()
    images = []
    for image in root.iter("image"):
        boxes, points, ignore = [], [], []
        for box in image.iter("box"):
            top, left = float(box.get("top")), float(box.get("left"))
            width, height = float(box.get("width")), float(box.get("height"))
            boxes.append((left, top, left + width, top + height))
            ignore.append(box.get("ignore", "0") == "1")
            if with_landmarks:
                pts = np.full((68, 2), np.nan)
                for part in box.iter("part"):
                    pts[int(part.get("name"))] = (float(part.get("x")), float(part.get("y")))
                points.append(pts)
        n = len(boxes)
        images.append(DlibFaceImage(
            path=folder / image.get("file"),
            boxes=np.asarray(boxes, dtype=np.float64).reshape(n, 4),
            landmarks=np.asarray(points, dtype=np.float64).reshape(n, 68 if with_landmarks else 0, 2),
            ignore=np.asarray(ignore, dtype=bool)))
    return images
