"""FHOG: Felzenszwalb's 31-number HOG cell descriptor (the one dlib's detectors use), readable reference.

Each cell of ``cell x cell`` pixels is described by ``3 * orientations + 4``
numbers (31 for the usual 9): ``2 * orientations`` contrast-*sensitive*
(signed, 0..360 degrees) orientation bins, ``orientations`` contrast-*insensitive*
(unsigned, 0..180 degrees) bins, and 4 gradient energies. Every number is seen
through the four 2 x 2 blocks of cells around the cell, so the descriptor is
normalised for local contrast four ways at once (Felzenszwalb et al. 2010,
section 6; dlib's ``extract_fhog_features``):

1. **Gradient** at every interior pixel, central differences
   :math:`g = (I[y, x+1] - I[y, x-1],\\ I[y+1, x] - I[y-1, x])` on the 0..255
   scale (colour: the channel of largest :math:`\\lVert g \\rVert`; border pixels 0).
2. **Orientation snapped** to the nearest of ``2 * orientations`` directions
   :math:`u_o = (\\cos \\theta_o, \\sin \\theta_o)`, :math:`\\theta_o = o \\pi / orientations`:
   :math:`o^* = \\arg\\max_o \\langle u_o, g \\rangle` (the second half of the directions
   is the first half negated, so ``orientations`` dot products give all of them).
3. **Spatial vote, bilinear**: pixel ``(y, x)`` sits at cell coordinates
   :math:`((y + \\tfrac12) / cell - \\tfrac12,\\ (x + \\tfrac12) / cell - \\tfrac12)`;
   its magnitude :math:`\\lVert g \\rVert` goes to the 4 nearest cell centres of
   bin :math:`o^*` with bilinear weights (votes off the grid are dropped).
   ``h[cy, cx, o]``, the grid ``H // cell x W // cell``.
4. **Energy** per cell :math:`e = \\sum_{o < orientations} (h_o + h_{o + orientations})^2`;
   a block is 2 x 2 cells, :math:`N = 1 / \\sqrt{\\sum_{block} e + \\varepsilon}` (cells off
   the grid have energy 0); cell ``(y, x)`` lies in 4 blocks, :math:`N_1..N_4`.
5. **Features**, with :math:`t(v) = \\min(v, 0.2)` (truncation):

   .. math::
       f_o = \\tfrac12 \\sum_k t(h_o N_k)\\ (o < 2\\,orientations), \\qquad
       f'_o = \\tfrac12 \\sum_k t((h_o + h_{o+orientations}) N_k), \\qquad
       f''_k = 0.2357 \\sum_o t(h_o N_k)

   (0.2357 :math:`\\approx 1 / \\sqrt{18}`: the texture features on the scale of the others).

This module is the readable NumPy version; :func:`fhog` runs the Numba kernel
(:mod:`scratchface.kernels.fhog`), tested equal to it.

References
----------
P. F. Felzenszwalb, R. B. Girshick, D. McAllester, D. Ramanan, "Object Detection with
Discriminatively Trained Part-Based Models", IEEE TPAMI 32(9), 2010 (section 6.2).
D. E. King, dlib ``fhog.h`` (the variant with 18 signed orientations written here).
"""
from __future__ import annotations

import numpy as np

from .._validation import check_array, check_choice, check_positive_int

__all__ = ["FHOG_EPS", "fhog", "fhog_depth", "fhog_reference"]

FHOG_EPS = 1e-4        #: epsilon of the block norms (gradients on the 0..255 scale)
TRUNCATION = 0.2       #: normalised votes are clipped here
TEXTURE_WEIGHT = 0.2357


def fhog_depth(orientations=9):
    """Numbers per cell: ``2 o`` signed + ``o`` unsigned + 4 energies (31 for ``o = 9``)."""
    return 3 * orientations + 4


def _check(image, cell, orientations):
    check_array(image, "image", ndim=(2, 3), dtype_kind="fiu", finite=True)
    if image.ndim == 3 and image.shape[2] not in (1, 3):
        raise ValueError(f"image must be (H, W) gray or (H, W, 3) RGB, got shape {image.shape}")
    return check_positive_int(cell, "cell"), check_positive_int(orientations, "orientations")


def _gradients(image):
    """``gx, gy`` on the 0..255 scale (colour: channel of largest magnitude); zero on the 1-pixel border."""
    image = np.asarray(image, dtype=np.float64) * 255.0
    if image.ndim == 2:
        image = image[:, :, None]
    gx = np.zeros(image.shape)
    gy = np.zeros(image.shape)
    gx[1:-1, 1:-1] = image[1:-1, 2:] - image[1:-1, :-2]
    gy[1:-1, 1:-1] = image[2:, 1:-1] - image[:-2, 1:-1]
    best = np.argmax(gx * gx + gy * gy, axis=2)[:, :, None]
    return np.take_along_axis(gx, best, 2)[:, :, 0], np.take_along_axis(gy, best, 2)[:, :, 0]


def fhog_cell_histograms_reference(image, cell=8, orientations=9):
    """Steps 1-3: the ``(H // cell, W // cell, 2 * orientations)`` signed histograms, bilinear in space."""
    gx, gy = _gradients(image)
    theta = np.arange(orientations) * np.pi / orientations
    ux, uy = np.cos(theta), np.sin(theta)
    ux, uy = np.concatenate([ux, -ux]), np.concatenate([uy, -uy])   # u_{o + orientations} = -u_o exactly
    dots = ux[:, None, None] * gx[None] + uy[:, None, None] * gy[None]
    best = np.argmax(dots, axis=0)                          # the snapped orientation o*
    magnitude = np.sqrt(gx * gx + gy * gy)
    height, width = gx.shape
    rows, cols = height // cell, width // cell
    hist = np.zeros((rows, cols, 2 * orientations))
    yp = (np.arange(height) + 0.5) / cell - 0.5
    xp = (np.arange(width) + 0.5) / cell - 0.5
    iy, ix = np.floor(yp).astype(np.int64), np.floor(xp).astype(np.int64)
    fy, fx = yp - iy, xp - ix
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            r, c = iy[ys] + dy, ix[xs] + dx
            inside = (r >= 0) & (r < rows) & (c >= 0) & (c < cols) & (magnitude > 0)
            vote = (wy[ys] * wx[xs] * magnitude)[inside]
            np.add.at(hist, (r[inside], c[inside], best[inside]), vote)
    return hist


def fhog_from_histograms_reference(hist, orientations=9):
    """Steps 4-5: the ``(rows, cols, 3 * orientations + 4)`` features of signed cell histograms."""
    o = orientations
    rows, cols = hist.shape[:2]
    unsigned = hist[:, :, :o] + hist[:, :, o:]
    energy = np.zeros((rows + 2, cols + 2))
    energy[1:-1, 1:-1] = np.sum(unsigned ** 2, axis=2)
    # block (i, j) of the padded grid: cells (i - 1 .. i, j - 1 .. j); cell (y, x) is in blocks (y + a, x + b)
    blocks = energy[:-1, :-1] + energy[1:, :-1] + energy[:-1, 1:] + energy[1:, 1:]
    norms = 1.0 / np.sqrt(blocks + FHOG_EPS)
    out = np.zeros((rows, cols, fhog_depth(o)))
    for k, (a, b) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1))):
        n_k = norms[a:a + rows, b:b + cols, None]
        signed = np.minimum(hist * n_k, TRUNCATION)
        out[:, :, :2 * o] += 0.5 * signed
        out[:, :, 2 * o:3 * o] += 0.5 * np.minimum(unsigned * n_k, TRUNCATION)
        out[:, :, 3 * o + k] = TEXTURE_WEIGHT * np.sum(signed, axis=2)
    return out


def fhog_reference(image, cell=8, orientations=9):
    """FHOG of an image, readable NumPy (module docstring).

    Parameters
    ----------
    image : float array on 0..1, shape (H, W) or (H, W, 3)
    cell : int
        Cell side in pixels (dlib's 8).
    orientations : int
        Unsigned orientation bins (9: 20 degrees; twice as many signed ones).

    Returns
    -------
    features : float64 array, shape (H // cell, W // cell, 3 * orientations + 4)
    """
    cell, orientations = _check(image, cell, orientations)
    return fhog_from_histograms_reference(fhog_cell_histograms_reference(image, cell, orientations), orientations)


def fhog(image, cell=8, orientations=9, impl="auto", dtype=np.float64):
    """:func:`fhog_reference`, by the Numba kernel unless ``impl='reference'``.

    ``dtype=np.float32`` on the fast path: the ``(rows, cols, 3 o + 4)`` result is a view of
    a feature-first ``(3 o + 4, rows, cols)`` buffer (``np.moveaxis(f, -1, 0)`` is contiguous):
    the layout the MMOD correlation reads, made without a copy.
    """
    cell, orientations = _check(image, cell, orientations)
    check_choice(impl, "impl", ("auto", "reference", "numba"))
    if impl == "reference":
        return fhog_reference(image, cell, orientations).astype(dtype, copy=False)
    from ..kernels import fhog as _k  # lazy: numba only when the fast path runs
    image = np.asarray(image)
    if image.dtype != np.float32:    # float32 pyramids stay float32 (half the memory traffic)
        image = image.astype(np.float64, copy=False)
    if image.ndim == 2:
        image = image[:, :, None]
    return _k.fhog_numba(np.ascontiguousarray(image), cell, orientations, FHOG_EPS, np.dtype(dtype))
