"""Clustering real face collections by identity: which method, which threshold, and what ``verify`` should default to.

Builds collections from the face sets (``../shared/data`` or ``$SCRATCHFACE_DATA``), embeds every photo with
the library's pipeline (MTCNN -> dlib-aligned chip -> dlib ResNet; the largest face of each photo), and prints:

1. every method of :mod:`scratchface.recognition.clustering` at its default threshold and at dlib's 0.6,
   on each collection: pairwise precision / recall / F-measure, BCubed precision / recall / F, clusters;
2. the pairwise F-measure of each method over a grid of thresholds on the development collection
   (ORL people 1-20 + Yale subjects 1-7) and on all collections together;
3. dlib's own ``chinese_whispers_clustering`` at 0.5 and 0.6 beside ours, when dlib is installed;
4. verification on ORL and Yale (balanced pairs, 10 folds): the false accept rate at 0.6 against the
   threshold the 10-fold protocol picks.

Run from the repository root::

    python -m experiments.clustering [--data DIR] [--cache FILE]

``--cache`` keeps the embeddings in a ``.npz`` (about a minute of CPU to make).
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

from scratchface.data import find_data_dir
from scratchface.data.dlib_faces import load_dlib_faces
from scratchface.data.orl import load_orl_faces
from scratchface.data.pairs import make_pairs
from scratchface.data.weights import write_reproducible_npz
from scratchface.image import read_image
from scratchface.recognition.clustering import DEFAULT_THRESHOLD, METHODS, cluster_faces
from scratchface.recognition.clustering_scores import bcubed_precision_recall, pairwise_precision_recall
from scratchface.recognition.pipeline import detect_and_embed
from scratchface.recognition.verification import kfold_accuracy, val_far

YALE_FIVE = ("normal", "glasses", "happy", "sleepy", "surprised")


def embed_largest_faces(images):
    """``(embeddings, detection scores, kept)``: the largest face of each image; ``kept`` marks images with one."""
    vectors, scores, kept = [], [], []
    for image in images:
        faces = detect_and_embed(image, max_faces=1)
        kept.append(len(faces.embeddings) > 0)
        if kept[-1]:
            vectors.append(faces.embeddings[0])
            scores.append(faces.probs[0])
    return np.asarray(vectors, np.float64), np.asarray(scores), np.asarray(kept)


def embed_all_faces(images):
    """Every face of every photo (the dlib photos hold several people each)."""
    vectors, scores = [], []
    for image in images:
        faces = detect_and_embed(image)
        vectors.extend(faces.embeddings)
        scores.extend(faces.probs)
    return np.asarray(vectors, np.float64), np.asarray(scores)


def face_sets(data_dir, cache=None):
    """Embeddings and labels of Yale (all photos), ORL (all photos) and the faces of the dlib photos."""
    if cache is not None and pathlib.Path(cache).is_file():
        with np.load(cache, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    from scratchface.data.yale import load_yale_faces  # noqa: PLC0415  (only when embedding anew)

    yale = load_yale_faces(pathlib.Path(data_dir) / "yalefaces")
    y_emb, _, y_kept = embed_largest_faces(yale.images)
    orl_images, orl_labels = load_orl_faces(pathlib.Path(data_dir) / "orl_faces")
    o_emb, _, o_kept = embed_largest_faces(orl_images)
    d_emb, d_scores = embed_all_faces([read_image(x.path) for x in load_dlib_faces(pathlib.Path(data_dir) / "dlib_faces")])
    sets = {"yale_emb": y_emb, "yale_label": np.asarray(yale.labels)[y_kept],
            "yale_condition": np.asarray(yale.conditions)[y_kept],
            "orl_emb": o_emb, "orl_label": orl_labels[o_kept], "orl_photo": (np.arange(len(orl_labels)) % 10 + 1)[o_kept],
            "dlib_emb": d_emb, "dlib_score": d_scores}
    if cache is not None:
        write_reproducible_npz(sets, cache, deflate=True)
    return sets


def collections(sets, rng=0):
    """``{name: (embeddings, identities)}``: the collections of the comparison (identities < 0: one-photo people)."""
    rng = np.random.default_rng(rng)
    ye, yl, yc = sets["yale_emb"], sets["yale_label"], sets["yale_condition"]
    oe, ol, op = sets["orl_emb"], sets["orl_label"], sets["orl_photo"]
    de = sets["dlib_emb"][sets["dlib_score"] >= 0.95]
    dl = -1 - np.arange(len(de))  # everyone in the dlib photos appears once
    five = np.isin(yc, YALE_FIVE)
    odd = np.isin(op, (1, 3, 5, 7, 9))
    # ORL with 1 to 10 photos per person (the one-photo people are singletons), Yale's five, the dlib faces
    pick = np.concatenate([rng.choice(np.flatnonzero(ol == p), rng.integers(1, 11), replace=False)
                           for p in np.unique(ol)])
    return {
        "Yale, 5 conditions": (ye[five], yl[five]),
        "Yale, all": (ye, yl),
        "ORL, photos 1,3,5,7,9": (oe[odd], ol[odd]),
        "ORL, all": (oe, ol),
        "dlib photos (all singletons)": (de, dl),
        "mix: ORL 1-10 per person + Yale 5 + dlib": (np.concatenate([oe[pick], ye[five], de]),
                                                   np.concatenate([ol[pick], yl[five] + 100, dl])),
        "development: ORL 1-20 + Yale 1-7": (np.concatenate([oe[ol <= 20], ye[yl <= 7]]),
                                             np.concatenate([ol[ol <= 20], yl[yl <= 7] + 100])),
    }


def score_row(name, labels, predicted):
    pw, b3 = pairwise_precision_recall(labels, predicted), bcubed_precision_recall(labels, predicted)
    return (f"| {name} | {len(labels)} / {len(np.unique(labels))} | {predicted.max() + 1} | {pw.precision:.3f} | "
            f"{pw.recall:.3f} | {pw.f1:.3f} | {b3.precision:.3f} | {b3.recall:.3f} | {b3.f1:.3f} |")


HEADER = ("| collection | faces / people | clusters | pairwise P | pairwise R | pairwise F | BCubed P | BCubed R "
          "| BCubed F |\n|---|---|---|---|---|---|---|---|---|")


def compare(colls, log=print):
    for method in METHODS:
        for threshold in (DEFAULT_THRESHOLD, 0.6):
            log(f"\n{method}, threshold {threshold:g}\n\n{HEADER}")
            for name, (e, labels) in colls.items():
                log(score_row(name, labels, cluster_faces(e, method=method, threshold=threshold)))
    grid = np.round(np.arange(0.40, 0.605, 0.01), 2)
    log("\npairwise F-measure by threshold (rows: method, collection)\n")
    log("| method | collection | " + " | ".join(f"{t:.2f}" for t in grid) + " |")
    log("|---|---|" + "---|" * len(grid))
    for method in METHODS:
        for name in ("development: ORL 1-20 + Yale 1-7", "Yale, all", "mix: ORL 1-10 per person + Yale 5 + dlib"):
            e, labels = colls[name]
            f = [pairwise_precision_recall(labels, cluster_faces(e, method=method, threshold=t)).f1 for t in grid]
            log(f"| {method} | {name} | " + " | ".join(f"{x:.2f}" for x in f) + " |")


def compare_dlib(colls, log=print):
    try:
        import dlib  # noqa: PLC0415  (a benchmark-only peer)
    except ImportError:
        log("\ndlib is not installed: its chinese_whispers_clustering is left out (pip install dlib-bin)")
        return
    for threshold in (0.5, 0.6):
        log(f"\ndlib.chinese_whispers_clustering, threshold {threshold:g}\n\n{HEADER}")
        for name, (e, labels) in colls.items():
            predicted = np.asarray(dlib.chinese_whispers_clustering([dlib.vector(v.tolist()) for v in e], threshold))
            log(score_row(name, labels, predicted.astype(np.int64)))


def verification_thresholds(sets, log=print):
    """FAR at 0.6 against the 10-fold protocol's threshold, on ORL and on Yale (balanced pairs)."""
    log("\n| set | pairs | 10-fold accuracy | thresholds picked (min-max) | accuracy at 0.6 | FAR at 0.6 "
        "| FAR at picked (median) |\n|---|---|---|---|---|---|---|")
    for name, e, labels in (("ORL", sets["orl_emb"], sets["orl_label"]), ("Yale", sets["yale_emb"], sets["yale_label"])):
        pairs = make_pairs(labels, rng=0)
        d = np.linalg.norm(e[pairs.first] - e[pairs.second], axis=1)
        result = kfold_accuracy(d, pairs.same, folds=pairs.fold)
        picked = float(np.median(result.thresholds))
        _, far_06 = val_far(d, pairs.same, 0.6)
        _, far_picked = val_far(d, pairs.same, picked)
        acc_06 = float(np.mean((d <= 0.6) == pairs.same))
        log(f"| {name} | {len(d)} | {result.mean:.4f} | {result.thresholds.min():.3f}-{result.thresholds.max():.3f} | "
            f"{acc_06:.4f} | {far_06:.4f} | {far_picked:.4f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.clustering", description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder with orl_faces/, yalefaces/, dlib_faces/ (default: ../shared/data)")
    parser.add_argument("--cache", help="a .npz to keep the embeddings in between runs")
    args = parser.parse_args(argv)
    data_dir = args.data or find_data_dir()
    if data_dir is None or not pathlib.Path(data_dir).is_dir():
        print("face sets not found: pass --data DIR or set SCRATCHFACE_DATA", file=sys.stderr)
        return 2
    sets = face_sets(data_dir, cache=args.cache)
    colls = collections(sets)
    compare(colls)
    compare_dlib(colls)
    verification_thresholds(sets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
