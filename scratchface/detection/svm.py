"""A linear support vector machine: L2-regularised hinge loss by dual coordinate descent.

The classifier of the Dalal & Triggs detector (and of other places that need
a linear max-margin classifier). Two classes, dense features.

Primal problem (what :meth:`LinearSVM.objective` evaluates):

.. math::
    \\min_{w, b} \\; \\tfrac12 \\lVert w \\rVert^2 + \\tfrac12 b^2 / s^2
    + \\sum_i C_i \\max(0, 1 - y_i (w^\\top x_i + b)), \\qquad y_i \\in \\{-1, +1\\}

with :math:`C_i = C \\cdot \\text{class\\_weight}[y_i]` and :math:`s` the
``intercept_scaling``: as in LIBLINEAR, the intercept is the weight of an
extra constant feature of value :math:`s`, so it is (lightly) regularised.
The dual is a box-constrained quadratic program,

.. math::
    \\min_\\alpha \\; \\tfrac12 \\alpha^\\top Q \\alpha - \\mathbf 1^\\top \\alpha,
    \\quad 0 \\le \\alpha_i \\le C_i, \\quad Q_{ij} = y_i y_j \\tilde x_i^\\top \\tilde x_j,

solved one coordinate at a time (Hsieh et al. 2008): with
:math:`w = \\sum_i \\alpha_i y_i \\tilde x_i` kept up to date, the gradient of
coordinate :math:`i` is :math:`G = y_i w^\\top \\tilde x_i - 1` and the exact
minimiser along it is :math:`\\alpha_i \\leftarrow \\operatorname{clip}(\\alpha_i - G / Q_{ii}, 0, C_i)`.

References
----------
C.-J. Hsieh, K.-W. Chang, C.-J. Lin, S. S. Keerthi, S. Sundararajan, "A Dual
Coordinate Descent Method for Large-scale Linear SVM", ICML 2008 (Algorithm 1).
"""
from __future__ import annotations

import numpy as np

from .._validation import as_generator, check_array, check_choice, check_positive_float, check_positive_int

__all__ = ["LinearSVM", "hinge_objective"]


def hinge_objective(w, b, x, y, sample_c, intercept_scaling=1.0, fit_intercept=True):
    """The primal objective above for labels ``y`` in {-1, +1} and per-sample ``C_i``."""
    margins = y * (x @ w + (b if fit_intercept else 0.0))
    reg = 0.5 * float(w @ w) + (0.5 * b * b / intercept_scaling ** 2 if fit_intercept else 0.0)
    return reg + float(np.sum(sample_c * np.maximum(0.0, 1.0 - margins)))


class LinearSVM:
    """Linear SVM, L2-regularised hinge loss, dual coordinate descent.

    Parameters
    ----------
    C : float > 0
        Weight of the hinge losses against the regulariser (larger: fit the
        training set harder).
    class_weight : None, 'balanced' or dict {label: weight}
        Multiplies ``C`` per class. ``'balanced'``: ``n_samples / (2 * n_in_class)``
        (useful with many more negatives than positives, as in detection).
    fit_intercept : bool
    intercept_scaling : float > 0
        Value of the constant feature whose weight is the intercept.
    tol : float > 0
        Stop when the projected gradients' spread ``max - min`` is below ``tol``.
    max_iter : int
        Maximum passes over the data.
    random_state : int or numpy.random.Generator
        Seeds the order in which coordinates are visited.
    impl : {'auto', 'reference', 'numba'}
        ``'reference'``: each pass in NumPy (readable); ``'auto'``/``'numba'``:
        the same pass compiled by Numba (same result up to rounding).

    Attributes
    ----------
    coef_ : array, shape (D,)
    intercept_ : float
    classes_ : array, shape (2,)
        The labels; ``classes_[1]`` is the positive class (score > 0).
    dual_coef_ : array, shape (N,)
        The :math:`\\alpha_i` (support vectors have :math:`\\alpha_i > 0`).
    n_iter_ : int
    converged_ : bool

    Examples
    --------
    >>> svm = LinearSVM(C=1.0, class_weight="balanced").fit(features, labels)
    >>> scores = svm.decision_function(features)   # > 0: classes_[1]
    """

    def __init__(self, C=1.0, class_weight=None, *, fit_intercept=True, intercept_scaling=1.0,
                 tol=1e-4, max_iter=1000, random_state=0, impl="auto"):
        self.C = C
        self.class_weight = class_weight
        self.fit_intercept = fit_intercept
        self.intercept_scaling = intercept_scaling
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.impl = impl

    # ------------------------------------------------------------------ helpers
    def _check_params(self):
        check_positive_float(self.C, "C")
        check_positive_float(self.intercept_scaling, "intercept_scaling")
        check_positive_float(self.tol, "tol")
        check_positive_int(self.max_iter, "max_iter")
        check_choice(self.impl, "impl", ("auto", "reference", "numba"))
        cw = self.class_weight
        if not (cw is None or cw == "balanced" or isinstance(cw, dict)):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict {{label: weight}}, got {cw!r}")

    def _sample_c(self, y_pm, labels):
        weights = np.ones(2)
        if self.class_weight == "balanced":
            counts = np.array([np.sum(y_pm < 0), np.sum(y_pm > 0)])
            weights = len(y_pm) / (2.0 * counts)
        elif isinstance(self.class_weight, dict):
            for k, label in enumerate(self.classes_):
                value = self.class_weight.get(label.item() if hasattr(label, "item") else label, 1.0)
                weights[k] = check_positive_float(value, f"class_weight[{label!r}]")
            unknown = set(self.class_weight) - set(self.classes_.tolist())
            if unknown:
                raise ValueError(f"class_weight has labels {sorted(unknown)} not among the classes "
                                 f"{self.classes_.tolist()}")
        return float(self.C) * np.where(y_pm > 0, weights[1], weights[0])

    def _augment(self, x):
        if not self.fit_intercept:
            return x
        return np.hstack([x, np.full((x.shape[0], 1), float(self.intercept_scaling))])

    # ------------------------------------------------------------------ API
    def fit(self, x, y):
        """Train on features ``x`` (N, D) and two-valued labels ``y`` (N,)."""
        self._check_params()
        x = np.asarray(x) if isinstance(x, (list, tuple)) else x
        check_array(x, "x", ndim=2, dtype_kind="fiu", finite=True)
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"y must be 1-D with one label per row of x ({x.shape[0]}), got shape {y.shape}")
        self.classes_ = np.unique(y)
        if self.classes_.size != 2:
            raise ValueError(f"y must hold exactly two classes, got {self.classes_.size}: "
                             f"{self.classes_.tolist()[:5]}")
        y_pm = np.where(y == self.classes_[1], 1.0, -1.0)
        upper = self._sample_c(y_pm, self.classes_)
        xa = np.ascontiguousarray(self._augment(np.asarray(x, dtype=np.float64)))
        alpha, w, n_iter, converged = _dual_coordinate_descent(
            xa, y_pm, upper, self.tol, self.max_iter, as_generator(self.random_state, "random_state"), self.impl)
        self.dual_coef_ = alpha
        self.n_iter_, self.converged_ = n_iter, converged
        if self.fit_intercept:
            self.coef_ = w[:-1].copy()
            self.intercept_ = float(w[-1] * self.intercept_scaling)
        else:
            self.coef_, self.intercept_ = w, 0.0
        self._sample_c_fit = upper
        return self

    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            raise RuntimeError("this LinearSVM is not fitted yet: call fit(x, y) first")

    def decision_function(self, x):
        """Signed scores ``x @ coef_ + intercept_``, shape (N,); > 0 means ``classes_[1]``."""
        self._check_fitted()
        x = np.asarray(x) if isinstance(x, (list, tuple)) else x
        check_array(x, "x", ndim=(1, 2), dtype_kind="fiu", finite=True)
        if x.shape[-1] != self.coef_.shape[0]:
            raise ValueError(f"x must have {self.coef_.shape[0]} features, got {x.shape[-1]}")
        return x @ self.coef_ + self.intercept_

    def predict(self, x):
        """Labels (from ``classes_``), shape (N,)."""
        return np.where(self.decision_function(x) > 0, self.classes_[1], self.classes_[0])

    def objective(self, x, y):
        """The primal objective of the fitted ``coef_``, ``intercept_`` on ``(x, y)``."""
        self._check_fitted()
        y_pm = np.where(np.asarray(y) == self.classes_[1], 1.0, -1.0)
        return hinge_objective(self.coef_, self.intercept_, np.asarray(x, dtype=np.float64), y_pm,
                               self._sample_c(y_pm, self.classes_), self.intercept_scaling,
                               self.fit_intercept)


def _dual_coordinate_descent(x, y, upper, tol, max_iter, rng, impl="auto"):
    """Hsieh et al. 2008, Algorithm 1 (without shrinking). Returns alpha, w, passes, converged."""
    n, d = x.shape
    alpha = np.zeros(n)
    w = np.zeros(d)
    q_diag = np.einsum("ij,ij->i", x, x)
    one_pass = _one_pass if impl == "reference" else _numba_pass()
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        pg_max, pg_min = one_pass(x, y, upper, q_diag, alpha, w, rng.permutation(n))
        if pg_max - pg_min < tol and n_iter > 1:
            converged = True
            break
    return alpha, w, n_iter, converged


def _one_pass(x, y, upper, q_diag, alpha, w, order):
    """One pass over the coordinates in ``order``; updates ``alpha`` and ``w`` in place.

    Returns the largest and smallest projected gradient seen (the stopping test).
    """
    pg_max, pg_min = -np.inf, np.inf
    for i in order:
        xi = x[i]
        g = y[i] * float(xi @ w) - 1.0
        a = alpha[i]
        # projected gradient: zero where the box stops the move
        pg = min(g, 0.0) if a == 0.0 else (max(g, 0.0) if a == upper[i] else g)
        pg_max, pg_min = max(pg_max, pg), min(pg_min, pg)
        if pg != 0.0 and q_diag[i] > 0.0:
            new = min(max(a - g / q_diag[i], 0.0), upper[i])
            if new != a:
                w += (new - a) * y[i] * xi
                alpha[i] = new
    return pg_max, pg_min


_NUMBA_PASS = []


def _numba_pass():
    """``_one_pass`` compiled by Numba (imported lazily, compiled once per process or cached)."""
    if not _NUMBA_PASS:
        import numba  # lazy: importing scratchface must not import numba

        _NUMBA_PASS.append(numba.njit(cache=True)(_one_pass_loops))
    return _NUMBA_PASS[0]


def _one_pass_loops(x, y, upper, q_diag, alpha, w, order):
    """``_one_pass`` with the dot product and the update written as loops (for Numba)."""
    d = x.shape[1]
    pg_max, pg_min = -np.inf, np.inf
    for i in order:
        dot = 0.0
        for k in range(d):
            dot += x[i, k] * w[k]
        g = y[i] * dot - 1.0
        a = alpha[i]
        if a == 0.0:
            pg = min(g, 0.0)
        elif a == upper[i]:
            pg = max(g, 0.0)
        else:
            pg = g
        pg_max, pg_min = max(pg_max, pg), min(pg_min, pg)
        if pg != 0.0 and q_diag[i] > 0.0:
            new = min(max(a - g / q_diag[i], 0.0), upper[i])
            if new != a:
                step = (new - a) * y[i]
                for k in range(d):
                    w[k] += step * x[i, k]
                alpha[i] = new
    return pg_max, pg_min
