"""Numba kernel for greedy non-maximum suppression (NumPy arrays only).

The readable version (:func:`scratchface.detection.nms.nms_reference`) filters
the whole remaining list with array operations after each kept box, allocating
new arrays each time. Here the boxes are walked once in score order with a
``suppressed`` flag per box: each kept box clears the flags of the later boxes
it overlaps, reading its own coordinates from registers. Same arithmetic in
the same order, so the same boxes are kept, ties and degenerate boxes included.

Only candidates that can intersect are visited: the boxes are bucketed by
their top-left corner into a grid of cells half the widest (tallest) box, and
a kept box scans the few cells whose corners could reach it. With boxes small
compared with the image this turns the all-pairs loop (O(kept x n)) into a
near-linear scan; with one huge box it is no worse than all pairs.

This module imports Numba; :func:`scratchface.detection.nms.nms` imports it lazily.
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["greedy_nms"]


@numba.njit(cache=True)
def greedy_nms(boxes, order, iou_threshold, use_min, offset):
    """Indices kept by greedy NMS.

    Parameters
    ----------
    boxes : float64 array, shape (n, 4)
    order : int64 array, shape (n,)
        Box indices by decreasing score (a stable sort).
    iou_threshold : float
    use_min : bool
        Overlap over the smaller area instead of the union.
    offset : float
        0.0, or 1.0 for inclusive-pixel widths.
    """
    n = order.shape[0]
    x1 = np.empty(n)
    y1 = np.empty(n)
    x2 = np.empty(n)
    y2 = np.empty(n)
    area = np.empty(n)
    for s in range(n):  # gather in score order: the inner loop reads memory in sequence
        b = order[s]
        x1[s], y1[s], x2[s], y2[s] = boxes[b, 0], boxes[b, 1], boxes[b, 2], boxes[b, 3]
        area[s] = (x2[s] - x1[s] + offset) * (y2[s] - y1[s] + offset)
    # Only boxes that intersect can suppress each other. Put every box in the
    # cell of a grid that holds its top-left corner (boxes stored cell by cell,
    # so a cell is a contiguous run); the boxes that may intersect box s have
    # their corner in [x1 - widest - offset, x2 + offset] x [y1 - tallest - offset,
    # y2 + offset], a few cells around it.
    widest = 0.0
    tallest = 0.0
    for s in range(n):
        widest = max(widest, x2[s] - x1[s])
        tallest = max(tallest, y2[s] - y1[s])
    x_min, y_min = x1.min(), y1.min()
    span_x, span_y = x1.max() - x_min, y1.max() - y_min
    cell_w = max(widest / 2.0, span_x / 256.0, 1e-9)
    cell_h = max(tallest / 2.0, span_y / 256.0, 1e-9)
    n_cx = int(span_x / cell_w) + 1
    n_cy = int(span_y / cell_h) + 1
    cell = np.empty(n, dtype=np.int64)
    counts = np.zeros(n_cx * n_cy + 1, dtype=np.int64)
    for s in range(n):
        gx = min(int((x1[s] - x_min) / cell_w), n_cx - 1)
        gy = min(int((y1[s] - y_min) / cell_h), n_cy - 1)
        cell[s] = gy * n_cx + gx
        counts[cell[s] + 1] += 1
    start = np.cumsum(counts)  # boxes of cell g in slots start[g] .. start[g + 1] - 1
    fill = start[:-1].copy()
    slot_rank = np.empty(n, dtype=np.int64)  # score rank of the box in each slot
    slot_of = np.empty(n, dtype=np.int64)
    for s in range(n):  # in score order, so each cell's run is sorted by score too
        p = fill[cell[s]]
        fill[cell[s]] += 1
        slot_rank[p] = s
        slot_of[s] = p
    sx1, sy1, sx2, sy2, sarea = x1[slot_rank], y1[slot_rank], x2[slot_rank], y2[slot_rank], area[slot_rank]

    suppressed = np.zeros(n, dtype=np.bool_)  # by slot
    keep = np.empty(n, dtype=np.int64)
    n_keep = 0
    for s in range(n):
        if suppressed[slot_of[s]]:
            continue
        keep[n_keep] = order[s]
        n_keep += 1
        ax1, ay1, ax2, ay2, a_area = x1[s], y1[s], x2[s], y2[s], area[s]
        gx0 = max(int((ax1 - widest - offset - x_min) / cell_w) - 1, 0)
        gx1 = min(int((ax2 + offset - x_min) / cell_w) + 1, n_cx - 1)
        gy0 = max(int((ay1 - tallest - offset - y_min) / cell_h) - 1, 0)
        gy1 = min(int((ay2 + offset - y_min) / cell_h) + 1, n_cy - 1)
        for gy in range(gy0, gy1 + 1):
            for gx in range(gx0, gx1 + 1):
                g = gy * n_cx + gx
                for p in range(start[g], start[g + 1]):
                    if slot_rank[p] <= s or suppressed[p]:
                        continue
                    iw = min(ax2, sx2[p]) - max(ax1, sx1[p]) + offset
                    ih = min(ay2, sy2[p]) - max(ay1, sy1[p]) + offset
                    if iw <= 0.0 or ih <= 0.0:
                        continue
                    inter = iw * ih
                    if use_min:
                        denom = min(a_area, sarea[p])
                    else:
                        denom = a_area + sarea[p] - inter
                    if denom > 0.0 and inter / denom > iou_threshold:
                        suppressed[p] = True
    return keep[:n_keep].copy()
