"""A second stage for the HOG detector: re-score each candidate window with HOG of its context.

The sliding-window SVM of :mod:`scratchface.detection.hog_detector` sees a 32 x 32 window: a shirt
button, a lamp or half a face can look like a face there. The second stage (a two-stage cascade, as
in Viola & Jones or Felzenszwalb's part models) looks again at each surviving window ``B`` with more
context and more detail. For every context ``(k, size, cell)`` in :data:`DEFAULT_CONTEXTS` it crops
the square of side ``k * side(B)`` centred on ``B`` (edge-padded outside the image), resizes it to
``size x size`` and takes its HOG with ``cell``-pixel cells (2 x 2 blocks, 9 orientations, L2-Hys):

* ``k = 1.0``, 4-pixel cells: the face itself, at a finer resolution than the first stage;
* ``k = 1.6``: the head with the hair and the neck;
* ``k = 2.4``: head and shoulders.

A second linear SVM on the concatenated features gives ``s_2``; the final score is

.. math:: s = s_2 + \\mu \\, s_1 ,

with ``s_1`` the first-stage margin and ``mu`` (``stage1_weight``) a fixed mix. NMS runs on ``s``,
then a box lying mostly inside a higher-scoring one (intersection over its own area above
``nested_threshold``, ``nms(mode='min')`` as in MTCNN's last step) is dropped: the re-scored
stage prefers whole faces, so what remains nested is half a face. (Without the second stage this
rule hurts: there a half face often outscores the whole one.)

Training (``experiments/hog_detector.py``, ``train_rescoring``) uses the first stage's own candidates
(threshold -0.5) on
photos that are *not* the evaluation photos: the ORL and Yale faces (the face box known, or found by
MTCNN as a teacher), scikit-image's people photos and face-free photos, ``dogs.jpg``, and the real
group photos ``bald_guys.jpg`` and ``Tom_Cruise_avp_2014_4.jpg`` of ``dlib_faces`` (not in its XML
files) and matplotlib's ``grace_hopper.jpg``, whose faces MTCNN labels. A candidate with IoU >= 0.5
to a face is a positive, below 0.3 a negative, in between ignored; positives and the real photos'
negatives are mirrored.

References
----------
N. Dalal and B. Triggs, "Histograms of Oriented Gradients for Human Detection", CVPR 2005.
P. Viola and M. Jones, "Rapid Object Detection using a Boosted Cascade of Simple Features", CVPR 2001.
"""
from __future__ import annotations

import pathlib
from typing import NamedTuple

import numpy as np

from ..data.atomic import savez_atomic
from .hog import hog
from .pyramid import resize

__all__ = ["DEFAULT_CONTEXTS", "DEFAULT_RESCORING_PATH", "RescoringModel", "context_patch", "context_features",
           "rescore", "save_rescoring", "load_rescoring"]

#: (k, size, cell): context factor, resized side in pixels, HOG cell side in pixels
DEFAULT_CONTEXTS = ((1.0, 40, 4), (1.6, 48, 8), (2.4, 48, 8))
DEFAULT_RESCORING_PATH = pathlib.Path(__file__).resolve().parents[1] / "data" / "hog_face_rescoring.npz"


class RescoringModel(NamedTuple):
    """The second-stage SVM and how its features are made."""
    weights: np.ndarray            #: (n_features,) SVM weights
    bias: float                    #: SVM intercept
    contexts: tuple = DEFAULT_CONTEXTS
    stage1_weight: float = 0.25    #: mu in s = s_2 + mu s_1
    candidate_threshold: float = -0.5  #: first-stage score a window needs to be looked at again
    threshold: float = -0.4        #: default threshold on the final score
    nested_threshold: float = 0.6  #: drop a box lying this much (of its area) inside a better one


def context_patch(gray, box, k, size):
    """The square of side ``k * max(w, h)`` centred on ``box``, edge-padded, resized to ``size``."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * k
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    top, left, n = int(np.floor(cy - side / 2)), int(np.floor(cx - side / 2)), max(int(np.ceil(side)), 1)
    pad = max(0, -top, -left, top + n - gray.shape[0], left + n - gray.shape[1])
    padded = np.pad(gray, pad, mode="edge") if pad else gray
    return resize(padded[top + pad:top + pad + n, left + pad:left + pad + n], (size, size))


def context_features(gray, boxes, contexts=DEFAULT_CONTEXTS, *, flip=False):
    """HOG of every context of every box: ``(n_boxes, n_features)``; ``flip`` mirrors each patch."""
    rows = []
    for box in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        parts = []
        for k, size, cell in contexts:
            patch = context_patch(gray, box, k, int(size))
            if flip:
                patch = np.ascontiguousarray(patch[:, ::-1])
            parts.append(hog(patch, orientations=9, pixels_per_cell=(int(cell), int(cell)),
                             cells_per_block=(2, 2)))
        rows.append(np.concatenate(parts))
    n_features = sum(9 * 4 * (int(s) // int(c) - 1) ** 2 for _, s, c in contexts)
    return np.array(rows).reshape(-1, n_features)


def rescore(gray, boxes, scores, model: RescoringModel):
    """Final scores ``s_2 + mu s_1`` of the candidate ``boxes`` (first-stage ``scores``)."""
    if len(boxes) == 0:
        return np.zeros(0)
    features = context_features(gray, boxes, model.contexts)
    return features @ model.weights + model.bias + model.stage1_weight * np.asarray(scores, dtype=np.float64)


def save_rescoring(path, model: RescoringModel, **metadata):
    """Write a second stage as ``.npz`` (plain arrays), atomically."""
    return savez_atomic(path, compress=True, weights=model.weights.astype(np.float32), bias=np.float64(model.bias),
                        contexts=np.asarray(model.contexts, dtype=np.float64),
                        stage1_weight=np.float64(model.stage1_weight),
                        candidate_threshold=np.float64(model.candidate_threshold),
                        threshold=np.float64(model.threshold), nested_threshold=np.float64(model.nested_threshold),
                        **{k: np.asarray(v) for k, v in metadata.items()})


def load_rescoring(path=None) -> RescoringModel:
    """Read a second stage written by :func:`save_rescoring` (default: the shipped one)."""
    path = DEFAULT_RESCORING_PATH if path is None else pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"HOG rescoring model not found: {path} (train one with "
                                "python -m experiments.hog_detector --second-stage)")
    with np.load(path, allow_pickle=False) as f:
        contexts = tuple((float(k), int(s), int(c)) for k, s, c in f["contexts"])
        return RescoringModel(weights=f["weights"].astype(np.float64), bias=float(f["bias"]), contexts=contexts,
                              stage1_weight=float(f["stage1_weight"]),
                              candidate_threshold=float(f["candidate_threshold"]), threshold=float(f["threshold"]),
                              nested_threshold=float(f["nested_threshold"]))
