"""Faceness: facial part responses, and the faceness score that re-ranks window proposals.

Yang, Luo, Loy and Tang's Faceness (ICCV 2015) finds faces from their parts:
networks trained to respond to hair, eyes, nose, mouth and beard give one
*partness map* per part over the whole image; a candidate window is a face when
each part's response falls where that part belongs in the window (hair at the
top, the mouth low in the middle...). This module builds every step:

1. **Part labels from landmarks** (:func:`part_boxes`, :func:`part_target_maps`).
   Each part is an axis-aligned box made from landmarks, with ``u`` the face's
   unit length, ``u = max(eye distance, eye-centre-to-mouth-centre distance)``
   (either alone shrinks when the head turns or tilts):

   =====  =====================================================  ================================================
   part   from MTCNN's 5 points (eyes, nose, mouth corners)      from the iBUG 68 points (dlib's files)
   =====  =====================================================  ================================================
   hair   x: eye centre +- 1.1u; y: eye centre -1.6u..-0.6u      x: jaw points 0..16; y: brow top -1.15u..-0.15u
   eyes   x: left eye -0.3u .. right eye +0.3u; y: eyes +-0.2u   points 36..47, grown by 0.15u
   nose   x: nose +-0.25u; y: half-way eyes-nose .. nose +0.15u  points 29..35, grown by 0.1u
   mouth  x: corners +-0.15u; y: corners +-0.2u                  points 48..59, grown by 0.05u
   beard  x: mouth centre +-0.75u; y: mouth +0.2u .. +0.9u       x: jaw points 5..11; y: mouth bottom .. chin (8)
   =====  =====================================================  ================================================

   "Hair" is the band above the eyebrows, where hair (or the top of the head)
   is; "beard" is the chin below the mouth, bearded or not. The 5-point rules
   were fitted by eye to the 68-point ones; the tests check they agree on
   dlib's 43 labelled faces. A part's **target map** over a window is, per map
   cell, the fraction of the cell covered by the part's box (0..1, exact
   interval overlaps), the supervision of the part network's sigmoid output.

2. **Part network** (:mod:`scratchface.models.faceness_nets`): one shared
   fully convolutional trunk, five 1x1 part heads, stride 4, trained (seeded)
   with a sigmoid cross-entropy on 64 x 64 gray crops: faces of ORL, Yale and
   scikit-image's astronaut and camera, whose landmarks come from MTCNN (the
   teacher, :func:`scratchface.detection.mtcnn.detect_faces`); and face-free
   crops (scikit-image's photos without people, ``dogs.jpg``) whose targets are
   all 0. dlib's labelled photos, used for evaluation, are never trained on.

3. **Faceness score** (:func:`faceness_scores`). Faceness sec. 3.2: for a
   window ``w`` and part ``a`` with partness map ``h_a`` and the part's expected
   sub-box ``b_a`` of the window (learned from training data: here, the mean
   part box of the training faces),

   .. math:: \\Delta_w^a = \\frac{\\sum_{(x, y) \\in b_a} h_a(x, y)}
                              {\\sum_{(x, y) \\in w \\setminus b_a} h_a(x, y)
                               + \\epsilon\\, |w \\setminus b_a|},
             \\qquad \\Delta_w = \\sum_a \\Delta_w^a .

   Each sum over a rectangle is four look-ups in a summed-area table
   (:func:`scratchface.detection.pyramid.summed_area_table`, :func:`box_sums`): every window costs the same
   whatever its size. The :math:`\\epsilon` (a floor response per cell, not in
   the paper) keeps a window where a part responds nowhere from scoring 0/0.
   Windows are scored with context: ``w`` is the proposal's face box grown
   twice about its centre (the hair lies above a face box).

4. **Re-ranking** (:func:`rerank`): window proposals (the HOG detector's at a
   low threshold with a loose NMS, or MTCNN's P-Net stage), scored by faceness
   alone or by faceness plus the proposal's own score, then greedy NMS.

5. **Pictures** (:func:`scratchface.viz.faceness.plot_part_responses`): the five maps over a photo.

Training the part network and the evaluation on dlib's photos, with and without
re-ranking, are ``experiments/faceness.py``: ``python -m experiments.faceness --data
../shared/data`` (add ``--train`` to train the network again, ``--picture maps.png``);
the results are in ``docs/results.md`` ("Detection").

References
----------
S. Yang, P. Luo, C. C. Loy, X. Tang, "From Facial Part Responses to Face
Detection: A Deep Learning Approach", ICCV 2015 (sec. 3.2, "ranking windows
by faceness measure": the ratio of the part's response inside its sub-region
to the rest of the window, computed on integral images, summed over parts).
P. Viola, M. Jones, "Rapid Object Detection using a Boosted Cascade of Simple
Features", CVPR 2001 (the integral image).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import (
    check_array,
    check_choice,
    check_in_range,
    check_positive_float,
)
from ..image import as_gray
from ..models.faceness_nets import PART_NAMES, STRIDE, load_part_network, part_probabilities
from .align import landmarks_68_to_5
from .detections import Detections, empty_detections
from .nms import nms
from .pyramid import image_pyramid, summed_area_table

__all__ = [
    "CROP_SIZE",
    "FACE_BOX_SCALE",
    "PART_NAMES",
    "FacenessResult",
    "box_sums",
    "box_sums_reference",
    "context_windows",
    "face_box_from_landmarks",
    "faceness_of_boxes",
    "faceness_scores",
    "part_boxes",
    "part_response_pyramid",
    "part_target_maps",
    "rerank",
]

CROP_SIZE = 64          #: side of a training crop (the context window), pixels
FACE_BOX_SCALE = 2.5    #: face box side / u (dlib's boxes: median side / eye distance 2.55)
EYES_FROM_TOP = 0.29    #: eye centre's height in the face box, as a fraction of its side (dlib's framing)
CONTEXT = 2.0           #: context window side / face box side


# ----------------------------------------------------------------------------- landmarks to part boxes

def _unit(five):
    eyes = (five[0] + five[1]) / 2
    mouth = (five[3] + five[4]) / 2
    return max(np.linalg.norm(five[1] - five[0]), np.linalg.norm(mouth - eyes)), eyes, mouth


def _check_landmarks(points):
    p = check_array(points, "landmarks", ndim=2, finite=True).astype(np.float64)
    if p.shape not in ((5, 2), (68, 2)):
        raise ValueError(f"landmarks must be 5 points (5, 2) or 68 points (68, 2) of (x, y), got {p.shape}")
    return p


def face_box_from_landmarks(points):
    """The square face box ``(x1, y1, x2, y2)`` in dlib's framing, from 5 or 68 landmarks.

    Side ``FACE_BOX_SCALE * u``; centred on the eye centre horizontally, with the
    eyes ``EYES_FROM_TOP`` of the side below its top.
    """
    p = _check_landmarks(points)
    five = landmarks_68_to_5(p) if len(p) == 68 else p
    u, eyes, _ = _unit(five)
    side = FACE_BOX_SCALE * u
    top = eyes[1] - EYES_FROM_TOP * side
    return np.array([eyes[0] - side / 2, top, eyes[0] + side / 2, top + side])


def part_boxes(points):
    """The five part boxes (hair, eyes, nose, mouth, beard) of one face, from its landmarks.

    Parameters
    ----------
    points : array, shape (5, 2) or (68, 2)
        ``(x, y)``; 5 points in MTCNN's order (left eye, right eye, nose, left
        and right mouth corner, as seen in the image) or the iBUG 68.

    Returns
    -------
    boxes : float64 array, shape (5, 4)
        ``(x1, y1, x2, y2)`` per part, in :data:`PART_NAMES` order; the rules
        are in the module's table.
    """
    p = _check_landmarks(points)
    five = landmarks_68_to_5(p) if len(p) == 68 else p
    u, eyes, mouth = _unit(five)
    left_eye, right_eye, nose, left_mouth, right_mouth = five
    if len(p) == 5:
        eye_y = (min(left_eye[1], right_eye[1]), max(left_eye[1], right_eye[1]))
        mouth_y = (min(left_mouth[1], right_mouth[1]), max(left_mouth[1], right_mouth[1]))
        boxes = [
            (eyes[0] - 1.1 * u, eyes[1] - 1.6 * u, eyes[0] + 1.1 * u, eyes[1] - 0.6 * u),
            (left_eye[0] - 0.3 * u, eye_y[0] - 0.2 * u, right_eye[0] + 0.3 * u, eye_y[1] + 0.2 * u),
            (nose[0] - 0.25 * u, (eyes[1] + nose[1]) / 2, nose[0] + 0.25 * u, nose[1] + 0.15 * u),
            (left_mouth[0] - 0.15 * u, mouth_y[0] - 0.2 * u, right_mouth[0] + 0.15 * u, mouth_y[1] + 0.2 * u),
            (mouth[0] - 0.75 * u, mouth_y[1] + 0.2 * u, mouth[0] + 0.75 * u, mouth[1] + 0.9 * u)]
    else:
        def grown(idx, margin):
            q = p[idx]
            return (q[:, 0].min() - margin, q[:, 1].min() - margin, q[:, 0].max() + margin, q[:, 1].max() + margin)
        brow_top = p[17:27, 1].min()
        mouth_bottom = p[48:60, 1].max()
        boxes = [
            (p[0:17, 0].min(), brow_top - 1.15 * u, p[0:17, 0].max(), brow_top - 0.15 * u),
            grown(np.arange(36, 48), 0.15 * u),
            grown(np.arange(29, 36), 0.1 * u),
            grown(np.arange(48, 60), 0.05 * u),
            (p[5:12, 0].min(), mouth_bottom, p[5:12, 0].max(), p[8, 1])]
    return np.array(boxes, dtype=np.float64)


def _interval_overlap(lo, hi, cell_lo, cell_hi):
    """Length of [lo, hi] inside each [cell_lo, cell_hi] (broadcast)."""
    return np.clip(np.minimum(hi, cell_hi) - np.maximum(lo, cell_lo), 0.0, None)


def part_target_maps(boxes, window, map_shape):
    """Target maps of the parts over a window: the fraction of each cell inside each part box.

    Parameters
    ----------
    boxes : array, shape (P, 4)
        Part boxes ``(x1, y1, x2, y2)`` in image pixels (from :func:`part_boxes`).
    window : (x1, y1, x2, y2)
        The region of the image that the map covers.
    map_shape : (rows, cols)
        Cell ``(i, j)`` covers ``x1 + j cw .. x1 + (j + 1) cw``, ``y1 + i ch .. y1 + (i + 1) ch``
        with ``cw = (x2 - x1) / cols``, ``ch = (y2 - y1) / rows``.

    Returns
    -------
    maps : float64 array, shape (P, rows, cols), values in [0, 1]

    Notes
    -----
    The covered fraction of a cell by a box is separable:
    ``overlap_x(j) * overlap_y(i) / (cw ch)``, each overlap the length of the
    intersection of two intervals, ``max(0, min(b2, c2) - max(b1, c1))``.
    """
    boxes = check_array(boxes, "boxes", ndim=2, finite=True).astype(np.float64)
    if boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (P, 4), got {boxes.shape}")
    x1, y1, x2, y2 = (float(v) for v in window)
    if not (x2 > x1 and y2 > y1):
        raise ValueError(f"window must have x2 > x1 and y2 > y1, got {tuple(window)}")
    rows, cols = int(map_shape[0]), int(map_shape[1])
    if rows <= 0 or cols <= 0:
        raise ValueError(f"map_shape must be positive, got {tuple(map_shape)}")
    cw, ch = (x2 - x1) / cols, (y2 - y1) / rows
    cx = x1 + cw * np.arange(cols + 1)
    cy = y1 + ch * np.arange(rows + 1)
    ox = _interval_overlap(boxes[:, 0:1], boxes[:, 2:3], cx[None, :-1], cx[None, 1:]) / cw   # (P, cols)
    oy = _interval_overlap(boxes[:, 1:2], boxes[:, 3:4], cy[None, :-1], cy[None, 1:]) / ch   # (P, rows)
    return oy[:, :, None] * ox[:, None, :]


# ----------------------------------------------------------------------------- integral images

def box_sums(sat, boxes):
    """Sums of maps over integer cell rectangles, from their summed-area table, all at once.

    Parameters
    ----------
    sat : array, shape (P, H + 1, W + 1)
        From :func:`scratchface.detection.pyramid.summed_area_table` of maps ``(P, H, W)``
        (``axes=(-2, -1)``).
    boxes : int array, shape (n, 4) or (n, P, 4)
        ``(c1, r1, c2, r2)``, half-open: columns ``c1 .. c2 - 1``, rows
        ``r1 .. r2 - 1``; ``0 <= c1 <= c2 <= W``, ``0 <= r1 <= r2 <= H``. With
        ``(n, P, 4)`` each map gets its own rectangle.

    Returns
    -------
    sums : float64 array, shape (n, P)

    Notes
    -----
    .. math:: \\sum_{r_1 \\le r < r_2,\\ c_1 \\le c < c_2} h(r, c)
              = S[r_2, c_2] - S[r_1, c_2] - S[r_2, c_1] + S[r_1, c_1].
    """
    sat = np.asarray(sat)
    boxes = np.asarray(boxes)
    if boxes.dtype.kind not in "iu":
        raise TypeError(f"boxes must be integer cell indices, got {boxes.dtype}")
    n_maps = sat.shape[0]
    if boxes.ndim == 2:
        boxes = np.broadcast_to(boxes[:, None, :], (len(boxes), n_maps, 4))
    if boxes.ndim != 3 or boxes.shape[1:] != (n_maps, 4):
        raise ValueError(f"boxes must have shape (n, 4) or (n, {n_maps}, 4), got {boxes.shape}")
    c1, r1, c2, r2 = (boxes[..., k] for k in range(4))
    if (c1 < 0).any() or (r1 < 0).any() or (c2 > sat.shape[2] - 1).any() or (r2 > sat.shape[1] - 1).any() \
            or (c2 < c1).any() or (r2 < r1).any():
        raise ValueError("boxes must satisfy 0 <= c1 <= c2 <= W and 0 <= r1 <= r2 <= H")
    m = np.arange(n_maps)[None, :]
    return sat[m, r2, c2] - sat[m, r1, c2] - sat[m, r2, c1] + sat[m, r1, c1]


def box_sums_reference(maps, boxes):
    """:func:`box_sums` by brute force: loop over the boxes, sum each slice (for the tests and the lecture)."""
    maps = np.asarray(maps, dtype=np.float64)
    boxes = np.asarray(boxes)
    if boxes.ndim == 2:
        boxes = np.repeat(boxes[:, None, :], maps.shape[0], axis=1)
    out = np.zeros(boxes.shape[:2])
    for i in range(boxes.shape[0]):
        for p in range(boxes.shape[1]):
            c1, r1, c2, r2 = boxes[i, p]
            out[i, p] = maps[p, r1:r2, c1:c2].sum()
    return out


# ----------------------------------------------------------------------------- the faceness score

def faceness_scores(maps, windows, part_windows, *, eps=0.02):
    """Faceness of windows on one set of partness maps (Faceness sec. 3.2, with an ``eps`` floor).

    Parameters
    ----------
    maps : array, shape (P, H, W)
        Partness maps (probabilities) of one image at one scale.
    windows : array, shape (n, 4)
        ``(x1, y1, x2, y2)`` in **cell** units of the maps (continuous; a
        window may stick out of the map, where the response counts as 0).
    part_windows : array, shape (P, 4)
        Each part's expected sub-box as fractions (0..1) of a window.
    eps : float >= 0
        Floor response per cell outside the sub-box (see the module's equation).

    Returns
    -------
    total : float64 array, shape (n,)
        :math:`\\Delta_w = \\sum_a \\Delta_w^a`.
    per_part : float64 array, shape (n, P)
        :math:`\\Delta_w^a`.

    Notes
    -----
    Window and sub-box edges are rounded to the nearest cell edge and clipped to
    the map; the part's sum in the rest of the window is the window's sum minus
    the sub-box's (the sub-box lies inside the window), each from the summed-area
    table. The area of the rest, :math:`|w \\setminus b_a|` (at least one cell),
    is the rounded window's cell count minus the rounded sub-box's, before
    clipping: cells outside the map count, with response 0.
    """
    maps = check_array(maps, "maps", ndim=3, finite=True)
    windows = check_array(windows, "windows", ndim=2, finite=True).astype(np.float64)
    part_windows = check_array(part_windows, "part_windows", ndim=2, finite=True).astype(np.float64)
    if windows.shape[1] != 4:
        raise ValueError(f"windows must have shape (n, 4), got {windows.shape}")
    if (windows[:, 2] < windows[:, 0]).any() or (windows[:, 3] < windows[:, 1]).any():
        raise ValueError("windows must have x2 >= x1 and y2 >= y1")
    if part_windows.shape != (maps.shape[0], 4):
        raise ValueError(f"part_windows must have shape ({maps.shape[0]}, 4), got {part_windows.shape}")
    if part_windows.min() < 0 or part_windows.max() > 1:
        raise ValueError("part_windows must be fractions of the window, in [0, 1]")
    eps = check_positive_float(eps, "eps", allow_zero=True)
    n_parts, rows, cols = maps.shape
    if len(windows) == 0:
        return np.zeros(0), np.zeros((0, n_parts))
    sat = summed_area_table(maps, axes=(-2, -1))
    x1, y1, x2, y2 = (windows[:, k:k + 1] for k in range(4))        # (n, 1)
    fx1, fy1, fx2, fy2 = (part_windows[None, :, k] for k in range(4))  # (1, P)
    # integer cell edges (n, P, 4) of the window and of each part's sub-box, before clipping to the map
    w_edges = np.broadcast_to(np.rint(np.stack([x1, y1, x2, y2], axis=-1)), (len(windows), n_parts, 4))
    b_edges = np.rint(np.stack([x1 + fx1 * (x2 - x1), y1 + fy1 * (y2 - y1),
                                x1 + fx2 * (x2 - x1), y1 + fy2 * (y2 - y1)], axis=-1))
    limits = np.array([cols, rows, cols, rows])
    inside = box_sums(sat, np.clip(b_edges, 0, limits).astype(np.int64))   # (n, P)
    whole = box_sums(sat, np.clip(w_edges, 0, limits).astype(np.int64))
    # cells of the rest of the window, those outside the map included (they respond 0)
    area = lambda e: (e[..., 2] - e[..., 0]) * (e[..., 3] - e[..., 1])
    rest_area = np.maximum(area(w_edges) - area(b_edges), 1.0)
    per_part = inside / (np.maximum(whole - inside, 0.0) + eps * rest_area + 1e-12)
    return per_part.sum(axis=1), per_part


def context_windows(boxes, context=CONTEXT):
    """Face boxes ``(n, 4)`` grown ``context`` times about their centres (the window faceness scores)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    half_w, half_h = context * (boxes[:, 2] - boxes[:, 0]) / 2, context * (boxes[:, 3] - boxes[:, 1]) / 2
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)


# ----------------------------------------------------------------------------- response maps on images

class ResponseLevel(NamedTuple):
    """The partness maps of one pyramid level."""
    maps: np.ndarray   #: (5, h // 4, w // 4) probabilities
    scale_x: float     #: level pixels per image pixel, horizontally
    scale_y: float


def part_response_pyramid(image, model=None, scales=(1.0,)):
    """Partness maps of an image at several scales.

    Parameters
    ----------
    image : path, PIL image or array (gray, RGB or RGBA)
    model : PartNetwork, optional
        Default: the shipped one (:func:`scratchface.models.faceness_nets.load_part_network`).
    scales : sequence of float
        Level ``k`` is the gray image resized by ``scales[k]`` (a face of ``s``
        pixels becomes ``s * scale``; the network was trained on 32-pixel faces).

    Returns
    -------
    list of ResponseLevel (levels too small for one map cell are left out)
    """
    model = load_part_network() if model is None else model
    gray = as_gray(image)
    scales = [check_positive_float(scale, "scale") for scale in scales]
    levels = []
    for level in image_pyramid(gray, scales):
        rows, cols = level.image.shape
        if rows < STRIDE or cols < STRIDE:
            continue
        levels.append(ResponseLevel(part_probabilities(model, level.image), cols / gray.shape[1],
                                    rows / gray.shape[0]))
    return levels


class FacenessResult(NamedTuple):
    """Faceness of boxes on one image."""
    scores: np.ndarray    #: (n,) total faceness
    per_part: np.ndarray  #: (n, 5)
    level: np.ndarray     #: (n,) int, k such that each box was scored at scale ``scale_step ** k``


def _level_scales(face_sides, face_size, step):
    """The geometric grid of scales ``step**k`` needed to bring faces to about ``face_size`` pixels."""
    wanted = np.log(face_size / np.asarray(face_sides, float)) / np.log(step)
    ks = np.unique(np.rint(wanted).astype(int))
    return ks, np.rint(wanted).astype(int)


def faceness_of_boxes(image, boxes, *, model=None, eps=0.02, scale_step=2 ** 0.5):
    """Faceness of face boxes on one image; maps computed once per needed scale.

    Each box is scored on the pyramid level where its side is closest to the
    network's training face size (levels ``scale_step ** k`` apart), on its
    context window (:func:`context_windows`), with :func:`faceness_scores`.

    Returns
    -------
    FacenessResult
    """
    model = load_part_network() if model is None else model
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n_parts = len(PART_NAMES)
    if len(boxes) == 0:
        return FacenessResult(np.zeros(0), np.zeros((0, n_parts)), np.zeros(0, np.int64))
    sides = np.sqrt(np.maximum(boxes[:, 2] - boxes[:, 0], 1e-6) * np.maximum(boxes[:, 3] - boxes[:, 1], 1e-6))
    ks, box_k = _level_scales(sides, model.face_size, scale_step)
    gray = as_gray(image)
    scores, per_part = np.zeros(len(boxes)), np.zeros((len(boxes), n_parts))
    windows = context_windows(boxes, model.context)
    for k in ks:
        levels = part_response_pyramid(gray, model, [scale_step ** float(k)])
        if not levels:  # the image shrinks below one map cell: no response, faceness 0
            continue
        level, sel = levels[0], box_k == k
        cells = windows[sel] * np.array([level.scale_x, level.scale_y] * 2) / STRIDE
        scores[sel], per_part[sel] = faceness_scores(level.maps, cells, model.part_windows, eps=eps)
    return FacenessResult(scores, per_part, box_k)


def rerank(image, boxes, scores, *, model=None, mode="faceness", weight=1.0, nms_threshold=0.3,
           eps=0.02) -> Detections:
    """Re-score window proposals by faceness, then greedy NMS.

    Parameters
    ----------
    image : path or array
    boxes : array (n, 4); scores : array (n,)
        Proposals and their detector scores (e.g. HOG SVM margins).
    mode : {'faceness', 'combined'}
        ``'faceness'``: the new score is :math:`\\Delta_w`; ``'combined'``:
        ``score + weight * log(Delta_w)`` (the log puts the ratio on an
        additive scale like the SVM margin).
    weight : float > 0
    nms_threshold : float in [0, 1]

    Returns
    -------
    Detections
        ``boxes`` (m, 4) and ``scores`` (m,), the new scores, of the survivors of
        NMS by decreasing new score; ``landmarks`` None.
    """
    check_choice(mode, "mode", ("faceness", "combined"))
    weight = check_positive_float(weight, "weight")
    nms_threshold = check_in_range(nms_threshold, "nms_threshold", 0.0, 1.0)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(boxes):
        raise ValueError(f"scores must have one score per box ({len(boxes)}), got {len(scores)}")
    if len(boxes) == 0:
        return empty_detections()
    face = faceness_of_boxes(image, boxes, model=model, eps=eps).scores
    new = face if mode == "faceness" else scores + weight * np.log(face + 1e-12)
    keep = nms(boxes, new, nms_threshold)
    return Detections(boxes[keep], new[keep], None)
