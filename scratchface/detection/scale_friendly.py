"""Scale-friendly face detection: anchors, faces assigned to branches by size, targets, training, inference.

The network (:class:`scratchface.models.scale_friendly.ScaleFriendlyNet`) has a
shared backbone and three scale-variant branches (Yang et al. 2017), each a small
Faster R-CNN. This module says what each branch learns and how its outputs
become face boxes.

Training (:func:`train_scale_friendly`), per branch and per image:

1. **Faces are assigned to branches by size** (:func:`assign_branches`): a face
   of height :math:`h` (WIDER FACE's size measure) belongs to the branch whose band
   ``face_sizes = (low, high)`` holds it (10-30 px -> small, 30-120 -> medium,
   120-240 -> large). A branch learns only its own faces; anchors on another
   branch's face are *ignored* (neither face nor background), as in the paper,
   so that no branch is taught that a face of the wrong size is background.
2. **Anchor targets by IoU** (:func:`label_by_iou`, Faster R-CNN sec. 3.1.2): an
   anchor is a face if its IoU with one of the branch's faces is >= 0.5, or it is
   the best anchor of that face; background if its IoU with *every* face is < 0.3;
   otherwise ignored. 64 anchors per image are sampled, up to half faces
   (:func:`sample_labels`).
3. **Box targets** (:func:`encode_boxes`, Faster R-CNN eq. 2): centre offsets in
   anchor widths and log size ratios.
4. **ROI classifier targets**: the proposal head's best boxes after NMS, plus
   the branch's ground-truth faces and jittered copies of them (so that the
   classifier sees faces from the first step), are labelled by IoU (face >= 0.5,
   background < 0.4), 32 per image with up to a quarter faces, pooled by ROI
   align and classified.
5. **Loss** (Faster R-CNN eq. 1, summed over the three branches): softmax
   cross-entropy of the sampled anchors + smooth L1 (:func:`smooth_l1_forward`)
   of the face anchors' offsets, the same two terms for the ROIs. The gradient
   of each branch enters the backbone at its tap. As in Faster R-CNN's
   approximate joint training, the proposals' coordinates are not differentiated.

Inference (:func:`detect_faces_scale_friendly`): one forward pass at the image's
own scale; each branch's best anchors become proposals (decoded, clipped, NMS),
its ROI classifier scores and refines them; boxes whose size falls far outside
the branch's band are dropped; the three branches' boxes are merged by NMS.

What is simplified against the paper: the training set is synthetic (ORL / Yale
faces pasted at known sizes on face-free photos,
:func:`scratchface.detection.synthetic.synthetic_face_scenes`), the network is
tiny, it sees luminance only (the training faces are grey), and training is a
few minutes of Adam on a CPU.

Results (the shipped weights ``scratchface/data/scale_friendly_detector.npz``)
------------------------------------------------------------------------------
Trained by ``python -m scratchface.detection.scale_friendly --train --data
../shared/data`` (2400 steps of 2 scenes, Adam lr 2e-3 then 2e-4, seed 0) in
244 s on one thread (``OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1``; scene making and
the synthetic set's one-time MTCNN boxes of the Yale photos included); run so,
it writes the shipped file byte for byte (SHA-256 :data:`WEIGHTS_SHA256`). Evaluated by ``python -m
scratchface.detection.scale_friendly --evaluate --data ../shared/data`` (AP at
IoU 0.5 by face height, :mod:`scratchface.detection.evaluation_by_size`;
100 synthetic 256 x 256 scenes of seed 1000, never seen in training; dlib's 9
photos, 43 faces)::

    set        detector          small 10-30   medium 30-120   large 120+    all
    synthetic  scale-friendly       0.903          0.999          1.000      0.969
    synthetic  MTCNN                0.560          0.910          0.947      0.791
    synthetic  HOG + SVM            0.352          0.547          0.539      0.465
    dlib       scale-friendly         -            0.366            -        0.219
    dlib       MTCNN                  -            0.946            -        0.946
    dlib       HOG + SVM              -            0.713            -        0.659

On the scenes it was made for, one pass of the three branches beats MTCNN's
image pyramid most on small faces (0.90 against 0.56): the shallow branch sees
them at stride 4, where MTCNN's smallest window is 12 pixels. On real photos it
is poor: it learnt pasted grey ORL / Yale crops (whose boxes include hair and
neck, unlike dlib's tight boxes) on photos without people, and has never seen a
face in its own body and light. A 256 x 256 image takes about 20 ms on one
core (``OMP_NUM_THREADS=1``; 40 ms for a 500 x 375 photo).

References
----------
S. Yang, Y. Xiong, C. C. Loy, X. Tang, "Face Detection through Scale-Friendly
Deep Convolutional Networks", arXiv:1706.02863, 2017.
S. Ren, K. He, R. Girshick, J. Sun, "Faster R-CNN", NeurIPS 2015 (eqs. 1-2, sec. 3.1.2-3.1.3).
R. Girshick, "Fast R-CNN", ICCV 2015 (eq. 3, smooth L1; ROI sampling).
"""
from __future__ import annotations

import argparse
import functools
import os
import time
from typing import NamedTuple

import numpy as np

from .._validation import (
    check_array,
    check_in_range,
    check_positive_float,
    check_positive_int,
)
from ..gradcheck import GradcheckCase
from ..layers.softmax import (
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)
from ..models.scale_friendly import DEFAULT_BRANCHES, INPUT_MULTIPLE, ScaleFriendlyNet
from .evaluation_by_size import face_heights
from .nms import iou, nms

__all__ = [
    "WEIGHTS_PATH", "WEIGHTS_SHA256", "TrainingConfig", "assign_branches", "branch_proposals", "decode_boxes",
    "detect_faces_scale_friendly", "encode_boxes", "gradcheck_cases", "label_by_iou",
    "load_scale_friendly_model", "make_anchors", "network_input", "paste_distractors", "prepare_image",
    "sample_labels",
    "save_scale_friendly_model", "smooth_l1_backward", "smooth_l1_forward", "train_scale_friendly", "training_step",
]

WEIGHTS_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                            "scale_friendly_detector.npz")
#: SHA-256 of the shipped weights, as printed by ``python -m scratchface.detection.scale_friendly --train``.
WEIGHTS_SHA256 = "29d911e869b581d748cf50ae75e1bb194673b3b02df9a89ee1e0fdf939ab08bf"

FACE, BACKGROUND, IGNORED = 1, 0, -1
_MAX_LOG_RATIO = float(np.log(1000.0 / 16.0))  # Detectron's clamp of t_w, t_h before exp


# ----------------------------------------------------------------------------- boxes and anchors

def _boxes(boxes, name):
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
    :func:`~scratchface.detection.evaluation_by_size.face_heights`) and the band
    ``face_sizes`` of :class:`~scratchface.models.scale_friendly.BranchSpec`;
    a face smaller than every band goes to the first branch, larger than every
    band to the last.

    Returns
    -------
    branch : int64 array, shape (k,)
    """
    sizes = face_heights(_boxes(boxes, "boxes"))
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
    ref, box = _boxes(reference, "reference"), _boxes(boxes, "boxes")
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
    ref = _boxes(reference, "reference")
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
def _cached_anchors(feature_shape, stride, sizes):
    anchors = make_anchors(feature_shape, stride, sizes)
    anchors.flags.writeable = False
    return anchors


def _clip(boxes, height, width):
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
    candidates, faces = _boxes(candidates, "candidates"), _boxes(faces, "faces")
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


# ----------------------------------------------------------------------------- the smooth L1 loss

class SmoothL1Cache(NamedTuple):
    diff: np.ndarray    # prediction - target, (n, 4)
    beta: float


def smooth_l1_forward(pred, *, targets, beta=1.0):
    """Smooth L1 loss of box offsets, summed over the 4 coordinates, averaged over the rows.

    .. math:: L = \\frac{1}{n} \\sum_i \\sum_k \\mathrm{sl}_1(p_{ik} - t_{ik}), \\quad
              \\mathrm{sl}_1(d) = \\begin{cases} d^2 / (2\\beta) & |d| < \\beta \\\\
              |d| - \\beta / 2 & \\text{otherwise} \\end{cases}

    Fast R-CNN eq. 3 (``beta = 1``): quadratic near 0, linear for outliers (less
    sensitive to them than L2). Backward: :math:`\\partial L / \\partial p_{ik} =
    \\frac{1}{n} \\mathrm{clip}(d_{ik} / \\beta, -1, 1)`. No rows: loss 0.

    Parameters
    ----------
    pred : float array, shape (n, 4)
    targets : array, shape (n, 4)
    beta : float > 0

    Returns
    -------
    loss : scalar of ``pred``'s dtype
    cache : SmoothL1Cache
    """
    check_array(pred, "pred", ndim=2, dtype_kind="f", finite=True)
    targets = np.asarray(targets, dtype=pred.dtype)
    if targets.shape != pred.shape:
        raise ValueError(f"targets must have the shape of pred {pred.shape}, got {targets.shape}")
    beta = check_positive_float(beta, "beta")
    diff = pred - targets
    a = np.abs(diff)
    per = np.where(a < beta, 0.5 * diff ** 2 / beta, a - 0.5 * beta)
    loss = per.sum() / len(pred) if len(pred) else 0.0
    return pred.dtype.type(loss), SmoothL1Cache(diff, beta)


def smooth_l1_backward(dloss, cache):
    """Gradient of :func:`smooth_l1_forward` with respect to ``pred``."""
    n = max(len(cache.diff), 1)
    return (float(dloss) / n * np.clip(cache.diff / cache.beta, -1.0, 1.0)).astype(cache.diff.dtype)


def gradcheck_cases(rng):
    """Smooth L1 on points away from its kink at ``|d| = beta``."""
    d = rng.uniform(0.15, 2.0, (6, 4)) * rng.choice([-1.0, 1.0], (6, 4))
    d[np.abs(np.abs(d) - 1.0) < 0.1] += 0.3
    targets = rng.standard_normal((6, 4))
    return [GradcheckCase("smooth_l1", smooth_l1_forward, smooth_l1_backward, {"pred": targets + d},
                          {"targets": targets, "beta": 1.0})]


# ----------------------------------------------------------------------------- images

#: Luminance weights of :func:`scratchface.image.as_gray` (``skimage.color.rgb2gray``).
_LUMINANCE = np.array([0.2125, 0.7154, 0.0721])


def network_input(images):
    """Scenes ``(B, H, W, 3)`` on the 0..255 scale -> the network's input ``(B, 3, H, W)`` float32.

    The detector sees **luminance only**, copied into the three channels, then
    normalised as MTCNN's ``(pixel - 127.5) / 128``: the training faces (ORL,
    Yale) are grey, and a network shown grey faces on coloured photos would
    learn "grey patch = face"; without colour it has to look at the faces.
    """
    from .mtcnn import normalize_pixels

    gray = np.asarray(images, dtype=np.float64) @ _LUMINANCE
    x = normalize_pixels(gray)[:, None, :, :]
    return np.ascontiguousarray(np.repeat(x, 3, axis=1))


def prepare_image(image):
    """Any image -> the network's input and its size.

    Returns
    -------
    x : float32 array, shape (1, 3, H', W')
        :func:`network_input` of the image, padded on the right and bottom with 0
        (mid grey) to multiples of 32.
    height, width : int
        The image's own size (boxes are clipped to it).
    """
    from ..image import as_rgb

    rgb = as_rgb(image, dtype=np.float64)
    height, width = rgb.shape[:2]
    x = network_input(rgb[None])
    x = np.pad(x, ((0, 0), (0, 0), (0, -height % INPUT_MULTIPLE), (0, -width % INPUT_MULTIPLE)))
    return np.ascontiguousarray(x), height, width


def _face_probability(logits):
    """Softmax probability of class 1 from (..., 2) logits, computed stably."""
    return 1.0 / (1.0 + np.exp(np.clip(logits[..., 0] - logits[..., 1], -60, 60)))


def branch_proposals(logits, offsets, anchors, height, width, *, pre_nms=300, nms_threshold=0.7, top=50,
                     min_size=2.0):
    """A branch's proposals in one image: best anchors, decoded, clipped, NMS (Faster R-CNN sec. 3.3).

    Parameters
    ----------
    logits : array, shape (M, 2)
    offsets : array, shape (M, 4)
    anchors : array, shape (M, 4)
    height, width : int
        Boxes are clipped to the image.
    pre_nms, top : int
        Anchors kept before NMS (by score) and proposals kept after it.
    nms_threshold : float
    min_size : float
        Proposals narrower or lower than this after clipping are dropped.

    Returns
    -------
    boxes : float64 array, shape (p, 4)
    scores : float64 array, shape (p,)
        Face probabilities, decreasing.
    """
    scores = _face_probability(np.asarray(logits, dtype=np.float64))
    order = np.argsort(-scores, kind="stable")[:pre_nms]
    boxes = _clip(decode_boxes(anchors[order], offsets[order]), height, width)
    scores = scores[order]
    ok = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
    boxes, scores = boxes[ok], scores[ok]
    keep = nms(boxes, scores, nms_threshold)[:top]
    return boxes[keep], scores[keep]


# ----------------------------------------------------------------------------- training

class TrainingConfig(NamedTuple):
    """Sampling and loss settings of :func:`train_scale_friendly` (Faster R-CNN's defaults, scaled down)."""
    anchors_per_image: int = 64
    anchor_face_fraction: float = 0.5
    anchor_positive_iou: float = 0.5
    anchor_negative_iou: float = 0.3
    proposals_per_image: int = 16       #: proposals from the head added to the ROIs in training
    jitter_per_face: int = 2            #: jittered copies of each ground-truth face added to the ROIs
    rois_per_image: int = 32
    roi_face_fraction: float = 0.25
    roi_positive_iou: float = 0.5
    roi_negative_iou: float = 0.4
    box_weight: float = 1.0             #: lambda of Faster R-CNN eq. 1
    distractors: int = 2                #: at most this many face-free patches pasted per scene


def _jitter(faces, rng, copies):
    if len(faces) == 0 or copies == 0:
        return np.zeros((0, 4))
    f = np.repeat(faces, copies, axis=0)
    w, h = f[:, 2] - f[:, 0], f[:, 3] - f[:, 1]
    shift = rng.uniform(-0.15, 0.15, (len(f), 2)) * np.stack([w, h], axis=1)
    scale = np.exp(rng.uniform(-0.2, 0.2, (len(f), 1)))
    cx, cy = (f[:, 0] + f[:, 2]) / 2 + shift[:, 0], (f[:, 1] + f[:, 3]) / 2 + shift[:, 1]
    hw, hh = w * scale[:, 0] / 2, h * scale[:, 0] / 2
    return np.stack([cx - hw, cy - hh, cx + hw, cy + hh], axis=1)


def _free(rect, boxes):
    """True when the rectangle (x1, y1, x2, y2) intersects none of ``boxes``."""
    if len(boxes) == 0:
        return True
    return bool(np.all((rect[2] <= boxes[:, 0]) | (rect[0] >= boxes[:, 2]) | (rect[3] <= boxes[:, 1])
                       | (rect[1] >= boxes[:, 3])))


def paste_distractors(images, boxes, *, rng, max_patches=2, tries=10):
    """Paste face-free rectangles cut from the batch's scenes into each scene (a training augmentation).

    In the synthetic scenes every face comes with the straight edges of its
    pasted patch; a detector could learn "a pasted rectangle is a face". Pasting
    rectangles of background (10-120 pixels high, at most half the scene; cut where the source scene has
    no face, put where the target scene has none) makes such edges appear on
    background as well, so that only the face inside tells faces apart.

    Parameters
    ----------
    images : array, shape (B, H, W, 3)
        Modified in place (a copy is made by the caller when needed).
    boxes : list of B arrays (k_i, 4)
        Faces: neither cut from nor covered.
    rng : numpy.random.Generator
    max_patches : int
        Each scene gets 0 .. ``max_patches`` patches.

    Returns
    -------
    images : the same array
    """
    n, height, width = images.shape[:3]
    for i in range(n):
        for _ in range(rng.integers(0, max_patches + 1)):
            ph = int(rng.integers(min(10, height // 4), min(120, height // 2) + 1))
            pw = int(np.clip(round(ph * rng.uniform(0.7, 1.3)), 4, width))
            src = int(rng.integers(n))
            for _ in range(tries):
                sx, sy = int(rng.integers(0, width - pw + 1)), int(rng.integers(0, height - ph + 1))
                dx, dy = int(rng.integers(0, width - pw + 1)), int(rng.integers(0, height - ph + 1))
                if _free((sx, sy, sx + pw, sy + ph), boxes[src]) and _free((dx, dy, dx + pw, dy + ph), boxes[i]):
                    images[i, dy:dy + ph, dx:dx + pw] = images[src, sy:sy + ph, sx:sx + pw]
                    break
    return images


def _classification_and_box_loss(logits, offsets, labels, box_targets, box_weight):
    """Cross-entropy over labelled rows + ``box_weight`` x smooth L1 over face rows; gradients full-size."""
    dlogits = np.zeros_like(logits)
    doffsets = np.zeros_like(offsets)
    use = np.nonzero(labels >= 0)[0]
    loss = 0.0
    if len(use):
        ce, ce_cache = softmax_cross_entropy_forward(logits[use], labels=labels[use])
        dlogits[use] = softmax_cross_entropy_backward(1.0, ce_cache)
        loss += float(ce)
    pos = np.nonzero(labels == FACE)[0]
    if len(pos) and box_weight > 0:
        sl1, sl1_cache = smooth_l1_forward(offsets[pos], targets=box_targets)
        doffsets[pos] = box_weight * smooth_l1_backward(1.0, sl1_cache)
        loss += box_weight * float(sl1)
    return loss, dlogits, doffsets


def _branch_step(branch, index, features, faces, face_branch, height, width, rng, config):
    """Loss and feature gradient of one branch on a batch (proposal head + ROI classifier)."""
    n = len(features)
    anchors = _cached_anchors(features.shape[2:], branch.spec.stride, tuple(branch.spec.anchor_sizes))
    logits, offsets = branch.propose(features)
    # proposal head: sampled anchors of every image
    labels = np.full(logits.shape[:2], IGNORED, dtype=np.int64)
    targets, rois = [], []
    for i in range(n):
        lab, matched = label_by_iou(anchors, faces[i], face_branch[i], index, positive_iou=config.anchor_positive_iou,
                                    negative_iou=config.anchor_negative_iou)
        labels[i] = sample_labels(lab, rng=rng, num=config.anchors_per_image,
                                  positive_fraction=config.anchor_face_fraction)
        pos = labels[i] == FACE
        targets.append(encode_boxes(anchors[pos], faces[i][matched[pos]]) if pos.any() else np.zeros((0, 4)))
        # ROIs for the classifier: proposals (no gradient through their coordinates) + jittered own faces
        props, _ = branch_proposals(logits[i], offsets[i], anchors, height, width, top=config.proposals_per_image)
        own = faces[i][face_branch[i] == index]
        rois.append(np.concatenate([props, own, _clip(_jitter(own, rng, config.jitter_per_face), height, width)]))
    flat_labels = labels.reshape(-1)
    rpn_loss, dlogits, doffsets = _classification_and_box_loss(
        logits.reshape(-1, 2), offsets.reshape(-1, 4), flat_labels, np.concatenate(targets).astype(logits.dtype),
        config.box_weight)
    dfeatures = branch.propose_backward(dlogits.reshape(logits.shape), doffsets.reshape(offsets.shape))

    roi_rows, roi_labels, roi_targets = [], [], []
    for i in range(n):
        boxes = rois[i]
        boxes = boxes[((boxes[:, 2] - boxes[:, 0]) >= 1) & ((boxes[:, 3] - boxes[:, 1]) >= 1)]
        lab, matched = label_by_iou(boxes, faces[i], face_branch[i], index, positive_iou=config.roi_positive_iou,
                                    negative_iou=config.roi_negative_iou, best_match=False)
        lab = sample_labels(lab, rng=rng, num=config.rois_per_image, positive_fraction=config.roi_face_fraction)
        use = lab >= 0
        boxes, lab, matched = boxes[use], lab[use], matched[use]
        roi_rows.append(np.concatenate([np.full((len(boxes), 1), i, np.float64), boxes], axis=1))
        roi_labels.append(lab)
        pos = lab == FACE
        roi_targets.append(encode_boxes(boxes[pos], faces[i][matched[pos]]) if pos.any() else np.zeros((0, 4)))
    roi_rows = np.concatenate(roi_rows)
    roi_loss = 0.0
    if len(roi_rows):
        roi_logits, roi_offsets = branch.classify(features, roi_rows)
        roi_loss, droi_logits, droi_offsets = _classification_and_box_loss(
            roi_logits, roi_offsets, np.concatenate(roi_labels), np.concatenate(roi_targets).astype(logits.dtype),
            config.box_weight)
        dfeatures = dfeatures + branch.classify_backward(droi_logits, droi_offsets)
    return rpn_loss, roi_loss, dfeatures


def training_step(model, images, boxes, *, rng, optimiser, config=None):
    """One step of Adam (or any optimiser) on a batch of scenes; returns the losses.

    Parameters
    ----------
    model : ScaleFriendlyNet
    images : uint8 or float array, shape (B, H, W, 3)
        Scenes of one size, ``H`` and ``W`` multiples of 32 (0..255 scale).
    boxes : list of B arrays (k_i, 4)
        Their faces ``(x1, y1, x2, y2)``.
    rng : numpy.random.Generator
        Draws the sampled anchors and ROIs and the jitter.
    optimiser : scratchface.nn.Optimizer
    config : TrainingConfig, optional
        Default ``TrainingConfig()``.

    Returns
    -------
    losses : dict
        ``'total'`` and ``'<branch>_proposal'`` / ``'<branch>_roi'`` per branch.
    """
    config = TrainingConfig() if config is None else config
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3 or len(boxes) != len(images):
        raise ValueError(f"images must be (B, H, W, 3) with one box array per image, got {images.shape} and "
                         f"{len(boxes)} box arrays")
    height, width = images.shape[1:3]
    x = network_input(images)
    faces = [_boxes(b, "boxes") for b in boxes]
    face_branch = [assign_branches(f, model.branches) for f in faces]
    model.zero_grad()
    features = model.forward(x)
    losses, dfeatures = {}, []
    for index, (branch, feat) in enumerate(zip(model.branch_modules, features)):
        rpn, roi, dfeat = _branch_step(branch, index, feat, faces, face_branch, height, width, rng, config)
        losses[f"{branch.spec.name}_proposal"], losses[f"{branch.spec.name}_roi"] = rpn, roi
        dfeatures.append(dfeat)
    model.backward(dfeatures)
    optimiser.step()
    losses["total"] = float(sum(losses.values()))
    return losses


def _batches(scenes, batch_size):
    batch = []
    for scene in scenes:
        batch.append(scene)
        if len(batch) == batch_size:
            yield np.stack([s[0] for s in batch]), [np.asarray(s[1], np.float64).reshape(-1, 4) for s in batch]
            batch = []


def train_scale_friendly(*, steps=2400, batch_size=2, lr=2e-3, rng=0, data_dir=None, scenes=None, model=None,
                         config=None, image_size=(256, 256), progress=True, log_every=100):
    """Train the scale-friendly detector from scratch on synthetic scenes (Adam, seeded).

    Parameters
    ----------
    steps : int
        Optimiser steps.
    batch_size : int
        Scenes per step.
    lr : float
        Adam's learning rate (divided by 10 for the last fifth of the steps).
    rng : numpy.random.Generator or int
        Seeds the initialisation, the scenes and the sampling.
    data_dir : path, optional
        Folder holding ``orl_faces`` / ``yalefaces`` for
        :func:`scratchface.detection.synthetic.synthetic_face_scenes`.
    scenes : iterable of (image, boxes, ...), optional
        Use these scenes instead (at least ``steps * batch_size`` of them, all of one size).
    model : ScaleFriendlyNet, optional
        Continue training this one (default: a new one seeded from ``rng``).
    config : TrainingConfig, optional
        Sampling and loss settings (default ``TrainingConfig()``).
    image_size : (H, W)
        Of the generated scenes (multiples of 32).
    progress : bool
        Show a tqdm bar.
    log_every : int
        Steps between the running-mean losses recorded in the history.

    Returns
    -------
    model : ScaleFriendlyNet
    history : list of dict
        Per step, the losses of :func:`training_step`.
    """
    from ..nn.optim import Adam

    steps, batch_size = check_positive_int(steps, "steps"), check_positive_int(batch_size, "batch_size")
    lr = check_positive_float(lr, "lr")
    config = TrainingConfig() if config is None else config
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    model = ScaleFriendlyNet(rng=rng) if model is None else model
    if scenes is None:
        from .synthetic import synthetic_face_scenes
        scenes = synthetic_face_scenes(steps * batch_size, rng=rng, image_size=tuple(image_size), data_dir=data_dir)
    optimiser = Adam(model.parameters(), lr=lr)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, desc="scale-friendly detector")
    history = []
    model.train()
    for step, (images, boxes) in enumerate(_batches(scenes, batch_size)):
        if step >= steps:
            break
        if step == int(0.8 * steps):
            optimiser.lr = lr / 10
        if config.distractors:
            images = paste_distractors(images, boxes, rng=rng, max_patches=config.distractors)
        history.append(training_step(model, images, boxes, rng=rng, optimiser=optimiser, config=config))
        if bar is not None:
            bar.update(1)
            if (step + 1) % check_positive_int(log_every, "log_every") == 0:
                bar.set_postfix(loss=f"{np.mean([h['total'] for h in history[-log_every:]]):.3f}")
    if bar is not None:
        bar.close()
    model.eval()
    return model, history


# ----------------------------------------------------------------------------- weights

def save_scale_friendly_model(model, path):
    """Write the model's parameters as a reproducible ``.npz`` (same weights, same bytes); return its SHA-256."""
    from ..data.weights import write_reproducible_npz

    state = {k: np.asarray(v, dtype=np.float32) for k, v in model.state_dict().items()}
    return write_reproducible_npz(state, path, deflate=True)


_LOADED = {}


def load_scale_friendly_model(path=None, *, sha256="default"):
    """The detector with trained weights (default: the shipped ``scale_friendly_detector.npz``).

    Parameters
    ----------
    path : path, optional
        A file written by :func:`save_scale_friendly_model` for the default architecture.
    sha256 : str or None
        Expected SHA-256 (``'default'``: the shipped file's checksum for the shipped file).

    Raises
    ------
    FileNotFoundError
        No such file (train one with ``python -m scratchface.detection.scale_friendly --train``).
    ValueError
        A corrupt file, or weights of another architecture.
    """
    from ..data.weights import read_verified_npz, resolve_weights_path

    path, expected = resolve_weights_path(path, WEIGHTS_PATH, WEIGHTS_SHA256, sha256, "scale-friendly detector weights")
    key = (path, expected)
    if key not in _LOADED:
        state = read_verified_npz(path, expected, what="scale-friendly detector weights", remedy=(
            "Re-create it with 'python -m scratchface.detection.scale_friendly --train --data ../shared/data'"))
        model = ScaleFriendlyNet(rng=0)
        try:
            model.load_state_dict(state)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path} does not hold weights of the default ScaleFriendlyNet: {exc}") from exc
        _LOADED[key] = model.eval()
    return _LOADED[key]


# ----------------------------------------------------------------------------- inference

def detect_faces_scale_friendly(image, *, model=None, score_threshold=0.5, nms_threshold=0.3,
                                proposals_per_branch=50, proposal_nms_threshold=0.7, band_tolerance=1.5,
                                min_face_size=8.0):
    """Find faces with the scale-friendly detector: one pass, three branches, ROI classifiers, NMS.

    Parameters
    ----------
    image : path, PIL image or array (H, W), (H, W, 3) or (H, W, 4); uint8, uint16 or float
    model : ScaleFriendlyNet, optional
        Default: the shipped trained weights (:func:`load_scale_friendly_model`).
    score_threshold : float in [0, 1]
        Keep boxes whose ROI classifier face probability is at least this
        (use a low value, e.g. 0.05, to compute average precision).
    nms_threshold : float in [0, 1]
        IoU above which the lower-scoring of two final boxes (from any branch) is dropped.
    proposals_per_branch : int
        Proposals each branch passes to its ROI classifier.
    proposal_nms_threshold : float in [0, 1]
        NMS among one branch's proposals (0.7 as in Faster R-CNN).
    band_tolerance : float >= 1 or None
        Drop a branch's boxes whose size is outside its band widened by this
        factor (``[low / t, high * t]``); ``None`` keeps them all.
    min_face_size : float
        Boxes smaller than this are dropped; an image smaller than it has no faces.

    Returns
    -------
    boxes : float64 array, shape (n, 4)
        ``(x1, y1, x2, y2)`` in the image's pixels, by decreasing score; ``(0, 4)`` when none.
    scores : float64 array, shape (n,)
        Face probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> boxes, scores = detect_faces_scale_friendly(np.zeros((4, 4), np.uint8))
    >>> boxes.shape, scores.shape
    ((0, 4), (0,))
    """
    score_threshold = check_in_range(score_threshold, "score_threshold", 0.0, 1.0)
    nms_threshold = check_in_range(nms_threshold, "nms_threshold", 0.0, 1.0)
    proposal_nms_threshold = check_in_range(proposal_nms_threshold, "proposal_nms_threshold", 0.0, 1.0)
    proposals_per_branch = check_positive_int(proposals_per_branch, "proposals_per_branch")
    min_face_size = check_positive_float(min_face_size, "min_face_size")
    if band_tolerance is not None and check_positive_float(band_tolerance, "band_tolerance") < 1:
        raise ValueError(f"band_tolerance must be >= 1 or None, got {band_tolerance}")
    if model is not None and not isinstance(model, ScaleFriendlyNet):
        raise TypeError(f"model must be a ScaleFriendlyNet (see load_scale_friendly_model), "
                        f"got {type(model).__name__}")
    x, height, width = prepare_image(image)
    empty = (np.zeros((0, 4)), np.zeros(0))
    if min(height, width) < min_face_size:
        return empty
    model = load_scale_friendly_model() if model is None else model
    dtype = model.stem.conv1.weight.data.dtype
    features = model.forward(x.astype(dtype, copy=False))
    found_boxes, found_scores = [], []
    for branch, feat in zip(model.branch_modules, features):
        logits, offsets = branch.propose(feat)
        anchors = _cached_anchors(feat.shape[2:], branch.spec.stride, tuple(branch.spec.anchor_sizes))
        props, _ = branch_proposals(logits[0], offsets[0], anchors, height, width,
                                    nms_threshold=proposal_nms_threshold, top=proposals_per_branch)
        if len(props) == 0:
            continue
        roi_logits, roi_offsets = branch.classify(feat, np.concatenate([np.zeros((len(props), 1)), props], axis=1))
        scores = _face_probability(roi_logits.astype(np.float64))
        boxes = _clip(decode_boxes(props, roi_offsets), height, width)
        sizes = face_heights(boxes)
        keep = (scores >= score_threshold) & (np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
                                              >= min_face_size)
        if band_tolerance is not None:
            low, high = branch.spec.face_sizes
            keep &= (sizes >= low / band_tolerance) & (sizes <= high * band_tolerance)
        found_boxes.append(boxes[keep])
        found_scores.append(scores[keep])
    if not found_boxes or sum(len(b) for b in found_boxes) == 0:
        return empty
    boxes, scores = np.concatenate(found_boxes), np.concatenate(found_scores)
    keep = nms(boxes, scores, nms_threshold)
    return boxes[keep], scores[keep]


# ----------------------------------------------------------------------------- command line

def main(argv=None):
    """``python -m scratchface.detection.scale_friendly --train --data ../shared/data [--evaluate]``."""
    parser = argparse.ArgumentParser(description="Train / evaluate the scale-friendly face detector.")
    parser.add_argument("--train", action="store_true", help="train from scratch on synthetic scenes")
    parser.add_argument("--evaluate", action="store_true",
                        help="AP by face size on seeded synthetic scenes and on the dlib photos, beside MTCNN and HOG")
    parser.add_argument("--data", default=os.environ.get("SCRATCHFACE_DATA"),
                        help="folder holding orl_faces/, yalefaces/, dlib_faces/ (default $SCRATCHFACE_DATA)")
    parser.add_argument("--out", default=WEIGHTS_PATH, help="weights file to write (training) or read")
    parser.add_argument("--steps", type=int, default=2400)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-scenes", type=int, default=100,
                        help="synthetic scenes for --evaluate (seeded with seed + 1000, not the training seed)")
    args = parser.parse_args(argv)
    if not (args.train or args.evaluate):
        parser.error("give --train and/or --evaluate")
    if args.data is None:
        parser.error("give --data or set SCRATCHFACE_DATA")
    if args.train:
        start, cpu = time.perf_counter(), time.process_time()
        model, history = train_scale_friendly(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                              rng=args.seed, data_dir=args.data)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        first = np.mean([h["total"] for h in history[:50]])
        last = np.mean([h["total"] for h in history[-50:]])
        digest = save_scale_friendly_model(model, args.out)
        print(f"trained {args.steps} steps x {args.batch_size} scenes in {seconds:.0f} s ({cpu:.0f} s of CPU); "
              f"loss {first:.3f} -> {last:.3f}; wrote {args.out} (SHA-256 {digest})")
    if args.evaluate:
        evaluate(args.data, weights=args.out, n_scenes=args.eval_scenes, seed=args.seed + 1000)


def evaluate(data_dir, *, weights=None, n_scenes=100, seed=1000, log=print):
    """AP by face height on seeded synthetic scenes and on the dlib photos, beside MTCNN and HOG.

    Runs :func:`scratchface.detection.evaluation_by_size.compare_detectors_by_size`
    with this detector (``score_threshold=0.05``, so that AP sees the whole
    precision-recall curve) added to the package's MTCNN and HOG detectors.

    Returns
    -------
    dict
        As ``compare_detectors_by_size``; the table is also logged.
    """
    from .evaluation_by_size import (
        compare_detectors_by_size,
        default_detectors,
        format_size_table,
    )

    model = load_scale_friendly_model(weights, sha256="default" if weights is None else None)

    def scale_friendly(image):
        return detect_faces_scale_friendly(image, model=model, score_threshold=0.05)

    detectors = {"scale-friendly": scale_friendly, **default_detectors()}
    results = compare_detectors_by_size(detectors, n_images=n_scenes, rng=seed, data_dir=data_dir,
                                        progress=lambda line: log(line))
    log(format_size_table(results))
    return results


if __name__ == "__main__":
    main()
