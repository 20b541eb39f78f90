"""Histogram of Oriented Gradients (Dalal & Triggs 2005), step by step.

The descriptor is four small steps, each a function a student can call and
look at:

1. :func:`image_gradients` -- central differences along rows and columns
   (zero on the border); for a colour image, per pixel the channel with the
   largest gradient magnitude (:func:`dominant_channel_gradients`).
2. :func:`magnitude_orientation` -- gradient magnitude and *unsigned*
   orientation in degrees, in ``[0, 180)``.
3. :func:`cell_histograms` -- one orientation histogram per cell of
   ``pixels_per_cell`` pixels, each pixel voting with its magnitude, either
   whole into one bin (``binning='hard'``, scikit-image) or split linearly
   between the two nearest bin centres (``binning='bilinear'``, Dalal & Triggs
   and the lecture).
4. :func:`normalize_blocks` -- overlapping blocks of ``cells_per_block`` cells,
   each normalised (``'L1'``, ``'L1-sqrt'``, ``'L2'``, ``'L2-Hys'``).

:func:`hog` chains them with the signature and output of
``skimage.feature.hog`` (scikit-image 0.26) and dispatches to a Numba kernel
(:mod:`scratchface.kernels.hog`) unless ``impl='reference'``.
"""
from __future__ import annotations

import numbers

import numpy as np

from .._validation import check_choice, check_int_pair, check_positive_int
from ..image import as_array

__all__ = [
    "BINNINGS",
    "BLOCK_NORMS",
    "cell_histograms",
    "dominant_channel_gradients",
    "hog",
    "hog_glyph_image",
    "image_gradients",
    "magnitude_orientation",
    "normalize_block",
    "normalize_blocks",
    "orientation_bin_edges",
]

BLOCK_NORMS = ("L1", "L1-sqrt", "L2", "L2-Hys")
BINNINGS = ("hard", "bilinear")
EPS = 1e-5  # scikit-image's eps in every block norm


# ----------------------------------------------------------------------------- step 1
def image_gradients(channel):
    """Central-difference gradients of one channel, zero on the border.

    .. math:: g_{row}[r, c] = I[r+1, c] - I[r-1, c], \\qquad
              g_{col}[r, c] = I[r, c+1] - I[r, c-1]

    No division by 2 (scikit-image's convention; the factor cancels in the
    block normalisation), and the first / last row (column) get ``g_row = 0``
    (``g_col = 0``) instead of a one-sided difference.

    Parameters
    ----------
    channel : array, shape (H, W)
        Float, or integer (uint8 pixels): an integer image is converted to
        float64 first, since differences of uint8 values wrap around (5 - 10 = 251).

    Returns
    -------
    g_row, g_col : arrays, shape (H, W), the dtype of a float ``channel``, else float64
    """
    channel = np.asarray(channel)
    if not np.issubdtype(channel.dtype, np.floating):
        channel = channel.astype(np.float64)
    g_row = np.zeros_like(channel)
    g_col = np.zeros_like(channel)
    g_row[1:-1, :] = channel[2:, :] - channel[:-2, :]
    g_col[:, 1:-1] = channel[:, 2:] - channel[:, :-2]
    return g_row, g_col


def dominant_channel_gradients(image):
    """Gradients of a multichannel image: per pixel, the channel with the largest magnitude.

    Parameters
    ----------
    image : float array, shape (H, W, C)

    Returns
    -------
    g_row, g_col : arrays, shape (H, W)
        The gradients of the channel whose ``hypot(g_row, g_col)`` is largest
        at that pixel (the first such channel on ties).
    """
    per_channel = [image_gradients(image[:, :, k]) for k in range(image.shape[2])]
    g_row = np.stack([g[0] for g in per_channel], axis=2)
    g_col = np.stack([g[1] for g in per_channel], axis=2)
    best = np.hypot(g_row, g_col).argmax(axis=2)[:, :, None]
    return (np.take_along_axis(g_row, best, axis=2)[:, :, 0],
            np.take_along_axis(g_col, best, axis=2)[:, :, 0])


# ----------------------------------------------------------------------------- step 2
def magnitude_orientation(g_row, g_col):
    """Gradient magnitude and unsigned orientation in degrees.

    .. math:: m = \\sqrt{g_{row}^2 + g_{col}^2}, \\qquad
              \\theta = \\tfrac{180}{\\pi} \\operatorname{atan2}(g_{row}, g_{col}) \\bmod 180

    The orientation is measured from the column (x) axis towards the row (y)
    axis, i.e. clockwise on screen, because rows grow downwards.

    Returns
    -------
    magnitude, orientation : float64 arrays, shape of ``g_row``
        ``orientation`` in ``[0, 180)``; a gradient pointing the opposite way
        has the same orientation ("unsigned" gradients).
    """
    g_row = np.asarray(g_row, dtype=np.float64)
    g_col = np.asarray(g_col, dtype=np.float64)
    orientation = np.rad2deg(np.arctan2(g_row, g_col)) % 180
    # a tiny negative angle (g_row = -5.6e-17, g_col = 1) rounds to exactly 180.0 after the modulo: fold it to 0
    return np.hypot(g_col, g_row), np.where(orientation >= 180, orientation - 180, orientation)


# ----------------------------------------------------------------------------- step 3
def orientation_bin_edges(orientations):
    """The ``orientations + 1`` hard-bin edges in degrees, as scikit-image computes them.

    Bin ``k`` holds orientations in ``[edges[k], edges[k + 1])``. scikit-image
    computes the bin width ``180 / orientations`` and the edges in single
    precision; the same rounding is kept here so that an orientation lying
    exactly on an edge lands in the same bin.
    """
    step = np.float32(180.0 / orientations)
    return (step * np.arange(orientations + 1, dtype=np.float32)).astype(np.float64)


def _hard_votes(orientation, orientations):
    """Bin index (``orientations`` means "no bin") and weight 1 for each pixel."""
    edges = orientation_bin_edges(orientations)
    bins = np.searchsorted(edges, orientation, side="right") - 1
    bins = np.where((bins < 0) | (bins >= orientations), orientations, bins)
    return bins


def _bilinear_votes(orientation, orientations):
    """Lower bin, upper bin and the upper bin's weight for each pixel.

    Bin centres at ``k * 180 / orientations``, ``k = 0 .. orientations - 1``;
    180 wraps to 0 (the lecture's convention: 9 bins centred at 0, 20, ..., 160).
    """
    position = orientation / (180.0 / orientations)
    lower = np.floor(position)
    weight_upper = position - lower
    lower = lower.astype(np.int64) % orientations
    return lower, (lower + 1) % orientations, weight_upper


def cell_histograms(magnitude, orientation, *, orientations=9, pixels_per_cell=(8, 8),
                    binning="hard"):
    """One orientation histogram per cell, each vote weighted by the gradient magnitude.

    Parameters
    ----------
    magnitude, orientation : float arrays, shape (H, W)
        From :func:`magnitude_orientation`; orientation in degrees, ``[0, 180)``.
    orientations : int
        Number of bins over 0..180 degrees.
    pixels_per_cell : (int, int)
        Cell size ``(rows, cols)``. Pixels beyond the last whole cell (the
        bottom / right margins when the size is not a multiple) are ignored.
    binning : {'hard', 'bilinear'}
        ``'hard'``: each pixel votes its whole magnitude into the bin
        ``[k * 180/n, (k+1) * 180/n)`` holding its orientation
        (scikit-image). ``'bilinear'``: bins are *centred* at ``k * 180/n``
        and a pixel splits its magnitude linearly between the two nearest
        centres (Dalal & Triggs; 180 wraps to 0).

    Returns
    -------
    histograms : float64 array, shape (H // rows, W // cols, orientations)
        The *mean* vote per pixel of the cell (the sum divided by
        ``rows * cols``), as scikit-image returns it; multiply by the cell
        area for the sums a lecture shows.

    Notes
    -----
    Bilinear vote of a pixel with magnitude :math:`m`, orientation
    :math:`\\theta` and bin width :math:`w = 180/n`: with
    :math:`p = \\theta / w`, :math:`k = \\lfloor p \\rfloor`,
    bin :math:`k \\bmod n` gets :math:`(1 - (p - k)) m` and bin
    :math:`(k + 1) \\bmod n` gets :math:`(p - k) m`.
    scikit-image sums each cell in single precision; here the sums are in
    double precision (differences of about 1e-7 relative).
    """
    orientations = check_positive_int(orientations, "orientations")
    c_row, c_col = check_int_pair(pixels_per_cell, "pixels_per_cell")
    check_choice(binning, "binning", BINNINGS)
    n_rows, n_cols = magnitude.shape[0] // c_row, magnitude.shape[1] // c_col
    # crop to whole cells, then give every pixel the flat index of its cell
    magnitude = np.asarray(magnitude, dtype=np.float64)[:n_rows * c_row, :n_cols * c_col]
    orientation = np.asarray(orientation, dtype=np.float64)[:n_rows * c_row, :n_cols * c_col]
    cell_of_row = np.arange(n_rows * c_row) // c_row
    cell_of_col = np.arange(n_cols * c_col) // c_col
    cell = (cell_of_row[:, None] * n_cols + cell_of_col[None, :]).ravel()
    magnitude, orientation = magnitude.ravel(), orientation.ravel()

    n_slots = orientations + 1  # one spare slot for votes that fall in no bin
    flat = np.zeros(n_rows * n_cols * n_slots)
    if binning == "hard":
        bins = _hard_votes(orientation, orientations)
        np.add.at(flat, cell * n_slots + bins, magnitude)
    else:
        lower, upper, weight_upper = _bilinear_votes(orientation, orientations)
        np.add.at(flat, cell * n_slots + lower, (1.0 - weight_upper) * magnitude)
        np.add.at(flat, cell * n_slots + upper, weight_upper * magnitude)
    hist = flat.reshape(n_rows, n_cols, n_slots)[:, :, :orientations]
    return hist / (c_row * c_col)


# ----------------------------------------------------------------------------- step 4
def normalize_block(block, method="L2-Hys", eps=EPS):
    """Normalise one block of cell histograms (any shape), as scikit-image does.

    .. math::
        L1: v / (\\lVert v \\rVert_1 + \\epsilon) \\qquad
        L1\\text{-}sqrt: \\sqrt{v / (\\lVert v \\rVert_1 + \\epsilon)} \\qquad
        L2: v / \\sqrt{\\lVert v \\rVert_2^2 + \\epsilon^2}

    ``L2-Hys``: L2, then clip at 0.2, then L2 again (Lowe's SIFT trick).
    """
    check_choice(method, "block_norm", BLOCK_NORMS)
    if method == "L1":
        return block / (np.sum(np.abs(block)) + eps)
    if method == "L1-sqrt":
        return np.sqrt(block / (np.sum(np.abs(block)) + eps))
    out = block / np.sqrt(np.sum(block ** 2) + eps ** 2)
    if method == "L2-Hys":
        out = np.minimum(out, 0.2)
        out = out / np.sqrt(np.sum(out ** 2) + eps ** 2)
    return out


def normalize_blocks(histograms, cells_per_block=(3, 3), block_norm="L2-Hys"):
    """Slide a block of cells over the cell grid (step one cell) and normalise each.

    Parameters
    ----------
    histograms : array, shape (n_cells_row, n_cells_col, orientations)
    cells_per_block : (int, int)
    block_norm : {'L1', 'L1-sqrt', 'L2', 'L2-Hys'}

    Returns
    -------
    blocks : array, shape (n_blocks_row, n_blocks_col, b_row, b_col, orientations)
        ``n_blocks_row = n_cells_row - b_row + 1`` (same for columns). Every
        cell appears in up to ``b_row * b_col`` blocks, each time normalised
        by a different block.
    """
    b_row, b_col = check_int_pair(cells_per_block, "cells_per_block")
    check_choice(block_norm, "block_norm", BLOCK_NORMS)
    n_blocks_row = histograms.shape[0] - b_row + 1
    n_blocks_col = histograms.shape[1] - b_col + 1
    out = np.zeros((max(n_blocks_row, 0), max(n_blocks_col, 0), b_row, b_col, histograms.shape[2]))
    for r in range(n_blocks_row):
        for c in range(n_blocks_col):
            out[r, c] = normalize_block(histograms[r:r + b_row, c:c + b_col], block_norm)
    return out


# ----------------------------------------------------------------------------- picture
def _line(r0, c0, r1, c1):
    """Pixels of the digital line from ``(r0, c0)`` to ``(r1, c1)`` (Bresenham), both ends included.

    The same pixels as ``skimage.draw.line``.
    """
    steep = abs(r1 - r0) > abs(c1 - c0)
    r, c = r0, c0
    dr, dc = abs(r1 - r0), abs(c1 - c0)
    sr = 1 if r1 - r0 > 0 else -1
    sc = 1 if c1 - c0 > 0 else -1
    if steep:
        r, c, dr, dc, sr, sc = c, r, dc, dr, sc, sr
    d = 2 * dr - dc
    rows, cols = [], []
    for _ in range(dc):
        rows.append(c if steep else r)
        cols.append(r if steep else c)
        while d >= 0:
            r += sr
            d -= 2 * dc
        c += sc
        d += 2 * dr
    rows.append(r1)
    cols.append(c1)
    return np.array(rows, dtype=np.intp), np.array(cols, dtype=np.intp)


def hog_glyph_image(histograms, pixels_per_cell, image_shape, dtype=np.float64):
    """The HOG picture: per cell and bin, a line through the cell centre.

    The line of bin ``k`` is perpendicular to the bin's middle orientation
    (it shows the *edge*, not the gradient), ``min(pixels_per_cell) // 2 - 1``
    pixels long on each side, and adds the bin's value to the pixels it
    covers. Same picture as ``skimage.feature.hog(..., visualize=True)``.

    Parameters
    ----------
    histograms : array, shape (n_cells_row, n_cells_col, orientations)
    pixels_per_cell : (int, int)
    image_shape : (int, int)
        ``(H, W)`` of the picture.

    Returns
    -------
    picture : array, shape (H, W)
    """
    c_row, c_col = check_int_pair(pixels_per_cell, "pixels_per_cell")
    n_rows, n_cols, orientations = histograms.shape
    radius = min(c_row, c_col) // 2 - 1
    middle = np.pi * (np.arange(orientations) + 0.5) / orientations
    picture = np.zeros(tuple(image_shape[:2]), dtype=dtype)
    centre_r = np.arange(n_rows) * c_row + c_row // 2
    centre_c = np.arange(n_cols) * c_col + c_col // 2
    for k in range(orientations):
        dr, dc = radius * np.sin(middle[k]), radius * np.cos(middle[k])
        # end points exactly as scikit-image rounds them: int(centre -/+ offset)
        r0, r1 = (centre_r - dc).astype(np.intp), (centre_r + dc).astype(np.intp)
        c0, c1 = (centre_c + dr).astype(np.intp), (centre_c - dr).astype(np.intp)
        # a line is the same pixels shifted to each cell centre; only the rounding
        # of the end points can differ between cells, so draw each variant once
        row_ends = np.stack([r0 - centre_r, r1 - centre_r], axis=1)
        col_ends = np.stack([c0 - centre_c, c1 - centre_c], axis=1)
        for a0, a1 in np.unique(row_ends, axis=0):
            rows_sel = centre_r[(row_ends[:, 0] == a0) & (row_ends[:, 1] == a1)]
            hist_rows = histograms[(row_ends[:, 0] == a0) & (row_ends[:, 1] == a1)]
            for b0, b1 in np.unique(col_ends, axis=0):
                col_mask = (col_ends[:, 0] == b0) & (col_ends[:, 1] == b1)
                rr, cc = _line(int(a0), int(b0), int(a1), int(b1))
                rows = rows_sel[:, None, None] + rr[None, None, :]
                cols = centre_c[col_mask][None, :, None] + cc[None, None, :]
                rows, cols = np.broadcast_arrays(rows, cols)
                values = np.broadcast_to(hist_rows[:, col_mask, k][:, :, None], rows.shape)
                picture[rows, cols] += values.astype(dtype)
    return picture


# ----------------------------------------------------------------------------- public
def _float_dtype(dtype):
    """scikit-image's rule: float32 (and float16) stay single, everything else double."""
    return np.float32 if dtype in (np.float16, np.float32) else np.float64


def _prepare_image(image, channel_axis):
    """Validate and bring the image to float ``(H, W)`` or ``(H, W, C)``."""
    if not isinstance(image, np.ndarray):
        image = as_array(image)
    if image.dtype.kind not in "buif":
        raise TypeError(f"image must have a numeric dtype, got {image.dtype}")
    if channel_axis is None:
        if image.ndim != 2:
            raise ValueError(f"image must be a 2-D gray image, got shape {image.shape}; for a colour "
                             "image pass channel_axis=-1 (or the axis that holds the channels)")
    else:
        if isinstance(channel_axis, (bool, np.bool_)) or not isinstance(channel_axis, numbers.Integral):
            raise TypeError(f"channel_axis must be an int or None, got {channel_axis!r}")
        if image.ndim != 3:
            raise ValueError(f"image must be 3-D (two spatial axes and a channel axis) when "
                             f"channel_axis is given, got shape {image.shape}")
        if not -3 <= channel_axis < 3:
            raise ValueError(f"channel_axis must be in [-3, 2] for a 3-D image, got {channel_axis}")
        image = np.moveaxis(image, channel_axis, -1)
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty: shape {image.shape}")
    dtype = _float_dtype(image.dtype)
    image = np.ascontiguousarray(image, dtype=dtype)
    if not np.isfinite(image).all():
        raise ValueError("image contains NaN or infinity")
    return image


def _check_hog_args(image_shape, orientations, pixels_per_cell, cells_per_block, block_norm, binning,
                    impl):
    orientations = check_positive_int(orientations, "orientations")
    cells = check_int_pair(pixels_per_cell, "pixels_per_cell")
    blocks = check_int_pair(cells_per_block, "cells_per_block")
    check_choice(block_norm, "block_norm", BLOCK_NORMS)
    check_choice(binning, "binning", BINNINGS)
    check_choice(impl, "impl", ("auto", "reference", "numba"))
    if cells[0] > image_shape[0] or cells[1] > image_shape[1]:
        raise ValueError(f"pixels_per_cell {cells} is larger than the image ({image_shape[0]} rows, "
                         f"{image_shape[1]} cols): use smaller cells or a larger image")
    n_cells = (image_shape[0] // cells[0], image_shape[1] // cells[1])
    if n_cells[0] < blocks[0] or n_cells[1] < blocks[1]:
        raise ValueError("The input image is too small given the values of pixels_per_cell and "
                         f"cells_per_block. It should have at least: {blocks[0] * cells[0]} rows and "
                         f"{blocks[1] * cells[1]} cols.")
    return orientations, cells, blocks


def hog(image, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(3, 3), block_norm="L2-Hys",
        visualize=False, transform_sqrt=False, feature_vector=True, *, channel_axis=None,
        binning="hard", impl="auto"):
    """Histogram of Oriented Gradients, with the signature and output of ``skimage.feature.hog``.

    Parameters
    ----------
    image : array, shape (H, W) or (H, W, C) with ``channel_axis``
        Any numeric dtype; values are used as they are (a ``uint8`` image is
        on 0..255, as in scikit-image; the block norms make the scale almost
        irrelevant). ``float32`` input gives ``float32`` output.
    orientations : int
        Number of orientation bins over 0..180 degrees.
    pixels_per_cell : (int, int)
    cells_per_block : (int, int)
    block_norm : {'L1', 'L1-sqrt', 'L2', 'L2-Hys'}
    visualize : bool
        Also return the HOG picture (:func:`hog_glyph_image`).
    transform_sqrt : bool
        Square root of the image first (gamma compression; image must be >= 0).
    feature_vector : bool
        Return the descriptor flattened.
    channel_axis : int or None
        The colour axis; per pixel the channel with the strongest gradient is used.
    binning : {'hard', 'bilinear'}
        See :func:`cell_histograms`. ``'hard'`` is scikit-image's; ``'bilinear'``
        is Dalal & Triggs' orientation interpolation (not in scikit-image).
    impl : {'auto', 'reference', 'numba'}
        ``'reference'``: the step-by-step NumPy functions of this module;
        ``'numba'`` / ``'auto'``: the fused kernel of :mod:`scratchface.kernels.hog`.

    Returns
    -------
    features : array, shape (n_blocks_row, n_blocks_col, b_row, b_col, orientations)
        Flattened when ``feature_vector``.
    hog_image : array, shape (H, W)
        Only with ``visualize=True``.

    Raises
    ------
    ValueError
        Wrong rank, NaN / infinity, negative values with ``transform_sqrt``,
        cells larger than the image, an image with fewer cells than a block,
        unknown option strings.

    Notes
    -----
    Gradient convention (scikit-image's): :math:`g_{row} = I[r+1] - I[r-1]`,
    :math:`g_{col} = I[c+1] - I[c-1]`, zero on the border, no smoothing; the
    unsigned orientation :math:`\\operatorname{atan2}(g_{row}, g_{col}) \\bmod 180`
    degrees; cell histograms are per-pixel means. The only difference from
    scikit-image: cell sums in double rather than single precision
    (agreement to about 1e-7).

    References
    ----------
    N. Dalal and B. Triggs, "Histograms of Oriented Gradients for Human
    Detection", CVPR 2005 (3x3 blocks, no Gaussian cell weighting and hard
    binning are scikit-image's departures from it; ``binning='bilinear'``
    restores the orientation interpolation).
    """
    image = _prepare_image(image, channel_axis)
    orientations, cells, blocks = _check_hog_args(image.shape, orientations, pixels_per_cell,
                                                  cells_per_block, block_norm, binning, impl)
    out_dtype = image.dtype
    if transform_sqrt:
        if image.min() < 0:
            raise ValueError("transform_sqrt needs a non-negative image, got negative values")
        image = np.sqrt(image)

    if impl == "reference":
        if image.ndim == 3:
            g_row, g_col = dominant_channel_gradients(image)
        else:
            g_row, g_col = image_gradients(image)
        magnitude, orientation = magnitude_orientation(g_row, g_col)
        histograms = cell_histograms(magnitude, orientation, orientations=orientations,
                                     pixels_per_cell=cells, binning=binning)
        features = normalize_blocks(histograms, blocks, block_norm)
    else:
        from ..kernels import hog as _k  # lazy: numba only when the fast path runs
        histograms = _k.hog_cell_histograms_numba(image if image.ndim == 3 else image[:, :, None],
                                                  cells[0], cells[1], orientations,
                                                  _k.BINNING_CODES[binning],
                                                  1e-6 if image.dtype == np.float32 else 1e-12)
        features = _k.hog_normalize_blocks_numba(histograms, blocks[0], blocks[1],
                                                 _k.NORM_CODES[block_norm], EPS)
    features = features.astype(out_dtype, copy=False)
    if feature_vector:
        features = features.ravel()
    if visualize:
        return features, hog_glyph_image(histograms, cells, image.shape[:2], dtype=out_dtype)
    return features
