"""Synthetic submission: NMS suppresses at >= (wrong nms)."""
import numpy as np

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


def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    """Greedy non-maximum suppression.

    Parameters
    ----------
    boxes : array, shape (n, 4)
    scores : array, shape (n,)
    iou_threshold : float in [0, 1]
        A box is dropped when its overlap with a kept box is > iou_threshold.
    mode : {'union', 'min'}
    offset : {0, 1}

    Returns
    -------
    keep : int64 array, shape (k,)
        Indices of the kept boxes, by decreasing score.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64)
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + offset) * (y2 - y1 + offset)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + offset, 0)
        ih = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + offset, 0)
        inter = iw * ih
        if mode == "min":
            denom = np.minimum(area[i], area[rest])
        else:
            denom = area[i] + area[rest] - inter
        overlap = np.divide(inter, denom, out=np.zeros_like(inter), where=denom > 0)
        order = rest[overlap < iou_threshold]
    return np.asarray(keep, dtype=np.int64)
