"""Check a student's implementation against the reference math, and say what is wrong.

>>> from scratchface.check import check
>>> check(conv2d_backward)          # in a notebook: prints a report, returns a truthy/falsy result

From a shell::

    python -m scratchface.check conv2d_backward student.py

Each checker compares the student's function with independent references (finite differences, the
library's readable reference, formulas by hand) on random and edge-case inputs (padding, stride, odd
sizes, ties) and names the likely mistake. ``checker_names()`` lists what can be checked.
"""
from ._core import CheckResult, Problem, check, checker_names, get_checker

__all__ = ["check", "checker_names", "get_checker", "CheckResult", "Problem"]
