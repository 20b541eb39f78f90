"""The grader survives any submission: child processes, time limits, exits, crashes, locations, honesty."""
import json
import pathlib
import textwrap

import numpy as np
import pytest

from scratchface.check import check
from scratchface.check._core import CheckResult, call_student, student_location
from scratchface.check._honesty import delegation
from scratchface.check.sandbox import defined_functions, load_cells, load_namespace, run_isolated

SUBMISSIONS = pathlib.Path(__file__).resolve().parent / "check_submissions"


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_only_definitions_run_never_the_top_level_code(tmp_path):
    path = _write(tmp_path, "student.py", """\
        import numpy as np
        EPS = 1e-5
        SIZE = 2 * 3
        made = np.zeros(3)
        def f(x):
            return x + EPS
        print("top level ran")
        raise RuntimeError("top level ran")
        """)
    namespace = load_namespace(path)
    assert namespace["f"](1.0) == 1.0 + 1e-5 and namespace["SIZE"] == 6
    assert "made" not in namespace  # an assignment that calls something is demonstration code
    assert defined_functions(path) == ["f"]


def test_a_notebook_is_read_cell_by_cell_without_its_magics():
    cells = load_cells(SUBMISSIONS / "s03_correct_notebook.ipynb")
    assert len(cells) == 4 and cells[0][0].endswith("s03_correct_notebook.ipynb, cell 2")
    assert "%matplotlib" not in cells[0][1] and "import numpy" in cells[0][1]
    assert defined_functions(SUBMISSIONS / "s03_correct_notebook.ipynb") == ["iou", "nms"]


def test_the_location_is_the_students_line_not_numpys(tmp_path):
    path = _write(tmp_path, "student.py", """\
        import numpy as np
        def iou(boxes_a, boxes_b, *, offset=0):
            return np.sum(boxes_a, axis=5)
        """)
    namespace = load_namespace(path)
    result = CheckResult("iou")
    call_student(result, namespace["iou"], np.zeros((2, 4)), np.zeros((2, 4)))
    (problem,) = result.problems
    assert "AxisError" in problem.what
    assert "(in student.py, line 3, in iou: return np.sum(boxes_a, axis=5))" in problem.what
    assert student_location(None) == ""


@pytest.mark.parametrize("body, words", [
    ("while True:\n        pass", "timed out after 1 s (in student.py, line 3, in nms: while True:)"),
    ("import sys\n    sys.exit(0)", "called sys.exit(0) (in student.py, line 4, in nms: sys.exit(0))"),
    ("import os\n    os._exit(3)", "called os._exit(3) (in student.py, line 4, in nms: os._exit(3))"),
    ("raise KeyboardInterrupt", "interrupted: KeyboardInterrupt (in student.py, line 3, in nms"),
])
def test_in_process_check_never_hangs_exits_or_passes(tmp_path, body, words):
    path = _write(tmp_path, "student.py", "import numpy as np\ndef nms(boxes, scores, iou_threshold=0.5, "
                                          f"mode='union', *, offset=0):\n    {body}\n")
    namespace = load_namespace(path)
    result = check(namespace["nms"], namespace=namespace, verbose=False, timeout=1)
    assert not result.passed
    assert words in str(result), str(result)


def test_check_rejects_a_bad_timeout():
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        check(lambda boxes_a, boxes_b: None, "iou", {}, verbose=False, timeout=-1)


@pytest.mark.parametrize("submission, function, words", [
    ("s07_hang_while_true.py", "nms", "timed out after 2 s (in s07_hang_while_true.py, line 32, in nms: while True:)"),
    ("s25_numba_spin.py", "nms", "timed out after 2 s (in s25_numba_spin.py, line 41, in nms"),
    ("s12_segfault.py", "iou", "crashed (SIGSEGV, signal 11) (in s12_segfault.py, line 8, in iou"),
    ("s10_os_exit.py", "nms", "called os._exit(0)"),
    ("s13_huge_allocation.py", "iou", "raised MemoryError"),
    ("s18_syntax_error.py", "iou", "s18_syntax_error.py did not load: SyntaxError"),
    ("s20_missing_nms.py", "nms", "defines no function 'nms'"),
])
def test_a_child_process_turns_every_failure_into_a_clear_result(submission, function, words):
    result = run_isolated(SUBMISSIONS / submission, function, timeout=2, grace=1.0)
    assert not result.passed
    assert words in str(result), str(result)


def test_a_hang_elsewhere_in_the_file_does_not_block_a_check():
    result = run_isolated(SUBMISSIONS / "s17_top_level_hang.py", "iou", timeout=5)
    assert result.passed, str(result)
    result = run_isolated(SUBMISSIONS / "s07_hang_while_true.py", "iou", timeout=5)
    assert result.passed, str(result)


def test_run_isolated_rejects_bad_limits(tmp_path):
    with pytest.raises(ValueError, match="timeout"):
        run_isolated(SUBMISSIONS / "s01_correct.py", "iou", timeout=0)
    with pytest.raises(ValueError, match="memory_mb"):
        run_isolated(SUBMISSIONS / "s01_correct.py", "iou", memory_mb=10)
    with pytest.raises(ValueError, match="does not exist"):
        run_isolated(tmp_path / "nope.py", "iou")


DELEGATING = {
    "from a module, renamed": ("from scratchface.detection.nms import nms as lib_nms",
                               "return lib_nms(boxes, scores, iou_threshold)"),
    "through the module": ("from scratchface.detection import nms as m", "return m.nms(boxes, scores)"),
    "by its dotted path": ("import scratchface.detection.nms", "return scratchface.detection.nms.nms(boxes, scores)"),
    "imported inside": ("", "from scratchface.detection.nms import nms as n\n    return n(boxes, scores)"),
    "imported by name": ("import importlib",
                         "return importlib.import_module('scratchface.detection.nms').nms(boxes, scores)"),
    "the fast kernel": ("from scratchface.kernels import nms as k", "return k.greedy_nms(boxes, scores)"),
}


@pytest.mark.parametrize("label", sorted(DELEGATING))
def test_handing_the_step_to_the_library_is_reported_and_fails(tmp_path, label):
    header, body = DELEGATING[label]
    path = _write(tmp_path, "student.py", f"import numpy as np\n{header}\n\n"
                                          "def helper(boxes, scores, iou_threshold):\n"
                                          f"    {body}\n\n"
                                          "def nms(boxes, scores, iou_threshold=0.5, mode='union', *, offset=0):\n"
                                          "    return helper(boxes, scores, iou_threshold)\n")
    namespace = load_namespace(path)
    assert "scratchface.detection.nms" in delegation("nms", namespace["nms"], namespace) or \
        "scratchface.kernels.nms" in delegation("nms", namespace["nms"], namespace)
    result = check(namespace["nms"], namespace=namespace, verbose=False)
    assert not result.passed and "own implementation of this step" in str(result)
    assert result.n_cases == 0  # the check did not run: the library's answer would have passed


def test_other_parts_of_the_library_stay_allowed():
    namespace = load_namespace(SUBMISSIONS / "s23_arcface_correct.py")  # uses the library's softmax
    assert delegation("arcface_loss_forward", namespace["arcface_loss_forward"], namespace) == ""
    assert check(namespace["arcface_loss_forward"], namespace=namespace, verbose=False).passed


def test_a_broken_helper_is_named_first():
    namespace = load_namespace(SUBMISSIONS / "s22_arcface_target_broken.py")
    for name in ("arcface_loss_forward", "arcface_loss_backward"):
        result = check(namespace[name], namespace=namespace, verbose=False)
        assert not result.passed
        assert result.problems[0].hint.startswith("fix `arcface_target` first"), str(result)
    namespace["arcface_target"] = load_namespace(SUBMISSIONS / "s23_arcface_correct.py")["arcface_target"]
    # with a right helper the same forward passes: only the helper was wrong
    assert check(namespace["arcface_loss_forward"], namespace=namespace, verbose=False).passed


def test_the_notebook_json_is_valid():
    notebook = json.loads((SUBMISSIONS / "s03_correct_notebook.ipynb").read_text())
    assert notebook["nbformat"] == 4
