"""dlib's 128-d face descriptor: a 29-layer ResNet, built from scratchface's layers, with its trained weights.

Davis King's ``dlib_face_recognition_resnet_model_v1`` (CC0; 99.38% on LFW)
maps a 150x150 RGB face crop, aligned as dlib's ``get_face_chip`` does, to a
128-d vector; two faces are the same person when their *Euclidean* distance is
below 0.6. The weights ship as ``scratchface/data/dlib_face_recognition.npz``,
converted by ``experiments.convert_dlib`` from face-api's
TF.js copy of them (8-bit quantised; see ``DLIB_FACE_RECOGNITION_LICENSE.txt``).

The network, as dlib defines it (``dnn_face_recognition_ex.cpp``) and
face-api.js rebuilds it (``src/faceRecognitionNet``)::

    input 150x150x3: (pixel - mean RGB) / 256
    conv 7x7/2, 32, no padding -> affine -> ReLU                 72x72x32
    max pool 3x3/2, no padding                                   35x35x32
    3 residual blocks, 32                                        35x35x32
    residual down block -> 64, then 3 residual blocks            17x17x64
    residual down block -> 128, then 2 residual blocks           8x8x128
    residual down block -> 256, then 2 residual blocks           4x4x256   (3x3 padded to 4x4)
    residual down block -> 256                                   2x2x256   (1x1 padded to 2x2)
    global average pool, fc 256 -> 128 (no bias)                 128

A *residual block* is ``relu(x + affine(conv3x3(relu(affine(conv3x3(x))))))``
(3x3 convolutions padded by 1). A *residual down block* halves the size: its
first convolution has stride 2 and no padding, and the shortcut is a 2x2/2
average pool of ``x`` with zero channels appended up to the new width. When the
branch is smaller than the pooled shortcut (3x3 vs 4x4, 1x1 vs 2x2), it is
zero-padded at the bottom and right (dlib's ``add_prev`` adds tensors of
different sizes as if the smaller were zero-padded). The *affine* layer is
dlib's frozen batch normalisation: ``x * gamma_c + beta_c`` per channel
(face-api calls it ``scale``).

Where this departs from face-api.js: the input is divided by 256, as dlib's
``input_rgb_image`` does, not by 255 (face-api's choice), so that the
descriptors match dlib's own. The quantised weights differ from dlib's float
ones by at most half a quantisation step; descriptors agree with dlib's to a
cosine similarity above 0.999 (see ``tests/test_dlib_embedding.py``).

References
----------
D. King, "High Quality Face Recognition with Deep Metric Learning", dlib blog,
2017 (http://blog.dlib.net/2017/02/high-quality-face-recognition-with-deep.html).
K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016 (the blocks; dlib's net is ResNet-34 with fewer filters).
"""
from __future__ import annotations

import functools
import os

import numpy as np

from .._validation import check_array, check_float_array, check_positive_int
from ..backend import get_array_module
from ..data.weights import check_weight_shapes, read_verified_npz, resolve_weights_path
from ..layers.activations import relu_forward
from ..layers.conv import conv2d_forward
from ..layers.dense import dense_forward
from ..layers.pooling import avg_pool2d_forward, max_pool2d_forward

__all__ = [
    "ARCHITECTURE",
    "EMBEDDING_DIM",
    "INPUT_SIZE",
    "MEAN_RGB",
    "PIXEL_SCALE",
    "WEIGHTS_PATH",
    "WEIGHTS_SHA256",
    "WEIGHT_SHAPES",
    "dlib_resnet_forward",
    "load_dlib_weights",
    "preprocess",
    "residual_block",
    "residual_down_block",
]

WEIGHTS_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                            "dlib_face_recognition.npz")
#: SHA-256 of the shipped file, as printed by ``python -m experiments.convert_dlib``.
WEIGHTS_SHA256 = "47e6dfcf41c85840cf8797d166e56fe3bb905fbb2f6fa0a448e7346fb678009c"

INPUT_SIZE = 150        #: side of the aligned RGB crop, pixels
EMBEDDING_DIM = 128     #: length of the descriptor
MEAN_RGB = (122.782, 117.001, 104.298)  #: dlib's ``input_rgb_image`` means, subtracted from each channel
PIXEL_SCALE = 256.0     #: dlib divides by 256 after subtracting the mean (face-api by 255)

#: The blocks in order: (name, kind, output channels). ``'stem'``: conv 7x7/2 + affine + ReLU
#: then max pool 3x3/2; ``'residual'`` and ``'down'`` as in the module docstring.
ARCHITECTURE = (
    ("conv32_down", "stem", 32),
    ("conv32_1", "residual", 32), ("conv32_2", "residual", 32), ("conv32_3", "residual", 32),
    ("conv64_down", "down", 64),
    ("conv64_1", "residual", 64), ("conv64_2", "residual", 64), ("conv64_3", "residual", 64),
    ("conv128_down", "down", 128), ("conv128_1", "residual", 128), ("conv128_2", "residual", 128),
    ("conv256_down", "down", 256), ("conv256_1", "residual", 256), ("conv256_2", "residual", 256),
    ("conv256_down_out", "down", 256),
)


def _conv_shapes(prefix, c_in, c_out, k):
    return {f"{prefix}.conv.filters": (c_out, c_in, k, k), f"{prefix}.conv.bias": (c_out,),
            f"{prefix}.scale.weights": (c_out,), f"{prefix}.scale.biases": (c_out,)}


def _weight_shapes():
    shapes, c_in = {}, 3
    for name, kind, c_out in ARCHITECTURE:
        if kind == "stem":
            shapes.update(_conv_shapes(name, c_in, c_out, 7))
        else:
            shapes.update(_conv_shapes(f"{name}.conv1", c_in, c_out, 3))
            shapes.update(_conv_shapes(f"{name}.conv2", c_out, c_out, 3))
        c_in = c_out
    shapes["fc"] = (c_in, EMBEDDING_DIM)
    return shapes


#: Every (dequantised, float32) array the network needs, with its shape: 29 convolutions + fc.
WEIGHT_SHAPES = _weight_shapes()


# ----------------------------------------------------------------------------- weights
def _dequantize(arrays, key, path):
    """``key`` from the npz: stored float32, or uint8 ``q`` with ``scale`` and ``min``."""
    if key in arrays:
        return arrays[key]
    if f"{key}.q" not in arrays:
        raise ValueError(f"dlib weights file {path} lacks the array {key!r}")
    q, scale, minimum = arrays[f"{key}.q"], arrays[f"{key}.scale"], arrays[f"{key}.min"]
    if q.dtype != np.uint8 or scale.shape != () or minimum.shape != ():
        raise ValueError(f"dlib weights file {path}: {key} must be uint8 with scalar scale and min")
    return (q.astype(np.float64) * float(scale) + float(minimum)).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _load_verified(path: str, expected_sha256):
    arrays = read_verified_npz(path, expected_sha256, what="dlib face recognition weights file", remedy=(
        "Reinstall scratchface, or re-create the file with 'npm pack @vladmandic/face-api@1.7.15' and "
        "'python -m experiments.convert_dlib vladmandic-face-api-1.7.15.tgz'"))
    weights = {key: _dequantize(arrays, key, path) for key in WEIGHT_SHAPES}
    return check_weight_shapes(weights, WEIGHT_SHAPES, path, "dlib weights file")


def load_dlib_weights(path=None, *, sha256="default") -> dict:
    """The ResNet's weights, dequantised to float32, as a dict of read-only arrays.

    Parameters
    ----------
    path : path, optional
        An ``.npz`` made by ``experiments.convert_dlib``; default
        the file shipped in ``scratchface/data``.
    sha256 : str or None
        Expected SHA-256 of the file. ``'default'``: the shipped file's checksum
        when ``path`` is the shipped file, no check for a user's own file;
        ``None``: no check.

    Returns
    -------
    weights : dict of str to ndarray
        Keys as in :data:`WEIGHT_SHAPES` (``'conv32_1.conv2.conv.filters'``,
        ``'fc'``...); conv filters (F, C, KH, KW), ``fc`` (256, 128). Loaded
        once per path and cached.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A checksum that differs (a corrupt or modified file), a file that is not
        a pickle-free ``.npz``, a missing array or one of the wrong shape.

    Notes
    -----
    A quantised tensor is stored as ``q`` (uint8) with two scalars and restored
    as :math:`w = q \\cdot \\mathrm{scale} + \\mathrm{min}` (TF.js's rule).
    """
    return _load_verified(*resolve_weights_path(path, WEIGHTS_PATH, WEIGHTS_SHA256, sha256, "dlib weights file"))


# ----------------------------------------------------------------------------- the network
def preprocess(crops):
    """Aligned RGB crops (N, 150, 150, 3) on 0..255 -> the network's input (N, 3, 150, 150) float32.

    Each channel has dlib's mean subtracted, then is divided by 256:
    :math:`x = (p - \\mu_c) / 256`, :math:`\\mu = (122.782, 117.001, 104.298)`.
    A single crop (150, 150, 3) is taken as a batch of one.
    """
    check_array(crops, "crops", ndim=(3, 4), dtype_kind="buif", finite=True)
    xp = get_array_module(crops)
    if crops.ndim == 3:
        crops = crops[None]
    if crops.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
        raise ValueError(f"crops must be RGB {INPUT_SIZE}x{INPUT_SIZE} faces, shape (N, {INPUT_SIZE}, "
                         f"{INPUT_SIZE}, 3), got {crops.shape}; align them with "
                         "scratchface.recognition.pipeline.align_dlib")
    mean = xp.asarray(MEAN_RGB, dtype=xp.float32)
    x = (crops.astype(xp.float32) - mean) / xp.float32(PIXEL_SCALE)
    return xp.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _conv_affine(x, weights, prefix, *, stride, padding, relu):
    """conv -> per-channel affine (dlib's frozen batch norm) -> optional ReLU."""
    out, _ = conv2d_forward(x, weights[f"{prefix}.conv.filters"], weights[f"{prefix}.conv.bias"],
                            stride=stride, padding=padding)
    gamma = weights[f"{prefix}.scale.weights"][:, None, None]
    beta = weights[f"{prefix}.scale.biases"][:, None, None]
    out = out * gamma + beta
    if relu:
        out, _ = relu_forward(out)
    return out


def residual_block(x, weights, name):
    """``relu(x + affine(conv(relu(affine(conv(x))))))``, two 3x3 convolutions padded by 1."""
    out = _conv_affine(x, weights, f"{name}.conv1", stride=1, padding=1, relu=True)
    out = _conv_affine(out, weights, f"{name}.conv2", stride=1, padding=1, relu=False)
    out, _ = relu_forward(out + x)
    return out


def residual_down_block(x, weights, name):
    """A block that halves the size: 3x3/2 unpadded then 3x3 padded; shortcut avg pool 2x2/2, zero channels."""
    xp = get_array_module(x)
    out = _conv_affine(x, weights, f"{name}.conv1", stride=2, padding=0, relu=True)
    out = _conv_affine(out, weights, f"{name}.conv2", stride=1, padding=1, relu=False)
    shortcut, _ = avg_pool2d_forward(x, kernel_size=2, stride=2)
    extra_h, extra_w = shortcut.shape[2] - out.shape[2], shortcut.shape[3] - out.shape[3]
    if extra_h or extra_w:  # e.g. 3x3 branch + 4x4 shortcut: pad the branch at the bottom / right
        out = xp.pad(out, ((0, 0), (0, 0), (0, extra_h), (0, extra_w)))
    extra_c = out.shape[1] - shortcut.shape[1]
    if extra_c:  # the shortcut gets zero channels up to the branch's width
        shortcut = xp.pad(shortcut, ((0, 0), (0, extra_c), (0, 0), (0, 0)))
    out, _ = relu_forward(out + shortcut)
    return out


def dlib_resnet_forward(x, weights=None, *, return_features=False):
    """dlib's ResNet on a preprocessed batch: (N, 3, 150, 150) -> (N, 128) descriptors.

    Parameters
    ----------
    x : float array, shape (N, 3, 150, 150)
        The output of :func:`preprocess` (float32 is the fast path).
    weights : dict, optional
        As returned by :func:`load_dlib_weights` (default: the shipped weights).
    return_features : bool
        Also return the feature map of every block, by name (for lectures).

    Returns
    -------
    descriptors : array, shape (N, 128), dtype of ``x``
        Not normalised; dlib's faces are "the same" below Euclidean distance 0.6.
    features : dict of str to array, only with ``return_features``

    Raises
    ------
    ValueError
        Wrong shape or NaN / inf values.
    """
    check_float_array(x, "x", ndim=4)
    if x.shape[1:] != (3, INPUT_SIZE, INPUT_SIZE):
        raise ValueError(f"x must have shape (N, 3, {INPUT_SIZE}, {INPUT_SIZE}) (see preprocess), got {x.shape}")
    weights = load_dlib_weights() if weights is None else weights
    if x.dtype != weights["fc"].dtype:
        weights = {k: v.astype(x.dtype) for k, v in weights.items()}
    features = {}
    out = x
    for name, kind, _ in ARCHITECTURE:
        if kind == "stem":
            out = _conv_affine(out, weights, name, stride=2, padding=0, relu=True)
            out, _ = max_pool2d_forward(out, kernel_size=3, stride=2)
        elif kind == "residual":
            out = residual_block(out, weights, name)
        else:
            out = residual_down_block(out, weights, name)
        if return_features:
            features[name] = out
    pooled = out.mean(axis=(2, 3))
    descriptors, _ = dense_forward(pooled, weights["fc"])
    return (descriptors, features) if return_features else descriptors


def embed_crops(crops, weights=None, *, batch_size=32):
    """Descriptors of aligned RGB crops (N, 150, 150, 3) on 0..255, in batches: (N, 128) float32."""
    check_array(crops, "crops", ndim=(3, 4), dtype_kind="buif")
    batch_size = check_positive_int(batch_size, "batch_size")
    crops = crops[None] if crops.ndim == 3 else crops
    xp = get_array_module(crops)
    out = xp.zeros((len(crops), EMBEDDING_DIM), xp.float32)
    for start in range(0, len(crops), batch_size):
        out[start:start + batch_size] = dlib_resnet_forward(preprocess(crops[start:start + batch_size]), weights)
    return out
