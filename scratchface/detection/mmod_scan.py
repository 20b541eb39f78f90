"""Scanning for Max-Margin Object Detection: one HOG grid per pyramid level, a linear filter correlated over it.

The detector of :mod:`scratchface.detection.mmod` scores every window of every
pyramid level with one linear filter. Done naively, each window would get its
own HOG; here (as in dlib's ``scan_fhog_pyramid``):

1. Each pyramid level (:func:`feature_pyramid`; levels ``upsample * step^k``,
   dlib's ``pyramid_down<6>`` is ``step = 5/6``, each resized from the one above)
   gets **one** feature grid (:func:`feature_grid`): by default FHOG
   (:mod:`scratchface.detection.fhog_features`, dlib's descriptor: 31 numbers per
   ``cell x cell`` cell, each cell seen through the normalisations of the four
   blocks around it), a ``D``-number descriptor per cell.
2. A window of ``n x m`` cells (``window / cell`` per side) is scored by the
   filter ``F`` of shape ``(n, m, D)``:

   .. math:: s(r, c) = \\sum_{u < n,\\, v < m} \\langle G[r + u, c + v], F[u, v] \\rangle - b

   a correlation of the grid with the filter (:func:`correlate_cells`), so a
   cell's descriptor is computed once and read by every window that covers it.
   The fast path keeps the grid feature-first in float32 (:func:`feature_planes`),
   as dlib keeps its FHOG planes.
3. Window ``(r, c)`` of a level is the box ``(c cell, r cell)`` to
   ``(c cell + W, r cell + H)`` in level pixels (:func:`window_boxes`), mapped
   back to the photo with the level's factors.
4. Overlapping windows are thinned by greedy NMS (:func:`greedy_select`) with
   dlib's overlap test: two boxes overlap when their IoU is above
   ``iou_threshold`` *or* their intersection covers more than
   ``cover_threshold`` of either box. The thresholds are the tightest that
   keep every pair of labelled boxes apart (:func:`tight_overlap_thresholds`,
   dlib's ``find_tight_overlap_tester``).

The other descriptor (``descriptor='hog'``, the first version's): the project's
scikit-image-equal HOG (:func:`scratchface.detection.hog.hog`, hard orientation
binning) read at the cell level, the L2-Hys normalised 2 x 2 block starting at
each cell position, 36 numbers; the filter then has ``window / cell - 1`` positions
per side. Trained the same way it found 24/25 of testing.xml's faces at precision
0.96, against FHOG's 25/25 at 1.0 (docs/results.md "MMOD").
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_choice
from .fhog_features import fhog, fhog_depth
from .hog import hog
from .pyramid import _axis_weights, level_shape, pyramid_scales, resize

__all__ = ["FeatureLevel", "MmodModel", "box_overlaps", "correlate_cells", "correlate_cells_reference", "feature_grid",
           "feature_planes", "feature_pyramid", "greedy_select", "greedy_select_reference", "model_pyramid", "scan_levels",
           "tight_overlap_thresholds", "window_boxes"]

BLOCK = 2  #: cells per block side of the descriptor
BINNING = "hard"  #: each pixel votes into one orientation bin (scikit-image's HOG default)
DESCRIPTORS = ("fhog", "hog")  #: Felzenszwalb's 31 numbers per cell; scikit-image's HOG blocks per cell position


class FeatureLevel(NamedTuple):
    """The HOG grid of one pyramid level and the factors back to the photo."""
    grid: np.ndarray        #: (R, C, D) float64, descriptor per cell position
    to_original_y: float    #: level row y is row ``y * to_original_y`` of the photo
    to_original_x: float
    planes: np.ndarray = None  #: (D, R, C) float32 copy for the fast correlation (None: made when needed)


def feature_planes(grid):
    """The grid feature-first, ``(D, R, C)`` float32: what the fast correlation reads."""
    return np.ascontiguousarray(np.moveaxis(grid, -1, 0), dtype=np.float32)


class MmodModel(NamedTuple):
    """A linear window filter and the scanning parameters it was trained with."""
    filter: np.ndarray           #: (n, m, D) weights, one D-vector per cell position of the window
    bias: float                  #: ``b``: a window's score is ``<F, features> - b``
    window: tuple = (80, 80)     #: window (height, width) in pixels, multiples of ``cell``
    cell: int = 8                #: pixels per cell (the sliding step)
    orientations: int = 9
    upsample: int = 0            #: the first level is the photo upsampled 2 ** upsample times
    scale_step: float = 5 / 6    #: ratio of successive pyramid levels (dlib's pyramid_down<6>)
    iou_threshold: float = 0.0   #: NMS: boxes overlap above this IoU ...
    cover_threshold: float = 0.0  #: ... or when the intersection covers more than this of either box
    threshold: float = 0.0       #: default score threshold of detection
    descriptor: str = "hog"      #: 'fhog' (one 3 o + 4 vector per cell) or 'hog' (a 2 x 2 block per cell position)

    @property
    def filter_shape(self):
        if self.descriptor == "fhog":
            return self.window[0] // self.cell, self.window[1] // self.cell, fhog_depth(self.orientations)
        return (self.window[0] // self.cell - BLOCK + 1, self.window[1] // self.cell - BLOCK + 1,
                BLOCK * BLOCK * self.orientations)


def feature_grid(image, *, cell=8, orientations=9, descriptor="hog", impl="auto"):
    """The descriptor at every cell position of an image.

    Parameters
    ----------
    image : float array, shape (H, W) or (H, W, 3)
        Gray, or RGB (per pixel the channel of largest gradient, as dlib does).
    descriptor : {'hog', 'fhog'}
        'fhog': :func:`scratchface.detection.fhog_features.fhog`, 3 o + 4 numbers per cell,
        shape (H // cell, W // cell, 3 o + 4); 'hog': the L2-Hys normalised 2 x 2
        block of cells starting at each cell, shape (H // cell - 1, W // cell - 1, 4 o).

    Returns
    -------
    grid : array, shape (R, C, D): float64, float32 for 'fhog' unless ``impl='reference'``
    """
    check_choice(descriptor, "descriptor", DESCRIPTORS)
    if descriptor == "fhog":   # the fast path's grid is float32, a view of the planes the correlation reads
        return fhog(image, cell, orientations, impl, dtype=np.float64 if impl == "reference" else np.float32)
    blocks = hog(image, orientations=orientations, pixels_per_cell=(cell, cell),
                 cells_per_block=(BLOCK, BLOCK), block_norm="L2-Hys", binning=BINNING,
                 feature_vector=False, channel_axis=-1 if image.ndim == 3 else None, impl=impl)
    return np.ascontiguousarray(blocks.reshape(blocks.shape[0], blocks.shape[1], -1), dtype=np.float64)


def feature_pyramid(image, window, *, cell=8, orientations=9, upsample=0, scale_step=5 / 6, descriptor="hog",
                    impl="auto"):
    """One :func:`feature_grid` per pyramid level, levels that hold no window left out.

    Parameters
    ----------
    image : float array, shape (H, W) or (H, W, 3)
    window : (int, int)
        Window ``(height, width)`` in pixels, multiples of ``cell``.
    upsample : int
        The first level is the photo upsampled ``2 ** upsample`` times (dlib's
        ``upsample_limit`` / ``upsample_num_times``); each next level is the one
        above it resized by ``scale_step`` (bilinear, anti-aliased:
        :func:`scratchface.detection.pyramid.resize`).
    scale_step : float in (0, 1)
        Ratio of successive levels.

    Returns
    -------
    list of FeatureLevel, largest level first
    """
    side = max(window)
    scales = pyramid_scales(image.shape, side, min_face_size=side / 2 ** upsample, scale_step=scale_step)
    height, width = image.shape[:2]
    # the fast path's levels are float32 (FHOG's float32 grid does not see the difference)
    out, current = [], image if impl == "reference" or descriptor == "hog" else np.asarray(image, np.float32)
    for scale in scales:
        # each level resized from the one above it (as dlib's pyramid_down): a 5/6 step blurs by
        # sigma 0.1 only, where resizing the photo itself would blur the small levels with wide kernels
        rows, cols = level_shape(height, width, scale)
        if current.shape[:2] != (rows, cols):
            # the blur's sigma, (ratio - 1) / 2, is 0.1 at a 5/6 step: below 0.125 SciPy's Gaussian
            # (truncated at 4 sigma) is the single tap 1, so it is skipped, with the same result
            blur = current.shape[0] / rows > 1.25 or current.shape[1] / cols > 1.25
            current = _resize_level(current, (rows, cols), blur, impl)
        if rows < window[0] or cols < window[1]:
            continue
        grid = feature_grid(current, cell=cell, orientations=orientations, descriptor=descriptor, impl=impl)
        out.append(FeatureLevel(grid, height / rows, width / cols,
                                None if impl == "reference" else feature_planes(grid)))
    return out


def _resize_level(image, shape, blur, impl):
    """:func:`scratchface.detection.pyramid.resize`; without blur by the Numba kernel unless reference.

    The kernel keeps the image's dtype (bitwise equal to ``resize`` on float64; the fast pyramid is float32).
    """
    if blur or impl == "reference":
        return resize(image, shape, anti_aliasing=blur)
    from ..kernels import mmod as _k  # lazy: numba only when the fast path runs
    plane = image.ndim == 2
    source = np.ascontiguousarray(image[:, :, None] if plane else image)
    out = _k.resize_bilinear_numba(source, *_axis_weights(image.shape[0], shape[0]),
                                   *_axis_weights(image.shape[1], shape[1]))
    return out[:, :, 0] if plane else out


def model_pyramid(image, model: MmodModel, impl="auto"):
    """:func:`feature_pyramid` with the model's window, cell, orientations, upsampling and step."""
    return feature_pyramid(image, model.window, cell=model.cell, orientations=model.orientations,
                           upsample=model.upsample, scale_step=model.scale_step, descriptor=model.descriptor,
                           impl=impl)


def scan_levels(levels, model: MmodModel, min_score, impl="auto"):
    """Every window scoring above ``min_score``: boxes, scores and where each window lies.

    Returns
    -------
    boxes : (k, 4) photo pixels; scores : (k,) ``<F, features> - b``;
    where : (k, 3) int64 rows ``(level, r, c)``
    """
    boxes, scores, where = [np.zeros((0, 4))], [np.zeros(0)], [np.zeros((0, 3), np.int64)]
    for index, level in enumerate(levels):
        response = correlate_cells(level.grid, model.filter, impl, planes=level.planes) - model.bias
        rows, cols = np.nonzero(response > min_score)
        boxes.append(window_boxes(rows, cols, level, model.window, model.cell))
        scores.append(response[rows, cols])
        where.append(np.stack([np.full_like(rows, index), rows, cols], axis=1).astype(np.int64))
    return np.concatenate(boxes), np.concatenate(scores), np.concatenate(where)


def correlate_cells_reference(grid, filt):
    """The filter's response at every window position, one filter cell at a time.

    .. math:: out[r, c] = \\sum_{u, v} \\langle G[r + u, c + v], F[u, v] \\rangle

    Parameters
    ----------
    grid : array, shape (R, C, D)
    filt : array, shape (n, m, D)

    Returns
    -------
    out : float64 array, shape (R - n + 1, C - m + 1); empty when the grid is smaller than the filter
    """
    n, m = filt.shape[:2]
    rows, cols = grid.shape[0] - n + 1, grid.shape[1] - m + 1
    if rows <= 0 or cols <= 0:
        return np.zeros((max(rows, 0), max(cols, 0)))
    out = np.zeros((rows, cols))
    for u in range(n):
        for v in range(m):
            out += grid[u:u + rows, v:v + cols] @ filt[u, v]
    return out


def correlate_cells(grid, filt, impl="auto", planes=None):
    """:func:`correlate_cells_reference`, by the float32 Numba kernel unless ``impl='reference'``.

    ``planes``: the grid as :func:`feature_planes` gives it, if already made (a pyramid keeps
    one per level); the fast result agrees with the reference to float32 precision.
    """
    check_choice(impl, "impl", ("auto", "reference", "numba"))
    if grid.shape[0] < filt.shape[0] or grid.shape[1] < filt.shape[1]:
        return correlate_cells_reference(grid, filt)
    if impl == "reference":
        return correlate_cells_reference(grid, filt)
    from ..kernels import mmod as _k  # lazy: numba only when the fast path runs
    planes = feature_planes(grid) if planes is None else planes
    return _k.correlate_planes_numba(planes, np.ascontiguousarray(filt, dtype=np.float32)).astype(np.float64)


def window_boxes(rows, cols, level, window, cell):
    """Photo-pixel boxes ``(x1, y1, x2, y2)`` of the windows at cell positions ``(rows, cols)`` of a level."""
    rows = np.asarray(rows, dtype=np.float64)
    cols = np.asarray(cols, dtype=np.float64)
    y1, x1 = rows * cell, cols * cell
    return np.stack([x1 * level.to_original_x, y1 * level.to_original_y,
                     (x1 + window[1]) * level.to_original_x, (y1 + window[0]) * level.to_original_y],
                    axis=-1).reshape(-1, 4)


def box_overlaps(boxes_a, boxes_b):
    """IoU and coverage ``inter / min(area)`` of every pair, each ``(len(a), len(b))``."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    iou = inter / (area_a[:, None] + area_b[None, :] - inter)
    cover = inter / np.minimum(area_a[:, None], area_b[None, :])
    return iou, cover


def tight_overlap_thresholds(boxes_per_image):
    """The tightest ``(iou_threshold, cover_threshold)`` under which no two labelled boxes overlap.

    The largest IoU and the largest coverage over all pairs of boxes of the
    same photo (0 when no two boxes touch): NMS with these never suppresses a
    labelled face next to another one.
    """
    iou_max, cover_max = 0.0, 0.0
    for boxes in boxes_per_image:
        if len(boxes) < 2:
            continue
        iou, cover = box_overlaps(boxes, boxes)
        np.fill_diagonal(iou, 0.0)
        np.fill_diagonal(cover, 0.0)
        iou_max, cover_max = max(iou_max, float(iou.max())), max(cover_max, float(cover.max()))
    return iou_max, cover_max


def greedy_select_reference(boxes, order, eligible, iou_threshold, cover_threshold):
    """Greedy NMS over the eligible boxes: walk ``order``, keep a box unless it overlaps a kept one.

    Parameters
    ----------
    boxes : float array, shape (n, 4)
    order : int array, shape (n,)
        The visiting order (by decreasing score).
    eligible : bool array, shape (n,)
        Boxes that may be kept; the others are skipped (and so suppress nothing).
    iou_threshold, cover_threshold : float
        A box overlaps a kept one when the IoU is above ``iou_threshold`` or the
        intersection is above ``cover_threshold`` of either area.

    Returns
    -------
    kept : int64 array, the kept indices in visiting order
    """
    kept = []
    for i in order:
        if not eligible[i]:
            continue
        if kept:
            iou, cover = box_overlaps(boxes[i], boxes[kept])
            if (iou > iou_threshold).any() or (cover > cover_threshold).any():
                continue
        kept.append(int(i))
    return np.asarray(kept, dtype=np.int64)


def greedy_select(boxes, order, eligible, iou_threshold, cover_threshold, impl="auto"):
    """:func:`greedy_select_reference`, by the Numba kernel unless ``impl='reference'``."""
    check_choice(impl, "impl", ("auto", "reference", "numba"))
    if impl == "reference":
        return greedy_select_reference(boxes, order, eligible, iou_threshold, cover_threshold)
    from ..kernels import mmod as _k  # lazy: numba only when the fast path runs
    return _k.greedy_select_numba(np.ascontiguousarray(boxes, dtype=np.float64),
                                  np.ascontiguousarray(order, dtype=np.int64),
                                  np.ascontiguousarray(eligible, dtype=np.bool_),
                                  float(iou_threshold), float(cover_threshold))
