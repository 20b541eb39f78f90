"""Helpers shared by the layer checkers (assignments 1-4): run a student's function, compare, diagnose.

The diagnosis idea: a wrong array is compared with a few *known wrong variants* (the result a
typical mistake gives: the flipped kernel, zero instead of ``-inf`` padding, the gradient sent to
every tied maximum, ...). The first variant that matches names the likely mistake. Variants are
computed only when the student's array is wrong, so passing code costs nothing extra.
"""
from __future__ import annotations

import numpy as np

from ._core import CheckResult, VariantHint, call_student, compare
from ._variants import same_values

__all__ = [
    "Outputs",
    "StudentStub",
    "check_dtype",
    "describe",
    "factor_hint",
    "needs_student_function",
    "run_student",
    "stops_at_stubs",
    "unpack",
    "variant_hint",
]


def describe(**items) -> str:
    """``x (2, 3, 7, 7) float64, stride=2``: arrays by shape and dtype, the rest by value."""
    parts = []
    for name, value in items.items():
        if isinstance(value, np.ndarray):
            parts.append(f"{name} of shape {value.shape} ({value.dtype})")
        else:
            parts.append(f"{name}={value!r}")
    return ", ".join(parts)


def factor_hint(actual, expected, factors=None):
    """If ``actual`` is ``expected`` times one constant, say which (``factors`` names known ones)."""
    a = np.asarray(actual, dtype=np.float64).ravel()
    e = np.asarray(expected, dtype=np.float64).ravel()
    if a.shape != e.shape or not np.any(np.abs(e) > 1e-12):
        return ""
    big = np.abs(e) > 1e-6 * np.abs(e).max()
    ratio = a[big] / e[big]
    c = float(np.median(ratio))
    if not np.isfinite(c) or abs(c - 1) < 1e-12 or not np.allclose(a, c * e, rtol=1e-9, atol=1e-12):
        return ""
    for value, words in (factors or {}).items():
        if np.isclose(c, value, rtol=1e-6):
            return words
    if abs(c - 1) < 1e-2:
        return (f"every value is {c:.9g} times the expected one (off by {abs(c - 1):.2g} relative): a small "
                "constant such as eps is missing or placed differently")
    return f"every value is {c:.6g} times the expected one: a constant factor is wrong or missing"


def variant_hint(variants, factors=None, rtol=1e-6, atol=1e-9):
    """A ``hint(actual, expected)`` for :func:`compare` that tries known wrong variants in order.

    ``variants`` is a function returning ``[(hint_words, wrong_array), ...]`` (called only when
    the student's array is wrong); a variant that raises is skipped. Falls back to
    :func:`factor_hint` with ``factors``.
    """
    def hint(actual, expected):
        try:
            candidates = variants()
        except Exception:
            candidates = []
        for words, wrong in candidates:
            try:
                if same_values(actual, wrong, rtol=rtol, atol=atol):
                    return VariantHint(words)
            except Exception:
                continue
        return factor_hint(actual, expected, factors)
    return hint


class StudentStub(Exception):
    """A student's function raised NotImplementedError: one line in the report is enough."""

    def __init__(self, fn_name):
        super().__init__(fn_name)
        self.fn_name = fn_name


def stops_at_stubs(checker):
    """Decorator: end the check at the first NotImplementedError instead of repeating it per case."""
    def wrapped(student_fn, namespace):
        result = CheckResult(_checker_name(checker))
        try:
            return checker(student_fn, namespace, result)
        except StudentStub as stub:
            if stub.fn_name != result.name:
                result.add(f"{result.name} is checked with your own {stub.fn_name}: implement it first "
                           f"(check({stub.fn_name}))")
            return result
    wrapped.__name__, wrapped.__doc__ = checker.__name__, checker.__doc__
    return wrapped


def _checker_name(checker):
    return checker.__name__.removesuffix("_checker")


def run_student(result: CheckResult, fn, *args, case="", **kwargs):
    """Call ``fn`` on copies of the array arguments; flag it if it changed them (in-place edits).

    Returns the function's return value, or ``None`` after recording the exception it raised;
    raises :class:`StudentStub` (caught by :func:`stops_at_stubs`) for NotImplementedError.
    """
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    before = len(result.problems)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # NaN / inf are diagnosed
        out = call_student(result, fn, *copies, case=case, **kwargs)
    if len(result.problems) > before:
        problem = result.problems[-1]
        if "is not implemented yet" in problem.what:
            raise StudentStub(getattr(fn, "__name__", "the function"))
        _explain_exception(result, problem)
    name = getattr(fn, "__name__", "the function")
    for position, (before, after) in enumerate(zip(args, copies)):
        if isinstance(before, np.ndarray) and not (before.shape == after.shape and
                                                   np.array_equal(before, after, equal_nan=True)):
            result.add(f"{name} changed its input argument {position + 1} in place", case,
                       "work on a copy (x.copy(), or np.pad which returns a new array); a layer must "
                       "never modify the arrays it is given")
            break
    return out


_EXCEPTION_HINTS = (
    ("could not be broadcast", "two arrays do not line up: check which axis each one runs along "
                               "(NCHW: the channels are axis 1; reshape a (C,) vector to (1, C, 1, 1))"),
    ("cannot reshape array", "the reshape does not fit this input: build the new shape from x.shape "
                             "(e.g. x.reshape((N, M, pieces) + x.shape[2:]) for any number of axes)"),
    ("out of bounds", "an index runs past the array: check the output size and the window offsets "
                      "(rows use KH and the stride's first value, columns KW and the second)"),
)


def _explain_exception(result, problem):
    """Give a 'raised ...' problem a hint, and drop it when the same error was reported twice already."""
    if not problem.what.startswith("raised "):
        return
    error = problem.what.split(":", 1)[0]
    earlier = [p for p in result.problems[:-1] if p.what.split(":", 1)[0] == error]
    if len(earlier) >= 2:
        result.problems.pop()
        if len(earlier) == 2:
            result.add(f"{error[len('raised '):]} was also raised on further cases (not listed)")
        return
    if not problem.hint:
        for words, hint in _EXCEPTION_HINTS:
            if words in problem.what:
                problem.hint = hint
                break


def unpack(result: CheckResult, value, names, *, fn_name, case=""):
    """Check that a function returned a tuple of ``len(names)`` items; return it or ``None``."""
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) != len(names):
        got = (f"a tuple of {len(value)}" if isinstance(value, (tuple, list))
               else f"a {type(value).__name__}")
        result.add(f"{fn_name} must return the tuple ({', '.join(names)}), got {got}", case,
                   f"end the function with `return {', '.join(names)}`")
        return None
    return tuple(value)


def check_dtype(result: CheckResult, actual, dtype, *, what, case=""):
    """The output must keep the input's float dtype (float32 in, float32 out)."""
    actual_dtype = getattr(actual, "dtype", None)
    if actual_dtype is not None and actual_dtype != dtype:
        result.add(f"{what} has dtype {actual_dtype} for {np.dtype(dtype)} input", case,
                   "allocate arrays with dtype=x.dtype (np.zeros(shape, dtype=x.dtype)): "
                   "float32 in must give float32 out")
        return False
    return True


#: Case tags that :meth:`Outputs.explain` turns into a diagnosis ("only the cases with padding fail").
EXPLAINING_TAGS = frozenset({"pad", "stride", "overlap", "non-square kernel", "rank 4", "ties", "zero windows"})


class Outputs:
    """Compare several outputs over many cases, reporting at most ``limit`` failures per output.

    Also remembers which cases failed per output, so a checker can diagnose from the pattern
    (e.g. "only the cases with padding fail").
    """

    def __init__(self, result: CheckResult, limit=2):
        self.result, self.limit = result, limit
        self.failed = {}        # output name -> list of case tags that failed
        self.passed = {}        # output name -> list of case tags that passed
        self.first_problem = {}  # output name -> the first Problem recorded for it
        self.raised = False      # a call raised: the pattern of failures is incomplete

    def record_raise(self):
        """A case where the student's function raised (no outputs to compare)."""
        self.raised = True

    def compare(self, key, actual, expected, *, case, tags=(), **kwargs):
        scratch = CheckResult(self.result.name)
        ok = compare(scratch, actual, expected, what=key, case=case, **kwargs)
        (self.passed if ok else self.failed).setdefault(key, []).append(frozenset(tags))
        if not ok:
            if len(self.failed[key]) <= self.limit:
                self.result.problems.extend(scratch.problems)
                self.first_problem.setdefault(key, scratch.problems[0])
            elif len(self.failed[key]) == self.limit + 1:
                self.result.add(f"{key} is also wrong on further cases (not listed)")
        return ok

    def only_failing_with(self, key, tag):
        """True when at least two cases failed for ``key``, every one with ``tag``, none raised,
        and some case without ``tag`` passed."""
        failed, passed = self.failed.get(key, []), self.passed.get(key, [])
        return (len(failed) >= 2 and not self.raised and all(tag in t for t in failed)
                and any(tag not in t for t in passed))

    def explain(self, key, tag, words):
        """Give the first problem of ``key`` the hint ``words`` if only cases tagged ``tag`` fail.

        Not when another structural tag (:data:`EXPLAINING_TAGS`) fits the failures as well: when
        every padded case also has overlapping windows, "only the overlapping cases fail" may just as
        well be "only the padded cases fail", and naming one would mislead.
        """
        problem = self.first_problem.get(key)
        if problem is None or problem.hint or not self.only_failing_with(key, tag):
            return
        rivals = {t for tags in self.failed.get(key, []) for t in tags} & EXPLAINING_TAGS - {tag}
        if any(self.only_failing_with(key, t) for t in rivals):
            return
        problem.hint = words


def needs_student_function(result: CheckResult, namespace, name, *, for_what):
    """Fetch the student's ``name`` from ``namespace`` (e.g. the forward a backward needs)."""
    fn = (namespace or {}).get(name)
    if not callable(fn):
        result.add(f"{for_what} is checked with your own {name}, which was not found",
                   hint=f"define {name} in the same notebook / file (run its cell first)")
        return None
    return fn
