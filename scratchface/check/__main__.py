"""``python -m scratchface.check FUNCTION student.py``: check one function of a student's file.

Exit codes: 0 the function passed, 1 the checker found problems, 2 bad usage (no such file,
no such function, no checker of that name, a file that does not import).
"""
from __future__ import annotations

import argparse
import importlib.util
import pathlib
import sys

from ._core import check, checker_names


def load_student_file(path):
    """Import ``path`` as a fresh module (its top-level code runs, as ``python student.py`` would)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"student file {str(path)!r} does not exist")
    spec = importlib.util.spec_from_file_location(f"_student_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m scratchface.check",
                                     description="Check a student's function against the reference math.")
    parser.add_argument("function", nargs="?", help="the function to check, e.g. conv2d_backward")
    parser.add_argument("student_file", nargs="?", help="the student's .py file (a notebook saved as .py works)")
    parser.add_argument("--list", action="store_true", help="list the functions a checker exists for")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(checker_names()))
        return 0
    if not args.function or not args.student_file:
        parser.print_usage(sys.stderr)
        print("error: give FUNCTION and STUDENT_FILE (or --list)", file=sys.stderr)
        return 2
    if args.function not in checker_names():
        print(f"error: no checker for {args.function!r}; try --list", file=sys.stderr)
        return 2
    try:
        module = load_student_file(args.student_file)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        print(f"error: {args.student_file} did not import: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    fn = getattr(module, args.function, None)
    if not callable(fn):
        print(f"error: {args.student_file} defines no function {args.function!r}", file=sys.stderr)
        return 2
    result = check(fn, args.function, vars(module), verbose=True)
    return 0 if result else 1


if __name__ == "__main__":
    sys.exit(main())
