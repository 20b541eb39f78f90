"""Face attributes from embedding features, one linear SVM each, and what class imbalance does to them.

The recipe is Liu et al.'s (ICCV 2015), simplified: their LNets find and
align the face, their ANet's features feed **one linear SVM per attribute**.
Here MTCNN finds the face and its five landmarks, :func:`scratchface.recognition.pipeline.align_dlib`
cuts the aligned 150 x 150 chip, and dlib's pretrained ResNet
(:mod:`scratchface.models.dlib_resnet`) gives two kinds of features
(:func:`yale_features`, computed once per run, optionally cached in a ``.npz``):

* ``'embedding'``: the 128-d identity descriptor (:func:`~scratchface.recognition.pipeline.embed_aligned`);
* ``'block'``: the intermediate map after block ``conv256_2`` (4 x 4 x 256, flattened to 4096):
  it still knows *where* on the face things are, and it was trained less to ignore them.

The attributes come from Yale's file names (:func:`scratchface.data.yale.yale_attributes`),
each a two-class problem (:func:`attribute_labels`):

* ``glasses``: ``glasses`` (positive) against ``noglasses``, the only two
  conditions that state it (30 images, balanced);
* ``happy``, ``sad``, ``sleepy``, ``surprised``, ``wink``: that expression
  against every other image (15 positives in 164: 1 in 11);
* ``centerlight``, ``leftlight``, ``rightlight``: that lighting against every
  other image (14 or 15 in 164).

Evaluation is **leave-people-out** (:func:`subject_folds`: the 15 subjects
dealt into 5 folds of 3; a subject's images are never in training and test
at once): features standardised with the training folds' mean and standard
deviation, each method trained on four folds and run on the fifth, the
predictions of the five test folds pooled, then the **balanced accuracy**
(:func:`balanced_accuracy`, the mean of the two classes' recalls: 50% is
chance even when 91% of the images are negative, where plain accuracy would
reward always answering "no").

Three ways to train (:func:`evaluate_attribute`):

(a) ``'plain'``: :class:`~scratchface.detection.svm.LinearSVM`, every sample the same ``C``;
(b) ``'reweighted'``: the same SVM with class weights :math:`w_c = n / (k\\, n_c)`
    (:func:`balanced_class_weights`): each class carries the same total weight
    :math:`n / k` in the hinge loss, so the 15 positives count as much as the 149 negatives;
(c) ``'lmle'``: LMLE (Huang et al., CVPR 2016), simplified (:class:`LMLEProjection`):
    a linear projection :math:`z = \\mathrm{normalize}(x W)` (D -> 32) is learnt
    with the triple-header hinge loss (:func:`scratchface.losses.lmle.mined_lmle_loss_forward`)
    on quintuplets (:func:`scratchface.losses.lmle.lmle_quintuplets`) formed from
    k-means clusters inside each class (recomputed every 50 steps), with the
    anchors of every step drawn **equally from both classes** (the paper's
    class-balanced quintuplet sampling); then the paper's cluster-wise kNN
    (:func:`cluster_knn_predict`) classifies in the projected space.

The table over every attribute, feature kind and method, and what it shows
(with which choice looked at these folds): ``python -m experiments.attributes``
and ``docs/results.md``, section Recognition.

References
----------
Z. Liu, P. Luo, X. Wang, X. Tang, "Deep Learning Face Attributes in the Wild", ICCV 2015
(LNets + ANet, one linear SVM per attribute).
C. Huang, Y. Li, C. C. Loy, X. Tang, "Learning Deep Representation for Imbalanced
Classification", CVPR 2016 (quintuplets, triple-header hinge loss, cluster-wise kNN, section 3.3).
K. H. Brodersen et al., "The balanced accuracy and its posterior distribution", ICPR 2010.
"""
from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
from scipy.cluster.vq import kmeans2

from .. import nn
from .._validation import (
    as_generator,
    check_array,
    check_choice,
    check_float_array,
    check_positive_float,
    check_positive_int,
)
from ..data.atomic import savez_atomic
from ..data.yale import load_yale_faces
from ..detection.mtcnn import detect_faces
from ..detection.svm import LinearSVM
from ..losses.lmle import lmle_quintuplets, mined_lmle_loss_backward, mined_lmle_loss_forward
from ..models.dlib_resnet import dlib_resnet_forward, preprocess
from ..distances import normalize_rows
from .pipeline import align_dlib

__all__ = [
    "ATTRIBUTES",
    "BLOCK",
    "FEATURE_KINDS",
    "METHODS",
    "LMLEProjection",
    "YaleFeatures",
    "attribute_labels",
    "balanced_accuracy",
    "balanced_class_weights",
    "cluster_knn_predict",
    "evaluate_attribute",
    "standardize",
    "subject_folds",
    "yale_features",
]

#: The two-class attributes read from Yale's conditions: name -> (positive conditions, negative conditions);
#: ``None`` as negatives means "every other image".
ATTRIBUTES = {
    "glasses": (("glasses",), ("noglasses",)),
    "happy": (("happy",), None), "sad": (("sad",), None), "sleepy": (("sleepy",), None),
    "surprised": (("surprised",), None), "wink": (("wink",), None),
    "centerlight": (("centerlight",), None), "leftlight": (("leftlight",), None),
    "rightlight": (("rightlight",), None),
}
METHODS = ("plain", "reweighted", "lmle")
FEATURE_KINDS = ("embedding", "block")
BLOCK = "conv256_2"  #: the dlib ResNet block whose output map is the 'block' feature


# ----------------------------------------------------------------------------- labels, metric, folds

def attribute_labels(conditions, attribute):
    """Which images an attribute is defined on, and their 0 / 1 labels.

    Parameters
    ----------
    conditions : sequence of str, length N
        Yale conditions, e.g. ``YaleFaces.conditions``.
    attribute : str
        A key of :data:`ATTRIBUTES`.

    Returns
    -------
    index : int64 array, shape (M,)
        The images that take part (all N, or those with a stated negative condition).
    y : int64 array, shape (M,)
        1 for the positive condition(s).

    Examples
    --------
    >>> attribute_labels(["happy", "glasses", "noglasses", "normal"], "glasses")
    (array([1, 2]), array([1, 0]))
    """
    check_choice(attribute, "attribute", tuple(ATTRIBUTES))
    positives, negatives = ATTRIBUTES[attribute]
    conditions = np.asarray(conditions).astype(str)
    pos = np.isin(conditions, positives)
    member = pos | (np.ones_like(pos) if negatives is None else np.isin(conditions, negatives))
    index = np.flatnonzero(member).astype(np.int64)
    return index, pos[index].astype(np.int64)


def balanced_accuracy(y_true, y_pred):
    """Mean over the classes present in ``y_true`` of the fraction of that class predicted right.

    .. math:: \\mathrm{BA} = \\frac1{|C|} \\sum_{c \\in C} \\frac{|\\{i: y_i = c, \\hat y_i = c\\}|}{|\\{i: y_i = c\\}|}

    For two classes, :math:`(TPR + TNR) / 2`. Predicting the majority class always scores
    :math:`1 / |C|` (50% with two classes), whatever the imbalance.

    Parameters
    ----------
    y_true, y_pred : int arrays, shape (N,), N >= 1

    Returns
    -------
    float in [0, 1]
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    check_array(y_true, "y_true", ndim=1, dtype_kind="iub")
    check_array(y_pred, "y_pred", ndim=1, dtype_kind="iub")
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"y_true and y_pred must be non-empty and of one shape, got {y_true.shape} "
                         f"and {y_pred.shape}")
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]))


def balanced_class_weights(y):
    """Class weights :math:`w_c = n / (k\\, n_c)` (``n`` samples, ``k`` classes, ``n_c`` in class ``c``).

    Every class then weighs :math:`n_c w_c = n / k` in total; with two equal
    classes every weight is 1. (scikit-learn's ``class_weight='balanced'``.)

    Returns
    -------
    dict {label: float}
    """
    y = np.asarray(y)
    check_array(y, "y", ndim=1, dtype_kind="iub")
    if y.size == 0:
        raise ValueError("y must hold at least one label")
    classes, counts = np.unique(y, return_counts=True)
    return {c.item(): y.size / (classes.size * n) for c, n in zip(classes, counts)}


def subject_folds(subjects, n_folds=5, *, rng=0):
    """Leave-people-out folds: the subjects shuffled and dealt round-robin into ``n_folds`` groups.

    Parameters
    ----------
    subjects : int array, shape (N,)
        The person in each image.
    n_folds : int, at most the number of subjects
    rng : int or numpy.random.Generator

    Returns
    -------
    fold : int64 array, shape (N,)
        The fold of every image; all images of one subject share a fold.
    """
    subjects = np.asarray(subjects)
    check_array(subjects, "subjects", ndim=1, dtype_kind="iu")
    n_folds = check_positive_int(n_folds, "n_folds")
    people = np.unique(subjects)
    if n_folds > people.size:
        raise ValueError(f"n_folds must be at most the number of subjects ({people.size}), got {n_folds}")
    order = as_generator(rng).permutation(people)
    fold_of = dict(zip(order.tolist(), (np.arange(people.size) % n_folds).tolist()))
    return np.array([fold_of[s] for s in subjects.tolist()], dtype=np.int64)


def standardize(train, test):
    """Z-scores of both with the mean and standard deviation of ``train`` (per feature; 0 spread -> 1)."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return (train - mean) / std, (test - mean) / std



# ----------------------------------------------------------------------------- features

class YaleFeatures(NamedTuple):
    """Features of every Yale image (one face each)."""
    embedding: np.ndarray   #: (N, 128) float32, dlib's descriptor
    block: np.ndarray       #: (N, 4096) float32, the conv256_2 map flattened (C, H, W order)
    subjects: np.ndarray    #: (N,) int64
    conditions: np.ndarray  #: (N,) str
    boxes: np.ndarray       #: (N, 4) float32, MTCNN's box of the face used


def yale_features(path=None, *, subjects=None, conditions=None, cache=None, min_face_size=60, batch_size=16,
                  progress=True):
    """Detect, align and describe every Yale face (the LNets part), optionally cached.

    Parameters
    ----------
    path : path-like, optional
        The Yale folder or its parent (see :func:`scratchface.data.yale.load_yale_faces`).
    subjects, conditions : optional
        Restrict the images (as ``load_yale_faces``).
    cache : path-like, optional
        A ``.npz`` file: read when it exists, else written after the computation.
        The caller owns it (delete it when the code or the data change).
    min_face_size : float
        MTCNN's smallest face; Yale's faces are about 100-150 pixels wide.
    batch_size : int
        Chips per forward pass of the ResNet.
    progress : bool

    Returns
    -------
    YaleFeatures

    Raises
    ------
    ValueError
        An image in which MTCNN finds no face (none does with the defaults).
    """
    if cache is not None and os.path.exists(cache):
        with np.load(cache, allow_pickle=False) as f:
            return YaleFeatures(*(f[name] for name in YaleFeatures._fields))
    faces = load_yale_faces(path, subjects=subjects, conditions=conditions)
    crops, boxes = [], []
    items = _progress(range(len(faces.images)), progress, "detect + align")
    for i in items:
        det = detect_faces(faces.images[i], min_face_size=min_face_size)   # largest face first
        if len(det.boxes) == 0:
            raise ValueError(f"MTCNN found no face in {faces.paths[i]} (min_face_size={min_face_size})")
        crops.append(align_dlib(faces.images[i], det.landmarks[:1])[0])
        boxes.append(det.boxes[0])
    crops = np.stack(crops)
    embedding, block = [], []
    for start in _progress(range(0, len(crops), batch_size), progress, "dlib ResNet"):
        desc, maps = dlib_resnet_forward(preprocess(crops[start:start + batch_size]), return_features=True)
        embedding.append(desc)
        block.append(maps[BLOCK].reshape(len(desc), -1))
    result = YaleFeatures(np.concatenate(embedding).astype(np.float32), np.concatenate(block).astype(np.float32),
                          faces.labels, faces.conditions.astype(str), np.stack(boxes).astype(np.float32))
    if cache is not None:
        savez_atomic(cache, compress=True, **result._asdict())
    return result


def _progress(iterable, enabled, desc):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm  # lazy: tqdm.auto probes for Jupyter widgets, only when a bar is shown
    return tqdm(iterable, desc=desc)



# ----------------------------------------------------------------------------- LMLE

class LMLEProjection:
    """A linear map learnt with LMLE's quintuplets, and the cluster-wise kNN that classifies with it.

    The embedding is :math:`z = x W / \\lVert x W \\rVert` with :math:`W` of shape
    (D, ``dim``), learnt inside the span of the N training samples (at most N
    dimensions: :math:`W = V W'` with :math:`V` the right singular vectors of
    the training features, so that 4096-d features cost as little as 128-d
    ones). Each of ``steps`` Adam steps:

    1. every ``recluster_every`` steps, k-means inside each class on the current
       :math:`z` (about ``cluster_size`` samples per cluster, at least 2 clusters
       per class): LMLE's local clusters;
    2. the quintuplets of every sample on the current :math:`z`
       (:func:`scratchface.losses.lmle.lmle_quintuplets`: the farthest
       cluster-mate, the nearest class-mate of another cluster, the farthest
       class-mate, the nearest sample of the other class);
    3. ``anchors_per_class`` anchors drawn (with replacement) from **each**
       class: class-balanced sampling, so the minority class weighs as much as
       the majority in every step;
    4. the triple-header hinge loss of those quintuplets
       (:func:`scratchface.losses.lmle.mined_lmle_loss_forward`, margins ``margins``),
       its gradient :math:`\\partial L / \\partial (xW)` back to
       :math:`\\partial L / \\partial W = x^\\top \\partial L / \\partial (xW)`.

    After training, the clusters of the last k-means (recomputed on the final
    :math:`z`) give the centroids of :func:`cluster_knn_predict`.

    Parameters
    ----------
    dim : int
    cluster_size : int
    steps, recluster_every, anchors_per_class : int
    margins : three floats
        :math:`(g_1, g_2, g_3)` of the triple-header hinge (distances on the unit sphere are in [0, 4]).
    lr, weight_decay : float
        Adam's.
    k : int
        Neighbouring clusters consulted by :func:`cluster_knn_predict`.
    rng : int or numpy.random.Generator

    References
    ----------
    Huang, Li, Loy, Tang, "Learning Deep Representation for Imbalanced Classification",
    CVPR 2016, section 3 (quintuplet sampling, loss eq. 1-2, cluster-wise kNN).
    """

    def __init__(self, dim=32, *, cluster_size=6, steps=200, recluster_every=50, anchors_per_class=16,
                 margins=(0.05, 0.05, 0.2), lr=2e-3, weight_decay=1e-4, k=3, rng=0):
        self.dim = check_positive_int(dim, "dim")
        self.cluster_size = check_positive_int(cluster_size, "cluster_size")
        self.steps = check_positive_int(steps, "steps")
        self.recluster_every = check_positive_int(recluster_every, "recluster_every")
        self.anchors_per_class = check_positive_int(anchors_per_class, "anchors_per_class")
        self.margins = tuple(check_positive_float(g, "margins") for g in margins)
        self.lr = check_positive_float(lr, "lr")
        self.weight_decay = check_positive_float(weight_decay, "weight_decay", allow_zero=True)
        self.k = check_positive_int(k, "k")
        self.rng = rng

    def transform(self, x):
        """The normalised projection :math:`z` of features ``x`` (N, D): (N, dim)."""
        return normalize_rows((np.asarray(x, dtype=np.float64) @ self.basis_) @ self.weight_)

    def _clusters(self, z, y, rng):
        """k-means inside each class; returns cluster ids (N,), unique over classes."""
        clusters = np.zeros(len(y), dtype=np.int64)
        next_id = 0
        for c in np.unique(y):
            mine = np.flatnonzero(y == c)
            n_clusters = int(np.clip(round(mine.size / self.cluster_size), 2, max(2, mine.size // 2)))
            if mine.size < 4:
                n_clusters = 1
            if n_clusters == 1:
                ids = np.zeros(mine.size, dtype=np.int64)
            else:
                _, ids = kmeans2(z[mine], n_clusters, minit="++", seed=rng)
            ids = np.unique(ids, return_inverse=True)[1]        # drop empty clusters
            clusters[mine] = next_id + ids
            next_id += int(ids.max()) + 1
        return clusters

    def fit(self, x, y):
        """Learn ``weight_`` (D, dim) and the centroids from features ``x`` (N, D) and labels ``y`` (N,)."""
        check_float_array(x, "x", ndim=2)
        y = np.asarray(y)
        check_array(y, "y", ndim=1, dtype_kind="iub")
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"y must have one label per row of x ({x.shape[0]}), got {y.shape[0]}")
        rng = as_generator(self.rng)
        x = np.asarray(x, dtype=np.float64)
        # N samples span at most N dimensions: learn W in that span (the same maps, N x dim weights)
        _, singular, vt = np.linalg.svd(x, full_matrices=False)
        self.basis_ = vt[singular > 1e-10 * singular[0]].T           # (D, r), r <= N
        coords = x @ self.basis_                                      # (N, r)
        weight = nn.Parameter(nn.xavier_normal((coords.shape[1], self.dim), rng, dtype=np.float64))
        self.weight_ = weight.data
        optimizer = nn.Adam([weight], lr=self.lr, weight_decay=self.weight_decay)
        classes = np.unique(y)
        self.loss_history_ = []
        for step in range(self.steps):
            projected = coords @ weight.data
            z = normalize_rows(projected)
            if step % self.recluster_every == 0:
                clusters = self._clusters(z, y, rng)
            quintuplets = lmle_quintuplets(z, y, clusters)
            anchors_class = y[quintuplets[0]]
            pick = [rng.choice(np.flatnonzero(anchors_class == c), size=self.anchors_per_class)
                    for c in classes if np.any(anchors_class == c)]
            if not pick:
                break   # no sample has all four partners: nothing to learn from
            pick = np.concatenate(pick)
            loss, cache = mined_lmle_loss_forward(projected, quintuplets=tuple(q[pick] for q in quintuplets),
                                                  margins=self.margins)
            weight.grad[...] = coords.T @ mined_lmle_loss_backward(1.0, cache)
            optimizer.step()
            self.loss_history_.append(float(loss))
        z = self.transform(x)
        clusters = self._clusters(z, y, rng)
        ids = np.unique(clusters)
        centroids = np.stack([z[clusters == i].mean(axis=0) for i in ids])
        self.centroids_ = normalize_rows(centroids)
        self.centroid_labels_ = np.array([y[clusters == i][0] for i in ids])
        return self

    def predict(self, x):
        """Labels of features ``x`` (N, D) by cluster-wise kNN in the projected space."""
        if not hasattr(self, "centroids_"):
            raise RuntimeError("this LMLEProjection is not fitted yet: call fit(x, y) first")
        return cluster_knn_predict(self.transform(x), self.centroids_, self.centroid_labels_, k=self.k)


def cluster_knn_predict(z, centroids, centroid_labels, *, k=3):
    """LMLE's cluster-wise kNN: the class whose clusters among the ``k`` nearest are closest as a group.

    For a query :math:`q` with squared distances :math:`D(q, m_j)` to its ``k``
    nearest cluster centroids: when they all belong to one class, that class;
    otherwise the class :math:`c` among them maximising

    .. math:: \\min_{j: c_j \\ne c} D(q, m_j) - \\max_{i: c_i = c} D(q, m_i)

    (its farthest cluster beats the nearest cluster of any other class by the
    largest gap; ties: the smaller label).

    Parameters
    ----------
    z : float array, shape (N, d)
    centroids : float array, shape (M, d)
    centroid_labels : int array, shape (M,)
    k : int, 1 <= k <= M

    Returns
    -------
    labels : array, shape (N,), values from ``centroid_labels``
    """
    check_float_array(z, "z", ndim=2)
    check_float_array(centroids, "centroids", ndim=2)
    centroid_labels = np.asarray(centroid_labels)
    if centroid_labels.shape != (centroids.shape[0],):
        raise ValueError(f"centroid_labels must have one label per centroid ({centroids.shape[0]}), "
                         f"got shape {centroid_labels.shape}")
    k = check_positive_int(k, "k")
    if k > centroids.shape[0]:
        raise ValueError(f"k must be at most the number of centroids ({centroids.shape[0]}), got {k}")
    d = ((z[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    out = np.empty(z.shape[0], dtype=centroid_labels.dtype)
    for n in range(z.shape[0]):
        near = np.argsort(d[n], kind="stable")[:k]
        dist, lab = d[n, near], centroid_labels[near]
        present = np.unique(lab)
        if present.size == 1:
            out[n] = present[0]
            continue
        gaps = [dist[lab != c].min() - dist[lab == c].max() for c in present]
        out[n] = present[int(np.argmax(gaps))]
    return out



# ----------------------------------------------------------------------------- evaluation

def _fit_predict(method, train_x, train_y, test_x, *, C, rng, lmle_options):
    if np.unique(train_y).size < 2:
        return np.full(len(test_x), train_y[0])
    if method == "lmle":
        return LMLEProjection(rng=rng, **lmle_options).fit(train_x, train_y).predict(test_x)
    weights = balanced_class_weights(train_y) if method == "reweighted" else None
    return LinearSVM(C=C, class_weight=weights, random_state=rng).fit(train_x, train_y).predict(test_x)


def evaluate_attribute(features, y, subjects, *, method="plain", n_folds=5, C=1.0, rng=0, lmle_options=None):
    """Leave-people-out balanced accuracy of one attribute classifier.

    Parameters
    ----------
    features : float array, shape (N, D)
    y : int array, shape (N,)
        0 / 1 labels.
    subjects : int array, shape (N,)
    method : {'plain', 'reweighted', 'lmle'}
    n_folds : int
        Folds of subjects (:func:`subject_folds`).
    C : float > 0
        The SVMs' ``C`` (features are standardised, then divided by :math:`\\sqrt D`
        so that their squared norm is about 1 whatever ``D``).
    rng : int
        Seeds the folds, the SVMs' coordinate order and LMLE.
    lmle_options : dict, optional
        Keyword arguments of :class:`LMLEProjection`.

    Returns
    -------
    dict
        ``balanced_accuracy`` (of the pooled out-of-fold predictions), ``tpr``,
        ``tnr``, ``accuracy``, ``n``, ``n_positive``, ``predictions`` (N,).
    """
    check_choice(method, "method", METHODS)
    check_float_array(features, "features", ndim=2)
    y = np.asarray(y)
    check_array(y, "y", ndim=1, dtype_kind="iub")
    subjects = np.asarray(subjects)
    if not (y.shape[0] == subjects.shape[0] == features.shape[0]):
        raise ValueError(f"features, y and subjects must have one row per image, got {features.shape[0]}, "
                         f"{y.shape[0]} and {subjects.shape[0]}")
    C = check_positive_float(C, "C")
    rng = int(rng)
    fold = subject_folds(subjects, n_folds, rng=rng)
    predictions = np.zeros_like(y)
    x = np.asarray(features, dtype=np.float64)
    for k in range(n_folds):
        test = fold == k
        train_x, test_x = standardize(x[~test], x[test])
        scale = np.sqrt(x.shape[1])
        predictions[test] = _fit_predict(method, train_x / scale, y[~test], test_x / scale, C=C, rng=rng + k,
                                         lmle_options=lmle_options or {})
    pos = y == 1
    return {"balanced_accuracy": balanced_accuracy(y, predictions),
            "tpr": float(np.mean(predictions[pos] == 1)) if pos.any() else float("nan"),
            "tnr": float(np.mean(predictions[~pos] == 0)) if (~pos).any() else float("nan"),
            "accuracy": float(np.mean(predictions == y)), "n": int(y.size), "n_positive": int(pos.sum()),
            "predictions": predictions}
