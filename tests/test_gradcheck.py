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


# ---------------------------------------------------------------- a backward that forgets a gradient

def _affine_forward(x, w, b):
    return x @ w + b, (x, w)


def _affine_backward_forgets_db(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout, None          # db forgotten: must not pass as 0.0


def test_forgotten_db_fails_with_a_clear_message(rng):
    inputs = {"x": rng.standard_normal((3, 4)), "w": rng.standard_normal((4, 2)), "b": rng.standard_normal(2)}
    result = check_layer(_affine_forward, _affine_backward_forgets_db, inputs)
    assert not result.passed
    assert result.errors["x"] < 1e-9 and result.errors["w"] < 1e-9   # the other two are right
    assert result.errors["b"] == np.inf
    assert any("None for 'b'" in p for p in result.problems), result.problems
    assert "None for 'b'" in result.report()


def test_misshapen_gradient_fails(rng):
    inputs = {"x": rng.standard_normal((2, 3)), "w": rng.standard_normal((2, 3))}
    result = check_layer(_scale_forward, lambda d, c: (d * c[1], (d * c[0]).ravel()), inputs)
    assert not result.passed and any("shape" in p for p in result.problems)


def _write_planted_package(root):
    """A package ``planted_layers`` with one layer module whose backward forgets ``db``, one without cases,
    and one private module that must be skipped."""
    pkg = root / "planted_layers"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "_private.py").write_text("def gradcheck_cases(rng):\n"
                                     "    raise AssertionError('private modules are skipped')\n")
    (pkg / "no_cases.py").write_text("X = 1\n")
    (pkg / "sub" / "affine.py").write_text(
        "from scratchface.gradcheck import GradcheckCase\n"
        "def forward(x, w, b):\n    return x @ w + b, (x, w)\n"
        "def backward(dout, cache):\n    x, w = cache\n    return dout @ w.T, x.T @ dout, None\n"
        "def gradcheck_cases(rng):\n"
        "    return [GradcheckCase('planted affine', forward, backward,\n"
        "            {'x': rng.standard_normal((3, 4)), 'w': rng.standard_normal((4, 2)),\n"
        "             'b': rng.standard_normal(2)})]\n")


def test_collect_walks_every_module_and_the_planted_case_fails(tmp_path, monkeypatch):
    from scratchface.gradcheck import collect_gradcheck_cases

    _write_planted_package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    cases = collect_gradcheck_cases(packages=("planted_layers",))
    assert [c.name for c in cases] == ["planted affine"]        # found in a subpackage, no list kept
    result = cases[0].run()
    assert not result.passed and result.errors["b"] == np.inf


def test_gradcheck_command_fails_on_the_planted_case(tmp_path, monkeypatch, capsys):
    from scratchface import cli, gradcheck

    _write_planted_package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "collect_gradcheck_cases",
                        lambda seed=0: gradcheck.collect_gradcheck_cases(seed, packages=("planted_layers",)))
    assert cli.main(["gradcheck"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "None for 'b'" in out and "0 passed, 1 failed" in out


def test_collect_finds_the_layer_and_loss_modules():
    from scratchface.gradcheck import collect_gradcheck_cases

    modules = {c.forward.__module__ for c in collect_gradcheck_cases()}
    for name in ("scratchface.layers.conv", "scratchface.layers.pooling", "scratchface.layers.roi",
                 "scratchface.losses.triplet"):
        assert name in modules, sorted(modules)
