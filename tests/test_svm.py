"""The linear SVM against scipy.optimize solving the same primal problem, plus behaviour and errors."""
import numpy as np
import pytest
from scipy.optimize import minimize

from scratchface.detection.svm import LinearSVM, hinge_objective


def scipy_primal(x, y_pm, sample_c, intercept_scaling=1.0):
    """min 1/2 |w|^2 + 1/2 b^2/s^2 + sum C_i xi_i  s.t. xi_i >= 1 - y_i (w x_i + b), xi >= 0 (SLSQP)."""
    n, d = x.shape

    def split(z):
        return z[:d], z[d], z[d + 1:]

    def f(z):
        w, b, xi = split(z)
        return 0.5 * w @ w + 0.5 * b * b / intercept_scaling ** 2 + sample_c @ xi

    def grad(z):
        w, b, _ = split(z)
        return np.concatenate([w, [b / intercept_scaling ** 2], sample_c])

    a_margin = np.hstack([y_pm[:, None] * x, y_pm[:, None], np.eye(n)])  # y(wx+b) + xi - 1 >= 0
    cons = [{"type": "ineq", "fun": lambda z: a_margin @ z - 1.0, "jac": lambda z: a_margin}]
    bounds = [(None, None)] * (d + 1) + [(0, None)] * n
    z0 = np.concatenate([np.zeros(d + 1), np.full(n, 2.0)])  # strictly feasible start
    res = minimize(f, z0, jac=grad, constraints=cons, bounds=bounds, method="SLSQP",
                   options={"ftol": 1e-12, "maxiter": 2000})
    # status 8 ("positive directional derivative for linesearch"): no step lowers f any more, as at the
    # minimum with ftol near rounding (seen with SciPy 1.16-1.17 on AVX-512 machines); the point must still
    # be feasible, and the callers compare its objective with LinearSVM's, found by another algorithm
    assert res.success or res.status == 8, res.message
    assert np.all(a_margin @ res.x - 1.0 >= -1e-9) and np.all(res.x[d + 1:] >= -1e-12)
    w, b, _ = split(res.x)
    return w, b, res.fun


def make_problem(rng, n=40, d=5, overlap=1.0):
    y = np.where(rng.random(n) < 0.3, 1, -1)
    x = rng.standard_normal((n, d)) * overlap + y[:, None] * np.linspace(1, 0.2, d)
    return x, y


@pytest.mark.parametrize("C,class_weight", [(1.0, None), (0.1, None), (10.0, "balanced"),
                                            (1.0, {1: 3.0, -1: 0.5})])
def test_same_objective_as_scipy(rng, C, class_weight):
    x, y = make_problem(rng)
    svm = LinearSVM(C=C, class_weight=class_weight, tol=1e-10, max_iter=100000).fit(x, y)
    assert svm.converged_
    y_pm = np.where(y == 1, 1.0, -1.0)
    if class_weight == "balanced":
        per_class = {1: len(y) / (2 * np.sum(y == 1)), -1: len(y) / (2 * np.sum(y == -1))}
    else:
        per_class = class_weight or {1: 1.0, -1: 1.0}
    sample_c = C * np.array([per_class[v] for v in y])
    w, b, best = scipy_primal(x, y_pm, sample_c)
    ours = hinge_objective(svm.coef_, svm.intercept_, x, y_pm, sample_c)
    assert ours == pytest.approx(best, rel=1e-6)
    assert svm.objective(x, y) == pytest.approx(ours, rel=1e-12)
    np.testing.assert_allclose(svm.coef_, w, atol=1e-4)  # unique minimiser (strictly convex)
    assert svm.intercept_ == pytest.approx(b, abs=1e-4)


def test_without_intercept_and_scaling(rng):
    x, y = make_problem(rng, n=30, d=3)
    y_pm = np.where(y == 1, 1.0, -1.0)
    svm = LinearSVM(C=2.0, intercept_scaling=3.0, tol=1e-10, max_iter=100000).fit(x, y)
    *_, best = scipy_primal(x, y_pm, np.full(len(y), 2.0), intercept_scaling=3.0)
    assert svm.objective(x, y) == pytest.approx(best, rel=1e-6)
    svm0 = LinearSVM(C=2.0, fit_intercept=False, tol=1e-10, max_iter=100000).fit(x, y)
    assert svm0.intercept_ == 0.0
    w0, *_ = scipy_primal(np.hstack([x, np.zeros((len(x), 1))]), y_pm, np.full(len(y), 2.0), 1e-8)
    np.testing.assert_allclose(svm0.coef_, w0[:-1], atol=1e-4)  # b forced to ~0 by a huge penalty
    # the dual gives back w = sum alpha_i y_i x_i
    np.testing.assert_allclose(svm0.coef_, (svm0.dual_coef_ * y_pm) @ x, rtol=1e-10, atol=1e-12)
    assert np.all(svm0.dual_coef_ >= 0) and np.all(svm0.dual_coef_ <= 2.0 + 1e-12)


def test_separable_problem_predicts_labels_and_strings(rng):
    x = np.vstack([rng.normal(-3, 0.5, (20, 2)), rng.normal(3, 0.5, (20, 2))])
    y = np.array(["cat"] * 20 + ["face"] * 20)
    svm = LinearSVM(C=10.0).fit(x, y)
    np.testing.assert_array_equal(svm.classes_, ["cat", "face"])
    np.testing.assert_array_equal(svm.predict(x), y)
    assert np.all(svm.decision_function(x[20:]) > 0)
    again = LinearSVM(C=10.0).fit(x, y)
    np.testing.assert_array_equal(again.coef_, svm.coef_)  # seeded: reproducible


def test_errors(rng):
    x, y = make_problem(rng, n=10, d=2)
    with pytest.raises(ValueError, match="C must be"):
        LinearSVM(C=0).fit(x, y)
    with pytest.raises(ValueError, match="class_weight"):
        LinearSVM(class_weight="auto").fit(x, y)
    with pytest.raises(ValueError, match="not among the classes"):
        LinearSVM(class_weight={7: 2.0}).fit(x, y)
    with pytest.raises(ValueError, match="two classes"):
        LinearSVM().fit(x, np.zeros(10))
    with pytest.raises(ValueError, match="one label per row"):
        LinearSVM().fit(x, y[:5])
    with pytest.raises(ValueError, match="NaN"):
        LinearSVM().fit(np.full((10, 2), np.nan), y)
    with pytest.raises(RuntimeError, match="not fitted"):
        LinearSVM().predict(x)
    with pytest.raises(ValueError, match="features"):
        LinearSVM().fit(x, y).decision_function(np.zeros((3, 5)))
    with pytest.raises(TypeError, match="random_state"):
        LinearSVM(random_state="seed").fit(x, y)


def test_reference_equals_numba(rng):
    x, y = make_problem(rng, n=60, d=7)
    a = LinearSVM(C=0.7, class_weight="balanced", tol=1e-8, max_iter=5000, impl="reference").fit(x, y)
    b = LinearSVM(C=0.7, class_weight="balanced", tol=1e-8, max_iter=5000, impl="numba").fit(x, y)
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(b.dual_coef_, a.dual_coef_, rtol=1e-6, atol=1e-9)
