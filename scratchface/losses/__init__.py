"""Every differentiable loss, as ``*_forward(...) -> (loss, cache)`` / ``*_backward(dloss, cache)`` pairs.

``triplet`` (FaceNet), ``mining`` (batch-all / batch-hard / semi-hard triplets), ``margin``
(softmax, SphereFace, CosFace, ArcFace), ``contrastive``, ``chi_square`` (DeepFace), ``lmle``,
``deepid2``, ``mtcnn`` (MTCNN's multi-task loss with OHEM), ``smooth_l1``, ``sigmoid_cross_entropy``;
``toy`` is the 2-D feature demo of the margin lecture. Each module has ``gradcheck_cases(rng)``.
Public names are importable from here, lazily.
"""
from __future__ import annotations

from .._lazy import lazy_exports

#: public name -> the module of this package that defines it
_EXPORTS = {
    "chi_square_vectors": "chi_square", "weighted_chi_square": "chi_square",
    "weighted_chi_square_backward": "chi_square", "weighted_chi_square_forward": "chi_square",
    "weighted_l1": "chi_square", "weighted_l1_backward": "chi_square", "weighted_l1_forward": "chi_square",
    "contrastive_loss": "contrastive", "contrastive_loss_backward": "contrastive",
    "contrastive_loss_forward": "contrastive",
    "DeepID2Cache": "deepid2", "batch_pairs": "deepid2", "deepid2_loss_backward": "deepid2",
    "deepid2_loss_forward": "deepid2",
    "lmle_loss_backward": "lmle", "lmle_loss_forward": "lmle", "lmle_quintuplets": "lmle",
    "mined_lmle_loss_backward": "lmle", "mined_lmle_loss_forward": "lmle",
    "arcface_loss_backward": "margin", "arcface_loss_forward": "margin", "combined_margin_loss_backward": "margin",
    "combined_margin_loss_forward": "margin", "cosface_loss_backward": "margin", "cosface_loss_forward": "margin",
    "normalized_softmax_loss_backward": "margin", "normalized_softmax_loss_forward": "margin",
    "softmax_loss_backward": "margin", "softmax_loss_forward": "margin", "sphereface_lambda": "margin",
    "sphereface_loss_backward": "margin", "sphereface_loss_forward": "margin", "sphereface_psi": "margin",
    "batch_all_triplets": "mining", "batch_hard_triplets": "mining", "pairwise_squared_distances": "mining",
    "semi_hard_triplets": "mining",
    "LANDMARK": "mtcnn", "MTCNNLossCache": "mtcnn", "NEGATIVE": "mtcnn", "OHEM_RATIO": "mtcnn", "PART": "mtcnn",
    "POSITIVE": "mtcnn", "TASK_WEIGHTS": "mtcnn", "mtcnn_loss_backward": "mtcnn", "mtcnn_loss_forward": "mtcnn",
    "ohem_select": "mtcnn", "task_indicators": "mtcnn",
    "SigmoidCrossEntropyCache": "sigmoid_cross_entropy", "sigmoid_cross_entropy_backward": "sigmoid_cross_entropy",
    "sigmoid_cross_entropy_forward": "sigmoid_cross_entropy",
    "SmoothL1Cache": "smooth_l1", "smooth_l1_backward": "smooth_l1", "smooth_l1_forward": "smooth_l1",
    "TOY_LOSSES": "toy", "ToyResult": "toy", "load_orl_people": "toy", "plot_toy_features": "toy",
    "train_toy_features": "toy",
    "mined_triplet_loss_backward": "triplet", "mined_triplet_loss_forward": "triplet", "triplet_loss": "triplet",
    "triplet_loss_backward": "triplet", "triplet_loss_forward": "triplet",
}

__all__ = sorted([*_EXPORTS])
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
