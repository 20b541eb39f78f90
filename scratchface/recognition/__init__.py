"""Face recognition: embeddings in, "same person?", "who is this?" and "which photos go together?" out.

``pipeline`` (detect -> align -> embed with the dlib ResNet; ``verify``, ``Gallery``), ``verification``
(ROC, 10-fold accuracy, VAL@FAR), ``identification`` (CMC, rank-k), ``clustering`` + ``clustering_scores``,
``eigenfaces``, ``chi_square_verifier`` (DeepFace), ``orl_preprocessing`` + ``augment`` + ``orl_embedding`` /
``patch_ensemble`` (the embeddings trained here on ORL), ``attributes``, ``dask_pipeline``, ``plots``.
Public names are importable from here, lazily (``augment`` eagerly: the function shares its module's
name), and so are those of :mod:`scratchface.distances`
(pairwise distances, nearest neighbours), which the losses use too.
"""
from __future__ import annotations

from .._lazy import lazy_exports
from .augment import augment  # noqa: F401  (in __all__ below)

#: public name -> the module of this package that defines it
_EXPORTS = {
    "ATTRIBUTES": "attributes", "BLOCK": "attributes", "FEATURE_KINDS": "attributes",
    "LMLEProjection": "attributes", "YaleFeatures": "attributes", "attribute_labels": "attributes",
    "balanced_accuracy": "attributes", "balanced_class_weights": "attributes", "cluster_knn_predict": "attributes",
    "evaluate_attribute": "attributes", "standardize": "attributes", "subject_folds": "attributes",
    "yale_features": "attributes",
    "shift_images": "augment", "warp_edge": "augment",
    "ChiSquareVerifier": "chi_square_verifier", "fit_chi_square_weights": "chi_square_verifier",
    "DENSE_GROUP_MAX": "clustering", "NEIGHBOUR_BLOCK_ELEMENTS": "clustering", "average_linkage": "clustering",
    "average_linkage_reference": "clustering", "chinese_whispers": "clustering", "cluster_faces": "clustering",
    "connected_components": "clustering", "neighbour_pairs": "clustering", "single_linkage": "clustering",
    "threshold_clustering": "clustering",
    "ClusterScores": "clustering_scores", "bcubed_precision_recall": "clustering_scores",
    "contingency_table": "clustering_scores", "pairwise_precision_recall": "clustering_scores",
    "embed_chips_dask": "dask_pipeline", "embed_file_list": "dask_pipeline", "embed_folder_dask": "dask_pipeline",
    "embedding_bag": "dask_pipeline",
    "Eigenfaces": "eigenfaces", "PCA": "eigenfaces", "fit_pca": "eigenfaces", "pca_reconstruct": "eigenfaces",
    "pca_transform": "eigenfaces",
    "Enrolment": "enrollment", "enroll_folder": "enrollment", "load_enrolment": "enrollment",
    "load_gallery": "enrollment", "people_photos": "enrollment", "save_enrolment": "enrollment",
    "OpenSetResult": "identification", "UNKNOWN": "identification", "cmc_curve": "identification",
    "correct_ranks": "identification", "identify": "identification", "identity_distances": "identification",
    "open_set_identification": "identification", "rank_one_accuracy": "identification",
    "LOSSES": "orl_embedding", "PRETRAINED": "orl_embedding", "check_seed": "orl_embedding",
    "embed_ensemble": "orl_embedding", "embed_orl": "orl_embedding", "embed_with_net": "orl_embedding",
    "load_ensemble": "orl_embedding", "load_pretrained": "orl_embedding", "pretrained_path": "orl_embedding",
    "save_weights": "orl_embedding",
    "orl_landmarks": "orl_preprocessing", "preprocess_orl": "orl_preprocessing",
    "FRAME": "patch_ensemble", "PATCHES": "patch_ensemble", "SHIPPED": "patch_ensemble",
    "crop_patch": "patch_ensemble", "embed_patch_ensemble": "patch_ensemble",
    "load_patch_ensemble": "patch_ensemble", "patch_ensemble_path": "patch_ensemble",
    "patch_spec": "patch_ensemble", "save_patch_ensemble": "patch_ensemble", "yale_in_orl_frame": "patch_ensemble",
    "CHIP_SIZE": "pipeline", "DLIB_PADDING": "pipeline", "DLIB_TEMPLATE": "pipeline", "FaceEmbeddings": "pipeline",
    "FolderItem": "pipeline", "Gallery": "pipeline", "IMAGE_EXTENSIONS": "pipeline", "Match": "pipeline",
    "NoFaceError": "pipeline", "align_dlib": "pipeline", "detect_and_embed": "pipeline",
    "dlib_template": "pipeline", "embed_aligned": "pipeline", "embed_faces": "pipeline", "embed_files": "pipeline",
    "embed_folder": "pipeline", "list_images": "pipeline", "verify": "pipeline",
    "distance_to_mean": "plots", "plot_distance_histograms": "plots", "plot_distance_to_mean": "plots",
    "plot_nearest_neighbors": "plots", "plot_roc": "plots",
    "KFoldResult": "verification", "RocCurve": "verification", "accuracy_at_threshold": "verification",
    "auc": "verification", "check_pairs": "verification", "default_folds": "verification",
    "equal_error_rate": "verification", "evaluate_embedding": "verification", "fit_threshold": "verification",
    "kfold_accuracy": "verification", "kfold_val_at_far": "verification", "roc_auc": "verification",
    "roc_curve": "verification", "val_at_far": "verification", "val_far": "verification",
    "cosine_distances": "scratchface.distances", "nearest_neighbors": "scratchface.distances",
    "normalize_rows": "scratchface.distances", "pairwise_distances": "scratchface.distances",
    "squared_euclidean_distances": "scratchface.distances",
}

__all__ = sorted([*_EXPORTS, "augment"])
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
