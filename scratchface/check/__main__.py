"""``python -m scratchface.check``: check one function, every function of a file, or grade a folder.

::

    python -m scratchface.check nms student.py            # one function
    python -m scratchface.check --all student.py          # every assignment function of the file
    python -m scratchface.check grade submissions/ --out grades [--jobs 2] [--timeout 5]
    python -m scratchface.check --list                    # the functions a checker exists for

Each check runs in a child process with a time limit (``--timeout`` seconds, default 5) and an
address-space limit (``--memory`` MiB); only the file's imports, definitions and constants are
executed, never its ``check(...)`` cells or demonstrations. Exit codes: 0 everything checked passed,
1 the checker found problems, 2 bad usage (no such file, no such function, no checker of that name,
a file that does not parse).
"""
from __future__ import annotations

import argparse
import pathlib
import sys

from ._core import DEFAULT_TIMEOUT, checker_names
from .grade import grade_file, grade_folder, score_table, write_csv, write_json
from .sandbox import DEFAULT_MEMORY_MB, defined_functions, run_isolated


def load_student_file(path):
    """Import ``path`` as a fresh module, running its top-level code as ``python student.py`` would.

    For notebooks and tests that want the student's file as it runs; checking and grading never do
    this (they load the definitions only, in a child process: :mod:`scratchface.check.sandbox`).
    """
    import importlib.util

    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"student file {str(path)!r} does not exist")
    spec = importlib.util.spec_from_file_location(f"_student_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _limits(parser):
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help=f"seconds each check may take (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--memory", type=int, default=DEFAULT_MEMORY_MB,
                        help=f"address-space limit of each check's process in MiB (default {DEFAULT_MEMORY_MB})")


def grade_main(argv):

    parser = argparse.ArgumentParser(prog="python -m scratchface.check grade",
                                     description="Grade a folder of submissions (one .py or .ipynb per student).")
    parser.add_argument("folder")
    parser.add_argument("--out", default="grades", help="write OUT.csv and OUT.json (default: grades)")
    parser.add_argument("--jobs", type=int, default=2, help="checks run at once (default 2)")
    parser.add_argument("--functions", help="comma-separated functions to grade (default: each file's assignments)")
    _limits(parser)
    args = parser.parse_args(argv)
    functions = args.functions.split(",") if args.functions else None
    try:
        grades = grade_folder(args.folder, functions=functions, timeout=args.timeout, memory_mb=args.memory,
                              jobs=args.jobs)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_csv(grades, f"{args.out}.csv")
    write_json(grades, f"{args.out}.json")
    print(score_table(grades))
    print(f"\nwrote {args.out}.csv and {args.out}.json")
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["grade"]:
        return grade_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m scratchface.check",
                                     description="Check a student's function against the reference math.")
    parser.add_argument("function", nargs="?", help="the function to check, e.g. conv2d_backward")
    parser.add_argument("student_file", nargs="?", help="the student's .py or .ipynb file")
    parser.add_argument("--all", metavar="STUDENT_FILE", help="check every assignment function the file defines")
    parser.add_argument("--list", action="store_true", help="list the functions a checker exists for")
    _limits(parser)
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(checker_names()))
        return 0
    if args.all:
        return _check_all(args.all, args)
    if not args.function or not args.student_file:
        parser.print_usage(sys.stderr)
        print("error: give FUNCTION and STUDENT_FILE, or --all STUDENT_FILE, or grade FOLDER (or --list)",
              file=sys.stderr)
        return 2
    if args.function not in checker_names():
        print(f"error: no checker for {args.function!r}; try --list", file=sys.stderr)
        return 2
    defined = _defined(args.student_file)
    if isinstance(defined, int):
        return defined
    if args.function not in defined:
        print(f"error: {args.student_file} defines no function {args.function!r}", file=sys.stderr)
        return 2

    result = run_isolated(args.student_file, args.function, timeout=args.timeout, memory_mb=args.memory)
    print(result)
    return 0 if result else 1


def _defined(path):
    """The functions the file defines, or an exit code after printing why it cannot be read."""

    try:
        return defined_functions(path)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SyntaxError as error:
        print(f"error: {path} did not import: SyntaxError at line {error.lineno}: {error.msg}", file=sys.stderr)
        return 2


def _check_all(path, args):

    defined = _defined(path)
    if isinstance(defined, int):
        return defined
    if not set(defined) & set(checker_names()):
        print(f"error: {path} defines no assignment function; try --list", file=sys.stderr)
        return 2
    grades = grade_file(pathlib.Path(path), timeout=args.timeout, memory_mb=args.memory)
    print(score_table(grades))
    return 0 if all(g.passed for g in grades) else 1


if __name__ == "__main__":
    sys.exit(main())
