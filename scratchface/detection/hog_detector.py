"""The classical face detector: HOG features, a linear SVM window score, a pyramid, NMS.

Dalal & Triggs' recipe, for faces:

1. Bring the image to gray 0..1 (:func:`scratchface.image.as_gray`).
2. Build a pyramid (:mod:`scratchface.detection.pyramid`); a ``32 x 32`` window
   at a level of scale ``s`` (level / original, ``< 1`` shrinks) sees faces of ``32 / s`` pixels.
3. Per level, compute HOG **once** for the whole level (cells of 4 x 4 pixels,
   blocks of 2 x 2 cells, 9 bins, L2-Hys) and keep the grid of normalised blocks
   ``(n_blocks_row, n_blocks_col, 2, 2, 9)``.
4. A window is the ``7 x 7`` blocks under it; its score is the SVM's
   ``w . features + b``. Over all windows at once this is a correlation of the
   block grid with the weights reshaped ``(7, 7, 36)`` (:func:`score_map`),
   so the windows are read off the grid and never recomputed, one cell apart.
5. Windows scoring above ``threshold`` become boxes in original coordinates;
   greedy NMS keeps the best of overlapping boxes.

The model (weights, bias and the HOG parameters it was trained with) ships as
``scratchface/data/hog_face_detector.npz``, made by
``python -m experiments.hog_detector`` (its second stage,
``scratchface/data/hog_face_rescoring.npz``, by ``python -m experiments.hog_detector --second-stage``);
how well it does: ``docs/results.md`` ("Detection").
"""
from __future__ import annotations

import pathlib
from typing import NamedTuple

import numpy as np

from .._validation import check_choice, check_in_range
from ..data.atomic import savez_atomic
from ..image import as_gray
from .detections import Detections, empty_detections
from .hog import hog
from .hog_rescoring import RescoringModel, load_rescoring, rescore
from .nms import nms
from .pyramid import image_pyramid, pyramid_scales

__all__ = [
    "DEFAULT_MODEL_PATH",
    "SCALE_STEP",
    "HogFaceModel",
    "block_grid",
    "detect_faces_hog",
    "hog_pyramid",
    "load_model",
    "save_model",
    "score_map",
    "window_features",
]

DEFAULT_MODEL_PATH = pathlib.Path(__file__).resolve().parents[1] / "data" / "hog_face_detector.npz"


class HogFaceModel(NamedTuple):
    """A trained window classifier and the HOG parameters of its features."""
    weights: np.ndarray        #: (n_blocks, n_blocks, b, b, orientations) SVM weights, one per feature
    bias: float                #: SVM intercept
    window: int = 32           #: window side in pixels
    cell: int = 4              #: pixels per cell (also the sliding step)
    block: int = 2             #: cells per block
    orientations: int = 9
    block_norm: str = "L2-Hys"
    threshold: float = 0.0     #: default score threshold of :func:`detect_faces_hog`

    @property
    def blocks_per_window(self) -> int:
        return self.window // self.cell - self.block + 1


def save_model(path, model: HogFaceModel, **metadata):
    """Write a model as ``.npz`` (plain arrays; extra ``metadata`` stored alongside), atomically."""
    return savez_atomic(path, compress=True, weights=model.weights.astype(np.float32),
                        bias=np.float64(model.bias), window=model.window, cell=model.cell, block=model.block,
                        orientations=model.orientations, block_norm=model.block_norm,
                        threshold=np.float64(model.threshold),
                        **{k: np.asarray(v) for k, v in metadata.items()})


def load_model(path=None) -> HogFaceModel:
    """Read a model written by :func:`save_model` (default: the one shipped with the package)."""
    path = DEFAULT_MODEL_PATH if path is None else pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"HOG face model not found: {path} (train one with "
                                "python -m experiments.hog_detector)")
    with np.load(path, allow_pickle=False) as f:
        return HogFaceModel(weights=f["weights"].astype(np.float64), bias=float(f["bias"]),
                            window=int(f["window"]), cell=int(f["cell"]), block=int(f["block"]),
                            orientations=int(f["orientations"]), block_norm=str(f["block_norm"]),
                            threshold=float(f["threshold"]))


def block_grid(gray, model: HogFaceModel, impl="auto"):
    """The normalised HOG blocks of a whole gray image, ``(n_blocks_row, n_blocks_col, b, b, o)``."""
    return hog(gray, orientations=model.orientations, pixels_per_cell=(model.cell, model.cell),
               cells_per_block=(model.block, model.block), block_norm=model.block_norm,
               feature_vector=False, impl=impl)


def score_map(blocks, weights, bias):
    """SVM score of every window on a block grid.

    .. math:: S[r, c] = b + \\sum_{u, v} \\langle B[r + u, c + v], W[u, v] \\rangle

    Parameters
    ----------
    blocks : array, shape (R, C, b, b, o)
    weights : array, shape (n, n, b, b, o)
        ``n`` blocks per window side.

    Returns
    -------
    scores : array, shape (R - n + 1, C - n + 1)
        ``scores[r, c]`` is the window whose top-left cell is ``(r, c)``.
    """
    n = weights.shape[0]
    rows, cols = blocks.shape[0] - n + 1, blocks.shape[1] - n + 1
    if rows <= 0 or cols <= 0:
        return np.zeros((max(rows, 0), max(cols, 0)))
    flat = blocks.reshape(blocks.shape[0], blocks.shape[1], -1)
    w = weights.reshape(n, n, -1)
    scores = np.full((rows, cols), float(bias))
    for u in range(n):
        for v in range(n):
            scores += flat[u:u + rows, v:v + cols] @ w[u, v]
    return scores


def window_features(patch, model: HogFaceModel, impl="auto"):
    """Feature vector of one training patch: the window plus a margin of one cell on each side.

    ``patch`` is ``(window + 2 cell)`` pixels square (gray, 0..1); HOG is
    computed on all of it and the window's blocks are read off the grid, exactly
    as :func:`detect_faces_hog` reads a window off a pyramid level (so the
    window's border gradients see the pixels outside it).
    """
    blocks = block_grid(patch, model, impl)
    n = model.blocks_per_window
    return blocks[1:1 + n, 1:1 + n].ravel()


def _level_detections(gray, level, model, threshold, impl):
    blocks = block_grid(level.image, model, impl)
    scores = score_map(blocks, model.weights, model.bias)
    rows, cols = np.nonzero(scores > threshold)
    y1 = rows * model.cell * level.to_original_y
    x1 = cols * model.cell * level.to_original_x
    boxes = np.stack([x1, y1, x1 + model.window * level.to_original_x, y1 + model.window * level.to_original_y],
                     axis=1)
    return boxes.reshape(-1, 4), scores[rows, cols]


#: the HOG detector's pyramid step: 1 / 1.1, about 7 levels per octave
SCALE_STEP = 1 / 1.1


def hog_pyramid(gray, window, *, min_face_size=None, max_face_size=None, scale_step=SCALE_STEP):
    """The levels a ``window``-pixel HOG window slides over: the bilinear pyramid, minus levels smaller than it."""
    scales = pyramid_scales(gray.shape, window, min_face_size=min_face_size, max_face_size=max_face_size,
                            scale_step=scale_step)
    return [level for level in image_pyramid(gray, scales)
            if level.image.shape[0] >= window and level.image.shape[1] >= window]


def detect_faces_hog(image, *, model=None, threshold=None, min_face_size=None, max_face_size=None,
                     scale_step=SCALE_STEP, nms_threshold=0.3, nested_threshold=None, impl="auto",
                     second_stage=True) -> Detections:
    """Find faces with HOG + linear SVM + image pyramid + NMS.

    Parameters
    ----------
    image : path, PIL image or array (H, W), (H, W, 3) or (H, W, 4); uint8 or float
    model : HogFaceModel, optional
        Default: the shipped ``hog_face_detector.npz``.
    threshold : float, optional
        Keep windows with SVM score above it (default ``model.threshold``);
        lower finds more faces and more false positives.
    min_face_size, max_face_size : float, optional
        Smallest / largest face side in pixels (default: the window, 32, and
        the image). ``min_face_size`` below the window upsamples the image.
    scale_step : float in (0, 1)
        Ratio of successive pyramid scales
        (:func:`scratchface.detection.pyramid.pyramid_scales`; default 1 / 1.1).
    nms_threshold : float in [0, 1]
        IoU above which the lower-scoring of two boxes is dropped.
    nested_threshold : float in [0, 1], optional
        Then a box lying mostly inside a higher-scoring one (intersection over
        the smaller area above it: ``nms(mode='min')``, as MTCNN's last NMS)
        is dropped too: half a face inside a face. Default: the second stage's
        ``nested_threshold`` (0.6) with it, not applied without it.
    impl : {'auto', 'reference', 'numba'}
        HOG implementation.
    second_stage : bool or RescoringModel
        ``True`` (default): windows scoring above the second stage's
        ``candidate_threshold`` are re-scored with HOG of their context
        (:mod:`scratchface.detection.hog_rescoring`, the shipped model) and
        ``threshold`` applies to that final score (default: the second stage's
        threshold). ``False``: the sliding-window SVM alone, ``threshold`` on
        its margin (default ``model.threshold``). Or a ``RescoringModel``.

    Returns
    -------
    Detections
        ``boxes`` float64 (n, 4), ``(x1, y1, x2, y2)`` in original pixels, by
        decreasing score (``(0, 4)`` when nothing is found, also when the image
        is smaller than the window); ``scores`` (n,) SVM scores (margins, not
        probabilities): the final score ``s_2 + mu s_1`` with the second stage,
        the window SVM's margin without; ``landmarks`` None.

    References
    ----------
    N. Dalal and B. Triggs, "Histograms of Oriented Gradients for Human
    Detection", CVPR 2005.
    """
    model = load_model() if model is None else model
    if not isinstance(model, HogFaceModel):
        raise TypeError(f"model must be a HogFaceModel (see load_model), got {type(model).__name__}")
    if second_stage is True:
        second_stage = load_rescoring()
    elif second_stage is not False and not isinstance(second_stage, RescoringModel):
        raise TypeError(f"second_stage must be True, False or a RescoringModel, got {type(second_stage).__name__}")
    if threshold is None:
        threshold = second_stage.threshold if second_stage else model.threshold
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)) \
            or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    nms_threshold = check_in_range(nms_threshold, "nms_threshold", 0.0, 1.0)
    if nested_threshold is not None:
        nested_threshold = check_in_range(nested_threshold, "nested_threshold", 0.0, 1.0)
    check_choice(impl, "impl", ("auto", "reference", "numba"))
    gray = as_gray(image)
    empty = empty_detections()
    levels = hog_pyramid(gray, model.window, min_face_size=min_face_size, max_face_size=max_face_size,
                         scale_step=scale_step)
    window_threshold = second_stage.candidate_threshold if second_stage else float(threshold)
    found = [_level_detections(gray, level, model, window_threshold, impl) for level in levels]
    if not found:
        return empty
    boxes = np.concatenate([b for b, _ in found])
    scores = np.concatenate([s for _, s in found])
    if second_stage and boxes.shape[0]:
        # the survivors of the first stage's NMS (what the second stage was trained on), re-scored
        keep = nms(boxes, scores, nms_threshold)
        scores = rescore(gray, boxes[keep], scores[keep], second_stage)
        boxes, scores = boxes[keep][scores > threshold], scores[scores > threshold]
    if boxes.shape[0] == 0:
        return empty
    keep = nms(boxes, scores, nms_threshold)
    boxes, scores = boxes[keep], scores[keep]
    if nested_threshold is None and second_stage:
        nested_threshold = second_stage.nested_threshold
    if nested_threshold is not None:
        keep = nms(boxes, scores, nested_threshold, mode="min")
        boxes, scores = boxes[keep], scores[keep]
    return Detections(boxes, scores, None)
