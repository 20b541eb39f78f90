"""DeepFace (Taigman, Yang, Ranzato, Wolf 2014): convolutions, then locally connected layers, 152x152x3.

::

    from scratchface.models import deepface
    net = deepface()            # (N, 3, 152, 152) frontalised faces -> 4030 identity logits
    net.print_summary()

=====  ===============================  ==================  ====================
layer  what                             output              parameters
=====  ===============================  ==================  ====================
C1     conv 32 x 11x11x3 + ReLU         142x142x32          11,648
M2     max pool 3x3, stride 2           71x71x32            0
C3     conv 16 x 9x9x32 + ReLU          63x63x16            41,488
L4     locally connected 16 x 9x9x16    55x55x16            62.8M (untied)
L5     locally connected 16 x 7x7x16/2  25x25x16            7.85M
L6     locally connected 16 x 5x5x16    21x21x16            2.83M
F7     fully connected 4096 + ReLU      4096                28.9M
F8     fully connected 4030 (softmax)   4030                16.5M
=====  ===============================  ==================  ====================

About 119M parameters, 95% of them in L4-L6 and F7-F8 ("more than 120 million"
in the paper, which counts roughly). A locally connected layer is a convolution
whose filters differ at every output pixel (no weight sharing): after the 3-D
alignment each pixel sees the same part of every face, so each place learns its
own filters.

What the paper leaves open, and what we chose
---------------------------------------------
- M2's 3x3 stride-2 max pool takes 142 to 71, which needs rounding up
  (``ceil_mode=True``, Caffe's rule) or a padding of 1; we round up.
- L5 has stride 2 (55 -> 25 with a 7x7 kernel); the paper's figure gives only the
  sizes, the stride follows from them. No padding anywhere.
- ReLU after C1, C3, L4, L5, L6 and F7; F8 gives logits (the paper's softmax is
  the loss: :func:`scratchface.layers.softmax.softmax_cross_entropy_forward`).
- Dropout (the paper: on F7 only) is off by default; ``dropout=0.5`` adds it.
- The face representation is F7's output (:func:`deepface_descriptor`): the paper then
  normalises it (each component by its maximum over the training set, then
  L2), which is the data pipeline's job, not the network's.

References
----------
Taigman, Yang, Ranzato, Wolf, "DeepFace: Closing the Gap to Human-Level Performance
in Face Verification", CVPR 2014, fig. 2 and sec. 3.
"""
from __future__ import annotations

import numpy as np

from .._validation import as_generator, check_in_range, check_int_pair, check_positive_int
from ..nn import Conv2d, Dense, Dropout, Flatten, LocallyConnected2d, MaxPool2d, ReLU, Sequential
from ..nn.module import check_input_shape
from .facenet import FaceNetwork, scaled_channels

__all__ = ["deepface", "deepface_descriptor", "DEEPFACE_LAYERS"]

#: (name, kind, filters, kernel, stride): DeepFace fig. 2.
DEEPFACE_LAYERS = (
    ("c1", "conv", 32, 11, 1),
    ("m2", "max_pool", None, 3, 2),
    ("c3", "conv", 16, 9, 1),
    ("l4", "local", 16, 9, 1),
    ("l5", "local", 16, 7, 2),
    ("l6", "local", 16, 5, 1),
)
DEEPFACE_F7 = 4096


def deepface(input_size=152, num_classes=4030, *, dropout=0.0, width_divisor=1, rng=None, dtype=np.float32,
             init="he_normal"):
    """DeepFace's network: C1, M2, C3, L4-L6 (locally connected), F7, F8.

    Parameters
    ----------
    input_size : int or (H, W)
        152 in the paper; at least 72 (the kernels must fit).
    num_classes : int
        Width of F8 (4030 identities of the SFC training set in the paper).
    dropout : float in [0, 1)
        Dropout after F7 when > 0.
    width_divisor : int
        Divide every layer's channels and F7's width by this (8: small model for gradchecks).
    rng : numpy.random.Generator or int, optional
    dtype : float dtype
    init : str or callable
        Weight initialiser (``'zeros'`` when only the shapes and counts matter).

    Returns
    -------
    FaceNetwork
        ``(N, 3, H, W) -> (N, num_classes)`` logits. ``net[:'f7']``-style access:
        ``net['f7']`` is the F7 block; no ``deepface_features`` is needed, run
        the layers up to ``'f7'`` (see the tests).

    References
    ----------
    DeepFace, CVPR 2014, fig. 2.
    """
    h, w = check_int_pair(input_size, "input_size")
    num_classes = check_positive_int(num_classes, "num_classes")
    dropout = check_in_range(dropout, "dropout", 0.0, 1.0, inclusive=(True, False))
    width_divisor = check_positive_int(width_divisor, "width_divisor")
    rng = as_generator(rng, allow_none=True)
    p = dict(rng=rng, dtype=dtype, init=init)
    layers, c, shape = {}, 3, (3, h, w)
    for name, kind, filters, k, stride in DEEPFACE_LAYERS:
        if kind == "max_pool":
            layers[name] = MaxPool2d(k, stride=stride, ceil_mode=True)
        else:
            f = scaled_channels(filters, width_divisor)
            if kind == "conv":
                layer = Conv2d(c, f, k, stride=stride, **p)
            else:
                layer = LocallyConnected2d(c, f, k, shape[1:], stride=stride, **p)
            layers[name] = Sequential(dict(layer=layer, relu=ReLU()))
            c = f
        shape = layers[name].output_shape(shape)
    layers["flatten"] = Flatten()
    f7 = scaled_channels(DEEPFACE_F7, width_divisor)
    f7_layers = dict(fc=Dense(int(np.prod(shape)), f7, **p), relu=ReLU())
    if dropout:
        f7_layers["dropout"] = Dropout(dropout, rng=rng)
    layers["f7"] = Sequential(f7_layers)
    layers["f8"] = Dense(f7, num_classes, **p)
    return FaceNetwork(layers, input_shape=(3, h, w), architecture="DeepFace")


def deepface_descriptor(net, x):
    """F7's output for a batch ``x``: DeepFace's face representation (forward only).

    Parameters
    ----------
    net : FaceNetwork
        Built by :func:`deepface`.
    x : float array, shape (N, 3, H, W)

    Returns
    -------
    array, shape (N, 4096)
        (``4096 / width_divisor`` for a shrunken net.)
    """
    if not (isinstance(net, FaceNetwork) and "f7" in net._modules):
        raise TypeError(f"net must be a DeepFace network built by deepface(), got {type(net).__name__}")
    check_input_shape(x, net.architecture, net.input_shape)
    for name, module in net._modules.items():
        x = module.forward(x)
        if name == "f7":
            return x
