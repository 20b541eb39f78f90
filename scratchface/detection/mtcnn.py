"""MTCNN face detection: an image pyramid, then a cascade of three small CNNs.

The algorithm is that of facenet-pytorch 2.6.0's ``detect_face`` (itself a
port of Zhang et al.'s MATLAB code through David Sandberg's TensorFlow one),
step for step, so that the same trained weights give the same boxes:

1. **Pyramid** (:func:`scratchface.detection.pyramid.pyramid_scales` with a
   12-pixel window, :func:`~scratchface.detection.pyramid.image_pyramid` with
   ``resample='area'``). A face of ``min_face_size`` pixels must become P-Net's
   12x12 cell, so the first scale is ``12 / min_face_size``; each next one is
   ``scale_step`` times the previous (0.709), while the shorter side still holds 12 pixels. Each level is resized with
   *area* interpolation (torch's ``F.interpolate(mode='area')``, i.e. adaptive
   average pooling: output pixel ``i`` averages input rows
   ``floor(i H / h) .. ceil((i + 1) H / h) - 1``), then normalised
   ``(x - 127.5) / 128``.
2. **P-Net stage** (:func:`pnet_stage`). P-Net scores every 12x12 window, every
   2 pixels. Windows with face probability >= ``thresholds[0]`` become boxes in
   the original image; NMS (IoU 0.5) within each scale, then NMS (IoU 0.7)
   across scales; box regression ``x1 + dx1 (x2 - x1)``; squaring.
3. **R-Net stage** (:func:`rnet_stage`). Each box is cut out (clipped to the
   image), area-resized to 24x24 and scored again; keep probability >
   ``thresholds[1]``, NMS 0.7, regression with the ``+ 1`` pixel width
   ``x2 - x1 + 1``, squaring.
4. **O-Net stage** (:func:`onet_stage`). The same at 48x48, probability >
   ``thresholds[2]``; O-Net adds five landmarks; regression, then a last NMS
   that divides the intersection by the *smaller* box ('min', threshold 0.7,
   areas with the ``+ 1`` convention).

All box arithmetic is float32, in the reference's order of operations, so that
results agree with it to float32 rounding (the remaining differences come from
the order in which the convolutions add up their products).

Where this departs from facenet-pytorch: boxes whose clipped crop is empty
(entirely outside the image) are dropped (facenet-pytorch would misalign its
batch), and so are boxes that O-Net's regression turns inside out (x2 < x1);
no face gives empty arrays of stable shapes instead of ``None``; the image may
be gray, RGBA, uint8 or float (see :func:`scratchface.image.as_rgb`).

References
----------
K. Zhang, Z. Zhang, Z. Li, Y. Qiao, "Joint Face Detection and Alignment Using
Multitask Cascaded Convolutional Networks", IEEE SPL 23(10), 2016.
T. Esler, facenet-pytorch 2.6.0, ``models/utils/detect_face.py`` (MIT).
"""
from __future__ import annotations

import contextlib
import numbers
import time
from typing import NamedTuple

import numpy as np

from .._validation import check_choice, check_in_range
from ..image import as_rgb
from ..models.mtcnn_nets import (
    load_mtcnn_weights,
    onet_forward,
    pnet_forward,
    rnet_forward,
)
from .detections import Detections, empty_detections
from .nms import nms
from .pyramid import area_resize_regions_nchw, level_shape, pyramid_scales, summed_area_table

__all__ = [
    "CELL_SIZE",
    "CELL_STRIDE",
    "Candidates",
    "crop_boxes",
    "detect_faces",
    "detect_faces_batch",
    "normalize_pixels",
    "onet_stage",
    "pnet_stage",
    "rnet_stage",
    "square_boxes",
]

CELL_SIZE = 12          #: P-Net's window, pixels
CELL_STRIDE = 2         #: P-Net's output step, pixels (its one 2x2 pooling)
RNET_SIZE = 24          #: R-Net input, pixels
ONET_SIZE = 48          #: O-Net input, pixels
NMS_WITHIN_SCALE = 0.5  #: P-Net, within each pyramid level (IoU)
NMS_ACROSS_SCALES = 0.7  #: P-Net, all levels together (IoU)
NMS_RNET = 0.7          #: after R-Net (IoU)
NMS_ONET_MIN = 0.7      #: after O-Net: intersection over the smaller area
_F32 = np.float32


class Candidates(NamedTuple):
    """Boxes that passed a stage: ``boxes`` (n, 4) float32 (x1, y1, x2, y2), ``scores`` (n,) probabilities."""
    boxes: np.ndarray
    scores: np.ndarray

    @property
    def probs(self) -> np.ndarray:
        """The old name of :attr:`scores` (read-only)."""
        return self.scores


def _empty_candidates():
    return Candidates(np.zeros((0, 4), _F32), np.zeros((0,), _F32))


def _empty_detections():
    return empty_detections(_F32, landmarks=True)


# ----------------------------------------------------------------------------- arguments

def _check_min_face_size(min_face_size):
    if isinstance(min_face_size, (bool, np.bool_)) or not isinstance(min_face_size, numbers.Real):
        raise TypeError(f"min_face_size must be a number of pixels, got {min_face_size!r}")
    if not np.isfinite(min_face_size) or min_face_size < CELL_SIZE:
        raise ValueError(f"min_face_size must be at least {CELL_SIZE} pixels (P-Net's cell), "
                         f"got {min_face_size}")
    return float(min_face_size)


def _check_scale_step(scale_step):
    return check_in_range(scale_step, "scale_step", 0.0, 1.0, inclusive=(False, False))


def _check_threshold(value, name):
    return check_in_range(value, name, 0.0, 1.0, inclusive=(False, False))


def _check_thresholds(thresholds):
    if isinstance(thresholds, (str, bytes)) or not hasattr(thresholds, "__len__") or len(thresholds) != 3:
        raise TypeError(f"thresholds must be three probabilities (P-Net, R-Net, O-Net), got {thresholds!r}")
    return tuple(_check_threshold(t, f"thresholds[{i}]") for i, t in enumerate(thresholds))


# ----------------------------------------------------------------------------- pixels

_PIXEL_SHIFT, _PIXEL_SCALE = 127.5, 0.0078125  # (x - 127.5) / 128


def normalize_pixels(x):
    """MTCNN's input normalisation ``(x - 127.5) / 128`` (written as ``* 0.0078125``), float32."""
    return (np.asarray(x, _F32) - _F32(_PIXEL_SHIFT)) * _F32(_PIXEL_SCALE)


# ----------------------------------------------------------------------------- the prepared image

class _Prepared(NamedTuple):
    rgb: np.ndarray  # (H, W, 3) float32, 0..255
    sat: np.ndarray  # (H + 1, W + 1, 3) float64 summed-area table


def _prepare(image):
    if isinstance(image, _Prepared):
        return image
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        rgb = image.astype(_F32)  # the common case, exactly what as_rgb gives, without the detour
    else:
        rgb = as_rgb(image, dtype=_F32)
    return _Prepared(rgb, summed_area_table(rgb))


@contextlib.contextmanager
def _timed(timings, key):
    if timings is None:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - start


# ----------------------------------------------------------------------------- box helpers

def square_boxes(boxes):
    """Grow each box to a square around its centre, side ``max(w, h)`` ("rerec"), float32."""
    boxes = np.array(boxes, dtype=_F32).reshape(-1, 4)
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    boxes[:, 0] = boxes[:, 0] + w * _F32(0.5) - side * _F32(0.5)
    boxes[:, 1] = boxes[:, 1] + h * _F32(0.5) - side * _F32(0.5)
    boxes[:, 2] = boxes[:, 0] + side
    boxes[:, 3] = boxes[:, 1] + side
    return boxes


def _regress(boxes, offsets, plus_one):
    """Box regression: each side moves by its offset times the box width or height."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    if plus_one:  # R-Net and O-Net count the pixels (x2 - x1 + 1), P-Net does not
        w = w + _F32(1)
        h = h + _F32(1)
    return np.stack([boxes[:, 0] + offsets[:, 0] * w, boxes[:, 1] + offsets[:, 1] * h,
                     boxes[:, 2] + offsets[:, 2] * w, boxes[:, 3] + offsets[:, 3] * h], axis=1)


def _crop_regions(boxes, height, width):
    """Integer crop (top, left, rows, cols) of each box, clipped to the image, and a validity mask.

    As facenet-pytorch's ``pad``: truncate towards zero, clip x1, y1 to >= 1 and
    x2, y2 to <= the image size, then take rows ``y1 - 1 .. y2 - 1``.
    """
    b = np.trunc(boxes).astype(np.int64)
    x1, y1 = np.maximum(b[:, 0], 1), np.maximum(b[:, 1], 1)
    x2, y2 = np.minimum(b[:, 2], width), np.minimum(b[:, 3], height)
    top, left = y1 - 1, x1 - 1
    rows, cols = y2 - top, x2 - left
    valid = (rows > 0) & (cols > 0) & (top < height) & (left < width)
    return top, left, rows, cols, valid


def crop_boxes(image, boxes, size):
    """Cut each box out of the image and area-resize it to ``size x size``, normalised NCHW.

    Returns
    -------
    crops : float32 array, shape (m, 3, size, size)
        ``(pixel - 127.5) / 128`` of the clipped crops of the valid boxes.
    valid : bool array, shape (n,)
        False for a box whose clipped crop is empty (it lies outside the image).
    """
    prep = _prepare(image)
    height, width = prep.rgb.shape[:2]
    boxes = np.asarray(boxes, _F32).reshape(-1, 4)
    top, left, rows, cols, valid = _crop_regions(boxes, height, width)
    crops = area_resize_regions_nchw(prep.sat, top[valid], left[valid], rows[valid], cols[valid], size, size,
                                     shift=_PIXEL_SHIFT, scale=_PIXEL_SCALE)
    return crops, valid


# ----------------------------------------------------------------------------- stages

def _pnet_boxes(probs, offsets, scale, threshold):
    """Windows of one pyramid level with face probability >= threshold, in image coordinates.

    Window (row r, column c) of the level covers level pixels ``2c .. 2c + 11``;
    in the image: ``x1 = floor((2c + 1) / scale)``, ``x2 = floor((2c + 12) / scale)``
    (the MATLAB code's 1-based pixel convention, kept by every port).
    """
    face = probs[0, 1]
    rows, cols = np.nonzero(face >= _F32(threshold))
    corner = np.stack([cols, rows], axis=1).astype(_F32)  # (x, y) of each window
    scale32 = _F32(scale)
    top_left = np.floor((CELL_STRIDE * corner + _F32(1)) / scale32)
    bottom_right = np.floor((CELL_STRIDE * corner + _F32(CELL_SIZE)) / scale32)
    boxes = np.concatenate([top_left, bottom_right], axis=1)
    return boxes, face[rows, cols], offsets[0][:, rows, cols].T


def _pnet_stage(prep, scales, threshold, weights, timings=None):
    height, width = prep.rgb.shape[:2]
    zero = np.array([0])
    all_boxes, all_probs, all_offsets = [], [], []
    for scale in scales:
        out_h, out_w = level_shape(height, width, scale, "area")
        with _timed(timings, "pyramid"):
            x = area_resize_regions_nchw(prep.sat, zero, zero, np.array([height]), np.array([width]), out_h, out_w,
                                         shift=_PIXEL_SHIFT, scale=_PIXEL_SCALE)
        with _timed(timings, "pnet"):
            out = pnet_forward(x, weights)
        boxes, probs, offsets = _pnet_boxes(out.probs, out.offsets, scale, threshold)
        with _timed(timings, "nms"):
            keep = nms(boxes, probs, NMS_WITHIN_SCALE) if len(boxes) else np.zeros(0, np.int64)
        all_boxes.append(boxes[keep])
        all_probs.append(probs[keep])
        all_offsets.append(offsets[keep])
    if not all_boxes or sum(len(b) for b in all_boxes) == 0:
        return _empty_candidates()
    boxes, probs, offsets = (np.concatenate(a) for a in (all_boxes, all_probs, all_offsets))
    with _timed(timings, "nms"):
        keep = nms(boxes, probs, NMS_ACROSS_SCALES)
    boxes = square_boxes(_regress(boxes[keep], offsets[keep], plus_one=False))
    return Candidates(boxes, probs[keep])


def _rnet_stage(prep, boxes, threshold, weights, timings=None):
    if len(boxes) == 0:
        return _empty_candidates()
    with _timed(timings, "rnet"):
        crops, valid = crop_boxes(prep, boxes, RNET_SIZE)
        boxes = boxes[valid]
        out = rnet_forward(crops, weights)
    probs = out.probs[:, 1]
    passed = probs > _F32(threshold)
    boxes, probs, offsets = boxes[passed], probs[passed], out.offsets[passed]
    if len(boxes) == 0:
        return _empty_candidates()
    with _timed(timings, "nms"):
        keep = nms(boxes, probs, NMS_RNET)
    boxes = square_boxes(_regress(boxes[keep], offsets[keep], plus_one=True))
    return Candidates(boxes, probs[keep])


def _nms_min_plus_one(boxes, probs, threshold):
    """MTCNN's last NMS: overlap = intersection / smaller area, both with the +1 pixel convention."""
    return nms(boxes, probs, threshold, mode="min", offset=1)


def _onet_stage(prep, boxes, threshold, weights, timings=None):
    if len(boxes) == 0:
        return _empty_detections()
    with _timed(timings, "onet"):
        crops, valid = crop_boxes(prep, boxes, ONET_SIZE)
        boxes = boxes[valid]
        out = onet_forward(crops, weights)
    probs = out.probs[:, 1]
    passed = probs > _F32(threshold)
    boxes, probs, offsets, points = boxes[passed], probs[passed], out.offsets[passed], out.landmarks[passed]
    if len(boxes) == 0:
        return _empty_detections()
    # Landmarks are fractions of the (unregressed) box, counted in pixels (+ 1), 1-based (- 1).
    w = (boxes[:, 2] - boxes[:, 0] + _F32(1))[:, None]
    h = (boxes[:, 3] - boxes[:, 1] + _F32(1))[:, None]
    xs = w * points[:, :5] + boxes[:, 0:1] - _F32(1)
    ys = h * points[:, 5:] + boxes[:, 1:2] - _F32(1)
    landmarks = np.stack([xs, ys], axis=2)
    boxes = _regress(boxes, offsets, plus_one=True)
    proper = (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])  # regression may turn a box inside out
    boxes, probs, landmarks = boxes[proper], probs[proper], landmarks[proper]
    with _timed(timings, "nms"):
        keep = _nms_min_plus_one(boxes, probs, NMS_ONET_MIN)
    return Detections(boxes[keep], probs[keep], landmarks[keep])


def _one_thread_pool():
    """BLAS on the calling thread while the pipeline runs: Numba's threads are the only pool.

    Every entry point uses it, so that the stages called one by one give the
    boxes of ``detect_faces`` bit for bit (OpenBLAS's sums may depend on its
    thread count).
    """
    from ..kernels._numba import blas_single_threaded  # noqa: PLC0415  (imports Numba: lazily)
    return blas_single_threaded()


def _weights_or_default(weights):
    return load_mtcnn_weights() if weights is None else weights


def pnet_stage(image, scales, threshold=0.6, *, weights=None) -> Candidates:
    """Stage 1: P-Net over the pyramid; NMS per level and across levels; regression; squaring.

    Parameters
    ----------
    image : array or path
        Any image :func:`scratchface.image.as_rgb` accepts.
    scales : list of float
        From :func:`scratchface.detection.pyramid.pyramid_scales` (window 12).
    threshold : float in (0, 1)
        Keep windows with face probability ``>= threshold``.
    weights : dict, optional
        From :func:`scratchface.models.mtcnn_nets.load_mtcnn_weights`.

    Returns
    -------
    Candidates
        Square boxes (n, 4) and their P-Net probabilities (n,).
    """
    threshold = _check_threshold(threshold, "threshold")
    with _one_thread_pool():
        return _pnet_stage(_prepare(image), list(scales), threshold, _weights_or_default(weights))


def rnet_stage(image, boxes, threshold=0.7, *, weights=None) -> Candidates:
    """Stage 2: R-Net on 24x24 crops of ``boxes``; threshold; NMS 0.7; regression; squaring."""
    threshold = _check_threshold(threshold, "threshold")
    boxes = np.asarray(boxes, _F32).reshape(-1, 4)
    with _one_thread_pool():
        return _rnet_stage(_prepare(image), boxes, threshold, _weights_or_default(weights))


def onet_stage(image, boxes, threshold=0.7, *, weights=None) -> Detections:
    """Stage 3: O-Net on 48x48 crops; threshold; landmarks; regression; 'min' NMS 0.7.

    Returns the detections by decreasing probability (``detect_faces`` then
    orders them largest first).
    """
    threshold = _check_threshold(threshold, "threshold")
    boxes = np.asarray(boxes, _F32).reshape(-1, 4)
    with _one_thread_pool():
        return _onet_stage(_prepare(image), boxes, threshold, _weights_or_default(weights))


# ----------------------------------------------------------------------------- public API

def _order(det, sort_by):
    if len(det.boxes) < 2:
        return det
    if sort_by == "area":  # facenet-pytorch's select_largest=True order
        b = det.boxes
        order = np.argsort((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[::-1]
    else:
        order = np.argsort(-det.scores, kind="stable")
    return Detections(*(a[order] for a in det))


def detect_faces(image, min_face_size=20, thresholds=(0.6, 0.7, 0.7), scale_step=0.709, *,
                 sort_by="area", weights=None, timings=None) -> Detections:
    """Find faces with MTCNN: boxes, probabilities and five landmarks.

    Parameters
    ----------
    image : array or path
        Gray ``(H, W)``, RGB ``(H, W, 3)`` or RGBA ``(H, W, 4)``; uint8, uint16 or
        float (see :func:`scratchface.image.as_rgb`), or a file path.
    min_face_size : float >= 12
        Smallest face searched for, in pixels.
    thresholds : three floats in (0, 1)
        Face-probability thresholds of P-Net, R-Net and O-Net.
    scale_step : float in (0, 1)
        Ratio of successive pyramid scales (:func:`scratchface.detection.pyramid.pyramid_scales`).
    sort_by : {'area', 'probability'}
        Order of the faces: largest box first (as facenet-pytorch) or most probable first.
    weights : dict, optional
        Other weights in the layout of :func:`scratchface.models.mtcnn_nets.load_mtcnn_weights`.
    timings : dict, optional
        If given, seconds spent are added under 'pyramid', 'pnet', 'rnet',
        'onet' (crops and nets) and 'nms'.

    Returns
    -------
    Detections
        ``boxes`` (n, 4), ``scores`` (n,) O-Net face probabilities (also readable under
        their old name ``probs``), ``landmarks`` (n, 5, 2), float32; ``n = 0``
        when no face is found or the image is smaller than 12 pixels at the first scale.

    Raises
    ------
    ValueError
        NaN pixels, ``min_face_size < 12``, a threshold or ``scale_step``
        outside (0, 1), an image of unsupported shape.

    Notes
    -----
    Threads: the whole detection runs with BLAS on the calling thread
    (threadpoolctl; ``scratchface.kernels._numba.blas_single_threaded``),
    so that the only thread pool is Numba's (``numba.set_num_threads``). The
    matrix products come between Numba's parallel loops (im2col, PReLU, pooling,
    resizing); with OpenBLAS's threads as well, the two pools wait for each
    other on the same cores (measured: docs/results.md, #16;
    ``python benchmarks/bench_mtcnn.py --blas-free`` times the old way).

    Examples
    --------
    >>> from skimage.data import astronaut
    >>> faces = detect_faces(astronaut())
    >>> faces.boxes.shape, faces.landmarks.shape
    ((1, 4), (1, 5, 2))
    """
    min_face_size = _check_min_face_size(min_face_size)
    thresholds = _check_thresholds(thresholds)
    scale_step = _check_scale_step(scale_step)
    check_choice(sort_by, "sort_by", ("area", "probability"))
    weights = _weights_or_default(weights)
    with _one_thread_pool():  # Numba's (see Notes)
        with _timed(timings, "pyramid"):
            prep = _prepare(image)
        height, width = prep.rgb.shape[:2]
        scales = pyramid_scales((height, width), CELL_SIZE, min_face_size=min_face_size, scale_step=scale_step)
        stage1 = _pnet_stage(prep, scales, thresholds[0], weights, timings)
        stage2 = _rnet_stage(prep, stage1.boxes, thresholds[1], weights, timings)
        stage3 = _onet_stage(prep, stage2.boxes, thresholds[2], weights, timings)
    return _order(stage3, sort_by)


def detect_faces_batch(images, min_face_size=20, thresholds=(0.6, 0.7, 0.7), scale_step=0.709, *,
                       sort_by="area", weights=None):
    """:func:`detect_faces` on each of many images (any sizes): a list of :class:`Detections`.

    Arguments are checked once, before any image is processed.
    """
    if isinstance(images, np.ndarray) and images.ndim == 4:
        images = list(images)
    if not isinstance(images, (list, tuple)):
        raise TypeError(f"images must be a list of images or an (N, H, W, C) array, got {type(images).__name__}")
    kwargs = {"min_face_size": _check_min_face_size(min_face_size),
              "thresholds": _check_thresholds(thresholds),
              "scale_step": _check_scale_step(scale_step),
              "sort_by": check_choice(sort_by, "sort_by", ("area", "probability")),
              "weights": _weights_or_default(weights)}
    return [detect_faces(image, **kwargs) for image in images]
