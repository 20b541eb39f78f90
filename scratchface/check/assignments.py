"""Student versions of the assignments, generated from the reference solutions.

The solutions (``notebooks/assignments/solutions/*.py``, jupytext percent format) mark the code a
student writes, nbgrader style::

    def relu(x):
        ### BEGIN SOLUTION
        return np.maximum(x, 0)
        ### END SOLUTION

and :func:`strip_solutions` replaces each marked block by a ``TODO`` at the same indentation::

    def relu(x):
        # TODO: your code here
        raise NotImplementedError

so the student version is never maintained by hand. Regenerate with::

    python -m scratchface.check.assignments notebooks/assignments/solutions notebooks/assignments

and add ``--ipynb DIR`` to also write ready-to-open student notebooks (``DIR/01_hog.ipynb``, ...;
needs jupytext) to hand out.
"""
from __future__ import annotations

import argparse
import pathlib
import re
import sys

from ..data.atomic import atomic_write

__all__ = ["strip_solutions", "generate_assignments", "write_notebooks", "solution_namespace", "with_replaced"]

_BEGIN = re.compile(r"^(\s*)### BEGIN SOLUTION\s*$")
_END = re.compile(r"^\s*### END SOLUTION\s*$")


def strip_solutions(text: str, *, source: str = "<text>") -> str:
    """Replace every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` block by a TODO stub.

    Raises ``ValueError`` (naming ``source`` and the line) for an unclosed, nested or stray marker.
    """
    out, indent, start = [], None, 0
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        begin, end = _BEGIN.match(line), _END.match(line)
        if begin:
            if indent is not None:
                raise ValueError(f"{source}:{number}: BEGIN SOLUTION inside the block opened at line {start}")
            indent, start = begin.group(1), number
        elif end:
            if indent is None:
                raise ValueError(f"{source}:{number}: END SOLUTION without a BEGIN SOLUTION")
            out.append(f"{indent}# TODO: your code here\n{indent}raise NotImplementedError\n")
            indent = None
        elif indent is None:
            out.append(line)
    if indent is not None:
        raise ValueError(f"{source}:{start}: BEGIN SOLUTION is never closed by END SOLUTION")
    return "".join(out)


def generate_assignments(solutions_dir, assignments_dir):
    """Write the student version of every ``*.py`` solution; return the written paths."""
    solutions_dir, assignments_dir = pathlib.Path(solutions_dir), pathlib.Path(assignments_dir)
    if not solutions_dir.is_dir():
        raise ValueError(f"solutions_dir {str(solutions_dir)!r} is not a directory")
    assignments_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(solutions_dir.glob("*.py")):
        target = assignments_dir / path.name
        with atomic_write(target, "w", encoding="utf-8") as handle:
            handle.write(strip_solutions(path.read_text(), source=str(path)))
        written.append(target)
    return written


def write_notebooks(py_files, out_dir):
    """Convert percent-format ``.py`` notebooks to ``.ipynb`` files in ``out_dir`` (outputs empty).

    Needs jupytext (``pip install -e ".[notebooks]"``); returns the written paths.
    """
    try:
        import jupytext
    except ImportError:
        raise ValueError("writing .ipynb files needs jupytext: pip install jupytext") from None
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in py_files:
        path = pathlib.Path(path)
        target = out_dir / (path.stem + ".ipynb")
        with atomic_write(target, "w", encoding="utf-8") as handle:
            handle.write(jupytext.writes(jupytext.read(path), fmt="ipynb"))
        written.append(target)
    return written


def solution_namespace(path):
    """The functions of a solution notebook (``.py``, percent format) without running its cells.

    Only the top-level imports, ``def`` statements and constant assignments (``EPS = 1e-5``) are
    executed, so the ``check(...)`` cells and any demonstration code are skipped (imports needed
    only by a demonstration belong inside it, to keep this fast); returns the namespace (a dict).
    """
    import ast
    import pathlib

    path = pathlib.Path(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    keep = [node for node in tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef))
            or (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant))]
    namespace = {"__name__": f"_solution_{path.stem}"}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


def with_replaced(namespace, source):
    """A copy of ``namespace`` where the function(s) defined by ``source`` replace the originals.

    The replacement runs in the copy (its globals), so a planted bug in a forward is seen by the
    backward that calls it, exactly as in a student's notebook.
    """
    import textwrap

    mutated = dict(namespace)
    exec(textwrap.dedent(source), mutated)
    return mutated


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m scratchface.check.assignments",
                                     description="Generate the student assignments from the solutions.")
    parser.add_argument("solutions_dir")
    parser.add_argument("assignments_dir")
    parser.add_argument("--ipynb", metavar="DIR", help="also write the student notebooks as .ipynb into DIR")
    args = parser.parse_args(argv)
    written = generate_assignments(args.solutions_dir, args.assignments_dir)
    if args.ipynb:
        try:
            written += write_notebooks(written, args.ipynb)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
