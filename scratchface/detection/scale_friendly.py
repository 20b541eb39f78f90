"""Scale-friendly face detection: one pass, three branches by face size, ROI classifiers, NMS.

The network (:class:`scratchface.models.scale_friendly.ScaleFriendlyNet`) has a
shared backbone and three scale-variant branches (Yang et al. 2017), each a small
Faster R-CNN. What each branch learns (faces assigned to branches by size,
anchors, targets) is :mod:`scratchface.detection.anchors`; the training
(softmax cross-entropy of sampled anchors + smooth L1 of their offsets,
:mod:`scratchface.losses.smooth_l1`, the same two terms for the ROIs, Faster
R-CNN eq. 1 summed over branches) is ``experiments/scale_friendly.py``.

Inference (:func:`detect_faces_scale_friendly`): one forward pass at the image's
own scale; each branch's best anchors become proposals (decoded, clipped, NMS,
:func:`branch_proposals`), its ROI classifier scores and refines them; boxes
whose size falls far outside the branch's band are dropped; the three branches'
boxes are merged by NMS.

What is simplified against the paper: the training set is synthetic (ORL / Yale
faces pasted at known sizes on face-free photos,
:func:`scratchface.detection.synthetic.synthetic_face_scenes`), the network is
tiny, it sees luminance only (the training faces are grey), and training is a
few minutes of Adam on a CPU. The shipped weights
``scratchface/data/scale_friendly_detector.npz`` are made by
``python -m experiments.scale_friendly --train --data ../shared/data``; their AP by
face size beside MTCNN and HOG: see ``docs/results.md`` ("Detection").

References
----------
S. Yang, Y. Xiong, C. C. Loy, X. Tang, "Face Detection through Scale-Friendly
Deep Convolutional Networks", arXiv:1706.02863, 2017.
S. Ren, K. He, R. Girshick, J. Sun, "Faster R-CNN", NeurIPS 2015 (eqs. 1-2, sec. 3.1.2-3.1.3).
"""
from __future__ import annotations

import os

import numpy as np

from .._validation import check_in_range, check_positive_float, check_positive_int
from ..data.weights import read_verified_npz, resolve_weights_path, write_reproducible_npz
from ..image import as_rgb
from ..models.scale_friendly import INPUT_MULTIPLE, ScaleFriendlyNet
from .anchors import cached_anchors, clip_boxes, decode_boxes
from .detections import Detections, empty_detections
from .evaluation import face_heights
from .mtcnn import normalize_pixels
from .nms import nms

__all__ = [
    "WEIGHTS_PATH", "WEIGHTS_SHA256", "branch_proposals", "detect_faces_scale_friendly", "face_probability",
    "load_scale_friendly_model", "network_input", "prepare_image", "save_scale_friendly_model",
]

WEIGHTS_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                            "scale_friendly_detector.npz")
#: SHA-256 of the shipped weights, as printed by ``python -m experiments.scale_friendly --train``.
WEIGHTS_SHA256 = "29d911e869b581d748cf50ae75e1bb194673b3b02df9a89ee1e0fdf939ab08bf"


#: Luminance weights of :func:`scratchface.image.as_gray` (``skimage.color.rgb2gray``).
_LUMINANCE = np.array([0.2125, 0.7154, 0.0721])


def network_input(images):
    """Scenes ``(B, H, W, 3)`` on the 0..255 scale -> the network's input ``(B, 3, H, W)`` float32.

    The detector sees **luminance only**, copied into the three channels, then
    normalised as MTCNN's ``(pixel - 127.5) / 128``: the training faces (ORL,
    Yale) are grey, and a network shown grey faces on coloured photos would
    learn "grey patch = face"; without colour it has to look at the faces.
    """
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
    rgb = as_rgb(image, dtype=np.float64)
    height, width = rgb.shape[:2]
    x = network_input(rgb[None])
    x = np.pad(x, ((0, 0), (0, 0), (0, -height % INPUT_MULTIPLE), (0, -width % INPUT_MULTIPLE)))
    return np.ascontiguousarray(x), height, width


def face_probability(logits):
    """Softmax probability of class 1 (face) from (..., 2) logits, computed stably."""
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
    scores = face_probability(np.asarray(logits, dtype=np.float64))
    order = np.argsort(-scores, kind="stable")[:pre_nms]
    boxes = clip_boxes(decode_boxes(anchors[order], offsets[order]), height, width)
    scores = scores[order]
    ok = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
    boxes, scores = boxes[ok], scores[ok]
    keep = nms(boxes, scores, nms_threshold)[:top]
    return boxes[keep], scores[keep]


def save_scale_friendly_model(model, path):
    """Write the model's parameters as a reproducible ``.npz`` (same weights, same bytes); return its SHA-256."""
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
        No such file (train one with ``python -m experiments.scale_friendly --train``).
    ValueError
        A corrupt file, or weights of another architecture.
    """
    path, expected = resolve_weights_path(path, WEIGHTS_PATH, WEIGHTS_SHA256, sha256, "scale-friendly detector weights")
    key = (path, expected)
    if key not in _LOADED:
        state = read_verified_npz(path, expected, what="scale-friendly detector weights", remedy=(
            "Re-create it with 'python -m experiments.scale_friendly --train --data ../shared/data'"))
        model = ScaleFriendlyNet(rng=0)
        try:
            model.load_state_dict(state)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path} does not hold weights of the default ScaleFriendlyNet: {exc}") from exc
        _LOADED[key] = model.eval()
    return _LOADED[key]


def detect_faces_scale_friendly(image, *, model=None, threshold=0.5, nms_threshold=0.3,
                                proposals_per_branch=50, proposal_nms_threshold=0.7, band_tolerance=1.5,
                                min_face_size=8.0) -> Detections:
    """Find faces with the scale-friendly detector: one pass, three branches, ROI classifiers, NMS.

    Parameters
    ----------
    image : path, PIL image or array (H, W), (H, W, 3) or (H, W, 4); uint8, uint16 or float
    model : ScaleFriendlyNet, optional
        Default: the shipped trained weights (:func:`load_scale_friendly_model`).
    threshold : float in [0, 1]
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
    Detections
        ``boxes`` float64 (n, 4), ``(x1, y1, x2, y2)`` in the image's pixels, by decreasing score
        (``(0, 4)`` when none); ``scores`` (n,) face probabilities; ``landmarks`` None.

    Examples
    --------
    >>> import numpy as np
    >>> found = detect_faces_scale_friendly(np.zeros((4, 4), np.uint8))
    >>> found.boxes.shape, found.scores.shape, found.landmarks
    ((0, 4), (0,), None)
    """
    threshold = check_in_range(threshold, "threshold", 0.0, 1.0)
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
    empty = empty_detections()
    if min(height, width) < min_face_size:
        return empty
    model = load_scale_friendly_model() if model is None else model
    dtype = model.stem.conv1.weight.data.dtype
    features = model.forward(x.astype(dtype, copy=False))
    found_boxes, found_scores = [], []
    for branch, feat in zip(model.branch_modules, features):
        logits, offsets = branch.propose(feat)
        anchors = cached_anchors(feat.shape[2:], branch.spec.stride, tuple(branch.spec.anchor_sizes))
        props, _ = branch_proposals(logits[0], offsets[0], anchors, height, width,
                                    nms_threshold=proposal_nms_threshold, top=proposals_per_branch)
        if len(props) == 0:
            continue
        roi_logits, roi_offsets = branch.classify(feat, np.concatenate([np.zeros((len(props), 1)), props], axis=1))
        scores = face_probability(roi_logits.astype(np.float64))
        boxes = clip_boxes(decode_boxes(props, roi_offsets), height, width)
        sizes = face_heights(boxes)
        keep = (scores >= threshold) & (np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
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
    return Detections(boxes[keep], scores[keep], None)
