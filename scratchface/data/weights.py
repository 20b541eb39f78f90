"""Loading shipped weights safely: SHA-256 checked, ``.npz`` read without unpickling, shapes checked.

Every network whose weights ship inside scratchface (MTCNN, dlib's ResNet, the
HOG detector) loads them through here, so that a corrupt, truncated, modified or
pickled file is refused with the same clear message.
"""
from __future__ import annotations

import hashlib
import io
import os

import numpy as np

__all__ = ["resolve_weights_path", "read_verified_npz", "check_weight_shapes", "sha256_of_file"]


def sha256_of_file(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


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
