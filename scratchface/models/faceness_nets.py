"""Faceness part network: one small fully convolutional trunk, five part response maps.

Yang et al.'s Faceness (ICCV 2015) trains one deep network per facial part
(hair, eyes, nose, mouth, beard) and reads a *partness map* off each: a map
over the whole image that is high where that part is. Here the five networks
share one small trunk (the brief of a 2-core CPU) and differ only in their last
1x1 convolution; each output channel is one part's map, trained with a sigmoid
cross-entropy against a target map made from landmarks
(:func:`scratchface.detection.faceness.part_target_maps`).

=========  ======================================  ==========  ============
layer      operation                               output      receptive
=========  ======================================  ==========  ============
conv1      3x3, 1 -> 16, pad 1, ReLU               H x W       3 px
pool1      max 2 / 2                               H/2         4 px
conv2      3x3, 16 -> 32, pad 1, ReLU              H/2         8 px
pool2      max 2 / 2                               H/4         10 px
conv3      3x3, 32 -> 32, pad 1, ReLU              H/4         18 px
conv4      3x3, 32 -> 32, pad 1, ReLU              H/4         26 px
parts      1x1, 32 -> 5 (logits)                   H/4         26 px
=========  ======================================  ==========  ============

The network is fully convolutional: any image size, output stride 4 (map cell
``(i, j)`` covers input pixels ``4i .. 4i + 3``, ``4j .. 4j + 3``). In the
canonical 64 x 64 training crop the face box is 32 pixels, so the 26-pixel
receptive field sees most of a face and each part's map is 16 x 16.

Input: gray images on 0..1, normalised by :func:`normalize_gray`
(``(x - 0.5) / 0.25``), NCHW ``(N, 1, H, W)``.

References
----------
S. Yang, P. Luo, C. C. Loy, X. Tang, "From Facial Part Responses to Face
Detection: A Deep Learning Approach", ICCV 2015 (sec. 3.1, partness maps).
S. Yang, P. Luo, C. C. Loy, X. Tang, "Faceness-Net: Face Detection through
Deep Facial Part Responses", TPAMI 40(8), 2018 (part-level masks as supervision).
"""
from __future__ import annotations

import pathlib
from typing import NamedTuple

import numpy as np

from .. import nn
from .._validation import as_generator, check_float_array, check_in_range, check_positive_int
from ..data.weights import read_verified_npz, resolve_weights_path, write_reproducible_npz
from ..losses.sigmoid_cross_entropy import sigmoid_cross_entropy_backward, sigmoid_cross_entropy_forward
from ..nn.optim import Adam
from ..nn.train import iterate_minibatches

__all__ = [
    "DEFAULT_WEIGHTS_PATH",
    "DEFAULT_WEIGHTS_SHA256",
    "PART_NAMES",
    "STRIDE",
    "PartNetwork",
    "load_part_network",
    "normalize_gray",
    "part_network",
    "part_probabilities",
    "save_part_network",
    "train_part_network",
]

PART_NAMES = ("hair", "eyes", "nose", "mouth", "beard")  #: output channel order
STRIDE = 4  #: pixels per map cell (two 2x2 max-poolings)
DEFAULT_WEIGHTS_PATH = pathlib.Path(__file__).resolve().parents[1] / "data" / "faceness_parts.npz"
#: SHA-256 of the shipped file (``python -m experiments.faceness --data ../shared/data --train``, seed 0)
DEFAULT_WEIGHTS_SHA256 = "81b39321d36e9e050517318038a12c418b1efdf7dc70561741bcb1e86d1579dd"


# ----------------------------------------------------------------------------- the network

def normalize_gray(gray):
    """Gray 0..1 pixels to the network's input scale ``(x - 0.5) / 0.25`` (float32)."""
    return ((np.asarray(gray, np.float32) - np.float32(0.5)) * np.float32(4.0)).astype(np.float32)


def part_network(rng, *, dtype=np.float32):
    """The trunk and the five part heads as one :class:`scratchface.nn.Sequential` (see the table above).

    Parameters
    ----------
    rng : numpy.random.Generator or int
        Seeds the initialisation.
    """
    rng = as_generator(rng, allow_none=True)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, rng=rng, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, rng=rng, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1, rng=rng, dtype=dtype), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1, rng=rng, dtype=dtype), nn.ReLU(),
        nn.Conv2d(32, len(PART_NAMES), 1, rng=rng, dtype=dtype, init="xavier_normal"))


class PartNetwork(NamedTuple):
    """A trained part network and what the faceness score needs from training.

    ``part_windows[p]`` is part ``p``'s expected sub-box ``(x1, y1, x2, y2)`` as
    fractions of the context window (the face box grown twice about its centre),
    the mean of the training faces' part boxes (Faceness learns these
    sub-regions from training data too).
    """
    net: object                #: scratchface.nn.Sequential from part_network
    part_windows: np.ndarray   #: (5, 4) float64, fractions of the context window
    face_size: int = 32        #: face box side (pixels) the network was trained at
    context: float = 2.0       #: context window side / face box side


def part_probabilities(model: PartNetwork, gray):
    """The five partness maps of a gray image: sigmoid of the network's output.

    Parameters
    ----------
    model : PartNetwork
    gray : float array, shape (H, W) on 0..1, or (N, 1, H, W) already normalised

    Returns
    -------
    maps : float32 array, shape (5, H // 4, W // 4) (or (N, 5, ...) for a batch)
    """
    x = np.asarray(gray)
    single = x.ndim == 2
    if single:
        x = normalize_gray(x)[None, None]
    logits = model.net.eval().forward(np.ascontiguousarray(x, np.float32))
    probs = 0.5 * (1.0 + np.tanh(0.5 * logits))  # the sigmoid, without overflow
    return probs[0] if single else probs


def train_part_network(crops, targets, *, rng, epochs=8, batch_size=64, lr=2e-3, pos_weight=2.0,
                       progress=True, log=None):
    """Train :func:`part_network` on crops and target maps with Adam and the sigmoid cross-entropy.

    Parameters
    ----------
    crops : float32 array, shape (N, 1, 64, 64)
        Normalised gray crops (:func:`normalize_gray`).
    targets : float array, shape (N, 5, 16, 16), values in [0, 1]
    rng : numpy.random.Generator or int
        Seeds the initialisation and the batch order.
    epochs, batch_size, lr, pos_weight
        Adam's learning rate; the loss's positive weight. The learning rate is
        divided by 10 for the last quarter of the epochs.
    progress : bool
        tqdm bar per epoch.
    log : callable, optional
        ``log(epoch, mean_loss)`` after every epoch.

    Returns
    -------
    net : the trained Sequential (eval mode)
    history : list of float, the mean loss of each epoch
    """
    check_float_array(crops, "crops", ndim=4)
    check_float_array(targets, "targets", ndim=4)
    if len(crops) != len(targets):
        raise ValueError(f"crops and targets must have as many samples, got {len(crops)} and {len(targets)}")
    epochs = check_positive_int(epochs, "epochs")
    check_in_range(lr, "lr", 0.0, 1.0, inclusive=(False, True))
    rng = as_generator(rng, allow_none=True)
    net = part_network(rng)
    optimiser = Adam(net.parameters(), lr=lr)
    targets = np.asarray(targets, np.float32)
    history = []
    for epoch in range(epochs):
        if epoch == epochs - max(1, epochs // 4):
            optimiser.lr = lr / 10
        net.train()
        batches = list(iterate_minibatches(len(crops), batch_size, rng))
        bar = None
        if progress:
            from tqdm.auto import tqdm  # noqa: PLC0415  (tqdm: optional, a progress bar only when asked)
            bar = tqdm(total=len(batches), desc=f"part network, epoch {epoch + 1}/{epochs}", leave=False)
        total = 0.0
        for idx in batches:
            net.zero_grad()
            loss, cache = sigmoid_cross_entropy_forward(net.forward(crops[idx]), targets=targets[idx],
                                                        pos_weight=pos_weight)
            net.backward(sigmoid_cross_entropy_backward(np.float32(1.0), cache))
            optimiser.step()
            total += float(loss) * len(idx)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss):.4f}")
        if bar is not None:
            bar.close()
        history.append(total / len(crops))
        if log is not None:
            log(epoch + 1, history[-1])
    return net.eval(), history


# ----------------------------------------------------------------------------- files

def save_part_network(model: PartNetwork, path, **metadata) -> str:
    """Write the network's weights, ``part_windows`` and ``metadata`` as a reproducible ``.npz``.

    Returns the file's SHA-256.
    """
    arrays = {f"net.{k}": np.asarray(v, np.float32) for k, v in model.net.state_dict().items()}
    arrays.update(part_windows=np.asarray(model.part_windows, np.float64),
                  face_size=np.int64(model.face_size), context=np.float64(model.context),
                  **{f"meta.{k}": np.asarray(v) for k, v in metadata.items()})
    return write_reproducible_npz(arrays, path, deflate=True)


def load_part_network(path=None, *, sha256="default") -> PartNetwork:
    """Read a :class:`PartNetwork` (default: the one shipped as ``scratchface/data/faceness_parts.npz``).

    Parameters
    ----------
    path : str or path-like, optional
        A file written by :func:`save_part_network`.
    sha256 : 'default', str or None
        ``'default'`` checks the shipped file against :data:`DEFAULT_WEIGHTS_SHA256`
        (and leaves other files unchecked); a hex digest checks ``path``; ``None`` checks nothing.

    Raises
    ------
    FileNotFoundError
        No such file (train one with ``python -m experiments.faceness --train``).
    ValueError
        A checksum that differs, not a pickle-free ``.npz``, or arrays of the wrong shapes.
    """
    try:
        path, expected = resolve_weights_path(path, str(DEFAULT_WEIGHTS_PATH), DEFAULT_WEIGHTS_SHA256, sha256,
                                              "faceness part network")
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc} (train one with python -m experiments.faceness --train)") from None
    arrays = read_verified_npz(path, expected, what="faceness part network",
                               remedy="Train it again: python -m experiments.faceness --train.")
    net = part_network(0)
    state = {k[len("net."):]: v for k, v in arrays.items() if k.startswith("net.")}
    try:
        net.load_state_dict(state)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"faceness part network {path} does not fit the architecture: {exc}") from exc
    windows = np.asarray(arrays["part_windows"], np.float64)
    if windows.shape != (len(PART_NAMES), 4):
        raise ValueError(f"part_windows in {path} must be ({len(PART_NAMES)}, 4), got {windows.shape}")
    return PartNetwork(net.eval(), windows, int(arrays["face_size"]), float(arrays["context"]))
