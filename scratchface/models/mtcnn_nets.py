"""MTCNN's three networks, P-Net, R-Net and O-Net, built from scratchface's layers.

Each net is a plain function of an input batch and a dict of weights, written
layer by layer so that it reads like the architecture table of the paper
(Zhang et al. 2016, fig. 2). The trained weights are those of facenet-pytorch
2.6.0 (MIT licence; see ``scratchface/data/MTCNN_LICENSE.txt``), converted once
by ``python -m experiments.convert_mtcnn`` and shipped as
``scratchface/data/mtcnn_weights.npz``.

================  =========================================================  ==============
net               layers (conv k x k -> channels; pool k / stride, ceil)      input
================  =========================================================  ==============
P-Net             conv3-10, PReLU, pool2/2, conv3-16, PReLU, conv3-32,        12x12 cell, any
                  PReLU; 1x1 heads: face (2, softmax), box offsets (4)        size (FCN)
R-Net             conv3-28, PReLU, pool3/2, conv3-48, PReLU, pool3/2,         24x24
                  conv2-64, PReLU, flatten (W, H, C), dense 128, PReLU;
                  heads: face (2, softmax), box offsets (4)
O-Net             conv3-32, PReLU, pool3/2, conv3-64, PReLU, pool3/2,         48x48
                  conv3-64, PReLU, pool2/2, conv2-128, PReLU, flatten
                  (W, H, C), dense 256, PReLU; heads: face (2), box (4),
                  landmarks (10: five x then five y)
================  =========================================================  ==============

Inputs are NCHW float32 batches already normalised as ``(pixel - 127.5) / 128``
(RGB order). The flatten before the dense layers runs over (W, H, C), not
NumPy's (C, H, W): the weights were trained in Caffe / TensorFlow, whose
feature maps are stored transposed, and facenet-pytorch kept that order with a
``permute(0, 3, 2, 1)``.
"""
from __future__ import annotations

import functools
import os
from typing import NamedTuple

import numpy as np

from .._validation import check_float_array
from ..data.weights import check_weight_shapes, read_verified_npz, resolve_weights_path
from ..layers.activations import prelu_forward
from ..layers.conv import conv2d_forward, conv2d_prelu
from ..layers.dense import dense_forward
from ..layers.pooling import max_pool2d
from ..layers.softmax import softmax_forward

__all__ = [
    "WEIGHTS_PATH",
    "WEIGHTS_SHA256",
    "WEIGHT_SHAPES",
    "PNET_HEADS",
    "PNET_LANDMARK_HEAD",
    "PNET_TRUNK",
    "ONetOutput",
    "PNetOutput",
    "RNetOutput",
    "load_mtcnn_weights",
    "onet_forward",
    "pnet_forward",
    "rnet_forward",
]

WEIGHTS_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                            "mtcnn_weights.npz")
#: SHA-256 of the shipped file, as printed by ``python -m experiments.convert_mtcnn``.
WEIGHTS_SHA256 = "464e7bffdfc39ccc9bf2511a95eced7071196694e6db59fe7989835cd7aca0ea"


def _conv_shapes(net, name, c_in, c_out, k):
    return {f"{net}.{name}.w": (c_out, c_in, k, k), f"{net}.{name}.b": (c_out,)}


def _dense_shapes(net, name, d_in, d_out):
    return {f"{net}.{name}.w": (d_in, d_out), f"{net}.{name}.b": (d_out,)}


def _prelu_shapes(net, name, c):
    return {f"{net}.{name}.alpha": (c,)}


#: P-Net's trunk, the one description of it (:func:`pnet_forward` runs it on the shipped weights,
#: :class:`scratchface.detection.mtcnn_training.TrainablePNet` builds trainable modules from it):
#: ``(name, 'conv', c_in, c_out, k)``, ``(name, 'prelu', channels)``, ``(name, 'pool', k, stride)`` (ceil mode).
PNET_TRUNK = (("conv1", "conv", 3, 10, 3), ("prelu1", "prelu", 10), ("pool1", "pool", 2, 2),
              ("conv2", "conv", 10, 16, 3), ("prelu2", "prelu", 16),
              ("conv3", "conv", 16, 32, 3), ("prelu3", "prelu", 32))
#: P-Net's 1x1 heads on the trunk's 32 channels: face logits (2) and box offsets (4).
PNET_HEADS = (("conv4_1", 32, 2), ("conv4_2", 32, 4))
#: The paper's landmark head (10 outputs), which the released weights leave out.
PNET_LANDMARK_HEAD = ("conv4_3", 32, 10)


def _pnet_shapes():
    shapes = {}
    for layer in PNET_TRUNK:
        if layer[1] == "conv":
            shapes.update(_conv_shapes("pnet", layer[0], *layer[2:]))
        elif layer[1] == "prelu":
            shapes.update(_prelu_shapes("pnet", layer[0], layer[2]))
    for name, c_in, c_out in PNET_HEADS:
        shapes.update(_conv_shapes("pnet", name, c_in, c_out, 1))
    return shapes


#: Every array the nets need, with its shape.
WEIGHT_SHAPES = {
    **_pnet_shapes(),
    **_conv_shapes("rnet", "conv1", 3, 28, 3), **_prelu_shapes("rnet", "prelu1", 28),
    **_conv_shapes("rnet", "conv2", 28, 48, 3), **_prelu_shapes("rnet", "prelu2", 48),
    **_conv_shapes("rnet", "conv3", 48, 64, 2), **_prelu_shapes("rnet", "prelu3", 64),
    **_dense_shapes("rnet", "dense4", 576, 128), **_prelu_shapes("rnet", "prelu4", 128),
    **_dense_shapes("rnet", "dense5_1", 128, 2), **_dense_shapes("rnet", "dense5_2", 128, 4),
    **_conv_shapes("onet", "conv1", 3, 32, 3), **_prelu_shapes("onet", "prelu1", 32),
    **_conv_shapes("onet", "conv2", 32, 64, 3), **_prelu_shapes("onet", "prelu2", 64),
    **_conv_shapes("onet", "conv3", 64, 64, 3), **_prelu_shapes("onet", "prelu3", 64),
    **_conv_shapes("onet", "conv4", 64, 128, 2), **_prelu_shapes("onet", "prelu4", 128),
    **_dense_shapes("onet", "dense5", 1152, 256), **_prelu_shapes("onet", "prelu5", 256),
    **_dense_shapes("onet", "dense6_1", 256, 2), **_dense_shapes("onet", "dense6_2", 256, 4),
    **_dense_shapes("onet", "dense6_3", 256, 10),
}


@functools.lru_cache(maxsize=4)
def _load_verified(path: str, expected_sha256):
    what = "MTCNN weights file"
    weights = read_verified_npz(path, expected_sha256, what=what, remedy=(
        "Reinstall scratchface, or re-create the file with "
        "'python -m experiments.convert_mtcnn facenet_pytorch-2.6.0-py3-none-any.whl'"))
    return check_weight_shapes(weights, WEIGHT_SHAPES, path, what)


def load_mtcnn_weights(path=None, *, sha256="default") -> dict:
    """The P-Net, R-Net and O-Net weights as a dict of read-only float32 arrays.

    Parameters
    ----------
    path : path, optional
        An ``.npz`` made by ``python -m experiments.convert_mtcnn``; default
        the file shipped in ``scratchface/data``.
    sha256 : str or None
        Expected SHA-256 of the file. ``'default'``: the shipped file's checksum
        when ``path`` is the shipped file, no check for a user's own file;
        ``None``: no check.

    Returns
    -------
    weights : dict of str to ndarray
        Keys ``'<net>.<layer>.w' | '.b' | '.alpha'`` (see ``WEIGHT_SHAPES``);
        loaded once per path and cached.

    Raises
    ------
    ValueError
        The checksum differs (a corrupt or modified file), the file is not a
        pickle-free ``.npz``, or an array is missing or has the wrong shape.
    FileNotFoundError
        No such file.
    """
    return _load_verified(*resolve_weights_path(path, WEIGHTS_PATH, WEIGHTS_SHA256, sha256, "MTCNN weights file"))


def _weights(weights):
    return load_mtcnn_weights() if weights is None else weights


def _conv_prelu(x, w, net, conv, prelu):
    return conv2d_prelu(x, w[f"{net}.{conv}.w"], w[f"{net}.{conv}.b"], w[f"{net}.{prelu}.alpha"])


def _pool(x, kernel_size, stride):
    return max_pool2d(x, kernel_size=kernel_size, stride=stride, ceil_mode=True)


def _dense(x, w, net, layer):
    out, _ = dense_forward(x, w[f"{net}.{layer}.w"], w[f"{net}.{layer}.b"])
    return out


def _flatten_whc(x):
    """(N, C, H, W) -> (N, W*H*C), flattened in (W, H, C) order as the trained weights expect."""
    return np.ascontiguousarray(x.transpose(0, 3, 2, 1)).reshape(x.shape[0], -1)


def _check_input(x, size):
    check_float_array(x, "x", ndim=4)
    if x.shape[1] != 3:
        raise ValueError(f"x must have 3 (RGB) channels in axis 1 (NCHW), got shape {x.shape}")
    if size is None:
        if x.shape[2] < 12 or x.shape[3] < 12:
            raise ValueError(f"x must be at least 12x12 pixels for P-Net, got shape {x.shape}")
    elif x.shape[2:] != (size, size):
        raise ValueError(f"x must be {size}x{size} pixels, got shape {x.shape}")
    return x


class PNetOutput(NamedTuple):
    """P-Net on an (N, 3, H, W) batch: one 12x12 window every 2 pixels."""
    probs: np.ndarray    #: (N, 2, H', W') softmax over (non-face, face)
    offsets: np.ndarray  #: (N, 4, H', W') box regression (dx1, dy1, dx2, dy2) in window widths


class RNetOutput(NamedTuple):
    probs: np.ndarray    #: (N, 2)
    offsets: np.ndarray  #: (N, 4)


class ONetOutput(NamedTuple):
    probs: np.ndarray      #: (N, 2)
    offsets: np.ndarray    #: (N, 4)
    landmarks: np.ndarray  #: (N, 10): x of the 5 points, then y, as fractions of the box


def pnet_forward(x, weights=None) -> PNetOutput:
    """Proposal network: fully convolutional, a face score for every 12x12 window.

    Parameters
    ----------
    x : float32 array, shape (N, 3, H, W), H, W >= 12
        Normalised RGB images, ``(pixel - 127.5) / 128``.
    weights : dict, optional
        From :func:`load_mtcnn_weights` (default: the shipped weights).

    Returns
    -------
    PNetOutput
        ``probs`` (N, 2, H', W') and ``offsets`` (N, 4, H', W') with
        ``H' = ceil((H - 2) / 2) - 4`` (conv 3, pool 2/2 ceil, conv 3, conv 3).
    """
    w = _weights(weights)
    x = _check_input(x, None)
    for layer, after in zip(PNET_TRUNK, PNET_TRUNK[1:] + (None,)):  # conv3-10, PReLU, pool2/2, conv3-16, ...
        name, kind = layer[:2]
        if kind == "conv":      # every conv of the trunk is followed by its PReLU: the two in one pass
            x = conv2d_prelu(x, w[f"pnet.{name}.w"], w[f"pnet.{name}.b"], w[f"pnet.{after[0]}.alpha"])
        elif kind == "pool":
            x = _pool(x, layer[2], layer[3])
    # both 1x1 heads as one 32 -> 6 convolution: the trunk's output is read once
    heads = [name for name, _, _ in PNET_HEADS]
    out, _ = conv2d_forward(x, np.concatenate([w[f"pnet.{h}.w"] for h in heads]),
                            np.concatenate([w[f"pnet.{h}.b"] for h in heads]))
    face = PNET_HEADS[0][2]                            # the face logits, then the box offsets
    probs, _ = softmax_forward(out[:, :face], axis=1)
    return PNetOutput(probs, out[:, face:])


def rnet_forward(x, weights=None) -> RNetOutput:
    """Refinement network on (N, 3, 24, 24) crops: face probability and box offsets."""
    w = _weights(weights)
    x = _check_input(x, 24)
    x = _conv_prelu(x, w, "rnet", "conv1", "prelu1")  # (N, 28, 22, 22)
    x = _pool(x, 3, 2)                                 # (N, 28, 11, 11)
    x = _conv_prelu(x, w, "rnet", "conv2", "prelu2")  # (N, 48, 9, 9)
    x = _pool(x, 3, 2)                                 # (N, 48, 4, 4)
    x = _conv_prelu(x, w, "rnet", "conv3", "prelu3")  # (N, 64, 3, 3)
    x = _flatten_whc(x)                                # (N, 576)
    x, _ = prelu_forward(_dense(x, w, "rnet", "dense4"), w["rnet.prelu4.alpha"])
    probs, _ = softmax_forward(_dense(x, w, "rnet", "dense5_1"), axis=1)
    return RNetOutput(probs, _dense(x, w, "rnet", "dense5_2"))


def onet_forward(x, weights=None) -> ONetOutput:
    """Output network on (N, 3, 48, 48) crops: probability, box offsets, 5 landmarks."""
    w = _weights(weights)
    x = _check_input(x, 48)
    x = _conv_prelu(x, w, "onet", "conv1", "prelu1")  # (N, 32, 46, 46)
    x = _pool(x, 3, 2)                                 # (N, 32, 23, 23)
    x = _conv_prelu(x, w, "onet", "conv2", "prelu2")  # (N, 64, 21, 21)
    x = _pool(x, 3, 2)                                 # (N, 64, 10, 10)
    x = _conv_prelu(x, w, "onet", "conv3", "prelu3")  # (N, 64, 8, 8)
    x = _pool(x, 2, 2)                                 # (N, 64, 4, 4)
    x = _conv_prelu(x, w, "onet", "conv4", "prelu4")  # (N, 128, 3, 3)
    x = _flatten_whc(x)                                # (N, 1152)
    x, _ = prelu_forward(_dense(x, w, "onet", "dense5"), w["onet.prelu5.alpha"])
    probs, _ = softmax_forward(_dense(x, w, "onet", "dense6_1"), axis=1)
    return ONetOutput(probs, _dense(x, w, "onet", "dense6_2"), _dense(x, w, "onet", "dense6_3"))
