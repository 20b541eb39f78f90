"""Face detection: HOG + linear SVM on a sliding window, MTCNN, DDFD heat maps, Faceness, scale-friendly.

Every detector takes an image and returns :class:`Detections` ``(boxes, scores, landmarks)``::

    from scratchface.detection import detect_faces, detect_faces_hog, nms, iou

``hog``, ``svm``, ``pyramid`` (one image pyramid for all detectors), ``nms`` (IoU and non-maximum
suppression), ``hog_detector`` / ``hog_rescoring``, ``mtcnn`` (+ ``mtcnn_training``), ``ddfd``,
``faceness``, ``anchors`` + ``scale_friendly``, ``align`` (landmarks to aligned crops), ``evaluation``,
``synthetic`` (scenes of faces at known sizes). Public names are importable from here, lazily (``nms``,
``iou`` and ``hog`` eagerly: they share their modules' names, and the function must win; the modules
themselves: ``importlib.import_module("scratchface.detection.nms")``).
"""
from __future__ import annotations

from .._lazy import lazy_exports
from .hog import hog  # noqa: F401  (in __all__ below)
from .nms import iou, nms  # noqa: F401  (in __all__ below)

#: public name -> the module of this package that defines it
_EXPORTS = {
    "ARCFACE_TEMPLATE": "align", "align_face": "align", "align_faces": "align", "crop_square": "align",
    "estimate_alignment": "align", "face_template": "align", "landmarks_68_to_5": "align", "umeyama": "align",
    "warp_affine": "align", "warp_affine_reference": "align",
    "BACKGROUND": "anchors", "FACE": "anchors", "as_boxes": "anchors", "assign_branches": "anchors",
    "cached_anchors": "anchors", "clip_boxes": "anchors", "decode_boxes": "anchors", "encode_boxes": "anchors",
    "label_by_iou": "anchors", "make_anchors": "anchors", "sample_labels": "anchors",
    "WindowClassifier": "ddfd", "dense_to_1x1_conv": "ddfd", "fc_to_conv": "ddfd", "heatmap": "ddfd",
    "heatmap_detections": "ddfd", "heatmap_windows": "ddfd",
    "Detections": "detections", "empty_detections": "detections",
    "BandEvaluation": "evaluation", "DEFAULT_BANDS": "evaluation", "DetectionEvaluation": "evaluation",
    "average_precision": "evaluation", "boxes_and_scores": "evaluation", "check_bands": "evaluation",
    "evaluate_by_size": "evaluation", "evaluate_detections": "evaluation", "face_heights": "evaluation",
    "match_detections": "evaluation",
    "CROP_SIZE": "faceness", "FACE_BOX_SCALE": "faceness", "FacenessResult": "faceness", "PART_NAMES": "faceness",
    "box_sums": "faceness", "box_sums_reference": "faceness", "context_windows": "faceness",
    "face_box_from_landmarks": "faceness", "faceness_of_boxes": "faceness", "faceness_scores": "faceness",
    "part_boxes": "faceness", "part_response_pyramid": "faceness", "part_target_maps": "faceness",
    "rerank": "faceness",
    "BINNINGS": "hog", "BLOCK_NORMS": "hog", "cell_histograms": "hog", "dominant_channel_gradients": "hog",
    "hog_glyph_image": "hog", "image_gradients": "hog", "magnitude_orientation": "hog", "normalize_block": "hog",
    "normalize_blocks": "hog", "orientation_bin_edges": "hog",
    "DEFAULT_MODEL_PATH": "hog_detector", "HogFaceModel": "hog_detector", "SCALE_STEP": "hog_detector",
    "block_grid": "hog_detector", "detect_faces_hog": "hog_detector", "hog_pyramid": "hog_detector",
    "load_model": "hog_detector", "save_model": "hog_detector", "score_map": "hog_detector",
    "window_features": "hog_detector",
    "DEFAULT_CONTEXTS": "hog_rescoring", "DEFAULT_RESCORING_PATH": "hog_rescoring",
    "RescoringModel": "hog_rescoring", "context_features": "hog_rescoring", "context_patch": "hog_rescoring",
    "load_rescoring": "hog_rescoring", "rescore": "hog_rescoring", "save_rescoring": "hog_rescoring",
    "MMOD_MODEL_PATH": "mmod", "MMOD_SHA256": "mmod", "detect_faces_mmod": "mmod", "load_mmod_model": "mmod",
    "prepare_mmod_image": "mmod", "save_mmod_model": "mmod", "train_mmod": "mmod", "training_samples": "mmod",
    "window_shape": "mmod",
    "FeatureLevel": "mmod_scan", "MmodModel": "mmod_scan", "box_overlaps": "mmod_scan",
    "correlate_cells": "mmod_scan", "correlate_cells_reference": "mmod_scan", "feature_grid": "mmod_scan",
    "feature_planes": "mmod_scan", "FHOG_EPS": "fhog_features", "fhog": "fhog_features", "fhog_depth": "fhog_features",
    "fhog_reference": "fhog_features",
    "feature_pyramid": "mmod_scan", "greedy_select": "mmod_scan", "greedy_select_reference": "mmod_scan",
    "model_pyramid": "mmod_scan", "scan_levels": "mmod_scan", "tight_overlap_thresholds": "mmod_scan",
    "window_boxes": "mmod_scan",
    "LossSettings": "mmod_training", "Sample": "mmod_training", "cutting_plane": "mmod_training",
    "feature_sum": "mmod_training", "loss_augmented_detection": "mmod_training", "mmod_objective": "mmod_training",
    "sample_risk": "mmod_training", "solve_simplex_qp": "mmod_training",
    "CELL_SIZE": "mtcnn", "CELL_STRIDE": "mtcnn", "Candidates": "mtcnn", "crop_boxes": "mtcnn",
    "detect_faces": "mtcnn", "detect_faces_batch": "mtcnn", "normalize_pixels": "mtcnn", "onet_stage": "mtcnn",
    "pnet_stage": "mtcnn", "rnet_stage": "mtcnn", "square_boxes": "mtcnn",
    "ORL_FACE_BOX": "mtcnn_training", "Samples": "mtcnn_training", "TrainablePNet": "mtcnn_training",
    "box_targets": "mtcnn_training", "concat_samples": "mtcnn_training", "face_accuracy": "mtcnn_training",
    "face_samples_from_data": "mtcnn_training", "generate_samples": "mtcnn_training",
    "landmark_targets": "mtcnn_training", "sample_types": "mtcnn_training", "train_pnet": "mtcnn_training",
    "PyramidLevel": "pyramid", "area_resize": "pyramid", "area_resize_reference": "pyramid",
    "area_resize_regions": "pyramid", "area_resize_regions_nchw": "pyramid", "image_pyramid": "pyramid",
    "level_shape": "pyramid",
    "pyramid_scales": "pyramid", "resize": "pyramid", "summed_area_table": "pyramid",
    "WEIGHTS_PATH": "scale_friendly", "WEIGHTS_SHA256": "scale_friendly", "branch_proposals": "scale_friendly",
    "detect_faces_scale_friendly": "scale_friendly", "face_probability": "scale_friendly",
    "load_scale_friendly_model": "scale_friendly", "network_input": "scale_friendly",
    "prepare_image": "scale_friendly", "save_scale_friendly_model": "scale_friendly",
    "LinearSVM": "svm", "hinge_objective": "svm",
    "BACKGROUNDS": "synthetic", "FaceSource": "synthetic", "band_of": "synthetic",
    "synthetic_face_scenes": "synthetic",
}

__all__ = sorted([*_EXPORTS, "hog", "iou", "nms"])
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
