"""The checker's machinery: reports, comparison, the CLI's exit codes, the assignment generator."""
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from scratchface.check import CheckResult, check, checker_names
from scratchface.check._core import call_student, compare
from scratchface.check.assignments import generate_assignments, strip_solutions

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_compare_names_the_worst_element_and_the_hint():
    result = CheckResult("f", n_cases=1)
    expected = np.zeros((2, 3))
    actual = expected.copy()
    actual[1, 2] = 0.5
    actual[0, 0] = 0.1
    assert not compare(result, actual, expected, what="out", hint=lambda a, e: "off by one?")
    (problem,) = result.problems
    assert "2 of 6 elements" in problem.what and "[1, 2]" in problem.what
    assert problem.hint == "off by one?"
    assert not result and "1 problem" in str(result)


def test_compare_reports_shapes_instead_of_broadcasting():
    result = CheckResult("f")
    assert not compare(result, np.zeros((3, 1)), np.zeros(3), what="out")
    assert "shape (3, 1), expected (3,)" in result.problems[0].what
    assert not compare(result, None, np.zeros(3), what="out")
    assert "returned None" in result.problems[1].what


def test_compare_passes_equal_arrays_and_treats_nan_as_wrong():
    result = CheckResult("f")
    assert compare(result, np.arange(4.0) + 1e-12, np.arange(4.0), what="out")
    assert result.passed
    assert not compare(result, np.array([np.nan, 1.0]), np.array([0.0, 1.0]), what="out")
    assert "[0]" in result.problems[0].what


def test_call_student_reports_exceptions_with_the_students_line():
    def student(x):
        raise NotImplementedError

    def buggy(x):
        return x[10]

    result = CheckResult("f")
    assert call_student(result, student, [1]) is None
    assert call_student(result, buggy, [1], case="x = [1]") is None
    assert "not implemented" in result.problems[0].what
    assert "IndexError" in result.problems[1].what and "x[10]" in result.problems[1].what
    assert result.problems[1].case == "x = [1]"


def test_check_rejects_what_it_cannot_check():
    with pytest.raises(TypeError, match="student_fn"):
        check(3)

    def no_such_assignment(x):
        return x

    with pytest.raises(ValueError, match="no checker for 'no_such_assignment'"):
        check(no_such_assignment)


def test_there_is_a_checker_for_every_assignment():
    names = checker_names()
    for expected in ("conv2d_backward", "nms", "iou"):
        assert expected in names


SOLUTION = '''\
import numpy as np


def relu(x):
    """ReLU."""
    ### BEGIN SOLUTION
    return np.maximum(x, 0)
    ### END SOLUTION


class Net:
    def forward(self, x):
        ### BEGIN SOLUTION
        y = relu(x)
        return y
        ### END SOLUTION
'''


def test_strip_solutions_keeps_indentation_and_everything_outside_the_blocks():
    student = strip_solutions(SOLUTION)
    assert "np.maximum" not in student and "y = relu(x)" not in student
    assert '    """ReLU."""\n    # TODO: your code here\n    raise NotImplementedError\n' in student
    assert "        # TODO: your code here\n        raise NotImplementedError\n" in student
    namespace = {}
    exec(compile(student, "student", "exec"), namespace)
    with pytest.raises(NotImplementedError):
        namespace["relu"](np.ones(2))


@pytest.mark.parametrize("text, message", [
    ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n### END SOLUTION\n", "without a BEGIN"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside the block"),
])
def test_strip_solutions_rejects_broken_markers(text, message):
    with pytest.raises(ValueError, match=message):
        strip_solutions(text, source="a.py")


def test_generated_assignments_are_up_to_date(tmp_path):
    solutions = REPO / "notebooks" / "assignments" / "solutions"
    if not any(solutions.glob("*.py")):
        pytest.skip("no assignment solutions in this checkout")
    for path in generate_assignments(solutions, tmp_path):
        committed = REPO / "notebooks" / "assignments" / path.name
        assert committed.is_file(), f"{committed} is missing: run python -m scratchface.check.assignments"
        assert committed.read_text() == path.read_text(), (
            f"{committed.name} differs from its solution with the solutions stripped: regenerate it with "
            "python -m scratchface.check.assignments notebooks/assignments/solutions notebooks/assignments")
        assert "BEGIN SOLUTION" not in path.read_text()


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "scratchface.check", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_cli_exit_codes(tmp_path):
    assert _cli("--list", cwd=tmp_path).returncode == 0
    missing = _cli("nms", str(tmp_path / "nope.py"), cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    broken = tmp_path / "broken.py"
    broken.write_text("import numpy as np\ndef nms(:\n")
    result = _cli("nms", str(broken), cwd=tmp_path)
    assert result.returncode == 2 and "did not import" in result.stderr
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    result = _cli("nms", str(empty), cwd=tmp_path)
    assert result.returncode == 2 and "defines no function 'nms'" in result.stderr
    result = _cli("no_such_function", str(empty), cwd=tmp_path)
    assert result.returncode == 2 and "no checker" in result.stderr


def test_a_variant_hint_needs_two_agreeing_failing_cases():
    from scratchface.check._core import VariantHint, _require_agreeing_cases

    result = CheckResult("f")
    result.add("a wrong", "case 1", VariantHint("mistake A"))
    result.add("b wrong", "case 2", VariantHint("mistake B"))
    result.add("c wrong", "case 3", VariantHint("mistake B"))
    result.add("d wrong", "case 3", "a plain hint stays")
    _require_agreeing_cases(result)
    assert [p.hint for p in result.problems] == ["", "mistake B", "mistake B", "a plain hint stays"]
    alone = CheckResult("f")
    alone.add("a wrong", "case 1", VariantHint("mistake A"))  # one failing case: nothing to disagree with
    _require_agreeing_cases(alone)
    assert alone.problems[0].hint == "mistake A"


def test_student_notebooks_come_out_as_ipynb(tmp_path):
    import json

    pytest.importorskip("jupytext")
    solutions = REPO / "notebooks" / "assignments" / "solutions"
    run = subprocess.run([sys.executable, "-m", "scratchface.check.assignments", str(solutions), str(tmp_path / "py"),
                          "--ipynb", str(tmp_path / "ipynb")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    notebooks = sorted((tmp_path / "ipynb").glob("*.ipynb"))
    assert [p.stem for p in notebooks] == sorted(p.stem for p in solutions.glob("*.py"))
    cells = json.loads(notebooks[0].read_text())["cells"]
    code = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert "raise NotImplementedError" in code and "BEGIN SOLUTION" not in code
