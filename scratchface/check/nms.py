"""Checkers for assignment 5: intersection over union and greedy non-maximum suppression.

The student writes (the signatures of :mod:`scratchface.detection.nms`, without ``impl``)::

    iou(boxes_a, boxes_b, *, offset=0)                      -> (n, m) pairwise IoU
    nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0) -> int indices, by score

Boxes are rows ``(x1, y1, x2, y2)``; ``offset=1`` is the inclusive-pixel convention (width
``x2 - x1 + 1``). The right answers come from :func:`scratchface.detection.nms.iou` and the readable
``nms_reference``; the likely mistake is found by re-running the computation with one typical
mistake planted (:func:`iou_variant`, :func:`greedy_nms_variant`) and seeing which one the student's
output equals.
"""
from __future__ import annotations

import numpy as np

from ._core import CheckResult, compare, register
from ._library import nms_module as _ref
from ._variants import compare_indices, run_student, shape_of, variant_hint

__all__ = ["iou_variant", "greedy_nms_variant", "check_iou", "check_nms"]


# ----------------------------------------------------------------------------- wrong variants

def iou_variant(a, b, offset=0, *, plus_one=None, union="union", clip=True, nan_for_empty=False,
                xywh=False, inter_plus_one=None, swap_minmax=False):
    """Pairwise IoU written plainly, with switches that plant one mistake each.

    plus_one : override the ``+ offset`` on widths (True / False); union : 'union' (right),
    'sum' (areas added, intersection counted twice), 'min' (the smaller area), 'a' (area of box a);
    clip : clip negative overlaps at 0; nan_for_empty : 0 / 0 left as NaN; xywh : rows read as
    (x, y, w, h); inter_plus_one : override the ``+ offset`` of the intersection only; swap_minmax :
    the intersection from the smaller left edge to the larger right edge.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if xywh:
        a = np.column_stack([a[:, :2], a[:, :2] + a[:, 2:]])
        b = np.column_stack([b[:, :2], b[:, :2] + b[:, 2:]])
    off = float(offset) if plus_one is None else float(plus_one)
    ioff = off if inter_plus_one is None else float(inter_plus_one)
    lo, hi = (np.minimum, np.maximum) if swap_minmax else (np.maximum, np.minimum)
    iw = hi(a[:, None, 2], b[None, :, 2]) - lo(a[:, None, 0], b[None, :, 0]) + ioff
    ih = hi(a[:, None, 3], b[None, :, 3]) - lo(a[:, None, 1], b[None, :, 1]) + ioff
    if clip:
        iw, ih = np.maximum(iw, 0), np.maximum(ih, 0)
    inter = iw * ih
    area_a = ((a[:, 2] - a[:, 0] + off) * (a[:, 3] - a[:, 1] + off))[:, None]
    area_b = ((b[:, 2] - b[:, 0] + off) * (b[:, 3] - b[:, 1] + off))[None, :]
    denom = {"union": area_a + area_b - inter, "sum": area_a + area_b + 0 * inter,
             "min": np.minimum(area_a, area_b) + 0 * inter, "a": area_a + 0 * inter}[union]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = inter / denom
    if not nan_for_empty:
        out = np.where(denom > 0, out, 0.0)
    return out


def greedy_nms_variant(boxes, scores, iou_threshold, mode="union", offset=0, *, order="stable",
                       strict=True, suppressed_suppress=False, sort_output=False, ignore_mode=False,
                       plus_one=None, suppress_all=False, rule="greedy"):
    """Greedy NMS as a plain loop over pairs, with switches that plant one mistake each.

    order : 'stable' (right: by decreasing score, ties lower index first), 'input' (not sorted),
    'ascending', 'ties_high' (ties: higher index first); strict : suppress at ``> thr`` (right)
    or ``>= thr``; suppressed_suppress : a suppressed box still suppresses later ones; sort_output :
    indices returned in index order; ignore_mode : always IoU; plus_one : as in :func:`iou_variant`;
    suppress_all : keep only the top box's non-overlappers but never drop overlaps among the rest;
    rule : 'greedy' (right), 'last_only' (a box is compared with the last kept box only), 'any' (kept
    when it overlaps ANY kept box little, instead of all).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64)
    n = boxes.shape[0]
    if order == "stable":
        idx = np.argsort(-scores, kind="stable")
    elif order == "input":
        idx = np.arange(n)
    elif order == "ascending":
        idx = np.argsort(scores, kind="stable")
    else:  # ties_high
        idx = np.argsort(scores, kind="stable")[::-1]
    union = "union" if (mode == "union" or ignore_mode) else "min"
    overlap = iou_variant(boxes, boxes, offset, plus_one=plus_one, union=union)
    keep = []
    if rule != "greedy":
        for i in idx:
            small = overlap[keep[-1:] if rule == "last_only" else keep, i] <= iou_threshold
            if not keep or (small[0] if rule == "last_only" else small.any()):
                keep.append(i)
        return np.asarray(keep, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    for k, i in enumerate(idx):
        if alive[i]:
            keep.append(i)
        elif not suppressed_suppress:
            continue
        if suppress_all and k > 0:
            continue
        for j in idx[k + 1:]:
            if (overlap[i, j] > iou_threshold) if strict else (overlap[i, j] >= iou_threshold):
                alive[j] = False
    keep = np.asarray(keep, dtype=np.int64)
    return np.sort(keep) if sort_output else keep


# ----------------------------------------------------------------------------- cases

def _random_boxes(rng, n, *, clusters=3, size=40):
    """Integer boxes around a few centres, so that many overlap (and the +1 matters)."""
    centres = rng.integers(10, size, size=(clusters, 2))
    c = centres[rng.integers(clusters, size=n)] + rng.integers(-4, 5, size=(n, 2))
    wh = rng.integers(4, 16, size=(n, 2))
    return np.column_stack([c - wh // 2, c - wh // 2 + wh]).astype(np.float64)


def _iou_cases(rng):
    cases = []
    for offset in (0, 1):
        a, b = _random_boxes(rng, 5), _random_boxes(rng, 7)
        cases.append((f"5 and 7 random integer boxes, offset={offset}", a, b, offset))
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 20], [10, 0, 20, 10], [2, 2, 4, 4], [30, 30, 40, 40]], float)
    cases.append(("hand-made boxes: identical, half-overlap, touching edge, nested, disjoint, offset=0",
                  a, a[:3], 0))
    cases.append(("the same hand-made boxes with offset=1 (inclusive pixels)", a, a[:3], 1))
    degenerate = np.array([[5, 5, 5, 5], [0, 0, 10, 0], [0, 0, 10, 10]], float)
    cases.append(("degenerate boxes of zero width or height (IoU 0, never NaN)", degenerate, degenerate, 0))
    cases.append(("boxes_a empty, shape (0, 4)", np.zeros((0, 4)), a[:3], 0))
    for dtype in (np.int64, np.int32):  # pixel boxes often come as integers: IoU stays a float
        a, b = _random_boxes(rng, 5).astype(dtype), _random_boxes(rng, 6).astype(dtype)
        cases.append((f"integer boxes (dtype {np.dtype(dtype).name}), offset=1", a, b, 1))
    return cases


def _iou_hints(a, b, offset):
    flip = 1 - offset
    return variant_hint([
        ("the +1 of inclusive pixels is missing: with offset=1 widths are x2 - x1 + 1 (also for the "
         "intersection)" if offset else
         "added +1 to widths/heights although offset=0 (continuous coordinates: width = x2 - x1)",
         lambda: iou_variant(a, b, offset, plus_one=flip)),
        ("the union is the sum of the two areas: subtract the intersection (it is counted twice)",
         lambda: iou_variant(a, b, offset, union="sum")),
        ("divided by the smaller area (that is NMS's 'min' mode), not by the union",
         lambda: iou_variant(a, b, offset, union="min")),
        ("divided by the area of the first box only, not by the union",
         lambda: iou_variant(a, b, offset, union="a")),
        ("the overlap width/height is not clipped at 0: disjoint boxes get a negative (or, when both are "
         "negative, a positive) intersection; use max(0, ...)", lambda: iou_variant(a, b, offset, clip=False)),
        ("the +1 is in the areas but not in the intersection's width and height" if offset else
         "a +1 in the intersection's width and height although offset=0",
         lambda: iou_variant(a, b, offset, inter_plus_one=1 - offset)),
        ("min and max swapped: the intersection runs from the LARGER left edge to the SMALLER right edge",
         lambda: iou_variant(a, b, offset, swap_minmax=True)),
        ("rows read as (x, y, w, h); they are (x1, y1, x2, y2)", lambda: iou_variant(a, b, offset, xywh=True)),
        ("the result is transposed: row i is box i of boxes_a, column j box j of boxes_b",
         lambda: iou_variant(b, a, offset)),
        ("0 / 0 for boxes of zero area: return 0 where the union is 0 (np.divide(..., where=union > 0))",
         lambda: iou_variant(a, b, offset, nan_for_empty=True)),
        ("the result took the boxes' integer dtype (np.zeros_like(boxes...) or dtype=boxes.dtype), so every "
         "IoU below 1 became 0: make the result float (np.zeros((n, m)), or convert the boxes with "
         "np.asarray(boxes, dtype=np.float64))",
         lambda: np.trunc(iou_variant(a, b, offset)) if a.dtype.kind in "iu" else None),
    ], fallback="compare with IoU = |A and B| / (|A| + |B| - |A and B|) worked by hand on that pair")


@register("iou")
def check_iou(student_fn, namespace) -> CheckResult:
    """``iou(boxes_a, boxes_b, *, offset=0)`` against :func:`scratchface.detection.nms.iou`."""
    result = CheckResult("iou")
    rng = np.random.default_rng(5)
    for case, a, b, offset in _iou_cases(rng):
        result.n_cases += 1
        kwargs = {"offset": offset} if offset else {}
        raised, got = run_student(result, student_fn, a.copy(), b.copy(), case=case, **kwargs)
        if raised == "not implemented":
            break
        if raised:
            continue
        expected = _ref.iou(a, b, offset=offset)
        if shape_of(got) == expected.T.shape != expected.shape:
            result.add(f"IoU has shape {shape_of(got)}, expected {expected.shape}", case,
                       "the result is transposed: row i is box i of boxes_a, column j box j of boxes_b")
            continue
        if compare(result, got, expected, what="IoU", case=case, hint=_iou_hints(a, b, offset)):
            kind = np.asarray(got).dtype.kind
            if kind != "f" and expected.size:
                result.add(f"IoU has dtype {np.asarray(got).dtype}, expected a float dtype", case,
                           "IoU is a fraction: return a float array whatever the boxes' dtype")
    return result


# ----------------------------------------------------------------------------- nms

def _nms_cases(rng):
    cases = []
    for n, thr in ((12, 0.3), (20, 0.5), (15, 0.7)):
        boxes = _random_boxes(rng, n)
        scores = rng.random(n)
        cases.append((f"{n} random boxes, iou_threshold={thr}", boxes, scores, thr, "union", 0))
    boxes = _random_boxes(rng, 14)
    scores = np.round(rng.random(14), 1)  # many ties
    cases.append(("14 boxes with tied scores (ties: the lower index first)", boxes, scores, 0.4, "union", 0))
    boxes = _random_boxes(rng, 12)
    cases.append(("12 boxes, mode='min' (intersection over the smaller area)", boxes, rng.random(12), 0.5,
                  "min", 0))
    cases.append(("12 boxes, offset=1 (inclusive pixels)", boxes, rng.random(12), 0.4, "union", 1))
    chain = np.array([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]], float)
    cases.append(("a chain A-B-C: A overlaps B, B overlaps C, A does not overlap C (keep A and C)",
                  chain, np.array([0.9, 0.8, 0.7]), 0.3, "union", 0))
    equal = np.array([[0, 0, 10, 20], [0, 0, 10, 10], [0, 10, 10, 20]], float)
    cases.append(("IoU exactly equal to iou_threshold=0.5 (not suppressed: only > suppresses)",
                  equal, np.array([0.9, 0.8, 0.7]), 0.5, "union", 0))
    unsorted = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [30, 30, 40, 40], [31, 30, 41, 40]], float)
    cases.append(("boxes not given in score order", unsorted, np.array([0.2, 0.9, 0.6, 0.7]), 0.5, "union", 0))
    degenerate = np.array([[5, 5, 5, 5], [0, 0, 10, 10], [5, 5, 5, 5]], float)
    cases.append(("degenerate zero-area boxes (overlap 0: they never suppress)", degenerate,
                  np.array([0.9, 0.8, 0.7]), 0.3, "union", 0))
    cases.append(("one box", np.array([[1.0, 2.0, 3.0, 4.0]]), np.array([0.5]), 0.5, "union", 0))
    cases.append(("no boxes: boxes of shape (0, 4)", np.zeros((0, 4)), np.zeros(0), 0.5, "union", 0))
    return cases


def _nms_hints(boxes, scores, thr, mode, offset):
    def v(**kw):
        return lambda: greedy_nms_variant(boxes, scores, thr, mode, offset, **kw)
    return variant_hint([
        ("the boxes are not processed by decreasing score: sort first (np.argsort(-scores, kind='stable'))",
         v(order="input")),
        ("sorted by increasing score: NMS keeps the HIGHEST score first", v(order="ascending")),
        ("ties broken toward the higher index (np.argsort(scores)[::-1]); use a stable sort of -scores",
         v(order="ties_high")),
        ("suppressed with >= instead of >: a box whose overlap equals iou_threshold is kept", v(strict=False)),
        ("suppressed boxes still suppress others: only KEPT boxes may suppress (remove suppressed "
         "boxes from the candidates)", v(suppressed_suppress=True)),
        ("only the first box suppresses: repeat the step for every kept box", v(suppress_all=True)),
        ("each box was compared with the last kept box only; compare it with every kept box",
         v(rule="last_only")),
        ("a box was kept when ANY kept box overlaps it little; it must overlap EVERY kept box little "
         "(no kept box may overlap it by more than iou_threshold)", v(rule="any")),
        ("the indices are in index order; return them in the order they were kept (decreasing score)",
         v(sort_output=True)),
        ("mode='min' ignored: the overlap must be the intersection over the smaller area", v(ignore_mode=True)),
        ("offset ignored: with offset=1 widths are x2 - x1 + 1" if offset else
         "added +1 to widths although offset=0", v(plus_one=1 - offset)),
    ], fallback="follow the greedy loop: take the best remaining box, keep it, drop every remaining box "
                "that overlaps it by more than iou_threshold, repeat")


@register("nms")
def check_nms(student_fn, namespace) -> CheckResult:
    """``nms(boxes, scores, iou_threshold, mode, *, offset=0)`` against ``nms_reference``."""
    result = CheckResult("nms")
    rng = np.random.default_rng(55)
    for case, boxes, scores, thr, mode, offset in _nms_cases(rng):
        result.n_cases += 1
        kwargs = {"offset": offset} if offset else {}
        raised, got = run_student(result, student_fn, boxes.copy(), scores.copy(), thr, mode, case=case,
                                  **kwargs)
        if raised == "not implemented":
            break
        if raised:
            continue
        expected = _ref.nms(boxes, scores, thr, mode, offset=offset, impl="reference")
        arr = np.asarray(got) if shape_of(got) is not None else np.zeros(0, dtype=object)
        if arr.dtype == bool and arr.shape == (len(boxes),):
            result.add("nms returned a boolean mask; return the kept indices (np.flatnonzero would give "
                       "them in index order, but they must be in order of decreasing score)", case)
            continue
        if not compare_indices(result, got, expected, what="kept indices (in the order kept)", case=case,
                               hint=_nms_hints(boxes, scores, thr, mode, offset)):
            continue
        if arr.dtype.kind not in "iu":
            hint = ("np.array([]) is float64: use np.array(keep, dtype=np.int64)" if arr.size == 0 else
                    "indices must be integers, usable to index boxes")
            result.add(f"the kept indices have dtype {arr.dtype}, expected an integer dtype", case, hint)
    return result

