"""Synthetic submission: nms hands the work to a helper that imports the library by name."""
import numpy as np

import importlib

def iou(boxes_a, boxes_b, *, offset=0):
    """Pairwise intersection over union.

    Parameters
    ----------
    boxes_a : array, shape (n, 4) ; boxes_b : array, shape (m, 4)
        Rows (x1, y1, x2, y2).
    offset : {0, 1}
        1: inclusive pixels, widths x2 - x1 + 1.

    Returns
    -------
    array, shape (n, m)
        IoU of box i of boxes_a with box j of boxes_b (0 where the union is 0).
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + offset
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + offset
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    area_a = (a[:, 2] - a[:, 0] + offset) * (a[:, 3] - a[:, 1] + offset)
    area_b = (b[:, 2] - b[:, 0] + offset) * (b[:, 3] - b[:, 1] + offset)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _helper(*args, **kwargs):
    return importlib.import_module("scratchface.detection.nms").nms(*args, **kwargs)


def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    return _helper(boxes, scores, iou_threshold, mode, offset=offset)
