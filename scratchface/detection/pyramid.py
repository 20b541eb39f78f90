"""Image pyramids: the same image at a geometric series of sizes, and the resizing they use.

A detector with a fixed window (HOG's 32 x 32, MTCNN's 12 x 12) finds faces
of every size by sliding over each level: at the level of **scale** ``s``
(level size / original size, ``< 1`` shrinks) the window sees faces of
``window / s`` original pixels. One convention for every detector
(:func:`pyramid_scales`): the first scale makes a face of ``min_face_size``
pixels fill the window, ``s_0 = window / min_face_size``, and each next level
is ``scale_step`` times the previous one, ``s_{k+1} = scale_step * s_k``
(``0 < scale_step < 1``; MTCNN's 0.709 is about 2 levels per octave, the HOG
detector's 1 / 1.1 about 7), while the level still holds a window (and, with
``max_face_size``, while ``window / s <= max_face_size``).

Two resamplings, one per detector's reference (:func:`image_pyramid`):

* ``'bilinear'`` (HOG, Faceness): :func:`resize`, bilinear interpolation with pixel
  centres aligned (the convention of OpenCV's ``INTER_LINEAR`` and
  ``skimage.transform.resize(order=1)``), after a Gaussian blur of
  ``sigma = (1 / s - 1) / 2`` when shrinking (as ``skimage.transform.resize(anti_aliasing=True)``
  does), so that a level is not aliased; level size ``round(H s) x round(W s)``.
* ``'area'`` (MTCNN): :func:`area_resize`, each output pixel the mean of the input
  pixels under it (torch's ``F.interpolate(mode='area')``, which facenet-pytorch
  uses), computed from a :func:`summed_area_table`; level size
  ``int(H s + 1) x int(W s + 1)``, as in MTCNN's reference code.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_array, check_choice, check_in_range, check_positive_float, check_positive_int

__all__ = ["PyramidLevel", "area_resize", "area_resize_reference", "area_resize_regions",
           "area_resize_regions_nchw", "image_pyramid",
           "level_shape", "pyramid_scales", "resize", "summed_area_table"]


class PyramidLevel(NamedTuple):
    """One level: the resized image, its scale, and the exact factors back to the original."""
    image: np.ndarray   #: (h, w) or (h, w, C)
    scale: float        #: level size / original size (< 1 shrinks), as asked for
    to_original_y: float  #: exact row factor H / h: level row y is row y * to_original_y of the original
    to_original_x: float  #: exact column factor W / w


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
            from scipy.ndimage import gaussian_filter  # noqa: PLC0415  (scipy: only when shrinking)
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


def summed_area_table(array, axes=(0, 1), impl="auto"):
    """Summed-area table (integral image) over two axes, with a zero first row and column.

    ``S[r, c] = sum(array[:r, :c])`` along ``axes`` (other axes, e.g. channels, kept),
    float64, shape ``H + 1, W + 1`` along ``axes``: every rectangle sum is four look-ups
    ``S[y1, x1] - S[y0, x1] - S[y1, x0] + S[y0, x0]``. Exact for integer pixel values
    (sums stay far below 2**53).

    Parameters
    ----------
    array : array with at least 2 dimensions
        An image ``(H, W, C)`` (``axes=(0, 1)``) or maps ``(P, H, W)`` (``axes=(-2, -1)``).
    axes : (int, int)
        The row and column axes.
    impl : {'auto', 'reference', 'numba'}
        ``'reference'``: the NumPy lines below; otherwise an ``(H, W, C)`` image with
        ``axes=(0, 1)`` goes to the Numba kernel
        (:func:`scratchface.kernels.resize.summed_area_table_numba`: the same additions
        in the same order, the same bits).

    References
    ----------
    F. Crow, "Summed-area tables for texture mapping", SIGGRAPH 1984; P. Viola and M. Jones,
    "Rapid Object Detection using a Boosted Cascade of Simple Features", CVPR 2001 (the integral image).
    """
    array = np.asarray(array)
    if array.ndim < 2:
        raise ValueError(f"array must have at least 2 dimensions, got shape {array.shape}")
    check_choice(impl, "impl", ("auto", "reference", "numba"))
    if impl != "reference" and array.ndim == 3 and tuple(axes) == (0, 1) and array.dtype.kind in "uif":
        from ..kernels.resize import summed_area_table_numba  # noqa: PLC0415  (imports Numba: lazily)
        return summed_area_table_numba(array)
    moved = np.moveaxis(array, axes, (0, 1))
    height, width = moved.shape[:2]
    sat = np.zeros((height + 1, width + 1) + moved.shape[2:], np.float64)
    np.cumsum(moved, axis=1, dtype=np.float64, out=sat[1:, 1:])
    for y in range(1, height + 1):  # rows one by one: much faster than np.cumsum(axis=0)
        np.add(sat[y], sat[y - 1], out=sat[y])
    return np.moveaxis(sat, (0, 1), axes)


def area_resize_reference(image, size):
    """Area interpolation, the readable loops: each output pixel averages its input window.

    Parameters
    ----------
    image : array, shape (H, W, C)
    size : (out_h, out_w)

    Returns
    -------
    out : float64 array, shape (out_h, out_w, C)

    Notes
    -----
    Output row ``i`` covers input rows ``floor(i H / h)`` to
    ``ceil((i + 1) H / h) - 1`` (likewise for columns): torch's adaptive average
    pooling, which is what ``F.interpolate(mode='area')`` runs. Windows overlap
    when the ratio is not an integer, and repeat pixels when enlarging.
    """
    height, width = image.shape[:2]
    out_h, out_w = size
    out = np.zeros((out_h, out_w) + image.shape[2:])
    for i in range(out_h):
        top, bottom = (i * height) // out_h, -((-(i + 1) * height) // out_h)
        for j in range(out_w):
            left, right = (j * width) // out_w, -((-(j + 1) * width) // out_w)
            out[i, j] = image[top:bottom, left:right].mean(axis=(0, 1))
    return out


def _window_edges(start, length, out_size):
    """First and one-past-last input index of each output pixel: (n, out_size) each."""
    j = np.arange(out_size)
    lo = start[:, None] + (j * length[:, None]) // out_size
    hi = start[:, None] - ((-(j + 1) * length[:, None]) // out_size)
    return lo, hi


def area_resize_regions(sat, top, left, height, width, out_h, out_w):
    """Area-resize n regions of an image, given by integer arrays (n,), to (n, out_h, out_w, C) float32.

    ``sat`` is the image's :func:`summed_area_table` ``(H + 1, W + 1, C)``; region ``k`` is rows
    ``top[k] .. top[k] + height[k] - 1`` and columns ``left[k] .. left[k] + width[k] - 1``.

    Window sums come from the summed-area table; for integer pixel values they
    are exact, and dividing by the window's height and then its width in
    float32 rounds exactly like torch's adaptive average pooling.
    """
    y0, y1 = _window_edges(top, height, out_h)
    x0, x1 = _window_edges(left, width, out_w)
    y0, y1 = y0[:, :, None], y1[:, :, None]
    x0, x1 = x0[:, None, :], x1[:, None, :]
    # S[y1, x1] - S[y0, x1] - S[y1, x0] + S[y0, x0], gathered by flat index (faster than 2-D fancy indexing)
    table = sat.reshape(-1, sat.shape[2])
    row0, row1 = y0 * sat.shape[1], y1 * sat.shape[1]
    sums = (np.take(table, row1 + x1, axis=0) - np.take(table, row0 + x1, axis=0)
            - np.take(table, row1 + x0, axis=0) + np.take(table, row0 + x0, axis=0))
    kh = (y1 - y0).astype(np.float32)[..., None]
    kw = (x1 - x0).astype(np.float32)[..., None]
    return sums.astype(np.float32) / kh / kw


def area_resize_regions_nchw(sat, top, left, height, width, out_h, out_w, *, shift=0.0, scale=1.0, impl="numba"):
    """:func:`area_resize_regions`, then ``(x - shift) * scale`` (float32), channels first: (n, C, out_h, out_w).

    The input a CNN takes from a detector's candidate regions: MTCNN uses
    ``shift=127.5, scale=1/128``. ``impl='reference'`` is that composition in
    NumPy; ``'numba'`` (:mod:`scratchface.kernels.resize`) computes every value
    in one place with the same operations, so the two are equal bit for bit.
    """
    check_choice(impl, "impl", ("reference", "numba"))
    top, left, height, width = (np.asarray(a, np.int64).reshape(-1) for a in (top, left, height, width))
    if impl == "numba":
        from ..kernels.resize import area_resize_regions_numba  # noqa: PLC0415  (imports Numba: lazily)
        return area_resize_regions_numba(sat, top, left, height, width, out_h, out_w, shift, scale)
    regions = area_resize_regions(sat, top, left, height, width, out_h, out_w)
    normalized = (regions - np.float32(shift)) * np.float32(scale)
    return np.ascontiguousarray(normalized.transpose(0, 3, 1, 2))


def area_resize(image, size):
    """Area interpolation of an (H, W, C) image to ``size = (out_h, out_w)``, float32.

    Equal to :func:`area_resize_reference` (and to torch's
    ``F.interpolate(x, size, mode='area')``, bit for bit on integer-valued
    images), computed from a summed-area table in one vectorised gather.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        return area_resize(image[:, :, None], size)[:, :, 0]
    sat = summed_area_table(image)
    one = np.array([0])
    return area_resize_regions(sat, one, one, np.array([image.shape[0]]), np.array([image.shape[1]]),
                                   int(size[0]), int(size[1]))[0]


def pyramid_scales(image_shape, window, *, min_face_size=None, max_face_size=None, scale_step=0.709):
    """The scales (level size / original size) of a detector's image pyramid.

    ``s_0 = window / min_face_size`` (a face of ``min_face_size`` pixels fills the
    window; default 1, the image itself), ``s_{k+1} = scale_step * s_k``, as long
    as the shorter side times the scale holds the window and, with
    ``max_face_size``, ``window / s_k <= max_face_size``.

    Parameters
    ----------
    image_shape : (H, W, ...)
    window : int
        The detector's (square) window side in pixels: 12 for MTCNN's P-Net, 32 for the HOG detector.
    min_face_size, max_face_size : float, optional
        Smallest / largest face side to look for, in original pixels (``min_face_size``
        below the window upsamples the image).
    scale_step : float in (0, 1)
        Ratio of successive scales.

    Returns
    -------
    scales : list of float, decreasing (empty when the image is too small)
    """
    if not isinstance(image_shape, (tuple, list)) or len(image_shape) < 2:
        raise TypeError(f"image_shape must be a tuple (H, W, ...) such as image.shape, got {image_shape!r}")
    window = check_positive_int(window, "window")
    scale_step = check_in_range(scale_step, "scale_step", 0.0, 1.0, inclusive=(False, False))
    scale = 1.0 if min_face_size is None else window / check_positive_float(min_face_size, "min_face_size")
    largest = None if max_face_size is None else check_positive_float(max_face_size, "max_face_size")
    shorter = min(image_shape[0], image_shape[1]) * scale
    scales = []
    while shorter >= window:
        if largest is not None and window / scale > largest * (1 + 1e-9):
            break
        scales.append(scale)
        scale *= scale_step
        shorter *= scale_step
    return scales


def level_shape(height, width, scale, resample="bilinear"):
    """The ``(rows, cols)`` of the level of scale ``scale`` (see :func:`image_pyramid` for the two rules)."""
    if resample == "area":  # MTCNN's reference sizes
        return int(height * scale + 1), int(width * scale + 1)
    return max(int(round(height * scale)), 1), max(int(round(width * scale)), 1)


def image_pyramid(image, scales, *, resample="bilinear"):
    """The levels of ``image`` at ``scales`` (from :func:`pyramid_scales`).

    Parameters
    ----------
    image : float array, shape (H, W) or (H, W, C)
    scales : sequence of float
        Level size / original size.
    resample : {'bilinear', 'area'}
        :func:`resize` (anti-aliased bilinear; level ``round(H s) x round(W s)``) or
        :func:`area_resize` (float32; level ``int(H s + 1) x int(W s + 1)``, MTCNN's).

    Returns
    -------
    list of PyramidLevel
        One per scale; a level of the image's own size is the image itself.
    """
    check_choice(resample, "resample", ("bilinear", "area"))
    image = np.asarray(image)
    height, width = image.shape[:2]
    sat = summed_area_table(image if image.ndim == 3 else image[:, :, None]) if resample == "area" else None
    one = np.array([0])
    levels = []
    for scale in scales:
        rows, cols = level_shape(height, width, scale, resample)
        if resample == "area":
            level = area_resize_regions(sat, one, one, np.array([height]), np.array([width]), rows, cols)[0]
            level = level if image.ndim == 3 else level[:, :, 0]
        else:
            level = image if (rows, cols) == (height, width) else resize(image, (rows, cols))
        levels.append(PyramidLevel(level, scale, height / rows, width / cols))
    return levels
