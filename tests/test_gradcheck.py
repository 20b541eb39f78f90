"""The gradient checker itself: it must find wrong gradients and pass right ones."""
import numpy as np
import pytest

from scratchface.gradcheck import check_function, check_layer, numerical_gradient, rel_error


def test_rel_error_definition():
    assert rel_error([1.0, 0.0], [1.0, 0.0]) == 0.0
    # |1 - 3| / (1 + 3) = 0.5, the larger of the two elements
    assert rel_error([1.0, 2.0], [3.0, 2.0]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="one shape"):
        rel_error(np.zeros(2), np.zeros(3))


def test_numerical_gradient_of_known_function(rng):
    x = rng.standard_normal((3, 4))
    # f = sum(sin(x) * x^2); df/dx = cos(x) x^2 + 2 x sin(x)
    num = numerical_gradient(lambda: np.sum(np.sin(x) * x ** 2), x)
    exact = np.cos(x) * x ** 2 + 2 * x * np.sin(x)
    assert rel_error(num, exact) < 1e-9
    assert np.all(np.isfinite(x))  # restored


def test_numerical_gradient_refuses_float32():
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda: 0.0, np.zeros(3, dtype=np.float32))


def _scale_forward(x, w):
    return x * w, (x, w)


def _scale_backward(dout, cache):
    x, w = cache
    return dout * w, dout * x


def _scale_backward_wrong(dout, cache):
    x, w = cache
    return dout * w, dout * x * 1.01  # a 1% mistake in dw


def test_check_layer_passes_right_and_flags_wrong(rng):
    inputs = {"x": rng.standard_normal((2, 3)), "w": rng.standard_normal((2, 3))}
    good = check_layer(_scale_forward, _scale_backward, inputs)
    assert good.passed and good.max_error < 1e-10
    bad = check_layer(_scale_forward, _scale_backward_wrong, inputs)
    assert not bad.passed
    assert bad.errors["x"] < 1e-10 and bad.errors["w"] > 1e-3


def test_check_layer_counts_gradients(rng):
    with pytest.raises(ValueError, match="gradients"):
        check_layer(_scale_forward, lambda d, c: d, {"x": rng.standard_normal(3), "w": rng.standard_normal(3)})


def test_check_function(rng):
    res = check_function(lambda x: np.sum(np.exp(x)), np.exp, rng.standard_normal(5))
    assert res.passed


def test_zero_gradient_is_exactly_zero():
    # f does not depend on x[1]: its numerical derivative must be exactly 0, whatever f's value
    x = np.array([0.3, 0.7])
    num = numerical_gradient(lambda: 12345.678 + 3.0 * x[0], x)
    assert num[1] == 0.0
    assert rel_error(num, [3.0, 0.0]) < 1e-9
