"""The checker's machinery: a report of problems in a student's words, a registry, a comparison.

A *checker* is a function ``checker(student_fn, namespace) -> CheckResult`` registered under the
name of the function it checks (``conv2d_backward``, ``nms``, ...). ``namespace`` is where the
student's other functions live (a notebook's globals, or the module loaded from ``student.py``), so
that a backward pass can be checked with the student's own forward, for instance.

A checker runs the student's function on random and edge-case inputs and compares it with an
independent reference (the library's readable reference, finite differences, a formula by hand). It
does not stop at "wrong": each :class:`Problem` says which output and which element differ, and the
likely mistake in a student's words ("forgot the padding in backward", "softmax over the wrong
axis").
"""
from __future__ import annotations

import contextlib
import importlib
import os
import signal
import threading
from dataclasses import dataclass, field

import numpy as np

from ._frames import student_location
from ._honesty import delegation
from .course import DEPENDS_ON

__all__ = ["Problem", "CheckResult", "register", "checker_names", "get_checker", "check", "compare",
           "call_student", "run_checker", "VariantHint", "student_location", "CheckTimeout", "DEFAULT_TIMEOUT"]

#: Seconds one check (every case of one function) may take before it is stopped.
DEFAULT_TIMEOUT = 5.0

# The modules that define checkers; imported on first lookup so `import scratchface` stays fast.
CHECKER_MODULES = (
    "scratchface.check.hog",          # assignment 1: HOG gradients and histograms
    "scratchface.check.conv",         # assignment 2: conv forward / backward
    "scratchface.check.pooling",      # assignment 3: max and L2 pooling
    "scratchface.check.activations",  # assignment 4: PReLU and maxout
    "scratchface.check.nms",          # assignment 5: IoU and NMS
    "scratchface.check.triplet",      # assignment 6: triplet loss and semi-hard mining
    "scratchface.check.arcface",      # assignment 7: ArcFace loss
    "scratchface.check.verification", # assignment 8: 10-fold accuracy, VAL at FAR
)

_CHECKERS: dict = {}
_LOADED = False


VARIANT_SEPARATOR = "; or: "  # between the mistakes one hint names when a case cannot tell them apart


class VariantHint(str):
    """A hint that names a known wrong variant because it reproduced the student's output on a case.

    One case can coincide with a variant by chance (a square kernel hides KH used for KW), so
    :func:`run_checker` keeps such a hint only when two failing cases agree on it (or one case fails).
    """


@dataclass
class Problem:
    """One thing wrong with a student's function.

    what : what was observed ("dx differs from finite differences at [0, 1, 2, 3]: 0.25 vs 0.5")
    case : the input it was observed on ("stride=2, padding=1, x of shape (2, 3, 7, 7)")
    hint : the likely mistake, in a student's words ("" when no diagnosis fits)
    """
    what: str
    case: str = ""
    hint: str = ""

    def __str__(self):
        text = self.what
        if self.case:
            text += f"\n      on: {self.case}"
        if self.hint:
            text += f"\n      likely mistake: {self.hint}"
        return text


@dataclass
class CheckResult:
    """The outcome of checking one function: truthy when it passed every case."""
    name: str
    n_cases: int = 0
    problems: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def __bool__(self):
        return self.passed

    def add(self, what, case="", hint=""):
        self.problems.append(Problem(what, case, hint))

    def __str__(self):
        if self.passed:
            return f"{self.name}: passed all {self.n_cases} checks."
        lines = [f"{self.name}: {len(self.problems)} problem(s) in {self.n_cases} checks"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)

    def __repr__(self):  # one line: check() has printed the report already
        state = "passed" if self.passed else f"{len(self.problems)} problem(s)"
        return f"<CheckResult {self.name}: {state} in {self.n_cases} checks>"


def register(name):
    """Decorator: register ``checker(student_fn, namespace) -> CheckResult`` under ``name``."""
    def wrap(checker):
        if name in _CHECKERS and _CHECKERS[name] is not checker:
            raise ValueError(f"a checker named {name!r} is already registered")
        _CHECKERS[name] = checker
        return checker
    return wrap


def _load():
    global _LOADED
    if not _LOADED:
        for module in CHECKER_MODULES:
            importlib.import_module(module)
        _LOADED = True


def checker_names():
    """Sorted names of every function a checker exists for."""
    _load()
    return sorted(_CHECKERS)


def get_checker(name):
    _load()
    if name not in _CHECKERS:
        raise ValueError(f"no checker for {name!r}; there are checkers for: {', '.join(sorted(_CHECKERS))}")
    return _CHECKERS[name]


def check(student_fn, name=None, namespace=None, *, verbose=True, timeout=DEFAULT_TIMEOUT) -> CheckResult:
    """Check a student's function against the reference math and print what is wrong.

    Parameters
    ----------
    student_fn : callable
        The student's function, e.g. ``conv2d_backward``.
    name : str, optional
        Which checker to run; defaults to ``student_fn.__name__``.
    namespace : dict, optional
        Where the student's other functions live (a backward's forward, for instance); defaults to
        ``student_fn.__globals__`` (the notebook's or module's globals).
    verbose : bool
        Print the report (the default, for notebooks).
    timeout : float or None
        Seconds the whole check may take; past it the check stops with "timed out after ... s" and
        the student's line it was running (``None``: no limit). In a notebook this interrupts Python
        code only; ``python -m scratchface.check`` also stops compiled (Numba) loops, in a child process.

    Returns
    -------
    CheckResult
        Truthy when every check passed; ``str(result)`` is the report.
    """
    if not callable(student_fn):
        raise TypeError(f"student_fn must be a function, got {type(student_fn).__name__}")
    name = name or getattr(student_fn, "__name__", None)
    if not isinstance(name, str):
        raise TypeError("name must be a str naming the function to check")
    if namespace is None:
        namespace = getattr(student_fn, "__globals__", {})
    result = run_checker(name, student_fn, namespace, timeout=timeout)
    if verbose:
        print(result)
    return result


class CheckTimeout(BaseException):
    """Raised inside the student's code when the check's time limit is reached (never caught as an error)."""


class StudentExit(BaseException):
    """Raised in place of ``os._exit(code)`` while a student's function runs."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


class _StopChecking(BaseException):
    """The student's code ended the process (sys.exit): one report line, no further cases."""


def run_checker(name, student_fn, namespace, *, timeout=DEFAULT_TIMEOUT) -> CheckResult:
    """The checker of ``name`` on ``student_fn``, guarded: never hangs past ``timeout``, never passes
    a function that exits, is interrupted or hands the work to scratchface's own implementation."""
    checker = get_checker(name)
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")

    borrowed = delegation(name, student_fn, namespace)
    if borrowed:
        result = CheckResult(name)
        result.add(f"{name} {borrowed}; the check did not run",
                   hint="write the computation yourself: the point of the assignment is to implement this step")
        return result
    try:
        with _guarded(timeout):
            result = checker(student_fn, namespace)
    except CheckTimeout as stop:
        result = CheckResult(name)
        result.add(f"timed out after {timeout:g} s{student_location(stop.__traceback__)}",
                   hint="an infinite loop? (a while loop whose condition never changes, e.g. a box that "
                        "never leaves the candidates); or far too slow")
    except KeyboardInterrupt as stop:
        result = CheckResult(name)
        result.add(f"interrupted: KeyboardInterrupt{student_location(stop.__traceback__)}")
    except StudentExit as stop:  # os._exit outside call_student (in a checker's helper call)
        result = CheckResult(name)
        result.add(f"called os._exit({stop.code!r}){student_location(stop.__traceback__)}")
    except SystemExit as stop:
        result = CheckResult(name)
        result.add(f"called sys.exit({stop.code!r}){student_location(stop.__traceback__)}")
    except _StopChecking as stop:
        result = stop.args[0]
    if not result.passed:
        _require_agreeing_cases(result)
        _blame_helpers(result, name, student_fn, namespace, timeout)
    return result


def _require_agreeing_cases(result):
    """Drop a variant's hint that only one of several failing cases gives (a coincidence, not a diagnosis).

    A hint naming several variants ("A; or: B") keeps those that another failing case also gave.
    """
    failing_cases = {p.case for p in result.problems if p.case}
    if len(failing_cases) < 2:
        return
    cases_of = {}
    for p in result.problems:
        if isinstance(p.hint, VariantHint):
            for part in p.hint.split(VARIANT_SEPARATOR):
                cases_of.setdefault(part, set()).add(p.case)
    for p in result.problems:
        if isinstance(p.hint, VariantHint):
            agreed = [part for part in p.hint.split(VARIANT_SEPARATOR) if len(cases_of[part]) >= 2]
            p.hint = VariantHint(VARIANT_SEPARATOR.join(agreed)) if agreed else ""


def _mentions(fn, word) -> bool:
    """True when the code of ``fn`` (nested functions included) uses the global name ``word``."""
    todo = [getattr(getattr(fn, "py_func", fn), "__code__", None)]
    while todo:
        code = todo.pop()
        if code is None:
            continue
        if word in code.co_names:
            return True
        todo += [c for c in code.co_consts if hasattr(c, "co_names")]
    return False


def _blame_helpers(result, name, student_fn, namespace, timeout):
    """When ``name`` relies on another student function that fails its own check (the loss calls
    ``arcface_target``; a backward's check runs the student's forward), say to fix that one first."""

    if not hasattr(namespace, "get"):
        return
    forward = namespace.get(name.replace("_backward", "_forward")) if name.endswith("_backward") else None
    for helper in DEPENDS_ON.get(name, ()):
        helper_fn = namespace.get(helper)
        if not callable(helper_fn) or helper_fn is student_fn:
            continue
        used = (_mentions(student_fn, helper) or helper_fn is forward
                or (callable(forward) and _mentions(forward, helper)))
        if used and not run_checker(helper, helper_fn, namespace, timeout=timeout):
            result.problems.insert(0, Problem(
                f"your {helper} fails its own check, and {name} relies on it",
                hint=f"fix `{helper}` first (check({helper})), then check {name} again"))
            return


@contextlib.contextmanager
def _guarded(timeout):
    """While the student's code runs: ``os._exit`` raises :class:`StudentExit`, and after ``timeout``
    seconds a :class:`CheckTimeout` is raised in the main thread (Unix; elsewhere no in-process limit)."""
    real_exit = os._exit

    def _exit(code):
        raise StudentExit(code)

    use_alarm = (timeout is not None and hasattr(signal, "setitimer")
                 and threading.current_thread() is threading.main_thread())
    previous = None
    if use_alarm:
        def _alarm(signum, frame):
            raise CheckTimeout()

        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, float(timeout))
    os._exit = _exit
    try:
        yield
    finally:
        os._exit = real_exit
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def call_student(result: CheckResult, fn, *args, case="", **kwargs):
    """Call the student's function; on an exception record a Problem and return ``None``.

    The report shows the exception and the student's own line where it happened (the innermost
    frame in the student's file), not NumPy's or the checker's. ``sys.exit`` / ``os._exit`` are
    recorded and end the check (:func:`run_checker` returns the result); a time-out and
    ``KeyboardInterrupt`` pass through to :func:`run_checker`.
    """
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        result.add(f"{getattr(fn, '__name__', 'the function')} is not implemented yet "
                   "(it raised NotImplementedError)", case)
    except (SystemExit, StudentExit) as error:
        call = "sys.exit" if isinstance(error, SystemExit) else "os._exit"
        result.add(f"called {call}({error.code!r}){student_location(error.__traceback__)}", case,
                   "a function returns its result; it must never end the program")
        raise _StopChecking(result) from None
    except Exception as error:  # the student's bug, reported in words
        result.add(f"raised {type(error).__name__}: {error}{student_location(error.__traceback__)}", case)
    return None


def compare(result: CheckResult, actual, expected, *, what, case="", rtol=1e-6, atol=1e-9, hint=""):
    """Compare the student's array with the expected one; record a Problem and return False if they differ.

    Shape first (a shape mismatch is reported as such, never broadcast), then values: the report names
    the element with the largest difference and how many elements are off.
    ``hint`` may be a string or a function ``hint(actual, expected) -> str`` that diagnoses the
    likely mistake from the two arrays.
    """
    expected = np.asarray(expected)
    if actual is None:
        result.add(f"{what}: the function returned None", case, "a missing `return`?")
        return False
    try:
        actual = np.asarray(actual)
    except Exception:
        result.add(f"{what}: expected an array, got {type(actual).__name__}", case)
        return False
    if actual.shape != expected.shape:
        result.add(f"{what} has shape {actual.shape}, expected {expected.shape}", case,
                   _hint(hint, actual, expected))
        return False
    if expected.size == 0:
        return True
    if not np.issubdtype(actual.dtype, np.number) and actual.dtype != bool:
        result.add(f"{what} has dtype {actual.dtype}, expected numbers", case)
        return False
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    bad = ~np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=False)
    if not bad.any():
        return True
    diff = np.where(bad, np.abs(a - e), -1.0)
    diff = np.where(np.isnan(diff), np.inf, diff)
    worst = np.unravel_index(int(np.argmax(diff)), a.shape)
    got, want = _number(a[worst], e[worst])
    if a.size == 1:
        message = f"{what} is {got} where {want} was expected"
    else:
        message = (f"{what} differs in {int(bad.sum())} of {a.size} elements; worst at "
                   f"{[int(i) for i in worst]}: {got} where {want} was expected")
    result.add(message, case, _hint(hint, actual, expected))
    return False


def _number(got, want):
    """Two numbers printed with enough digits to tell them apart."""
    for digits in (6, 10, 17):
        a, b = f"{got:.{digits}g}", f"{want:.{digits}g}"
        if a != b:
            break
    return a, b


def _hint(hint, actual, expected):
    if callable(hint):
        try:
            return hint(actual, expected) or ""
        except Exception:
            return ""
    return hint or ""
