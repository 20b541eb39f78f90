"""Check a student's file in a child process: nothing the student's code does can hang or fool the grader.

Each check (one function of one file) runs in a fresh process started with ``spawn``:

* only the file's imports, ``def`` / ``class`` statements and constant assignments are executed
  (:func:`definitions`): its ``check(...)`` cells, demonstrations and a hang in another function
  never run;
* the child's address space is limited (``resource.RLIMIT_AS``, where it exists), so a huge
  allocation ends as ``MemoryError``; core dumps are off;
* the check has ``timeout`` seconds: inside the child a timer interrupts Python code and names the
  student's line; past ``timeout + grace`` the parent kills the child (a compiled loop that ignores
  signals) after asking :mod:`faulthandler` where it was;
* ``sys.exit``, ``os._exit``, ``KeyboardInterrupt``, a crash (signal 11) and an import that fails
  all end as a failed :class:`~scratchface.check.CheckResult` that says so — never as a pass.

The messages name the student's file, function and line. ``.ipynb`` notebooks are read cell by
cell (a location reads ``alice.ipynb, cell 7, line 3``); IPython magics (``%time``, ``!pip``) are skipped.
"""
from __future__ import annotations

import ast
import contextlib
import io
import json
import linecache
import multiprocessing
import os
import pathlib
import re
import signal
import tempfile
import time

from ._core import DEFAULT_TIMEOUT, CheckResult, Problem, run_checker
from ._frames import is_library_file, student_location

__all__ = ["load_cells", "definitions", "defined_functions", "load_namespace", "run_isolated",
           "DEFAULT_MEMORY_MB"]

#: Address-space limit of a child process, in MiB (NumPy, SciPy and Numba loaded take about 1.5 GiB).
DEFAULT_MEMORY_MB = 4096
#: Seconds a child may take to start and load the student's definitions.
SETUP_TIMEOUT = 60.0
_MAGIC = re.compile(r"^\s*[%!]")


def load_cells(path) -> list:
    """``[(filename, source), ...]``: the code of a ``.py`` file (one item) or of a notebook's code cells.

    A notebook cell's filename is ``'NAME.ipynb, cell K'`` (K counts every cell from 1), and its
    IPython magic lines are blanked (line numbers stay those of the cell).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"student file {str(path)!r} does not exist")
    if path.suffix == ".ipynb":
        try:
            notebook = json.loads(path.read_text(encoding="utf-8"))
            cells = notebook["cells"]
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path.name} is not a readable notebook: {error}") from None
        out = []
        for number, cell in enumerate(cells, start=1):
            if cell.get("cell_type") != "code":
                continue
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            lines = ["" if _MAGIC.match(line) else line for line in source.splitlines()]
            out.append((f"{path.resolve()}, cell {number}", "\n".join(lines) + "\n"))
        return out
    return [(str(path.resolve()), path.read_text(encoding="utf-8"))]


def _kept(node) -> bool:
    """Imports, definitions, and assignments that call nothing (``EPS = 1e-5``, ``ANGLES = (0, 90)``)."""
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        return not any(isinstance(n, (ast.Call, ast.Lambda, ast.ListComp, ast.GeneratorExp, ast.DictComp,
                                      ast.SetComp, ast.Await, ast.Yield)) for n in ast.walk(node.value))
    if isinstance(node, ast.Try):  # try: import numba / except ImportError: ...
        return all(_kept(n) or isinstance(n, ast.Pass) for n in node.body)
    return False


def definitions(source, filename="<student>") -> list:
    """The top-level statements of ``source`` that define things, each as a compiled code object.

    Raises ``SyntaxError`` (with the student's file and line) when the source does not parse.
    """
    tree = ast.parse(source, filename=filename)
    return [compile(ast.Module(body=[node], type_ignores=[]), filename, "exec") for node in tree.body if _kept(node)]


def defined_functions(path) -> list:
    """Names of the top-level functions a ``.py`` / ``.ipynb`` file defines, in order (SyntaxError kept)."""
    names = []
    for filename, source in load_cells(path):
        for node in ast.parse(source, filename=filename).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name not in names:
                names.append(node.name)
    return names


def load_namespace(path) -> dict:
    """Execute the definitions of a student's file (never its other top-level code); its namespace.

    An import that fails raises (ImportError ...); an assignment that fails (it used a variable the
    skipped code would have made) is left out.
    """
    path = pathlib.Path(path)
    namespace = {"__name__": f"_student_{re.sub(r'[^0-9a-zA-Z_]', '_', path.stem)}", "__file__": str(path)}
    for filename, source in load_cells(path):
        lines = source.splitlines(keepends=True)
        linecache.cache[filename] = (len(source), None, lines, filename)  # the student's line in reports
        for node in ast.parse(source, filename=filename).body:
            if not _kept(node):
                continue
            code = compile(ast.Module(body=[node], type_ignores=[]), filename, "exec")
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                with contextlib.suppress(Exception):
                    exec(code, namespace)
            else:
                exec(code, namespace)
    return namespace


# ----------------------------------------------------------------------------- the child process

def _limit_resources(memory_mb):
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if memory_mb:
            limit = int(memory_mb) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _child(path, name, timeout, memory_mb, crash_log, conn):
    """Runs in the child: load the definitions, report 'ready', run the check, send the result."""
    import faulthandler

    _limit_resources(memory_mb)
    log = open(crash_log, "w")  # noqa: SIM115 - open for the child's whole life
    faulthandler.enable(file=log)
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, file=log, all_threads=False)
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            namespace = load_namespace(path)
    except BaseException as error:  # a file that does not import: the student's error, in words

        conn.send(("setup", f"{pathlib.Path(path).name} did not load: {type(error).__name__}: {error}"
                            f"{student_location(error.__traceback__)}"))
        return
    fn = namespace.get(name)
    if not callable(fn):
        conn.send(("setup", f"{pathlib.Path(path).name} defines no function {name!r}"))
        return
    conn.send(("ready", ""))
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        result = run_checker(name, fn, namespace, timeout=timeout)
    conn.send(("done", (result.name, result.n_cases, [(p.what, p.case, p.hint) for p in result.problems])))


def _crash_location(crash_log) -> str:
    """The innermost student frame in a faulthandler dump (most recent call first)."""
    try:
        text = pathlib.Path(crash_log).read_text(errors="replace")
    except OSError:
        return ""
    for match in re.finditer(r'File "(.+?)", line (\d+) in (\S+)', text):
        filename, line, function = match.group(1), int(match.group(2)), match.group(3)
        if not is_library_file(filename):
            code = linecache.getline(filename, line).strip()
            return (f" (in {pathlib.Path(filename).name}, line {line}, in {function}"
                    f"{': ' + code if code else ''})")
    return ""


def _signal_name(number):
    with contextlib.suppress(ValueError):
        return signal.Signals(number).name
    return f"signal {number}"


def run_isolated(path, name, *, timeout=DEFAULT_TIMEOUT, memory_mb=DEFAULT_MEMORY_MB, grace=2.0,
                 setup_timeout=SETUP_TIMEOUT) -> CheckResult:
    """Check the function ``name`` of the student's file ``path`` in a child process.

    Parameters
    ----------
    path : str or pathlib.Path
        The student's ``.py`` or ``.ipynb`` file.
    name : str
        The function to check (there must be a checker of that name).
    timeout : float
        Seconds the check may take (all its cases), after the file's definitions are loaded.
    memory_mb : int or None
        Address-space limit of the child in MiB (``None``: no limit).
    grace : float
        Seconds past ``timeout`` before the child is killed (when the in-child timer could not stop it).
    setup_timeout : float
        Seconds to start the child and load the definitions.

    Returns
    -------
    CheckResult
        Failed, with one Problem saying what happened, for a time-out, a crash, an exit or a file
        that does not load; otherwise the checker's own result.
    """
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if memory_mb is not None and (not isinstance(memory_mb, int) or memory_mb < 256):
        raise ValueError(f"memory_mb must be an int >= 256 (MiB) or None, got {memory_mb!r}")
    path = pathlib.Path(path)
    for filename, source in load_cells(path):  # ValueError for a missing file, here in the parent
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    handle, crash_log = tempfile.mkstemp(prefix="scratchface_check_", suffix=".log")
    os.close(handle)
    child = ctx.Process(target=_child, args=(str(path), name, timeout, memory_mb, crash_log, send), daemon=True)
    result = CheckResult(name)
    try:
        child.start()
        send.close()
        message = _receive(receive, setup_timeout)
        if message is not None and message[0] == "ready":
            message = _receive(receive, timeout + grace)
            if message is _TIMED_OUT:  # the in-child timer did not stop it: ask where, kill
                if hasattr(signal, "SIGUSR1"):
                    with contextlib.suppress(OSError):
                        os.kill(child.pid, signal.SIGUSR1)
                    time.sleep(0.3)
                child.kill()
                child.join(5)
                result.add(f"timed out after {timeout:g} s{_crash_location(crash_log)}",
                           hint="an infinite loop? (a loop whose condition never changes); or far too slow")
                return result
        elif message is _TIMED_OUT:
            child.kill()
            child.join(5)
            result.add(f"{path.name} took more than {setup_timeout:g} s to load its definitions")
            return result
        if message is None:  # the child ended without a word: os._exit or a signal
            child.join(5)
            code = child.exitcode
            where = _crash_location(crash_log)
            if code is not None and code < 0:
                result.add(f"crashed ({_signal_name(-code)}, signal {-code}){where}",
                           hint="a segmentation fault: an out-of-bounds index in compiled (Numba / ctypes) code?")
            else:
                result.add(f"the process ended (exit code {code}) without finishing the check{where}",
                           hint="a function returns its result; it must never end the program")
            return result
        kind, payload = message
        if kind == "setup":
            result.add(payload)
            return result
        name_, n_cases, problems = payload
        result.n_cases = n_cases
        result.problems = [Problem(*p) for p in problems]
        return result
    finally:
        if child.is_alive():
            child.kill()
        child.join(5)
        receive.close()
        with contextlib.suppress(OSError):
            os.remove(crash_log)


_TIMED_OUT = ("timed out", "")


def _receive(connection, seconds):
    """The next message; ``_TIMED_OUT`` when nothing came within ``seconds``; None when the child
    closed the pipe (it ended)."""
    try:
        if not connection.poll(seconds):
            return _TIMED_OUT
        return connection.recv()
    except (EOFError, OSError):
        return None
