"""Faceness (Yang et al., ICCV 2015): train the part network, and re-rank window proposals on dlib's photos.

Run from the repository root::

    python -m experiments.faceness --data ../shared/data            # evaluate the shipped network
    python -m experiments.faceness --data ../shared/data --train    # train it again first (seeded)
    python -m experiments.faceness --data ../shared/data --picture maps.png

The part labels, faceness score and re-ranking are the library's
(:mod:`scratchface.detection.faceness`); the network and its loss are
:mod:`scratchface.models.faceness_nets` and :mod:`scratchface.losses.sigmoid_cross_entropy`.
Training data (:func:`training_set`): faces of ORL, Yale and scikit-image's astronaut and
camera, whose landmarks come from MTCNN (the teacher), and face-free crops whose targets are
all 0; dlib's labelled photos, used for evaluation, are never trained on. The results table
is in ``docs/results.md`` ("Detection").
"""
from __future__ import annotations

import argparse
import os
import time
from typing import NamedTuple

import numpy as np

from scratchface.data.dlib_faces import load_dlib_faces
from scratchface.data.orl import load_orl_faces
from scratchface.data.yale import load_yale_faces
from scratchface.detection.evaluation import evaluate_detections
from scratchface.detection.faceness import (
    CONTEXT,
    CROP_SIZE,
    context_windows,
    face_box_from_landmarks,
    faceness_of_boxes,
    part_boxes,
    part_target_maps,
)
from scratchface.detection.hog_detector import detect_faces_hog
from scratchface.detection.mtcnn import CELL_SIZE, detect_faces, pnet_stage
from scratchface.detection.nms import nms
from scratchface.detection.pyramid import pyramid_scales, resize
from scratchface.image import as_gray, read_image
from scratchface.models.faceness_nets import (
    DEFAULT_WEIGHTS_PATH,
    PART_NAMES,
    STRIDE,
    PartNetwork,
    load_part_network,
    normalize_gray,
    save_part_network,
    train_part_network,
)
from scratchface.viz.faceness import plot_part_responses

from .hog_detector import negative_images

__all__ = ["TrainingSet", "crop_window", "evaluate_on_dlib_faces", "main", "train", "training_set"]


def crop_window(gray, window, size):
    """The square window (rounded to whole pixels, edge-padded outside the image) resized to ``size``.

    Returns the crop and the pixel window actually cut (x1, y1, x2, y2).
    """
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
    from skimage import data  # noqa: PLC0415  (scikit-image's bundled photos: only when training)

    """Gray images with one face each and MTCNN's 5 landmarks: ORL, Yale, astronaut, camera."""
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
    (:func:`scratchface.detection.faceness.face_box_from_landmarks`) shifted by up to ``jitter`` of the box and
    scaled by ``exp(U(-scale_jitter, scale_jitter))``, mirrored at random;
    targets from :func:`~scratchface.detection.faceness.part_boxes` and
    :func:`~scratchface.detection.faceness.part_target_maps` on the crop
    actually cut. Negatives: ``n_negatives`` random squares of face-free photos
    (:func:`experiments.hog_detector.negative_images`), targets 0.
    """
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
            crop, window = crop_window(gray, (cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2), CROP_SIZE)
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
        crop, _ = crop_window(gray, (x1, y1, x1 + side, y1 + side), CROP_SIZE)
        crops.append(crop)
        targets.append(np.zeros((len(PART_NAMES), map_side, map_side)))
    x = normalize_gray(np.array(crops))[:, None]
    part_windows = np.clip(np.mean(fractions, axis=0), 0.0, 1.0)
    return TrainingSet(np.ascontiguousarray(x), np.array(targets, np.float32), part_windows, len(faces),
                       n_negatives)


def train(data_dir, *, seed=0, epochs=6, copies=2, n_negatives=1100, lr=2e-3, pos_weight=2.0, progress=True,
          log=print):
    """Build the training set and train the part network; returns ``(PartNetwork, info)``."""
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
                                                 nested_threshold=None, second_stage=second_stage)[:2]
        pnet = pnet_stage(im, pyramid_scales(im.shape, CELL_SIZE, min_face_size=20), 0.6)
        proposals["P-Net"] = (pnet.boxes.astype(np.float64), np.log(pnet.scores.astype(np.float64)))
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


# ----------------------------------------------------------------------------- command line

def main(argv=None):
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
