"""Every part of the scratchface library the checkers use, imported in this one place.

The checkers compare a student's function with the library's readable reference implementation
(and with finite differences). Keeping all those imports here means a change of the library's
layout is one edit; ``SAME_STEP`` names, for each assignment, the library modules that implement the
very step the student writes (a student function that calls into them is not graded: see
:mod:`scratchface.check._honesty`).
"""
from __future__ import annotations

import importlib

from ..detection.hog import cell_histograms, image_gradients, magnitude_orientation, normalize_block
from ..gradcheck import numerical_gradient
from ..layers.activations import maxout_backward, maxout_forward, prelu_backward, prelu_forward
from ..layers.conv import conv2d_reference_backward, conv2d_reference_forward
from ..layers.pooling import (
    avg_pool2d_forward,
    l2_pool2d_backward,
    l2_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)
from ..losses import margin as margin_module
from ..losses import mining as mining_module
from ..losses import triplet as triplet_module
from ..recognition import verification as verification_module

# the modules themselves (the package exports the functions hog and nms under these names)
hog_module = importlib.import_module("scratchface.detection.hog")
nms_module = importlib.import_module("scratchface.detection.nms")

__all__ = [
    "SAME_STEP", "avg_pool2d_forward", "cell_histograms", "conv2d_reference_backward",
    "conv2d_reference_forward", "hog_module", "image_gradients", "l2_pool2d_backward", "l2_pool2d_forward",
    "magnitude_orientation", "margin_module", "max_pool2d_backward", "max_pool2d_forward", "maxout_backward",
    "maxout_forward", "mining_module", "nms_module", "normalize_block", "numerical_gradient", "prelu_backward",
    "prelu_forward", "triplet_module", "verification_module",
]

#: For each assignment (by the key of :data:`scratchface.check.course.ASSIGNMENTS`), the library
#: modules (dotted names, and the prefixes of their fast kernels) that implement what the student writes.
SAME_STEP = {
    "01_hog": ("scratchface.detection.hog", "scratchface.kernels.hog",
                "scratchface.kernels.cuda.hog"),
    "02_conv": ("scratchface.layers.conv", "scratchface.kernels.conv",
                "scratchface.kernels.cuda.conv"),
    "03_pooling": ("scratchface.layers.pooling", "scratchface.kernels.pooling",
                "scratchface.kernels.cuda.pooling"),
    "04_prelu_maxout": ("scratchface.layers.activations", "scratchface.kernels.cuda.prelu"),
    "05_iou_nms": ("scratchface.detection.nms", "scratchface.kernels.nms",
                "scratchface.kernels.cuda.nms"),
    "06_triplet_mining": ("scratchface.losses.triplet", "scratchface.losses.mining", "scratchface.kernels.distances",
                "scratchface.kernels.cuda.distances"),
    "07_arcface": ("scratchface.losses.margin",),
    "08_verification_metrics": ("scratchface.recognition.verification",),
}
