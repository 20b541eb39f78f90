"""Detector evaluation split by face size, the way WIDER FACE reports it: AP per size band.

WIDER FACE (Yang et al. 2016) shows that a detector's precision falls with
the face's size, and reports AP separately on its easy / medium / hard
subsets. Here the subsets are size bands of the face's **height** in pixels
(WIDER's "scale" groups, section 3.2): by default small ``[10, 30)``,
medium ``[30, 120)`` and large ``[120, inf)``.

The rule (one matching, then one count per band)
-----------------------------------------------
1. In each image, detections are matched to *all* its faces at once, PASCAL
   VOC's way (:func:`scratchface.detection.evaluation.match_detections`):
   by decreasing score, each detection takes the face of highest IoU if
   ``IoU >= iou_threshold`` and the face is free (a true positive).
2. A detection whose best face (``IoU >= iou_threshold``) was already taken
   is a *duplicate* of that face; any other detection is *unmatched*.
3. For the band ``[low, high)``:

   * the positives are the faces whose height lies in the band (faces
     marked ``ignore`` never are);
   * a detection matched to, or a duplicate of, a face in the band is a
     true positive, or a false positive;
   * a detection matched to, or a duplicate of, a face **outside** the band
     (or an ignored face) is **ignored**: neither, so a detector is not
     punished in the small band for finding a large face (WIDER's
     evaluation code does the same: faces outside the subset are set to
     "ignore" and detections on them are dropped);
   * an unmatched detection is a false positive of the band of **its own
     height**, ignored by the other bands (``unmatched='own_band'``, the
     default). WIDER's code instead counts every unmatched detection
     against every subset (``unmatched='every_band'``), which, with
     subsets nested as easy in medium in hard, is harsh on the easy
     one and impossible to split for disjoint bands.

   Then AP is VOC's all-points AP
   (:func:`scratchface.detection.evaluation.average_precision`) over the
   band's counted detections by decreasing score; recall is true positives
   over the band's faces. A band with no face has AP and recall NaN.

With one band ``(0, inf)`` this is exactly
:func:`~scratchface.detection.evaluation.evaluate_detections`.

References
----------
S. Yang, P. Luo, C. C. Loy, X. Tang, "WIDER FACE: A Face Detection Benchmark", CVPR 2016,
sections 3.2 and 5.1; its evaluation code (``wider_eval.m``; ``norm_score``, ``image_evaluation``
with ``ignore``) for the ignore rule.
M. Everingham et al., "The PASCAL Visual Object Classes Challenge", IJCV 2010, section 4.2 (matching, AP).
"""
from __future__ import annotations

import argparse
import math
import numbers
import sys
import time
from typing import NamedTuple

import numpy as np

from .._validation import check_choice, check_in_range
from .evaluation import average_precision, match_detections
from .nms import iou

__all__ = [
    "DEFAULT_BANDS",
    "BandEvaluation",
    "compare_detectors_by_size",
    "default_detectors",
    "evaluate_by_size",
    "face_heights",
    "format_size_table",
    "main",
]

DEFAULT_BANDS = (("small", 10, 30), ("medium", 30, 120), ("large", 120, math.inf))


class BandEvaluation(NamedTuple):
    """Scores of a detector on the faces of one size band."""
    average_precision: float     #: VOC all-points AP; NaN when the band has no face
    recall: float                #: true positives / faces of the band; NaN when none
    precision: float             #: true positives / counted detections; NaN when none
    n_faces: int
    n_detections: int            #: detections counted in the band (not ignored)
    n_true_positives: int
    n_false_positives: int


def face_heights(boxes) -> np.ndarray:
    """The size of each face: the height ``y2 - y1`` of its box (WIDER FACE's scale measure), shape (n,)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return boxes[:, 3] - boxes[:, 1]


def _check_bands(bands):
    if not isinstance(bands, (tuple, list)) or not bands:
        raise TypeError(f"bands must be a non-empty sequence of (name, low, high), got {bands!r}")
    out, names = [], set()
    for band in bands:
        if not (isinstance(band, (tuple, list)) and len(band) == 3 and isinstance(band[0], str)
                and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in band[1:])):
            raise TypeError(f"each band must be (name, low, high) with a str name and numbers, got {band!r}")
        name, low, high = band[0], float(band[1]), float(band[2])
        if not (low >= 0 and high > low) or math.isnan(high):
            raise ValueError(f"band {name!r} needs 0 <= low < high, got low={low}, high={high}")
        if name in names:
            raise ValueError(f"band names must differ, {name!r} appears twice")
        names.add(name)
        out.append((name, low, high))
    return out


def _classify(boxes, scores, faces, iou_threshold):
    """Per detection of one image: (face index, is_true_positive); face -1 for an unmatched detection."""
    is_tp, matched = match_detections(boxes, scores, faces, iou_threshold)
    face = matched.copy()
    duplicates = np.nonzero(~is_tp)[0]
    if duplicates.size and len(faces):
        overlaps = iou(np.asarray(boxes, float).reshape(-1, 4)[duplicates], faces)
        best = np.argmax(overlaps, axis=1)
        near = overlaps[np.arange(len(duplicates)), best] >= iou_threshold
        face[duplicates[near]] = best[near]
    return face, is_tp


def evaluate_by_size(detections, ground_truths, *, bands=DEFAULT_BANDS, iou_threshold=0.5, ignore=None,
                     unmatched="own_band"):
    """AP, recall and precision of a detector per face-size band (see the module docstring for the rule).

    Parameters
    ----------
    detections : list of (boxes (n_i, 4), scores (n_i,))
        One pair per image; boxes ``(x1, y1, x2, y2)``.
    ground_truths : list of arrays (m_i, 4)
        The faces of the same images.
    bands : sequence of (name, low, high)
        Face heights ``low <= h < high`` (``high`` may be ``math.inf``). Bands may overlap;
        each is evaluated on its own.
    iou_threshold : float in [0, 1]
    ignore : list of bool arrays (m_i,), optional
        Faces that count nowhere (dlib's ``ignore`` boxes); detections on them are ignored.
    unmatched : {'own_band', 'every_band'}
        Where an unmatched detection counts as a false positive.

    Returns
    -------
    dict of str to BandEvaluation
        In the order of ``bands``.

    Raises
    ------
    TypeError, ValueError
        Malformed bands, a threshold outside [0, 1], lists of different lengths,
        boxes not (n, 4), scores not one per box, ``ignore`` not one flag per face.
    """
    bands = _check_bands(bands)
    iou_threshold = check_in_range(iou_threshold, "iou_threshold", 0.0, 1.0)
    check_choice(unmatched, "unmatched", ("own_band", "every_band"))
    if len(detections) != len(ground_truths):
        raise ValueError(f"detections and ground_truths must have one entry per image, got "
                         f"{len(detections)} and {len(ground_truths)}")
    if ignore is not None and len(ignore) != len(ground_truths):
        raise ValueError(f"ignore must have one entry per image ({len(ground_truths)}), got {len(ignore)}")

    # per detection, over all images: score, its own height, the height of its face (NaN: unmatched), TP flag
    scores_all, own_h, face_h, tp_all, face_ignored = [], [], [], [], []
    heights_all, ignored_all = [], []
    for i, (det, faces) in enumerate(zip(detections, ground_truths)):
        if not (isinstance(det, (tuple, list)) and len(det) == 2):
            raise TypeError(f"detections[{i}] must be a pair (boxes, scores), got {type(det).__name__}")
        boxes, scores = np.asarray(det[0], dtype=np.float64), np.asarray(det[1], dtype=np.float64).reshape(-1)
        faces = np.asarray(faces, dtype=np.float64)
        for name, arr in (("detections", boxes), ("ground_truths", faces)):
            if arr.size and (arr.ndim != 2 or arr.shape[1] != 4):
                raise ValueError(f"{name}[{i}] boxes must have shape (n, 4), got {arr.shape}")
        boxes, faces = boxes.reshape(-1, 4), faces.reshape(-1, 4)
        flags = np.zeros(len(faces), bool) if ignore is None else np.asarray(ignore[i], dtype=bool).reshape(-1)
        if flags.shape[0] != len(faces):
            raise ValueError(f"ignore[{i}] must have one flag per face ({len(faces)}), got {flags.shape[0]}")
        face, is_tp = _classify(boxes, scores, faces, iou_threshold)
        heights = face_heights(faces)
        scores_all.append(scores)
        own_h.append(face_heights(boxes))
        face_h.append(np.where(face >= 0, heights[np.maximum(face, 0)] if len(faces) else np.nan, np.nan))
        face_ignored.append(np.where(face >= 0, flags[np.maximum(face, 0)] if len(faces) else False, False))
        tp_all.append(is_tp)
        heights_all.append(heights)
        ignored_all.append(flags)
    cat = (lambda parts, dtype: np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype))
    scores, own_h, face_h = cat(scores_all, float), cat(own_h, float), cat(face_h, float)
    is_tp, face_ignored = cat(tp_all, bool), cat(face_ignored, bool)
    heights, ignored = cat(heights_all, float), cat(ignored_all, bool)
    order = np.argsort(-scores, kind="stable")
    scores, own_h, face_h, is_tp, face_ignored = (a[order] for a in (scores, own_h, face_h, is_tp, face_ignored))
    has_face = ~np.isnan(face_h)

    results = {}
    for name, low, high in bands:
        n_faces = int(np.sum((heights >= low) & (heights < high) & ~ignored))
        on_band_face = has_face & ~face_ignored & (face_h >= low) & (face_h < high)
        if unmatched == "own_band":
            stray = ~has_face & (own_h >= low) & (own_h < high)
        else:
            stray = ~has_face
        counted = on_band_face | stray
        tp = is_tp[counted] & on_band_face[counted]
        n_det, n_tp = int(counted.sum()), int(tp.sum())
        if n_faces:
            cum = np.cumsum(tp)
            ap = average_precision(cum / n_faces, cum / np.arange(1, n_det + 1))
        results[name] = BandEvaluation(
            average_precision=ap if n_faces else math.nan,
            recall=n_tp / n_faces if n_faces else math.nan,
            precision=n_tp / n_det if n_det else math.nan,
            n_faces=n_faces, n_detections=n_det, n_true_positives=n_tp, n_false_positives=n_det - n_tp)
    return results


# ---------------------------------------------------------------- side-by-side comparison
def default_detectors():
    """The package's detectors as ``name -> detect(image) -> (boxes, scores)``.

    ``mtcnn``: :func:`scratchface.detection.mtcnn.detect_faces` with ``min_face_size=12`` (the
    smallest its 12-pixel P-Net window allows; the default 20 could not find the small band at
    all) and O-Net probabilities as scores. ``hog``:
    :func:`scratchface.detection.hog_detector.detect_faces_hog` with ``min_size=16`` (the image
    is upsampled so that its 32-pixel window sees 16-pixel faces) and SVM margins as scores.
    """
    from .hog_detector import detect_faces_hog
    from .mtcnn import detect_faces

    def mtcnn(image):
        found = detect_faces(image, min_face_size=12)
        return found.boxes, found.probs

    def hog(image):
        return detect_faces_hog(image, min_size=16)

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
    from .synthetic import synthetic_face_scenes

    detectors = default_detectors() if detectors is None else dict(detectors)
    if not detectors or not all(callable(f) for f in detectors.values()):
        raise TypeError("detectors must be a non-empty dict of name -> callable(image) -> (boxes, scores)")
    bands = list(_check_bands(bands)) + [("all", 0.0, math.inf)]
    scenes = synthetic_face_scenes(n_images, rng=rng, image_size=image_size, size_bands=size_bands,
                                   faces_per_image=faces_per_image, data_dir=data_dir)
    sets = {"synthetic": [(image, boxes, None) for image, boxes, _ in scenes]}
    if include_dlib:
        from ..data.dlib_faces import load_dlib_faces
        from ..image import read_image
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
    bands = list(_check_bands(bands)) + [("all", 0.0, math.inf)]
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
    """``python -m scratchface.detection.evaluation_by_size --data ../shared/data --n-images 40``."""
    parser = argparse.ArgumentParser(
        prog="python -m scratchface.detection.evaluation_by_size",
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
