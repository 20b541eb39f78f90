"""Train the MMOD face detector on dlib's training.xml alone and compare it with dlib's, in one run.

Run from the repository root::

    python -m experiments.mmod_detector                  # train, evaluate, and dlib's side by side
    python -m experiments.mmod_detector --write          # also write scratchface/data/mmod_face_detector.npz
    python -m experiments.mmod_detector --no-dlib --verbose

Data (nothing is downloaded; ``$SCRATCHFACE_DATA`` or ``--data`` points at ../shared/data):
dlib's ``dlib_faces/training.xml`` (4 photos, 18 faces) for training, with
left-right flips; ``testing.xml`` (5 photos, 25 faces) only for evaluation.
The same settings as dlib's face example (``train_object_detector.py``): C = 5,
epsilon 0.01, an 80 x 80 window, upsampling until the smallest face fits (once here).

Evaluation as dlib's ``test_object_detection_function`` counts: a detection is
correct when it hits a not-yet-found face at IoU >= 0.5; precision = correct /
detections, recall = found / faces, average precision over the ranked detections
(:func:`scratchface.detection.evaluation.evaluate_detections`). dlib's own
numbers from ``dlib.test_simple_object_detector`` are printed as well.

With dlib installed (``pip install dlib-bin``: a benchmark-only peer, never a
dependency of scratchface), ``dlib.train_simple_object_detector`` is trained on
the same XML with the same options, in the same process, and timed the same way.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import tempfile
import time

from scratchface.data.dlib_faces import load_dlib_faces
from scratchface.detection.evaluation import evaluate_detections
from scratchface.detection.mmod import MMOD_MODEL_PATH, detect_faces_mmod, save_mmod_model, train_mmod

C = 5.0
EPSILON = 0.01


def _row(name, seconds, result, extra=""):
    return (f"| {name} | {seconds:.1f} | {result.n_true_positives}/{result.n_ground_truth} | "
            f"{result.n_true_positives + result.n_false_positives} | {result.precision:.3f} | "
            f"{result.recall:.3f} | {result.average_precision:.3f} |{extra}")


def train_ours(folder, *, verbose=False, log=print):
    photos = load_dlib_faces(folder, "training")
    start = time.perf_counter()
    model, result = train_mmod([p.path for p in photos], [p.boxes for p in photos], C=C, epsilon=EPSILON,
                               flips=True, verbose=verbose)
    seconds = time.perf_counter() - start
    log(f"scratchface MMOD: {seconds:.1f} s, {result.iterations} cutting-plane iterations, objective "
        f"{result.objective:.4f} (lower bound {result.lower_bound:.4f}), window {model.window}, upsampled "
        f"{model.upsample} time(s), NMS IoU > {model.iou_threshold:.3f} or cover > {model.cover_threshold:.3f}")
    return model, result, seconds


def evaluate(folder, detect, split="testing"):
    photos = load_dlib_faces(folder, split)
    return evaluate_detections([detect(p.path) for p in photos], [p.boxes for p in photos], iou_threshold=0.5)


def train_dlib(folder, log=print):
    """dlib's trainer on the same XML (None without dlib)."""
    try:
        import dlib  # benchmark-only peer: pip install dlib-bin
    except ImportError:
        log("dlib not installed (pip install dlib-bin): its column is skipped")
        return None
    options = dlib.simple_object_detector_training_options()
    options.add_left_right_image_flips = True
    options.C = C
    options.epsilon = EPSILON
    options.num_threads = os.cpu_count() or 1
    path = os.path.join(tempfile.mkdtemp(), "dlib_detector.svm")
    start = time.perf_counter()
    dlib.train_simple_object_detector(str(pathlib.Path(folder) / "training.xml"), path, options)
    seconds = time.perf_counter() - start
    detector = dlib.fhog_object_detector(path)
    own = dlib.test_simple_object_detector(str(pathlib.Path(folder) / "testing.xml"), path)
    log(f"dlib train_simple_object_detector: {seconds:.1f} s on {options.num_threads} threads; dlib's own "
        f"test_simple_object_detector on testing.xml: {own}")
    return detector, path, seconds


def dlib_detect(detector, upsample):
    import numpy as np

    from scratchface.detection.detections import Detections
    from scratchface.image import as_rgb

    def detect(path):
        image = np.ascontiguousarray(as_rgb(path, dtype=np.float32).astype(np.uint8))
        rects, scores, _ = detector.run(image, upsample, 0.0)
        boxes = np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], float).reshape(-1, 4)
        return Detections(boxes, np.asarray(scores, float), None)
    return detect


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train MMOD on dlib's training.xml; compare with dlib.")
    parser.add_argument("--data", default=os.environ.get("SCRATCHFACE_DATA"),
                        help="the folder holding dlib_faces/ (default $SCRATCHFACE_DATA, else ../shared/data)")
    parser.add_argument("--write", action="store_true", help=f"write the model to {MMOD_MODEL_PATH}")
    parser.add_argument("--out", default=None, help="write the model here")
    parser.add_argument("--no-dlib", action="store_true", help="skip dlib's trainer")
    parser.add_argument("--verbose", action="store_true", help="print every cutting-plane iteration")
    args = parser.parse_args(argv)
    data = pathlib.Path(args.data) if args.data else pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
    folder = data / "dlib_faces"

    model, solver, seconds = train_ours(folder, verbose=args.verbose)
    ours = evaluate(folder, lambda p: detect_faces_mmod(p, model=model))
    ours_train = evaluate(folder, lambda p: detect_faces_mmod(p, model=model), "training")
    rows = [_row("scratchface `train_mmod` (2 cores)", seconds, ours,
                 f" training photos: {ours_train.n_true_positives}/{ours_train.n_ground_truth}, "
                 f"precision {ours_train.precision:.3f} |")]
    if not args.no_dlib:
        trained = train_dlib(folder)
        if trained is not None:
            detector, _, dlib_seconds = trained
            theirs = evaluate(folder, dlib_detect(detector, model.upsample))
            theirs_train = evaluate(folder, dlib_detect(detector, model.upsample), "training")
            rows.append(_row("dlib `train_simple_object_detector`", dlib_seconds, theirs,
                             f" training photos: {theirs_train.n_true_positives}/{theirs_train.n_ground_truth}, "
                             f"precision {theirs_train.precision:.3f} |"))
    print("\ntesting.xml (25 faces never trained on), IoU 0.5, threshold 0:")
    print("| trainer | training s | faces found | detections | precision | recall | AP | |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    out = MMOD_MODEL_PATH if args.write else args.out
    if out:
        digest = save_mmod_model(
            out, model, trained_on="dlib_faces/training.xml (4 photos, 18 faces) and their left-right flips; "
            "nothing else (testing.xml only evaluated)", command="python -m experiments.mmod_detector --write",
            C=C, epsilon=EPSILON, loss_per_missed_target=1.0, loss_per_false_alarm=1.0,
            cutting_plane_iterations=solver.iterations, objective=round(solver.objective, 6))
        print(f"wrote {out}  sha256 {digest}")


if __name__ == "__main__":
    main()
