"""AP by face size (WIDER FACE style) of the package's detectors on seeded synthetic scenes and dlib's photos.

Run ``python -m experiments.evaluation_by_size --data ../shared/data --n-images 40`` from the repository
root. The evaluation rule is :func:`scratchface.detection.evaluation.evaluate_by_size`; the scenes are
:func:`scratchface.detection.synthetic.synthetic_face_scenes`. Results: ``docs/results.md``, "Detection".
"""
from __future__ import annotations

import argparse
import math
import sys
import time

from scratchface.detection.evaluation import DEFAULT_BANDS, check_bands, evaluate_by_size
from scratchface.detection.hog_detector import detect_faces_hog
from scratchface.detection.mtcnn import detect_faces
from scratchface.detection.synthetic import synthetic_face_scenes

__all__ = ["compare_detectors_by_size", "default_detectors", "format_size_table", "main"]

def default_detectors():
    """The package's detectors as ``name -> detect(image) -> Detections``.

    ``mtcnn``: :func:`scratchface.detection.mtcnn.detect_faces` with ``min_face_size=12`` (the
    smallest its 12-pixel P-Net window allows; the default 20 could not find the small band at
    all) and O-Net probabilities as scores. ``hog``:
    :func:`scratchface.detection.hog_detector.detect_faces_hog` with ``min_face_size=16`` (the image
    is upsampled so that its 32-pixel window sees 16-pixel faces) and SVM margins as scores.
    """
    def mtcnn(image):
        return detect_faces(image, min_face_size=12)

    def hog(image):
        return detect_faces_hog(image, min_face_size=16)

    return {"mtcnn": mtcnn, "hog": hog}


def compare_detectors_by_size(detectors=None, *, n_images=40, rng=0, data_dir=None, bands=DEFAULT_BANDS,
                              iou_threshold=0.5, image_size=(256, 256), size_bands=((10, 30), (30, 120), (120, 240)),
                              faces_per_image=(1, 4), include_dlib=True, progress=None):
    """Run detectors on seeded synthetic scenes and on the dlib photos; evaluate each by face size.

    Parameters
    ----------
    detectors : dict of str to callable, optional
        ``detect(image uint8 (H, W, 3)) -> (boxes (n, 4), scores (n,))``; default
        :func:`default_detectors` (MTCNN and HOG). Add the scale-friendly detector here.
    n_images : int
        Synthetic scenes (:func:`scratchface.detection.synthetic.synthetic_face_scenes`).
    rng : int or numpy.random.Generator
        Seed of the scenes.
    data_dir : path, optional
        Holds ``orl_faces``, ``yalefaces`` and ``dlib_faces`` (default ``$SCRATCHFACE_DATA``).
    bands, iou_threshold
        As :func:`evaluate_by_size`; an ``all`` band ``[0, inf)`` is added at the end.
    image_size, size_bands, faces_per_image
        Of the synthetic scenes (face heights pasted, see ``synthetic_face_scenes``).
    include_dlib : bool
        Also evaluate on dlib's nine labelled photos (all 43 faces).
    progress : callable, optional
        Called with a line of text as each detector finishes a set.

    Returns
    -------
    dict
        ``{set name: {detector name: {"bands": {band: BandEvaluation}, "seconds_per_image": float}}}``
        for the sets ``'synthetic'`` and ``'dlib'``.
    """
    detectors = default_detectors() if detectors is None else dict(detectors)
    if not detectors or not all(callable(f) for f in detectors.values()):
        raise TypeError("detectors must be a non-empty dict of name -> callable(image) -> (boxes, scores)")
    bands = list(check_bands(bands)) + [("all", 0.0, math.inf)]
    scenes = synthetic_face_scenes(n_images, rng=rng, image_size=image_size, size_bands=size_bands,
                                   faces_per_image=faces_per_image, data_dir=data_dir)
    sets = {"synthetic": [(image, boxes, None) for image, boxes, _ in scenes]}
    if include_dlib:
        from scratchface.data.dlib_faces import load_dlib_faces
        from scratchface.image import read_image
        sets["dlib"] = [(read_image(p.path), p.boxes, p.ignore) for p in load_dlib_faces(data_dir)]
    results = {}
    for set_name, items in sets.items():
        results[set_name] = {}
        for det_name, detect in detectors.items():
            start = time.perf_counter()
            found = [tuple(detect(image)) for image, _, _ in items]
            seconds = (time.perf_counter() - start) / max(len(items), 1)
            ignore = None if items[0][2] is None else [flags for _, _, flags in items]
            by_band = evaluate_by_size(found, [boxes for _, boxes, _ in items], bands=bands,
                                       iou_threshold=iou_threshold, ignore=ignore)
            results[set_name][det_name] = {"bands": by_band, "seconds_per_image": seconds}
            if progress is not None:
                progress(f"{set_name}: {det_name} done ({seconds:.2f} s / image)")
    return results


def _band_label(name, low, high):
    return f"{name} {low:g}-{'inf' if math.isinf(high) else f'{high:g}'}"


def format_size_table(results, bands=DEFAULT_BANDS) -> str:
    """The results of :func:`compare_detectors_by_size` as a text table (AP / recall / faces per band)."""
    bands = list(check_bands(bands)) + [("all", 0.0, math.inf)]
    labels = [_band_label(*b) if b[0] != "all" else "all" for b in bands]
    width = max(20, *(len(s) + 2 for s in labels))
    head1 = f"{'set':<10}{'detector':<16}" + "".join(f"{s:<{width}}" for s in labels) + "s/image"
    head2 = " " * 26 + "".join(f"{'AP':>6}{'recall':>7}{'faces':>6}".ljust(width) for _ in labels)
    lines = [head1, head2, "-" * len(head1)]
    fmt = (lambda v: "     -" if math.isnan(v) else f"{v:6.3f}")
    for set_name, by_detector in results.items():
        for det_name, entry in by_detector.items():
            cells = []
            for name, _, _ in bands:
                e = entry["bands"][name]
                cells.append(f"{fmt(e.average_precision)}{fmt(e.recall)[-6:]:>7}{e.n_faces:>6d}".ljust(width))
            lines.append(f"{set_name:<10}{det_name:<16}" + "".join(cells) + f"{entry['seconds_per_image']:.3f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """``python -m experiments.evaluation_by_size --data ../shared/data --n-images 40``."""
    parser = argparse.ArgumentParser(
        prog="python -m experiments.evaluation_by_size",
        description="AP by face size (WIDER FACE style) of MTCNN and the HOG detector on seeded synthetic "
                    "scenes and on dlib's labelled photos.")
    parser.add_argument("--data", default=None, help="folder with orl_faces, yalefaces, dlib_faces "
                                                     "(default $SCRATCHFACE_DATA)")
    parser.add_argument("--n-images", type=int, default=40, help="synthetic scenes (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scenes (default 0)")
    parser.add_argument("--iou", type=float, default=0.5, help="IoU threshold (default 0.5)")
    parser.add_argument("--no-dlib", action="store_true", help="skip the dlib photos")
    args = parser.parse_args(argv)
    try:
        results = compare_detectors_by_size(n_images=args.n_images, rng=args.seed, data_dir=args.data,
                                            iou_threshold=args.iou, include_dlib=not args.no_dlib,
                                            progress=lambda s: print(s, file=sys.stderr, flush=True))
    except (FileNotFoundError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    dlib = next(iter(results.get("dlib", {}).values()), None)
    print(f"AP at IoU {args.iou:g} by face height (WIDER FACE style: detections on faces of other bands "
          f"ignored, unmatched ones count in the band of their own height); synthetic: {args.n_images} "
          f"scenes 256x256, seed {args.seed}"
          + (f"; dlib: 9 photos, {dlib['bands']['all'].n_faces} faces" if dlib else ""))
    print(format_size_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
