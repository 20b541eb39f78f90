"""The course as a table: which functions each assignment asks for, their points, what depends on what.

Grading (:mod:`scratchface.check.grade`) gives each function of an assignment its points when its
check passes, 0 otherwise. ``DEPENDS_ON`` lists the student functions a function calls (the ArcFace
loss calls the student's ``arcface_target``; the 10-fold accuracy calls ``fit_threshold``), so that a
failure caused by a broken helper is reported as "fix ``arcface_target`` first".
"""
from __future__ import annotations

__all__ = ["ASSIGNMENTS", "DEPENDS_ON", "assignment_of", "points_of", "expected_functions"]

#: assignment (the file name of its notebook, without ``.py``) -> {function: points}, in notebook order.
ASSIGNMENTS = {
    "01_hog": {"image_gradients": 1, "magnitude_orientation": 1, "cell_histograms": 2, "normalize_block": 1},
    "02_conv": {"conv2d_forward": 2, "conv2d_backward": 3},
    "03_pooling": {"max_pool2d_forward": 1, "max_pool2d_backward": 2, "l2_pool2d_forward": 1,
                   "l2_pool2d_backward": 2},
    "04_prelu_maxout": {"prelu_forward": 1, "prelu_backward": 2, "maxout_forward": 1, "maxout_backward": 2},
    "05_iou_nms": {"iou": 2, "nms": 3},
    "06_triplet_mining": {"triplet_loss_forward": 1, "triplet_loss_backward": 2, "pairwise_squared_distances": 1,
                          "semi_hard_negatives": 2, "semi_hard_triplets": 2},
    "07_arcface": {"arcface_target": 2, "arcface_loss_forward": 2, "arcface_loss_backward": 2},
    "08_verification_metrics": {"val_far": 1, "val_at_far": 2, "fit_threshold": 1, "kfold_accuracy": 2},
}

#: function -> the student's own functions it calls; checked first, named in the hint when broken.
DEPENDS_ON = {
    "arcface_loss_forward": ("arcface_target",),
    "arcface_loss_backward": ("arcface_target", "arcface_loss_forward"),
    "kfold_accuracy": ("fit_threshold",),
}


def assignment_of(name: str) -> str:
    """The assignment that asks for the function ``name`` (ValueError if none does)."""
    for assignment, functions in ASSIGNMENTS.items():
        if name in functions:
            return assignment
    raise ValueError(f"no assignment asks for a function named {name!r}")


def points_of(name: str) -> int:
    """The points the function ``name`` is worth."""
    return ASSIGNMENTS[assignment_of(name)][name]


def expected_functions(defined) -> list:
    """Every function of each assignment that ``defined`` (names found in a submission) touches.

    A submission defining ``iou`` only is graded on ``iou`` and ``nms`` (assignment 5): the missing
    ``nms`` scores 0. Functions in notebook order.
    """
    defined = set(defined)
    names = []
    for functions in ASSIGNMENTS.values():
        if defined & set(functions):
            names += list(functions)
    return names
