"""DeepID2's two signals on ORL: identification only, verification only and both; print the table.

Run from the repository root::

    python -m experiments.deepid2 --data ../shared/data

Trains :func:`scratchface.models.orl_nets.build_deepid2_net` on ORL people
1-30 (batches of 10 people x 5 images, :func:`scratchface.data.pairs.pk_batches`)
with the joint loss :func:`scratchface.losses.deepid2.deepid2_loss_forward`
:math:`L = w_{id}\\, \\overline{\\mathrm{Ident}} + \\lambda\\, \\overline{\\mathrm{Verif}}`,
with :math:`w_{id} = 1` (identification alone: :math:`\\lambda = 0`; joint: a few
:math:`\\lambda`) or :math:`w_{id} = 0, \\lambda = 1` (verification alone),
and scores each run on people 31-40
(:func:`scratchface.recognition.verification.evaluate_embedding`: all 450
same-person pairs and 450 different ones, squared Euclidean distance between
the L2-normalised features, mirror image added). The table and what it
shows: ``docs/results.md``, section Recognition.

References
----------
Y. Sun, Y. Chen, X. Wang, X. Tang, "Deep Learning Face Representation by Joint
Identification-Verification", NIPS 2014 (Table 1: the training algorithm).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from scratchface import nn
from scratchface._validation import check_float_array, check_positive_float, check_positive_int
from scratchface.data.orl import TEST_PEOPLE, TRAIN_PEOPLE, load_orl_faces
from scratchface.data.pairs import pk_batches
from scratchface.losses.deepid2 import deepid2_loss_backward, deepid2_loss_forward
from scratchface.models.orl_nets import build_deepid2_net
from scratchface.recognition.augment import augment
from scratchface.recognition.orl_embedding import embed_with_net
from scratchface.recognition.orl_preprocessing import preprocess_orl
from scratchface.recognition.verification import evaluate_embedding

__all__ = ["DEFAULTS", "SIGNALS", "format_table", "main", "run_signals", "train_deepid2"]

#: Training settings of the runs in the table (``train_deepid2``'s defaults).
DEFAULTS = {"epochs": 30, "lr": 2e-3, "weight_decay": 5e-3, "margin": 1.0,
            "people_per_batch": 10, "images_per_person": 5}
#: The signals compared: name -> (identification weight, verification weight lambda); 'joint' takes lambda.
SIGNALS = {"ident": (1.0, 0.0), "verif": (0.0, 1.0), "joint": (1.0, None)}


def train_deepid2(x, labels, *, lam=1.0, ident_weight=1.0, epochs=None, lr=None, margin=None, rng=0, net=None,
                  progress=True, max_steps=None, **options):
    """Train a DeepID2 feature network with the joint loss.

    Parameters
    ----------
    x : float32 array, shape (N, 1, H, W)
        Preprocessed faces (:func:`~scratchface.data.orl_faces.preprocess_orl`).
    labels : int array, shape (N,)
        Identities (any integers; mapped to ``0..n-1`` for the softmax).
    lam : float >= 0
        Weight of the verification signal.
    ident_weight : float >= 0
        Weight of the identification signal (0 with ``lam = 1``: verification only).
    epochs, lr, margin : optional
        Defaults in :data:`DEFAULTS`.
    rng : int or numpy.random.Generator
        Seeds the network, the softmax layer, the batches and the augmentation.
    net : Module, optional
        Default :func:`scratchface.models.orl_nets.build_deepid2_net` with the same seed.
    progress : bool
        A tqdm bar over the steps.
    max_steps : int, optional
        Stop after this many steps (smoke tests).
    **options
        ``weight_decay``, ``people_per_batch``, ``images_per_person``.

    Returns
    -------
    net : Module
        In eval mode.
    history : dict
        ``'loss'``, ``'ident'``, ``'verif'`` per step (the total and the two
        signals' batch means, unweighted; ``verif`` is 0 when ``lam == 0``),
        ``'seconds'``.
    """
    settings = dict(DEFAULTS)
    unknown = set(options) - set(settings)
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)}; known: "
                        f"{sorted(set(settings) - {'epochs', 'lr', 'margin'})}")
    settings.update(options)
    epochs = check_positive_int(settings["epochs"] if epochs is None else epochs, "epochs")
    lr = check_positive_float(settings["lr"] if lr is None else lr, "lr")
    margin = check_positive_float(settings["margin"] if margin is None else margin, "margin")
    lam = check_positive_float(lam, "lam", allow_zero=True)
    ident_weight = check_positive_float(ident_weight, "ident_weight", allow_zero=True)
    if lam == 0 and ident_weight == 0:
        raise ValueError("lam and ident_weight are both 0: there is no training signal left")
    check_float_array(x, "x", ndim=4)
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (x.shape[0],):
        raise ValueError(f"labels must have one entry per image ({x.shape[0]}), got shape {labels.shape}")
    rng = nn.init.as_generator(rng)
    if net is None:
        net = build_deepid2_net(rng=rng, input_size=tuple(x.shape[2:]))
    classes, targets = np.unique(labels, return_inverse=True)
    dim = net.output_shape(tuple(x.shape[1:]))[0]
    head = nn.Dense(dim, classes.size, init="xavier_normal", rng=rng, dtype=x.dtype)
    optimizer = nn.Adam(net.parameters() + head.parameters(), lr=lr, weight_decay=settings["weight_decay"])
    p, k = settings["people_per_batch"], settings["images_per_person"]
    steps_per_epoch = len(pk_batches(labels, p, k, np.random.default_rng(0)))
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    schedule = nn.CosineSchedule(optimizer, total_steps=total, min_lr=lr * 0.01)
    history = {"loss": [], "ident": [], "verif": []}
    bar = None
    if progress:
        from tqdm.auto import tqdm  # lazy: tqdm.auto probes for Jupyter widgets, only when a bar is shown
        bar = tqdm(total=total, desc=f"DeepID2 w_id={ident_weight:g} lambda={lam:g}", unit="step")
    start, step = time.perf_counter(), 0
    net.train()
    try:
        while step < total:
            for idx in pk_batches(labels, p, k, rng):
                if step >= total:
                    break
                net.zero_grad()
                head.zero_grad()
                features = net.forward(augment(x[idx], rng))
                value, cache = deepid2_loss_forward(features, head.weight.data, head.bias.data,
                                                    labels=targets[idx], lam=lam, margin=margin,
                                                    ident_weight=ident_weight)
                dfeatures, dweight, dbias = deepid2_loss_backward(1.0, cache)
                head.weight.grad += dweight
                head.bias.grad += dbias
                net.backward(dfeatures.astype(features.dtype))
                optimizer.step()
                schedule.step()
                history["loss"].append(float(value))
                history["ident"].append(cache.ident_value)
                history["verif"].append(cache.verif_value)
                step += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{np.mean(history['loss'][-steps_per_epoch:]):.4f}")
    finally:
        if bar is not None:
            bar.close()
    net.eval()
    history["seconds"] = time.perf_counter() - start
    return net, history


def run_signals(x_train, labels_train, x_test, labels_test, *, lambdas=(0.1, 1.0, 10.0), rng=0, progress=True,
                **train_options):
    """Train with identification only, verification only and both (one run per lambda); evaluate each.

    Parameters
    ----------
    x_train, labels_train : arrays, shapes (N, 1, H, W) and (N,)
        Training people.
    x_test, labels_test : arrays
        Held-out people: verification pairs are made among them.
    lambdas : sequence of float > 0
        The weights of the verification signal tried in the joint runs.
    rng : int
        Seed of every run (the same initialisation and batches for all) and of the test pairs.
    **train_options
        Passed to :func:`train_deepid2` (``epochs``, ``lr``, ``margin``, ...).

    Returns
    -------
    rows : list of dict
        One per run: ``signal``, ``ident_weight``, ``lam``, the metrics of
        :func:`~scratchface.recognition.verification.evaluate_embedding`,
        ``final_loss`` (mean of the last 10 steps) and ``seconds`` of training.
    """
    rng = int(rng)
    runs = [("ident", *SIGNALS["ident"]), ("verif", *SIGNALS["verif"])]
    runs += [("joint", SIGNALS["joint"][0], check_positive_float(lam, "lambdas")) for lam in lambdas]
    rows = []
    for signal, ident_weight, lam in runs:
        net, history = train_deepid2(x_train, labels_train, lam=lam, ident_weight=ident_weight, rng=rng,
                                     progress=progress, **train_options)
        metrics = evaluate_embedding(embed_with_net(net, x_test), labels_test, rng=rng)
        rows.append(dict(signal=signal, ident_weight=ident_weight, lam=lam, **metrics,
                         final_loss=float(np.mean(history["loss"][-10:])), seconds=history["seconds"]))
    return rows


def format_table(rows):
    """The rows of :func:`run_signals` as a text table."""
    lines = [f"{'signals':<24} {'10-fold accuracy':>17}  {'AUC':>6}  {'EER':>6}  {'rank-1':>7}  {'train s':>7}"]
    names = {"ident": "identification only", "verif": "verification only", "joint": "both"}
    for r in rows:
        name = names[r["signal"]] + (f", lambda={r['lam']:g}" if r["signal"] == "joint" else "")
        lines.append(f"{name:<24} {100 * r['accuracy']:>8.2f}% +- {100 * r['accuracy_std']:4.2f}  "
                     f"{r['auc']:6.4f}  {100 * r['eer']:5.2f}%  {100 * r['rank1']:6.2f}%  {r['seconds']:7.1f}")
    return "\n".join(lines)


def main(argv=None):
    """Command line: the identification / verification / joint table on ORL 1-30 -> 31-40."""
    parser = argparse.ArgumentParser(
        prog="python -m experiments.deepid2",
        description="DeepID2's two signals: train a small network on ORL people 1-30 with identification "
                    "only, verification only and both; print 10-fold verification accuracy on people 31-40.")
    parser.add_argument("--data", default=None,
                        help="folder holding orl_faces/ (or the orl_faces folder); default $SCRATCHFACE_DATA")
    parser.add_argument("--lambdas", default="0.1,1,10",
                        help="comma-separated weights of the verification signal for the joint runs")
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    parser.add_argument("--margin", type=float, default=DEFAULTS["margin"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        lambdas = [float(v) for v in args.lambdas.split(",") if v.strip()]
    except ValueError:
        parser.error(f"--lambdas must be numbers separated by commas, got {args.lambdas!r}")
    if not lambdas or min(lambdas) <= 0:
        parser.error(f"--lambdas must hold at least one number > 0, got {args.lambdas!r}")

    try:
        images, labels = load_orl_faces(args.data)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    x = preprocess_orl(images)
    train, test = np.isin(labels, TRAIN_PEOPLE), np.isin(labels, TEST_PEOPLE)
    print(f"ORL: {train.sum()} training images (people 1-30), {test.sum()} test images (people 31-40); "
          f"{args.epochs} epochs per run, margin {args.margin:g}, seed {args.seed}")
    rows = run_signals(x[train], labels[train], x[test], labels[test], lambdas=lambdas, rng=args.seed,
                       progress=not args.no_progress, epochs=args.epochs, margin=args.margin)
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
