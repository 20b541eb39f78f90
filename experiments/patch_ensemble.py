"""Train DeepID's patch ensembles on ORL, cross-validate them over people, and print their tables.

Run from the repository root::

    python -m experiments.patch_ensemble --data ../shared/data --loss arcface
    python -m experiments.patch_ensemble --data ../shared/data --loss triplet --jobs 2
    python -m experiments.patch_ensemble --data ../shared/data --loss arcface --cross-validate
    python -m experiments.patch_ensemble --data ../shared/data --pretrained

One network per (patch, seed) (:data:`scratchface.recognition.patch_ensemble.PATCHES`,
:func:`scratchface.models.orl_nets.build_patch_net`), each trained exactly as
the whole-face network of :func:`experiments.orl_embedding.train_embedding`
on its own crop (:func:`scratchface.recognition.patch_ensemble.crop_patch`);
the patches and settings were chosen by three-fold cross-validation over
people 1-30 (:func:`cross_validate`), then trained on 1-30 and scored once
on 31-40. ``--out shipped`` rewrites ``scratchface/data/orl_patches_arcface.npz``
(:func:`scratchface.recognition.patch_ensemble.save_patch_ensemble`). The
figures and what looked at people 31-40: ``docs/results.md``, section Recognition.

References
----------
Sun, Wang and Tang, "Deep learning face representation from predicting 10,000 classes", CVPR 2014 (DeepID).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from experiments.orl_embedding import format_row, train_embedding
from scratchface._validation import check_choice, check_positive_int
from scratchface.data.orl import TEST_PEOPLE, TRAIN_PEOPLE, load_orl_faces
from scratchface.data.weights import sha256_of_file
from scratchface.models.orl_nets import build_patch_net
from scratchface.recognition.orl_embedding import LOSSES, check_seed
from scratchface.recognition.patch_ensemble import (
    PATCHES,
    SHIPPED,
    crop_patch,
    embed_patch_ensemble,
    load_patch_ensemble,
    patch_ensemble_path,
    save_patch_ensemble,
    yale_in_orl_frame,
)
from scratchface.recognition.verification import evaluate_embedding

__all__ = ["cross_validate", "main", "train_patch_ensemble"]


def _train_member(job):
    """One member: ``(patch, seed, loss, x, labels, kwargs) -> (state, history)`` (a process pool's task).

    BLAS runs on one thread here, in the calling process as in a pool's worker: OpenBLAS's result bits
    depend on its thread count, and the members must be the same bits whatever ``n_jobs`` (and whatever
    thread limits the calling process holds); the convolutions stay parallel on Numba's threads.
    """
    _, seed, loss, x, labels, kwargs = job
    net = build_patch_net(x.shape[2:], rng=seed)
    with threadpool_limits(1, user_api="blas"):
        net, history = train_embedding(x, labels, loss=loss, rng=seed, net=net, **kwargs)
    return {k: np.array(v) for k, v in net.state_dict().items()}, history


def train_patch_ensemble(images, labels, *, loss="arcface", patches=tuple(PATCHES), seeds=(0,), n_jobs=1,
                         progress=True, checkpoint_dir=None, resume=False, **kwargs):
    """Train one network per (patch, seed), each as :func:`experiments.orl_embedding.train_embedding`.

    Parameters
    ----------
    images : array, shape (N, 112, 92)
        Raw ORL images of the training people.
    labels : int array, shape (N,)
    loss : {'triplet', 'arcface'}
        With that loss's ``DEFAULTS`` (``kwargs`` may override them).
    patches : sequence of str or (top, left, height, width, factor)
    seeds : sequence of int
        Member (patch, s) is :func:`build_patch_net` ``(rng=s)`` trained with ``rng=s``.
    n_jobs : int
        Train this many members at once, each in its own process: the result
        does not depend on it (every member is seeded on its own). The
        processes are *spawned*, so a script that asks for ``n_jobs > 1`` must
        call this under ``if __name__ == "__main__":`` (the command line does).
    progress : bool
        A tqdm bar over the members.
    checkpoint_dir : path, optional
        A checkpoint per member after every epoch (``DIR/PATCH_seedS.ckpt.npz``, atomic).
    resume : bool
        Continue every member from its checkpoint (finished members are not retrained): the
        same weights as an uninterrupted run.

    Returns
    -------
    members : list of (patch, seed, Module)
        In the order (patch, seed), the networks in eval mode.
    histories : list of dict
    """
    check_choice(loss, "loss", LOSSES)
    patches = list(patches)
    seeds = [check_seed(s) for s in seeds]
    n_jobs = check_positive_int(n_jobs, "n_jobs")
    if not patches or not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"need at least one patch and distinct seeds, got patches={patches}, seeds={seeds}")
    labels = np.asarray(labels)
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},), got {labels.shape}")
    crops = {i: crop_patch(images, p) for i, p in enumerate(patches)}
    def checkpoint(patch, seed):
        if checkpoint_dir is None:
            return None
        name = patch if isinstance(patch, str) else "_".join(str(v) for v in patch)
        return os.path.join(checkpoint_dir, f"{name}_seed{seed}.ckpt.npz")

    jobs = [(p, s, loss, crops[i], labels, dict(kwargs, progress=False, checkpoint=checkpoint(p, s), resume=resume))
            for i, p in enumerate(patches) for s in seeds]
    bar = None
    if progress:
        from tqdm.auto import tqdm  # lazy: tqdm.auto probes for Jupyter widgets, only when a bar is shown
        bar = tqdm(total=len(jobs), desc=f"patch ensemble ({loss})", unit="network")
    results = []
    try:
        if n_jobs == 1:
            for job in jobs:
                results.append(_train_member(job))
                if bar is not None:
                    bar.update(1)
        else:
            with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                for result in pool.map(_train_member, jobs):
                    results.append(result)
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    members, histories = [], []
    for (patch, seed, _, x, _, _), (state, history) in zip(jobs, results):
        net = build_patch_net(x.shape[2:], rng=seed)
        net.load_state_dict(state)
        members.append((patch, seed, net.eval()))
        histories.append(dict(history, patch=patch, seed=seed))
    return members, histories


def cross_validate(images, labels, *, loss="arcface", patches=tuple(PATCHES), seeds=(0,), n_folds=3, n_jobs=1,
                   progress=True, **kwargs):
    """Person-disjoint cross-validation of a patch ensemble (model selection without the test people).

    The people in ``labels`` are split, in sorted order, into ``n_folds``
    contiguous groups; for each group the ensemble is trained on the other
    people and scored on that group (:func:`~scratchface.recognition.verification.evaluate_embedding`).

    Returns
    -------
    list of dict
        Per fold: ``'people'`` (the held-out ones), ``'members'`` (each member's
        own numbers) and ``'ensemble'`` (the ensemble's).
    """
    labels = np.asarray(labels)
    people = np.unique(labels)
    n_folds = check_positive_int(n_folds, "n_folds")
    if not 2 <= n_folds <= people.size // 2:
        raise ValueError(f"n_folds must be between 2 and half the number of people ({people.size}), got {n_folds}")
    out = []
    for held_out in np.array_split(people, n_folds):
        test = np.isin(labels, held_out)
        members, _ = train_patch_ensemble(images[~test], labels[~test], loss=loss, patches=patches, seeds=seeds,
                                          n_jobs=n_jobs, progress=progress, **kwargs)
        scores = [evaluate_embedding(embed_patch_ensemble([m], images[test]), labels[test]) for m in members]
        out.append({"people": held_out.tolist(), "members": scores,
                    "ensemble": evaluate_embedding(embed_patch_ensemble(members, images[test]), labels[test])})
    return out


def _parse_list(text, kind):
    items = [t.strip() for t in text.split(",") if t.strip()]
    if kind == "patches":
        for item in items:
            if item not in PATCHES:
                raise argparse.ArgumentTypeError(f"unknown patch {item!r}; known: {', '.join(PATCHES)}")
        return items
    try:
        return [int(t) for t in items]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def main(argv=None):
    """Train on ORL 1-30 and evaluate on 31-40; or cross-validate on 1-30; or evaluate the shipped weights."""
    parser = argparse.ArgumentParser(
        prog="python -m experiments.patch_ensemble",
        description="DeepID-style ensemble: one small embedding network per face patch, trained from scratch "
                    "on ORL people 1-30 and evaluated on people 31-40.")
    parser.add_argument("--data", default=None, help="folder holding orl_faces/; default $SCRATCHFACE_DATA")
    parser.add_argument("--loss", choices=LOSSES, default="arcface")
    parser.add_argument("--patches", type=lambda t: _parse_list(t, "patches"), default=None,
                        help=f"comma-separated, default all: {','.join(PATCHES)}")
    parser.add_argument("--seeds", type=lambda t: _parse_list(t, "seeds"), default=None,
                        help="comma-separated seeds, default the shipped ensemble's (0,1)")
    parser.add_argument("--jobs", type=int, default=1, help="networks trained at once (processes)")
    parser.add_argument("--cross-validate", action="store_true",
                        help="3-fold cross-validation over people 1-30 instead (31-40 untouched)")
    parser.add_argument("--add-yale", action="store_true",
                        help="also train on the 15 Yale people (yale_in_orl_frame): 45 identities, not the "
                             "issue's protocol; a variant to see what more identities buy")
    parser.add_argument("--pretrained", action="store_true",
                        help="evaluate the shipped (ArcFace) ensemble, no training")
    parser.add_argument("--out", default=None,
                        help="weights file to write ('shipped': the package's file, ArcFace only)")
    parser.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                        help="a checkpoint per network after every epoch (DIR/PATCH_seedS.ckpt.npz)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from --checkpoint-dir's checkpoints (same final weights)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.resume and args.checkpoint_dir is None:
        parser.error("--resume needs --checkpoint-dir")
    if args.checkpoint_dir is not None:
        os.makedirs(args.checkpoint_dir, exist_ok=True)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    if args.pretrained and (args.cross_validate or args.out or args.loss != SHIPPED["loss"]):
        parser.error("--pretrained evaluates the shipped ArcFace weights: no --cross-validate, --out or "
                     "--loss triplet with it")
    if args.out == "shipped" and (args.loss != SHIPPED["loss"] or args.add_yale):
        parser.error("--out shipped: only the ArcFace ensemble trained on ORL alone ships; give this one a "
                     "file name")
    if args.add_yale and (args.pretrained or args.cross_validate):
        parser.error("--add-yale adds training people to the run on ORL 1-30: not with --pretrained or "
                     "--cross-validate")
    patches = args.patches or list(SHIPPED["patches"])
    seeds = args.seeds or list(SHIPPED["seeds"])

    try:
        images, labels = load_orl_faces(args.data)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    progress = not args.no_progress
    if args.cross_validate:
        train = np.isin(labels, TRAIN_PEOPLE)
        folds = cross_validate(images[train], labels[train], loss=args.loss, patches=patches, seeds=seeds,
                               n_jobs=args.jobs, progress=progress)
        for fold in folds:
            people = fold["people"]
            print(f"fold people {people[0]}-{people[-1]}")
            for (patch, seed), r in zip([(p, s) for p in patches for s in seeds], fold["members"]):
                print("  " + format_row(f"{patch} #{seed}", r))
            print("  " + format_row("ensemble", fold["ensemble"]))
        mean = np.mean([f["ensemble"]["accuracy"] for f in folds])
        print(f"ensemble, mean over the folds: 10-fold accuracy {100 * mean:.2f}%")
        return 0
    train, test = np.isin(labels, TRAIN_PEOPLE), np.isin(labels, TEST_PEOPLE)
    if args.pretrained:
        members = load_patch_ensemble(patches=patches, seeds=seeds)
    else:
        x, y = images[train], labels[train]
        if args.add_yale:
            try:
                yale, yale_labels = yale_in_orl_frame(args.data)
            except FileNotFoundError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            x = np.concatenate([x.astype(np.float32) / 255.0, yale])
            y = np.concatenate([y, 1000 + yale_labels])            # Yale people as new identities
            print(f"training on ORL people 1-30 and {np.unique(yale_labels).size} Yale people ({len(yale)} photos)")
        members, histories = train_patch_ensemble(x, y, loss=args.loss, patches=patches,
                                                  seeds=seeds, n_jobs=args.jobs, progress=progress,
                                                  checkpoint_dir=args.checkpoint_dir, resume=args.resume)
        cpu = sum(h["cpu_seconds"] for h in histories)
        print(f"trained {len(members)} networks ({cpu:.0f} s of CPU in all)")
        if args.out:
            out = save_patch_ensemble(members, patch_ensemble_path() if args.out == "shipped" else args.out)
            print(f"weights written to {out} (SHA-256 {sha256_of_file(out)})")
    for patch, seed, net in members:
        print(format_row(f"{patch} #{seed}", evaluate_embedding(
            embed_patch_ensemble([(patch, seed, net)], images[test]), labels[test])))
    print(format_row("ensemble", evaluate_embedding(embed_patch_ensemble(members, images[test]), labels[test])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
