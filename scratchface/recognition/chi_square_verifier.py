"""DeepFace's verifier: weighted chi-square distances of two descriptors, the weights learned by a linear SVM.

DeepFace (Taigman et al., CVPR 2014, section 4.2) compares two normalised descriptors
:math:`f_1, f_2` by :math:`\\chi^2(f_1, f_2) = \\sum_i w_i (f_1[i] - f_2[i])^2 / (f_1[i] + f_2[i])`; the
weights :math:`w_i` come from an SVM trained on the vectors of per-element terms of labelled pairs.
The distance itself (forward / backward) is :mod:`scratchface.losses.chi_square`; the SVM is
:class:`scratchface.detection.svm.LinearSVM` (the HOG lecture's).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_array, check_positive_float
from ..backend import to_host
from ..detection.svm import LinearSVM
from ..losses.chi_square import chi_square_vectors, weighted_chi_square

__all__ = ["ChiSquareVerifier", "fit_chi_square_weights"]


class ChiSquareVerifier(NamedTuple):
    """A learned weighted chi-square verifier: pairs with ``distance(f1, f2) > threshold`` are different people."""
    weights: object    # (D,) w
    threshold: float

    def distance(self, f1, f2):
        """Weighted chi-square distance of each pair, shape (N,)."""
        return weighted_chi_square(f1, f2, self.weights)

    def predict_same(self, f1, f2):
        """Boolean (N,): True where the pair is judged to be one person."""
        return self.distance(f1, f2) <= self.threshold


def fit_chi_square_weights(f1, f2, same, *, C=1.0, class_weight=None):
    """Learn DeepFace's chi-square weights with a linear SVM on labelled pairs.

    The SVM separates the chi-square vectors :math:`v` of *different* pairs
    (label +1) from those of same pairs (label -1): its decision
    :math:`w^\\top v + b > 0` means "different", i.e. the weighted chi-square
    distance exceeds :math:`-b`.

    Parameters
    ----------
    f1, f2 : arrays, shape (N, D), non-negative
    same : array, shape (N,), bool or 0/1
        True for pairs of the same person. Both kinds must occur.
    C : float > 0
        The SVM's regularisation constant.
    class_weight : dict or 'balanced' or None
        Passed to the SVM (useful when different pairs outnumber same pairs).

    Returns
    -------
    ChiSquareVerifier
        ``weights`` (D,) = the SVM's :math:`w`, ``threshold`` = :math:`-b`.
    """
    v = to_host(chi_square_vectors(f1, f2))
    same = np.asarray(to_host(same))
    check_array(same, "same", ndim=1, dtype_kind="biu")
    if same.shape[0] != v.shape[0]:
        raise ValueError(f"same must have one entry per pair ({v.shape[0]}), got {same.shape[0]}")
    same = same.astype(bool)
    if same.all() or not same.any():
        raise ValueError("same must contain both same (True) and different (False) pairs to fit a verifier")
    check_positive_float(C, "C")
    y = np.where(same, -1, 1)
    svm = LinearSVM(C=C, class_weight=class_weight).fit(v, y)
    w = np.asarray(svm.coef_, dtype=np.float64).ravel()
    b = float(np.asarray(svm.intercept_).ravel()[0])
    return ChiSquareVerifier(w, -b)
