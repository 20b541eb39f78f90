"""The small embedding networks trained from scratch on ORL: the whole face, one face patch, DeepID2's features.

All three are made of the project's own modules (:mod:`scratchface.nn`):
``conv-bn-relu(c1), maxpool 2, conv-bn-relu(c2), maxpool 2, residual(c2),
conv-bn-relu(c3), maxpool 2, residual(c3)``, then a dense layer from the
whole last feature map to the embedding (about 0.46 M parameters for the
56 x 48 input of :func:`scratchface.recognition.orl_preprocessing.preprocess_orl`).

* :func:`build_embedding_net`: FaceNet-style, trained with the triplet loss or
  ArcFace (:mod:`scratchface.recognition.orl_embedding` ships the weights);
* :func:`build_patch_net`: the same blocks for any patch size (DeepID's
  one network per face region, :mod:`scratchface.recognition.patch_ensemble`);
* :func:`build_deepid2_net`: a 160-d output followed by a ReLU, DeepID2's feature
  layer (:mod:`scratchface.losses.deepid2`).

The training runs are in ``experiments/`` (``python -m experiments.orl_embedding``,
``experiments.patch_ensemble``, ``experiments.deepid2``).

References
----------
He et al., "Deep residual learning", CVPR 2016 (the residual block).
Sun, Wang and Tang, "Deep learning face representation from predicting 10,000 classes", CVPR 2014 (DeepID).
Sun, Chen, Wang and Tang, "Deep learning face representation by joint identification-verification",
NIPS 2014 (DeepID2).
"""
from __future__ import annotations

from .. import nn
from .._validation import as_generator, check_choice, check_positive_int
from ..data.orl import INPUT_SIZE

__all__ = ["FEATURE_DIM", "build_deepid2_net", "build_embedding_net", "build_patch_net"]

FEATURE_DIM = 160  #: DeepID2's feature length


def _conv_bn_relu(c_in, c_out, rng):
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False, rng=rng), nn.BatchNorm(c_out), nn.ReLU()]


def _residual(channels, rng):
    body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False, rng=rng),
                         nn.BatchNorm(channels), nn.ReLU(),
                         nn.Conv2d(channels, channels, 3, padding=1, bias=False, rng=rng),
                         nn.BatchNorm(channels))
    return [nn.Residual(body), nn.ReLU()]


def build_embedding_net(*, channels=(16, 32, 64), embedding_dim=128, input_size=INPUT_SIZE, head="flatten",
                        dropout=0.0, rng=0):
    """The embedding network, input (N, 1, H, W), output (N, embedding_dim) (not yet normalised).

    ``conv-bn-relu(c1), maxpool 2, conv-bn-relu(c2), maxpool 2, residual(c2),
    conv-bn-relu(c3), maxpool 2, residual(c3)``, then ``head``: ``'flatten'``
    (a dense layer on the whole ``c3 x H/8 x W/8`` map: it keeps where on the
    face each feature is) or ``'avgpool'`` (global average pooling, then dense).

    Parameters
    ----------
    channels : three ints
    embedding_dim : int
    input_size : (H, W)
        Divisible by 8.
    head : {'flatten', 'avgpool'}
    dropout : float in [0, 1)
        Dropout before the last dense layer (training only).
    rng : numpy.random.Generator or int
        Seeds every initialiser and the dropout masks.
    """
    rng = as_generator(rng, allow_none=True)
    c1, c2, c3 = (check_positive_int(c, "channels") for c in channels)
    embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
    h, w = input_size
    if h % 8 or w % 8:
        raise ValueError(f"input_size must be divisible by 8 (three 2x2 poolings), got {input_size}")
    check_choice(head, "head", ("flatten", "avgpool"))
    dropout_layer = [nn.Dropout(dropout, rng=rng)] if dropout > 0 else []
    layers = (_conv_bn_relu(1, c1, rng) + [nn.MaxPool2d(2)]
              + _conv_bn_relu(c1, c2, rng) + [nn.MaxPool2d(2)] + _residual(c2, rng)
              + _conv_bn_relu(c2, c3, rng) + [nn.MaxPool2d(2)] + _residual(c3, rng))
    if head == "avgpool":
        layers += [nn.AvgPool2d((h // 8, w // 8)), nn.Flatten()] + dropout_layer + [
            nn.Dense(c3, embedding_dim, rng=rng)]
    else:
        layers += [nn.Flatten()] + dropout_layer + [nn.Dense(c3 * (h // 8) * (w // 8), embedding_dim, rng=rng)]
    return nn.Sequential(*layers)


def build_patch_net(input_size, *, channels=(16, 32, 64), embedding_dim=128, rng=0):
    """:func:`build_embedding_net`'s blocks for any patch size.

    Inputs whose sides are multiples of 8 and at least 32 get its three 2 x 2
    poolings; smaller or odd ones (the 28 x 24 ``coarse`` patch) two, the
    second residual stage then working at a quarter of the input's resolution.
    """
    h, w = (check_positive_int(s, "input_size") for s in input_size)
    if h % 8 == 0 and w % 8 == 0 and min(h, w) >= 32:
        return build_embedding_net(channels=channels, embedding_dim=embedding_dim, input_size=(h, w), rng=rng)
    if h % 4 or w % 4:
        raise ValueError(f"input_size must be multiples of 4 (two 2x2 poolings), got {input_size}")
    rng = as_generator(rng, allow_none=True)
    c1, c2, c3 = (check_positive_int(c, "channels") for c in channels)
    layers = (_conv_bn_relu(1, c1, rng) + [nn.MaxPool2d(2)]
              + _conv_bn_relu(c1, c2, rng) + _residual(c2, rng) + [nn.MaxPool2d(2)]
              + _conv_bn_relu(c2, c3, rng) + _residual(c3, rng)
              + [nn.Flatten(), nn.Dense(c3 * (h // 4) * (w // 4), check_positive_int(embedding_dim, "embedding_dim"),
                                        rng=rng)])
    return nn.Sequential(*layers)


def build_deepid2_net(*, feature_dim=FEATURE_DIM, channels=(16, 32, 64), input_size=(56, 48), rng=0):
    """The feature network: ``build_embedding_net(embedding_dim=feature_dim)`` then a ReLU (the DeepID2 layer).

    Input (N, 1, H, W) as :func:`scratchface.recognition.orl_preprocessing.preprocess_orl` makes it,
    output (N, feature_dim), non-negative.
    """
    body = build_embedding_net(channels=channels, embedding_dim=feature_dim, input_size=input_size, rng=rng)
    return nn.Sequential(body, nn.ReLU())
