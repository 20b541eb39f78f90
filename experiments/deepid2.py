"""DeepID2: one network trained with two signals, identification and verification.

Run::

    python -m scratchface.recognition.deepid2 --data ../shared/data

Sun et al. (2014) learn a face feature :math:`f = \\mathrm{Conv}(x, \\theta_c)`
(their 160-d "DeepID2 layer") with two supervisory signals at once:

* **identification** (DeepID2 eq. 1): a softmax layer over the ``n`` training
  identities on top of :math:`f`, and its cross-entropy

  .. math:: \\mathrm{Ident}(f, t, \\theta_{id}) = -\\sum_{i=1}^{n} p_i \\log \\hat p_i = -\\log \\hat p_t ,

  which pulls apart the features of different people (inter-personal variation);
* **verification** (DeepID2 eq. 2): the contrastive loss between two features
  :math:`f_i, f_j` with :math:`y_{ij} = 1` for the same person, :math:`-1` otherwise,

  .. math:: \\mathrm{Verif}(f_i, f_j, y_{ij}, \\theta_{ve}) = \\begin{cases}
            \\tfrac12 \\lVert f_i - f_j \\rVert_2^2 & y_{ij} = 1 \\\\
            \\tfrac12 \\max(0,\\, m - \\lVert f_i - f_j \\rVert_2)^2 & y_{ij} = -1
            \\end{cases}

  which pulls together the features of one person (intra-personal variation).

The network's gradient is the sum of the two (the paper's Table 1):
:math:`\\partial L / \\partial f = \\partial \\mathrm{Ident} / \\partial f +
\\lambda\\, \\partial \\mathrm{Verif} / \\partial f`, with :math:`\\lambda` the
weight of the verification signal.

What is done here (:func:`deepid2_loss_forward`, :func:`train_deepid2`): the
network is :func:`scratchface.recognition.train_embedding.build_embedding_net`
with a 160-d output followed by a ReLU (the DeepID2 layer), trained on ORL
people 1-30 with batches of 10 people x 5 images; the identification signal
is the mean cross-entropy of the batch, the verification signal the mean
contrastive loss over **every pair in the batch** (45 x 10 same pairs and
1,125 different ones per batch), and

.. math:: L = w_{id}\\, \\overline{\\mathrm{Ident}} + \\lambda\\, \\overline{\\mathrm{Verif}},

with :math:`w_{id} = 1` (identification alone: :math:`\\lambda = 0`; joint: a few
:math:`\\lambda`) or :math:`w_{id} = 0, \\lambda = 1` (verification alone).
Departures from the paper: the contrastive loss compares L2-normalised
features (``normalize=True``, so that the margin ``m = 1`` has a fixed scale
whatever scale the softmax gives the features; the paper fixes ``m`` on raw
features); pairs are all the pairs of a batch rather than random pairs of
the training set; one network on the whole (half-resolution) image instead of
200 networks on patches; no joint Bayesian on top.

Evaluation: 10-fold verification accuracy (LFW protocol) on people 31-40
(:func:`scratchface.recognition.train_embedding.evaluate_embedding`:
all 450 same-person pairs and 450 different ones, squared Euclidean distance
between the L2-normalised features, mirror image added).

Results (``python -m scratchface.recognition.deepid2 --data ../shared/data``:
seed 0, 30 epochs = 180 steps per run, margin 1; people 31-40, 900 pairs):

=========================  ==================  =====  =====  ======
signals                    10-fold accuracy    AUC    EER    rank-1
=========================  ==================  =====  =====  ======
identification only        86.1% +- 2.6        0.910  14.0%  81.3%
verification only          83.2% +- 3.2        0.918  16.0%  69.9%
both, lambda = 0.1         86.8% +- 2.5        0.909  14.2%  82.3%
both, lambda = 1           85.6% +- 2.3        0.908  13.8%  82.3%
both, lambda = 10          86.1% +- 2.2        0.911  13.1%  79.7%
=========================  ==================  =====  =====  ======

Verification alone is clearly the weakest (3 points of accuracy, 11 of
rank-1); a plausible reason: a pair loss on batches of 10 people never
compares all 30 people at once, as the softmax does at every step. The joint runs are within noise of
identification alone: with seed 1 (``--seed 1``) identification only gave
87.2% and lambda = 0.1 87.1%, so seed noise (about +-1 point) is as large as
any difference between them. The paper's
gain from the joint signal (its lambda sweep: best near 0.05, both ends
worse) needs far more identities than ORL's 30, on which the softmax alone
already drives the training loss to about 0.1. The network is
:mod:`~scratchface.recognition.train_embedding`'s (without landmark
alignment), so the numbers are comparable with that module's triplet and
ArcFace results (which train longer: 360 steps against 180 here, to keep
each run within about two minutes).

Performance: about 0.28 s of CPU per step of batch 50 (float32,
``OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1``), about 50 s of CPU per run of
180 steps; on the shared 2-core machine each run took 74-114 s of wall time
and the whole table 8 minutes (254 s of CPU).

References
----------
Y. Sun, Y. Chen, X. Wang, X. Tang, "Deep Learning Face Representation by Joint
Identification-Verification", NIPS 2014 (eq. 1: identification, eq. 2:
verification, Table 1: the training algorithm).
R. Hadsell, S. Chopra, Y. LeCun, "Dimensionality Reduction by Learning an
Invariant Mapping", CVPR 2006 (the contrastive loss).
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import NamedTuple

import numpy as np

from .. import nn
from .._validation import (
    check_float_array,
    check_labels,
    check_positive_float,
    check_positive_int,
)
from ..gradcheck import GradcheckCase
from ..layers.dense import dense_backward, dense_forward
from ..layers.normalization import l2_normalize_backward, l2_normalize_forward
from ..layers.softmax import (
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)
from ..losses.contrastive import contrastive_loss_backward, contrastive_loss_forward
from .train_embedding import (  # _pk_batches: P people x K images per batch, shared with the ORL embedding
    TEST_PEOPLE,
    TRAIN_PEOPLE,
    _pk_batches,
    augment,
    build_embedding_net,
    embed,
    evaluate_embedding,
)

__all__ = [
    "DEFAULTS",
    "SIGNALS",
    "batch_pairs",
    "build_deepid2_net",
    "deepid2_loss_backward",
    "deepid2_loss_forward",
    "format_table",
    "gradcheck_cases",
    "main",
    "run_signals",
    "train_deepid2",
]

#: Training settings of the runs in the table (``train_deepid2``'s defaults).
DEFAULTS = {"epochs": 30, "lr": 2e-3, "weight_decay": 5e-3, "margin": 1.0,
            "people_per_batch": 10, "images_per_person": 5}
#: The signals compared: name -> (identification weight, verification weight lambda); 'joint' takes lambda.
SIGNALS = {"ident": (1.0, 0.0), "verif": (0.0, 1.0), "joint": (1.0, None)}
FEATURE_DIM = 160  #: DeepID2's feature length


# ----------------------------------------------------------------------------- the joint loss

class DeepID2Cache(NamedTuple):
    dense: object           # DenseCache of the identification layer
    softmax: object         # SoftmaxCrossEntropyCache
    verif: object           # ContrastiveCache, or None when lam == 0
    norm: object            # L2NormalizeCache, or None
    first: np.ndarray       # (P,) first index of each pair
    second: np.ndarray      # (P,) second index
    ident_weight: float
    lam: float
    shape: tuple            # (B, D) of the features
    ident_value: float      # the two signals' batch means, unweighted (for logging)
    verif_value: float


def batch_pairs(labels):
    """Every pair ``i < j`` of a batch and whether it shows one person.

    Parameters
    ----------
    labels : int array, shape (B,)

    Returns
    -------
    first, second : int64 arrays, shape (B (B - 1) / 2,)
    same : bool array, same shape

    Examples
    --------
    >>> batch_pairs(np.array([7, 7, 3]))
    (array([0, 0, 1]), array([1, 2, 2]), array([ True, False, False]))
    """
    labels = np.asarray(labels)
    first, second = np.triu_indices(labels.shape[0], k=1)
    return first.astype(np.int64), second.astype(np.int64), labels[first] == labels[second]


def deepid2_loss_forward(features, weight, bias, *, labels, lam=1.0, margin=1.0, ident_weight=1.0,
                         normalize=True):
    """DeepID2's joint identification-verification loss of a batch, forward.

    Parameters
    ----------
    features : float array, shape (B, D)
        The DeepID2 features :math:`f` of a batch.
    weight : float array, shape (D, n)
        The identification (softmax) layer, :math:`\\theta_{id}`.
    bias : float array, shape (n,)
    labels : int array, shape (B,)
        Identity of each sample, in ``[0, n)``.
    lam : float >= 0
        :math:`\\lambda`, the weight of the verification signal (0: identification only).
    margin : float > 0
        :math:`m` of the contrastive loss.
    ident_weight : float >= 0
        :math:`w_{id}`, the weight of the identification signal (0: verification only).
    normalize : bool
        Compare L2-normalised features in the verification signal (see the module notes).

    Returns
    -------
    loss : scalar
        :math:`w_{id} \\frac1B \\sum_i \\mathrm{Ident}(f_i, t_i) + \\lambda \\frac1P \\sum_{i<j}
        \\mathrm{Verif}(f_i, f_j, y_{ij})` over the :math:`P = B(B-1)/2` pairs of the batch.
    cache : DeepID2Cache

    Notes
    -----
    The backward adds the two signals' gradients (DeepID2 Table 1, step 4):
    :math:`\\partial L/\\partial f_i = w_{id}\\, W (\\hat p_i - e_{t_i}) / B
    + \\lambda \\sum_{j} \\partial \\overline{\\mathrm{Verif}} / \\partial f_i`, the second
    term summed over the pairs that hold :math:`f_i` (as first or second element,
    through the L2 normalisation's Jacobian :math:`(I - \\hat f \\hat f^\\top) / \\lVert f \\rVert`).
    With ``lam == 0`` the verification signal is not computed at all.

    References
    ----------
    Sun, Chen, Wang, Tang, "Deep Learning Face Representation by Joint Identification-Verification",
    NIPS 2014, eq. 1-2 and Table 1.
    """
    check_float_array(features, "features", ndim=2)
    lam = check_positive_float(lam, "lam", allow_zero=True)
    ident_weight = check_positive_float(ident_weight, "ident_weight", allow_zero=True)
    if lam == 0 and ident_weight == 0:
        raise ValueError("lam and ident_weight are both 0: there is no training signal left")
    margin = check_positive_float(margin, "margin")
    labels = np.asarray(labels) if isinstance(labels, (list, tuple)) else labels
    check_labels(labels, "labels", features.shape[0], weight.shape[1] if hasattr(weight, "shape") else None)
    logits, dense_cache = dense_forward(features, weight, bias)
    ident, softmax_cache = softmax_cross_entropy_forward(logits, labels=labels)
    first, second, same = batch_pairs(labels)
    verif, verif_cache, norm_cache = 0.0, None, None
    if lam > 0:
        f = features
        if normalize:
            f, norm_cache = l2_normalize_forward(features, axis=1)
        verif, verif_cache = contrastive_loss_forward(f[first], f[second], same=same, margin=margin)
    loss = ident_weight * ident + lam * verif
    return loss, DeepID2Cache(dense_cache, softmax_cache, verif_cache, norm_cache, first, second,
                              ident_weight, lam, tuple(features.shape), float(ident), float(verif))


def deepid2_loss_backward(dloss, cache):
    """``(dfeatures, dweight, dbias)``: the identification gradient plus lambda times the verification one."""
    dlogits = softmax_cross_entropy_backward(dloss * cache.ident_weight, cache.softmax)
    dfeatures, dweight, dbias = dense_backward(dlogits, cache.dense)
    if cache.verif is not None:
        dfirst, dsecond = contrastive_loss_backward(dloss * cache.lam, cache.verif)
        dpairs = np.zeros(cache.shape, dtype=dfirst.dtype)
        np.add.at(dpairs, cache.first, dfirst)     # a feature is in many pairs: accumulate
        np.add.at(dpairs, cache.second, dsecond)
        if cache.norm is not None:
            dpairs = l2_normalize_backward(dpairs, cache.norm)
        dfeatures = dfeatures + dpairs
    return dfeatures, dweight, dbias


def gradcheck_cases(rng):
    """The joint loss on 6 samples of 3 people (pairs inside and outside the margin)."""
    features = rng.standard_normal((6, 4))
    return [GradcheckCase("deepid2_loss", deepid2_loss_forward, deepid2_loss_backward,
                          {"features": features, "weight": rng.standard_normal((4, 3)),
                           "bias": rng.standard_normal(3)},
                          {"labels": np.array([0, 0, 1, 1, 2, 2]), "lam": 0.7, "margin": 1.2})]


# ----------------------------------------------------------------------------- network and training

def build_deepid2_net(*, feature_dim=FEATURE_DIM, channels=(16, 32, 64), input_size=(56, 48), rng=0):
    """The feature network: ``build_embedding_net(embedding_dim=feature_dim)`` then a ReLU (the DeepID2 layer).

    Input (N, 1, H, W) as :func:`scratchface.recognition.train_embedding.preprocess_orl` makes it,
    output (N, feature_dim), non-negative.
    """
    body = build_embedding_net(channels=channels, embedding_dim=feature_dim, input_size=input_size, rng=rng)
    return nn.Sequential(body, nn.ReLU())


def train_deepid2(x, labels, *, lam=1.0, ident_weight=1.0, epochs=None, lr=None, margin=None, rng=0, net=None,
                  progress=True, max_steps=None, **options):
    """Train a DeepID2 feature network with the joint loss.

    Parameters
    ----------
    x : float32 array, shape (N, 1, H, W)
        Preprocessed faces (:func:`~scratchface.recognition.train_embedding.preprocess_orl`).
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
        Default :func:`build_deepid2_net` with the same seed.
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
    steps_per_epoch = len(_pk_batches(labels, p, k, np.random.default_rng(0)))
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    schedule = nn.CosineSchedule(optimizer, total_steps=total, min_lr=lr * 0.01)
    history = {"loss": [], "ident": [], "verif": []}
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=total, desc=f"DeepID2 w_id={ident_weight:g} lambda={lam:g}", unit="step")
    start, step = time.perf_counter(), 0
    net.train()
    try:
        while step < total:
            for idx in _pk_batches(labels, p, k, rng):
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


# ----------------------------------------------------------------------------- the comparison

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
        :func:`~scratchface.recognition.train_embedding.evaluate_embedding`,
        ``final_loss`` (mean of the last 10 steps) and ``seconds`` of training.
    """
    rng = int(rng)
    runs = [("ident", *SIGNALS["ident"]), ("verif", *SIGNALS["verif"])]
    runs += [("joint", SIGNALS["joint"][0], check_positive_float(lam, "lambdas")) for lam in lambdas]
    rows = []
    for signal, ident_weight, lam in runs:
        net, history = train_deepid2(x_train, labels_train, lam=lam, ident_weight=ident_weight, rng=rng,
                                     progress=progress, **train_options)
        metrics = evaluate_embedding(embed(net, x_test), labels_test, rng=rng)
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
        prog="python -m scratchface.recognition.deepid2",
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

    from ..data.orl import load_orl_faces
    from .train_embedding import preprocess_orl

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
