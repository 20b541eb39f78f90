"""Diagnosis by known wrong variants: which common mistake reproduces the student's output?

A checker knows the right answer and, for each frequent mistake, the answer that mistake gives
(the IoU without the ``+ 1``, the loss without the hinge, the threshold chosen on the test fold...).
When the student's output differs from the right answer, :func:`variant_hint` runs the wrong
variants in turn and names the ones the output equals (at most two, when one case cannot tell them
apart): that is the likely mistake. No variant matches: no guess (the report still says which
element is wrong).

Also here, shared by the checkers of assignments 5-8: calling the student safely
(:func:`run_student`, :func:`run_backward`), and reports for single numbers (:func:`compare_scalar`)
and index arrays (:func:`compare_indices`) that read better than an elementwise table.
"""
from __future__ import annotations

import numpy as np

from ._core import VARIANT_SEPARATOR, VariantHint, call_student, compare

__all__ = ["same_values", "variant_hint", "first_matching", "all_matching", "run_student", "compare_scalar",
           "compare_indices", "split_forward", "run_backward", "shape_of"]


def same_values(actual, expected, *, rtol=1e-6, atol=1e-9) -> bool:
    """True when the two arrays have one shape and agree elementwise (NaN matches NaN)."""
    try:
        a = np.asarray(actual, dtype=np.float64)
        e = np.asarray(expected, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return a.shape == e.shape and bool(np.all(np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)))


def first_matching(actual, variants, *, rtol=1e-6, atol=1e-9) -> str:
    """The hint of the first ``(hint, make)`` whose ``make()`` equals ``actual``, else ``''``.

    ``make`` is called lazily (only while nothing has matched); a variant that raises is skipped.
    """
    for hint, make in variants:
        try:
            value = make()
        except Exception:  # a variant that does not apply to this input
            continue
        if same_values(actual, value, rtol=rtol, atol=atol):
            return VariantHint(hint)
    return ""


def all_matching(actual, variants, *, rtol=1e-6, atol=1e-9) -> list:
    """The hints of every ``(hint, make)`` whose ``make()`` equals ``actual``, in order."""
    found = []
    for hint, make in variants:
        try:
            value = make()
        except Exception:  # a variant that does not apply to this input
            continue
        if same_values(actual, value, rtol=rtol, atol=atol) and hint not in found:
            found.append(hint)
    return found


def variant_hint(variants, *, rtol=1e-6, atol=1e-9, fallback="", at_most=2):
    """A ``hint(actual, expected)`` for :func:`scratchface.check._core.compare`.

    Parameters
    ----------
    variants : list of (str, callable)
        ``(likely mistake in words, function of no argument returning what that mistake gives)``.
    fallback : str
        Said when no variant matches (e.g. a general pointer).
    at_most : int
        When several mistakes give this very output (the case cannot tell them apart), name up to
        this many, joined by "; or: ".
    """
    def hint(actual, expected):
        found = all_matching(actual, variants, rtol=rtol, atol=atol)[:at_most]
        return VariantHint(VARIANT_SEPARATOR.join(found)) if found else fallback
    return hint


def compare_indices(result, actual, expected, *, what, case="", hint=""):
    """Compare index arrays exactly; the report lists both when they are short.

    Returns False (after recording a Problem) when they differ, also when ``actual`` is not 1-D.
    """
    expected = np.asarray(expected)
    if actual is None:
        result.add(f"{what}: the function returned None", case, "a missing `return`?")
        return False
    try:
        arr = np.asarray(actual)
    except Exception:  # a ragged list, an object the student made up
        result.add(f"{what}: expected an integer array, got {type(actual).__name__}", case)
        return False
    if arr.ndim == 1 and arr.shape == expected.shape and np.array_equal(arr, expected):
        return True
    shown = arr.tolist() if arr.size <= 30 else f"an array of shape {arr.shape}"
    wanted = expected.tolist() if expected.size <= 30 else f"an array of shape {expected.shape}"
    result.add(f"{what}: got {shown} where {wanted} was expected", case, _resolve(hint, arr, expected))
    return False


def run_student(result, fn, *args, case="", **kwargs):
    """Call the student's function; returns ``(raised, value)``.

    ``raised`` is ``''`` when the call returned, ``'not implemented'`` for a ``NotImplementedError``
    (the checker then stops: one report line is enough), ``'error'`` for any other exception; the
    problem is recorded in ``result`` by :func:`scratchface.check._core.call_student`.
    """
    before = len(result.problems)
    value = call_student(result, fn, *args, case=case, **kwargs)
    if len(result.problems) == before:
        return "", value
    return ("not implemented" if "NotImplementedError" in result.problems[-1].what else "error"), value


def compare_scalar(result, actual, expected, *, what, case="", rtol=1e-6, atol=1e-9, hint=""):
    """Like :func:`scratchface.check._core.compare` for one number: "VAL is 0.58 where 0.54 was expected".

    Anything that is not a single number goes to ``compare`` (which reports its shape).
    """
    try:
        a = np.asarray(actual, dtype=np.float64)
    except (TypeError, ValueError):
        a = None
    if a is None or a.shape != ():
        return compare(result, actual, expected, what=what, case=case, rtol=rtol, atol=atol, hint=hint)
    e = float(expected)
    if np.isclose(a, e, rtol=rtol, atol=atol) or (np.isinf(e) and a == e):
        return True
    result.add(f"{what} is {float(a):.6g} where {e:.6g} was expected", case, _resolve(hint, a, e))
    return False


def _resolve(hint, actual, expected):
    """A hint string, or the diagnosis a callable hint makes of the two ('' when it fails)."""
    if not callable(hint):
        return hint or ""
    try:
        return hint(actual, expected) or ""
    except Exception:  # a diagnosis that does not apply
        return ""


def split_forward(result, out, name, case=""):
    """``(loss, cache)`` from what a student's ``*_forward`` returned, or None after a Problem."""
    if isinstance(out, tuple) and len(out) == 2:
        return out
    result.add(f"{name} must return a pair (loss, cache); got {type(out).__name__}", case,
               "return loss, cache (the cache is what backward needs)")
    return None


def run_backward(result, student_fn, namespace, forward_name, args, kwargs, *, dloss, reference_loss,
                 names, case=""):
    """Run the student's own forward (for its cache), then their backward; returns ``(stop, grads)``.

    ``stop`` is True when checking should end (no forward, forward not implemented or broken);
    ``grads`` is the tuple of ``len(names)`` gradients, or None after a Problem was recorded. A forward
    whose loss differs from ``reference_loss`` is reported too (the backward may be right anyway).
    """
    forward = namespace.get(forward_name)
    if not callable(forward):
        result.add(f"{getattr(student_fn, '__name__', 'backward')} needs your {forward_name} (to make the "
                   "cache); define it first")
        return True, None
    raised, out = run_student(result, forward, *args, case=case, **kwargs)
    if raised:
        last = result.problems[-1]
        last.what = (f"this needs your {forward_name} (for the cache), and it is not implemented yet "
                     "(it raised NotImplementedError)" if raised == "not implemented"
                     else f"your {forward_name} " + last.what)
        return True, None
    if split_forward(result, out, forward_name, case) is None:
        return True, None
    try:
        loss_ok = bool(np.isclose(float(np.asarray(out[0])), reference_loss, rtol=1e-6, atol=1e-9))
    except (TypeError, ValueError):
        loss_ok = False
    if not loss_ok:
        result.add(f"your {forward_name} gives a wrong loss on this case; check it first "
                   f"(check({forward_name}))", case)
    raised, grads = run_student(result, student_fn, dloss, out[1], case=case)
    if raised:
        return raised == "not implemented", None
    if not (isinstance(grads, tuple) and len(grads) == len(names)):
        got = type(grads).__name__ + (f" of length {len(grads)}" if isinstance(grads, tuple) else "")
        result.add(f"{getattr(student_fn, '__name__', 'backward')} must return ({', '.join(names)}); got {got}",
                   case)
        return False, None
    return False, grads


def shape_of(value):
    """``np.shape(value)``, or None for something that is not an array (a ragged list, an object)."""
    try:
        return np.shape(value)
    except Exception:  # numpy refuses ragged nested sequences
        return None
