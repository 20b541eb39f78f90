"""Shared by the tests of scratchface.check: run an assignment's solution, plant bugs in it.

A *mutant* is a realistic student mistake written as a full replacement of one solution function
(source code). It is exec-ed into a copy of the solution notebook's namespace, so it can call the
solution's other functions, and the checker of that function must flag it.
"""
from __future__ import annotations

import contextlib
import io
import pathlib
from dataclasses import dataclass

from scratchface.check import get_checker
from scratchface.check._core import run_checker
from scratchface.check.assignments import with_replaced

REPO = pathlib.Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "notebooks" / "assignments" / "solutions"
ASSIGNMENTS = REPO / "notebooks" / "assignments"


def run_notebook_file(path) -> tuple[dict, str]:
    """Execute a percent-format notebook as a script (top to bottom); its namespace and printout."""
    path = pathlib.Path(path)
    namespace = {"__name__": "__notebook__", "__file__": str(path)}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(path.read_text(), str(path), "exec"), namespace)
    try:
        import matplotlib.pyplot as plt  # the notebooks' "try it" cells may draw

        plt.close("all")
    except ImportError:
        pass
    return namespace, out.getvalue()


@dataclass
class Mutant:
    """A planted bug: ``source`` redefines the function ``name``; ``hint`` (optional) is a fragment
    the checker's likely-mistake text must contain."""
    label: str
    name: str
    source: str
    hint: str = ""


def run_mutant(namespace: dict, mutant: Mutant):
    """The checker's result on the solution namespace with ``mutant`` planted, as ``check()`` reports
    it (hints kept only when two failing cases agree, a broken helper named first)."""
    planted = with_replaced(namespace, mutant.source)
    return run_checker(mutant.name, planted[mutant.name], planted, timeout=None)


def assert_mutants_flagged(namespace, mutants, *, min_fraction=1.0):
    """Every mutant is flagged (at least ``min_fraction`` of them) and each named hint is given."""
    missed, wrong_hint = [], []
    for mutant in mutants:
        result = run_mutant(namespace, mutant)
        if result.passed:
            missed.append(mutant.label)
        elif mutant.hint and not any(mutant.hint in p.hint for p in result.problems):
            wrong_hint.append(f"{mutant.label}: expected a hint containing {mutant.hint!r}, got "
                              f"{[p.hint for p in result.problems][:3]}")
    flagged = 1 - len(missed) / len(mutants)
    assert flagged >= min_fraction, f"mutants not flagged: {missed}"
    assert not wrong_hint, "\n".join(wrong_hint)
    return flagged


def assert_solution_passes(solution, names):
    """The solution notebook printed a pass for each checked function, and passes again when re-checked."""
    namespace, printed = solution
    for name in names:
        assert f"{name}: passed" in printed
        result = get_checker(name)(namespace[name], namespace)
        assert result.passed, str(result)
        assert result.n_cases >= 3


def assert_student_version_generated(solution_path):
    """The student notebook is the solution with its blocks stripped (regenerate with
    ``python -m scratchface.check.assignments notebooks/assignments/solutions notebooks/assignments``)."""
    from scratchface.check.assignments import strip_solutions

    student = (ASSIGNMENTS / pathlib.Path(solution_path).name).read_text()
    assert student == strip_solutions(pathlib.Path(solution_path).read_text()), \
        "student version out of date: regenerate it"
    assert "### BEGIN SOLUTION" not in student and student.count("raise NotImplementedError") >= 2


def assert_planted_bug_flagged(solution, mutant):
    """``mutant = (name, source, words)``: with ``source`` planted the checker of ``name`` fails,
    and its report contains ``words`` (unless None). For the layer checkers' ``MUTANTS`` tables."""
    from scratchface.check import check

    name, source, words = mutant
    namespace = with_replaced(solution, source)
    result = check(namespace[name], namespace=namespace, verbose=False)
    assert not result.passed, f"planted bug in {name!r} passed the checker"
    if words is not None:
        assert words in str(result), str(result)


def assert_templates_pass(solution, templates):
    """Each ``(name, source)`` template, planted into the solution, passes the checker of ``name``."""
    from scratchface.check import check

    for name, source in templates:
        namespace = with_replaced(solution, source)
        assert check(namespace[name], namespace=namespace, verbose=False).passed, name
