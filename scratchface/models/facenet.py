"""FaceNet's networks (Schroff et al. 2015): NN1, NN2, NN3, NN4, NNS1, NNS2.

Each builder returns a :class:`FaceNetwork`, a :class:`~scratchface.nn.Sequential`
whose named layers follow the paper's table row by row, and which knows the
input it was built for::

    from scratchface.models import nn2
    net = nn2()                 # 224x224x3 -> 128-d unit vectors
    net.print_summary()         # FaceNet table 2: output sizes, params, FLOPs per layer
    emb = net.forward(x)        # x: (N, 3, 224, 224) float32

=====  ===============================================  =======  =================
model  architecture                                     input    paper (table 3)
=====  ===============================================  =======  =================
NN1    Zeiler & Fergus + 1x1 convs, maxout fc (tab. 1)  220x220  140M params, 1.6B
NN2    inception with L2 pooling (table 2)              224x224  7.5M, 1.6B
NN3    NN2                                              160x160  7.5M
NN4    NN2                                              96x96    7.5M, 285M (text)
NNS1   "mini" inception (not tabulated; our choice)     165x165  26M, 220M (text)
NNS2   "tiny" inception (not tabulated; our choice)     140x116  4.3M, 20M (text)
=====  ===============================================  =======  =================

FLOPs count multiply-adds, bias adds included (see :mod:`scratchface.nn.layers`).
Counted that way (weights + biases, one multiply-add per weight per output
position plus one for the bias), every row of tables 1 and 2 rounds to the
printed value, with one exception: NN2's inception (4a) has 544,768 weights +
768 biases = 545,536 parameters, which rounds to 546K; the table's 545K is the
weights alone. ``tests/test_models_tables.py`` checks every row.

What the paper leaves open, and what we chose
---------------------------------------------
- **Padding.** Not given. Every convolution is padded to keep its size
  (``k // 2``) and every 3x3 stride-2 max pool has padding 1, which gives the
  tables' sizes exactly (220 -> 110 -> 55 -> 28 -> 14 -> 7 for NN1,
  224 -> 112 -> 56 -> 28 -> 14 -> 7 for NN2).
- **Normalisation.** "rnorm" / "norm" is local response normalisation with
  GoogLeNet's settings: ``size=5, alpha=1e-4, beta=0.75, k=1``. NN2's two "norm"
  rows sit where the table says: after the first max pool ("max pool + norm")
  and before the second ("norm + max pool").
- **Activations.** ReLU after every convolution (inside the inception blocks
  too); NN1's fully connected layers use maxout with ``p = 2`` instead (each fc
  layer has ``2 * 4096`` outputs, maxout keeps 4096: "1x32x128"), and the
  embedding layer is linear, then L2-normalised.
- **Inception (2)** of NN2 is not an inception block: "depth 2, #3x3 reduce 64,
  #3x3 192" is a 1x1 conv to 64 channels then a 3x3 conv to 192 (as in GoogLeNet's
  conv2), each with a ReLU; this reproduces the row's 115K / 360M exactly.
- **NN1's "concat" row** (7x7x256 -> 7x7x256, no parameters) is not explained
  in the paper; with a single tower it is the identity, so it is left out.
- **Final pooling of NN2 / NN3 / NN4** is a global average: its window is the
  last feature map (7x7 at 224, 5x5 at 160, 3x3 at 96), so the fully connected
  layer has the same 1024 x 128 weights at every input size and the three
  models have the same parameters (the paper's 7.5M).
- **NNS1, NNS2.** The paper gives only their input sizes and, in the text,
  their budgets (NNS1 26M parameters, 220M FLOPs; NNS2 4.3M, 20M). Our versions
  keep NN2's layout with fewer channels and replace the global average pool by
  a flatten and a large fully connected layer (the only way to hold many
  parameters for few FLOPs). NNS1: NN2's stem (conv1, inception (2)) with a
  quarter of the channels, the ten blocks with half, the last 6x6x512 map
  flattened -> fc 1300 + ReLU -> fc 128: 25.9M parameters, 225M FLOPs. NNS2: stem
  channels / 9, blocks 3a, 3c, 4a, 4e, 5a with a quarter of the channels, the
  last 5x4x256 map flattened -> fc 780 + ReLU -> fc 128: 4.31M parameters, 20.1M
  FLOPs. See :data:`NNS_CONFIGS`.

References
----------
Schroff, Kalenichenko, Philbin, "FaceNet: A Unified Embedding for Face
Recognition and Clustering", CVPR 2015, tables 1-3.
Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014.
Szegedy et al., "Going deeper with convolutions", CVPR 2015 (inception, LRN settings).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import as_generator, check_int_pair, check_positive_int
from ..nn import LRN, AvgPool2d, Conv2d, Dense, Flatten, Inception, L2Normalize, Maxout, MaxPool2d, ReLU, Sequential
from ..nn.module import check_input_shape
from ..nn.summary import print_summary, summary

__all__ = ["FaceNetwork", "nn1", "nn2", "nn3", "nn4", "nns1", "nns2", "NN1_TABLE", "NN2_TABLE",
           "NNS_CONFIGS", "InceptionRow", "LRN_SETTINGS", "scaled_channels"]

#: Local response normalisation of the "norm" rows (GoogLeNet's / AlexNet's values; torch's form).
LRN_SETTINGS = dict(size=5, alpha=1e-4, beta=0.75, k=1.0)


class FaceNetwork(Sequential):
    """A :class:`~scratchface.nn.Sequential` built for one input size, which it checks.

    Parameters
    ----------
    layers : dict of str to Module
        The named layers, in order (the names show in the summary and the saved weights).
    input_shape : (C, H, W)
        The input of one sample the network was built for.
    architecture : str
        The model's name, used in messages (``'NN2'``).

    Raises
    ------
    ValueError
        From ``forward`` and ``output_shape``: an input whose channels or size
        differ from ``input_shape``; the message names the expected shape.
    """

    def __init__(self, layers, *, input_shape, architecture):
        super().__init__(dict(layers))
        self.input_shape = tuple(int(s) for s in input_shape)
        self.architecture = str(architecture)

    def _expect(self, shape):
        if tuple(shape) != self.input_shape:
            c, h, w = self.input_shape
            raise ValueError(f"{self.architecture} expects input of shape (N, {c}, {h}, {w}) "
                             f"({h}x{w} pixels, {c} channels), got {shape}")

    def forward(self, x):
        check_input_shape(x, self.architecture, self.input_shape)
        return super().forward(x)

    def output_shape(self, input_shape=None):
        input_shape = self.input_shape if input_shape is None else tuple(input_shape)
        self._expect(input_shape)
        return super().output_shape(input_shape)

    def flops(self, input_shape=None):
        input_shape = self.input_shape if input_shape is None else tuple(input_shape)
        self._expect(input_shape)
        return super().flops(input_shape)

    def summary(self, *, max_depth=1) -> str:
        """The table of layers at the built input size (:func:`scratchface.nn.summary`)."""
        return summary(self, self.input_shape, max_depth=max_depth)

    def print_summary(self, *, max_depth=1) -> None:
        print_summary(self, self.input_shape, max_depth=max_depth)

    def extra_repr(self):
        c, h, w = self.input_shape
        return f"{self.architecture}, input {h}x{w}x{c}"


def scaled_channels(channels, width_divisor):
    """``channels // width_divisor`` (at least 1; 0 stays 0: "no branch")."""
    return 0 if channels == 0 else max(1, channels // width_divisor)


def _conv_relu(layers, name, c_in, c_out, k, *, stride=1, **init):
    """Add the table row ``name``: a conv padded to keep the size (or halve it at stride 2), then a ReLU."""
    layers[name] = Sequential(dict(conv=Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, **init), relu=ReLU()))
    return c_out


def _max_pool_3x3_2():
    """The 3x3 stride-2 max pool of both tables, padded by 1 so that 110 -> 55 -> 28 -> 14 -> 7."""
    return MaxPool2d(3, stride=2, padding=1)


def _check_common(embedding_dim, width_divisor):
    return check_positive_int(embedding_dim, "embedding_dim"), check_positive_int(width_divisor, "width_divisor")


# ===================================================================== NN1
#: FaceNet table 1 (NN1) convolutions: (name, filters, kernel, stride); pools and norms go between.
NN1_TABLE = (
    ("conv1", 64, 7, 2), ("pool1",), ("rnorm1",),
    ("conv2a", 64, 1, 1), ("conv2", 192, 3, 1), ("rnorm2",), ("pool2",),
    ("conv3a", 192, 1, 1), ("conv3", 384, 3, 1), ("pool3",),
    ("conv4a", 384, 1, 1), ("conv4", 256, 3, 1),
    ("conv5a", 256, 1, 1), ("conv5", 256, 3, 1),
    ("conv6a", 256, 1, 1), ("conv6", 256, 3, 1), ("pool4",),
)
NN1_FC_UNITS = 4096      # "1x32x128": each maxout fc layer keeps 32 * 128 units
NN1_MAXOUT_PIECES = 2


def nn1(input_size=220, embedding_dim=128, *, width_divisor=1, rng=None, dtype=np.float32, init="he_normal"):
    """FaceNet NN1: Zeiler & Fergus's network with 1x1 convolutions and maxout fc layers (table 1).

    Parameters
    ----------
    input_size : int or (H, W)
        220 in the paper. Any size the five stride-2 stages reduce to at least 1x1.
    embedding_dim : int
        Size of the L2-normalised embedding (128 in the paper).
    width_divisor : int
        Divide every layer's channels (and the fc units) by this (e.g. 8 for a
        small model that gradchecks quickly); 1 is the paper's network.
    rng : numpy.random.Generator or int, optional
        Seeds every initialiser (one generator, drawn layer by layer).
    dtype : float dtype
        Of the parameters (float32; float64 for gradchecks).
    init : str or callable
        Weight initialiser of every conv / fc layer (:mod:`scratchface.nn.init`; biases start at 0).
        ``'zeros'`` builds quickly when only the shapes and counts matter.

    Returns
    -------
    FaceNetwork
        ``(N, 3, H, W) -> (N, embedding_dim)``, rows of unit length.

    Notes
    -----
    conv1 7x7/2 -> pool1 3x3/2 -> rnorm1 -> conv2a 1x1 -> conv2 3x3 -> rnorm2 -> pool2 ->
    conv3a, conv3 -> pool3 -> conv4a, conv4, conv5a, conv5, conv6a, conv6 -> pool4 ->
    fc1 (maxout p=2) -> fc2 (maxout p=2) -> fc7128 -> L2. At 220x220: 140M parameters
    (103M in fc1) and 1.6B multiply-adds. See the module docstring for the choices.

    References
    ----------
    FaceNet table 1.
    """
    embedding_dim, width_divisor = _check_common(embedding_dim, width_divisor)
    h, w = check_int_pair(input_size, "input_size")
    p = dict(rng=as_generator(rng, allow_none=True), dtype=dtype, init=init)
    layers, c = {}, 3
    for row in NN1_TABLE:
        name = row[0]
        if name.startswith("conv"):
            c = _conv_relu(layers, name, c, scaled_channels(row[1], width_divisor), row[2], stride=row[3], **p)
        elif name.startswith("pool"):
            layers[name] = _max_pool_3x3_2()
        else:
            layers[name] = LRN(**LRN_SETTINGS)
    layers["flatten"] = Flatten()
    features = Sequential(dict(layers)).output_shape((3, h, w))
    units = scaled_channels(NN1_FC_UNITS, width_divisor)
    d = int(np.prod(features))
    for name in ("fc1", "fc2"):
        layers[name] = Sequential(dict(fc=Dense(d, units * NN1_MAXOUT_PIECES, **p),
                                       maxout=Maxout(NN1_MAXOUT_PIECES)))
        d = units
    layers["fc7128"] = Dense(d, embedding_dim, **p)
    layers["l2"] = L2Normalize()
    return FaceNetwork(layers, input_shape=(3, h, w), architecture="NN1")


# ===================================================================== NN2 family
class InceptionRow(NamedTuple):
    """One row of FaceNet table 2: the columns of :class:`scratchface.nn.Inception`."""
    name: str
    n1x1: int
    n3x3_reduce: int
    n3x3: int
    n5x5_reduce: int
    n5x5: int
    pool: str
    pool_proj: int
    stride: int


#: FaceNet table 2 (NN2): stem filters, inception (2) and the inception blocks in order.
NN2_TABLE = dict(
    conv1=64,                       # 7x7x3, stride 2
    inception_2=(64, 192),          # 1x1 reduce 64, then 3x3 192
    blocks=(
        InceptionRow("3a", 64, 96, 128, 16, 32, "max", 32, 1),
        InceptionRow("3b", 64, 96, 128, 32, 64, "l2", 64, 1),
        InceptionRow("3c", 0, 128, 256, 32, 64, "max", 0, 2),
        InceptionRow("4a", 256, 96, 192, 32, 64, "l2", 128, 1),
        InceptionRow("4b", 224, 112, 224, 32, 64, "l2", 128, 1),
        InceptionRow("4c", 192, 128, 256, 32, 64, "l2", 128, 1),
        InceptionRow("4d", 160, 144, 288, 32, 64, "l2", 128, 1),
        InceptionRow("4e", 0, 160, 256, 64, 128, "max", 0, 2),
        InceptionRow("5a", 384, 192, 384, 48, 128, "l2", 128, 1),
        InceptionRow("5b", 384, 192, 384, 48, 128, "max", 128, 1),
    ),
)

#: Our NNS1 / NNS2 (not tabulated in the paper): NN2's rows with the stem's channels divided by
#: ``stem_divisor`` and the blocks' by ``divisor``, only the listed blocks, and a flatten + fc
#: ``hidden`` head instead of the global average pool. Chosen to land on the paper's budgets.
NNS_CONFIGS = dict(
    nns1=dict(input_size=(165, 165), stem_divisor=4, divisor=2,
              blocks=("3a", "3b", "3c", "4a", "4b", "4c", "4d", "4e", "5a", "5b"), hidden=1300,
              paper_params=26e6, paper_flops=220e6),
    nns2=dict(input_size=(140, 116), stem_divisor=9, divisor=4, blocks=("3a", "3c", "4a", "4e", "5a"),
              hidden=780, paper_params=4.3e6, paper_flops=20e6),
)


def _inception_net(input_size, embedding_dim, *, architecture, divisor, blocks, head_hidden, rng, dtype,
                   init, stem_divisor=None):
    """The NN2 layout: stem, inception (2), inception blocks, then the embedding head.

    ``head_hidden=None``: global average pool -> fc -> L2 (NN2/3/4). Otherwise
    flatten -> fc ``head_hidden`` + ReLU -> fc -> L2 (our NNS1/NNS2).
    """
    h, w = check_int_pair(input_size, "input_size")
    p = dict(rng=as_generator(rng, allow_none=True), dtype=dtype, init=init)
    rows = {row.name: row for row in NN2_TABLE["blocks"]}
    layers = {}
    stem_divisor = divisor if stem_divisor is None else stem_divisor
    c = _conv_relu(layers, "conv1", 3, scaled_channels(NN2_TABLE["conv1"], stem_divisor), 7, stride=2, **p)
    layers["pool1_norm"] = Sequential(dict(pool=_max_pool_3x3_2(), norm=LRN(**LRN_SETTINGS)))
    reduce, out = (scaled_channels(v, stem_divisor) for v in NN2_TABLE["inception_2"])
    inception_2 = {}
    _conv_relu(inception_2, "reduce", c, reduce, 1, **p)
    c = _conv_relu(inception_2, "conv3x3", reduce, out, 3, **p)
    layers["inception_2"] = Sequential(inception_2)
    layers["norm_pool2"] = Sequential(dict(norm=LRN(**LRN_SETTINGS), pool=_max_pool_3x3_2()))
    for name in blocks:
        row = rows[name]
        block = Inception(c, *(scaled_channels(v, divisor) for v in row[1:6]), pool=row.pool,
                          pool_proj=scaled_channels(row.pool_proj, divisor), stride=row.stride, **p)
        layers[f"inception_{name}"] = block
        c = block.out_channels
    _, fh, fw = Sequential(dict(layers)).output_shape((3, h, w))
    if head_hidden is None:
        layers["avg_pool"] = AvgPool2d((fh, fw))
        layers["flatten"] = Flatten()
        d = c
    else:
        layers["flatten"] = Flatten()
        layers["fc_hidden"] = Sequential(dict(fc=Dense(c * fh * fw, head_hidden, **p), relu=ReLU()))
        d = head_hidden
    layers["fc"] = Dense(d, embedding_dim, **p)
    layers["l2"] = L2Normalize()
    return FaceNetwork(layers, input_shape=(3, h, w), architecture=architecture)


def nn2(input_size=224, embedding_dim=128, *, width_divisor=1, rng=None, dtype=np.float32, init="he_normal"):
    """FaceNet NN2: inception with L2 pooling (table 2).

    Parameters
    ----------
    input_size : int or (H, W)
        224 in the paper (NN3: 160, NN4: 96); at least 32 (five stride-2 stages).
    embedding_dim : int
        128 in the paper.
    width_divisor : int
        Divide every layer's channels by this (8: a small model for gradchecks).
    rng, dtype, init
        As :func:`nn1`.

    Returns
    -------
    FaceNetwork
        ``(N, 3, H, W) -> (N, embedding_dim)``, rows of unit length.

    Notes
    -----
    conv1 7x7/2 -> max pool 3x3/2 -> LRN -> inception (2) (1x1 64, 3x3 192) -> LRN ->
    max pool 3x3/2 -> inception 3a, 3b, 3c (stride 2), 4a-4d, 4e (stride 2), 5a, 5b ->
    global average pool -> fc 1024 -> 128 -> L2. At 224x224: 7.5M parameters,
    1.6B multiply-adds (each row of table 2 is reproduced; ``tests/test_models_tables.py``).

    References
    ----------
    FaceNet table 2; Szegedy et al. 2015 (GoogLeNet) for the inception block.
    """
    embedding_dim, width_divisor = _check_common(embedding_dim, width_divisor)
    return _inception_net(input_size, embedding_dim, architecture="NN2", divisor=width_divisor,
                          blocks=[row.name for row in NN2_TABLE["blocks"]], head_hidden=None, rng=rng, dtype=dtype,
                          init=init)


def nn3(input_size=160, embedding_dim=128, *, width_divisor=1, rng=None, dtype=np.float32, init="he_normal"):
    """FaceNet NN3: NN2 at 160x160 (same parameters, about half the FLOPs). See :func:`nn2`."""
    net = nn2(input_size, embedding_dim, width_divisor=width_divisor, rng=rng, dtype=dtype, init=init)
    net.architecture = "NN3"
    return net


def nn4(input_size=96, embedding_dim=128, *, width_divisor=1, rng=None, dtype=np.float32, init="he_normal"):
    """FaceNet NN4: NN2 at 96x96 (same parameters, 285M FLOPs in the paper). See :func:`nn2`."""
    net = nn2(input_size, embedding_dim, width_divisor=width_divisor, rng=rng, dtype=dtype, init=init)
    net.architecture = "NN4"
    return net


def _nns(key, architecture, input_size, embedding_dim, width_divisor, rng, dtype, init):
    embedding_dim, width_divisor = _check_common(embedding_dim, width_divisor)
    cfg = NNS_CONFIGS[key]
    return _inception_net(cfg["input_size"] if input_size is None else input_size, embedding_dim,
                          architecture=architecture, divisor=cfg["divisor"] * width_divisor,
                          stem_divisor=cfg["stem_divisor"] * width_divisor, blocks=cfg["blocks"],
                          head_hidden=scaled_channels(cfg["hidden"], width_divisor), rng=rng, dtype=dtype, init=init)


def nns1(input_size=None, embedding_dim=128, *, width_divisor=1, rng=None, dtype=np.float32, init="he_normal"):
    """Our FaceNet NNS1, the "mini inception" at 165x165 (not tabulated in the paper).

    The paper gives only the input size and the budget (26M parameters, 220M
    FLOPs). Ours: NN2's stem with a quarter of the channels, its ten blocks with
    half, the last 6x6x512 map flattened into fc 1300 -> 128 -> L2: 25.9M
    parameters and 225M FLOPs (see the module docstring).
    Parameters as :func:`nn2` (``input_size`` defaults to 165).
    """
    return _nns("nns1", "NNS1", input_size, embedding_dim, width_divisor, rng, dtype, init)


def nns2(input_size=None, embedding_dim=128, *, width_divisor=1, rng=None, dtype=np.float32, init="he_normal"):
    """Our FaceNet NNS2, the "tiny inception" at 140x116 (rows x cols; not tabulated in the paper).

    The paper gives only the input size and the budget (4.3M parameters, 20M
    FLOPs). Ours: NN2's stem with channels / 9, blocks 3a, 3c, 4a, 4e, 5a with a
    quarter of the channels, the last 5x4x256 map flattened into fc 780 -> 128 -> L2:
    4.31M parameters and 20.1M FLOPs. Parameters as :func:`nn2` (``input_size`` defaults to (140, 116)).
    """
    return _nns("nns2", "NNS2", input_size, embedding_dim, width_divisor, rng, dtype, init)
