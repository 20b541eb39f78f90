"""Detector evaluation: match detections to ground truth at an IoU threshold; recall, precision, AP.

Works for any detector that returns ``(boxes, scores)`` per image. Matching is
PASCAL VOC's: all detections of all images sorted by decreasing score; each
takes the not-yet-taken ground-truth box of its image with the highest IoU,
if that IoU is ``>= iou_threshold`` (a true positive); otherwise, or when the
best box is already taken, it is a false positive (a duplicate).

Average precision is the area under the precision-recall curve with
precision made monotone (``p(r) = max_{r' >= r} p(r')``), summed over the
recall steps: VOC 2010-2012's "all points" AP.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_in_range
from .nms import iou

__all__ = ["DetectionEvaluation", "average_precision", "evaluate_detections", "match_detections"]


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
    detections : list of (boxes (n_i, 4), scores (n_i,))
        One pair per image; boxes ``(x1, y1, x2, y2)``.
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
    for (boxes, scores), gt in zip(detections, ground_truths):
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
