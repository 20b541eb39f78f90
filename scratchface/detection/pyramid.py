"""Image pyramids: the same image at a geometric series of sizes.

A detector with a fixed window (HOG's 32 x 32, MTCNN's 12 x 12) finds faces
of every size by sliding over each level: a face ``s`` times the window shows
up at the level shrunk by ``s``.

:func:`resize` is bilinear interpolation with pixel centres aligned (the
convention of OpenCV's ``INTER_LINEAR`` and ``skimage.transform.resize(order=1)``),
after a Gaussian blur of ``sigma = (scale - 1) / 2`` when shrinking (as
``skimage.transform.resize(anti_aliasing=True)`` does), so that a level is
not aliased.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_array, check_positive_float

__all__ = ["PyramidLevel", "image_pyramid", "pyramid_scales", "resize"]


class PyramidLevel(NamedTuple):
    """One level: the resized image and the factor back to the original."""
    image: np.ndarray   #: (h, w) or (h, w, C)
    scale: float        #: original size / level size (> 1 shrinks); a level pixel x is x * scale originally
    scale_y: float      #: exact row factor H / h
    scale_x: float      #: exact column factor W / w


def _axis_weights(n_in, n_out):
    """Source indices and weights of bilinear interpolation along one axis (pixel centres aligned)."""
    centre = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    centre = np.clip(centre, 0, n_in - 1)
    lo = np.floor(centre).astype(np.intp)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, centre - lo


def resize(image, shape, *, anti_aliasing=True):
    """Resize a float image to ``shape = (rows, cols)`` by bilinear interpolation.

    Parameters
    ----------
    image : float array, shape (H, W) or (H, W, C)
    shape : (int, int)
    anti_aliasing : bool
        Blur before shrinking (Gaussian, ``sigma = max(0, (H / rows - 1) / 2)`` per axis).

    Returns
    -------
    out : float64 array, shape (rows, cols) or (rows, cols, C)
    """
    check_array(image, "image", ndim=(2, 3), dtype_kind="fiub", finite=True)
    rows, cols = int(shape[0]), int(shape[1])
    if rows <= 0 or cols <= 0:
        raise ValueError(f"shape must be positive, got {shape}")
    image = np.asarray(image, dtype=np.float64)
    if anti_aliasing:
        sigma = [max(0.0, (image.shape[0] / rows - 1) / 2), max(0.0, (image.shape[1] / cols - 1) / 2)]
        if image.ndim == 3:
            sigma.append(0.0)
        if any(s > 0 for s in sigma):
            from scipy.ndimage import gaussian_filter  # lazy
            image = gaussian_filter(image, sigma, mode="mirror")
    r_lo, r_hi, r_w = _axis_weights(image.shape[0], rows)
    c_lo, c_hi, c_w = _axis_weights(image.shape[1], cols)
    extra = (None,) * (image.ndim - 2)
    r_w = r_w[(slice(None), None) + extra]
    c_w = c_w[(None, slice(None)) + extra]
    top = image[r_lo]
    bottom = image[r_hi]
    vertical = top + (bottom - top) * r_w
    left = vertical[:, c_lo]
    right = vertical[:, c_hi]
    return left + (right - left) * c_w


def pyramid_scales(image_shape, *, window=(32, 32), scale_factor=1.2, min_size=None, max_size=None):
    """The scales ``s`` (original / level) at which a window of ``window`` pixels sees faces.

    A window at scale ``s`` covers ``s * window`` original pixels. Scales run
    from ``min_size / window`` (``< 1`` upsamples, to find faces smaller than
    the window) by factors of ``scale_factor`` while the level still holds a
    window and ``s * window <= max_size``.
    """
    scale_factor = check_positive_float(scale_factor, "scale_factor")
    if scale_factor <= 1.0:
        raise ValueError(f"scale_factor must be > 1, got {scale_factor}")
    win = min(window)
    start = 1.0 if min_size is None else check_positive_float(min_size, "min_size") / win
    limit = min(image_shape[0] / window[0], image_shape[1] / window[1])
    if max_size is not None:
        limit = min(limit, check_positive_float(max_size, "max_size") / win)
    scales = []
    s = start
    while s <= limit + 1e-9:
        scales.append(s)
        s *= scale_factor
    return scales


def image_pyramid(image, *, window=(32, 32), scale_factor=1.2, min_size=None, max_size=None):
    """The levels of ``image`` for a detector with a ``window``-pixel window.

    Parameters
    ----------
    image : float array, shape (H, W) or (H, W, C)
    window : (int, int)
    scale_factor : float > 1
        Ratio between consecutive levels (1.2: about 4 levels per octave).
    min_size, max_size : float, optional
        Smallest / largest object side (original pixels) to look for.

    Returns
    -------
    list of PyramidLevel
        Empty when the image is smaller than the window at every scale.
    """
    levels = []
    for s in pyramid_scales(image.shape, window=window, scale_factor=scale_factor,
                            min_size=min_size, max_size=max_size):
        rows = max(int(round(image.shape[0] / s)), 1)
        cols = max(int(round(image.shape[1] / s)), 1)
        if rows < window[0] or cols < window[1]:
            continue
        level = image if (rows, cols) == image.shape[:2] else resize(image, (rows, cols))
        levels.append(PyramidLevel(level, s, image.shape[0] / rows, image.shape[1] / cols))
    return levels

