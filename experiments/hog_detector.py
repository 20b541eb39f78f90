"""Train the HOG + linear SVM face detector, seeded and reproducible.

Run from the repository root::

    python -m experiments.hog_detector                 # writes the shipped model
    python -m experiments.hog_detector --out my.npz --seed 1 --rounds 2
    python -m experiments.hog_detector --evaluate-only --picture /tmp/hog.png

Data (nothing is downloaded; ``$SCRATCHFACE_DATA`` or ``--data`` points at ../shared/data):

* positives: the 400 ORL faces (``orl_faces``), cropped to a fixed face box
  (:data:`ORL_FACE_BOX`, eyebrows to chin) with a one-cell margin, each with a
  mirrored copy and ``--jitter`` randomly shifted / scaled copies; and the 100
  faces of scikit-image's ``lfw_subset`` (25 x 25 tight crops, edge-padded to
  get the margin) with their mirrors;
* negatives: windows at random positions and scales of face-free photos
  bundled with scikit-image (coffee, cat, coins, textures, rocket, ...),
  ``dlib_faces/dogs.jpg``, the 100 non-faces of ``lfw_subset``, and the
  windows away from the face (IoU < 0.3) of scikit-image's ``astronaut`` and
  ``camera`` (:data:`PEOPLE_IMAGES`: clothing, instruments) and of every
  ``--orl-step``-th ORL photo (hair, shoulders, parts of the face);
* hard-negative mining: ``--rounds`` times, the current detector scans every
  level of every face-free photo; windows scoring above ``-1`` (inside the
  margin or wrong) are added to the negatives and the SVM is trained again.

The dlib photos used for evaluation are never used for training.

A second stage (:mod:`scratchface.detection.hog_rescoring`, ``--second-stage``, :func:`train_rescoring`)
re-scores the first stage's windows with HOG of their context (the face at 4-pixel cells, head and
hair, head and shoulders), trained on the first stage's candidates on the training photos plus three
real photos whose faces MTCNN labels (:func:`real_people_photos`: ``bald_guys.jpg``,
``Tom_Cruise_avp_2014_4.jpg``, matplotlib's ``grace_hopper.jpg``; never the 9 evaluation photos).

The variants tried, what was shipped and how it compares with scikit-image's LBP cascade are in
``docs/results.md`` ("Detection"), with the caveat that they were compared on the evaluation photos.
Training both stages takes about 5 + 5 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import time

import numpy as np

from scratchface.data.dlib_faces import load_dlib_faces
from scratchface.data.orl import load_orl_faces
from scratchface.data.yale import load_yale_faces
from scratchface.detection.evaluation import evaluate_detections
from scratchface.detection.hog_detector import (
    DEFAULT_MODEL_PATH,
    HogFaceModel,
    block_grid,
    detect_faces_hog,
    hog_pyramid,
    load_model,
    save_model,
    score_map,
    window_features,
)
from scratchface.detection.hog_rescoring import (
    DEFAULT_CONTEXTS,
    DEFAULT_RESCORING_PATH,
    RescoringModel,
    context_features,
    save_rescoring,
)
from scratchface.detection.mtcnn import detect_faces
from scratchface.detection.nms import iou
from scratchface.detection.pyramid import resize
from scratchface.detection.svm import LinearSVM
from scratchface.image import as_gray, read_image

__all__ = [
    "NEGATIVE_IMAGES",
    "ORL_FACE_BOX",
    "PEOPLE_IMAGES",
    "candidate_windows",
    "cascade_detections",
    "evaluate_on_dlib_faces",
    "main",
    "negative_images",
    "positive_patches",
    "real_people_photos",
    "train",
    "train_rescoring",
]

#: (x1, y1, x2, y2) of the face in a 92 x 112 ORL image: about eyebrows to chin. (dlib's own framing,
#: a square of side ``eye distance / 0.38`` with the eyes 29 % from the top, is (0, 27, 90, 117) here by
#: MTCNN's landmarks; trained with it the detector was worse on dlib's photos: AP 0.59 against 0.67.)
ORL_FACE_BOX = (12.0, 34.0, 80.0, 102.0)
#: photos of people in scikit-image's data, with the (x1, y1, x2, y2) of their one face: windows away
#: from the face (IoU < 0.3: clothing, instruments, backgrounds, parts of the face) are negatives
PEOPLE_IMAGES = (("astronaut", (175.0, 60.0, 275.0, 170.0)), ("camera", (190.0, 110.0, 262.0, 200.0)))
#: scikit-image's bundled photos without people
NEGATIVE_IMAGES = ("coffee", "chelsea", "coins", "brick", "grass", "gravel", "hubble_deep_field",
                   "immunohistochemistry", "moon", "page", "text", "horse", "rocket", "retina",
                   "clock", "logo", "cell", "microaneurysms", "colorwheel")


def _crop_with_margin(gray, box, model, rng=None, jitter=0.0):
    """The box plus one cell of margin, resized to ``window + 2 cell`` pixels (edge-padded outside)."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    if rng is not None and jitter > 0:
        side *= np.exp(rng.uniform(-jitter, jitter))
        cx += rng.uniform(-jitter, jitter) * side
        cy += rng.uniform(-jitter, jitter) * side
    full = model.window + 2 * model.cell
    side_with_margin = side * full / model.window
    top, left = cy - side_with_margin / 2, cx - side_with_margin / 2
    # integer crop covering the float box, padded by edge values where it leaves the image
    t, l = int(np.floor(top)), int(np.floor(left))
    size = int(np.ceil(side_with_margin))
    pad = max(0, -t, -l, t + size - gray.shape[0], l + size - gray.shape[1])
    padded = np.pad(gray, pad, mode="edge") if pad else gray
    crop = padded[t + pad:t + pad + size, l + pad:l + pad + size]
    return resize(crop, (full, full))


def positive_patches(orl_images, lfw_faces, model, rng, jitter_copies=2, jitter=0.06):
    """Gray ``(window + 2 cell)``-pixel patches of faces, mirrored, with jittered copies of ORL."""
    patches = []
    for image in orl_images:
        gray = image / 255.0
        patches.append(_crop_with_margin(gray, ORL_FACE_BOX, model))
        for _ in range(jitter_copies):
            patches.append(_crop_with_margin(gray, ORL_FACE_BOX, model, rng, jitter))
    full = model.window + 2 * model.cell
    for face in lfw_faces:
        inner = resize(face, (model.window, model.window))
        patches.append(np.pad(inner, model.cell, mode="edge"))
    patches += [p[:, ::-1] for p in patches]
    return [np.ascontiguousarray(p) for p in patches if p.shape == (full, full)]


def negative_images(data_dir=None):
    """Face-free gray images (0..1): scikit-image's bundled photos and, when found, dlib's dogs.jpg."""
    from skimage import data  # noqa: PLC0415  (scikit-image's bundled photos: only when training)

    images = [as_gray(getattr(data, name)()) for name in NEGATIVE_IMAGES]
    if data_dir is not None:
        dogs = pathlib.Path(data_dir) / "dlib_faces" / "dogs.jpg"
        if dogs.is_file():
            images.append(as_gray(dogs))
    return images


def real_people_photos(data_dir=None):
    """Real photos of people that are not the evaluation photos, with their faces found by MTCNN.

    ``dlib_faces/bald_guys.jpg`` and ``dlib_faces/Tom_Cruise_avp_2014_4.jpg`` (in the folder, not in its
    XML files) and matplotlib's ``grace_hopper.jpg``; MTCNN (:mod:`scratchface.detection.mtcnn`) is
    the teacher that labels their faces. Returns a list of ``(gray 0..1, faces (m, 4))``; photos not
    found are left out.
    """
    import matplotlib  # noqa: PLC0415  (only for the path of its sample photo)


    paths = [pathlib.Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"]
    if data_dir is not None:
        paths = [pathlib.Path(data_dir) / "dlib_faces" / name
                 for name in ("bald_guys.jpg", "Tom_Cruise_avp_2014_4.jpg")] + paths
    photos = []
    for path in paths:
        if path.is_file():
            image = read_image(path)
            photos.append((as_gray(image), detect_faces(image).boxes.astype(np.float64)))
    return photos


def level_grids(images, model, scale_step=1 / 1.2, face_box=None, max_side=640):
    """Block grids of every pyramid level of every image (computed once, reused by each round).

    Returns a list of ``(grid, allowed)``: ``allowed`` (bool, one per window
    position) is False where the window overlaps a face of ``face_box`` (one
    box or ``(m, 4)`` boxes; IoU >= 0.3), so that only face-free windows
    (backgrounds, hair, shoulders, parts of a face at the wrong scale) become
    negatives.
    """
    grids = []
    n = model.blocks_per_window
    faces = None if face_box is None else np.asarray(face_box, dtype=np.float64).reshape(-1, 4)
    for gray in images:
        shrink = max(gray.shape) / max_side
        if shrink > 1:  # huge photos: the coarse levels are all that a 32-pixel window needs
            gray = resize(gray, (int(round(gray.shape[0] / shrink)), int(round(gray.shape[1] / shrink))))
            faces = None if faces is None else faces / shrink
        for level in hog_pyramid(gray, model.window, scale_step=scale_step):
            grid = block_grid(level.image, model)
            rows, cols = grid.shape[0] - n + 1, grid.shape[1] - n + 1
            if rows <= 0 or cols <= 0:
                continue
            allowed = np.ones((rows, cols), dtype=bool)
            if faces is not None and len(faces):
                r, c = np.mgrid[0:rows, 0:cols]
                y1, x1 = r.ravel() * model.cell * level.to_original_y, c.ravel() * model.cell * level.to_original_x
                boxes = np.stack([x1, y1, x1 + model.window * level.to_original_x,
                                  y1 + model.window * level.to_original_y], axis=1)
                allowed = (iou(boxes, faces).max(axis=1) < 0.3).reshape(rows, cols)
            grids.append((grid, allowed))
    return grids


def _window_at(grid, r, c, n):
    return grid[r:r + n, c:c + n].ravel()


def random_negatives(grids, model, count, rng):
    """``count`` allowed windows at random levels and positions."""
    n = model.blocks_per_window
    sizes = np.array([allowed.sum() for _, allowed in grids], float)
    picks = rng.choice(len(grids), size=count, p=sizes / sizes.sum())
    feats = []
    for k in picks:
        grid, allowed = grids[k]
        rr, cc = np.nonzero(allowed)
        j = rng.integers(0, rr.size)
        feats.append(_window_at(grid, rr[j], cc[j], n))
    return np.array(feats)


def hard_negatives(grids, model, per_level, margin=-1.0):
    """Allowed windows scoring above ``margin``: the top ``per_level`` of each level."""
    n = model.blocks_per_window
    feats = []
    for grid, allowed in grids:
        scores = np.where(allowed, score_map(grid, model.weights, model.bias), -np.inf)
        flat = np.argsort(-scores, axis=None, kind="stable")[:per_level]
        for idx in flat:
            r, c = np.unravel_index(idx, scores.shape)
            if scores[r, c] > margin:
                feats.append(_window_at(grid, r, c, n))
    return np.array(feats).reshape(-1, model.weights.size)


def _fit(pos, neg, model, C, seed):
    x = np.vstack([pos, neg])
    y = np.concatenate([np.ones(len(pos)), -np.ones(len(neg))])
    svm = LinearSVM(C=C, class_weight="balanced", tol=1e-3, max_iter=500, random_state=seed).fit(x, y)
    return model._replace(weights=svm.coef_.reshape(model.weights.shape), bias=svm.intercept_), svm


def train(data_dir, *, seed=0, rounds=3, C=0.05, n_random_negatives=8000, per_level=20, jitter_copies=2,
          orl_step=4, window=32, cell=4, block=2, margin=-1.0, real_photos=True, log=print):
    """Train a :class:`HogFaceModel`; returns ``(model, info)``."""
    from skimage import data  # noqa: PLC0415  (scikit-image's bundled photos: only when training)


    rng = np.random.default_rng(seed)
    n = window // cell - block + 1
    template = HogFaceModel(weights=np.zeros((n, n, block, block, 9)), bias=0.0, window=window, cell=cell,
                            block=block)
    t0 = time.perf_counter()
    orl, _ = load_orl_faces(None if data_dir is None else f"{data_dir}/orl_faces")
    lfw = data.lfw_subset()
    patches = positive_patches(orl, lfw[:100], template, rng, jitter_copies)
    pos = np.array([window_features(p, template) for p in patches])
    grids = level_grids(negative_images(data_dir), template)
    for name, box in PEOPLE_IMAGES:
        grids += level_grids([as_gray(getattr(data, name)())], template, face_box=box)
    # the ORL photos around the faces: hair, shoulders, backgrounds, parts of faces
    grids += level_grids([im / 255.0 for im in orl[::orl_step]], template, face_box=ORL_FACE_BOX)
    if real_photos:  # crowded real photos: clothing, hands, furniture around faces MTCNN labelled
        for gray, faces in real_people_photos(data_dir):
            grids += level_grids([gray], template, face_box=faces)
    lfw_neg = np.array([window_features(np.pad(resize(f, (window, window)), cell, mode="edge"), template)
                        for f in lfw[100:]])
    neg = np.vstack([random_negatives(grids, template, n_random_negatives, rng), lfw_neg])
    log(f"{len(pos)} positive and {len(neg)} negative windows ({len(grids)} face-free levels), "
        f"{time.perf_counter() - t0:.1f} s")
    model, svm = _fit(pos, neg, template, C, seed)
    for k in range(rounds):
        hard = hard_negatives(grids, model, per_level, margin)
        log(f"round {k + 1}: {len(hard)} hard negatives (score > {margin}); "
            f"SVM {svm.n_iter_} passes, {time.perf_counter() - t0:.1f} s")
        if len(hard) == 0:
            break
        neg = np.vstack([neg, hard])
        model, svm = _fit(pos, neg, template, C, seed)
    info = dict(seed=seed, rounds=rounds, C=C, real_photos=real_photos, n_positive=len(pos), n_negative=len(neg),
                train_seconds=time.perf_counter() - t0)
    log(f"done: {len(pos)} positives, {len(neg)} negatives, {info['train_seconds']:.1f} s")
    return model, info


# ----------------------------------------------------------------------------- the second stage

def candidate_windows(gray, faces, stage1, *, threshold=-0.5, positive_iou=0.5, negative_iou=0.3):
    """First-stage candidates of a training photo and their labels (1 face, 0 not, -1 ignored).

    ``faces`` ``(m, 4)`` are the photo's known faces (``None`` or empty for a face-free photo).
    """
    boxes = detect_faces_hog(gray, model=stage1, threshold=threshold, second_stage=False).boxes
    faces = np.zeros((0, 4)) if faces is None else np.asarray(faces, dtype=np.float64).reshape(-1, 4)
    overlap = iou(boxes, faces).max(axis=1) if len(faces) and len(boxes) else np.zeros(len(boxes))
    return boxes, np.where(overlap >= positive_iou, 1, np.where(overlap < negative_iou, 0, -1))


def _training_photos(data_dir, log):
    """(gray, faces or None, mirror negatives?) of every training photo; never the evaluation photos."""
    from skimage import data  # noqa: PLC0415  (scikit-image's bundled photos: only when training)

    data_dir = pathlib.Path(data_dir)
    photos = [(g, None, False) for g in negative_images(data_dir)]
    photos += [(as_gray(getattr(data, name)()), [box], False) for name, box in PEOPLE_IMAGES]
    orl, _ = load_orl_faces(data_dir / "orl_faces")
    photos += [(im / 255.0, [ORL_FACE_BOX], False) for im in orl[::2]]
    for im in load_yale_faces(data_dir / "yalefaces").images:
        found = detect_faces(im).boxes          # MTCNN as the teacher
        if len(found) == 1:
            photos.append((im / 255.0, found, False))
    for gray, faces in real_people_photos(data_dir):
        scales = (1.0, 0.7, 0.5) if gray.shape[0] < 900 else (0.6, 0.45, 0.33, 0.25)
        for s in scales:
            small = gray if s == 1.0 else resize(gray, (int(gray.shape[0] * s), int(gray.shape[1] * s)))
            photos.append((small, faces * s, True))
    return photos


def train_rescoring(data_dir, stage1, *, C=0.003, stage1_weight=0.25, contexts=DEFAULT_CONTEXTS, seed=0,
                    log=print):
    """Train the second stage on the first stage's candidates; returns ``(RescoringModel, info)``."""
    t0 = time.perf_counter()
    x, y = [], []
    for gray, faces, mirror_negatives in _training_photos(data_dir, log):
        boxes, labels = candidate_windows(gray, faces, stage1)
        keep = labels >= 0
        boxes, labels = boxes[keep], labels[keep]
        x.append(context_features(gray, boxes, contexts))
        y.append(np.where(labels == 1, 1, -1))
        mirrored = (labels == 1) | mirror_negatives
        x.append(context_features(gray, boxes[mirrored], contexts, flip=True))
        y.append(np.where(labels[mirrored] == 1, 1, -1))
    x, y = np.vstack(x), np.concatenate(y)
    log(f"second stage: {int((y == 1).sum())} positive and {int((y == -1).sum())} negative candidates, "
        f"{time.perf_counter() - t0:.1f} s")
    svm = LinearSVM(C=C, class_weight="balanced", random_state=seed).fit(x, y)
    model = RescoringModel(weights=svm.coef_.ravel(), bias=float(svm.intercept_), contexts=tuple(contexts),
                           stage1_weight=stage1_weight)
    info = dict(rescoring_C=C, rescoring_positives=int((y == 1).sum()), rescoring_negatives=int((y == -1).sum()),
                rescoring_seconds=time.perf_counter() - t0)
    return model, info


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the HOG + linear SVM face detector.")
    parser.add_argument("--data", default=os.environ.get("SCRATCHFACE_DATA"),
                        help="folder holding orl_faces/ (and dlib_faces/dogs.jpg); default $SCRATCHFACE_DATA")
    parser.add_argument("--out", default=str(DEFAULT_MODEL_PATH), help="output .npz")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="hard-negative mining rounds")
    parser.add_argument("--window", type=int, default=32, help="window side in pixels")
    parser.add_argument("--cell", type=int, default=4, help="HOG cell side in pixels (and sliding step)")
    parser.add_argument("--block", type=int, default=2, help="HOG block side in cells")
    parser.add_argument("--C", type=float, default=0.05, help="SVM C")
    parser.add_argument("--negatives", type=int, default=8000, help="random negative windows")
    parser.add_argument("--orl-step", type=int, default=4,
                        help="use every k-th ORL photo as a source of negatives around the face")
    parser.add_argument("--threshold", type=float, default=0.5, help="default detection threshold to store")
    parser.add_argument("--evaluate", action="store_true",
                        help="then evaluate on dlib_faces beside scikit-image's LBP cascade")
    parser.add_argument("--evaluate-only", action="store_true", help="evaluate the model at --out, no training")
    parser.add_argument("--picture", default=None, help="save a picture of the detections here (with evaluation)")
    parser.add_argument("--second-stage", action="store_true",
                        help="train only the second stage (context re-scoring) on the model at --out")
    parser.add_argument("--second-stage-out", default=None,
                        help="output .npz of the second stage (default: the shipped hog_face_rescoring.npz)")
    args = parser.parse_args(argv)
    if args.data is None:
        parser.error("give --data or set SCRATCHFACE_DATA to the folder holding orl_faces/")
    if args.second_stage:
        rescoring, info = train_rescoring(args.data, load_model(args.out), seed=args.seed)
        out = args.second_stage_out or DEFAULT_RESCORING_PATH
        save_rescoring(out, rescoring, **info)
        print(f"wrote {out}")
    elif not args.evaluate_only:
        model, info = train(args.data, seed=args.seed, rounds=args.rounds, C=args.C,
                            n_random_negatives=args.negatives, orl_step=args.orl_step,
                            window=args.window, cell=args.cell, block=args.block)
        model = model._replace(threshold=args.threshold)
        save_model(args.out, model, **info)
        print(f"wrote {args.out}")
    if args.evaluate or args.evaluate_only:
        evaluate_on_dlib_faces(args.data, model=load_model(args.out), picture=args.picture)



def cascade_detections(gray, *, scale_factor=1.2, step_ratio=1, min_size=(24, 24), max_size=(200, 200)):
    """scikit-image's LBP cascade with its bundled OpenCV frontal-face file (boxes, constant scores)."""
    from skimage import data  # noqa: PLC0415  (scikit-image's cascade: only for the comparison)
    from skimage.feature import Cascade  # noqa: PLC0415

    detector = Cascade(data.lbp_frontal_face_cascade_filename())
    found = detector.detect_multi_scale(img=gray, scale_factor=scale_factor, step_ratio=step_ratio,
                                        min_size=min_size, max_size=max_size)
    boxes = np.array([[d["c"], d["r"], d["c"] + d["width"], d["r"] + d["height"]] for d in found],
                     dtype=np.float64).reshape(-1, 4)
    return boxes, np.ones(len(boxes))


def evaluate_on_dlib_faces(data_dir=None, *, model=None, threshold=None, picture=None, with_cascade=True,
                           log=print):
    """Recall, precision and AP at IoU 0.5 on dlib's 9 photos (training.xml + testing.xml, 43 faces).

    Returns ``{'hog_one_stage': ..., 'hog': ..., 'cascade': ...}`` (``DetectionEvaluation`` each: the
    sliding-window SVM alone at ``threshold`` (default the model's), with the second stage of
    :mod:`scratchface.detection.hog_rescoring` at its default threshold, scikit-image's cascade); with
    ``picture`` a path, saves the HOG detections (red) and the ground truth
    (green, dashed) of every photo there.
    """

    model = load_model() if model is None else model
    photos = load_dlib_faces(None if data_dir is None else f"{data_dir}/dlib_faces")
    images = [read_image(p.path) for p in photos]
    truths = [p.boxes for p in photos]
    results, seconds, found = {}, {}, {}
    for name, second_stage in (("hog_one_stage", False), ("hog", True)):
        t = time.perf_counter()
        found[name] = [detect_faces_hog(im, model=model, threshold=None if second_stage else threshold,
                                        second_stage=second_stage) for im in images]
        results[name] = evaluate_detections(found[name], truths)
        seconds[name] = time.perf_counter() - t
    hog_found = found["hog"]
    if with_cascade:
        t = time.perf_counter()
        results["cascade"] = evaluate_detections([cascade_detections(as_gray(im)) for im in images], truths)
        seconds["cascade"] = time.perf_counter() - t
    log(f"{'detector':28s} {'found':>7s} {'false +':>8s} {'recall':>7s} {'precision':>9s} {'AP':>6s} {'time':>7s}")
    labels = {"hog_one_stage": "HOG + SVM, one stage", "hog": "HOG + SVM + context (ours)",
              "cascade": "skimage LBP cascade"}
    for name, ev in results.items():
        label = labels[name]
        ap = f"{ev.average_precision:6.3f}" if name != "cascade" else "   n/a"  # the cascade gives no scores
        log(f"{label:28s} {ev.n_true_positives:3d}/{ev.n_ground_truth:<3d} {ev.n_false_positives:8d} "
            f"{ev.recall:7.3f} {ev.precision:9.3f} {ap} {seconds[name]:6.1f}s")
    if picture is not None:
        from scratchface.viz.detections import save_detections  # noqa: PLC0415  (matplotlib)
        panels = [dict(image=im, boxes=b, scores=s, ground_truth=gt, title=p.path.name)
                  for im, (b, s, _), gt, p in zip(images, hog_found, truths, photos)]
        save_detections(picture, panels)
        log(f"picture of the detections: {picture}")
    return results


if __name__ == "__main__":
    main()
