"""Is the student's function their own work, or does it hand the step to scratchface?

A submission that does ``from scratchface.detection.nms import nms`` and returns ``nms(...)`` would
pass every check. :func:`delegation` reads the function's compiled code (and that of the student's
helpers it calls, recursively) for names that resolve to the library modules implementing the same
step (``SAME_STEP`` in :mod:`scratchface.check._library`), for imports of them inside the function,
and for their dotted names as strings (``importlib.import_module("scratchface.detection.nms")``).
Other parts of the library (a softmax the ArcFace assignment builds on) stay allowed.
"""
from __future__ import annotations

import types

from ._frames import is_library_file
from ._library import SAME_STEP
from .course import assignment_of

__all__ = ["delegation"]


def _forbidden_modules(name):
    try:
        return SAME_STEP.get(assignment_of(name), ())
    except ValueError:  # a checker outside the course table: nothing is forbidden
        return ()


def _in(module_name, prefixes):
    return isinstance(module_name, str) and any(
        module_name == p or module_name.startswith(p + ".") or module_name.startswith(p + "_") for p in prefixes)


def _code_objects(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _describe(value, prefixes):
    """``'scratchface.detection.nms.nms'`` when ``value`` is (part of) a forbidden module, else ''."""
    if isinstance(value, types.ModuleType):
        return value.__name__ if _in(value.__name__, prefixes) else ""
    module = getattr(value, "__module__", None)
    if module is None and hasattr(value, "py_func"):  # a Numba dispatcher
        module = getattr(value.py_func, "__module__", None)
    if _in(module, prefixes):
        return f"{module}.{getattr(value, '__name__', type(value).__name__)}"
    return ""


def delegation(name, student_fn, namespace) -> str:
    """``'calls scratchface.detection.nms.nms (scratchface's own implementation)'`` when
    ``student_fn`` (or a function of the student's it calls) uses the library's implementation of
    the step ``name``; ``''`` when it does its own work."""
    prefixes = _forbidden_modules(name)
    if not prefixes:
        return ""
    student_fn = getattr(student_fn, "py_func", student_fn)  # a Numba-compiled student function
    seen, todo = set(), [student_fn]
    while todo:
        item = todo.pop()
        fn = getattr(item, "py_func", item)
        code = getattr(fn, "__code__", None)
        if code is None or code in seen:
            continue
        seen.add(code)
        scope = dict(getattr(fn, "__globals__", {}) or {})
        if fn is student_fn and namespace:
            scope.update(namespace)
        for part in _code_objects(code):
            words = set(part.co_names)
            for word in part.co_names:
                if word.startswith("scratchface") and any(f"{word}.{w}" in prefixes for w in words):
                    return f"imports from {word} (scratchface's own implementation of this step)"
                if _in(word, prefixes):
                    return f"imports {word} (scratchface's own implementation of this step)"
                value = scope.get(word)
                found = _describe(value, prefixes) if value is not None else ""
                if found:
                    return f"calls {found} (scratchface's own implementation of this step)"
                if isinstance(value, types.ModuleType):  # import scratchface; scratchface.detection.nms.nms(...)
                    for prefix in prefixes:
                        rest = prefix[len(value.__name__) + 1:].split(".")
                        if prefix.startswith(value.__name__ + ".") and words.issuperset(rest):
                            return f"calls into {prefix} (scratchface's own implementation of this step)"
                helper = getattr(value, "py_func", value)
                if isinstance(helper, types.FunctionType) and not is_library_file(helper.__code__.co_filename):
                    todo.append(helper)  # the student's own helper: read it too
            for const in part.co_consts:
                if isinstance(const, str) and _in(const, prefixes):
                    return f"imports {const} (scratchface's own implementation of this step)"
    return ""
