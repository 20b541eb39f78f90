"""Intersection over union and greedy non-maximum suppression.

Boxes are ``(x1, y1, x2, y2)`` rows in pixel coordinates, ``x2 >= x1`` and
``y2 >= y1``; their area is ``(x2 - x1) * (y2 - y1)`` (continuous coordinates,
no ``+ 1``). ``offset=1`` switches to the inclusive-pixel convention of the
original MATLAB MTCNN and facenet-pytorch's ``nms_numpy``: a box covers pixels
``x1 .. x2``, so its width is ``x2 - x1 + 1``.

:func:`nms` is the readable vectorised loop below (``impl='reference'``) or a
Numba kernel (:mod:`scratchface.kernels.nms`, ``impl='auto'``); both give the
same indices, ties included.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_array, check_choice, check_in_range
from ..backend import is_cupy_array, to_device, to_host

__all__ = ["iou", "nms"]


def _check_boxes(boxes, name):
    boxes = np.asarray(boxes) if isinstance(boxes, (list, tuple)) else boxes
    if isinstance(boxes, np.ndarray) and boxes.ndim == 1 and boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    check_array(boxes, name, ndim=2, dtype_kind="fiu", finite=True)
    if boxes.shape[1] != 4:
        raise ValueError(f"{name} must have shape (n, 4) with rows (x1, y1, x2, y2), got {boxes.shape}")
    if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
        raise ValueError(f"{name} has boxes with x2 < x1 or y2 < y1; rows must be (x1, y1, x2, y2)")
    return np.asarray(boxes, dtype=np.float64)


def _check_offset(offset):
    if offset not in (0, 1) or isinstance(offset, bool):
        raise ValueError(f"offset must be 0 (continuous coordinates) or 1 (inclusive pixels, "
                         f"MATLAB MTCNN), got {offset!r}")
    return float(offset)


def iou(boxes_a, boxes_b, *, offset=0):
    """Pairwise intersection over union, shape ``(len(boxes_a), len(boxes_b))``.

    .. math:: \\mathrm{IoU}(A, B) = \\frac{|A \\cap B|}{|A| + |B| - |A \\cap B|}

    Two empty (zero-area) boxes have IoU 0. ``offset=1``: widths and heights
    are ``x2 - x1 + 1`` (inclusive pixels).
    """
    a = _check_boxes(boxes_a, "boxes_a")
    b = _check_boxes(boxes_b, "boxes_b")
    off = _check_offset(offset)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + off,
                 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + off,
                 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0] + off) * (a[:, 3] - a[:, 1] + off)
    area_b = (b[:, 2] - b[:, 0] + off) * (b[:, 3] - b[:, 1] + off)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms_reference(boxes, scores, iou_threshold, mode, offset):
    """The greedy loop on validated float64 arrays (see :func:`nms`)."""
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + offset) * (y2 - y1 + offset)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + offset, 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + offset, 0, None)
        inter = iw * ih
        denom = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        overlap = np.divide(inter, denom, out=np.zeros_like(inter), where=denom > 0)
        order = rest[overlap <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def _nms_cuda(boxes, scores, iou_threshold, mode, offset, impl):
    """NMS of CuPy boxes on the GPU (bitmask kernel); validated like the CPU path."""
    if not (is_cupy_array(boxes) and is_cupy_array(scores)):
        raise TypeError("impl='cuda' needs CuPy arrays for boxes and scores (scratchface.backend.to_device)")
    check_choice(impl, "impl", ("auto", "cuda"))
    check_array(boxes, "boxes", ndim=2, dtype_kind="fiu", finite=True)
    check_array(scores, "scores", ndim=1, dtype_kind="fiu", finite=True)
    if boxes.shape[1] != 4 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"boxes must have shape (n, 4) and scores (n,), got {tuple(boxes.shape)} "
                         f"and {tuple(scores.shape)}")
    if bool((boxes[:, 2] < boxes[:, 0]).any()) or bool((boxes[:, 3] < boxes[:, 1]).any()):
        raise ValueError("boxes has boxes with x2 < x1 or y2 < y1; rows must be (x1, y1, x2, y2)")
    iou_threshold = check_in_range(iou_threshold, "iou_threshold", 0.0, 1.0)
    check_choice(mode, "mode", ("union", "min"))
    if _check_offset(offset):  # the GPU kernel has no +1 convention: run it on the host
        return to_device(nms(to_host(boxes), to_host(scores), iou_threshold, mode, offset=offset))
    from ..kernels.cuda.nms import nms_cuda  # noqa: PLC0415  (imports CuPy and numba.cuda: lazily)
    return nms_cuda(boxes, scores, iou_threshold, mode)


def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0, impl="auto"):
    """Greedy non-maximum suppression.

    Repeatedly keep the highest-scoring remaining box and drop every remaining
    box that overlaps it by more than ``iou_threshold``. Ties in score keep the
    lower index first (a stable sort).

    Parameters
    ----------
    boxes : array, shape (n, 4)
        Rows ``(x1, y1, x2, y2)``.
    scores : array, shape (n,)
    iou_threshold : float in [0, 1]
        A box is dropped when its overlap with a kept box is ``> iou_threshold``.
    mode : {'union', 'min'}
        Overlap measure: intersection over union, or intersection over the
        smaller area (MTCNN's last step).
    offset : {0, 1}
        ``1``: inclusive-pixel widths ``x2 - x1 + 1`` (MATLAB MTCNN,
        facenet-pytorch ``nms_numpy``).
    impl : {'auto', 'reference', 'numba', 'cuda'}
        ``'reference'``: the vectorised NumPy loop; ``'auto'`` / ``'numba'``: the
        compiled kernel (same result). CuPy arrays go to the GPU bitmask kernel
        (:func:`scratchface.kernels.cuda.nms.nms_cuda`, ``offset=0``) and the indices come back
        as a CuPy array.

    Returns
    -------
    keep : int64 array, shape (k,)
        Indices of the kept boxes, by decreasing score (``(0,)`` for no boxes).

    Notes
    -----
    With ``mode='min'`` the overlap is :math:`|A \\cap B| / \\min(|A|, |B|)`.
    A pair whose denominator is 0 (degenerate boxes) has overlap 0 and never
    suppresses.
    """
    if is_cupy_array(boxes) or impl == "cuda":
        return _nms_cuda(boxes, scores, iou_threshold, mode, offset, impl)
    boxes = _check_boxes(boxes, "boxes")
    scores = np.asarray(scores) if isinstance(scores, (list, tuple)) else scores
    check_array(scores, "scores", ndim=1, dtype_kind="fiu", finite=True)
    if scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must have one score per box ({boxes.shape[0]}), got {scores.shape[0]}")
    iou_threshold = check_in_range(iou_threshold, "iou_threshold", 0.0, 1.0)
    check_choice(mode, "mode", ("union", "min"))
    off = _check_offset(offset)
    check_choice(impl, "impl", ("auto", "reference", "numba"))
    scores = np.asarray(scores, dtype=np.float64)
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    if impl == "reference":
        return nms_reference(boxes, scores, iou_threshold, mode, off)
    from ..kernels import nms as _k  # lazy: numba only when the fast path runs

    order = np.argsort(-scores, kind="stable")
    return _k.greedy_nms(np.ascontiguousarray(boxes), order, iou_threshold, mode == "min", off)
