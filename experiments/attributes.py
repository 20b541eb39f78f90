"""Yale's attributes from dlib ResNet features: plain, class-re-weighted and LMLE training; print the tables.

Run from the repository root::

    python -m experiments.attributes --data ../shared/data
    python -m experiments.attributes --data ../shared/data --cache /tmp/yale_features.npz

For every attribute of :data:`scratchface.recognition.attributes.ATTRIBUTES`,
every feature kind (``embedding``, ``block``) and every method (``plain``,
``reweighted``, ``lmle``): the leave-people-out balanced accuracy of
:func:`scratchface.recognition.attributes.evaluate_attribute`. The tables,
what they show and which choice looked at these folds: ``docs/results.md``,
section Recognition.

References
----------
Z. Liu, P. Luo, X. Wang, X. Tang, "Deep Learning Face Attributes in the Wild", ICCV 2015.
C. Huang, Y. Li, C. C. Loy, X. Tang, "Learning Deep Representation for Imbalanced
Classification", CVPR 2016.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from scratchface._validation import check_choice, check_positive_int
from scratchface.recognition.attributes import (
    ATTRIBUTES,
    FEATURE_KINDS,
    METHODS,
    attribute_labels,
    evaluate_attribute,
    yale_features,
)

__all__ = ["attribute_table", "format_table", "main"]


def attribute_table(features, conditions, subjects, *, attributes=None, methods=METHODS, n_folds=5, C=1.0,
                    rng=0, lmle_options=None, progress=False):
    """Balanced accuracy of every attribute with every method: a list of row dicts.

    Attributes whose images hold only one class (possible on a subset of the
    conditions) are left out. Each row: ``attribute``, ``n``, ``n_positive`` and, under each
    method's name, the result of :func:`evaluate_attribute`.
    """
    attributes = tuple(ATTRIBUTES) if attributes is None else tuple(attributes)
    for a in attributes:
        check_choice(a, "attributes", tuple(ATTRIBUTES))
    for m in methods:
        check_choice(m, "methods", METHODS)
    features = np.asarray(features)
    subjects = np.asarray(subjects)
    rows = []
    iterator = attributes
    if progress:
        from tqdm.auto import tqdm  # lazy: tqdm.auto probes for Jupyter widgets, only when a bar is shown
        iterator = tqdm(attributes, desc="attributes")
    for attribute in iterator:
        index, y = attribute_labels(conditions, attribute)
        if np.unique(y).size < 2:
            continue   # e.g. a subset of the conditions without any positive image
        row = {"attribute": attribute, "n": int(y.size), "n_positive": int(y.sum())}
        for method in methods:
            row[method] = evaluate_attribute(features[index], y, subjects[index], method=method, n_folds=n_folds,
                                             C=C, rng=rng, lmle_options=lmle_options)
        rows.append(row)
    return rows


def format_table(rows, methods=METHODS, title=""):
    """The rows of :func:`attribute_table` as text: balanced accuracy (TPR / TNR) per method."""
    names = {"plain": "(a) plain SVM", "reweighted": "(b) re-weighted SVM", "lmle": "(c) LMLE + cluster kNN"}
    head = f"{'attribute':<12} {'pos / n':>8}  " + "  ".join(f"{names[m]:>24}" for m in methods)
    lines = ([title] if title else []) + [head]
    for r in rows:
        cells = "  ".join(f"{100 * r[m]['balanced_accuracy']:6.1f}% ({100 * r[m]['tpr']:3.0f}/{100 * r[m]['tnr']:3.0f})"
                          .rjust(24) for m in methods)
        lines.append(f"{r['attribute']:<12} {r['n_positive']:>3} / {r['n']:<3}  {cells}")
    means = "  ".join(f"{100 * np.mean([r[m]['balanced_accuracy'] for r in rows]):6.1f}%".rjust(24) for m in methods)
    lines.append(f"{'mean':<12} {'':>8}  {means}")
    return "\n".join(lines)


def main(argv=None):
    """Command line: the attribute table on Yale (balanced accuracy, leave-people-out)."""
    parser = argparse.ArgumentParser(
        prog="python -m experiments.attributes",
        description="Predict Yale's attributes (glasses, expressions, lighting) from dlib ResNet features with "
                    "one linear SVM each, leave-people-out; balanced accuracy with plain training, class "
                    "re-weighting and LMLE.")
    parser.add_argument("--data", default=None,
                        help="folder holding yalefaces/ (or the yalefaces folder); default $SCRATCHFACE_DATA")
    parser.add_argument("--features", default="embedding,block",
                        help=f"comma-separated feature kinds from {FEATURE_KINDS}")
    parser.add_argument("--folds", type=int, default=5, help="folds of subjects (default 5: 3 people each)")
    parser.add_argument("--C", type=float, default=1.0, help="the SVMs' C (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lmle-steps", type=int, default=200, help="Adam steps of each LMLE fit (default 200)")
    parser.add_argument("--cache", default=None, help="a .npz file to keep the features in between runs")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.features.split(",") if k.strip()]
    if not kinds or any(k not in FEATURE_KINDS for k in kinds):
        parser.error(f"--features must name kinds from {FEATURE_KINDS}, got {args.features!r}")
    try:
        feats = yale_features(args.data, cache=args.cache, progress=not args.no_progress)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Yale: {len(feats.subjects)} images of {np.unique(feats.subjects).size} people, one face found in "
          f"each; {args.folds} leave-people-out folds, C={args.C:g}, seed {args.seed}")
    print("balanced accuracy (TPR / TNR, %) of the pooled out-of-fold predictions")
    for kind in kinds:
        rows = attribute_table(getattr(feats, kind), feats.conditions, feats.subjects, n_folds=args.folds,
                               C=args.C, rng=args.seed, progress=not args.no_progress,
                               lmle_options={"steps": check_positive_int(args.lmle_steps, "--lmle-steps")})
        dim = getattr(feats, kind).shape[1]
        print(format_table(rows, title=f"\nfeatures: {kind} ({dim}-d)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
