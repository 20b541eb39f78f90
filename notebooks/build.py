"""Turn the jupytext percent-format notebooks (``notebooks/**/*.py``) into ``.ipynb`` files.

The ``.py`` files are the source of truth (they diff and review like code); the
``.ipynb`` files are generated beside them and not committed. Run::

    python notebooks/build.py                 # every notebook, outputs empty
    python notebooks/build.py --execute       # ... and run each one top to bottom (saved with outputs)
    python notebooks/build.py notebooks/01_hog_detector.py --execute

Executing uses a fresh ``python3`` kernel per notebook with the notebook's
folder as working directory (as the tests do); ``--timeout`` is per cell.
The student versions of the assignments (``notebooks/assignments/*.py``, whose
``TODO`` cells raise ``NotImplementedError`` until solved) are converted but
not executed unless named explicitly. Files that are not notebooks (this
script, modules without a jupytext header) are skipped.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def is_notebook(path: pathlib.Path) -> bool:
    """A jupytext percent notebook: a ``.py`` file whose header names the percent format."""
    if path.suffix != ".py" or path.name.startswith("_") or path.resolve() == pathlib.Path(__file__).resolve():
        return False
    head = path.read_text(encoding="utf-8")[:1000]
    return "format_name: percent" in head


def find_notebooks(root: pathlib.Path = HERE) -> list[pathlib.Path]:
    """Every percent-format notebook under ``root``, sorted."""
    return sorted(p for p in root.rglob("*.py") if is_notebook(p) and ".ipynb_checkpoints" not in p.parts)


def is_student_version(path: pathlib.Path) -> bool:
    """An assignment as handed out (``notebooks/assignments/*.py``), not its solution."""
    return path.resolve().parent == (HERE / "assignments").resolve()


def build(path: pathlib.Path, *, execute: bool = False, timeout: int = 300) -> pathlib.Path:
    """Write ``path`` with the suffix ``.ipynb``; with ``execute``, run it first. Returns the new path."""
    import jupytext  # lazy: only needed here

    notebook = jupytext.read(path)
    if execute:
        from nbclient import NotebookClient

        NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    out = path.with_suffix(".ipynb")
    jupytext.write(notebook, out)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=pathlib.Path,
                        help="notebooks to build (default: every notebooks/**/*.py percent file)")
    parser.add_argument("--execute", action="store_true", help="run each notebook in a fresh kernel")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell when executing (default 300)")
    args = parser.parse_args(argv)
    paths = args.paths or find_notebooks()
    for path in paths:
        if not path.is_file():
            print(f"error: {path} not found", file=sys.stderr)
            return 2
        execute = args.execute and (bool(args.paths) or not is_student_version(path))
        start = time.perf_counter()
        out = build(path, execute=execute, timeout=args.timeout)
        print(f"{out}  ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
