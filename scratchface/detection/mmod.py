"""Max-Margin Object Detection: a HOG face detector trained on every window of its photos (King 2015).

The detector is the classical one -- HOG per pyramid level, one linear filter
correlated over the cell grid, NMS (:mod:`scratchface.detection.mmod_scan`) --
and the difference is the training (:mod:`scratchface.detection.mmod_training`):
instead of a window classifier fitted on cropped faces and mined negatives,
the filter is the solution of a structural SVM whose loss is what a detector
is judged by, faces missed and false alarms after NMS, over *all* windows of
the training photos.

* :func:`train_mmod`: photos and boxes in, an :class:`MmodModel` out; the window
  from the boxes' mean aspect ratio (area ``window_area``, dlib's 80 x 80), the
  photos upsampled (at most ``upsample_limit`` times) until the smallest face
  fills about the window, left-right flips added, then :func:`cutting_plane`.
  Nothing is random: the same data gives the same model.
* :func:`detect_faces_mmod`: windows scoring above ``threshold`` after NMS, as
  :class:`~scratchface.detection.detections.Detections`.
* :func:`save_mmod_model` / :func:`load_mmod_model`: ``.npz`` with a SHA-256 check;
  the shipped model (``scratchface/data/mmod_face_detector.npz``) is made by
  ``python -m experiments.mmod_detector`` from dlib's ``training.xml`` alone.

References
----------
D. E. King, "Max-Margin Object Detection", arXiv:1502.00046, 2015.
"""
from __future__ import annotations

import pathlib

import numpy as np

from .._validation import check_choice, check_nonnegative_int, check_positive_float, check_positive_int
from ..data.weights import read_verified_npz, resolve_weights_path, write_reproducible_npz
from ..image import as_array, as_gray, as_rgb
from .detections import Detections
from .mmod_scan import (
    DESCRIPTORS,
    MmodModel,
    box_overlaps,
    greedy_select,
    model_pyramid,
    scan_levels,
    tight_overlap_thresholds,
    window_boxes,
)
from .mmod_training import LossSettings, Sample, cutting_plane, feature_sum, mean_risk

__all__ = ["MMOD_MODEL_PATH", "MMOD_SHA256", "MmodModel", "detect_faces_mmod", "load_mmod_model",
           "prepare_mmod_image", "save_mmod_model", "train_mmod", "training_samples", "window_shape"]

MMOD_MODEL_PATH = str(pathlib.Path(__file__).resolve().parents[1] / "data" / "mmod_face_detector.npz")
MMOD_SHA256 = "9888a6cae15317f1232407464b33d333aa3e1478f875bbf8b0a3cf2663e001d7"  # python -m experiments.mmod_detector --write


def prepare_mmod_image(image, name="image"):
    """Any photo as float on 0..1: ``(H, W)`` if gray, ``(H, W, 3)`` RGB otherwise (RGBA composited on white)."""
    array = as_array(image, name)
    if array.ndim == 2:
        return as_gray(array, name=name)
    return as_rgb(array, dtype=np.float64, name=name) / 255.0


def window_shape(boxes, window_area=6400, cell=8):
    """The window ``(height, width)``: area ``window_area``, the boxes' mean aspect ratio, multiples of ``cell``."""
    boxes = np.concatenate([np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in boxes])
    ratio = float(np.mean((boxes[:, 2] - boxes[:, 0]) / (boxes[:, 3] - boxes[:, 1])))
    height = np.sqrt(window_area / ratio)
    width = window_area / height
    return (max(round(height / cell), 2) * cell, max(round(width / cell), 2) * cell)


def _check_training_data(images, boxes):
    if len(images) != len(boxes):
        raise ValueError(f"images and boxes must have one entry per photo, got {len(images)} and {len(boxes)}")
    if len(images) == 0:
        raise ValueError("images is empty: pass at least one photo with labelled boxes")
    photos, checked = [], []
    for i, (image, b) in enumerate(zip(images, boxes)):
        photo = prepare_mmod_image(image, f"images[{i}]")
        b = np.asarray(b, dtype=np.float64)
        if b.size == 0:
            b = b.reshape(0, 4)
        if b.ndim != 2 or b.shape[1] != 4 or not np.isfinite(b).all():
            raise ValueError(f"boxes[{i}] must be a finite (k, 4) array of (x1, y1, x2, y2), got shape {b.shape}")
        if ((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])).any():
            raise ValueError(f"boxes[{i}] has a box with x2 <= x1 or y2 <= y1: boxes are (x1, y1, x2, y2)")
        height, width = photo.shape[:2]
        outside = (b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 2] > width) | (b[:, 3] > height)
        if outside.any():
            j = int(np.nonzero(outside)[0][0])
            raise ValueError(f"boxes[{i}][{j}] = {b[j].tolist()} lies outside the photo ({width} x {height} "
                             "pixels): crop or drop it")
        photos.append(photo)
        checked.append(b)
    if sum(len(b) for b in checked) == 0:
        raise ValueError("no labelled boxes: MMOD needs at least one face box to learn from")
    return photos, checked


def _upsampling(boxes, window, limit):
    """The fewest doublings (at most ``limit``) after which the smallest box is 0.8 of the window or more."""
    all_boxes = np.concatenate(boxes)
    smallest = float(np.min(np.minimum((all_boxes[:, 2] - all_boxes[:, 0]) / window[1],
                                       (all_boxes[:, 3] - all_boxes[:, 1]) / window[0])))
    times = 0
    while times < limit and smallest * 2 ** times < 0.8:
        times += 1
    return times


def _best_windows(levels, truth, model, i):
    """The (level, r, c) of the window best matching each labelled box; an error for a box none matches."""
    n, m, _ = model.filter_shape
    where = np.zeros((len(truth), 3), dtype=np.int64)
    for j, box in enumerate(truth):
        best = (-1.0, None)
        for index, level in enumerate(levels):
            rows, cols = level.grid.shape[0] - n + 1, level.grid.shape[1] - m + 1
            if rows <= 0 or cols <= 0:
                continue
            cy, cx = (box[1] + box[3]) / 2 / level.to_original_y, (box[0] + box[2]) / 2 / level.to_original_x
            r = int(np.clip(round((cy - model.window[0] / 2) / model.cell), 0, rows - 1))
            c = int(np.clip(round((cx - model.window[1] / 2) / model.cell), 0, cols - 1))
            iou, _ = box_overlaps(window_boxes([r], [c], level, model.window, model.cell), box)
            if iou[0, 0] > best[0]:
                best = (float(iou[0, 0]), (index, r, c))
        if best[0] < 0.5:
            size = f"{box[2] - box[0]:.0f} x {box[3] - box[1]:.0f}"
            raise ValueError(f"boxes[{i}][{j}] ({size} pixels) matches no {model.window[1]} x {model.window[0]} "
                             f"window at IoU 0.5 (best {max(best[0], 0):.2f}) with {model.upsample} upsampling: "
                             "it is smaller than the window (raise upsample_limit or lower window_area) or of "
                             "another shape than the other boxes")
        where[j] = best[1]
    return where


def training_samples(photos, boxes, model, impl="auto"):
    """One :class:`~scratchface.detection.mmod_training.Sample` per photo: its feature pyramid and labelled windows."""
    samples = []
    for i, (photo, truth) in enumerate(zip(photos, boxes)):
        levels = model_pyramid(photo, model, impl)
        where = _best_windows(levels, truth, model, i)
        samples.append(Sample(levels, truth, where, feature_sum(levels, where, model.filter_shape)))
    return samples


def _flipped(photo, boxes):
    width = photo.shape[1]
    return photo[:, ::-1].copy(), np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]],
                                           axis=1)


def train_mmod(images, boxes, *, C=5.0, epsilon=0.01, window_area=6400, cell=8, orientations=9, flips=True,
               upsample_limit=2, scale_step=5 / 6, loss_per_missed_target=1.0, loss_per_false_alarm=1.0,
               descriptor="fhog", max_iter=1000, verbose=False, impl="auto"):
    """Train an MMOD face detector (dlib's ``train_simple_object_detector``, written here).

    Parameters
    ----------
    images : list of photos (paths, PIL images or arrays; gray, RGB or RGBA; uint8 or float)
    boxes : list of (k_i, 4) arrays
        The faces of each photo, ``(x1, y1, x2, y2)`` pixels; every face of the
        photo must be labelled (every other window is a negative).
    C : float
        Regularisation: larger fits the training photos harder (dlib's default 1; 5 in its face example).
    epsilon : float
        The solver stops when the risk gap is below it (dlib's default 0.01).
    window_area, cell, orientations : int
        Window area in pixels (80 x 80 for dlib), cell side (the sliding step), orientation bins.
    flips : bool
        Add the left-right mirrored photos (dlib's ``add_left_right_image_flips``).
    upsample_limit : int
        Upsample all photos (x2 each time, at most this often) until the smallest box is about the window.
    scale_step : float in (0, 1)
        Pyramid step (5/6: dlib's ``pyramid_down<6>``).
    loss_per_missed_target, loss_per_false_alarm : float
        The loss :math:`\\Delta` (dlib's defaults, 1 and 1).
    descriptor : {'fhog', 'hog'}
        The cell descriptor: Felzenszwalb's 31 numbers (dlib's; :mod:`scratchface.detection.fhog_features`)
        or the lecture's scikit-image HOG, a 2 x 2 block per cell position.

    Returns
    -------
    model : MmodModel
    result : CuttingPlaneResult (objective, lower bound, risk, iterations)

    Raises
    ------
    ValueError
        No labelled box, a box outside its photo or inverted, a box no window can
        match (smaller than the window after ``upsample_limit`` upsamplings).
    """
    C = check_positive_float(C, "C")
    epsilon = check_positive_float(epsilon, "epsilon")
    window_area = check_positive_int(window_area, "window_area")
    cell = check_positive_int(cell, "cell")
    orientations = check_positive_int(orientations, "orientations")
    upsample_limit = check_nonnegative_int(upsample_limit, "upsample_limit")
    check_choice(impl, "impl", ("auto", "reference", "numba"))
    check_choice(descriptor, "descriptor", DESCRIPTORS)
    if isinstance(images, (str, pathlib.Path, np.ndarray)):
        raise TypeError("images must be a list of photos (one entry per photo), got a single "
                        f"{type(images).__name__}")
    photos, boxes = _check_training_data(list(images), list(boxes))
    window = window_shape(boxes, window_area, cell)
    iou_threshold, cover_threshold = tight_overlap_thresholds(boxes)
    model = MmodModel(None, 0.0, window, cell, orientations, _upsampling(boxes, window, upsample_limit),
                      float(scale_step), iou_threshold, cover_threshold, 0.0, descriptor)
    n, m, depth = model.filter_shape
    model = model._replace(filter=np.zeros((n, m, depth)))
    if flips:
        mirrored = [_flipped(p, b) for p, b in zip(photos, boxes)]
        photos = photos + [p for p, _ in mirrored]
        boxes = boxes + [b for _, b in mirrored]
    samples = training_samples(photos, boxes, model, impl)
    losses = LossSettings(float(loss_per_missed_target), float(loss_per_false_alarm))
    result = cutting_plane(lambda w: mean_risk(w, samples, model, losses, impl), n * m * depth + 1,
                           C=C, epsilon=epsilon, max_iter=max_iter, verbose=verbose)
    return model._replace(filter=result.w[:-1].reshape(n, m, -1), bias=float(result.w[-1])), result


def detect_faces_mmod(image, *, model=None, threshold=None, upsample=None, impl="auto") -> Detections:
    """Find faces with an MMOD-trained HOG filter.

    Parameters
    ----------
    image : path, PIL image or array (H, W), (H, W, 3) or (H, W, 4); uint8 or float
    model : MmodModel, optional
        Default: the shipped ``mmod_face_detector.npz``.
    threshold : float, optional
        Keep windows scoring above it (default ``model.threshold``, 0: the
        training's decision rule); lower finds more faces and more false alarms.
    upsample : int, optional
        Doublings of the photo before the pyramid (default the model's; each
        halves the smallest face found, at four times the work).
    impl : {'auto', 'reference', 'numba'}

    Returns
    -------
    Detections
        ``boxes`` (n, 4) float64 ``(x1, y1, x2, y2)`` by decreasing score, ``(0, 4)``
        when nothing is found; ``scores`` (n,) the filter's scores (margins);
        ``landmarks`` None.
    """
    model = load_mmod_model() if model is None else model
    if not isinstance(model, MmodModel):
        raise TypeError(f"model must be an MmodModel (see load_mmod_model), got {type(model).__name__}")
    threshold = model.threshold if threshold is None else threshold
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)) \
            or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    if upsample is not None:
        model = model._replace(upsample=check_nonnegative_int(upsample, "upsample"))
    check_choice(impl, "impl", ("auto", "reference", "numba"))
    levels = model_pyramid(prepare_mmod_image(image), model, impl)
    boxes, scores, _ = scan_levels(levels, model, float(threshold), impl)
    order = np.argsort(-scores, kind="stable")
    kept = greedy_select(boxes, order, np.ones(len(boxes), bool), model.iou_threshold, model.cover_threshold, impl)
    return Detections(boxes[kept], scores[kept], None)


_FIELDS = ("window", "cell", "orientations", "upsample", "scale_step", "iou_threshold", "cover_threshold",
           "threshold")


def save_mmod_model(path, model: MmodModel, **metadata) -> str:
    """Write a model as a reproducible ``.npz`` (same model, same bytes); return its SHA-256."""
    arrays = {"filter": np.asarray(model.filter, dtype=np.float32), "bias": np.float64(model.bias)}
    arrays.update({key: np.asarray(getattr(model, key)) for key in _FIELDS + ("descriptor",)})
    arrays.update({f"meta_{k}": np.asarray(v) for k, v in metadata.items()})
    return write_reproducible_npz(arrays, path, deflate=True)


def load_mmod_model(path=None, *, sha256="default") -> MmodModel:
    """Read a model written by :func:`save_mmod_model` (default: the shipped one, its SHA-256 checked)."""
    path, expected = resolve_weights_path(path, MMOD_MODEL_PATH, MMOD_SHA256, sha256, "MMOD face model")
    f = read_verified_npz(path, expected, what="MMOD face model",
                          remedy="Retrain it with python -m experiments.mmod_detector.")
    missing = [k for k in ("filter", "bias") + _FIELDS if k not in f]
    if missing:
        raise ValueError(f"MMOD face model {path} lacks {missing}")
    model = MmodModel(f["filter"].astype(np.float64), float(f["bias"]), tuple(int(v) for v in f["window"]),
                      int(f["cell"]), int(f["orientations"]), int(f["upsample"]), float(f["scale_step"]),
                      float(f["iou_threshold"]), float(f["cover_threshold"]), float(f["threshold"]),
                      str(f["descriptor"]) if "descriptor" in f else "hog")
    if model.filter.shape != model.filter_shape:
        raise ValueError(f"MMOD face model {path}: filter shape {model.filter.shape}, expected {model.filter_shape}")
    return model
