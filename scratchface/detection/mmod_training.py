"""Max-Margin Object Detection (King 2015): the structural SVM, its loss-augmented detection, a cutting-plane solver.

A labelling ``y`` of a photo ``x`` is a set of windows no two of which
overlap (NMS-consistent). Its score is the sum of its windows' scores,
:math:`F(x, y) = \\sum_{r \\in y} (\\langle F, \\phi(r) \\rangle - b) = \\langle w, \\Psi(x, y) \\rangle`
with :math:`w = (F, b)` and :math:`\\Psi(x, y) = \\sum_{r \\in y} (\\phi(r), -1)`.
MMOD learns ``w`` from *all* windows of the training photos at once
(paper, eq. 7):

.. math::
    \\min_w J(w) = \\tfrac12 \\lVert w \\rVert^2 + \\frac{C}{n} \\sum_{i=1}^n R_i(w), \\qquad
    R_i(w) = \\max_y \\big[\\Delta(y, y_i) + F(x_i, y)\\big] - F(x_i, y_i)

where :math:`\\Delta` counts ``loss_per_missed_target`` per labelled face no
window of ``y`` hits (IoU >= 0.5) and ``loss_per_false_alarm`` per window that
hits nothing or hits an already hit face; ``y_i`` is the labelled faces, each
mapped to the window that best matches it. :math:`R_i \\ge 0` is a hinge: zero
when the true labelling beats every other by its loss.

* :func:`loss_augmented_detection` finds the ``y`` of the max (approximately,
  greedily, as the paper's section 3.2 and dlib do): windows by decreasing
  score; a pass of NMS tells which faces have a cluster of windows worth
  taking; a second NMS over the windows that are worth it gives ``y*``.
* :func:`sample_risk` is :math:`R_i` and its subgradient
  :math:`\\Psi(x_i, y^*) - \\Psi(x_i, y_i)`; :func:`mmod_objective` is ``J``.
* :func:`cutting_plane` minimises ``J`` (Teo et al.'s bundle method, as dlib's
  ``oca``): each subgradient gives a plane
  :math:`R(w) \\ge \\langle a_t, w \\rangle + c_t`; the next ``w`` minimises
  :math:`\\tfrac12 \\lVert w \\rVert^2 + C \\max_t (\\langle a_t, w \\rangle + c_t)`
  (a small QP, solved in its dual over the simplex by SMO, warm-started,
  :func:`solve_simplex_qp`; planes idle for 20 iterations dropped);
  stop when the risk at the new ``w`` exceeds the planes' model by less
  than ``epsilon`` (dlib's "risk gap").

References
----------
D. E. King, "Max-Margin Object Detection", arXiv:1502.00046, 2015.
C. H. Teo, S. V. N. Vishwanathan, A. Smola, Q. V. Le, "Bundle Methods for Regularized Risk
Minimization", JMLR 11, 2010.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .mmod_scan import box_overlaps, greedy_select, scan_levels

__all__ = ["LossSettings", "Sample", "cutting_plane", "feature_sum", "loss_augmented_detection",
           "mmod_objective", "sample_risk", "solve_simplex_qp"]

MATCH_IOU = 0.5  #: a window hits a face at this IoU (dlib's match_eps; PASCAL's rule)


class LossSettings(NamedTuple):
    """The loss :math:`\\Delta` and the NMS that makes a set of windows a labelling."""
    loss_per_missed_target: float = 1.0
    loss_per_false_alarm: float = 1.0


DEFAULT_LOSSES = LossSettings()  #: dlib's defaults: 1 per missed face, 1 per false alarm


class Sample(NamedTuple):
    """One training photo, ready for training."""
    levels: list            #: FeatureLevel per pyramid level
    truth: np.ndarray       #: (k, 4) labelled boxes
    truth_where: np.ndarray  #: (k, 3) the (level, r, c) of each box's best window
    truth_psi: np.ndarray   #: Psi(x, y_i), the labelled faces' joint feature vector, (dim,)


def feature_sum(levels, where, filter_shape):
    """:math:`\\Psi = \\sum_{r} (\\phi(r), -1)` of the windows ``where`` ((k, 3) rows (level, r, c))."""
    n, m, depth = filter_shape
    total = np.zeros((n, m, depth))
    for level, r, c in np.asarray(where, dtype=np.int64).reshape(-1, 3):
        total += levels[level].grid[r:r + n, c:c + m]
    return np.append(total.ravel(), -float(len(where)))


def _matches(boxes, truth):
    """Index of the face each box hits (IoU >= 0.5, the best one), -1 for none."""
    if len(truth) == 0 or len(boxes) == 0:
        return np.full(len(boxes), -1, dtype=np.int64)
    iou, _ = box_overlaps(boxes, truth)
    best = iou.argmax(axis=1)
    return np.where(iou[np.arange(len(boxes)), best] >= MATCH_IOU, best, -1)


class LabelledSet(NamedTuple):
    """A labelling found by :func:`loss_augmented_detection`."""
    where: np.ndarray   #: (k, 3) windows (level, r, c)
    boxes: np.ndarray   #: (k, 4)
    scores: np.ndarray  #: (k,) window scores
    loss: float         #: Delta(y, y_i)


def loss_augmented_detection(sample: Sample, model, losses=DEFAULT_LOSSES, impl="auto") -> LabelledSet:
    """The labelling maximising :math:`\\Delta(y, y_i) + F(x_i, y)` (greedy, as in the paper).

    1. Candidates: windows scoring above ``-loss_per_false_alarm`` (a lower one
       adds less than nothing, whether it is a false alarm or a face's window),
       by decreasing score.
    2. First NMS over all of them; for each face, the sum over the kept windows
       hitting it of ``score`` (the first) and ``score + loss_per_false_alarm``
       (duplicates): what taking that cluster adds.
    3. Second NMS over the candidates that hit no face, and those hitting a
       face whose cluster adds more than ``loss_per_missed_target`` (the loss it
       removes by being found). The kept windows are ``y*``.
    """
    l_miss, l_fa = losses
    boxes, scores, where = scan_levels(sample.levels, model, -l_fa, impl)
    order = np.argsort(-scores, kind="stable")
    face = _matches(boxes, sample.truth)
    kept = greedy_select(boxes, order, np.ones(len(boxes), bool), model.iou_threshold, model.cover_threshold,
                         impl)
    cluster = np.zeros(len(sample.truth))
    seen = np.zeros(len(sample.truth), bool)
    for i in kept:
        if face[i] >= 0:
            cluster[face[i]] += scores[i] + (l_fa if seen[face[i]] else 0.0)
            seen[face[i]] = True
    eligible = (face < 0) | (cluster[np.maximum(face, 0)] > l_miss)
    kept = greedy_select(boxes, order, eligible, model.iou_threshold, model.cover_threshold, impl)
    hit = face[kept]
    n_found = len(np.unique(hit[hit >= 0]))
    loss = l_miss * (len(sample.truth) - n_found) + l_fa * (len(kept) - n_found)
    return LabelledSet(where[kept], boxes[kept], scores[kept], float(loss))


def sample_risk(sample: Sample, model, losses=DEFAULT_LOSSES, impl="auto"):
    """:math:`R_i(w)` and a subgradient :math:`\\Psi(x_i, y^*) - \\Psi(x_i, y_i)` (``(dim,)``).

    When the found ``y*`` scores below the true labelling (the greedy search
    can miss the max), the true labelling itself is the max: risk 0, subgradient 0.
    """
    found = loss_augmented_detection(sample, model, losses, impl)
    w = np.append(model.filter.ravel(), model.bias)
    truth_score = float(sample.truth_psi @ w)
    risk = found.loss + float(found.scores.sum()) - truth_score
    if risk <= 0.0:
        return 0.0, np.zeros_like(w)
    return risk, feature_sum(sample.levels, found.where, model.filter.shape) - sample.truth_psi


def _model_of(w, model):
    n, m, depth = model.filter_shape
    return model._replace(filter=w[:-1].reshape(n, m, depth), bias=float(w[-1]))


def mean_risk(w, samples, model, losses=DEFAULT_LOSSES, impl="auto"):
    """:math:`\\frac1n \\sum_i R_i(w)` and its subgradient, for ``w = (F.ravel(), b)``."""
    current = _model_of(np.asarray(w, dtype=np.float64), model)
    total, grad = 0.0, np.zeros(len(w))
    for sample in samples:
        r, g = sample_risk(sample, current, losses, impl)
        total += r
        grad += g
    return total / len(samples), grad / len(samples)


def mmod_objective(w, samples, model, *, C, losses=DEFAULT_LOSSES, impl="auto"):
    """:math:`J(w) = \\tfrac12 \\lVert w \\rVert^2 + C \\bar R(w)` and a subgradient :math:`w + C \\nabla \\bar R`."""
    risk, grad = mean_risk(w, samples, model, losses, impl)
    return 0.5 * float(w @ w) + C * risk, w + C * grad


def solve_simplex_qp(gram, offsets, C, start=None, *, max_iter=100000, tol=1e-12):
    """Dual of the cutting-plane model: :math:`\\max_{\\lambda \\in \\Delta} C c^T\\lambda - \\tfrac{C^2}{2}\\lambda^T G \\lambda`.

    ``G = A A^T`` of the planes' slopes, ``c`` their offsets; the primal ``w = -C A^T lambda``,
    and the dual value at any ``lambda`` of the simplex is a lower bound on the model's minimum.
    Solved by pairwise coordinate steps (SMO, Platt 1998; dlib's ``solve_qp_using_smo``): with
    :math:`g = C^2 G \\lambda - C c` the gradient of the (minimised) negative dual, move
    weight from the plane of largest :math:`g` that has some to the plane of smallest
    :math:`g`, by the exact line minimum; stop when the Frank-Wolfe gap
    :math:`\\lambda^T g - \\min g` (a bound on the distance to the optimum) is below ``tol``.
    ``start`` warm-starts it (the previous iteration's ``lambda`` with a 0 appended).

    Returns
    -------
    lam : (t,) on the simplex
    """
    t = len(offsets)
    lam = np.full(t, 1.0 / t) if start is None else np.array(start, dtype=np.float64)
    q = C * C * np.asarray(gram, dtype=np.float64)
    grad = q @ lam - C * np.asarray(offsets, dtype=np.float64)
    diagonal = np.diag(q)
    for _ in range(max_iter):
        j = int(np.argmin(grad))
        loaded = np.nonzero(lam > 0)[0]
        i = int(loaded[np.argmax(grad[loaded])])
        if float(lam @ grad) - grad[j] < tol or i == j:
            break
        curvature = diagonal[i] + diagonal[j] - 2.0 * q[i, j]
        if curvature <= 0 or grad[i] - grad[j] >= lam[i] * curvature:
            step, lam[i] = lam[i], 0.0      # all of i's weight moves: exactly 0, so the plane can be retired
        else:
            step = (grad[i] - grad[j]) / curvature
            lam[i] -= step
        lam[j] += step
        grad += step * (q[:, j] - q[:, i])
    return lam


class CuttingPlaneResult(NamedTuple):
    w: np.ndarray
    objective: float       #: J at ``w``
    lower_bound: float     #: the planes' dual value: J's minimum is at least this
    risk: float            #: mean risk at ``w``
    iterations: int
    converged: bool


def cutting_plane(risk_and_subgradient, dim, *, C, epsilon=0.01, max_iter=1000, inactive_limit=20, verbose=False):
    """Minimise :math:`\\tfrac12 \\lVert w \\rVert^2 + C R(w)` for a convex, nonnegative ``R``.

    Each iteration adds the plane of ``R`` at ``w``, solves the planes' model in its dual
    (:func:`solve_simplex_qp`, warm-started, to a tolerance of a tenth of the current
    objective gap, at most 0.01, as dlib's ``oca``) and drops planes that carried no weight
    for ``inactive_limit`` iterations.

    Parameters
    ----------
    risk_and_subgradient : callable ``w -> (R(w), subgradient (dim,))``
    dim : int
    C : float > 0
    epsilon : float > 0
        Stop when ``R(w_t)`` exceeds the planes' model at ``w_t`` by less than this
        (dlib's risk gap, measured with the dual's lower bound).

    Returns
    -------
    CuttingPlaneResult (the last ``w``: the model's minimiser)
    """
    slopes = np.zeros((1, dim))       # R >= 0 is the first plane
    offsets = np.zeros(1)
    gram = np.zeros((1, 1))
    idle = np.zeros(1, dtype=np.int64)
    w = np.zeros(dim)
    lam = np.ones(1)
    lower = 0.0
    for iteration in range(1, max_iter + 1):
        risk, grad = risk_and_subgradient(w)
        half_norm = 0.5 * float(w @ w)
        objective = half_norm + C * risk
        gap = risk - (lower - half_norm) / C      # the model's value at w is (lower - |w|^2 / 2) / C
        if verbose:
            print(f"iter {iteration:4d}  objective {objective:.5f}  risk {risk:.5f}  risk gap {gap:.5f}  "
                  f"planes {len(offsets)}")
        if iteration > 1 and gap < epsilon:
            return CuttingPlaneResult(w, objective, lower, risk, iteration, True)
        grad = np.asarray(grad, dtype=np.float64)
        products = slopes @ grad
        gram = np.block([[gram, products[:, None]], [products[None, :], np.array([[grad @ grad]])]])
        slopes = np.vstack([slopes, grad])
        offsets = np.append(offsets, risk - float(grad @ w))
        idle = np.append(idle, 0)
        tol = max(min(0.01, 0.1 * (objective - lower)), 1e-16)
        lam = solve_simplex_qp(gram, offsets, C, np.append(lam, 0.0), tol=tol)
        w = -C * (slopes.T @ lam)
        lower = C * float(offsets @ lam) - 0.5 * float(w @ w)
        idle = np.where(lam > 0, 0, idle + 1)
        keep = idle < inactive_limit
        if not keep.all():
            slopes, offsets, gram, idle, lam = slopes[keep], offsets[keep], gram[np.ix_(keep, keep)], idle[keep], \
                lam[keep]
    return CuttingPlaneResult(w, objective, lower, risk, max_iter, False)
