"""Training MTCNN: samples by IoU, the multi-task loss, online hard sample mining, a P-Net run.

The lecture's recipe (Zhang et al. 2016, sec. II-C and III-A):

- **Samples by IoU** with the nearest ground-truth face (:func:`sample_types`):
  negatives IoU < 0.3, part faces 0.4 <= IoU <= 0.65, positives IoU > 0.65;
  crops with 0.3 <= IoU < 0.4 are ambiguous and thrown away. Landmark faces
  carry five labelled points.
- **Which sample trains which task** (:func:`task_indicators`, the paper's
  :math:`\\beta_i^j \\in \\{0, 1\\}`): negatives and positives train face
  classification; positives and part faces train box regression; landmark
  faces train landmark regression.
- **Multi-task loss** (:func:`mtcnn_loss_forward`):
  :math:`\\min \\sum_i \\sum_j \\alpha_j \\beta_i^j L_i^j` with cross-entropy
  :math:`L^{det}`, squared L2 :math:`L^{box}` and :math:`L^{landmark}`, task weights
  ``(1, 0.5, 0.5)`` for P-Net and R-Net, ``(1, 0.5, 1)`` for O-Net.
- **Online hard sample mining**: per mini-batch, only the 70% of the
  classification samples with the highest loss are back-propagated.

Sample labels use the convention of the public MTCNN training code:
``1`` positive, ``0`` negative, ``-1`` part face, ``-2`` landmark face.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._validation import check_array, check_in_range, check_positive_int
from ..gradcheck import GradcheckCase
from ..layers.softmax import log_softmax_backward, log_softmax_forward
from .mtcnn import _area_resize_from_table, _prepare, normalize_pixels
from .nms import iou

__all__ = [
    "IGNORED",
    "LANDMARK",
    "NEGATIVE",
    "OHEM_RATIO",
    "ORL_FACE_BOX",
    "PART",
    "POSITIVE",
    "TASK_WEIGHTS",
    "Samples",
    "TrainablePNet",
    "box_targets",
    "concat_samples",
    "face_accuracy",
    "face_samples_from_data",
    "five_points_from_68",
    "generate_samples",
    "gradcheck_cases",
    "landmark_targets",
    "mtcnn_loss_backward",
    "mtcnn_loss_forward",
    "ohem_select",
    "sample_types",
    "task_indicators",
    "train_pnet",
]

NEGATIVE, POSITIVE, PART, LANDMARK = 0, 1, -1, -2
IGNORED = -3  #: 0.3 <= IoU < 0.4: neither face nor background; not used
NEGATIVE_IOU, PART_IOU, POSITIVE_IOU = 0.3, 0.4, 0.65

#: (alpha_det, alpha_box, alpha_landmark) per network (paper sec. III-A).
TASK_WEIGHTS = {"pnet": (1.0, 0.5, 0.5), "rnet": (1.0, 0.5, 0.5), "onet": (1.0, 0.5, 1.0)}
OHEM_RATIO = 0.7


# ----------------------------------------------------------------------------- sample rules

def sample_types(ious):
    """Sample type of each crop from its IoU with the nearest ground-truth face.

    ``IoU < 0.3`` -> ``NEGATIVE``; ``0.4 <= IoU <= 0.65`` -> ``PART``;
    ``IoU > 0.65`` -> ``POSITIVE``; otherwise ``IGNORED``.
    """
    ious = np.asarray(ious, dtype=np.float64)
    types = np.full(ious.shape, IGNORED, dtype=np.int64)
    types[ious < NEGATIVE_IOU] = NEGATIVE
    types[(ious >= PART_IOU) & (ious <= POSITIVE_IOU)] = PART
    types[ious > POSITIVE_IOU] = POSITIVE
    return types


def task_indicators(labels):
    """The paper's :math:`\\beta_i^j`: which samples train which task, three bool arrays (N,).

    Returns
    -------
    det : positives and negatives (face classification)
    box : positives and part faces (box regression)
    landmark : landmark faces (landmark regression)
    """
    labels = np.asarray(labels)
    return ((labels == POSITIVE) | (labels == NEGATIVE), (labels == POSITIVE) | (labels == PART),
            labels == LANDMARK)


def box_targets(crops, faces):
    """Regression targets: how far each side of the face is from the crop's, in crop widths.

    ``((fx1 - cx1) / w, (fy1 - cy1) / h, (fx2 - cx2) / w, (fy2 - cy2) / h)`` with the
    crop's ``w = cx2 - cx1``, ``h = cy2 - cy1``: the inverse of P-Net's box
    regression ``x1 + dx1 w`` in :mod:`scratchface.detection.mtcnn`.
    """
    crops = np.asarray(crops, dtype=np.float64).reshape(-1, 4)
    faces = np.asarray(faces, dtype=np.float64).reshape(-1, 4)
    size = np.stack([crops[:, 2] - crops[:, 0], crops[:, 3] - crops[:, 1]] * 2, axis=1)
    return ((faces - crops) / size).astype(np.float32)


def landmark_targets(crops, landmarks):
    """Landmarks (n, 5, 2) as fractions of each crop: (n, 10), five x then five y (O-Net's layout)."""
    crops = np.asarray(crops, dtype=np.float64).reshape(-1, 4)
    landmarks = np.asarray(landmarks, dtype=np.float64).reshape(-1, 5, 2)
    w = (crops[:, 2] - crops[:, 0])[:, None]
    h = (crops[:, 3] - crops[:, 1])[:, None]
    xs = (landmarks[:, :, 0] - crops[:, 0:1]) / w
    ys = (landmarks[:, :, 1] - crops[:, 1:2]) / h
    return np.concatenate([xs, ys], axis=1).astype(np.float32)


class Samples(NamedTuple):
    """Training samples for one net.

    images : (N, 3, s, s) float32, normalised ``(pixel - 127.5) / 128``
    labels : (N,) int64, ``POSITIVE``, ``NEGATIVE``, ``PART`` or ``LANDMARK``
    box_targets : (N, 4) float32 (zeros where unused)
    landmark_targets : (N, 10) float32 (zeros where unused)
    """
    images: np.ndarray
    labels: np.ndarray
    box_targets: np.ndarray
    landmark_targets: np.ndarray

    def __len__(self):
        return len(self.labels)

    def subset(self, index):
        return Samples(*(a[index] for a in self))


def concat_samples(parts):
    """Join several :class:`Samples` into one."""
    parts = list(parts)
    return Samples(*(np.concatenate([p[k] for p in parts]) for k in range(4)))


def _random_square_crops(rng, n, width, height, faces, mode):
    """Integer square crops (x1, y1, x2, y2): anywhere ('negative') or around the faces ('around')."""
    if mode == "negative":
        side = rng.integers(12, max(13, min(width, height) // 2), size=n)
        x1 = (rng.random(n) * (width - side + 1)).astype(np.int64)
        y1 = (rng.random(n) * (height - side + 1)).astype(np.int64)
        return np.stack([x1, y1, x1 + side, y1 + side], axis=1)
    which = rng.integers(0, len(faces), size=n)
    f = faces[which]
    fw, fh = f[:, 2] - f[:, 0], f[:, 3] - f[:, 1]
    side = np.round(rng.uniform(0.8, 1.25, n) * np.sqrt(fw * fh)).astype(np.int64)
    side = np.maximum(side, 12)
    cx = (f[:, 0] + f[:, 2]) / 2 + rng.uniform(-0.2, 0.2, n) * fw
    cy = (f[:, 1] + f[:, 3]) / 2 + rng.uniform(-0.2, 0.2, n) * fh
    x1 = np.floor(cx - side / 2).astype(np.int64)
    y1 = np.floor(cy - side / 2).astype(np.int64)
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


def generate_samples(image, faces, *, rng, size=12, negatives=50, around_faces=20, landmarks=None):
    """Cut training samples for one image: random negatives, and crops around each face.

    Parameters
    ----------
    image : array or path
    faces : array, shape (m, 4)
        Ground-truth boxes (x1, y1, x2, y2).
    rng : numpy.random.Generator
    size : int
        Side of the samples (12 for P-Net, 24 for R-Net, 48 for O-Net).
    negatives : int
        Random square crops tried anywhere in the image; those with IoU < 0.3
        to every face are kept as negatives.
    around_faces : int
        Crops tried around each face (size 0.8-1.25 of the face, centre moved by
        up to 0.2 of its width); each becomes positive, part or is dropped by
        its IoU.
    landmarks : array, shape (m, 5, 2), optional
        Five points per face; positive crops of a face with landmarks are also
        given as ``LANDMARK`` samples.

    Returns
    -------
    Samples
        Crops that lie inside the image only.
    """
    check_positive_int(size, "size")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    prep = _prepare(image)
    height, width = prep.rgb.shape[:2]
    faces = np.asarray(faces, dtype=np.float64).reshape(-1, 4)
    crops = [_random_square_crops(rng, negatives, width, height, faces, "negative")]
    if len(faces):
        crops.append(_random_square_crops(rng, around_faces * len(faces), width, height, faces, "around"))
    crops = np.concatenate(crops)
    inside = (crops[:, 0] >= 0) & (crops[:, 1] >= 0) & (crops[:, 2] <= width) & (crops[:, 3] <= height)
    crops = crops[inside]
    if len(faces):
        overlaps = iou(crops.astype(np.float64), faces)
        nearest = overlaps.argmax(axis=1)
        types = sample_types(overlaps.max(axis=1))
    else:
        nearest = np.zeros(len(crops), np.int64)
        types = np.full(len(crops), NEGATIVE, np.int64)
    keep = types != IGNORED
    crops, nearest, types = crops[keep], nearest[keep], types[keep]
    boxes = np.zeros((len(crops), 4), np.float32)
    has_box = types != NEGATIVE
    if has_box.any():
        boxes[has_box] = box_targets(crops[has_box], faces[nearest[has_box]])
    marks = np.zeros((len(crops), 10), np.float32)
    if landmarks is not None:
        landmarks = np.asarray(landmarks, dtype=np.float64).reshape(len(faces), 5, 2)
        extra = np.nonzero(types == POSITIVE)[0]
        extra = extra[np.isfinite(landmarks[nearest[extra]]).all(axis=(1, 2))]  # faces with all 5 points
        crops = np.concatenate([crops, crops[extra]])
        types = np.concatenate([types, np.full(len(extra), LANDMARK)])
        boxes = np.concatenate([boxes, np.zeros((len(extra), 4), np.float32)])
        marks = np.concatenate([marks, landmark_targets(crops[extra], landmarks[nearest[extra]])])
    side = crops[:, 2] - crops[:, 0]
    pixels = _area_resize_from_table(prep.sat, crops[:, 1], crops[:, 0], side, side, size, size)
    images = np.ascontiguousarray(normalize_pixels(pixels).transpose(0, 3, 1, 2))
    return Samples(images, types.astype(np.int64), boxes, marks)


def five_points_from_68(landmarks68):
    """MTCNN's five points from the iBUG 68 (dlib): eye centres (36-41, 42-47), nose tip 30, mouth corners 48, 54.

    (n, 68, 2) -> (n, 5, 2); "left" is the eye on the left of the image, as in MTCNN.
    """
    p = np.asarray(landmarks68, dtype=np.float64)
    if p.ndim != 3 or p.shape[1:] != (68, 2):
        raise ValueError(f"landmarks68 must have shape (n, 68, 2), got {p.shape}")
    return np.stack([p[:, 36:42].mean(axis=1), p[:, 42:48].mean(axis=1), p[:, 30], p[:, 48], p[:, 54]], axis=1)


#: Face box (x1, y1, x2, y2) used for every 92x112 ORL image: MTCNN's boxes on a sample of them span
#: about x 0..82, y 13..112; the faces are centred and upright, so one box serves all.
ORL_FACE_BOX = (6.0, 18.0, 82.0, 108.0)


def face_samples_from_data(data_dir=None, *, rng, split="training", size=12, negatives=400, around_faces=40,
                           orl_subjects=range(1, 36), orl_around=3, landmarks=True):
    """Samples cut from dlib's face photos (faces and background) and ORL faces (faces only).

    Parameters
    ----------
    data_dir : path, optional
        The folder holding ``dlib_faces`` and ``orl_faces`` (default ``$SCRATCHFACE_DATA``).
    rng : numpy.random.Generator
    split : {'training', 'testing'}
        Which dlib photos (the two splits share no photo).
    size : int
    negatives, around_faces : int
        Per dlib photo / per face, see :func:`generate_samples`.
    orl_subjects : iterable of int
        ORL people to use (1..40); keep the held-out ones apart.
    orl_around : int
        Crops around the face of each ORL image.
    landmarks : bool
        Add ``LANDMARK`` samples from the dlib 68-point annotations.
    """
    import os
    import pathlib

    from ..data.dlib_faces import load_dlib_faces
    from ..data.orl import load_orl_faces
    from ..image import read_image

    root = pathlib.Path(data_dir) if data_dir is not None else None
    if root is None and os.environ.get("SCRATCHFACE_DATA"):
        root = pathlib.Path(os.environ["SCRATCHFACE_DATA"])
    parts = []
    for photo in load_dlib_faces(None if root is None else root / "dlib_faces", split, landmarks=landmarks):
        marks = five_points_from_68(photo.landmarks) if landmarks else None
        parts.append(generate_samples(read_image(photo.path), photo.boxes, rng=rng, size=size,
                                      negatives=negatives, around_faces=around_faces, landmarks=marks))
    subjects = list(orl_subjects)
    if subjects and orl_around:
        faces, _ = load_orl_faces(None if root is None else root / "orl_faces", subjects)
        box = np.array([ORL_FACE_BOX])
        for face in faces:
            parts.append(generate_samples(face, box, rng=rng, size=size, negatives=0, around_faces=orl_around))
    return concat_samples(parts)


# ----------------------------------------------------------------------------- the loss

def ohem_select(losses, ratio=OHEM_RATIO):
    """Indices of the ``max(1, floor(ratio n))`` largest losses (online hard sample mining).

    Ties keep the lower index (a stable sort).
    """
    losses = np.asarray(losses)
    n = len(losses)
    if n == 0:
        return np.zeros(0, np.int64)
    keep = max(1, math.floor(ratio * n + 1e-9))
    return np.sort(np.argsort(-losses, kind="stable")[:keep])


class MTCNNLossCache(NamedTuple):
    log_probs_cache: tuple
    cls_index: np.ndarray      # samples whose classification loss is back-propagated (after OHEM)
    cls_labels: np.ndarray     # their labels (0 or 1)
    box_index: np.ndarray
    box_diff: np.ndarray       # prediction - target of those samples
    landmark_index: np.ndarray
    landmark_diff: np.ndarray
    task_weights: tuple
    shapes: tuple


def mtcnn_loss_forward(cls_logits, box_pred, landmark_pred, *, labels, box_targets, landmark_targets,
                       task_weights=TASK_WEIGHTS["pnet"], ohem_ratio=OHEM_RATIO):
    """MTCNN's multi-task loss with sample-type indicators and online hard sample mining.

    Parameters
    ----------
    cls_logits : array, shape (N, 2)
        Face classification scores (non-face, face), before the softmax.
    box_pred : array, shape (N, 4)
    landmark_pred : array, shape (N, 10), or None for a net without the landmark head
    labels : int array, shape (N,)
        ``POSITIVE`` 1, ``NEGATIVE`` 0, ``PART`` -1, ``LANDMARK`` -2.
    box_targets : array, shape (N, 4)
    landmark_targets : array, shape (N, 10)
    task_weights : (alpha_det, alpha_box, alpha_landmark)
        :data:`TASK_WEIGHTS` holds the paper's values per network.
    ohem_ratio : float in (0, 1]
        Fraction of the classification samples (the hardest) that count; 1 disables mining.

    Returns
    -------
    loss : scalar of the logits' dtype
    cache : MTCNNLossCache

    Notes
    -----
    .. math:: L = \\alpha_{det} \\frac{1}{|H|} \\sum_{i \\in H} -\\log p_{i, y_i}
              + \\alpha_{box} \\frac{1}{|B|} \\sum_{i \\in B} \\|\\hat b_i - b_i\\|^2
              + \\alpha_{lm} \\frac{1}{|M|} \\sum_{i \\in M} \\|\\hat m_i - m_i\\|^2

    where :math:`B` and :math:`M` are the samples with :math:`\\beta^{box}_i = 1`
    and :math:`\\beta^{landmark}_i = 1`, and :math:`H` the hardest
    ``floor(ohem_ratio |D|)`` of the classification samples :math:`D`
    (:math:`\\beta^{det}_i = 1`), ranked by their cross-entropy. A term with no
    samples is 0. The paper sums over samples; the public implementations
    average each term over its samples, as here, so that the task weights
    keep their meaning whatever the mix of a batch.

    Backward: :math:`\\partial L / \\partial z_i = \\frac{\\alpha_{det}}{|H|}(p_i - e_{y_i})`
    for :math:`i \\in H` (0 otherwise), :math:`\\partial L / \\partial \\hat b_i =
    \\frac{2 \\alpha_{box}}{|B|} (\\hat b_i - b_i)`, likewise for the landmarks.
    Mining picks the samples; the selection itself is not differentiated.

    References
    ----------
    Zhang et al. 2016, eqs. 1-4 (losses and the :math:`\\beta` indicators) and sec. III-A
    (task weights, online hard sample mining).
    """
    n = cls_logits.shape[0] if hasattr(cls_logits, "shape") else None
    check_array(cls_logits, "cls_logits", ndim=2, dtype_kind="f", finite=True)
    check_array(box_pred, "box_pred", ndim=2, dtype_kind="f", finite=True)
    if cls_logits.shape[1] != 2 or box_pred.shape != (n, 4):
        raise ValueError(f"cls_logits must be (N, 2) and box_pred (N, 4), got {cls_logits.shape} and "
                         f"{box_pred.shape}")
    labels = np.asarray(labels)
    check_array(labels, "labels", ndim=1, dtype_kind="iu")
    if labels.shape[0] != n or not np.isin(labels, (POSITIVE, NEGATIVE, PART, LANDMARK)).all():
        raise ValueError(f"labels must be {n} values among 1 (positive), 0 (negative), -1 (part), "
                         "-2 (landmark)")
    box_targets = np.asarray(box_targets, dtype=cls_logits.dtype)
    if box_targets.shape != (n, 4):
        raise ValueError(f"box_targets must have shape ({n}, 4), got {box_targets.shape}")
    if len(task_weights) != 3:
        raise ValueError(f"task_weights must be three numbers (det, box, landmark), got {task_weights!r}")
    alphas = tuple(check_in_range(a, f"task_weights[{k}]", 0.0, np.inf) for k, a in enumerate(task_weights))
    ohem_ratio = check_in_range(ohem_ratio, "ohem_ratio", 0.0, 1.0, inclusive=(False, True))
    det, box, mark = task_indicators(labels)
    if landmark_pred is not None:
        check_array(landmark_pred, "landmark_pred", ndim=2, dtype_kind="f", finite=True)
        landmark_targets = np.asarray(landmark_targets, dtype=cls_logits.dtype)
        if landmark_pred.shape != (n, 10) or landmark_targets.shape != (n, 10):
            raise ValueError(f"landmark_pred and landmark_targets must have shape ({n}, 10), got "
                             f"{landmark_pred.shape} and {landmark_targets.shape}")
    elif mark.any() and alphas[2] > 0:
        raise ValueError("landmark samples (label -2) need landmark_pred; drop them for a net without "
                         "the landmark head")

    log_probs, log_probs_cache = log_softmax_forward(cls_logits, axis=1)
    det_index = np.nonzero(det)[0]
    det_labels = labels[det_index]
    det_losses = -log_probs[det_index, det_labels]
    hard = ohem_select(det_losses, ohem_ratio)
    cls_index, cls_labels = det_index[hard], det_labels[hard]
    loss = alphas[0] * det_losses[hard].mean() if len(hard) else 0.0

    box_index = np.nonzero(box)[0]
    box_diff = box_pred[box_index] - box_targets[box_index]
    if len(box_index):
        loss += alphas[1] * (box_diff ** 2).sum(axis=1).mean()

    landmark_index = np.nonzero(mark)[0] if landmark_pred is not None else np.zeros(0, np.int64)
    landmark_diff = (landmark_pred[landmark_index] - landmark_targets[landmark_index]
                     if landmark_pred is not None else np.zeros((0, 10), cls_logits.dtype))
    if len(landmark_index):
        loss += alphas[2] * (landmark_diff ** 2).sum(axis=1).mean()

    shapes = (cls_logits.shape, box_pred.shape, None if landmark_pred is None else landmark_pred.shape)
    cache = MTCNNLossCache(log_probs_cache, cls_index, cls_labels, box_index, box_diff, landmark_index,
                           landmark_diff, alphas, shapes)
    return cls_logits.dtype.type(loss), cache  # a scalar of the logits' dtype (float32 stays float32)


def mtcnn_loss_backward(dloss, cache):
    """Gradients ``(dcls_logits, dbox_pred, dlandmark_pred)`` of :func:`mtcnn_loss_forward`.

    ``dlandmark_pred`` is ``None`` when ``landmark_pred`` was.
    """
    dloss = float(dloss)
    alphas = cache.task_weights
    cls_shape, box_shape, landmark_shape = cache.shapes
    dtype = cache.box_diff.dtype
    dlog_probs = np.zeros(cls_shape, dtype)
    if len(cache.cls_index):  # d(-mean log p_y)/d log p = -1/|H| at the label, through log-softmax
        dlog_probs[cache.cls_index, cache.cls_labels] = -dloss * alphas[0] / len(cache.cls_index)
    dcls = log_softmax_backward(dlog_probs, cache.log_probs_cache)
    dbox = np.zeros(box_shape, dtype)
    if len(cache.box_index):
        dbox[cache.box_index] = dloss * alphas[1] * 2.0 * cache.box_diff / len(cache.box_index)
    if landmark_shape is None:
        return dcls, dbox, None
    dmark = np.zeros(landmark_shape, dtype)
    if len(cache.landmark_index):
        dmark[cache.landmark_index] = dloss * alphas[2] * 2.0 * cache.landmark_diff / len(cache.landmark_index)
    return dcls, dbox, dmark


def gradcheck_cases(rng):
    """Small multi-task loss cases (all four sample types; OHEM on and off)."""
    cases = []
    for name, n, ratio, weights in (("mtcnn_loss pnet ohem", 9, 0.7, TASK_WEIGHTS["pnet"]),
                                    ("mtcnn_loss onet no-ohem", 7, 1.0, TASK_WEIGHTS["onet"])):
        labels = np.array(([POSITIVE, NEGATIVE, PART, LANDMARK] * n)[:n], dtype=np.int64)
        kwargs = {"labels": labels, "box_targets": rng.standard_normal((n, 4)) * 0.2,
                  "landmark_targets": rng.uniform(0, 1, (n, 10)), "task_weights": weights, "ohem_ratio": ratio}
        inputs = {"cls_logits": rng.standard_normal((n, 2)) * 2, "box_pred": rng.standard_normal((n, 4)) * 0.3,
                  "landmark_pred": rng.uniform(0, 1, (n, 10))}
        cases.append(GradcheckCase(name, mtcnn_loss_forward, mtcnn_loss_backward, inputs, kwargs))
    return cases


# ----------------------------------------------------------------------------- a trainable P-Net

class TrainablePNet:
    """P-Net with all three heads, built from :mod:`scratchface.nn` modules, for training from scratch.

    The trunk and the face / box heads have the layers (and the weight names,
    see :meth:`weights`) of the inference P-Net in
    :mod:`scratchface.models.mtcnn_nets`; the paper's P-Net also predicts the
    five landmarks (``conv4_3``, 10 outputs), which the released weights leave out.

    Parameters
    ----------
    rng : numpy.random.Generator or int
        Seeds the He-normal initialisation.
    landmarks : bool
        Include the landmark head.
    """

    def __init__(self, rng, *, landmarks=True, dtype=np.float32):
        from ..nn import layers as L
        from ..nn.blocks import Sequential

        rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        self.trunk = Sequential({
            "conv1": L.Conv2d(3, 10, 3, rng=rng, dtype=dtype), "prelu1": L.PReLU(10, dtype=dtype),
            "pool1": L.MaxPool2d(2, stride=2, ceil_mode=True),
            "conv2": L.Conv2d(10, 16, 3, rng=rng, dtype=dtype), "prelu2": L.PReLU(16, dtype=dtype),
            "conv3": L.Conv2d(16, 32, 3, rng=rng, dtype=dtype), "prelu3": L.PReLU(32, dtype=dtype),
        })
        self.heads = {"conv4_1": L.Conv2d(32, 2, 1, rng=rng, dtype=dtype, init="xavier_normal"),
                      "conv4_2": L.Conv2d(32, 4, 1, rng=rng, dtype=dtype, init="xavier_normal")}
        if landmarks:
            self.heads["conv4_3"] = L.Conv2d(32, 10, 1, rng=rng, dtype=dtype, init="xavier_normal")

    def parameters(self):
        params = self.trunk.parameters()
        for head in self.heads.values():
            params += head.parameters()
        return params

    def zero_grad(self):
        for p in self.parameters():
            p.grad[...] = 0

    def forward(self, x):
        """(N, 3, 12, 12) -> logits (N, 2), box (N, 4), landmarks (N, 10) or None."""
        features = self.trunk.forward(x)
        outs = [self.heads[k].forward(features).reshape(len(x), -1) if k in self.heads else None
                for k in ("conv4_1", "conv4_2", "conv4_3")]
        self._feature_shape = features.shape
        return tuple(outs)

    def backward(self, dlogits, dbox, dlandmarks=None):
        dfeatures = np.zeros(self._feature_shape, dlogits.dtype)
        for key, grad in (("conv4_1", dlogits), ("conv4_2", dbox), ("conv4_3", dlandmarks)):
            if key in self.heads:
                if grad is None:
                    grad = np.zeros((len(dlogits), self.heads[key].out_channels), dlogits.dtype)
                dfeatures += self.heads[key].backward(grad.reshape(grad.shape + (1, 1)))
        return self.trunk.backward(dfeatures)

    def predict_face_probability(self, x, batch_size=1024):
        """Face probability of each (N, 3, 12, 12) sample."""
        from ..layers.softmax import softmax_forward
        probs = []
        for start in range(0, len(x), batch_size):
            logits, _, _ = self.forward(x[start:start + batch_size])
            probs.append(softmax_forward(logits, axis=1)[0][:, 1])
        return np.concatenate(probs) if probs else np.zeros(0, np.float32)

    def weights(self):
        """The trunk and face / box heads in :func:`scratchface.models.mtcnn_nets.pnet_forward`'s layout."""
        out = {}
        for name, module in list(self.trunk._modules.items()) + list(self.heads.items()):
            if name.startswith("conv") and name != "conv4_3":
                out[f"pnet.{name}.w"] = module.weight.data.copy()
                out[f"pnet.{name}.b"] = module.bias.data.copy()
            elif name.startswith("prelu"):
                out[f"pnet.{name}.alpha"] = module.alpha.data.copy()
        return out


def face_accuracy(face_probability, labels, threshold=0.5):
    """Face / non-face accuracy on positives and negatives (other sample types are ignored)."""
    labels = np.asarray(labels)
    use = (labels == POSITIVE) | (labels == NEGATIVE)
    if not use.any():
        raise ValueError("labels hold no positive or negative samples")
    predicted = np.asarray(face_probability)[use] >= threshold
    return float(np.mean(predicted == (labels[use] == POSITIVE)))


def train_pnet(samples, *, rng, epochs=10, batch_size=128, lr=1e-3, task_weights=TASK_WEIGHTS["pnet"],
               ohem_ratio=OHEM_RATIO, landmarks=True, net=None):
    """Train a P-Net from scratch on 12x12 samples with the multi-task loss, Adam and OHEM.

    Parameters
    ----------
    samples : Samples
        From :func:`generate_samples` (size 12).
    rng : numpy.random.Generator
        Seeds initialisation and the shuffling of every epoch.
    epochs, batch_size : int
    lr : float
        Adam's learning rate.
    landmarks : bool
        Train the landmark head; without it, ``LANDMARK`` samples are dropped.
    net : TrainablePNet, optional
        Continue training this one.

    Returns
    -------
    net : TrainablePNet
    history : list of float
        Mean loss of each epoch.
    """
    from ..nn.optim import Adam

    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    epochs, batch_size = check_positive_int(epochs, "epochs"), check_positive_int(batch_size, "batch_size")
    if samples.images.shape[1:] != (3, 12, 12):
        raise ValueError(f"P-Net trains on (N, 3, 12, 12) samples, got {samples.images.shape}")
    if not landmarks:
        samples = samples.subset(samples.labels != LANDMARK)
    net = TrainablePNet(rng, landmarks=landmarks) if net is None else net
    optimiser = Adam(net.parameters(), lr=lr)
    history = []
    for _ in range(epochs):
        order = rng.permutation(len(samples))
        total, count = 0.0, 0
        for start in range(0, len(order), batch_size):
            batch = samples.subset(order[start:start + batch_size])
            net.zero_grad()
            logits, box, marks = net.forward(batch.images)
            loss, cache = mtcnn_loss_forward(logits, box, marks, labels=batch.labels,
                                             box_targets=batch.box_targets,
                                             landmark_targets=batch.landmark_targets,
                                             task_weights=task_weights, ohem_ratio=ohem_ratio)
            net.backward(*mtcnn_loss_backward(1.0, cache))
            optimiser.step()
            total += loss * len(batch)
            count += len(batch)
        history.append(total / count)
    return net, history
