"""VGG-Face (Parkhi, Vedaldi, Zisserman 2015): 16 weight layers, a 2622-way classifier, a triplet projection.

::

    from scratchface.models import vgg_face
    net = vgg_face()                         # 224x224x3 -> 2622 identity logits
    net.print_summary()                      # the paper's table 3, layer by layer
    emb = vgg_face(head="embedding")         # ... fc7 -> L2 -> 4096 x 1024 projection

Layers, as the paper's table 3 lists them (37 counting ReLUs and pools, the
softmax included)::

    conv1_1 relu1_1 conv1_2 relu1_2 pool1                       3 ->  64 channels
    conv2_1 relu2_1 conv2_2 relu2_2 pool2                      64 -> 128
    conv3_1 relu3_1 conv3_2 relu3_2 conv3_3 relu3_3 pool3     128 -> 256
    conv4_1 relu4_1 conv4_2 relu4_2 conv4_3 relu4_3 pool4     256 -> 512
    conv5_1 relu5_1 conv5_2 relu5_2 conv5_3 relu5_3 pool5     512 -> 512
    fc6 relu6 fc7 relu7 fc8 prob

conv: support 3, stride 1, padding 1; pool: max, support 2, stride 2. The fully
connected layers are convolutions as in the paper: fc6 has support 7 over the
7x7x512 map (so its output is 1x1x4096), fc7 and fc8 support 1. A flatten then
gives ``(N, 4096)`` / ``(N, 2622)`` rows.

Heads
-----
- ``'classifier'`` (training stage 1): fc8 gives ``num_classes`` logits; train with
  :func:`scratchface.layers.softmax.softmax_cross_entropy_forward`. The table's
  ``prob`` softmax is added with ``with_softmax=True`` (read probabilities; do not
  train through it).
- ``'embedding'`` (stage 2): fc8 is cut; the fc7 descriptor :math:`\\phi` is
  L2-normalised and projected, :math:`x = W' \\phi / \\lVert\\phi\\rVert_2` with
  :math:`W' \\in \\mathbb R^{1024 \\times 4096}` (a dense layer without bias), trained
  with the triplet loss. The paper does not normalise ``x`` again; the triplet
  loss of :mod:`scratchface.losses.triplet` with ``normalize=False`` is the
  paper's.

What we chose: the paper trained with dropout (rate 0.5) after relu6 and relu7;
it is off by default here (``dropout=0.0``) so the layer list is the table's,
and ``dropout=0.5`` inserts the two layers. ``input_size`` other than 224
changes fc6's support to the last map's size (for small test models).

References
----------
Parkhi, Vedaldi, Zisserman, "Deep Face Recognition", BMVC 2015, table 3 and sec. 4.
Simonyan & Zisserman, "Very Deep Convolutional Networks", ICLR 2015 (configuration D).
"""
from __future__ import annotations

import numpy as np

from .._validation import as_generator, check_choice, check_in_range, check_int_pair, check_positive_int
from ..nn import Conv2d, Dense, Dropout, Flatten, L2Normalize, MaxPool2d, ReLU, Sequential, Softmax
from .facenet import FaceNetwork, scaled_channels

__all__ = ["vgg_face", "VGG_FACE_BLOCKS", "VGG_FACE_FC"]

#: The five convolution blocks: (number of 3x3 convs, output channels).
VGG_FACE_BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
#: fc6 and fc7 widths; fc8 has ``num_classes`` (2622 identities in the paper).
VGG_FACE_FC = 4096
HEADS = ("classifier", "embedding")


def vgg_face(input_size=224, num_classes=2622, *, head="classifier", embedding_dim=1024, with_softmax=False,
             dropout=0.0, width_divisor=1, rng=None, dtype=np.float32, init="he_normal"):
    """VGG-Face: the VGG-16 configuration trained on 2622 identities.

    Parameters
    ----------
    input_size : int or (H, W)
        224 in the paper (at least 32: five 2x2 pools).
    num_classes : int
        Width of fc8 (classifier head).
    head : {'classifier', 'embedding'}
        See the module docstring.
    embedding_dim : int
        Output of the triplet projection (embedding head; 1024 in the paper).
    with_softmax : bool
        Classifier head: end with the ``prob`` softmax layer (the table's last row).
    dropout : float in [0, 1)
        Dropout after relu6 and relu7 when > 0 (0.5 in the paper's training).
    width_divisor : int
        Divide every conv's channels and the fc widths by this (8: a small model for gradchecks).
    rng : numpy.random.Generator or int, optional
        Seeds every initialiser and the dropout masks.
    dtype : float dtype
    init : str or callable
        Weight initialiser (``'zeros'`` when only the shapes and counts matter).

    Returns
    -------
    FaceNetwork
        ``(N, 3, H, W) -> (N, num_classes)`` logits (or probabilities with ``with_softmax``),
        or ``(N, embedding_dim)`` for the embedding head.

    Notes
    -----
    At 224x224 with 2622 classes: 145.0M parameters (103M of them in fc6) and
    15.5G multiply-adds.

    References
    ----------
    Parkhi et al., "Deep Face Recognition", BMVC 2015, table 3.
    """
    h, w = check_int_pair(input_size, "input_size")
    num_classes = check_positive_int(num_classes, "num_classes")
    embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
    head = check_choice(head, "head", HEADS)
    dropout = check_in_range(dropout, "dropout", 0.0, 1.0, inclusive=(True, False))
    width_divisor = check_positive_int(width_divisor, "width_divisor")
    rng = as_generator(rng, allow_none=True)
    p = dict(rng=rng, dtype=dtype, init=init)
    layers, c = {}, 3
    for block, (convs, channels) in enumerate(VGG_FACE_BLOCKS, start=1):
        for i in range(1, convs + 1):
            out = scaled_channels(channels, width_divisor)
            layers[f"conv{block}_{i}"] = Conv2d(c, out, 3, padding=1, **p)
            layers[f"relu{block}_{i}"] = ReLU()
            c = out
        layers[f"pool{block}"] = MaxPool2d(2, stride=2)
    _, fh, fw = Sequential(dict(layers)).output_shape((3, h, w))
    fc = scaled_channels(VGG_FACE_FC, width_divisor)
    layers["fc6"] = Conv2d(c, fc, (fh, fw), **p)            # support 7 at 224: the whole 7x7 map
    layers["relu6"] = ReLU()
    if dropout:
        layers["drop6"] = Dropout(dropout, rng=rng)
    layers["fc7"] = Conv2d(fc, fc, 1, **p)
    layers["relu7"] = ReLU()
    if dropout:
        layers["drop7"] = Dropout(dropout, rng=rng)
    if head == "classifier":
        layers["fc8"] = Conv2d(fc, num_classes, 1, **p)
        layers["flatten"] = Flatten()
        if with_softmax:
            layers["prob"] = Softmax()
    else:
        layers["flatten"] = Flatten()
        layers["l2"] = L2Normalize()
        layers["projection"] = Dense(fc, embedding_dim, bias=False, **p)
    return FaceNetwork(layers, input_shape=(3, h, w), architecture="VGG-Face")
