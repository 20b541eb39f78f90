"""Assignment 4 checker (PReLU and maxout): passes the solution, flags planted student bugs; the CLI.

Each mutant is a full replacement of one student function with a realistic mistake, run in the
solution's namespace; the checker must flag every one (the issue asks for at least 90%).
"""
import inspect
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from check_mutation_helpers import assert_planted_bug_flagged, assert_templates_pass
from scratchface.check import check
from scratchface.check.__main__ import main as check_main
from scratchface.check.assignments import solution_namespace, with_replaced
from scratchface.check.assignments import strip_solutions

SOLUTION = pathlib.Path(__file__).resolve().parents[1] / "notebooks/assignments/solutions/04_prelu_maxout.py"

PRELU_BACKWARD = '''
def prelu_backward(dout, cache):
    x, alpha = cache
    negative = x <= 0
    dx = DX
    other_axes = (0,) + tuple(range(2, x.ndim))
    dalpha = DALPHA
    return dx, dalpha
'''
DX = "np.where(negative, per_channel(alpha, x.ndim) * dout, dout)"
DALPHA = "(dout * x * negative).sum(axis=other_axes)"


def prelu_backward(dx=DX, dalpha=DALPHA):
    return PRELU_BACKWARD.replace("DX", dx).replace("DALPHA", dalpha)


def prelu_forward(expression):
    return f"def prelu_forward(x, alpha):\n    return {expression}, (x, alpha)\n"


MAXOUT_BACKWARD = '''
def maxout_backward(dout, cache):
    argmax, x_shape, pieces = cache
    k = np.arange(pieces).reshape((1, 1, pieces) + (1,) * (len(x_shape) - 2))
    chosen = np.expand_dims(argmax, 2) == k
    dx = chosen * np.expand_dims(dout, 2)
    return dx.reshape(x_shape).astype(dout.dtype)
'''

# name -> (function checked, replacement source, words expected in the diagnosis or None)
MUTANTS = {
    "prelu: one slope for all channels": ("prelu_forward", prelu_forward("np.where(x > 0, x, alpha[0] * x)"),
                                          "one slope"),
    "prelu: np.maximum shortcut": ("prelu_forward",
                                   prelu_forward("np.maximum(x, per_channel(alpha, x.ndim) * x)"), "np.maximum"),
    "prelu: alpha on the last axis": ("prelu_forward", prelu_forward("np.where(x > 0, x, alpha * x)"),
                                      "last axis"),
    "prelu: float64 output": ("prelu_forward", prelu_forward(
        "np.where(x > 0, x, per_channel(alpha.astype(np.float64), x.ndim) * x)"), "dtype"),
    "prelu: relu, alpha ignored": ("prelu_forward", prelu_forward("np.maximum(x, 0)"), "ReLU"),
    "prelu: dx forgot dout": ("prelu_backward", prelu_backward(
        dx="np.where(negative, per_channel(alpha, x.ndim), dout)"), "forgot dout"),
    "prelu: dx of the maximum shortcut": ("prelu_backward", prelu_backward(
        dx="np.where(x > per_channel(alpha, x.ndim) * x, dout, per_channel(alpha, x.ndim) * dout)"),
        "np.maximum"),
    "prelu: slope 1 at x == 0 in dx": ("prelu_backward", prelu_backward(
        dx="np.where(x >= 0, dout, per_channel(alpha, x.ndim) * dout)"), "at x == 0"),
    "prelu: dx and dalpha with x < 0 (x == 0 on the positive side)": ("prelu_backward", PRELU_BACKWARD.replace(
        "negative = x <= 0", "negative = x < 0").replace("DX", DX).replace("DALPHA", DALPHA), "at x == 0"),
    "maxout: hard-coded NCHW axes": ("maxout_forward", '''
def maxout_forward(x, *, pieces):
    n, d, h, w = x.shape
    grouped = x.reshape(n, d // pieces, pieces, h, w)
    return grouped.max(axis=2), (grouped.argmax(axis=2), x.shape, pieces)
''', None),
    "prelu: dalpha over every input": ("prelu_backward", prelu_backward(dalpha="(dout * x).sum(axis=other_axes)"),
                                       "every input"),
    "prelu: dalpha without x": ("prelu_backward", prelu_backward(dalpha="(dout * negative).sum(axis=other_axes)"),
                                "factor x"),
    "prelu: dalpha not summed over the batch": ("prelu_backward", prelu_backward(
        dalpha="(dout * x * negative).sum(axis=tuple(range(2, x.ndim)))"), "shape (C,)"),
    "prelu: dalpha one number": ("prelu_backward", prelu_backward(dalpha="(dout * x * negative).sum()"),
                                 "one value per channel"),
    "prelu: dalpha a mean": ("prelu_backward", prelu_backward(dalpha="(dout * x * negative).mean(axis=other_axes)"),
                             "mean"),
    "maxout: strided groups": ("maxout_forward", '''
def maxout_forward(x, *, pieces):
    n, d = x.shape[:2]
    grouped = x.reshape((n, pieces, d // pieces) + x.shape[2:])
    return grouped.max(axis=1), (grouped.argmax(axis=1), x.shape, pieces)
''', "consecutive"),
    "maxout: only (N, D) inputs": ("maxout_forward", '''
def maxout_forward(x, *, pieces):
    n, d = x.shape[:2]
    grouped = x.reshape(n, d // pieces, pieces)
    return grouped.max(axis=2), (grouped.argmax(axis=2), x.shape, pieces)
''', None),
    "maxout: gradient to every tied maximum": ("maxout_backward", '''
def maxout_backward(dout, cache):
    argmax, x_shape, pieces = cache
    x = _x_of_last_forward[0]
    grouped = x.reshape((x.shape[0], x.shape[1] // pieces, pieces) + x.shape[2:])
    mask = grouped == grouped.max(axis=2, keepdims=True)
    return (mask * np.expand_dims(dout, 2)).reshape(x_shape)

_x_of_last_forward = [None]
_solution_maxout_forward = maxout_forward
def maxout_forward(x, *, pieces):
    _x_of_last_forward[0] = x
    return _solution_maxout_forward(x, pieces=pieces)
''', "every tied maximum"),
    "maxout: dout to every piece": ("maxout_backward", '''
def maxout_backward(dout, cache):
    argmax, x_shape, pieces = cache
    return np.repeat(dout, pieces, axis=1)
''', "every piece"),
    "maxout: float64 dx": ("maxout_backward", MAXOUT_BACKWARD.replace(".astype(dout.dtype)", "")
                           .replace("chosen * ", "chosen.astype(float) * "), "dtype"),
}


@pytest.fixture(scope="module")
def solution():
    return solution_namespace(SOLUTION)


def test_solution_passes(solution):
    for name in ("prelu_forward", "prelu_backward", "maxout_forward", "maxout_backward"):
        result = check(solution[name], namespace=solution, verbose=False)
        assert result.passed, str(result)


def test_templates_reproduce_the_solution(solution):
    assert_templates_pass(solution, (("prelu_backward", prelu_backward()), ("maxout_backward", MAXOUT_BACKWARD),
                         ("prelu_forward", prelu_forward("np.where(x > 0, x, per_channel(alpha, x.ndim) * x)"))))


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_planted_bug_is_flagged(solution, mutant):
    assert_planted_bug_flagged(solution, MUTANTS[mutant])


def test_at_least_ten_mutants_per_assignment():
    assert len(MUTANTS) >= 10


def test_exact_zeros_are_not_a_mistake(solution):
    """PReLU at exactly 0 is 0 on either branch: a student writing x >= 0 must pass the forward."""
    namespace = with_replaced(solution, prelu_forward("np.where(x >= 0, x, per_channel(alpha, x.ndim) * x)"))
    assert check(namespace["prelu_forward"], namespace=namespace, verbose=False).passed


def test_maximum_shortcut_is_right_for_small_slopes():
    """The hint's claim, by hand: max(x, a x) is PReLU for 0 <= a <= 1, not for a = 1.5."""
    x = np.array([-2.0, 3.0])
    assert np.array_equal(np.maximum(x, 0.25 * x), [-0.5, 3.0])
    assert np.array_equal(np.maximum(x, 1.5 * x), [-2.0, 4.5])   # PReLU gives [-3, 3]


# ----------------------------------------------------------------------------- student stubs, CLI
@pytest.fixture(scope="module")
def student_file(tmp_path_factory):
    """The generated student version (every solution block a NotImplementedError stub)."""
    path = tmp_path_factory.mktemp("student") / "04_student.py"
    path.write_text(strip_solutions(SOLUTION.read_text(), source=str(SOLUTION)))
    return path


def test_stub_gives_a_clear_report(student_file, capsys):
    assert check_main(["prelu_forward", str(student_file)]) == 1
    out = capsys.readouterr().out
    assert "prelu_forward is not implemented yet (it raised NotImplementedError)" in out


def test_backward_stub_with_forward_stub(student_file, capsys):
    assert check_main(["prelu_backward", str(student_file)]) == 1
    assert "checked with your own prelu_forward: implement it first" in capsys.readouterr().out


def test_cli_passes_the_solution(capsys):
    assert check_main(["maxout_backward", str(SOLUTION)]) == 0
    assert "maxout_backward: passed all" in capsys.readouterr().out


def test_cli_flags_a_bug(tmp_path, capsys):
    buggy = tmp_path / "buggy.py"
    buggy.write_text("import numpy as np\n" + MUTANTS["prelu: one slope for all channels"][1])
    assert check_main(["prelu_forward", str(buggy)]) == 1
    out = capsys.readouterr().out
    assert "prelu_forward: " in out and "one slope" in out


def test_cli_usage_errors(tmp_path, capsys):
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    assert check_main(["prelu_forward", str(empty)]) == 2
    assert "defines no function 'prelu_forward'" in capsys.readouterr().err
    assert check_main(["prelu_forward", str(tmp_path / "missing.py")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_as_a_program(tmp_path, solution):
    buggy = tmp_path / "buggy.py"
    buggy.write_text("import numpy as np\n\n" + inspect.getsource(solution["maxout_forward"])
                     + MUTANTS["maxout: dout to every piece"][1])
    run = subprocess.run([sys.executable, "-m", "scratchface.check", "maxout_backward", str(buggy)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    assert "dout was copied to every piece" in run.stdout


def test_a_repeated_error_is_reported_twice_then_summarised(solution):
    namespace = with_replaced(solution, MUTANTS["prelu: alpha on the last axis"][1])
    result = check(namespace["prelu_forward"], namespace=namespace, verbose=False)
    raised = [p for p in result.problems if p.what.startswith("raised ValueError")]
    assert len(raised) == 2 and all("axis 1" in p.hint for p in raised)
    assert any(p.what == "ValueError was also raised on further cases (not listed)" for p in result.problems)
