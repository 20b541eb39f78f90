"""Training-time augmentation of image batches and the edge-repeating warps it is made of (seeded).

:func:`augment` draws, per image, a shift, a rotation, a zoom, a horizontal
flip and an erased rectangle; :func:`shift_images` moves a batch by a fixed
offset (test-time augmentation, :func:`scratchface.recognition.orl_embedding.embed_with_net`);
:func:`warp_edge` is the bilinear affine warp they share, with the image's
border pixels repeated outwards instead of black.

References
----------
Zhong et al., "Random erasing data augmentation", AAAI 2020.
"""
from __future__ import annotations

import numpy as np

from ..detection.align import warp_affine

__all__ = ["augment", "shift_images", "warp_edge"]


def warp_edge(image, matrix, size, pad=24):
    """:func:`~scratchface.detection.align.warp_affine` of a 2-D image whose border pixels repeat outwards.

    Parameters
    ----------
    image : float array, shape (H, W)
    matrix : float array, shape (3, 3)
        Input -> output coordinates (x, y, 1), as ``warp_affine``'s, in the
        coordinates of ``image`` itself (the padding is accounted for here).
    size : (rows, cols)
        Shape of the output.
    pad : int
        Border rows and columns repeated around ``image`` first; samples that fall
        farther out than ``pad`` pixels read ``warp_affine``'s fill instead.

    Returns
    -------
    float array, shape ``size``
        ``warp_affine(pad(image, pad, 'edge'), matrix @ T, size)`` with ``T`` the
        translation by ``-pad`` that undoes the padding.
    """
    shift = np.array([[1.0, 0.0, -pad], [0.0, 1.0, -pad], [0.0, 0.0, 1.0]])
    return warp_affine(np.pad(image, pad, mode="edge"), matrix @ shift, size)


def shift_images(x, dy, dx):
    """Images moved by whole pixels, the border rows and columns repeated into the gap.

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    dy, dx : int
        Rows down and columns right (negative: up, left); at most H and W.

    Returns
    -------
    array, shape (N, C, H, W)
        ``out[..., i, j] = x[..., clip(i - dy, 0, H - 1), clip(j - dx, 0, W - 1)]``.
    """
    h, w = x.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (abs(dy),) * 2, (abs(dx),) * 2), mode="edge")
    return padded[:, :, abs(dy) - dy:abs(dy) - dy + h, abs(dx) - dx:abs(dx) - dx + w]


def augment(x, rng, *, max_shift=3, max_rotation=0.0, max_scale=0.0, flip=True, erase=0.0):
    """Random shifts, rotations, scalings, horizontal flips and erased rectangles (seeded).

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    rng : numpy.random.Generator
    max_shift : int
        Shift of up to this many pixels each way (edges repeated).
    max_rotation : float
        Rotation about the image centre, uniform in +-``max_rotation`` degrees.
    max_scale : float
        Zoom factor uniform in ``[1 - max_scale, 1 + max_scale]``.
    flip : bool
        Mirror half of the images.
    erase : float in [0, 1)
        Probability of zeroing one random rectangle (up to half the image
        each way) of an image: "random erasing" (Zhong et al., 2020).

    Returns
    -------
    array, shape (N, C, H, W)

    Notes
    -----
    Without rotation and scaling the shift is an exact integer crop of the
    edge-padded image; with them every image goes through one bilinear affine
    warp :math:`x' = S R (x - c) + c + t`.
    """
    n, channels, h, w = x.shape
    s = max_shift
    tops = rng.integers(0, 2 * s + 1, size=n)
    lefts = rng.integers(0, 2 * s + 1, size=n)
    flips = (rng.random(n) < 0.5) if flip else np.zeros(n, bool)
    out = np.empty_like(x)
    if max_rotation == 0 and max_scale == 0:
        padded = np.pad(x, ((0, 0), (0, 0), (s, s), (s, s)), mode="edge")
        for i in range(n):
            out[i] = padded[i, :, tops[i]:tops[i] + h, lefts[i]:lefts[i] + w]
    else:
        angles = np.deg2rad(rng.uniform(-max_rotation, max_rotation, size=n))
        scales = rng.uniform(1 - max_scale, 1 + max_scale, size=n)
        centre = np.array([(w - 1) / 2, (h - 1) / 2])
        for i in range(n):
            c, si = scales[i] * np.cos(angles[i]), scales[i] * np.sin(angles[i])
            linear = np.array([[c, -si], [si, c]])
            offset = centre - linear @ centre + np.array([s - lefts[i], s - tops[i]])  # as the crop
            matrix = np.vstack([np.column_stack([linear, offset]), [0.0, 0.0, 1.0]])
            for k in range(channels):
                out[i, k] = warp_edge(x[i, k], matrix, (h, w), pad=max(8, h // 4))
    out[flips] = out[flips][:, :, :, ::-1]
    if erase > 0:
        for i in np.flatnonzero(rng.random(n) < erase):
            eh, ew = rng.integers(h // 8, h // 2 + 1), rng.integers(w // 8, w // 2 + 1)
            top, left = rng.integers(0, h - eh + 1), rng.integers(0, w - ew + 1)
            out[i, :, top:top + eh, left:left + ew] = 0
    return out
