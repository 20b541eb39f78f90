"""Where in a traceback the student's code is: library files (scratchface, NumPy, Python) vs the student's."""
from __future__ import annotations

import contextlib
import pathlib
import sysconfig
import traceback

__all__ = ["is_library_file", "student_location"]


def _library_dirs():
    paths = {str(pathlib.Path(__file__).resolve().parents[1])}  # the scratchface package
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        with contextlib.suppress(KeyError):
            paths.add(str(pathlib.Path(sysconfig.get_paths()[key]).resolve()))
    return tuple(sorted(paths))


_LIBRARY_DIRS = _library_dirs()


def is_library_file(filename) -> bool:
    """True for scratchface's, NumPy's and Python's own files (not the student's)."""
    if not filename or filename.startswith("<frozen") or filename.startswith("<__array_function__"):
        return True
    if filename.startswith("<"):
        return False  # code typed into an interpreter or exec-ed from a string: the student's
    with contextlib.suppress(OSError, ValueError):
        filename = str(pathlib.Path(filename).resolve())
    return filename.startswith(_LIBRARY_DIRS)


def student_location(tb) -> str:
    """`` (in FILE, line N, in FUNCTION: code)`` for the innermost frame of ``tb`` in the student's
    code (not NumPy's, not the checker's), or ``''`` when there is none."""
    frames = [f for f in traceback.extract_tb(tb) if not is_library_file(f.filename)]
    if not frames:
        return ""
    frame = frames[-1]
    text = f": {frame.line.strip()}" if frame.line else ""
    return f" (in {pathlib.Path(frame.filename).name}, line {frame.lineno}, in {frame.name}{text})"
