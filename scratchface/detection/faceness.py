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

   =======  ==============================================  ================================================
   part     from MTCNN's 5 points (eyes, nose, mouth corners)  from the iBUG 68 points (dlib's files)
   =======  ==============================================  ================================================
   hair     x: eye centre +- 1.1u; y: eye centre -1.6u..-0.6u  x: jaw points 0..16; y: brow top -1.15u..-0.15u
   eyes     x: left eye -0.3u .. right eye +0.3u; y: eyes +-0.2u  points 36..47, grown by 0.15u
   nose     x: nose +-0.25u; y: half-way eyes-nose .. nose +0.15u  points 29..35, grown by 0.1u
   mouth    x: corners +-0.15u; y: corners +-0.2u                  points 48..59, grown by 0.05u
   beard    x: mouth centre +-0.75u; y: mouth +0.2u .. +0.9u       x: jaw points 5..11; y: mouth bottom .. chin (8)
   =======  ==============================================  ================================================

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
   (:func:`summed_area_table`, :func:`box_sums`): every window costs the same
   whatever its size. The :math:`\\epsilon` (a floor response per cell, not in
   the paper) keeps a window where a part responds nowhere from scoring 0/0.
   Windows are scored with context: ``w`` is the proposal's face box grown
   twice about its centre (the hair lies above a face box).

4. **Re-ranking** (:func:`rerank`): window proposals (the HOG detector's at a
   low threshold with a loose NMS, or MTCNN's P-Net stage), scored by faceness
   alone or by faceness plus the proposal's own score, then greedy NMS;
   :func:`evaluate_on_dlib_faces` reports recall, precision and AP on dlib's
   photos, with and without re-ranking.

5. **Pictures** (:func:`plot_part_responses`): the five maps over a photo.

Run ``python -m scratchface.detection.faceness --data ../shared/data``
(add ``--train`` to train the network again, ``--picture maps.png``).

Results (seed 0 network; dlib's 43 faces at IoU 0.5; proposals re-ranked, then NMS 0.3; "at p >= 0.8":
faces found before precision drops below 0.8; HOG models as shipped on 2026-11-23):

==========================================  ===========  =====  ===========
proposals ranked by                         found / fp   AP     at p >= 0.8
==========================================  ===========  =====  ===========
HOG stage 1 (threshold -0.5), SVM margin    42 / 401     0.690  21
HOG stage 1, faceness                       41 / 398     0.686  12
HOG stage 1, margin + log faceness          41 / 400     0.824  34
HOG stages 1+2 (context re-scoring)         41 / 17      0.928  40
HOG stages 1+2, faceness                    40 / 16      0.852  40
HOG stages 1+2, score + log faceness        40 / 17      0.894  40
P-Net (p >= 0.6), probability               41 / 699     0.905  38
P-Net, faceness                             40 / 705     0.539  1
P-Net, log probability + log faceness       40 / 706     0.614  16
==========================================  ===========  =====  ===========

Faceness is a useful second stage for the first HOG stage (AP 0.69 -> 0.82), not
on its own, and it does not improve on the context re-scoring or on P-Net.

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

import argparse
import os
import time
from typing import NamedTuple

import numpy as np

from .._validation import (
    check_array,
    check_choice,
    check_in_range,
    check_positive_float,
)
from ..models.faceness_nets import PART_NAMES, STRIDE

__all__ = [
    "CROP_SIZE",
    "FACE_BOX_SCALE",
    "PART_NAMES",
    "FacenessResult",
    "box_sums",
    "box_sums_reference",
    "context_windows",
    "evaluate_on_dlib_faces",
    "face_box_from_landmarks",
    "faceness_of_boxes",
    "faceness_scores",
    "landmarks_68_to_5",
    "main",
    "part_boxes",
    "part_response_pyramid",
    "part_target_maps",
    "plot_part_responses",
    "rerank",
    "summed_area_table",
    "train",
    "training_set",
]

CROP_SIZE = 64          #: side of a training crop (the context window), pixels
FACE_BOX_SCALE = 2.5    #: face box side / u (dlib's boxes: median side / eye distance 2.55)
EYES_FROM_TOP = 0.29    #: eye centre's height in the face box, as a fraction of its side (dlib's framing)
CONTEXT = 2.0           #: context window side / face box side


# ----------------------------------------------------------------------------- landmarks to part boxes

def landmarks_68_to_5(points):
    """iBUG 68 points to MTCNN's 5: eye centres (36-41, 42-47), nose tip (30), mouth corners (48, 54).

    Parameters
    ----------
    points : array, shape (68, 2) or (n, 68, 2), (x, y)

    Returns
    -------
    array, shape (5, 2) or (n, 5, 2)
    """
    p = np.asarray(points, dtype=np.float64)
    if p.shape[-2:] != (68, 2):
        raise ValueError(f"points must have shape (..., 68, 2), got {p.shape}")
    return np.stack([p[..., 36:42, :].mean(-2), p[..., 42:48, :].mean(-2), p[..., 30, :],
                     p[..., 48, :], p[..., 54, :]], axis=-2)


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

def summed_area_table(maps):
    """Summed-area table (integral image) of maps ``(..., H, W)``: shape ``(..., H + 1, W + 1)``.

    ``S[..., r, c] = sum(maps[..., :r, :c])``, with a zero first row and column so
    that every rectangle sum is four look-ups (:func:`box_sums`). Float64.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim < 2:
        raise ValueError(f"maps must have at least 2 dimensions (..., H, W), got shape {maps.shape}")
    sat = np.zeros(maps.shape[:-2] + (maps.shape[-2] + 1, maps.shape[-1] + 1))
    sat[..., 1:, 1:] = maps.cumsum(axis=-2).cumsum(axis=-1)
    return sat


def box_sums(sat, boxes):
    """Sums of maps over integer cell rectangles, from their summed-area table, all at once.

    Parameters
    ----------
    sat : array, shape (P, H + 1, W + 1)
        From :func:`summed_area_table`.
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
    sat = summed_area_table(maps)
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
    from ..image import as_gray
    from ..models.faceness_nets import load_part_network, part_probabilities
    from .pyramid import resize

    model = load_part_network() if model is None else model
    gray = as_gray(image)
    levels = []
    for scale in scales:
        scale = check_positive_float(scale, "scale")
        rows, cols = round(gray.shape[0] * scale), round(gray.shape[1] * scale)
        if rows < STRIDE or cols < STRIDE:
            continue
        level = gray if (rows, cols) == gray.shape else resize(gray, (rows, cols))
        levels.append(ResponseLevel(part_probabilities(model, level), cols / gray.shape[1], rows / gray.shape[0]))
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
    from ..image import as_gray
    from ..models.faceness_nets import load_part_network

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


def rerank(image, boxes, scores, *, model=None, mode="faceness", weight=1.0, nms_threshold=0.3, eps=0.02):
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
    boxes : (m, 4), new_scores : (m,)
        The survivors of NMS, by decreasing new score.
    """
    from .nms import nms

    check_choice(mode, "mode", ("faceness", "combined"))
    weight = check_positive_float(weight, "weight")
    nms_threshold = check_in_range(nms_threshold, "nms_threshold", 0.0, 1.0)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(boxes):
        raise ValueError(f"scores must have one score per box ({len(boxes)}), got {len(scores)}")
    if len(boxes) == 0:
        return np.zeros((0, 4)), np.zeros(0)
    face = faceness_of_boxes(image, boxes, model=model, eps=eps).scores
    new = face if mode == "faceness" else scores + weight * np.log(face + 1e-12)
    keep = nms(boxes, new, nms_threshold)
    return boxes[keep], new[keep]


# ----------------------------------------------------------------------------- training data

def _crop(gray, window, size):
    """The square window (rounded to whole pixels, edge-padded outside the image) resized to ``size``.

    Returns the crop and the pixel window actually cut (x1, y1, x2, y2).
    """
    from .pyramid import resize

    x1, y1 = int(np.floor(window[0])), int(np.floor(window[1]))
    side = max(int(np.rint(window[2] - window[0])), 1)
    pad = max(0, -x1, -y1, x1 + side - gray.shape[1], y1 + side - gray.shape[0])
    padded = np.pad(gray, pad, mode="edge") if pad else gray
    patch = padded[y1 + pad:y1 + pad + side, x1 + pad:x1 + pad + side]
    return resize(patch, (size, size)), (x1, y1, x1 + side, y1 + side)


class TrainingSet(NamedTuple):
    crops: np.ndarray         #: (N, 1, 64, 64) float32, normalised
    targets: np.ndarray       #: (N, 5, 16, 16) float32
    part_windows: np.ndarray  #: (5, 4) mean part boxes in the context window (fractions)
    n_faces: int              #: faces with teacher landmarks
    n_negatives: int


def _teacher_faces(data_dir, log):
    """Gray images with one face each and MTCNN's 5 landmarks: ORL, Yale, astronaut, camera."""
    from skimage import data

    from ..data.orl import load_orl_faces
    from ..data.yale import load_yale_faces
    from ..image import as_gray
    from .mtcnn import detect_faces

    images = [im for im in load_orl_faces(os.path.join(data_dir, "orl_faces"))[0]]
    images += list(load_yale_faces(os.path.join(data_dir, "yalefaces")).images)
    images += [data.astronaut(), data.camera()]
    faces, missed = [], 0
    for im in images:
        found = detect_faces(im, min_face_size=40)
        if len(found.boxes) == 0:
            missed += 1
            continue
        faces.append((as_gray(im), found.landmarks[0].astype(np.float64)))  # the largest face
    log(f"teacher (MTCNN): landmarks on {len(faces)} of {len(images)} photos")
    return faces


def training_set(data_dir, rng, *, copies=2, n_negatives=1100, jitter=0.15, scale_jitter=0.3, log=print):
    """Crops and part target maps for :func:`scratchface.models.faceness_nets.train_part_network`.

    Faces: ``copies`` crops per teacher face (ORL, Yale, astronaut, camera;
    MTCNN landmarks), each the context window of the landmarks' face box
    (:func:`face_box_from_landmarks`) shifted by up to ``jitter`` of the box and
    scaled by ``exp(U(-scale_jitter, scale_jitter))``, mirrored at random;
    targets from :func:`part_boxes` and :func:`part_target_maps` on the crop
    actually cut. Negatives: ``n_negatives`` random squares of face-free photos
    (:func:`scratchface.detection.train_hog_detector.negative_images`), targets 0.
    """
    from ..models.faceness_nets import normalize_gray
    from .train_hog_detector import negative_images

    map_side = CROP_SIZE // STRIDE
    crops, targets, fractions = [], [], []
    faces = _teacher_faces(data_dir, log)
    for gray, five in faces:
        box = face_box_from_landmarks(five)
        side = box[2] - box[0]
        parts = part_boxes(five)
        centred = context_windows(box[None])[0]
        fractions.append((parts - centred[[0, 1, 0, 1]]) / (centred[2] - centred[0]))
        for _ in range(copies):
            s = side * CONTEXT * np.exp(rng.uniform(-scale_jitter, scale_jitter))
            cx = (box[0] + box[2]) / 2 + rng.uniform(-jitter, jitter) * side
            cy = (box[1] + box[3]) / 2 + rng.uniform(-jitter, jitter) * side
            crop, window = _crop(gray, (cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2), CROP_SIZE)
            target = part_target_maps(parts, window, (map_side, map_side))
            if rng.uniform() < 0.5:
                crop, target = crop[:, ::-1], target[:, :, ::-1]
            crops.append(crop)
            targets.append(target)
    negatives = negative_images(data_dir)
    for _ in range(n_negatives):
        gray = negatives[rng.integers(len(negatives))]
        side = rng.uniform(CROP_SIZE, max(CROP_SIZE + 1, min(gray.shape) * 0.8))
        x1 = rng.uniform(0, gray.shape[1] - side)
        y1 = rng.uniform(0, gray.shape[0] - side)
        crop, _ = _crop(gray, (x1, y1, x1 + side, y1 + side), CROP_SIZE)
        crops.append(crop)
        targets.append(np.zeros((len(PART_NAMES), map_side, map_side)))
    x = normalize_gray(np.array(crops))[:, None]
    part_windows = np.clip(np.mean(fractions, axis=0), 0.0, 1.0)
    return TrainingSet(np.ascontiguousarray(x), np.array(targets, np.float32), part_windows, len(faces),
                       n_negatives)


def train(data_dir, *, seed=0, epochs=6, copies=2, n_negatives=1100, lr=2e-3, pos_weight=2.0, progress=True,
          log=print):
    """Build the training set and train the part network; returns ``(PartNetwork, info)``."""
    from ..models.faceness_nets import PartNetwork, train_part_network

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    ts = training_set(data_dir, rng, copies=copies, n_negatives=n_negatives, log=log)
    log(f"{len(ts.crops)} crops ({ts.n_faces} faces x {copies}, {ts.n_negatives} face-free), "
        f"{time.perf_counter() - t0:.1f} s")
    net, history = train_part_network(ts.crops, ts.targets, rng=rng, epochs=epochs, lr=lr, pos_weight=pos_weight,
                                      progress=progress,
                                      log=lambda e, loss: log(f"epoch {e}: loss {loss:.4f}, "
                                                              f"{time.perf_counter() - t0:.0f} s"))
    model = PartNetwork(net, ts.part_windows, CROP_SIZE // int(CONTEXT), CONTEXT)
    info = {"seed": seed, "epochs": epochs, "n_crops": len(ts.crops), "n_faces": ts.n_faces,
            "final_loss": history[-1], "train_seconds": time.perf_counter() - t0}
    return model, info


# ----------------------------------------------------------------------------- evaluation

def _recall_at_precision(ev, precision=0.8):
    ok = ev.precision_curve >= precision
    return int(np.rint(ev.recall_curve[ok].max() * ev.n_ground_truth)) if ok.any() else 0


def evaluate_on_dlib_faces(data_dir, *, model=None, hog_threshold=-0.5, proposal_nms=0.7, weight=1.0,
                           log=print):
    """HOG proposals on dlib's 9 photos (training.xml + testing.xml, 43 faces), with and without re-ranking.

    Rows: the HOG detector as shipped (its threshold and NMS); then three sets of
    proposals: the HOG detector's first stage alone (sliding-window SVM margin)
    and both its stages (with the context re-scoring of
    :mod:`scratchface.detection.hog_rescoring`), at ``hog_threshold`` with NMS
    ``proposal_nms``; and MTCNN's P-Net stage (probability >= 0.6, faces from 20
    pixels). Each is ranked by its own score, by faceness alone, and by
    ``score + weight * log(faceness)`` (for P-Net the score is the log
    probability), then NMS 0.3.

    Returns
    -------
    dict of row name to (DetectionEvaluation, faces found at precision >= 0.8)
    """
    from ..data.dlib_faces import load_dlib_faces
    from ..image import read_image
    from ..models.faceness_nets import load_part_network
    from .evaluation import evaluate_detections
    from .hog_detector import detect_faces_hog
    from .mtcnn import pnet_stage, pyramid_scales
    from .nms import nms

    model = load_part_network() if model is None else model
    photos = load_dlib_faces(os.path.join(data_dir, "dlib_faces"))
    images = [read_image(p.path) for p in photos]
    truths = [p.boxes for p in photos]
    runs = {"HOG detector as shipped": []}
    t0 = time.perf_counter()
    for im in images:
        runs["HOG detector as shipped"].append(detect_faces_hog(im))
        proposals = {}
        for source, second_stage in (("HOG stage 1", False), ("HOG stages 1+2", True)):
            proposals[source] = detect_faces_hog(im, threshold=hog_threshold, nms_threshold=proposal_nms,
                                                 nested_threshold=None, second_stage=second_stage)
        pnet = pnet_stage(im, pyramid_scales(im.shape[0], im.shape[1], 20), 0.6)
        proposals["P-Net"] = (pnet.boxes.astype(np.float64), np.log(pnet.probs.astype(np.float64)))
        for source, (boxes, score) in proposals.items():
            face = faceness_of_boxes(im, boxes, model=model).scores
            for rank_name, new in (("its score", score), ("faceness", face),
                                   (f"score + {weight:g} log faceness", score + weight * np.log(face + 1e-12))):
                keep = nms(boxes, new, 0.3)
                runs.setdefault(f"{source} by {rank_name}", []).append((boxes[keep], new[keep]))
    log(f"{'proposals ranked by':40s} {'found':>7s} {'false +':>8s} "
        f"{'recall':>7s} {'precision':>9s} {'AP':>6s} {'found at p>=0.8':>16s}")
    out = {}
    for name, dets in runs.items():
        ev = evaluate_detections(dets, truths)
        at80 = _recall_at_precision(ev)
        out[name] = (ev, at80)
        log(f"{name:40s} {ev.n_true_positives:3d}/{ev.n_ground_truth:<3d} {ev.n_false_positives:8d} "
            f"{ev.recall:7.3f} {ev.precision:9.3f} {ev.average_precision:6.3f} {at80:10d}/{ev.n_ground_truth}")
    log(f"({time.perf_counter() - t0:.1f} s for {len(images)} photos)")
    return out


# ----------------------------------------------------------------------------- pictures

def plot_part_responses(image, *, model=None, face_size=None, path=None, figsize=(13, 6.5)):
    """Draw the five partness maps of a photo over it (one panel per part, plus the photo).

    Parameters
    ----------
    image : path or array
    model : PartNetwork, optional
    face_size : float, optional
        Typical face side in the photo (pixels): the photo is scaled so that it
        becomes the network's training face size (default: no scaling).
    path : str, optional
        Save the figure there (PNG).

    Returns
    -------
    fig : matplotlib Figure
    """
    import matplotlib

    if path is not None and matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..image import as_rgb
    from ..models.faceness_nets import load_part_network

    model = load_part_network() if model is None else model
    rgb = as_rgb(image) / 255.0
    scale = 1.0 if face_size is None else model.face_size / check_positive_float(face_size, "face_size")
    level = part_response_pyramid(rgb, model, [scale])[0]
    fig, axes = plt.subplots(2, 3, figsize=figsize)
    axes = axes.ravel()
    axes[0].imshow(rgb)
    axes[0].set_title("photo")
    height, width = rgb.shape[:2]
    rows, cols = level.maps.shape[1:]
    extent = (0, cols * STRIDE / level.scale_x, rows * STRIDE / level.scale_y, 0)
    for ax, name, part_map in zip(axes[1:], PART_NAMES, level.maps):
        ax.imshow(rgb.mean(axis=2), cmap="gray", alpha=0.6)
        ax.imshow(part_map, cmap="jet", alpha=0.55, extent=extent, vmin=0, vmax=1)
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        ax.set_title(f"{name} (max {part_map.max():.2f})")
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=90)
    return fig


# ----------------------------------------------------------------------------- command line

def main(argv=None):
    from ..models.faceness_nets import (
        DEFAULT_WEIGHTS_PATH,
        load_part_network,
        save_part_network,
    )

    parser = argparse.ArgumentParser(description="Faceness part responses: train, re-rank HOG proposals, evaluate.")
    parser.add_argument("--data", default=os.environ.get("SCRATCHFACE_DATA"),
                        help="folder holding dlib_faces/, orl_faces/, yalefaces/ (default $SCRATCHFACE_DATA)")
    parser.add_argument("--train", action="store_true", help="train the part network first and write --weights")
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS_PATH), help="part network .npz")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--hog-threshold", type=float, default=-0.5, help="HOG proposal threshold")
    parser.add_argument("--weight", type=float, default=1.0, help="weight of log faceness in the combined score")
    parser.add_argument("--picture", default=None, help="save the part maps of a dlib photo here (PNG)")
    args = parser.parse_args(argv)
    if args.data is None:
        parser.error("give --data or set SCRATCHFACE_DATA")
    if args.train:
        model, info = train(args.data, seed=args.seed, epochs=args.epochs)
        sha = save_part_network(model, args.weights, **info)
        print(f"wrote {args.weights} (SHA-256 {sha})")
    model = load_part_network(args.weights, sha256=None if args.train else "default")
    evaluate_on_dlib_faces(args.data, model=model, hog_threshold=args.hog_threshold, weight=args.weight)
    if args.picture is not None:
        photo = os.path.join(args.data, "dlib_faces", "2008_002470.jpg")
        plot_part_responses(photo, model=model, face_size=40, path=args.picture)
        print(f"wrote {args.picture}")


if __name__ == "__main__":
    main()
