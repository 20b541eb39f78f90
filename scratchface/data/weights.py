"""Loading shipped weights safely: SHA-256 checked, ``.npz`` read without unpickling, shapes checked.

Every network whose weights ship inside scratchface (MTCNN, dlib's ResNet, the
HOG detector) loads them through here, so that a corrupt, truncated, modified or
pickled file is refused with the same clear message.
"""
from __future__ import annotations

import hashlib
import io
import os
import zipfile

import numpy as np

from .atomic import atomic_write

__all__ = ["resolve_weights_path", "read_verified_npz", "check_weight_shapes", "sha256_of_file",
           "write_reproducible_npz"]


def sha256_of_file(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_weights_path(path, default_path: str, default_sha256: str, sha256, what: str):
    """``(absolute path, expected checksum or None)``.

    ``sha256='default'`` checks the shipped file against its known checksum and
    leaves a user's own file unchecked; ``None`` checks nothing.
    """
    path = default_path if path is None else os.fspath(path)
    if sha256 == "default":
        sha256 = default_sha256 if os.path.abspath(path) == os.path.abspath(default_path) else None
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    return os.path.abspath(path), sha256


def read_verified_npz(path: str, expected_sha256, *, what: str, remedy: str) -> dict:
    """All arrays of an ``.npz`` as a dict, after checking the file's SHA-256 (when given).

    Raises ``ValueError`` for a checksum that differs ("corrupt or modified"), or a
    file that is not a pickle-free ``.npz`` (``np.load(..., allow_pickle=False)``).
    """
    with open(path, "rb") as fh:
        raw = fh.read()
    if expected_sha256 is not None:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != expected_sha256:
            raise ValueError(f"{what} {path} is corrupt or modified: SHA-256 {digest}, expected "
                             f"{expected_sha256}. {remedy}")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except Exception as exc:  # zipfile.BadZipFile, EOFError, ValueError (pickled object arrays)...
        raise ValueError(f"{what} {path} cannot be read as a NumPy .npz: {exc}") from exc


def check_weight_shapes(weights: dict, shapes: dict, path: str, what: str) -> dict:
    """Every key of ``shapes`` present as a float32 array of that shape; arrays made read-only.

    The arrays are shared by every caller through the loaders' caches, hence read-only.
    """
    for key, shape in shapes.items():
        if key not in weights:
            raise ValueError(f"{what} {path} lacks the array {key!r}")
        if weights[key].shape != shape or weights[key].dtype != np.float32:
            raise ValueError(f"{what} {path}: {key} must be float32 {shape}, "
                             f"got {weights[key].dtype} {weights[key].shape}")
    for value in weights.values():
        value.flags.writeable = False
    return weights


def write_reproducible_npz(arrays: dict, out_path, *, deflate: bool) -> str:
    """Write ``arrays`` as an ``.npz`` whose bytes depend on the arrays only; return its SHA-256.

    ``np.savez`` stamps each zip member with the current time, so the same weights
    would get a new checksum on every conversion; here the keys are sorted, the
    date is fixed and nothing is pickled. ``deflate``: compress the members. Written
    atomically (:func:`scratchface.data.atomic.atomic_write`): a killed write leaves the old file.
    """
    compression = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with atomic_write(out_path) as handle, zipfile.ZipFile(handle, "w", compression=compression) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arrays[key], allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compression
            zf.writestr(info, buf.getvalue())
    return sha256_of_file(out_path)
