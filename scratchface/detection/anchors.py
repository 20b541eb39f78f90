"""Anchors and their targets: what each branch of a Faster R-CNN-style detector learns.

Used by the scale-friendly detector (:mod:`scratchface.detection.scale_friendly`),
whose three branches each propose faces of one size band from anchors:

1. **Faces are assigned to branches by size** (:func:`assign_branches`): a face
   of height :math:`h` (WIDER FACE's size measure) belongs to the branch whose band
   ``face_sizes = (low, high)`` holds it (10-30 px -> small, 30-120 -> medium,
   120-240 -> large). A branch learns only its own faces; anchors on another
   branch's face are *ignored* (neither face nor background), as in the paper,
   so that no branch is taught that a face of the wrong size is background.
2. **Anchors** (:func:`make_anchors`): squares of a few sizes centred on every
   cell of a branch's feature map.
3. **Anchor targets by IoU** (:func:`label_by_iou`, Faster R-CNN sec. 3.1.2): an
   anchor is a face if its IoU with one of the branch's faces is >= 0.5, or it is
   the best anchor of that face; background if its IoU with *every* face is < 0.3;
   otherwise ignored. A few anchors per image are sampled, up to half faces
   (:func:`sample_labels`).
4. **Box targets** (:func:`encode_boxes`, Faster R-CNN eq. 2): centre offsets in
   anchor widths and log size ratios; :func:`decode_boxes` is the inverse.

References
----------
S. Ren, K. He, R. Girshick, J. Sun, "Faster R-CNN", NeurIPS 2015 (eq. 2, sec. 3.1.2).
S. Yang, Y. Xiong, C. C. Loy, X. Tang, "Face Detection through Scale-Friendly
Deep Convolutional Networks", arXiv:1706.02863, 2017.
"""
from __future__ import annotations

import functools

import numpy as np

from .._validation import check_array, check_positive_int
from ..models.scale_friendly import DEFAULT_BRANCHES
from .evaluation import face_heights
from .nms import iou

__all__ = ["BACKGROUND", "FACE", "IGNORED", "as_boxes", "assign_branches", "cached_anchors", "clip_boxes",
           "decode_boxes", "encode_boxes", "label_by_iou", "make_anchors", "sample_labels"]

FACE, BACKGROUND, IGNORED = 1, 0, -1
_MAX_LOG_RATIO = float(np.log(1000.0 / 16.0))  # Detectron's clamp of t_w, t_h before exp


def as_boxes(boxes, name):
    """``boxes`` as a float64 ``(n, 4)`` array of ``(x1, y1, x2, y2)`` (``(0, 4)`` when empty).

    Raises ValueError naming ``name`` for NaN or a shape other than ``(n, 4)``.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    check_array(boxes, name, ndim=2, dtype_kind="f", finite=True)
    if boxes.shape[1] != 4:
        raise ValueError(f"{name} must have shape (n, 4) with rows (x1, y1, x2, y2), got {boxes.shape}")
    return boxes


def assign_branches(boxes, branches=DEFAULT_BRANCHES):
    """Index of the branch that owns each face, by size.

    Face ``k`` goes to the branch ``b`` with ``low_b <= h_k < high_b``, ``h_k`` the
    height of its box (WIDER FACE's measure of a face's size,
    :func:`~scratchface.detection.evaluation.face_heights`) and the band
    ``face_sizes`` of :class:`~scratchface.models.scale_friendly.BranchSpec`;
    a face smaller than every band goes to the first branch, larger than every
    band to the last.

    Returns
    -------
    branch : int64 array, shape (k,)
    """
    sizes = face_heights(as_boxes(boxes, "boxes"))
    highs = np.array([b.face_sizes[1] for b in branches[:-1]], dtype=np.float64)
    return np.searchsorted(highs, sizes, side="right").astype(np.int64)


def make_anchors(feature_shape, stride, sizes):
    """Square anchors centred on every feature-map cell.

    Parameters
    ----------
    feature_shape : (H, W)
        Cells of the branch's feature map.
    stride : int
        Pixels per cell; cell ``(i, j)`` is centred on pixel ``(s (j + 1/2), s (i + 1/2))``.
    sizes : sequence of float
        Anchor sides ``A`` per cell.

    Returns
    -------
    anchors : float64 array, shape (H W A, 4)
        ``(x1, y1, x2, y2)`` in the order (row, column, size): anchor
        ``(i W + j) A + a``, the layout of :meth:`ScaleBranch.propose`.
    """
    h, w = (check_positive_int(int(v), "feature_shape") for v in feature_shape)
    sizes = np.asarray(sizes, dtype=np.float64)
    cy, cx = np.meshgrid((np.arange(h) + 0.5) * stride, (np.arange(w) + 0.5) * stride, indexing="ij")
    cx, cy, half = cx[:, :, None], cy[:, :, None], sizes[None, None, :] / 2
    anchors = np.stack(np.broadcast_arrays(cx - half, cy - half, cx + half, cy + half), axis=-1)
    return anchors.reshape(-1, 4)


def encode_boxes(reference, boxes):
    """Offsets that move ``reference`` boxes onto ``boxes`` (Faster R-CNN eq. 2).

    .. math:: t_x = \\frac{x - x_a}{w_a}, \\quad t_y = \\frac{y - y_a}{h_a}, \\quad
              t_w = \\log\\frac{w}{w_a}, \\quad t_h = \\log\\frac{h}{h_a}

    with :math:`(x, y)` box centres and :math:`w, h` widths and heights.

    Returns
    -------
    offsets : float64 array, shape (n, 4)
    """
    ref, box = as_boxes(reference, "reference"), as_boxes(boxes, "boxes")
    if ref.shape != box.shape:
        raise ValueError(f"reference and boxes must have the same shape, got {ref.shape} and {box.shape}")
    wa, ha = ref[:, 2] - ref[:, 0], ref[:, 3] - ref[:, 1]
    w, h = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
    if np.any(wa <= 0) or np.any(ha <= 0) or np.any(w <= 0) or np.any(h <= 0):
        raise ValueError("boxes to encode must have positive widths and heights")
    tx = ((box[:, 0] + box[:, 2]) - (ref[:, 0] + ref[:, 2])) / 2 / wa
    ty = ((box[:, 1] + box[:, 3]) - (ref[:, 1] + ref[:, 3])) / 2 / ha
    return np.stack([tx, ty, np.log(w / wa), np.log(h / ha)], axis=1)


def decode_boxes(reference, offsets):
    """Inverse of :func:`encode_boxes`: apply offsets ``(t_x, t_y, t_w, t_h)`` to ``reference`` boxes.

    :math:`t_w, t_h` are clamped to :math:`\\log(1000/16)` first (Detectron), so that
    an untrained network cannot overflow ``exp``.
    """
    ref = as_boxes(reference, "reference")
    t = np.asarray(offsets, dtype=np.float64).reshape(-1, 4)
    if len(t) != len(ref):
        raise ValueError(f"offsets must have one row per reference box ({len(ref)}), got {len(t)}")
    wa, ha = ref[:, 2] - ref[:, 0], ref[:, 3] - ref[:, 1]
    cx = (ref[:, 0] + ref[:, 2]) / 2 + t[:, 0] * wa
    cy = (ref[:, 1] + ref[:, 3]) / 2 + t[:, 1] * ha
    w = wa * np.exp(np.minimum(t[:, 2], _MAX_LOG_RATIO))
    h = ha * np.exp(np.minimum(t[:, 3], _MAX_LOG_RATIO))
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


@functools.lru_cache(maxsize=32)
def cached_anchors(feature_shape, stride, sizes):
    """:func:`make_anchors`, computed once per ``(feature_shape, stride, sizes)`` (tuples) and read-only."""
    anchors = make_anchors(feature_shape, stride, sizes)
    anchors.flags.writeable = False
    return anchors


def clip_boxes(boxes, height, width):
    """A copy of ``boxes`` (n, 4) with x clipped to ``[0, width]`` and y to ``[0, height]``."""
    out = boxes.copy()
    out[:, 0::2] = np.clip(out[:, 0::2], 0, width)
    out[:, 1::2] = np.clip(out[:, 1::2], 0, height)
    return out


# ----------------------------------------------------------------------------- targets

def label_by_iou(candidates, faces, face_branch, branch, *, positive_iou=0.5, negative_iou=0.3, best_match=True):
    """Face / background / ignored label of each candidate box (anchor or ROI) for one branch.

    Parameters
    ----------
    candidates : array, shape (n, 4)
    faces : array, shape (k, 4)
        The image's ground-truth faces.
    face_branch : int array, shape (k,)
        Branch of each face (:func:`assign_branches`).
    branch : int
        The branch being trained.
    positive_iou, negative_iou : float
        Face if IoU >= ``positive_iou`` with one of the branch's faces;
        background if IoU < ``negative_iou`` with every face (of any branch).
    best_match : bool
        Also make each of the branch's faces' best candidate(s) a face, however
        low the IoU (Faster R-CNN's rule (i): every face gets an anchor).

    Returns
    -------
    labels : int64 array, shape (n,)
        ``1`` face, ``0`` background, ``-1`` ignored.
    matched : int64 array, shape (n,)
        Index of the face each face-labelled candidate regresses to; ``-1`` elsewhere.
    """
    candidates, faces = as_boxes(candidates, "candidates"), as_boxes(faces, "faces")
    face_branch = np.asarray(face_branch, dtype=np.int64).reshape(-1)
    if len(face_branch) != len(faces):
        raise ValueError(f"face_branch must have one entry per face ({len(faces)}), got {len(face_branch)}")
    if not 0 <= negative_iou <= positive_iou <= 1:
        raise ValueError(f"need 0 <= negative_iou <= positive_iou <= 1, got {negative_iou} and {positive_iou}")
    n = len(candidates)
    labels = np.full(n, IGNORED, dtype=np.int64)
    matched = np.full(n, -1, dtype=np.int64)
    if len(faces) == 0:
        labels[:] = BACKGROUND
        return labels, matched
    overlaps = iou(candidates, faces)
    labels[overlaps.max(axis=1) < negative_iou] = BACKGROUND
    own = np.nonzero(face_branch == branch)[0]
    if len(own) == 0 or n == 0:
        return labels, matched
    own_overlaps = overlaps[:, own]
    best = own_overlaps.argmax(axis=1)
    best_iou = own_overlaps[np.arange(n), best]
    is_face = best_iou >= positive_iou
    if best_match:
        top = own_overlaps.max(axis=0)
        rows, cols = np.nonzero((own_overlaps == top[None, :]) & (top[None, :] > 0))
        is_face[rows] = True
        best[rows] = cols  # a best candidate regresses to the face it is best for
    labels[is_face] = FACE
    matched[is_face] = own[best[is_face]]
    return labels, matched


def sample_labels(labels, *, rng, num, positive_fraction):
    """Keep at most ``num`` labelled candidates, at most ``positive_fraction`` of them faces.

    Faces are drawn first (at most ``floor(num * positive_fraction)``); background
    fills the rest. The others become ``-1`` (ignored). Returns a new array.
    """
    labels = np.array(labels, dtype=np.int64, copy=True)
    faces = np.nonzero(labels == FACE)[0]
    max_faces = int(num * positive_fraction)
    if len(faces) > max_faces:
        labels[rng.choice(faces, len(faces) - max_faces, replace=False)] = IGNORED
    background = np.nonzero(labels == BACKGROUND)[0]
    max_background = num - int(np.sum(labels == FACE))
    if len(background) > max_background:
        labels[rng.choice(background, len(background) - max_background, replace=False)] = IGNORED
    return labels
