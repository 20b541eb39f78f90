"""MTCNN's multi-task loss: face classification, box and landmark regression, with online hard sample mining.

Zhang et al. 2016 (sec. II-C, III-A). Each training sample has a type (label):
``POSITIVE`` 1, ``NEGATIVE`` 0, ``PART`` -1 (a part face) or ``LANDMARK`` -2
(the convention of the public MTCNN training code; the types are drawn by
:func:`scratchface.detection.mtcnn_training.sample_types`). The paper's
indicators :math:`\\beta_i^j \\in \\{0, 1\\}` (:func:`task_indicators`) say which
sample trains which task; the loss (:func:`mtcnn_loss_forward`, eqs. 1-4)

.. math:: \\min \\sum_i \\sum_j \\alpha_j \\beta_i^j L_i^j

has a cross-entropy :math:`L^{det}` and squared L2 :math:`L^{box}`, :math:`L^{landmark}`,
task weights :data:`TASK_WEIGHTS`; only the hardest 70 % of the classification
samples of a mini-batch are back-propagated (:func:`ohem_select`).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._validation import check_array, check_in_range
from ..gradcheck import GradcheckCase
from ..layers.softmax import log_softmax_backward, log_softmax_forward

__all__ = ["LANDMARK", "NEGATIVE", "OHEM_RATIO", "PART", "POSITIVE", "TASK_WEIGHTS", "MTCNNLossCache",
           "gradcheck_cases", "mtcnn_loss_backward", "mtcnn_loss_forward", "ohem_select", "task_indicators"]

NEGATIVE, POSITIVE, PART, LANDMARK = 0, 1, -1, -2  #: sample types (labels)

#: (alpha_det, alpha_box, alpha_landmark) per network (paper sec. III-A).
TASK_WEIGHTS = {"pnet": (1.0, 0.5, 0.5), "rnet": (1.0, 0.5, 0.5), "onet": (1.0, 0.5, 1.0)}
OHEM_RATIO = 0.7


def task_indicators(labels):
    """The paper's :math:`\\beta_i^j`: which samples train which task, three bool arrays (N,).

    Returns
    -------
    det : positives and negatives (face classification)
    box : positives and part faces (box regression)
    landmark : landmark faces (landmark regression)
    """
    labels = np.asarray(labels)
    return ((labels == POSITIVE) | (labels == NEGATIVE), (labels == POSITIVE) | (labels == PART),
            labels == LANDMARK)


def ohem_select(losses, ratio=OHEM_RATIO):
    """Indices of the ``max(1, floor(ratio n))`` largest losses (online hard sample mining).

    Ties keep the lower index (a stable sort).
    """
    losses = np.asarray(losses)
    n = len(losses)
    if n == 0:
        return np.zeros(0, np.int64)
    keep = max(1, math.floor(ratio * n + 1e-9))
    return np.sort(np.argsort(-losses, kind="stable")[:keep])


class MTCNNLossCache(NamedTuple):
    log_probs_cache: tuple
    cls_index: np.ndarray      # samples whose classification loss is back-propagated (after OHEM)
    cls_labels: np.ndarray     # their labels (0 or 1)
    box_index: np.ndarray
    box_diff: np.ndarray       # prediction - target of those samples
    landmark_index: np.ndarray
    landmark_diff: np.ndarray
    task_weights: tuple
    shapes: tuple


def mtcnn_loss_forward(cls_logits, box_pred, landmark_pred, *, labels, box_targets, landmark_targets,
                       task_weights=TASK_WEIGHTS["pnet"], ohem_ratio=OHEM_RATIO):
    """MTCNN's multi-task loss with sample-type indicators and online hard sample mining.

    Parameters
    ----------
    cls_logits : array, shape (N, 2)
        Face classification scores (non-face, face), before the softmax.
    box_pred : array, shape (N, 4)
    landmark_pred : array, shape (N, 10), or None for a net without the landmark head
    labels : int array, shape (N,)
        ``POSITIVE`` 1, ``NEGATIVE`` 0, ``PART`` -1, ``LANDMARK`` -2.
    box_targets : array, shape (N, 4)
    landmark_targets : array, shape (N, 10)
    task_weights : (alpha_det, alpha_box, alpha_landmark)
        :data:`TASK_WEIGHTS` holds the paper's values per network.
    ohem_ratio : float in (0, 1]
        Fraction of the classification samples (the hardest) that count; 1 disables mining.

    Returns
    -------
    loss : scalar of the logits' dtype
    cache : MTCNNLossCache

    Notes
    -----
    .. math:: L = \\alpha_{det} \\frac{1}{|H|} \\sum_{i \\in H} -\\log p_{i, y_i}
              + \\alpha_{box} \\frac{1}{|B|} \\sum_{i \\in B} \\|\\hat b_i - b_i\\|^2
              + \\alpha_{lm} \\frac{1}{|M|} \\sum_{i \\in M} \\|\\hat m_i - m_i\\|^2

    where :math:`B` and :math:`M` are the samples with :math:`\\beta^{box}_i = 1`
    and :math:`\\beta^{landmark}_i = 1`, and :math:`H` the hardest
    ``floor(ohem_ratio |D|)`` of the classification samples :math:`D`
    (:math:`\\beta^{det}_i = 1`), ranked by their cross-entropy. A term with no
    samples is 0. The paper sums over samples; the public implementations
    average each term over its samples, as here, so that the task weights
    keep their meaning whatever the mix of a batch.

    Backward: :math:`\\partial L / \\partial z_i = \\frac{\\alpha_{det}}{|H|}(p_i - e_{y_i})`
    for :math:`i \\in H` (0 otherwise), :math:`\\partial L / \\partial \\hat b_i =
    \\frac{2 \\alpha_{box}}{|B|} (\\hat b_i - b_i)`, likewise for the landmarks.
    Mining picks the samples; the selection itself is not differentiated.

    References
    ----------
    Zhang et al. 2016, eqs. 1-4 (losses and the :math:`\\beta` indicators) and sec. III-A
    (task weights, online hard sample mining).
    """
    n = cls_logits.shape[0] if hasattr(cls_logits, "shape") else None
    check_array(cls_logits, "cls_logits", ndim=2, dtype_kind="f", finite=True)
    check_array(box_pred, "box_pred", ndim=2, dtype_kind="f", finite=True)
    if cls_logits.shape[1] != 2 or box_pred.shape != (n, 4):
        raise ValueError(f"cls_logits must be (N, 2) and box_pred (N, 4), got {cls_logits.shape} and "
                         f"{box_pred.shape}")
    labels = np.asarray(labels)
    check_array(labels, "labels", ndim=1, dtype_kind="iu")
    if labels.shape[0] != n or not np.isin(labels, (POSITIVE, NEGATIVE, PART, LANDMARK)).all():
        raise ValueError(f"labels must be {n} values among 1 (positive), 0 (negative), -1 (part), "
                         "-2 (landmark)")
    box_targets = np.asarray(box_targets, dtype=cls_logits.dtype)
    if box_targets.shape != (n, 4):
        raise ValueError(f"box_targets must have shape ({n}, 4), got {box_targets.shape}")
    if len(task_weights) != 3:
        raise ValueError(f"task_weights must be three numbers (det, box, landmark), got {task_weights!r}")
    alphas = tuple(check_in_range(a, f"task_weights[{k}]", 0.0, np.inf) for k, a in enumerate(task_weights))
    ohem_ratio = check_in_range(ohem_ratio, "ohem_ratio", 0.0, 1.0, inclusive=(False, True))
    det, box, mark = task_indicators(labels)
    if landmark_pred is not None:
        check_array(landmark_pred, "landmark_pred", ndim=2, dtype_kind="f", finite=True)
        landmark_targets = np.asarray(landmark_targets, dtype=cls_logits.dtype)
        if landmark_pred.shape != (n, 10) or landmark_targets.shape != (n, 10):
            raise ValueError(f"landmark_pred and landmark_targets must have shape ({n}, 10), got "
                             f"{landmark_pred.shape} and {landmark_targets.shape}")
    elif mark.any() and alphas[2] > 0:
        raise ValueError("landmark samples (label -2) need landmark_pred; drop them for a net without "
                         "the landmark head")

    log_probs, log_probs_cache = log_softmax_forward(cls_logits, axis=1)
    det_index = np.nonzero(det)[0]
    det_labels = labels[det_index]
    det_losses = -log_probs[det_index, det_labels]
    hard = ohem_select(det_losses, ohem_ratio)
    cls_index, cls_labels = det_index[hard], det_labels[hard]
    loss = alphas[0] * det_losses[hard].mean() if len(hard) else 0.0

    box_index = np.nonzero(box)[0]
    box_diff = box_pred[box_index] - box_targets[box_index]
    if len(box_index):
        loss += alphas[1] * (box_diff ** 2).sum(axis=1).mean()

    landmark_index = np.nonzero(mark)[0] if landmark_pred is not None else np.zeros(0, np.int64)
    landmark_diff = (landmark_pred[landmark_index] - landmark_targets[landmark_index]
                     if landmark_pred is not None else np.zeros((0, 10), cls_logits.dtype))
    if len(landmark_index):
        loss += alphas[2] * (landmark_diff ** 2).sum(axis=1).mean()

    shapes = (cls_logits.shape, box_pred.shape, None if landmark_pred is None else landmark_pred.shape)
    cache = MTCNNLossCache(log_probs_cache, cls_index, cls_labels, box_index, box_diff, landmark_index,
                           landmark_diff, alphas, shapes)
    return cls_logits.dtype.type(loss), cache  # a scalar of the logits' dtype (float32 stays float32)


def mtcnn_loss_backward(dloss, cache):
    """Gradients ``(dcls_logits, dbox_pred, dlandmark_pred)`` of :func:`mtcnn_loss_forward`.

    ``dlandmark_pred`` is ``None`` when ``landmark_pred`` was.
    """
    dloss = float(dloss)
    alphas = cache.task_weights
    cls_shape, box_shape, landmark_shape = cache.shapes
    dtype = cache.box_diff.dtype
    dlog_probs = np.zeros(cls_shape, dtype)
    if len(cache.cls_index):  # d(-mean log p_y)/d log p = -1/|H| at the label, through log-softmax
        dlog_probs[cache.cls_index, cache.cls_labels] = -dloss * alphas[0] / len(cache.cls_index)
    dcls = log_softmax_backward(dlog_probs, cache.log_probs_cache)
    dbox = np.zeros(box_shape, dtype)
    if len(cache.box_index):
        dbox[cache.box_index] = dloss * alphas[1] * 2.0 * cache.box_diff / len(cache.box_index)
    if landmark_shape is None:
        return dcls, dbox, None
    dmark = np.zeros(landmark_shape, dtype)
    if len(cache.landmark_index):
        dmark[cache.landmark_index] = dloss * alphas[2] * 2.0 * cache.landmark_diff / len(cache.landmark_index)
    return dcls, dbox, dmark


def gradcheck_cases(rng):
    """Small multi-task loss cases (all four sample types; OHEM on and off)."""
    cases = []
    for name, n, ratio, weights in (("mtcnn_loss pnet ohem", 9, 0.7, TASK_WEIGHTS["pnet"]),
                                    ("mtcnn_loss onet no-ohem", 7, 1.0, TASK_WEIGHTS["onet"])):
        labels = np.array(([POSITIVE, NEGATIVE, PART, LANDMARK] * n)[:n], dtype=np.int64)
        kwargs = {"labels": labels, "box_targets": rng.standard_normal((n, 4)) * 0.2,
                  "landmark_targets": rng.uniform(0, 1, (n, 10)), "task_weights": weights, "ohem_ratio": ratio}
        inputs = {"cls_logits": rng.standard_normal((n, 2)) * 2, "box_pred": rng.standard_normal((n, 4)) * 0.3,
                  "landmark_pred": rng.uniform(0, 1, (n, 10))}
        cases.append(GradcheckCase(name, mtcnn_loss_forward, mtcnn_loss_backward, inputs, kwargs))
    return cases
