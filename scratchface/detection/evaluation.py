"""Detector evaluation: match detections to ground truth at an IoU threshold; recall, precision, AP.

Works for any detector: a :class:`~scratchface.detection.detections.Detections`
(or a pair ``(boxes, scores)``) per image. Matching is PASCAL VOC's: all
detections of all images sorted by decreasing score; each takes the
not-yet-taken ground-truth box of its image with the highest IoU, if that IoU
is ``>= iou_threshold`` (a true positive); otherwise, or when the best box is
already taken, it is a false positive (a duplicate).

Average precision is the area under the precision-recall curve with
precision made monotone (``p(r) = max_{r' >= r} p(r')``), summed over the
recall steps: VOC 2010-2012's "all points" AP.

By face size (:func:`evaluate_by_size`)
---------------------------------------
The same matching, then AP per band of face heights, the way WIDER FACE reports it.

WIDER FACE (Yang et al. 2016) shows that a detector's precision falls with
the face's size, and reports AP separately on its easy / medium / hard
subsets. Here the subsets are size bands of the face's **height** in pixels
(WIDER's "scale" groups, section 3.2): by default small ``[10, 30)``,
medium ``[30, 120)`` and large ``[120, inf)``.

1. In each image, detections are matched to *all* its faces at once, PASCAL
   VOC's way (:func:`match_detections`):
   by decreasing score, each detection takes the face of highest IoU if
   ``IoU >= iou_threshold`` and the face is free (a true positive).
2. A detection whose best face (``IoU >= iou_threshold``) was already taken
   is a *duplicate* of that face; any other detection is *unmatched*.
3. For the band ``[low, high)``:

   * the positives are the faces whose height lies in the band (faces
     marked ``ignore`` never are);
   * a detection matched to, or a duplicate of, a face in the band is a
     true positive, or a false positive;
   * a detection matched to, or a duplicate of, a face **outside** the band
     (or an ignored face) is **ignored**: neither, so a detector is not
     punished in the small band for finding a large face (WIDER's
     evaluation code does the same: faces outside the subset are set to
     "ignore" and detections on them are dropped);
   * an unmatched detection is a false positive of the band of **its own
     height**, ignored by the other bands (``unmatched='own_band'``, the
     default). WIDER's code instead counts every unmatched detection
     against every subset (``unmatched='every_band'``), which, with
     subsets nested as easy in medium in hard, is harsh on the easy
     one and impossible to split for disjoint bands.

   Then AP is VOC's all-points AP (:func:`average_precision`) over the
   band's counted detections by decreasing score; recall is true positives
   over the band's faces. A band with no face has AP and recall NaN.

With one band ``(0, inf)`` this is exactly :func:`evaluate_detections`.

References
----------
S. Yang, P. Luo, C. C. Loy, X. Tang, "WIDER FACE: A Face Detection Benchmark", CVPR 2016,
sections 3.2 and 5.1; its evaluation code (``wider_eval.m``; ``norm_score``, ``image_evaluation``
with ``ignore``) for the ignore rule.
M. Everingham et al., "The PASCAL Visual Object Classes Challenge", IJCV 2010, section 4.2 (matching, AP).
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from .._validation import check_choice, check_in_range
from .nms import iou

__all__ = ["DEFAULT_BANDS", "BandEvaluation", "DetectionEvaluation", "average_precision", "boxes_and_scores",
           "check_bands", "evaluate_by_size", "evaluate_detections", "face_heights", "match_detections"]


def boxes_and_scores(detection, name="detection"):
    """``(boxes (n, 4), scores (n,))`` of one image's :class:`~scratchface.detection.detections.Detections`
    or of a pair ``(boxes, scores)``, as float64 arrays."""
    if not (isinstance(detection, (tuple, list)) and len(detection) in (2, 3)):
        raise TypeError(f"{name} must be a Detections or a pair (boxes, scores), got {type(detection).__name__}")
    return (np.asarray(detection[0], dtype=np.float64),
            np.asarray(detection[1], dtype=np.float64).reshape(-1))


class DetectionEvaluation(NamedTuple):
    """Scores of a detector on a set of images."""
    recall: float            #: true positives / ground-truth boxes, all detections counted
    precision: float         #: true positives / detections
    average_precision: float  #: VOC all-points AP
    n_true_positives: int
    n_false_positives: int
    n_ground_truth: int
    recall_curve: np.ndarray     #: (n_detections,) recall after each detection by decreasing score
    precision_curve: np.ndarray  #: (n_detections,)
    scores: np.ndarray           #: (n_detections,) scores, decreasing
    is_true_positive: np.ndarray  #: (n_detections,) bool


def match_detections(boxes, scores, ground_truth, iou_threshold=0.5):
    """True / false positive flag of each detection of one image (greedy by score).

    Returns
    -------
    is_tp : bool array, shape (n,)
        In the order of ``boxes``.
    matched : int64 array, shape (n,)
        Index of the ground-truth box taken, -1 for a false positive.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ground_truth = np.asarray(ground_truth, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must have one score per box ({boxes.shape[0]}), got {scores.shape[0]}")
    is_tp = np.zeros(len(boxes), dtype=bool)
    matched = np.full(len(boxes), -1, dtype=np.int64)
    if len(boxes) == 0 or len(ground_truth) == 0:
        return is_tp, matched
    overlaps = iou(boxes, ground_truth)
    taken = np.zeros(len(ground_truth), dtype=bool)
    for i in np.argsort(-scores, kind="stable"):
        j = int(np.argmax(overlaps[i]))
        if overlaps[i, j] >= iou_threshold and not taken[j]:
            taken[j] = True
            is_tp[i] = True
            matched[i] = j
    return is_tp, matched


def average_precision(recall, precision):
    """VOC all-points AP from a precision-recall curve (detections by decreasing score)."""
    r = np.concatenate([[0.0], np.asarray(recall, float), [1.0]])
    p = np.concatenate([[0.0], np.asarray(precision, float), [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]  # precision envelope, monotone decreasing
    steps = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def evaluate_detections(detections, ground_truths, iou_threshold=0.5):
    """Recall, precision and AP of a detector over several images.

    Parameters
    ----------
    detections : list of Detections or of (boxes (n_i, 4), scores (n_i,))
        One per image; boxes ``(x1, y1, x2, y2)``.
    ground_truths : list of arrays (m_i, 4)
        The labelled faces of the same images.
    iou_threshold : float
        0.5 is PASCAL VOC's.

    Returns
    -------
    DetectionEvaluation
    """
    iou_threshold = check_in_range(iou_threshold, "iou_threshold", 0.0, 1.0)
    if len(detections) != len(ground_truths):
        raise ValueError(f"detections and ground_truths must have one entry per image, got "
                         f"{len(detections)} and {len(ground_truths)}")
    all_scores, all_tp = [], []
    n_gt = 0
    for i, (det, gt) in enumerate(zip(detections, ground_truths)):
        boxes, scores = boxes_and_scores(det, f"detections[{i}]")
        is_tp, _ = match_detections(boxes, scores, gt, iou_threshold)
        all_scores.append(np.asarray(scores, float).reshape(-1))
        all_tp.append(is_tp)
        n_gt += len(np.asarray(gt).reshape(-1, 4))
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    tp = np.concatenate(all_tp) if all_tp else np.zeros(0, bool)
    order = np.argsort(-scores, kind="stable")
    scores, tp = scores[order], tp[order]
    cum_tp = np.cumsum(tp)
    recall_curve = cum_tp / max(n_gt, 1)
    precision_curve = cum_tp / np.arange(1, len(tp) + 1)
    n_tp = int(tp.sum())
    return DetectionEvaluation(
        recall=n_tp / n_gt if n_gt else 0.0,
        precision=n_tp / len(tp) if len(tp) else 0.0,
        average_precision=average_precision(recall_curve, precision_curve) if n_gt else 0.0,
        n_true_positives=n_tp, n_false_positives=int(len(tp) - n_tp), n_ground_truth=n_gt,
        recall_curve=recall_curve, precision_curve=precision_curve, scores=scores, is_true_positive=tp)


DEFAULT_BANDS = (("small", 10, 30), ("medium", 30, 120), ("large", 120, math.inf))


class BandEvaluation(NamedTuple):
    """Scores of a detector on the faces of one size band."""
    average_precision: float     #: VOC all-points AP; NaN when the band has no face
    recall: float                #: true positives / faces of the band; NaN when none
    precision: float             #: true positives / counted detections; NaN when none
    n_faces: int
    n_detections: int            #: detections counted in the band (not ignored)
    n_true_positives: int
    n_false_positives: int


def face_heights(boxes) -> np.ndarray:
    """The size of each face: the height ``y2 - y1`` of its box (WIDER FACE's scale measure), shape (n,)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return boxes[:, 3] - boxes[:, 1]


def check_bands(bands):
    """The bands ``(name, low, high)`` as a list of ``(str, float, float)``; TypeError / ValueError if malformed."""
    if not isinstance(bands, (tuple, list)) or not bands:
        raise TypeError(f"bands must be a non-empty sequence of (name, low, high), got {bands!r}")
    out, names = [], set()
    for band in bands:
        if not (isinstance(band, (tuple, list)) and len(band) == 3 and isinstance(band[0], str)
                and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in band[1:])):
            raise TypeError(f"each band must be (name, low, high) with a str name and numbers, got {band!r}")
        name, low, high = band[0], float(band[1]), float(band[2])
        if not (low >= 0 and high > low) or math.isnan(high):
            raise ValueError(f"band {name!r} needs 0 <= low < high, got low={low}, high={high}")
        if name in names:
            raise ValueError(f"band names must differ, {name!r} appears twice")
        names.add(name)
        out.append((name, low, high))
    return out


def _classify(boxes, scores, faces, iou_threshold):
    """Per detection of one image: (face index, is_true_positive); face -1 for an unmatched detection."""
    is_tp, matched = match_detections(boxes, scores, faces, iou_threshold)
    face = matched.copy()
    duplicates = np.nonzero(~is_tp)[0]
    if duplicates.size and len(faces):
        overlaps = iou(np.asarray(boxes, float).reshape(-1, 4)[duplicates], faces)
        best = np.argmax(overlaps, axis=1)
        near = overlaps[np.arange(len(duplicates)), best] >= iou_threshold
        face[duplicates[near]] = best[near]
    return face, is_tp


def evaluate_by_size(detections, ground_truths, *, bands=DEFAULT_BANDS, iou_threshold=0.5, ignore=None,
                     unmatched="own_band"):
    """AP, recall and precision of a detector per face-size band (see the module docstring for the rule).

    Parameters
    ----------
    detections : list of Detections or of (boxes (n_i, 4), scores (n_i,))
        One per image; boxes ``(x1, y1, x2, y2)``.
    ground_truths : list of arrays (m_i, 4)
        The faces of the same images.
    bands : sequence of (name, low, high)
        Face heights ``low <= h < high`` (``high`` may be ``math.inf``). Bands may overlap;
        each is evaluated on its own.
    iou_threshold : float in [0, 1]
    ignore : list of bool arrays (m_i,), optional
        Faces that count nowhere (dlib's ``ignore`` boxes); detections on them are ignored.
    unmatched : {'own_band', 'every_band'}
        Where an unmatched detection counts as a false positive.

    Returns
    -------
    dict of str to BandEvaluation
        In the order of ``bands``.

    Raises
    ------
    TypeError, ValueError
        Malformed bands, a threshold outside [0, 1], lists of different lengths,
        boxes not (n, 4), scores not one per box, ``ignore`` not one flag per face.
    """
    bands = check_bands(bands)
    iou_threshold = check_in_range(iou_threshold, "iou_threshold", 0.0, 1.0)
    check_choice(unmatched, "unmatched", ("own_band", "every_band"))
    if len(detections) != len(ground_truths):
        raise ValueError(f"detections and ground_truths must have one entry per image, got "
                         f"{len(detections)} and {len(ground_truths)}")
    if ignore is not None and len(ignore) != len(ground_truths):
        raise ValueError(f"ignore must have one entry per image ({len(ground_truths)}), got {len(ignore)}")

    # per detection, over all images: score, its own height, the height of its face (NaN: unmatched), TP flag
    scores_all, own_h, face_h, tp_all, face_ignored = [], [], [], [], []
    heights_all, ignored_all = [], []
    for i, (det, faces) in enumerate(zip(detections, ground_truths)):
        boxes, scores = boxes_and_scores(det, f"detections[{i}]")
        faces = np.asarray(faces, dtype=np.float64)
        for name, arr in (("detections", boxes), ("ground_truths", faces)):
            if arr.size and (arr.ndim != 2 or arr.shape[1] != 4):
                raise ValueError(f"{name}[{i}] boxes must have shape (n, 4), got {arr.shape}")
        boxes, faces = boxes.reshape(-1, 4), faces.reshape(-1, 4)
        flags = np.zeros(len(faces), bool) if ignore is None else np.asarray(ignore[i], dtype=bool).reshape(-1)
        if flags.shape[0] != len(faces):
            raise ValueError(f"ignore[{i}] must have one flag per face ({len(faces)}), got {flags.shape[0]}")
        face, is_tp = _classify(boxes, scores, faces, iou_threshold)
        heights = face_heights(faces)
        scores_all.append(scores)
        own_h.append(face_heights(boxes))
        face_h.append(np.where(face >= 0, heights[np.maximum(face, 0)] if len(faces) else np.nan, np.nan))
        face_ignored.append(np.where(face >= 0, flags[np.maximum(face, 0)] if len(faces) else False, False))
        tp_all.append(is_tp)
        heights_all.append(heights)
        ignored_all.append(flags)
    cat = (lambda parts, dtype: np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype))
    scores, own_h, face_h = cat(scores_all, float), cat(own_h, float), cat(face_h, float)
    is_tp, face_ignored = cat(tp_all, bool), cat(face_ignored, bool)
    heights, ignored = cat(heights_all, float), cat(ignored_all, bool)
    order = np.argsort(-scores, kind="stable")
    scores, own_h, face_h, is_tp, face_ignored = (a[order] for a in (scores, own_h, face_h, is_tp, face_ignored))
    has_face = ~np.isnan(face_h)

    results = {}
    for name, low, high in bands:
        n_faces = int(np.sum((heights >= low) & (heights < high) & ~ignored))
        on_band_face = has_face & ~face_ignored & (face_h >= low) & (face_h < high)
        if unmatched == "own_band":
            stray = ~has_face & (own_h >= low) & (own_h < high)
        else:
            stray = ~has_face
        counted = on_band_face | stray
        tp = is_tp[counted] & on_band_face[counted]
        n_det, n_tp = int(counted.sum()), int(tp.sum())
        if n_faces:
            cum = np.cumsum(tp)
            ap = average_precision(cum / n_faces, cum / np.arange(1, n_det + 1))
        results[name] = BandEvaluation(
            average_precision=ap if n_faces else math.nan,
            recall=n_tp / n_faces if n_faces else math.nan,
            precision=n_tp / n_det if n_det else math.nan,
            n_faces=n_faces, n_detections=n_det, n_true_positives=n_tp, n_false_positives=n_det - n_tp)
    return results
