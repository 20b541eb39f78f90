"""Grade submissions: every assignment function of a file, or a folder of files, into a table, CSV and JSON.

The shape of otter-grader's and nbgrader's autograding, for this course's checkers::

    python -m scratchface.check --all alice.py                 # one submission: a score table
    python -m scratchface.check grade submissions/ --out grades # a folder: grades.csv, grades.json

A folder holds one ``.py`` or ``.ipynb`` per student (the student is the file name without its
suffix). A submission is graded on every function of each assignment it touches (a file defining
``iou`` is graded on ``iou`` and ``nms``; the missing one scores 0). Each function's check runs in its
own child process (:func:`scratchface.check.sandbox.run_isolated`) with a time limit and an
address-space limit; ``jobs`` checks run at once, so memory stays below ``jobs x memory_mb``. A
function scores its points (:data:`scratchface.check.course.ASSIGNMENTS`) when its check passes, 0
otherwise; the first problem's text is kept as the message. Helpers are checked before the
functions that call them (``DEPENDS_ON``).
"""
from __future__ import annotations

import concurrent.futures
import csv
import json
import pathlib
import re
from dataclasses import asdict, dataclass

from ..data.atomic import atomic_write
from ._core import DEFAULT_TIMEOUT, checker_names
from .course import DEPENDS_ON, assignment_of, expected_functions, points_of
from .sandbox import DEFAULT_MEMORY_MB, defined_functions, run_isolated

__all__ = ["Grade", "grade_file", "grade_folder", "write_csv", "write_json", "score_table", "submissions_in"]

FIELDS = ("student", "assignment", "function", "passed", "points", "max_points", "message")


@dataclass
class Grade:
    """One function of one student's submission, graded."""
    student: str
    assignment: str
    function: str
    passed: bool
    points: int
    max_points: int
    message: str = ""


def _first_message(result) -> str:
    if result.passed:
        return f"passed all {result.n_cases} checks"
    problem = result.problems[0]
    return problem.what + (f" -- likely mistake: {problem.hint}" if problem.hint else "")


def _ordered(names):
    """``names`` with each function's helpers (DEPENDS_ON) before it, otherwise in the given order."""
    out = []
    for name in names:
        for helper in DEPENDS_ON.get(name, ()):
            if helper in names and helper not in out:
                out.append(helper)
        if name not in out:
            out.append(name)
    return out


def _grade(student, name, passed, message):
    points = points_of(name)
    return Grade(student, assignment_of(name), name, bool(passed), points if passed else 0, points, message)


def grade_file(path, *, functions=None, timeout=DEFAULT_TIMEOUT, memory_mb=DEFAULT_MEMORY_MB, jobs=1) -> list:
    """Grade every assignment function of one submission; a list of :class:`Grade`, in notebook order.

    Parameters
    ----------
    path : str or pathlib.Path
        The student's ``.py`` or ``.ipynb`` file.
    functions : list of str, optional
        The functions to grade; default: every function of each assignment the file touches.
    timeout, memory_mb : float, int
        Per check: seconds and MiB of address space (see :func:`~scratchface.check.sandbox.run_isolated`).
    jobs : int
        Checks of this file run at once.
    """
    path = pathlib.Path(path)
    student = path.stem
    try:
        defined = defined_functions(path)
    except ValueError as error:  # a notebook that is not JSON, a missing file
        if functions:
            return [_grade(student, n, False, f"could not read {path.name}: {error}") for n in functions]
        return [Grade(student, "", "(file)", False, 0, 0, f"could not read {path.name}: {error}")]
    except SyntaxError as error:
        text = path.read_text(encoding="utf-8", errors="replace")
        found = [n for n in re.findall(r"^def\s+(\w+)\s*\(", text, flags=re.M) if n in checker_names()]
        names = list(functions) if functions else expected_functions(found)
        message = f"{path.name} does not parse: SyntaxError at line {error.lineno}: {error.msg}"
        if not names:
            return [Grade(student, "", "(file)", False, 0, 0, message)]
        return [_grade(student, n, False, message) for n in names]
    known = set(checker_names())
    names = list(functions) if functions else expected_functions(n for n in defined if n in known)
    if not names:  # keep the student in the table: nothing of the course was found
        return [Grade(student, "", "(file)", False, 0, 0, f"{path.name} defines no function of any assignment")]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"no checker for {', '.join(map(repr, unknown))}; see python -m scratchface.check --list")
    to_run = [n for n in _ordered(names) if n in defined]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
        futures = {n: pool.submit(run_isolated, path, n, timeout=timeout, memory_mb=memory_mb) for n in to_run}
        results = {n: f.result() for n, f in futures.items()}
    grades = []
    for name in names:
        if name not in results:
            grades.append(_grade(student, name, False, f"{path.name} defines no function {name!r}"))
            continue
        result = results[name]
        grades.append(_grade(student, name, result.passed, _first_message(result)))
    return grades


def submissions_in(folder) -> list:
    """The ``.py`` and ``.ipynb`` files of ``folder`` (not hidden, not ``__init__``), sorted."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise ValueError(f"folder {str(folder)!r} is not a directory")
    return sorted(p for p in folder.iterdir() if p.suffix in (".py", ".ipynb") and p.is_file()
                  and not p.name.startswith((".", "__")))


def grade_folder(folder, *, functions=None, timeout=DEFAULT_TIMEOUT, memory_mb=DEFAULT_MEMORY_MB, jobs=2) -> list:
    """Grade every submission of ``folder`` (:func:`submissions_in`), ``jobs`` checks at a time.

    Returns the :class:`Grade` rows of every student, students in file-name order.
    """
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    paths = submissions_in(folder)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(grade_file, p, functions=functions, timeout=timeout, memory_mb=memory_mb)
                   for p in paths]
        return [grade for future in futures for grade in future.result()]


def write_csv(grades, path):
    """One row per (student, function): ``student, assignment, function, passed, points, max_points, message``."""
    with atomic_write(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        for grade in grades:
            writer.writerow(asdict(grade))


def write_json(grades, path):
    """``{"grades": [row, ...], "totals": {student: [points, max_points]}}``."""
    totals = {}
    for grade in grades:
        got, most = totals.get(grade.student, (0, 0))
        totals[grade.student] = (got + grade.points, most + grade.max_points)
    payload = {"grades": [asdict(g) for g in grades], "totals": {s: list(t) for s, t in totals.items()}}
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(payload, indent=1))


def score_table(grades, *, width=60) -> str:
    """A plain-text table: one line per (student, function), then each student's total."""
    who = max([len("student")] + [len(g.student) for g in grades])
    what = max([len("function")] + [len(g.function) for g in grades])
    rule = "-" * (who + what + 12 + width)
    lines = [f"{'student':<{who}}  {'function':<{what}}  points  message", rule]
    totals = {}
    for g in grades:
        message = g.message if len(g.message) <= width else g.message[:width - 3] + "..."
        lines.append(f"{g.student:<{who}}  {g.function:<{what}}  {g.points:>2} / {g.max_points:<2} {message}")
        got, most = totals.get(g.student, (0, 0))
        totals[g.student] = (got + g.points, most + g.max_points)
    lines.append(rule)
    lines += [f"{student:<{who}}  {'total':<{what}}  {got:>2} / {most:<2}" for student, (got, most) in totals.items()]
    return "\n".join(lines)
