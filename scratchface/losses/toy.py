"""The lecture's toy picture: 8 identities, 2-D (or 3-D) features, softmax vs SphereFace vs ArcFace.

A small network (standardised pixels -> dense -> ReLU -> dense -> ``dim``
features) is trained on 8 people of the ORL set with one of the classification
losses of :mod:`scratchface.losses.margin`, and the learned features are drawn
per identity. With the plain softmax the classes are separable but fan out
radially with no gap between them; the margin losses pack each identity into a
narrow angular sector with empty space between neighbours.

Everything here is for the picture: full-batch training with
:class:`scratchface.nn.optim.Adam`, a few seconds on a CPU. matplotlib is imported only by ``plot_toy_features``.
"""
from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from .._validation import check_choice, check_positive_int
from ..image import read_image
from ..layers.activations import relu_backward, relu_forward
from ..layers.dense import dense_backward, dense_forward
from ..nn.module import Parameter
from ..nn.optim import Adam
from . import margin as _margin

__all__ = ["TOY_LOSSES", "load_orl_people", "train_toy_features", "plot_toy_features", "ToyResult"]

TOY_LOSSES = ("softmax", "normalized_softmax", "sphereface", "cosface", "arcface")

_HEADS = {
    "softmax": (_margin.softmax_loss_forward, _margin.softmax_loss_backward, {}),
    "normalized_softmax": (_margin.normalized_softmax_loss_forward, _margin.normalized_softmax_loss_backward,
                           {"scale": 16.0}),
    "sphereface": (_margin.sphereface_loss_forward, _margin.sphereface_loss_backward, {"margin": 4}),
    "cosface": (_margin.cosface_loss_forward, _margin.cosface_loss_backward, {"scale": 16.0, "margin": 0.2}),
    "arcface": (_margin.arcface_loss_forward, _margin.arcface_loss_backward, {"scale": 16.0, "margin": 0.2}),
}


class ToyResult(NamedTuple):
    loss: str               # which loss trained it
    features: object        # (N, dim) learned features of every image
    class_weights: object   # (dim, C) the classifier's weight columns
    labels: object          # (N,)
    history: list           # loss value per iteration
    accuracy: float         # training accuracy of the classifier head (argmax of W_j^T f, or of cos)


def load_orl_people(root, people=8, *, block=4):
    """The first ``people`` identities of the ORL set as flat, block-averaged images.

    Parameters
    ----------
    root : path
        The ``orl_faces`` folder (``sK/N.pgm``, K = 1..40, N = 1..10).
    people : int
        How many identities (1..40), ``s1`` ... ``s<people>``.
    block : int
        Average ``block x block`` pixels (4: 112x92 -> 28x23).

    Returns
    -------
    x : float64 array, shape (10 * people, 112 // block * (92 // block)), values in [0, 1]
    labels : int64 array, shape (10 * people,)
    """
    people = check_positive_int(people, "people")
    block = check_positive_int(block, "block")
    if people > 40:
        raise ValueError(f"people must be at most 40 (the ORL set has 40 identities), got {people}")
    rows, labels = [], []
    for k in range(1, people + 1):
        for n in range(1, 11):
            img = read_image(os.path.join(os.fspath(root), f"s{k}", f"{n}.pgm")).astype(np.float64) / 255
            h, w = (img.shape[0] // block) * block, (img.shape[1] // block) * block
            small = img[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3))
            rows.append(small.ravel())
            labels.append(k - 1)
    return np.stack(rows), np.array(labels, dtype=np.int64)


def train_toy_features(x, labels, *, loss="arcface", dim=2, hidden=64, iterations=1500, lr=1e-2,
                       rng, loss_kwargs=None):
    """Train the small feature network with one classification loss.

    Parameters
    ----------
    x : array, shape (N, P) ; labels : int array, shape (N,)
    loss : one of ``TOY_LOSSES``
        SphereFace is trained with the lambda annealing of
        :func:`scratchface.losses.margin.sphereface_lambda`.
    dim : int
        Feature dimension (2 for the flat picture, 3 for the sphere).
    hidden, iterations, lr :
        Network width, full-batch Adam steps, learning rate.
    rng : numpy.random.Generator
        Initialisation.
    loss_kwargs : dict, optional
        Override the head's hyper-parameters (defaults: ``scale=16``,
        ``margin=0.2`` for CosFace / ArcFace: with 8 classes in 2-D the
        paper's ``s=64, m=0.5`` leaves too little room).

    Returns
    -------
    ToyResult
    """
    check_choice(loss, "loss", TOY_LOSSES)
    dim = check_positive_int(dim, "dim")
    hidden = check_positive_int(hidden, "hidden")
    iterations = check_positive_int(iterations, "iterations")
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator (np.random.default_rng(seed))")
    forward, backward, defaults = _HEADS[loss]
    kwargs = {**defaults, **(loss_kwargs or {})}
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-8)
    n_classes = int(labels.max()) + 1
    params = {
        "w1": rng.standard_normal((x.shape[1], hidden)) * np.sqrt(2.0 / x.shape[1]),
        "b1": np.zeros(hidden),
        "w2": rng.standard_normal((hidden, dim)) * np.sqrt(1.0 / hidden),
        "b2": np.zeros(dim),
        "wc": rng.standard_normal((dim, n_classes)),
    }
    if loss == "softmax":
        params["bc"] = np.zeros(n_classes)

    trainable = {k: Parameter(v) for k, v in params.items()}
    optimizer = Adam(list(trainable.values()), lr=lr)
    history = []

    def features(p):
        z, c1 = dense_forward(x, p["w1"], p["b1"])
        h, cr = relu_forward(z)
        f, c2 = dense_forward(h, p["w2"], p["b2"])
        return f, (c1, cr, c2)

    for it in range(iterations):
        f, (c1, cr, c2) = features(params)
        grads = {}
        if loss == "softmax":
            value, cache = forward(f, params["wc"], params["bc"], labels=labels)
            df, grads["wc"], grads["bc"] = backward(1.0, cache)
        else:
            extra = {"lambda_": _margin.sphereface_lambda(it)} if loss == "sphereface" else {}
            value, cache = forward(f, params["wc"], labels=labels, **kwargs, **extra)
            df, grads["wc"] = backward(1.0, cache)
        dh, grads["w2"], grads["b2"] = dense_backward(df, c2)
        _, grads["w1"], grads["b1"] = dense_backward(relu_backward(dh, cr), c1)
        for k, g in grads.items():
            trainable[k].grad[...] = g
        optimizer.step()                             # updates the arrays of params in place
        history.append(float(value))
    f, _ = features(params)
    if loss == "softmax":
        scores = f @ params["wc"] + params["bc"]
    else:
        scores = (f / np.linalg.norm(f, axis=1, keepdims=True)) @ (
            params["wc"] / np.linalg.norm(params["wc"], axis=0, keepdims=True))
    accuracy = float(np.mean(scores.argmax(axis=1) == labels))
    return ToyResult(loss, f, params["wc"], labels, history, accuracy)


def plot_toy_features(results, *, normalize=None, figsize=None):
    """Draw the learned features of several ``ToyResult`` side by side.

    2-D features are drawn in the plane (plus the direction of each class's
    weight column); 3-D features are normalised onto the unit sphere.

    Parameters
    ----------
    results : list of ToyResult
    normalize : bool, optional
        Draw unit-length features (default: only for the normalised losses and 3-D).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415  (lazy: plotting only)

    k = len(results)
    three_d = results[0].features.shape[1] == 3
    fig = plt.figure(figsize=figsize or (4 * k, 4))
    cmap = plt.get_cmap("tab10")
    for i, r in enumerate(results):
        f = r.features
        unit = normalize if normalize is not None else (three_d or r.loss != "softmax")
        if unit:
            f = f / np.linalg.norm(f, axis=1, keepdims=True)
        ax = fig.add_subplot(1, k, i + 1, projection="3d" if three_d else None)
        for c in np.unique(r.labels):
            sel = r.labels == c
            ax.scatter(*f[sel].T, s=12, color=cmap(int(c) % 10), label=f"id {int(c)}")
        if not three_d:
            w = r.class_weights / np.linalg.norm(r.class_weights, axis=0)
            reach = np.abs(f).max()
            for c in range(w.shape[1]):
                ax.plot([0, reach * w[0, c]], [0, reach * w[1, c]], color=cmap(c % 10), lw=0.8, ls="--")
            ax.set_aspect("equal")
        ax.set_title(f"{r.loss} (train acc. {r.accuracy:.0%})")
    fig.tight_layout()
    return fig
