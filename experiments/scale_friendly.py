"""Train and evaluate the scale-friendly face detector (Yang et al. 2017) on synthetic scenes.

Run from the repository root::

    python -m experiments.scale_friendly --train --data ../shared/data     # writes the shipped weights
    python -m experiments.scale_friendly --evaluate --data ../shared/data  # AP by face size, beside MTCNN and HOG

Training (:func:`train_scale_friendly`), per branch and per image: faces are
assigned to branches by size, anchors labelled by IoU and sampled, box targets
encoded (:mod:`scratchface.detection.anchors`); the proposal head's best boxes
after NMS, plus the branch's ground-truth faces and jittered copies of them (so
that the classifier sees faces from the first step), are labelled by IoU (face
>= 0.5, background < 0.4), 32 per image with up to a quarter faces, pooled by
ROI align and classified. Loss (Faster R-CNN eq. 1, summed over the three
branches): softmax cross-entropy of the sampled anchors + smooth L1
(:func:`scratchface.losses.smooth_l1.smooth_l1_forward`) of the face anchors'
offsets, the same two terms for the ROIs. The gradient of each branch enters
the backbone at its tap. As in Faster R-CNN's approximate joint training, the
proposals' coordinates are not differentiated.

The time, the byte-for-byte reproducibility of the shipped file and the table of
AP by face size are in ``docs/results.md`` ("Detection").
"""
from __future__ import annotations

import argparse
import os
import time
from typing import NamedTuple

import numpy as np

from scratchface._validation import check_positive_float, check_positive_int
from scratchface.detection.anchors import (
    FACE,
    IGNORED,
    as_boxes,
    assign_branches,
    cached_anchors,
    clip_boxes,
    encode_boxes,
    label_by_iou,
    sample_labels,
)
from scratchface.detection.scale_friendly import (
    WEIGHTS_PATH,
    branch_proposals,
    detect_faces_scale_friendly,
    load_scale_friendly_model,
    network_input,
    save_scale_friendly_model,
)
from scratchface.detection.synthetic import synthetic_face_scenes
from scratchface.layers.softmax import softmax_cross_entropy_backward, softmax_cross_entropy_forward
from scratchface.losses.smooth_l1 import smooth_l1_backward, smooth_l1_forward
from scratchface.models.scale_friendly import ScaleFriendlyNet
from scratchface.nn.optim import Adam

from .evaluation_by_size import compare_detectors_by_size, default_detectors, format_size_table

__all__ = ["TrainingConfig", "evaluate", "main", "paste_distractors", "train_scale_friendly", "training_step"]


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
    anchors = cached_anchors(features.shape[2:], branch.spec.stride, tuple(branch.spec.anchor_sizes))
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
        rois.append(np.concatenate([props, own, clip_boxes(_jitter(own, rng, config.jitter_per_face), height, width)]))
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
    faces = [as_boxes(b, "boxes") for b in boxes]
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
    steps, batch_size = check_positive_int(steps, "steps"), check_positive_int(batch_size, "batch_size")
    lr = check_positive_float(lr, "lr")
    config = TrainingConfig() if config is None else config
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    model = ScaleFriendlyNet(rng=rng) if model is None else model
    if scenes is None:
        scenes = synthetic_face_scenes(steps * batch_size, rng=rng, image_size=tuple(image_size), data_dir=data_dir)
    optimiser = Adam(model.parameters(), lr=lr)
    bar = None
    if progress:
        from tqdm.auto import tqdm  # optional: a progress bar only when asked
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


def main(argv=None):
    """``python -m experiments.scale_friendly --train --data ../shared/data [--evaluate]``."""
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

    Runs :func:`experiments.evaluation_by_size.compare_detectors_by_size`
    with this detector (``threshold=0.05``, so that AP sees the whole
    precision-recall curve) added to the package's MTCNN and HOG detectors.

    Returns
    -------
    dict
        As ``compare_detectors_by_size``; the table is also logged.
    """
    model = load_scale_friendly_model(weights, sha256="default" if weights is None else None)

    def scale_friendly(image):
        return detect_faces_scale_friendly(image, model=model, threshold=0.05)

    detectors = {"scale-friendly": scale_friendly, **default_detectors()}
    results = compare_detectors_by_size(detectors, n_images=n_scenes, rng=seed, data_dir=data_dir,
                                        progress=lambda line: log(line))
    log(format_size_table(results))
    return results


if __name__ == "__main__":
    main()
