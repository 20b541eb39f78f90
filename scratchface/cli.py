"""The ``scratchface`` command line: ``gradcheck`` and the face commands detect, verify, enroll, identify, cluster, demo.

Each command returns its exit code:

====  ==================================================================
0     success (``verify``: the same person)
1     the job ran and found a failure: a gradient check failed; no face in
      the photo (``detect``, ``identify``, ``cluster``), no face enrolled
      (``enroll``), not the same person
      or no face (``verify``)
2     bad usage, or an input that cannot be used: a missing, truncated,
      corrupt or non-image file, a missing folder, an empty gallery
====  ==================================================================

Messages for the user go to stderr, results to stdout (``--json`` for scripts).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys

import numpy as np

from .cli_cluster import add_cluster_command, cmd_cluster
from .cli_common import (
    FAILURE,
    OK,
    BadInput,
    min_face_size_arg,
    positive_float,
    positive_int,
    read_photo,
    rounded,
    run_command,
)
from .data.atomic import savefig_atomic
from .detection.mtcnn import detect_faces
from .gradcheck import PASS_THRESHOLD, collect_gradcheck_cases
from .recognition import enrollment, pipeline
from .viz.detections import draw_detections

__all__ = ["main", "build_parser", "add_face_commands", "cmd_cluster", "cmd_demo", "cmd_detect", "cmd_enroll",
           "cmd_identify", "cmd_verify"]


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
    add_face_commands(sub)  # detect, verify, enroll, identify, cluster, demo
    return parser


# ============================================================================= the face commands
# ----------------------------------------------------------------------------- detect
def _faces_json(det):
    return [{"box": rounded(b), "probability": round(float(p), 4), "landmarks": rounded(lm)}
            for b, p, lm in zip(det.boxes, det.scores, det.landmarks)]


def _save_drawing(rgb, det, out, title=None):
    from matplotlib.figure import Figure  # heavy, optional: only when a drawing is asked for

    height, width = rgb.shape[:2]
    fig = Figure(figsize=(8, 8 * height / max(width, 1)))
    ax = fig.add_subplot()
    draw_detections(rgb, det, ax=ax, title=title)
    try:
        savefig_atomic(fig, out, bbox_inches="tight", dpi=100)
    except (OSError, ValueError) as exc:
        raise BadInput(f"cannot write {out}: {exc}") from None


def _detect(args):
    rgb = read_photo(args.image)
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
    return run_command("detect", _detect, args)


# ----------------------------------------------------------------------------- verify
def _largest_embedding(path, min_face_size):
    faces = pipeline.detect_and_embed(read_photo(path), min_face_size=min_face_size, max_faces=1)
    return faces.embeddings[0] if len(faces.embeddings) else None


def _verify_many(args, files):
    """IMG1 against every photo of ``files`` (streamed): one line each."""
    a = _largest_embedding(args.image1, args.min_face_size)
    if a is None:
        raise BadInput(f"no face found in the reference photo {args.image1}")
    results = []
    for item in pipeline.embed_files(files, min_face_size=args.min_face_size, max_faces=1, progress=False):
        result = {"image": item.path, "same": None, "distance": None}
        if item.error is not None:
            print(f"warning: {item.path} left out: {item.error}", file=sys.stderr)
            result["error"] = item.error
        elif len(item.embeddings):
            distance = float(np.linalg.norm(a.astype(np.float64) - item.embeddings[0]))
            result.update(same=distance < args.threshold, distance=round(distance, 4))
        results.append(result)
    if args.json:
        print(json.dumps({"reference": args.image1, "threshold": args.threshold, "results": results}, indent=2))
    else:
        for r in results:
            verdict = ("no face found" if r["distance"] is None else
                       f"{'same person' if r['same'] else 'different people'} (distance {r['distance']:.3f})")
            print(f"{r['image']}: {verdict}")
    return OK if all(r["same"] for r in results) else FAILURE


def _verify(args):
    if len(args.others) > 1 or os.path.isdir(args.others[0]):
        return _verify_many(args, _image_files(args.others, args.recursive))
    args.image2 = args.others[0]
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
    """``scratchface verify IMG1 IMG2...``: is the largest face of each photo IMG1's person?"""
    return run_command("verify", _verify, args)


# ----------------------------------------------------------------------------- enroll, identify
def _image_files(inputs, recursive):
    """The image files named by ``inputs`` (files, and the images of folders), in the order given."""
    files = []
    for path in inputs:
        if os.path.isdir(path):
            found = pipeline.list_images(path, recursive=recursive)
            if not found:
                print(f"warning: no image files in the folder {path}", file=sys.stderr)
            files.extend(found)
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise BadInput(f"image file or folder not found: {path}")
    if not files:
        raise BadInput(f"no image files in {', '.join(inputs)}")
    return files


def _enroll(args):
    if not os.path.isdir(args.folder):
        raise BadInput(f"{args.folder} is not a folder (expected DIR/name.jpg or DIR/name/*.jpg)")
    previous = None
    if os.path.exists(args.out) and not args.rebuild:
        try:
            previous = enrollment.load_enrolment(args.out)
        except ValueError as exc:
            raise BadInput(f"{exc} (pass --rebuild to overwrite it)") from None
    try:
        result = enrollment.enroll_folder(args.folder, previous=previous, min_face_size=args.min_face_size,
                                          batch_size=args.batch_size, progress=not args.quiet)
        written = enrollment.save_enrolment(args.out, result, args.threshold)
    except (ValueError, OSError) as exc:
        raise BadInput(str(exc)) from None
    problems = []
    for path, n, why in zip(result.paths, result.faces, result.errors):
        if n == enrollment.UNREADABLE:
            problems.append({"file": path, "problem": "unreadable", "detail": why})
        elif n == 0:
            problems.append({"file": path, "problem": "no face"})
        elif n > 1:
            problems.append({"file": path, "problem": f"{n} faces, the largest enrolled"})
    for p in problems:
        print(f"warning: {p['file']}: {p['problem']}" + (f" ({p['detail']})" if "detail" in p else ""),
              file=sys.stderr)
    enrolled = int((result.faces > 0).sum())
    people = sorted({name for name, n in zip(result.names, result.faces) if n > 0})
    summary = {"gallery": written, "photos": len(result.paths), "enrolled": enrolled, "people": len(people),
               "embedded": result.embedded, "reused": result.reused, "removed": result.removed,
               "problems": problems}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{enrolled} of {len(result.paths)} photos enrolled, {len(people)} people, into {written} "
              f"({result.embedded} embedded, {result.reused} unchanged, {result.removed} removed)")
    return OK if enrolled else FAILURE


def cmd_enroll(args):
    """``scratchface enroll PEOPLE_DIR --out gallery.npz``: a gallery file, updated by content hash."""
    return run_command("enroll", _enroll, args)


def _identify_rows(args, gallery, files):
    """One dict per face of every readable file (streamed), and the unreadable files."""
    rows, unreadable, faceless = [], [], []
    bar = not args.quiet and len(files) > 1
    for item in pipeline.embed_files(files, args.batch_size, min_face_size=args.min_face_size, progress=bar):
        if item.error is not None:
            unreadable.append((item.path, item.error))
            continue
        if not len(item.embeddings):
            faceless.append(item.path)
        matches = gallery.identify_embeddings(item.embeddings, boxes=item.boxes) if len(item.embeddings) else []
        for k, m in enumerate(matches, 1):
            rows.append({"image": item.path, "face": k, "name": m.name, "nearest": m.nearest,
                         "distance": round(m.distance, 4), "box": rounded(m.box)})
    return rows, unreadable, faceless


def _identify(args):
    try:
        gallery, _ = enrollment.load_gallery(args.gallery, args.threshold, min_face_size=args.min_face_size,
                                             batch_size=args.batch_size, progress=False)
    except (ValueError, OSError) as exc:
        raise BadInput(str(exc)) from None
    if len(gallery) == 0:
        raise BadInput(f"the gallery {args.gallery} is empty: none of its images has a usable face")
    files = _image_files(args.unknown, args.recursive)
    rows, unreadable, faceless = _identify_rows(args, gallery, files)
    if len(unreadable) == len(files):
        raise BadInput(unreadable[0][1] if len(files) == 1 else f"none of the {len(files)} images is readable")
    for path, why in unreadable:
        print(f"warning: {path} left out: {why}", file=sys.stderr)
    if args.json:
        print(json.dumps({"gallery": {"faces": len(gallery), "people": gallery.people},
                          "threshold": gallery.threshold, "images": len(files), "faces": rows,
                          "no_face": faceless, "unreadable": [p for p, _ in unreadable]}, indent=2))
    elif args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["image", "face", "name", "nearest", "distance", "x1", "y1", "x2", "y2"])
        for r in rows:
            writer.writerow([r["image"], r["face"], r["name"] or "unknown", r["nearest"], r["distance"], *r["box"]])
    else:
        for r in rows:
            x1, y1, x2, y2 = r["box"]
            who = r["name"] if r["name"] is not None else f"unknown (nearest: {r['nearest']})"
            print(f"{r['image']}: face {r['face']} at ({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}): {who}, "
                  f"distance {r['distance']:.3f}")
    for path in faceless:
        print(f"no face found in {path}", file=sys.stderr)
    return OK if rows else FAILURE


def cmd_identify(args):
    """``scratchface identify --gallery FILE|DIR UNKNOWN...``: name every face of the unknown photos."""
    return run_command("identify", _identify, args)


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
    return run_command("demo", _demo, args)


# ----------------------------------------------------------------------------- registration of the face commands
_EXIT_CODES = "exit codes: 0 success, 1 {one}, 2 bad usage or unreadable input"


def add_face_commands(subparsers):
    """Register ``detect``, ``verify``, ``enroll``, ``identify``, ``cluster`` and ``demo`` on argparse sub-parsers.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``parser.add_subparsers()`` returned; each sub-command's handler is
        set as ``func`` (``args.func(args)`` returns the exit code).
    """
    fmt = argparse.RawDescriptionHelpFormatter

    def common(p, threshold=False):
        p.add_argument("--min-face-size", type=min_face_size_arg, default=20.0, metavar="PIXELS",
                       help="smallest face searched for, pixels (default 20)")
        if threshold:
            p.add_argument("--threshold", type=positive_float, default=pipeline.DEFAULT_THRESHOLD,
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
                    "(detect with MTCNN, align, embed, Euclidean distance). Several IMG2 (files or "
                    "folders): IMG1 against each, one line per photo.",
        epilog=_EXIT_CODES.format(one="different people, or no face in a photo"))
    p.add_argument("image1", metavar="IMG1")
    p.add_argument("others", nargs="+", metavar="IMG2", help="a photo, or several photos and folders")
    p.add_argument("--recursive", action="store_true", help="also read sub-folders of IMG2 folders")
    common(p, threshold=True)
    p.set_defaults(func=cmd_verify)

    p = subparsers.add_parser(
        "enroll", help="build a gallery file from a folder of known people (once)", formatter_class=fmt,
        description="Detect, align and embed the largest face of every photo of PEOPLE_DIR (DIR/name.jpg, "
                    "the file name is the person's name, or DIR/name/*.jpg, several photos per person) into "
                    "a gallery file. Photos without a face, with several faces or unreadable are reported. "
                    "Run again: only new or changed photos (SHA-256 of their bytes) are embedded.",
        epilog=_EXIT_CODES.format(one="no face enrolled"))
    p.add_argument("folder", metavar="PEOPLE_DIR")
    p.add_argument("--out", required=True, metavar="NPZ", help="the gallery file, written atomically")
    p.add_argument("--rebuild", action="store_true", help="embed every photo again, ignoring --out's records")
    p.add_argument("--batch-size", type=positive_int, default=32, help="faces per forward pass (default 32)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    common(p, threshold=True)
    p.set_defaults(func=cmd_enroll)

    p = subparsers.add_parser(
        "identify", help="name the faces of photos from a gallery of known people", formatter_class=fmt,
        description="Name every face of the UNKNOWN photos (files and folders, streamed in batches) by the "
                    "nearest enrolled face of the gallery, or 'unknown' when it is farther than the threshold; "
                    "one line per face. The gallery: a file from `scratchface enroll` (built once), or a "
                    "folder DIR/name.jpg or DIR/name/*.jpg (enrolled on every call).",
        epilog=_EXIT_CODES.format(one="no face found in any photo"))
    p.add_argument("--gallery", required=True, metavar="NPZ|DIR", help="gallery file or folder of known people")
    p.add_argument("unknown", nargs="+", metavar="UNKNOWN", help="photos or folders of photos")
    p.add_argument("--recursive", action="store_true", help="also read sub-folders of UNKNOWN folders")
    p.add_argument("--batch-size", type=positive_int, default=32, help="faces per forward pass (default 32)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--csv", action="store_true", help="print CSV: image, face, name, nearest, distance, box")
    common(p, threshold=True)
    p.set_defaults(func=cmd_identify)

    add_cluster_command(subparsers, common)

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
