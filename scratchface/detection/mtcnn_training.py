"""Training MTCNN: samples by IoU, the multi-task loss, online hard sample mining, a P-Net run.

The lecture's recipe (Zhang et al. 2016, sec. II-C and III-A):

- **Samples by IoU** with the nearest ground-truth face (:func:`sample_types`):
  negatives IoU < 0.3, part faces 0.4 <= IoU <= 0.65, positives IoU > 0.65;
  crops with 0.3 <= IoU < 0.4 are ambiguous and thrown away. Landmark faces
  carry five labelled points.
- **Which sample trains which task** (:func:`scratchface.losses.mtcnn.task_indicators`, the paper's
  :math:`\\beta_i^j \\in \\{0, 1\\}`): negatives and positives train face
  classification; positives and part faces train box regression; landmark
  faces train landmark regression.
- **Multi-task loss** (:func:`scratchface.losses.mtcnn.mtcnn_loss_forward`):
  :math:`\\min \\sum_i \\sum_j \\alpha_j \\beta_i^j L_i^j` with cross-entropy
  :math:`L^{det}`, squared L2 :math:`L^{box}` and :math:`L^{landmark}`, task weights
  ``(1, 0.5, 0.5)`` for P-Net and R-Net, ``(1, 0.5, 1)`` for O-Net.
- **Online hard sample mining** (:func:`scratchface.losses.mtcnn.ohem_select`): per mini-batch,
  only the 70% of the classification samples with the highest loss are back-propagated.
- **A P-Net trained from scratch** (:class:`TrainablePNet`, :func:`train_pnet`), the architecture
  of :mod:`scratchface.models.mtcnn_nets` plus the paper's landmark head.

Sample labels use the convention of the public MTCNN training code:
``1`` positive, ``0`` negative, ``-1`` part face, ``-2`` landmark face.
"""
from __future__ import annotations

import os
import pathlib
from typing import NamedTuple

import numpy as np

from .._validation import as_generator, check_positive_int
from ..data.dlib_faces import load_dlib_faces
from ..data.orl import load_orl_faces
from ..image import as_rgb, read_image
from ..layers.softmax import softmax_forward
from ..losses.mtcnn import (
    LANDMARK,
    NEGATIVE,
    OHEM_RATIO,
    PART,
    POSITIVE,
    TASK_WEIGHTS,
    mtcnn_loss_backward,
    mtcnn_loss_forward,
)
from ..models.mtcnn_nets import PNET_HEADS, PNET_LANDMARK_HEAD, PNET_TRUNK
from ..nn import layers as L
from ..nn.blocks import Sequential
from ..nn.module import Module
from ..nn.optim import Adam
from .align import landmarks_68_to_5
from .mtcnn import normalize_pixels
from .nms import iou
from .pyramid import area_resize_regions, summed_area_table

__all__ = [
    "IGNORED",
    "ORL_FACE_BOX",
    "Samples",
    "TrainablePNet",
    "box_targets",
    "concat_samples",
    "face_accuracy",
    "face_samples_from_data",
    "generate_samples",
    "landmark_targets",
    "sample_types",
    "train_pnet",
]

IGNORED = -3  #: 0.3 <= IoU < 0.4: neither face nor background; not used
NEGATIVE_IOU, PART_IOU, POSITIVE_IOU = 0.3, 0.4, 0.65


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
    rgb = as_rgb(image, dtype=np.float32)
    sat = summed_area_table(rgb)
    height, width = rgb.shape[:2]
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
    pixels = area_resize_regions(sat, crops[:, 1], crops[:, 0], side, side, size, size)
    images = np.ascontiguousarray(normalize_pixels(pixels).transpose(0, 3, 1, 2))
    return Samples(images, types.astype(np.int64), boxes, marks)


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
    root = pathlib.Path(data_dir) if data_dir is not None else None
    if root is None and os.environ.get("SCRATCHFACE_DATA"):
        root = pathlib.Path(os.environ["SCRATCHFACE_DATA"])
    parts = []
    for photo in load_dlib_faces(None if root is None else root / "dlib_faces", split, landmarks=landmarks):
        marks = landmarks_68_to_5(photo.landmarks) if landmarks else None
        parts.append(generate_samples(read_image(photo.path), photo.boxes, rng=rng, size=size,
                                      negatives=negatives, around_faces=around_faces, landmarks=marks))
    subjects = list(orl_subjects)
    if subjects and orl_around:
        faces, _ = load_orl_faces(None if root is None else root / "orl_faces", subjects)
        box = np.array([ORL_FACE_BOX])
        for face in faces:
            parts.append(generate_samples(face, box, rng=rng, size=size, negatives=0, around_faces=orl_around))
    return concat_samples(parts)


# ----------------------------------------------------------------------------- a trainable P-Net

class TrainablePNet(Module):
    """P-Net with all three heads, built from :mod:`scratchface.nn` modules, for training from scratch.

    The trunk and the face / box heads are :data:`scratchface.models.mtcnn_nets.PNET_TRUNK` and
    :data:`~scratchface.models.mtcnn_nets.PNET_HEADS`, the layers (and the weight names,
    see :meth:`weights`) of the inference P-Net; the paper's P-Net also predicts the
    five landmarks (``conv4_3``, 10 outputs), which the released weights leave out.

    Parameters
    ----------
    rng : numpy.random.Generator or int
        Seeds the He-normal initialisation.
    landmarks : bool
        Include the landmark head.
    """

    def __init__(self, rng, *, landmarks=True, dtype=np.float32):
        super().__init__()
        rng = as_generator(rng)
        trunk = {}
        for layer in PNET_TRUNK:
            name, kind = layer[:2]
            if kind == "conv":
                trunk[name] = L.Conv2d(*layer[2:], rng=rng, dtype=dtype)
            elif kind == "prelu":
                trunk[name] = L.PReLU(layer[2], dtype=dtype)
            else:
                trunk[name] = L.MaxPool2d(layer[2], stride=layer[3], ceil_mode=True)
        self.trunk = Sequential(trunk)
        for name, c_in, c_out in PNET_HEADS + ((PNET_LANDMARK_HEAD,) if landmarks else ()):
            setattr(self, name, L.Conv2d(c_in, c_out, 1, rng=rng, dtype=dtype, init="xavier_normal"))

    @property
    def heads(self):
        """The 1x1 head modules by name (``conv4_1`` face, ``conv4_2`` box, ``conv4_3`` landmarks)."""
        return {name: module for name, module in self._modules.items() if name != "trunk"}

    def forward(self, x):
        """(N, 3, 12, 12) -> logits (N, 2), box (N, 4), landmarks (N, 10) or None."""
        features = self.trunk.forward(x)
        heads = self.heads
        outs = [heads[k].forward(features).reshape(len(x), -1) if k in heads else None
                for k in ("conv4_1", "conv4_2", "conv4_3")]
        self._feature_shape = features.shape
        return tuple(outs)

    def backward(self, dlogits, dbox=None, dlandmarks=None):
        """Gradients of the three outputs (a missing one counts as 0) -> gradient of the input."""
        heads = self.heads
        dfeatures = np.zeros(self._feature_shape, dlogits.dtype)
        for key, grad in (("conv4_1", dlogits), ("conv4_2", dbox), ("conv4_3", dlandmarks)):
            if key in heads:
                if grad is None:
                    grad = np.zeros((len(dlogits), heads[key].out_channels), dlogits.dtype)
                dfeatures += heads[key].backward(grad.reshape(grad.shape + (1, 1)))
        return self.trunk.backward(dfeatures)

    def predict_face_probability(self, x, batch_size=1024):
        """Face probability of each (N, 3, 12, 12) sample."""
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
