"""ORL faces made network input: aligned on MTCNN's five points, halved, padded, standardised.

:func:`preprocess_orl` makes the input of the ORL embeddings
(:mod:`scratchface.recognition.orl_embedding`): each image averaged over 2 x 2
blocks to 56 x 46, padded to 56 x 48 and standardised per image (FaceNet's
"prewhiten"); with MTCNN's five landmarks (:func:`orl_landmarks`) a similarity
transform (Umeyama) first takes them to :data:`scratchface.data.orl.ORL_TEMPLATE`,
the mirror-symmetric mean position of the landmarks of people 1-30, in a
112 x 96 frame (:data:`scratchface.data.orl.ALIGNED_FRAME`) that keeps the whole head.
"""
from __future__ import annotations

import numpy as np

from ..data.orl import ALIGNED_FRAME, ORL_TEMPLATE
from ..detection.align import umeyama
from ..detection.mtcnn import detect_faces
from .augment import warp_edge

__all__ = ["preprocess_orl", "orl_landmarks"]


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
