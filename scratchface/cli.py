"""The ``scratchface`` command line: ``gradcheck`` and the face commands detect, verify, identify, cluster, demo.

Each command returns its exit code:

====  ==================================================================
0     success (``verify``: the same person)
1     the job ran and found a failure: a gradient check failed; no face in
      the photo (``detect``, ``identify``, ``cluster``), not the same person
      or no face (``verify``)
2     bad usage, or an input that cannot be used: a missing, truncated,
      corrupt or non-image file, a missing folder, an empty gallery
====  ==================================================================

Messages for the user go to stderr, results to stdout (``--json`` for scripts).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import numpy as np

from .detection.mtcnn import detect_faces
from .gradcheck import PASS_THRESHOLD, collect_gradcheck_cases
from .image import as_rgb, read_image
from .recognition import pipeline
from .recognition import clustering
from .recognition.clustering import cluster_faces
from .viz.contact_sheet import face_thumbnail, save_contact_sheet
from .viz.detections import draw_detections

__all__ = ["main", "build_parser", "add_face_commands", "cmd_cluster", "cmd_demo", "cmd_detect", "cmd_identify",
           "cmd_verify"]


def _cmd_gradcheck(args) -> int:
    cases = collect_gradcheck_cases(args.seed)
    if args.only:
        cases = [c for c in cases if any(s in c.name for s in args.only)]
        if not cases:
            print(f"no gradcheck case matches {args.only}", file=sys.stderr)
            return 2
    width = max(len(c.name) for c in cases) + 2
    header = f"{'layer':<{width}}{'input shape':<22}{'max rel. error':>15}  result"
    print(header)
    print("-" * len(header))
    failed = 0
    for case in cases:
        result = case.run(seed=args.seed)
        failed += not result.passed
        shape = "x".join(str(s) for s in result.shape)
        print(f"{case.name:<{width}}{shape:<22}{result.max_error:>15.2e}  "
              f"{'pass' if result.passed else 'FAIL'}", flush=True)
        for problem in result.problems:
            print(f"    {problem}", flush=True)
    print("-" * len(header))
    print(f"{len(cases) - failed} passed, {failed} failed (pass: max relative error < {PASS_THRESHOLD:g}, "
          "float64, fourth-order central differences)")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scratchface", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("gradcheck", help="check every layer's backward pass against finite differences",
                       description="Check every layer's and loss's backward pass against "
                                   "fourth-order central differences in float64 and print a table.")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="only the cases whose name contains NAME")
    p.set_defaults(func=_cmd_gradcheck)
    add_face_commands(sub)  # detect, verify, identify, cluster, demo
    return parser


# ============================================================================= the face commands
OK, FAILURE, BAD_INPUT = 0, 1, 2


class _BadInput(Exception):
    """An input the command cannot use (exit code 2)."""


def _error(command, message):
    print(f"scratchface {command}: error: {message}", file=sys.stderr)


def _read(path):
    """An image file as an RGB float array, or :class:`_BadInput` with a clear message."""
    try:
        return as_rgb(read_image(path))
    except FileNotFoundError:
        if os.path.isdir(path):
            raise _BadInput(f"{path} is a folder, not an image file") from None
        raise _BadInput(f"image file not found: {path}") from None
    except (ValueError, TypeError, OSError) as exc:
        raise _BadInput(str(exc)) from None


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _probability(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a probability between 0 and 1, got {text!r}")
    return value


def _min_face(text):
    value = _positive_float(text)
    if value < 12:
        raise argparse.ArgumentTypeError(f"must be at least 12 pixels (MTCNN's smallest window), got {text!r}")
    return value


def _run(command, body, args):
    """Call ``body(args)``; turn :class:`_BadInput` into exit code 2 and a message."""
    try:
        return body(args)
    except _BadInput as exc:
        _error(command, exc)
        return BAD_INPUT


def _round(values, digits=2):
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()


# ----------------------------------------------------------------------------- detect
def _faces_json(det):
    return [{"box": _round(b), "probability": round(float(p), 4), "landmarks": _round(lm)}
            for b, p, lm in zip(det.boxes, det.scores, det.landmarks)]


def _save_drawing(rgb, det, out, title=None):
    from matplotlib.figure import Figure  # heavy, optional: only when a drawing is asked for

    height, width = rgb.shape[:2]
    fig = Figure(figsize=(8, 8 * height / max(width, 1)))
    ax = fig.add_subplot()
    draw_detections(rgb, det, ax=ax, title=title)
    try:
        fig.savefig(out, bbox_inches="tight", dpi=100)
    except (OSError, ValueError) as exc:
        raise _BadInput(f"cannot write {out}: {exc}") from None


def _detect(args):
    rgb = _read(args.image)
    det = detect_faces(rgb, min_face_size=args.min_face_size)
    if args.out:
        _save_drawing(rgb, det, args.out, title=f"{len(det.boxes)} face(s)")
    if args.json:
        print(json.dumps({"image": args.image, "faces": _faces_json(det)}, indent=2))
    else:
        for k, (box, prob) in enumerate(zip(det.boxes, det.scores), 1):
            x1, y1, x2, y2 = box
            print(f"face {k}: box ({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}), probability {prob:.3f}")
    if args.out:
        print(f"annotated image saved to {os.path.abspath(args.out)}", file=sys.stderr)
    if len(det.boxes) == 0:
        print(f"no face found in {args.image}", file=sys.stderr)
        return FAILURE
    return OK


def cmd_detect(args):
    """``scratchface detect IMG [--out annotated.png] [--json]``: MTCNN boxes, probabilities, landmarks."""
    return _run("detect", _detect, args)


# ----------------------------------------------------------------------------- verify
def _largest_embedding(path, min_face_size):
    faces = pipeline.detect_and_embed(_read(path), min_face_size=min_face_size, max_faces=1)
    return faces.embeddings[0] if len(faces.embeddings) else None


def _verify(args):
    a = _largest_embedding(args.image1, args.min_face_size)
    b = _largest_embedding(args.image2, args.min_face_size)
    missing = [p for p, e in ((args.image1, a), (args.image2, b)) if e is None]
    if missing:
        for path in missing:
            print(f"no face found in {path}", file=sys.stderr)
        if args.json:
            print(json.dumps({"same": None, "distance": None, "threshold": args.threshold, "no_face": missing}))
        return FAILURE
    distance = float(np.linalg.norm(a.astype(np.float64) - b))
    same = distance < args.threshold
    if args.json:
        print(json.dumps({"same": same, "distance": round(distance, 4), "threshold": args.threshold}))
    else:
        verdict = "same person" if same else "different people"
        sign = "<" if same else ">="
        print(f"{verdict} (distance {distance:.3f} {sign} threshold {args.threshold:g})")
    return OK if same else FAILURE


def cmd_verify(args):
    """``scratchface verify IMG1 IMG2``: are the largest faces of the two photos the same person?"""
    return _run("verify", _verify, args)


# ----------------------------------------------------------------------------- identify
def _identify(args):
    rgb = _read(args.image)
    if not os.path.isdir(args.gallery):
        raise _BadInput(f"gallery folder not found: {args.gallery}")
    try:
        gallery = pipeline.Gallery.from_folder(args.gallery, args.threshold, min_face_size=args.min_face_size,
                                      on_error="skip")
    except ValueError as exc:
        raise _BadInput(str(exc)) from None
    for file, why in gallery.skipped:
        print(f"warning: gallery file {file} left out: {why}", file=sys.stderr)
    if len(gallery) == 0:
        raise _BadInput(f"the gallery {args.gallery} is empty: none of its images has a usable face")
    matches = gallery.identify(rgb)
    if args.json:
        print(json.dumps({"image": args.image, "gallery": {"faces": len(gallery), "people": gallery.people},
                          "threshold": args.threshold,
                          "faces": [{"name": m.name, "nearest": m.nearest, "distance": round(m.distance, 4),
                                     "box": _round(m.box)} for m in matches]}, indent=2))
    else:
        for k, m in enumerate(matches, 1):
            x1, y1, x2, y2 = m.box
            who = m.name if m.name is not None else f"unknown (nearest: {m.nearest})"
            print(f"face {k} at ({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}): {who}, distance {m.distance:.3f}")
    if not matches:
        print(f"no face found in {args.image}", file=sys.stderr)
        return FAILURE
    return OK


def cmd_identify(args):
    """``scratchface identify --gallery DIR IMG``: name every face of IMG from the people in DIR."""
    return _run("identify", _identify, args)


# ----------------------------------------------------------------------------- cluster
#: Faces MTCNN is less sure of are left out of clustering. MTCNN keeps windows from 0.7 (O-Net's threshold); every
#: real face of the collections in docs/results.md scored >= 0.975, so 0.9 drops the uncertain band where false
#: detections (textures, half faces) lie, without losing a face of those collections.
DEFAULT_MIN_SCORE = 0.9


def _count(n, noun):
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _clusters_by_size(labels):
    """Cluster member indices, biggest cluster first (ties: by first member); label -1 (left out) is not a cluster."""
    groups = [np.flatnonzero(labels == k) for k in np.unique(labels) if k >= 0]
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def _embed_folder_faces(args):
    """Every face of the folder: ``(faces, no_face, skipped)``; a face is a dict (path, face, box, score, vector)."""
    faces, no_face, skipped, seen = [], [], [], 0
    for item in pipeline.embed_folder(args.folder, batch_size=args.batch_size, min_face_size=args.min_face_size,
                                      extensions=None if args.all_files else pipeline.IMAGE_EXTENSIONS,
                                      recursive=args.recursive, progress=not args.quiet):
        seen += 1
        if item.error is not None:
            skipped.append((item.path, item.error))
            continue
        if len(item.embeddings) == 0:
            no_face.append(item.path)
        scores = np.ones(len(item.embeddings)) if item.scores is None else item.scores
        for k, (vector, box, score) in enumerate(zip(item.embeddings, item.boxes, scores)):
            faces.append({"path": item.path, "face": k + 1, "box": box, "score": float(score), "vector": vector})
    if seen == 0:
        raise _BadInput(f"the folder {args.folder} holds no images" +
                        ("" if args.recursive else " (sub-folders are read with --recursive)"))
    return faces, no_face, skipped


def _check_out_dir(args):
    """Refuse an ``--out-dir`` that is the photos' own folder (or inside it with --recursive) or is not empty."""
    out, folder = os.path.realpath(args.out_dir), os.path.realpath(args.folder)
    if out == folder or (args.recursive and out.startswith(folder + os.sep)):
        raise _BadInput(f"--out-dir {args.out_dir} must lie outside the photos' folder")
    if os.path.exists(out) and not os.path.isdir(out):
        raise _BadInput(f"--out-dir {args.out_dir} exists and is not a folder")
    if os.path.isdir(out) and os.listdir(out) and not args.force:
        raise _BadInput(f"--out-dir {args.out_dir} is not empty (add --force to write into it)")


def _place(source, target, link):
    """Copy (or symlink) ``source`` to ``target`` via a temporary name in the target's folder; ``source`` is only read."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.{os.getpid()}.tmp")
    try:
        if link:
            os.symlink(os.path.abspath(source), tmp)
        else:
            shutil.copy2(source, tmp)
        os.replace(tmp, target)
    except OSError as exc:
        if os.path.lexists(tmp):
            os.remove(tmp)
        raise _BadInput(f"cannot write {target}: {exc}") from None


def _write_out_dir(args, clusters, unclustered_files):
    """One folder per cluster (``person_001``...) and ``unclustered/``; a photo goes wherever one of its faces is."""
    for k, members in enumerate(clusters, 1):
        for rel in dict.fromkeys(m["file"] for m in members):
            _place(os.path.join(args.folder, rel), os.path.join(args.out_dir, f"person_{k:03d}", rel), args.link)
    for rel in unclustered_files:
        _place(os.path.join(args.folder, rel), os.path.join(args.out_dir, "unclustered", rel), args.link)


def _write_contact_sheet(args, faces, groups, left_out):
    """One row of thumbnails per cluster (people seen once share a row), then the faces left out."""
    thumbs, photo = {}, (None, None)
    for i in sorted({int(i) for g in groups for i in g[:12]} | {int(i) for i in left_out[:12]}):
        if faces[i]["path"] != photo[0]:  # the faces of a photo are consecutive: one photo read at a time
            photo = (faces[i]["path"], _read(faces[i]["path"]))
        thumbs[i] = face_thumbnail(photo[1], faces[i]["box"], size=64, value_range="0..255")
    rows, labels = [], []
    for k, g in enumerate(groups, 1):
        if len(g) > 1:
            rows.append([thumbs[i] for i in g[:12]])
            labels.append(f"person {k} ({len(g)})" + (" ..." if len(g) > 12 else ""))
    alone = [g[0] for g in groups if len(g) == 1]
    for label, items in (("seen once", alone), (f"score < {args.min_score:g}", list(left_out))):
        if items:
            rows.append([thumbs[i] for i in items[:12] if i in thumbs])
            labels.append(f"{label} ({len(items)})" + (" ..." if len(items) > 12 else ""))
    save_contact_sheet(args.contact_sheet, rows, labels, title=f"{len(faces)} faces of {args.folder}")


def _cluster(args):
    if not os.path.isdir(args.folder):
        raise _BadInput(f"folder not found: {args.folder}" if not os.path.exists(args.folder)
                        else f"{args.folder} is a file, not a folder of photos")
    if (args.link or args.force) and not args.out_dir:
        raise _BadInput("--link and --force go with --out-dir")
    if args.out_dir:
        _check_out_dir(args)
    if args.contact_sheet and not os.path.isdir(os.path.dirname(os.path.abspath(args.contact_sheet))):
        raise _BadInput(f"the folder of --contact-sheet {args.contact_sheet} does not exist")
    faces, no_face, skipped = _embed_folder_faces(args)
    for path, why in skipped:
        print(f"warning: {path} left out: {why}", file=sys.stderr)

    def rel(path):
        return os.path.relpath(path, args.folder)

    result = {"folder": args.folder, "method": args.method, "threshold": args.threshold, "min_score": args.min_score,
              "faces": len(faces), "clusters": [], "unclustered": [], "no_face": [rel(p) for p in no_face],
              "skipped": [{"file": rel(p), "error": str(why)} for p, why in skipped]}
    if not faces:
        print(f"no face found in the images of {args.folder}", file=sys.stderr)
        if args.json:
            print(json.dumps(result, indent=2))
        return FAILURE
    labels = cluster_faces(np.stack([f["vector"] for f in faces]).astype(np.float64), method=args.method,
                           threshold=args.threshold, scores=[f["score"] for f in faces], min_score=args.min_score)

    def describe(i):
        return {"file": rel(faces[i]["path"]), "face": faces[i]["face"], "score": round(faces[i]["score"], 4),
                "box": _round(faces[i]["box"])}

    groups = _clusters_by_size(labels)
    left_out = np.flatnonzero(labels < 0)
    result["clusters"] = [[describe(i) for i in g] for g in groups]
    result["unclustered"] = [describe(i) for i in left_out]
    clustered_files = {m["file"] for c in result["clusters"] for m in c}
    unclustered_files = sorted({rel(p) for p in no_face} | {m["file"] for m in result["unclustered"]} - clustered_files)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        alone = sum(len(g) == 1 for g in groups)
        method = {"average": "average linkage", "single": "single linkage"}.get(args.method, "chinese whispers")
        print(f"{_count(len(faces), 'face')} in {_count(len(groups), 'cluster')} ({len(groups) - alone} seen more "
              f"than once, {alone} seen once; {method}, threshold {args.threshold:g})")

        def name(m):
            return m["file"] + (f" [face {m['face']}]" if m["face"] > 1 else "")

        for k, members in enumerate(result["clusters"], 1):
            size = f"{len(members)} faces" if len(members) > 1 else "1 face, seen once"
            print(f"cluster {k} ({size}): " + ", ".join(name(m) for m in members))
        if result["unclustered"]:
            print(f"unclustered (detection score < {args.min_score:g}): " +
                  ", ".join(f"{name(m)} ({m['score']:.2f})" for m in result["unclustered"]))
        if no_face:
            print("no face: " + ", ".join(rel(p) for p in no_face))
    if args.contact_sheet:
        _write_contact_sheet(args, faces, groups, left_out)
        print(f"contact sheet saved to {os.path.abspath(args.contact_sheet)}", file=sys.stderr)
    if args.out_dir:
        _write_out_dir(args, result["clusters"], unclustered_files)
        print(f"photos {'linked' if args.link else 'copied'} into {os.path.abspath(args.out_dir)}", file=sys.stderr)
    if not groups:
        print(f"every face scored below --min-score {args.min_score:g}: nothing to cluster", file=sys.stderr)
        return FAILURE
    return OK


def cmd_cluster(args):
    """``scratchface cluster DIR``: group the faces of a folder's photos by person."""
    return _run("cluster", _cluster, args)


# ----------------------------------------------------------------------------- demo
def _demo(args):
    from skimage.data import astronaut  # heavy, optional: only the demo needs the bundled photo

    rgb = astronaut().astype(np.float32)
    det = detect_faces(rgb)
    out = args.out
    _save_drawing(rgb, det, out, title=f"MTCNN: {len(det.boxes)} face(s) in scikit-image's astronaut")
    for k, (box, prob) in enumerate(zip(det.boxes, det.scores), 1):
        x1, y1, x2, y2 = box
        print(f"face {k}: box ({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}), probability {prob:.3f}")
    print(f"saved {os.path.abspath(out)}")
    return OK if len(det.boxes) else FAILURE


def cmd_demo(args):
    """``scratchface demo [--out PNG]``: detect and draw the faces of scikit-image's astronaut."""
    return _run("demo", _demo, args)


# ----------------------------------------------------------------------------- registration of the face commands
_EXIT_CODES = "exit codes: 0 success, 1 {one}, 2 bad usage or unreadable input"


def add_face_commands(subparsers):
    """Register ``detect``, ``verify``, ``identify``, ``cluster`` and ``demo`` on argparse sub-parsers.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``parser.add_subparsers()`` returned; each sub-command's handler is
        set as ``func`` (``args.func(args)`` returns the exit code).
    """
    fmt = argparse.RawDescriptionHelpFormatter

    def common(p, threshold=False):
        p.add_argument("--min-face-size", type=_min_face, default=20.0, metavar="PIXELS",
                       help="smallest face searched for, pixels (default 20)")
        if threshold:
            p.add_argument("--threshold", type=_positive_float, default=pipeline.DEFAULT_THRESHOLD,
                           help=f"Euclidean distance below which two faces are the same person "
                                f"(default {pipeline.DEFAULT_THRESHOLD}, dlib's)")
        p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = subparsers.add_parser(
        "detect", help="find faces (MTCNN) in a photo", formatter_class=fmt,
        description="Find the faces of a photo with MTCNN: boxes, probabilities, five landmarks.",
        epilog=_EXIT_CODES.format(one="no face found"))
    p.add_argument("image", metavar="IMG", help="photo (JPEG, PNG, GIF, PGM...; gray, RGB, RGBA, 8 or 16 bit)")
    p.add_argument("--out", metavar="PNG", help="also save the photo with the faces drawn on it")
    common(p)
    p.set_defaults(func=cmd_detect)

    p = subparsers.add_parser(
        "verify", help="are two photos of the same person?", formatter_class=fmt,
        description="Compare the largest face of each photo with dlib's 128-d descriptor "
                    "(detect with MTCNN, align, embed, Euclidean distance).",
        epilog=_EXIT_CODES.format(one="different people, or no face in a photo"))
    p.add_argument("image1", metavar="IMG1")
    p.add_argument("image2", metavar="IMG2")
    common(p, threshold=True)
    p.set_defaults(func=cmd_verify)

    p = subparsers.add_parser(
        "identify", help="name the faces of a photo from a gallery of known people", formatter_class=fmt,
        description="Name every face of IMG by the nearest enrolled face of the gallery, or 'unknown' "
                    "when it is farther than the threshold. The gallery folder holds DIR/name.jpg "
                    "(the file name is the person's name) or DIR/name/*.jpg (several photos per person).",
        epilog=_EXIT_CODES.format(one="no face found in IMG"))
    p.add_argument("--gallery", required=True, metavar="DIR", help="folder of photos of known people")
    p.add_argument("image", metavar="IMG")
    common(p, threshold=True)
    p.set_defaults(func=cmd_identify)

    p = subparsers.add_parser(
        "cluster", help="group the faces of a folder of photos by person", formatter_class=fmt,
        description="Embed every face of every photo in DIR (streaming, in batches) and group them by person: "
                    "average linkage by default (two groups merge while their mean distance is at most the "
                    "threshold, so a few close pairs cannot chain people together). Faces with a low detection "
                    "score are left out and listed as unclustered.",
        epilog=_EXIT_CODES.format(one="no face in any photo, or every face below --min-score"))
    p.add_argument("folder", metavar="DIR")
    p.add_argument("--method", choices=clustering.METHODS, default="average",
                   help="average linkage (default), single linkage (chains: for comparison) or chinese_whispers "
                        "(dlib's)")
    p.add_argument("--threshold", type=_positive_float, default=clustering.DEFAULT_THRESHOLD,
                   help=f"Euclidean distance within which faces may share a cluster (default "
                        f"{clustering.DEFAULT_THRESHOLD}; tighter than verify's {pipeline.DEFAULT_THRESHOLD}, "
                        "see docs/results.md)")
    p.add_argument("--min-score", type=_probability, default=DEFAULT_MIN_SCORE, metavar="P",
                   help=f"leave out faces whose detection probability is below P (default {DEFAULT_MIN_SCORE}; "
                        "MTCNN itself keeps windows from 0.7)")
    p.add_argument("--contact-sheet", metavar="PNG", help="also save one row of face thumbnails per cluster")
    p.add_argument("--out-dir", metavar="DIR",
                   help="copy each photo into DIR/person_001/... by cluster (DIR/unclustered/ for photos without "
                        "a clustered face); the originals are never moved or changed")
    p.add_argument("--link", action="store_true", help="with --out-dir: symbolic links instead of copies")
    p.add_argument("--force", action="store_true", help="with --out-dir: write into a folder that is not empty")
    p.add_argument("--recursive", action="store_true", help="also read sub-folders")
    p.add_argument("--all-files", action="store_true",
                   help="try every file, not only image extensions (e.g. Yale's subject01.happy)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="faces per forward pass (default 32)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    common(p)
    p.set_defaults(func=cmd_cluster)

    p = subparsers.add_parser(
        "demo", help="detect and draw the faces of a bundled photo", formatter_class=fmt,
        description="Detect the faces of scikit-image's astronaut (Eileen Collins) with MTCNN, draw "
                    "them and save the picture as a PNG.",
        epilog=_EXIT_CODES.format(one="no face found"))
    p.add_argument("--out", default="scratchface_demo.png", metavar="PNG",
                   help="where to save the picture (default ./scratchface_demo.png)")
    p.set_defaults(func=cmd_demo)
    return subparsers


# ============================================================================= entry point
def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
