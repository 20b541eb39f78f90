"""Synthetic submission: correct, written with plain loops (another style)."""
import numpy as np


def iou(boxes_a, boxes_b, *, offset=0):
    a = np.asarray(boxes_a, dtype=float).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=float).reshape(-1, 4)
    out = np.zeros((len(a), len(b)))
    for i in range(len(a)):
        for j in range(len(b)):
            w = max(0.0, min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0]) + offset)
            h = max(0.0, min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1]) + offset)
            area_a = (a[i, 2] - a[i, 0] + offset) * (a[i, 3] - a[i, 1] + offset)
            area_b = (b[j, 2] - b[j, 0] + offset) * (b[j, 3] - b[j, 1] + offset)
            union = area_a + area_b - w * h
            out[i, j] = w * h / union if union > 0 else 0.0
    return out


def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    order = list(np.argsort(-np.asarray(scores, dtype=float), kind="stable"))
    keep = []
    for i in order:
        ok = True
        for k in keep:
            x1, y1 = max(boxes[i, 0], boxes[k, 0]), max(boxes[i, 1], boxes[k, 1])
            x2, y2 = min(boxes[i, 2], boxes[k, 2]), min(boxes[i, 3], boxes[k, 3])
            inter = max(0.0, x2 - x1 + offset) * max(0.0, y2 - y1 + offset)
            ai = (boxes[i, 2] - boxes[i, 0] + offset) * (boxes[i, 3] - boxes[i, 1] + offset)
            ak = (boxes[k, 2] - boxes[k, 0] + offset) * (boxes[k, 3] - boxes[k, 1] + offset)
            denom = min(ai, ak) if mode == "min" else ai + ak - inter
            if denom > 0 and inter / denom > iou_threshold:
                ok = False
                break
        if ok:
            keep.append(i)
    return np.array(keep, dtype=np.int64)
