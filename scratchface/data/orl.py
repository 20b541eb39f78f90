"""The ORL (AT&T) face database: 40 people x 10 grey 92x112 PGM images, ``sK/N.pgm``; its split and preprocessing.

Read from the ``path`` argument, else ``$SCRATCHFACE_DATA/orl_faces``; nothing
is downloaded or copied. Credit: Olivetti Research Laboratory.

The embeddings trained here (:mod:`scratchface.recognition.orl_embedding`)
learn on people 1-30 (:data:`TRAIN_PEOPLE`) and are tested on people 31-40
(:data:`TEST_PEOPLE`), whom they never saw. :func:`preprocess_orl` makes the
network input: each image averaged over 2 x 2 blocks to 56 x 46, padded to
56 x 48 and standardised per image (FaceNet's "prewhiten"); with MTCNN's five
landmarks (:func:`orl_landmarks`) a similarity transform (Umeyama) first takes
them to :data:`ORL_TEMPLATE`, the mirror-symmetric mean position of the
landmarks of people 1-30, in a 112 x 96 frame that keeps the whole head.
"""
from __future__ import annotations

import os
import pathlib

import numpy as np

from ..detection.align import umeyama
from ..detection.mtcnn import detect_faces
from .augment import warp_edge

__all__ = ["ALIGNED_FRAME", "INPUT_SIZE", "ORL_TEMPLATE", "TEST_PEOPLE", "TRAIN_PEOPLE", "load_orl_faces",
           "orl_faces_dir", "orl_landmarks", "preprocess_orl"]

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


def preprocess_orl(images, landmarks=None):
    """ORL images to standardised half-resolution arrays, aligned on five landmarks when given.

    Parameters
    ----------
    images : uint8 or float array, shape (N, 112, 92)
    landmarks : float array, shape (N, 5, 2), optional
        MTCNN's five points per image (:func:`orl_landmarks`). A row of NaN
        (no face found) leaves that image unaligned.

    Returns
    -------
    x : float32 array, shape (N, 1, 56, 48)
        Without landmarks: 2 x 2 block means (56 x 46), one column repeated on
        each side (56 x 48, divisible by 8). With landmarks: each image is
        first warped (bilinear, edges repeated) by the similarity transform that
        takes its five points closest to :data:`ORL_TEMPLATE` in a 112 x 96
        frame, then block-averaged to 56 x 48. Either way, per image
        :math:`(x - \\bar x) / \\max(\\sigma, 10^{-3})` on the 0..1 scale. The
        whole head is kept: the outline of the head and the hair help on ORL
        (cropping to the inner face cost eigenfaces 7 points of accuracy).
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1] % 2 or images.shape[2] % 2:
        raise ValueError(f"images must have shape (N, H, W) with even H and W (ORL: 112 x 92), "
                         f"got {images.shape}")
    x = images.astype(np.float32) / (255.0 if images.dtype == np.uint8 else 1.0)
    n, h, w = x.shape
    if landmarks is None:
        x = x.reshape(n, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
        x = np.pad(x, ((0, 0), (0, 0), (1, 1)), mode="edge")
    else:
        landmarks = np.asarray(landmarks, dtype=np.float64)
        if landmarks.shape != (n, 5, 2):
            raise ValueError(f"landmarks must have shape (N, 5, 2) = {(n, 5, 2)}, got {landmarks.shape}")
        x = np.stack([_align_orl(image, points) for image, points in zip(x, landmarks)])
        x = x.reshape(n, ALIGNED_FRAME[0] // 2, 2, ALIGNED_FRAME[1] // 2, 2).mean(axis=(2, 4))
    mean = x.mean(axis=(1, 2), keepdims=True)
    std = np.maximum(x.std(axis=(1, 2), keepdims=True), 1e-3)
    return ((x - mean) / std)[:, None].astype(np.float32)


def _align_orl(image, points):
    """One ORL image warped onto :data:`ORL_TEMPLATE` (an ``ALIGNED_FRAME`` float32 array)."""
    if np.isnan(points).any():  # no face found: centre the image in the wider frame
        matrix = np.array([[1.0, 0.0, (ALIGNED_FRAME[1] - image.shape[1]) / 2], [0.0, 1.0, 0.0], [0, 0, 1]])
    else:
        matrix = umeyama(points, ORL_TEMPLATE)
    return warp_edge(image, matrix, ALIGNED_FRAME)


def orl_landmarks(images, *, progress=False):
    """MTCNN's five landmarks of the largest face of each image, NaN where none is found.

    Parameters
    ----------
    images : array, shape (N, H, W)

    Returns
    -------
    float64 array, shape (N, 5, 2)
        (x, y) in pixels: left eye, right eye, nose, left and right mouth corner.
        All 400 ORL images have a face (about 11 s on one core).
    """
    out = np.full((len(images), 5, 2), np.nan)
    iterator = images
    if progress:
        from tqdm.auto import tqdm  # lazy: tqdm.auto probes for Jupyter widgets, only when a bar is shown
        iterator = tqdm(images, desc="MTCNN landmarks", unit="image")
    for i, image in enumerate(iterator):
        found = detect_faces(image, min_face_size=20)
        if len(found.boxes):
            out[i] = found.landmarks[0]
    return out
