"""Check a student's implementation against the reference math, and say what is wrong.

>>> from scratchface.check import check
>>> check(conv2d_backward)          # in a notebook: prints a report, returns a truthy/falsy result

From a shell (each check in a child process, with a time limit, never running the file's top-level
code; see :mod:`scratchface.check.sandbox`)::

    python -m scratchface.check conv2d_backward student.py
    python -m scratchface.check --all student.py            # every assignment function, a score table
    python -m scratchface.check grade submissions/ --out grades   # a folder -> grades.csv, grades.json

Each checker compares the student's function with independent references (finite differences, the
library's readable reference, formulas by hand) on random and edge-case inputs (padding, stride, odd
sizes, ties) and names the likely mistake (only when two failing cases agree on it). A function that
hands the step to scratchface's own implementation is reported and fails. ``checker_names()`` lists
what can be checked; :mod:`scratchface.check.course` the assignments and their points.
"""
from ._core import CheckResult, Problem, check, checker_names, get_checker

__all__ = ["check", "checker_names", "get_checker", "CheckResult", "Problem"]
