"""Scanning a large photo: scratchface's MMOD detector vs dlib's HOG detectors, same photo, same run.

Usage::

    python benchmarks/bench_mmod.py                  # bald_guys.jpg (1986 x 1545), upsample 1, best of 3
    python benchmarks/bench_mmod.py --upsample 0 --repeat 5 --no-train

The photo is ``dlib_faces/bald_guys.jpg`` from ../shared/data (1986 x 1545: the
"1920-pixel photo" of the issue, used as it is), scanned at dlib's settings:
one upsampling (the pyramid starts at 3972 x 3090), 80 x 80 windows, pyramid
step 5/6, threshold 0. Timed, best of ``--repeat`` after one warm-up call:

* scratchface ``detect_faces_mmod`` with the shipped model (its HOG pyramid and
  its filter scan also timed apart);
* dlib's ``get_frontal_face_detector()`` (5 HOG filters, FHOG, SIMD C++);
* the detector ``dlib.train_simple_object_detector`` trains on training.xml with
  the options of ``experiments.mmod_detector`` (trained here first, unless ``--no-train``).

Each row also counts the faces found: the faces scratchface's MTCNN finds with probability
> 0.95 (no labels ship for this photo), matched at IoU 0.3, as in the issue's table.

dlib is a benchmark-only peer (``pip install dlib-bin``); without it only
scratchface is timed. Threads: whatever each library uses by default
(Numba's pool for scratchface, one thread per call for dlib's detector).
"""
from __future__ import annotations

import argparse
import os
import pathlib

import numpy as np

from scratchface.detection.mmod import detect_faces_mmod, load_mmod_model, prepare_mmod_image
from scratchface.detection.mmod_scan import box_overlaps, model_pyramid, scan_levels
from scratchface.detection.mtcnn import detect_faces
from scratchface.image import as_rgb
from _timing import best_of  # noqa: E402  (benchmarks/ is the script's folder)

DATA = pathlib.Path(os.environ.get("SCRATCHFACE_DATA",
                                   pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"))


def _dlib_boxes(rects):
    """dlib rectangles (inclusive right / bottom) as (x1, y1, x2, y2)."""
    return np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], float).reshape(-1, 4)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", default=str(DATA / "dlib_faces" / "bald_guys.jpg"))
    parser.add_argument("--upsample", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-train", action="store_true", help="skip training dlib's detector on training.xml")
    args = parser.parse_args(argv)

    model = load_mmod_model()._replace(upsample=args.upsample)
    photo = np.ascontiguousarray(as_rgb(args.photo, dtype=np.float32).astype(np.uint8))
    print(f"photo {args.photo}: {photo.shape[1]} x {photo.shape[0]}, upsample {args.upsample}")
    mtcnn = detect_faces(photo)
    faces = mtcnn.boxes[mtcnn.scores > 0.95]

    def found_faces(boxes):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        return int((box_overlaps(boxes, faces)[0].max(axis=0, initial=0.0) >= 0.3).sum())

    rows = []
    t_ours, found = best_of(lambda: detect_faces_mmod(photo, model=model), args.repeat, warm_up=True)
    t_hog, levels = best_of(lambda: model_pyramid(prepare_mmod_image(photo), model), args.repeat, warm_up=True)
    t_scan, _ = best_of(lambda: scan_levels(levels, model, 0.0), args.repeat, warm_up=True)
    rows.append(("scratchface detect_faces_mmod", t_ours, found.boxes))
    print(f"  scratchface: HOG pyramid {t_hog:.2f} s ({len(levels)} levels), filter scan {t_scan:.2f} s")
    try:
        import dlib  # benchmark-only peer: pip install dlib-bin
    except ImportError:
        dlib = None
        print("dlib not installed (pip install dlib-bin): only scratchface timed")
    if dlib is not None:
        frontal = dlib.get_frontal_face_detector()
        t, rects = best_of(lambda: frontal(photo, args.upsample), args.repeat, warm_up=True)
        rows.append(("dlib get_frontal_face_detector()", t, _dlib_boxes(rects)))
        if not args.no_train:
            from experiments.mmod_detector import train_dlib  # the same options as the training comparison
            trained = train_dlib(DATA / "dlib_faces", log=lambda *_: None)
            detector = trained[0]
            t, (rects, _, _) = best_of(lambda: detector.run(photo, args.upsample, 0.0), args.repeat, warm_up=True)
            rows.append(("dlib trained on training.xml", t, _dlib_boxes(rects)))
    print("| detector | seconds | detections | MTCNN faces (p > 0.95) found, IoU 0.3 | scratchface / it |")
    print("|---|---|---|---|---|")
    for name, t, boxes in rows:
        print(f"| {name} | {t:.3f} | {len(boxes)} | {found_faces(boxes)}/{len(faces)} | {t_ours / t:.2f} |")


if __name__ == "__main__":
    main()
