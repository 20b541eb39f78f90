"""Grading: a folder of synthetic submissions (correct, wrong, hanging, exiting, cheating) into CSV and JSON.

The submissions in ``tests/check_submissions`` were written by hand for this test; what each one
should score is stated here from what the file does (its docstring says it), not from the grader.
"""
import csv
import json
import pathlib
import re
import subprocess
import sys

import pytest

from scratchface.check import checker_names
from scratchface.check.course import ASSIGNMENTS, DEPENDS_ON, assignment_of, expected_functions, points_of
from scratchface.check.grade import Grade, grade_file, grade_folder, score_table, submissions_in, write_csv, write_json

REPO = pathlib.Path(__file__).resolve().parents[1]
SUBMISSIONS = REPO / "tests" / "check_submissions"

PASS = "passed all"
# student -> {function: words the first message must contain}; PASS for a pass
EXPECTED = {
    "s01_correct": {"iou": PASS, "nms": PASS},
    "s02_correct_loops": {"iou": PASS, "nms": PASS},
    "s03_correct_notebook": {"iou": PASS, "nms": PASS},
    "s04_wrong_iou_no_clip": {"iou": "IoU differs", "nms": PASS},
    "s05_wrong_nms_ge": {"iou": PASS, "nms": "kept indices"},
    "s06_wrong_nms_unsorted": {"iou": PASS, "nms": "kept indices"},
    "s07_hang_while_true": {"iou": PASS, "nms": "timed out after 3 s (in s07_hang_while_true.py, line 32, in nms"},
    "s08_hang_zero_area": {"iou": PASS, "nms": "timed out after 3 s (in s08_hang_zero_area.py"},
    "s09_sys_exit": {"iou": PASS, "nms": "called sys.exit(0) (in s09_sys_exit.py, line 34, in nms"},
    "s10_os_exit": {"iou": PASS, "nms": "called os._exit(0) (in s10_os_exit.py, line 33, in nms"},
    "s11_keyboard_interrupt": {"iou": "interrupted: KeyboardInterrupt (in s11_keyboard_interrupt.py, line 6",
                               "nms": PASS},
    "s12_segfault": {"iou": "crashed (SIGSEGV, signal 11) (in s12_segfault.py, line 8, in iou", "nms": PASS},
    "s13_huge_allocation": {"iou": "raised MemoryError", "nms": PASS},
    "s14_cheat_import": {"iou": "calls scratchface.detection.nms.iou", "nms": "calls scratchface.detection.nms.nms"},
    "s15_cheat_module": {"iou": "scratchface's own implementation", "nms": "scratchface's own implementation"},
    "s16_cheat_helper": {"iou": PASS, "nms": "imports scratchface.detection.nms"},
    "s17_top_level_hang": {"iou": PASS, "nms": PASS},
    "s18_syntax_error": {"iou": "does not parse: SyntaxError at line 6", "nms": "does not parse"},
    "s19_not_implemented": {"iou": "not implemented yet", "nms": "not implemented yet"},
    "s20_missing_nms": {"iou": PASS, "nms": "defines no function 'nms'"},
    "s21_iou_integer_dtype": {"iou": "integer", "nms": PASS},
    "s22_arcface_target_broken": {"arcface_target": "target differs",
                                  "arcface_loss_forward": "fix `arcface_target` first",
                                  "arcface_loss_backward": "fix `arcface_target` first"},
    "s23_arcface_correct": {"arcface_target": PASS, "arcface_loss_forward": PASS, "arcface_loss_backward": PASS},
    "s24_verification_correct": {"val_far": PASS, "val_at_far": PASS, "fit_threshold": PASS, "kfold_accuracy": PASS},
    "s25_numba_spin": {"iou": PASS, "nms": "timed out after 3 s (in s25_numba_spin.py, line 41, in nms"},
}


@pytest.fixture(scope="module")
def grades():
    return grade_folder(SUBMISSIONS, timeout=3, jobs=2)


def test_every_submission_is_graded_as_expected(grades):
    assert len(EXPECTED) >= 20 and {p.stem for p in submissions_in(SUBMISSIONS)} == set(EXPECTED)
    got = {}
    for g in grades:
        got.setdefault(g.student, {})[g.function] = g
    assert set(got) == set(EXPECTED)
    wrong = []
    for student, functions in EXPECTED.items():
        assert list(got[student]) == list(functions), student  # every function of the assignment, in order
        for name, words in functions.items():
            g = got[student][name]
            should_pass = words == PASS
            if g.passed != should_pass or words not in g.message:
                wrong.append(f"{student}.{name}: passed={g.passed}, {g.message!r}; expected {words!r}")
            assert g.points == (points_of(name) if should_pass else 0) and g.max_points == points_of(name)
    assert not wrong, "\n".join(wrong)


def test_csv_and_json_hold_one_row_per_student_and_function(grades, tmp_path):
    write_csv(grades, tmp_path / "g.csv")
    write_json(grades, tmp_path / "g.json")
    rows = list(csv.DictReader(open(tmp_path / "g.csv", encoding="utf-8")))
    assert [r["student"] for r in rows] == [g.student for g in grades]
    assert set(rows[0]) == {"student", "assignment", "function", "passed", "points", "max_points", "message"}
    payload = json.loads((tmp_path / "g.json").read_text())
    assert len(payload["grades"]) == len(rows)
    total = sum(int(r["points"]) for r in rows if r["student"] == "s01_correct")
    assert payload["totals"]["s01_correct"] == [total, points_of("iou") + points_of("nms")] == [5, 5]
    assert payload["totals"]["s14_cheat_import"][0] == 0


def test_score_table_lists_totals():
    grades = [Grade("ann", "05_iou_nms", "iou", True, 2, 2, "passed all 6 checks"),
              Grade("ann", "05_iou_nms", "nms", False, 0, 3, "x" * 200)]
    table = score_table(grades)
    assert re.search(r"ann\s+total\s+2 / 5", table) and "x" * 57 + "..." in table


def test_the_course_table_matches_the_checkers_and_the_notebooks():
    listed = [name for functions in ASSIGNMENTS.values() for name in functions]
    assert sorted(listed) == checker_names()  # every checker belongs to exactly one assignment
    for assignment, functions in ASSIGNMENTS.items():
        text = (REPO / "notebooks" / "assignments" / "solutions" / f"{assignment}.py").read_text()
        checked = list(dict.fromkeys(re.findall(r"^check\((\w+)\)", text, flags=re.M)))
        assert checked == list(functions), assignment
    for name, helpers in DEPENDS_ON.items():
        assert all(assignment_of(h) == assignment_of(name) for h in helpers)
    assert expected_functions(["iou"]) == ["iou", "nms"]
    with pytest.raises(ValueError, match="no assignment asks for a function named 'relu'"):
        assignment_of("relu")


def test_grade_rejects_what_it_cannot_grade(tmp_path):
    with pytest.raises(ValueError, match="is not a directory"):
        grade_folder(tmp_path / "nope")
    with pytest.raises(ValueError, match="jobs must be a positive int"):
        grade_folder(SUBMISSIONS, jobs=0)
    with pytest.raises(ValueError, match="no checker for 'relu'"):
        grade_file(SUBMISSIONS / "s01_correct.py", functions=["relu"])


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "scratchface.check", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_cli_all_and_grade(tmp_path):
    run = _cli("--all", str(SUBMISSIONS / "s01_correct.py"), cwd=tmp_path)
    assert run.returncode == 0 and re.search(r"s01_correct\s+total\s+5 / 5", run.stdout), run.stdout + run.stderr
    run = _cli("--all", str(SUBMISSIONS / "s09_sys_exit.py"), "--timeout", "3", cwd=tmp_path)
    assert run.returncode == 1 and "called sys.exit(0)" in run.stdout   # never an exit 0 without output
    run = _cli("nms", str(SUBMISSIONS / "s09_sys_exit.py"), cwd=tmp_path)
    assert run.returncode == 1 and "called sys.exit(0)" in run.stdout
    folder = tmp_path / "subs"
    folder.mkdir()
    for name in ("s01_correct.py", "s03_correct_notebook.ipynb", "s14_cheat_import.py"):
        (folder / name).write_bytes((SUBMISSIONS / name).read_bytes())
    run = _cli("grade", str(folder), "--out", str(tmp_path / "out"), "--timeout", "3", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(open(tmp_path / "out.csv", encoding="utf-8")))
    assert [(r["student"], r["function"], r["points"]) for r in rows] == [
        ("s01_correct", "iou", "2"), ("s01_correct", "nms", "3"), ("s03_correct_notebook", "iou", "2"),
        ("s03_correct_notebook", "nms", "3"), ("s14_cheat_import", "iou", "0"), ("s14_cheat_import", "nms", "0")]
    assert _cli("grade", str(tmp_path / "nope"), cwd=tmp_path).returncode == 2


def test_every_student_keeps_a_row(tmp_path):
    (tmp_path / "broken.ipynb").write_text("{not json")
    (tmp_path / "nothing.py").write_text("x = 1\n")
    (tmp_path / "garbled.py").write_text("def f(:\n")
    grades = grade_folder(tmp_path, timeout=3)
    assert [(g.student, g.function, g.points, g.max_points) for g in grades] == [
        ("broken", "(file)", 0, 0), ("garbled", "(file)", 0, 0), ("nothing", "(file)", 0, 0)]
    messages = [g.message for g in grades]
    assert "could not read broken.ipynb" in messages[0] and "does not parse" in messages[1]
    assert "defines no function of any assignment" in messages[2]
