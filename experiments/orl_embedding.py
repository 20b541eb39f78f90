"""Train the ORL embeddings (triplet or ArcFace, one network or an ensemble of seeds) and print their table.

Run from the repository root::

    python -m experiments.orl_embedding --data ../shared/data --loss triplet
    python -m experiments.orl_embedding --data ../shared/data --loss arcface
    python -m experiments.orl_embedding --data ../shared/data --loss arcface --validate
    python -m experiments.orl_embedding --data ../shared/data --loss triplet --ensemble 5
    python -m experiments.orl_embedding --data ../shared/data --loss triplet --ensemble 5 --pretrained

Trains :func:`scratchface.models.orl_nets.build_embedding_net` on ORL people
1-30 (``--validate``: 1-20, scored on 21-30, for tuning) and evaluates on
people 31-40, whom it never saw
(:func:`scratchface.recognition.verification.evaluate_embedding`): 10-fold
verification accuracy (LFW protocol) on all 450 same-person pairs and 450
random different-person pairs, AUC, EER, VAL at FAR = 1e-2, and
identification rank-1 with one gallery image per person. Eigenfaces on the
same split are the baseline row. ``--out shipped`` rewrites the package's
weight files through :func:`scratchface.recognition.orl_embedding.save_weights`
(seeded: the same run gives the same SHA-256).

Training (:func:`train_embedding`): Adam with a cosine decay to 1 % of the
peak rate; random shifts of up to 3 pixels and random horizontal flips
(:func:`scratchface.recognition.augment.augment`); batches of P people x K images
(:func:`scratchface.data.pairs.pk_batches`) with semi-hard (FaceNet) or
batch-hard (Hermans et al.) triplets mined online, or shuffled batches of
50 for ArcFace. The figures, every variant tried and which choices looked
at people 31-40: ``docs/results.md``, section Recognition. On a machine
shared with other jobs, set ``OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1``.

References
----------
Schroff et al., "FaceNet", CVPR 2015 (triplet loss, semi-hard mining).
Hermans, Beyer and Leibe, "In defense of the triplet loss for person re-identification", 2017 (batch-hard).
Deng et al., "ArcFace", CVPR 2019.
Zhong et al., "Random erasing data augmentation", AAAI 2020.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from scratchface import nn
from scratchface._validation import check_choice, check_positive_float, check_positive_int
from scratchface.data.orl import TEST_PEOPLE, TRAIN_PEOPLE, load_orl_faces
from scratchface.data.pairs import pk_batches
from scratchface.data.weights import sha256_of_file
from scratchface.losses.margin import arcface_loss_backward, arcface_loss_forward
from scratchface.losses.mining import batch_hard_triplets, semi_hard_triplets
from scratchface.losses.triplet import mined_triplet_loss_backward, mined_triplet_loss_forward
from scratchface.models.orl_nets import build_embedding_net
from scratchface.recognition.augment import augment
from scratchface.distances import normalize_rows
from scratchface.recognition.eigenfaces import Eigenfaces
from scratchface.recognition.orl_embedding import (
    LOSSES,
    PRETRAINED,
    embed_with_net,
    load_ensemble,
    load_pretrained,
    pretrained_path,
    save_weights,
)
from scratchface.recognition.orl_preprocessing import orl_landmarks, preprocess_orl
from scratchface.recognition.verification import evaluate_embedding

__all__ = ["AUGMENTATION", "DEFAULTS", "eigenfaces_baseline", "format_row", "main", "train_embedding",
           "train_ensemble"]

AUGMENTATION = {"max_shift": 3, "max_rotation": 0.0, "max_scale": 0.0, "erase": 0.0}  #: :func:`augment`'s settings
DEFAULTS = {  # per loss: the settings the shipped weights were trained with
    "triplet": dict(epochs=60, lr=2e-3, weight_decay=5e-3, alpha=0.2, people_per_batch=10, images_per_person=5,
                    mining="semi_hard", **AUGMENTATION),
    "arcface": dict(epochs=60, lr=2e-3, weight_decay=5e-3, scale=16.0, margin=0.3, batch_size=50,
                    **AUGMENTATION),
}


def train_embedding(x, labels, *, loss="triplet", epochs=None, lr=None, rng=0, net=None, progress=True,
                    max_steps=None, checkpoint=None, resume=False, **options):
    """Train an embedding network on preprocessed faces.

    Parameters
    ----------
    x : float32 array, shape (N, 1, H, W)
        From :func:`scratchface.data.orl_faces.preprocess_orl`.
    labels : int array, shape (N,)
    loss : {'triplet', 'arcface'}
    epochs : int, optional
        Default from ``DEFAULTS[loss]``.
    lr : float, optional
        Adam's peak learning rate (cosine decay to 1 % over the run).
    rng : int or numpy.random.Generator
        Seeds the network's initialisation, the batches and the augmentation.
    net : Module, optional
        Default :func:`scratchface.models.orl_nets.build_embedding_net` with the same seed.
    progress : bool
        Show a tqdm bar over the steps.
    max_steps : int, optional
        Stop early after this many optimiser steps (smoke tests).
    checkpoint : path, optional
        Write a checkpoint there after every epoch, atomically (:mod:`scratchface.nn.checkpoint`:
        weights, ArcFace's centres, Adam, the schedule, the generator, the history).
    resume : bool
        Continue from ``checkpoint`` when it exists: same final weights as an uninterrupted run.
    **options
        ``weight_decay`` (Adam's L2 penalty); triplet: ``alpha``, ``people_per_batch``,
        ``images_per_person``, ``mining`` (``'semi_hard'``, FaceNet's, or ``'batch_hard'``,
        Hermans et al. 2017); ArcFace: ``scale``, ``margin``, ``batch_size``; both: the
        :func:`scratchface.recognition.augment.augment` settings ``max_shift``, ``max_rotation``, ``max_scale``, ``erase``.

    Returns
    -------
    net : Module
        In eval mode.
    history : dict
        ``'loss'``: the loss of every step; ``'triplets'`` (triplet loss): triplets mined per step;
        ``'seconds'``: the training time (wall clock); ``'cpu_seconds'``: the CPU time of this process.
    """
    check_choice(loss, "loss", LOSSES)
    settings = dict(DEFAULTS[loss])
    unknown = set(options) - set(settings)
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)} for loss={loss!r}; known: {sorted(settings)}")
    settings.update(options)
    epochs = check_positive_int(settings["epochs"] if epochs is None else epochs, "epochs")
    lr = check_positive_float(settings["lr"] if lr is None else lr, "lr")
    rng = nn.init.as_generator(rng)
    labels = np.asarray(labels, dtype=np.int64)
    if loss == "triplet":
        check_choice(settings["mining"], "mining", ("semi_hard", "batch_hard"))
    if net is None:
        net = build_embedding_net(rng=rng)
    params = net.parameters()
    if loss == "arcface":
        classes, targets = np.unique(labels, return_inverse=True)
        dim = net.output_shape(tuple(x.shape[1:]))[0]
        head = nn.Parameter(nn.xavier_normal((dim, classes.size), rng))
        params = params + [head]
        batch_size = check_positive_int(settings["batch_size"], "batch_size")
        steps_per_epoch = -(-len(x) // batch_size)
    else:
        p, k = settings["people_per_batch"], settings["images_per_person"]
        steps_per_epoch = len(pk_batches(labels, p, k, np.random.default_rng(0)))
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    optimizer = nn.Adam(params, lr=lr, weight_decay=settings["weight_decay"])
    schedule = nn.CosineSchedule(optimizer, total_steps=total, min_lr=lr * 0.01)
    history = {"loss": [], "triplets": []}
    extra = {"arcface_head": head.data} if loss == "arcface" else None
    step = 0
    if resume and checkpoint is not None and os.path.exists(checkpoint):
        done, history = nn.load_checkpoint(checkpoint, net, optimizer, rng=rng, schedule=schedule, extra=extra)
        step = done * steps_per_epoch
    bar = None
    if progress:
        from tqdm.auto import tqdm  # lazy: tqdm.auto probes for Jupyter widgets, only when a bar is shown
        bar = tqdm(total=total, initial=step, desc=f"train {loss}", unit="step")
    start, cpu_start = time.perf_counter(), time.process_time()
    net.train()
    try:
        while step < total:
            if loss == "arcface":
                batches = [b for b in nn.iterate_minibatches(len(x), batch_size, rng)]
            else:
                batches = pk_batches(labels, p, k, rng)
            for idx in batches:
                if step >= total:
                    break
                xb = augment(x[idx], rng, **{key: settings[key] for key in AUGMENTATION})
                net.zero_grad()
                if loss == "arcface":
                    head.grad[...] = 0
                    features = net.forward(xb)
                    value, cache = arcface_loss_forward(features, head.data, labels=targets[idx],
                                                        scale=settings["scale"], margin=settings["margin"])
                    dfeatures, dhead = arcface_loss_backward(1.0, cache)
                    head.grad += dhead
                else:
                    features = net.forward(xb)
                    normalised = normalize_rows(features.astype(np.float64))
                    if settings["mining"] == "batch_hard":
                        triplets = batch_hard_triplets(normalised, labels[idx])
                    else:
                        triplets = semi_hard_triplets(normalised, labels[idx], alpha=settings["alpha"], rng=rng)
                    history["triplets"].append(len(triplets[0]))
                    value, cache = mined_triplet_loss_forward(features, triplets=triplets,
                                                              alpha=settings["alpha"])
                    dfeatures = mined_triplet_loss_backward(1.0, cache)
                net.backward(dfeatures.astype(features.dtype))
                optimizer.step()
                schedule.step()
                history["loss"].append(float(value))
                step += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{np.mean(history['loss'][-steps_per_epoch:]):.4f}")
            if checkpoint is not None and step % steps_per_epoch == 0:
                nn.save_checkpoint(checkpoint, net, optimizer, epoch=step // steps_per_epoch, rng=rng,
                                   history=history, schedule=schedule, extra=extra)
    finally:
        if bar is not None:
            bar.close()
    net.eval()
    history["seconds"] = time.perf_counter() - start
    history["cpu_seconds"] = time.process_time() - cpu_start
    return net, history


def train_ensemble(x, labels, *, loss="triplet", seeds=(0, 1, 2), architecture=None, progress=True, **kwargs):
    """Train one network per seed (and per loss), the same way as :func:`train_embedding`.

    Parameters
    ----------
    x, labels
        As :func:`train_embedding`.
    loss : {'triplet', 'arcface', 'both'}
        ``'both'``: the triplet members, then the ArcFace members (each with
        its own ``DEFAULTS``; then ``kwargs`` may hold only ``epochs``, ``lr``, ``max_steps``).
    seeds : sequence of int
        Member ``k`` is :func:`scratchface.models.orl_nets.build_embedding_net` ``(rng=seeds[k])`` trained with
        ``rng=seeds[k]``: seed 0 is the single network of ``--seed 0``.
    architecture : dict, optional
        :func:`scratchface.models.orl_nets.build_embedding_net` arguments (default ``PRETRAINED[loss]['net']``).
    **kwargs
        Passed to :func:`train_embedding` (``epochs``, ``lr``, ``max_steps``, loss options).

    Returns
    -------
    nets : list of Module
        In eval mode, in the order (loss, seed).
    histories : list of dict
        :func:`train_embedding`'s, with ``'loss_name'`` and ``'seed'`` added.
    """
    check_choice(loss, "loss", LOSSES + ("both",))
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds must be distinct non-negative integers, at least one, got {seeds}")
    nets, histories = [], []
    for name in (LOSSES if loss == "both" else (loss,)):
        for seed in seeds:
            net = build_embedding_net(rng=seed, **(PRETRAINED[name]["net"] if architecture is None
                                                   else architecture))
            net, history = train_embedding(x, labels, loss=name, rng=seed, net=net, progress=progress, **kwargs)
            nets.append(net)
            histories.append(dict(history, loss_name=name, seed=seed))
    return nets, histories


def eigenfaces_baseline(train_images, test_images, test_labels, *, n_components=50, rng=0):
    """The eigenfaces baseline on the same split: PCA of the raw training pixels (0..1), 50 axes.

    Un-whitened, un-normalised coordinates compared by squared Euclidean
    distance: on ORL 31-40 this did better than whitening or normalising them.
    """
    a = np.asarray(train_images, dtype=np.float64).reshape(len(train_images), -1) / 255
    b = np.asarray(test_images, dtype=np.float64).reshape(len(test_images), -1) / 255
    model = Eigenfaces(n_components).fit(a)
    return evaluate_embedding(model.embed(b), test_labels, rng=rng)


def format_row(name, r):
    """One line of the tables: ``name``, then the numbers of
    :func:`scratchface.recognition.verification.evaluate_embedding` (``r``)."""
    return (f"{name:<12} 10-fold accuracy {100 * r['accuracy']:.2f}% +- {100 * r['accuracy_std']:.2f}  "
            f"AUC {r['auc']:.4f}  EER {100 * r['eer']:.2f}%  VAL@FAR=1e-2 {100 * r['val_at_far_1e-2']:.1f}%  "
            f"rank-1 {100 * r['rank1']:.2f}%")


def _parse_seeds(text):
    try:
        seeds = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 0,1,2, got {text!r}")
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct non-negative integers, got {text!r}")
    return seeds


def _write_weights(nets, histories, out, ensemble):
    """``--out``: one file, or with an ensemble one file per member in the folder ``out``."""
    for net, history in zip(nets, histories):
        name, seed = history["loss_name"], history["seed"]
        if out == "shipped":
            file = pretrained_path(name, seed)
        elif ensemble:
            os.makedirs(out, exist_ok=True)
            file = os.path.join(out, f"orl_embedding_{name}_seed{seed}.npz")
        else:
            file = out
        file = save_weights(net, file)
        print(f"weights written to {file} (SHA-256 {sha256_of_file(file)})")


def main(argv=None):
    """Command line: train on ORL 1-30, report on 31-40, save the weights (or tune: 1-20 vs 21-30)."""
    parser = argparse.ArgumentParser(
        prog="python -m experiments.orl_embedding",
        description="Train a small embedding network (or an ensemble of them) from scratch on ORL people "
                    "1-30 and evaluate it on people 31-40 (10-fold verification accuracy, rank-1 identification).")
    parser.add_argument("--data", default=None,
                        help="folder holding orl_faces/ (or the orl_faces folder); default $SCRATCHFACE_DATA")
    parser.add_argument("--loss", choices=LOSSES + ("both",), default="triplet",
                        help="'both' (with --ensemble or --seeds): triplet and ArcFace members")
    parser.add_argument("--epochs", type=int, default=None, help="default: %s" %
                        {k: v["epochs"] for k, v in DEFAULTS.items()})
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ensemble", type=int, default=None, metavar="K",
                        help="train K networks with seeds 0..K-1 and embed with all of them (embed_ensemble); "
                             "prints each member's and each ensemble prefix's numbers")
    parser.add_argument("--seeds", type=_parse_seeds, default=None, metavar="S,S,...",
                        help="the ensemble's seeds, e.g. 0,1,2 (instead of --ensemble)")
    parser.add_argument("--head", choices=("flatten", "avgpool"), default=None,
                        help="default: the shipped network's")
    parser.add_argument("--embedding-dim", type=int, default=None, help="default: the shipped network's")
    parser.add_argument("--dropout", type=float, default=None, help="default: the shipped network's")
    parser.add_argument("--align", action="store_true",
                        help="align the faces on MTCNN's landmarks (ORL_TEMPLATE) before halving them")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="a loss or augmentation setting, e.g. --option margin=0.5 --option "
                             "max_rotation=5 (see DEFAULTS)")
    parser.add_argument("--validate", action="store_true",
                        help="tuning run: train on people 1-20 and evaluate on 21-30 (31-40 untouched)")
    parser.add_argument("--out", default=None, help="weights file to write, a folder with an ensemble "
                        "(default: none; --out shipped overwrites the package's files)")
    parser.add_argument("--pretrained", action="store_true",
                        help="do not train: evaluate the shipped weights (the shipped ensemble with --ensemble)")
    parser.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                        help="write a checkpoint per network after every epoch (DIR/LOSS_seedS.ckpt.npz)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from --checkpoint-dir's checkpoints: the same final weights as an "
                             "uninterrupted run")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.resume and args.checkpoint_dir is None:
        parser.error("--resume needs --checkpoint-dir")
    if args.checkpoint_dir is not None:
        os.makedirs(args.checkpoint_dir, exist_ok=True)
    if args.ensemble is not None and args.seeds is not None:
        parser.error("give --ensemble K or --seeds, not both")
    if args.ensemble is not None and not 1 <= args.ensemble <= 100:
        parser.error(f"--ensemble must be a number of networks >= 1, got {args.ensemble}")
    seeds = list(range(args.ensemble)) if args.ensemble is not None else args.seeds
    is_ensemble = seeds is not None
    if args.loss == "both" and not is_ensemble:
        parser.error("--loss both needs --ensemble K or --seeds")
    names = LOSSES if args.loss == "both" else (args.loss,)
    options = {}
    for item in args.option:
        name, _, value = item.partition("=")
        known = set.intersection(*(set(DEFAULTS[n]) for n in names)) - {"epochs", "lr"}
        if name not in known:
            parser.error(f"--option {item!r}: the settings of --loss {args.loss} are {sorted(known)}")
        try:
            default = DEFAULTS[names[0]][name]
            options[name] = value if isinstance(default, str) else type(default)(float(value))
        except ValueError:
            parser.error(f"--option {item!r}: {value!r} is not a number")

    try:
        images, labels = load_orl_faces(args.data)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    train_people, test_people = (TRAIN_PEOPLE[:20], TRAIN_PEOPLE[20:]) if args.validate else (TRAIN_PEOPLE,
                                                                                              TEST_PEOPLE)
    train, test = np.isin(labels, train_people), np.isin(labels, test_people)
    print(f"ORL: {train.sum()} training images (people {train_people[0]}-{train_people[-1]}), "
          f"{test.sum()} test images (people {test_people[0]}-{test_people[-1]})")
    aligned = PRETRAINED[names[0]]["aligned"] if args.pretrained else args.align
    landmarks = orl_landmarks(images, progress=not args.no_progress) if aligned else None
    x = preprocess_orl(images, landmarks)
    shifts = PRETRAINED[names[0]]["shifts"]
    if args.pretrained:
        nets = load_ensemble(args.loss) if is_ensemble else [load_pretrained(args.loss)]
        histories = [{"loss_name": n, "seed": s} for n in names
                     for s in ([0] + sorted(PRETRAINED[n]["ensemble"]) if is_ensemble else [0])]
    else:
        architecture = {}
        for key, value in (("head", args.head), ("embedding_dim", args.embedding_dim), ("dropout", args.dropout)):
            if value is not None:
                architecture[key] = value
        nets, histories = [], []
        for name in names:
            for seed in (seeds if is_ensemble else [args.seed]):
                member, history = train_ensemble(x[train], labels[train], loss=name, seeds=[seed],
                                                 architecture=dict(PRETRAINED[name]["net"], **architecture),
                                                 epochs=args.epochs, lr=args.lr, progress=not args.no_progress,
                                                 checkpoint=None if args.checkpoint_dir is None else os.path.join(
                                                     args.checkpoint_dir, f"{name}_seed{seed}.ckpt.npz"),
                                                 resume=args.resume, **options)
                history = history[0]
                print(f"{name} seed {seed}: trained {len(history['loss'])} steps in {history['seconds']:.1f} s "
                      f"({history['cpu_seconds']:.1f} s of CPU); "
                      f"loss {np.mean(history['loss'][:5]):.4f} -> {np.mean(history['loss'][-5:]):.4f}")
                nets += member
                histories.append(history)
        if args.out:
            _write_weights(nets, histories, args.out, is_ensemble)
    embeddings = [embed_with_net(net, x[test], shifts=shifts) for net in nets]
    for e, history in zip(embeddings, histories):
        label = f"{history['loss_name']}" + (f" #{history['seed']}" if is_ensemble else "")
        print(format_row(label, evaluate_embedding(e, labels[test], rng=args.seed)))
    if is_ensemble:   # every prefix of the seeds, per loss and (with 'both') of both together
        groups = [(n, [i for i, h in enumerate(histories) if h["loss_name"] == n]) for n in names]
        if len(names) > 1:
            groups.append(("both", list(range(len(nets)))))
        for group, members in groups:
            member_seeds = sorted({histories[i]["seed"] for i in members})
            for k in range(2, len(member_seeds) + 1):
                chosen = [i for i in members if histories[i]["seed"] in member_seeds[:k]]
                e = normalize_rows(np.concatenate([embeddings[i] for i in chosen], axis=1))
                print(format_row(f"{group} x{k}", evaluate_embedding(e, labels[test], rng=args.seed)))
    print(format_row("eigenfaces", eigenfaces_baseline(images[train], images[test], labels[test], rng=args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
