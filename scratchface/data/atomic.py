"""One atomic writer for every file scratchface writes: the old file survives a killed write.

Writing a file in place (``np.savez(path, ...)``, ``open(path, "w")``,
``fig.savefig(path)``) first truncates it: a process killed half-way (Ctrl-C,
SIGKILL, a full disk, a power cut) leaves neither the old file nor the new one.
Every writer of the package (galleries, ``nn.save``, the weight writers of the
training commands, training checkpoints, the plots of the CLI) goes through
:func:`atomic_write` instead:

1. write a temporary file **in the same folder** (``os.replace`` is only atomic
   within one file system);
2. ``flush`` and ``os.fsync`` it, so that its bytes are on disk before its name is;
3. ``os.replace`` it onto the target (POSIX ``rename(2)``: readers see either the
   old file or the new one, never a mix), then ``fsync`` the folder so that the
   rename itself survives a power cut;
4. on any error (or ``KeyboardInterrupt``) remove the temporary file and leave the
   target untouched.

A process killed by SIGKILL cannot clean up: its temporary file
(``.NAME.XXXX.tmp``, hidden) stays beside the target, which is intact.
"""
from __future__ import annotations

import contextlib
import os
import tempfile

import numpy as np

__all__ = ["atomic_write", "savez_atomic", "savefig_atomic", "npz_path"]


def _default_mode() -> int:
    """Permissions of a new file under the current umask (``mkstemp`` makes 0o600 files)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_folder(folder: str) -> None:
    if os.name != "posix":  # pragma: no cover - Windows cannot open a folder
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", *, encoding=None, newline=None):
    """Open a temporary file that replaces ``path`` only when the ``with`` block ends without error.

    Parameters
    ----------
    path : str or os.PathLike
        The file to (re)write; its folder must exist.
    mode : {'wb', 'w'}
        Binary or text.
    encoding, newline
        As for :func:`open` (text mode only).

    Yields
    ------
    file object
        Write to it; do not close it.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write {path}: it is a folder")
    permissions = os.stat(path).st_mode & 0o777 if os.path.exists(path) else _default_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, permissions)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def npz_path(path) -> str:
    """``path`` with ``.npz`` appended when missing, as ``np.savez`` does."""
    path = os.fspath(path)
    return path if path.endswith(".npz") else path + ".npz"


def savez_atomic(path, *, compress: bool = False, **arrays) -> str:
    """``np.savez`` / ``np.savez_compressed`` through :func:`atomic_write`; returns the path written.

    ``.npz`` is appended to ``path`` when missing (as ``np.savez`` does). Nothing
    is pickled: an object array raises ``ValueError`` before the target is touched.
    """
    path = npz_path(path)
    arrays = {key: np.asarray(value) for key, value in arrays.items()}
    for key, value in arrays.items():
        if value.dtype.hasobject:
            raise ValueError(f"{key} is an object array: it would be pickled; store plain numbers or strings")
    save = np.savez_compressed if compress else np.savez
    with atomic_write(path) as handle:
        save(handle, **arrays)
    return path


def savefig_atomic(fig, path, **kwargs) -> str:
    """``fig.savefig(path, **kwargs)`` through :func:`atomic_write` (format from the extension)."""
    path = os.fspath(path)
    extension = os.path.splitext(path)[1][1:].lower()
    kwargs.setdefault("format", extension or "png")
    with atomic_write(path) as handle:
        fig.savefig(handle, **kwargs)
    return path
