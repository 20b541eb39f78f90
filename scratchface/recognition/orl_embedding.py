"""The embeddings trained from scratch on ORL people 1-30: shipped weights, embedding with test-time flips and shifts.

A network of :func:`scratchface.models.orl_nets.build_embedding_net` maps a
preprocessed face (:func:`scratchface.recognition.orl_preprocessing.preprocess_orl`, 56 x 48) to a
128-d vector; the embedding is that vector L2-normalised. Two losses, the two
families of the lecture, trained it (``python -m experiments.orl_embedding``):

* ``'triplet'``: FaceNet's triplet loss (alpha = 0.2) on the L2-normalised
  embedding, with semi-hard negatives mined online in batches of P people x
  K images (:func:`scratchface.data.pairs.pk_batches`,
  :func:`scratchface.losses.mining.semi_hard_triplets`);
* ``'arcface'``: an additive angular margin softmax over the 30 training
  identities (:func:`scratchface.losses.margin.arcface_loss_forward`); the
  class weights are thrown away after training and the normalised
  features are the embedding.

Test-time augmentation (:func:`embed_with_net`): with :math:`f` the network and
:math:`\\tilde x` the mirror image, the embedding is

.. math:: e(x) = \\frac{f(x) + f(\\tilde x)}{\\lVert f(x) + f(\\tilde x) \\rVert_2}

(``shifts=k`` adds the four copies moved by ``k`` pixels, and their mirrors).
An ensemble (:func:`embed_ensemble`) concatenates its members' unit
embeddings and renormalises, so that a squared distance is the mean of the
members' squared distances. :func:`embed_orl` does it all with the shipped
networks, which load with :func:`load_pretrained` / :func:`load_ensemble`:
``scratchface/data/orl_embedding_{loss}.npz`` (and the triplet ensemble's other
members ``orl_embedding_triplet_seed{k}.npz``), float16, SHA-256 checked
(:data:`PRETRAINED`), loaded as float32.

How well they verify and identify people 31-40 (and every variant tried,
with which choices looked at those people): ``docs/results.md``, section
Recognition.

References
----------
Schroff et al., "FaceNet", CVPR 2015 (triplet loss, semi-hard mining).
Deng et al., "ArcFace", CVPR 2019.
"""
from __future__ import annotations

import os
import pathlib

import numpy as np

from .. import nn
from .._validation import check_choice
from ..data.weights import read_verified_npz, resolve_weights_path, write_reproducible_npz
from ..models.orl_nets import build_embedding_net
from .augment import shift_images
from ..distances import normalize_rows
from .orl_preprocessing import orl_landmarks, preprocess_orl

__all__ = [
    "LOSSES",
    "PRETRAINED",
    "check_seed",
    "embed_ensemble",
    "embed_orl",
    "embed_with_net",
    "load_ensemble",
    "load_pretrained",
    "pretrained_path",
    "save_weights",
]

LOSSES = ("triplet", "arcface")
#: The shipped networks (``scratchface/data/orl_embedding_{loss}.npz``): architecture
#: (:func:`build_embedding_net` arguments), whether they take aligned faces, and the file's SHA-256.
PRETRAINED = {
    "triplet": {"net": {}, "aligned": False, "shifts": 0,
                "sha256": "5a197078b5b9ff056377b4adb2cf25b10a733f351fb657680e0c0e7cde59be46",
                "ensemble": {1: "8c908536f03606295e08b13c832a87442c02cd511d5e94df263b3c7f27d1f03c",
                             2: "f2dd4c618ead26a8daf51c9adaf7810e6b44cf8d4abc383606cbbd7fa743d406",
                             3: "377604496fac324b2109262bbf166954f216ad99db251a368973b0f8016b2457",
                             4: "d30f4111862ddb0766a2e1373ca700bb6c0ef169943fd0f8bd0aa3a649b5ab5a"}},
    "arcface": {"net": {}, "aligned": False, "shifts": 0,
                "sha256": "e3793bb10d042b0721973bb9c0c9a35f9ce44b0b3068aaab0cd890205b954dc4",
                "ensemble": {}},
}
_DATA_DIR = pathlib.Path(__file__).resolve().parents[1] / "data"


def embed_with_net(net, x, *, flip=True, shifts=0, batch_size=100):
    """L2-normalised embeddings of preprocessed images (N, 1, 56, 48), with test-time augmentation.

    With ``flip`` the embedding of the mirror image is added before normalising;
    with ``shifts=k`` also those of the image moved by ``k`` pixels up, down,
    left and right (edges repeated): 1, 2, 5 or 10 forward passes per image.
    """
    views = [np.ascontiguousarray(x, dtype=np.float32)]
    if shifts:
        views += [np.ascontiguousarray(shift_images(views[0], dy, dx))
                  for dy, dx in ((shifts, 0), (-shifts, 0), (0, shifts), (0, -shifts))]
    if flip:
        views += [np.ascontiguousarray(v[:, :, :, ::-1]) for v in views]
    e = sum(nn.predict(net, v, batch_size=batch_size).astype(np.float64) for v in views)
    return normalize_rows(e)


def embed_ensemble(nets, x, *, flip=True, shifts=0, batch_size=100):
    """The embedding of an ensemble: each member's :func:`embed_with_net`, concatenated and renormalised.

    Parameters
    ----------
    nets : sequence of Module
        The members (e.g. :func:`load_ensemble`, or trained by ``experiments.orl_embedding``); any embedding sizes.
    x : float32 array, shape (N, 1, 56, 48)
        From :func:`scratchface.recognition.orl_preprocessing.preprocess_orl`.
    flip, shifts, batch_size
        As :func:`embed_with_net`, for every member.

    Returns
    -------
    float64 array, shape (N, sum of the members' embedding sizes)
        L2-normalised.

    Notes
    -----
    With :math:`K` members and unit embeddings :math:`e_k`, the concatenation
    has norm :math:`\\sqrt K`, so :math:`e = [e_1, \\dots, e_K] / \\sqrt K` and

    .. math:: \\lVert e - e' \\rVert^2 = \\frac1K \\sum_k \\lVert e_k - e'_k \\rVert^2 ,

    the mean of the members' squared distances (the members' axes are
    unrelated, so their embeddings are never added). Networks trained with
    different seeds make different mistakes on unseen people; averaging
    their distances cancels part of that variance (a plain bagging argument).
    """
    if isinstance(nets, nn.Module) or len(nets) == 0:
        raise TypeError("nets must be a non-empty sequence of networks (for one network use embed_with_net)")
    for i, net in enumerate(nets):
        if not isinstance(net, nn.Module):
            raise TypeError(f"nets[{i}] must be a scratchface.nn.Module, got {type(net).__name__}")
    parts = [embed_with_net(net, x, flip=flip, shifts=shifts, batch_size=batch_size) for net in nets]
    return normalize_rows(np.concatenate(parts, axis=1))


def pretrained_path(loss="triplet", seed=0) -> pathlib.Path:
    """Where the shipped weights for ``loss`` are: ``scratchface/data/orl_embedding_{loss}.npz``.

    ``seed=k > 0``: the ensemble member trained with seed ``k``,
    ``orl_embedding_{loss}_seed{k}.npz`` (seed 0 is the single shipped network).
    """
    check_choice(loss, "loss", LOSSES)
    seed = check_seed(seed)
    return _DATA_DIR / (f"orl_embedding_{loss}.npz" if seed == 0 else f"orl_embedding_{loss}_seed{seed}.npz")


def check_seed(seed):
    """``seed`` as an int, refusing negatives, bools and non-integers (a member of :data:`PRETRAINED`'s ensembles)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def save_weights(net, path):
    """Write ``net``'s parameters and buffers to a compressed ``.npz`` in float16; returns the path.

    The bytes depend on the weights only (:func:`scratchface.data.weights.write_reproducible_npz`),
    so the same training run gives the same SHA-256. :func:`scratchface.nn.load`
    (or :func:`load_pretrained` with ``path=``) reads it back into a float32 network.
    """
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    state = {name: np.asarray(a, dtype=np.float16) for name, a in net.state_dict().items()}
    write_reproducible_npz(state, path, deflate=True)
    return path


def load_pretrained(loss="triplet", path=None, *, sha256="default", seed=0):
    """The shipped network trained with ``loss`` on ORL people 1-30, in eval mode.

    Parameters
    ----------
    loss : {'triplet', 'arcface'}
    seed : int
        0: the single shipped network; ``k`` in ``PRETRAINED[loss]['ensemble']``:
        the ensemble member trained with seed ``k`` (:func:`load_ensemble` loads them all).
    path : str or os.PathLike, optional
        Another weights file of the same architecture (``PRETRAINED[loss]['net']``),
        e.g. written by ``python -m experiments.orl_embedding --out FILE``.
    sha256 : 'default', str or None
        ``'default'`` checks the shipped file against ``PRETRAINED[loss]['sha256']``
        (a user's own file is not checked); a hex digest checks against it; ``None`` checks nothing.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A checksum that differs ("corrupt or modified") or a file that is not a pickle-free ``.npz``.
    KeyError
        Arrays that do not match the architecture.

    Notes
    -----
    The network expects :func:`scratchface.recognition.orl_preprocessing.preprocess_orl` with ``landmarks`` when
    ``PRETRAINED[loss]['aligned']``: :func:`embed_orl` does both.
    """
    check_choice(loss, "loss", LOSSES)
    config = PRETRAINED[loss]
    seed = check_seed(seed)
    if seed == 0:
        default_sha256, retrain = config["sha256"], f"--loss {loss} --out shipped"
    elif seed in config["ensemble"]:
        default_sha256 = config["ensemble"][seed]
        retrain = f"--loss {loss} --ensemble {max(config['ensemble']) + 1} --out shipped"
    else:
        raise ValueError(f"seed must be 0 or a shipped ensemble member of loss={loss!r} "
                         f"{sorted(config['ensemble'])}, got {seed}")
    what = f"ORL {loss} embedding weights" + (f" (seed {seed})" if seed else "")
    file, expected = resolve_weights_path(path, str(pretrained_path(loss, seed)), default_sha256, sha256, what)
    state = read_verified_npz(file, expected, what=what, remedy=(
        f"Reinstall scratchface, or retrain with 'python -m experiments.orl_embedding "
        f"--data DIR {retrain}'"))
    net = build_embedding_net(rng=0, **config["net"])
    net.load_state_dict(state)
    return net.eval()


def load_ensemble(loss="triplet"):
    """The shipped ensemble of ``loss``: the networks of seed 0 and of every seed in ``PRETRAINED[loss]['ensemble']``.

    Parameters
    ----------
    loss : {'triplet', 'arcface', 'both'}
        ``'both'``: the triplet members, then the ArcFace ones.

    Returns
    -------
    list of Module
        For :func:`embed_ensemble` (:func:`embed_orl` with ``ensemble=True`` does it all).
    """
    check_choice(loss, "loss", LOSSES + ("both",))
    return [load_pretrained(name, seed=seed) for name in (LOSSES if loss == "both" else (loss,))
            for seed in [0] + sorted(PRETRAINED[name]["ensemble"])]


def embed_orl(images, loss="triplet", *, landmarks=None, net=None, ensemble=False):
    """ORL-style grey faces (N, 112, 92) to L2-normalised embeddings with a shipped network.

    Finds the five landmarks with MTCNN (unless given) when the network was
    trained on aligned faces, preprocesses as in training, and embeds with the
    mirror image added (:func:`embed_with_net`).

    Parameters
    ----------
    images : array, shape (N, 112, 92)
    loss : {'triplet', 'arcface'}, or 'both' with ``ensemble``
    landmarks : array, shape (N, 5, 2), optional
        From :func:`orl_landmarks` (computed here when missing).
    net : Module, or a list of them with ``ensemble``, optional
        Default :func:`load_pretrained` ``(loss)`` (:func:`load_ensemble` ``(loss)`` with ``ensemble``).
    ensemble : bool
        Embed with the shipped ensemble (:func:`embed_ensemble`).

    Returns
    -------
    float64 array, shape (N, embedding_dim), or (N, sum of the members' sizes) with ``ensemble``
    """
    check_choice(loss, "loss", LOSSES + (("both",) if ensemble else ()))
    names = LOSSES if loss == "both" else (loss,)
    aligned = {PRETRAINED[name]["aligned"] for name in names}
    shifts = {PRETRAINED[name]["shifts"] for name in names}
    if len(aligned) > 1 or len(shifts) > 1:   # not the case of the shipped networks
        raise ValueError("the triplet and ArcFace networks need different preprocessing: embed them apart")
    aligned, shifts = aligned.pop(), shifts.pop()
    if aligned and landmarks is None:
        landmarks = orl_landmarks(images)
    x = preprocess_orl(images, landmarks if aligned else None)
    if ensemble:
        return embed_ensemble(load_ensemble(loss) if net is None else net, x, shifts=shifts)
    return embed_with_net(load_pretrained(loss) if net is None else net, x, shifts=shifts)
