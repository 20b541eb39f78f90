"""``scratchface cluster DIR``: group the faces of a folder of photos by person (see
:mod:`scratchface.recognition.clustering`), print the clusters, and optionally write a contact sheet and
one folder of photos per person."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import numpy as np

from .cli_common import FAILURE, OK, BadInput, positive_float, positive_int, probability, read_photo, rounded, \
    run_command
from .recognition import clustering, pipeline
from .recognition.clustering import cluster_faces
from .viz.contact_sheet import face_thumbnail, save_contact_sheet

__all__ = ["DEFAULT_MIN_SCORE", "cmd_cluster", "add_cluster_command"]

EXIT_CODES = "exit codes: 0 success, 1 {one}, 2 bad usage or unreadable input"


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
        raise BadInput(f"the folder {args.folder} holds no images" +
                        ("" if args.recursive else " (sub-folders are read with --recursive)"))
    return faces, no_face, skipped


def _check_out_dir(args):
    """Refuse an ``--out-dir`` that is the photos' own folder (or inside it with --recursive) or is not empty."""
    out, folder = os.path.realpath(args.out_dir), os.path.realpath(args.folder)
    if out == folder or (args.recursive and out.startswith(folder + os.sep)):
        raise BadInput(f"--out-dir {args.out_dir} must lie outside the photos' folder")
    if os.path.exists(out) and not os.path.isdir(out):
        raise BadInput(f"--out-dir {args.out_dir} exists and is not a folder")
    if os.path.isdir(out) and os.listdir(out) and not args.force:
        raise BadInput(f"--out-dir {args.out_dir} is not empty (add --force to write into it)")


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
        raise BadInput(f"cannot write {target}: {exc}") from None


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
            photo = (faces[i]["path"], read_photo(faces[i]["path"]))
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
        raise BadInput(f"folder not found: {args.folder}" if not os.path.exists(args.folder)
                        else f"{args.folder} is a file, not a folder of photos")
    if (args.link or args.force) and not args.out_dir:
        raise BadInput("--link and --force go with --out-dir")
    if args.out_dir:
        _check_out_dir(args)
    if args.contact_sheet and not os.path.isdir(os.path.dirname(os.path.abspath(args.contact_sheet))):
        raise BadInput(f"the folder of --contact-sheet {args.contact_sheet} does not exist")
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
                "box": rounded(faces[i]["box"])}

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
    return run_command("cluster", _cluster, args)


def add_cluster_command(subparsers, common):
    """Register ``cluster`` on argparse sub-parsers; ``common(p)`` adds the options every face command shares."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser(
        "cluster", help="group the faces of a folder of photos by person", formatter_class=fmt,
        description="Embed every face of every photo in DIR (streaming, in batches) and group them by person: "
                    "average linkage by default (two groups merge while their mean distance is at most the "
                    "threshold, so a few close pairs cannot chain people together). Faces with a low detection "
                    "score are left out and listed as unclustered.",
        epilog=EXIT_CODES.format(one="no face in any photo, or every face below --min-score"))
    p.add_argument("folder", metavar="DIR")
    p.add_argument("--method", choices=clustering.METHODS, default="average",
                   help="average linkage (default), single linkage (chains: for comparison) or chinese_whispers "
                        "(dlib's)")
    p.add_argument("--threshold", type=positive_float, default=clustering.DEFAULT_THRESHOLD,
                   help=f"Euclidean distance within which faces may share a cluster (default "
                        f"{clustering.DEFAULT_THRESHOLD}; tighter than verify's {pipeline.DEFAULT_THRESHOLD}, "
                        "see docs/results.md)")
    p.add_argument("--min-score", type=probability, default=DEFAULT_MIN_SCORE, metavar="P",
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
    p.add_argument("--batch-size", type=positive_int, default=32, help="faces per forward pass (default 32)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    common(p)
    p.set_defaults(func=cmd_cluster)
