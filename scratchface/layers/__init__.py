"""Layers as readable ``*_forward(...) -> (out, cache)`` / ``*_backward(dout, cache)`` pairs (NCHW).

One concept a module (``conv``, ``pooling``, ``activations``, ``normalization``, ``dense``,
``locally_connected``, ``dropout``, ``shape``, ``softmax``, ``roi``); every module also has
``gradcheck_cases(rng)``, the cases ``scratchface gradcheck`` and the tests check. The public names are
importable from here (``from scratchface.layers import conv2d_forward``); each module is imported the
first time one of its names is used.
"""
from __future__ import annotations

from .._lazy import lazy_exports

#: public name -> the module of this package that defines it
_EXPORTS = {
    "MaxoutCache": "activations", "PreluCache": "activations", "ReluCache": "activations",
    "maxout_backward": "activations", "maxout_forward": "activations", "prelu_backward": "activations",
    "prelu_forward": "activations", "relu_backward": "activations", "relu_forward": "activations",
    "Conv2dCache": "conv", "conv2d_backward": "conv", "conv2d_forward": "conv", "conv2d_prelu": "conv",
    "conv2d_reference_backward": "conv",
    "conv2d_reference_forward": "conv", "conv_output_size": "conv",
    "DenseCache": "dense", "dense_backward": "dense", "dense_forward": "dense",
    "DropoutCache": "dropout", "dropout_backward": "dropout", "dropout_forward": "dropout",
    "LocallyConnectedCache": "locally_connected", "locally_connected2d_backward": "locally_connected",
    "locally_connected2d_forward": "locally_connected",
    "BatchNormCache": "normalization", "L2NormalizeCache": "normalization", "LrnCache": "normalization",
    "batch_norm_backward": "normalization", "batch_norm_forward": "normalization",
    "l2_normalize_backward": "normalization", "l2_normalize_forward": "normalization",
    "lrn_backward": "normalization", "lrn_forward": "normalization",
    "PoolCache": "pooling", "avg_pool2d_backward": "pooling", "avg_pool2d_forward": "pooling",
    "avg_pool2d_reference_backward": "pooling", "avg_pool2d_reference_forward": "pooling",
    "l2_pool2d_backward": "pooling", "l2_pool2d_forward": "pooling", "l2_pool2d_reference_backward": "pooling",
    "l2_pool2d_reference_forward": "pooling", "max_pool2d": "pooling", "max_pool2d_backward": "pooling",
    "max_pool2d_forward": "pooling",
    "max_pool2d_reference_backward": "pooling", "max_pool2d_reference_forward": "pooling",
    "pool_output_size": "pooling",
    "RoiAlignCache": "roi", "RoiMaxPoolCache": "roi", "roi_align_backward": "roi", "roi_align_forward": "roi",
    "roi_align_grid": "roi", "roi_align_reference_backward": "roi", "roi_align_reference_forward": "roi",
    "roi_max_pool_backward": "roi", "roi_max_pool_forward": "roi", "roi_max_pool_reference_backward": "roi",
    "roi_max_pool_reference_forward": "roi", "roi_pool_bins": "roi",
    "AddCache": "shape", "ConcatCache": "shape", "FlattenCache": "shape", "add_backward": "shape",
    "add_forward": "shape", "concat_backward": "shape", "concat_forward": "shape", "flatten_backward": "shape",
    "flatten_forward": "shape",
    "LogSoftmaxCache": "softmax", "SoftmaxCache": "softmax", "SoftmaxCrossEntropyCache": "softmax",
    "log_softmax_backward": "softmax", "log_softmax_forward": "softmax", "softmax_backward": "softmax",
    "softmax_cross_entropy_backward": "softmax", "softmax_cross_entropy_forward": "softmax",
    "softmax_forward": "softmax",
}

__all__ = sorted([*_EXPORTS])
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
