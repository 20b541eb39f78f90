"""Convert the MTCNN weights of facenet-pytorch 2.6.0 to a NumPy ``.npz``, without torch.

The trained P-Net, R-Net and O-Net weights (MIT licence, Timothy Esler's
facenet-pytorch, ported from Kaipeng Zhang's original Caffe models) ship in the
facenet-pytorch wheel as ``facenet_pytorch/data/{pnet,rnet,onet}.pt``. Those
are *legacy* (pre-1.6, non-zip) ``torch.save`` files: a run of pickles in one
file,

1. a magic number, 2. the protocol version, 3. system information,
4. the state dict itself, in which every tensor is a call to
   ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` and
   every storage a *persistent id* ``('storage', torch.FloatStorage, key,
   device, numel, view)``,
5. the list of storage keys, then for each key: its element count as a
   little-endian int64 followed by the raw little-endian data.

This experiment rebuilds each storage as a NumPy array and each tensor as a
strided view of it (honouring the stored strides), using only :mod:`pickle`
(with a restricted ``find_class`` that resolves nothing but the handful of
names such files use) and NumPy. It is the only place in scratchface where
pickle is used; it runs once, offline, to make ``scratchface/data/mtcnn_weights.npz``::

    pip download --no-deps facenet-pytorch==2.6.0 -d /tmp/fp
    python -m experiments.convert_mtcnn /tmp/fp/facenet_pytorch-2.6.0-py3-none-any.whl

The package itself only ever reads the ``.npz`` with ``allow_pickle=False``.

Layout of the ``.npz`` (float32): ``<net>.<layer>.w`` / ``.b`` / ``.alpha``,
e.g. ``pnet.conv1.w`` (F, C, KH, KW), ``pnet.prelu1.alpha`` (C,),
``rnet.dense4.w`` (D, M) — dense weights are transposed from torch's
``nn.Linear`` layout (M, D) to scratchface's ``out = x @ w + b``.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import sys
import zipfile

import numpy as np

from scratchface.data.weights import sha256_of_file, write_reproducible_npz
from scratchface.models.mtcnn_nets import WEIGHTS_PATH

__all__ = [
    "LEGACY_MAGIC_NUMBER",
    "convert_mtcnn",
    "convert_state_dict",
    "read_legacy_torch_file",
    "sha256_of_file",
]

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    """Stand-in for ``torch.FloatStorage`` and friends: only remembers the dtype."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A storage whose data is read after the main pickle (filled in later)."""

    def __init__(self, key, dtype, numel):
        self.key, self.dtype, self.numel = key, dtype, numel
        self.data = None


class _TensorStub:
    """A tensor waiting for its storage: offset, size and stride as pickled."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def to_numpy(self):
        base = self.storage.data
        if base is None:
            raise ValueError(f"storage {self.storage.key} was never filled")
        need = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1 if all(self.size) else 0
        if need > base.size:
            raise ValueError(f"tensor view needs {need} elements of storage {self.storage.key}, "
                             f"which holds {base.size}")
        item = base.itemsize
        view = np.lib.stride_tricks.as_strided(
            base[self.offset:], shape=self.size, strides=tuple(s * item for s in self.stride),
            writeable=False)
        return np.array(view)  # a contiguous copy


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _TensorStub(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


class _Unpickler(pickle.Unpickler):
    """Resolves only what a legacy state-dict file contains; anything else is refused."""

    def __init__(self, file):
        super().__init__(file, encoding="latin1")
        self.storages = {}

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if view_metadata is not None:
            raise pickle.UnpicklingError("storage views (pre-0.4 torch files) are not supported")
        if key not in self.storages:
            self.storages[key] = _Storage(key, storage_type.dtype, numel)
        return self.storages[key]


def read_legacy_torch_file(file) -> dict:
    """Read a legacy (non-zip) ``torch.save`` state dict into NumPy arrays, without torch.

    Parameters
    ----------
    file : str, path or binary file object

    Returns
    -------
    state : dict of str to ndarray
        In the file's order, each array a contiguous copy with the stored dtype.

    Raises
    ------
    ValueError
        Not a legacy torch file (a zip-format ``.pt`` file, a truncated file...).
    """
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as fh:
            return read_legacy_torch_file(io.BytesIO(fh.read()))
    head = file.read(4)
    if head[:2] == b"PK":
        raise ValueError("this is a zip-format torch file (torch >= 1.6); only the legacy format is supported")
    file.seek(-len(head), io.SEEK_CUR)
    magic = pickle.load(file)
    if magic != LEGACY_MAGIC_NUMBER:
        raise ValueError("not a legacy torch file (wrong magic number)")
    protocol = pickle.load(file)
    if protocol != 1001:
        raise ValueError(f"unsupported torch file protocol {protocol}")
    sys_info = pickle.load(file)
    if not sys_info.get("little_endian", True):
        raise ValueError("big-endian torch files are not supported")
    unpickler = _Unpickler(file)
    state = unpickler.load()
    keys = pickle.load(file)
    for key in keys:
        storage = unpickler.storages[key]
        raw = file.read(8)
        if len(raw) != 8:
            raise ValueError("truncated torch file (storage header missing)")
        (numel,) = struct.unpack("<q", raw)
        nbytes = numel * storage.dtype.itemsize
        data = file.read(nbytes)
        if len(data) != nbytes:
            raise ValueError(f"truncated torch file: storage {key} has {len(data)} of {nbytes} bytes")
        storage.data = np.frombuffer(data, dtype=storage.dtype.newbyteorder("<")).astype(storage.dtype)
    return {name: (t.to_numpy() if isinstance(t, _TensorStub) else np.asarray(t)) for name, t in state.items()}


def convert_state_dict(net: str, state: dict) -> dict:
    """Rename one net's torch state dict to scratchface's layout (float32).

    ``conv1.weight`` -> ``<net>.conv1.w``, ``conv1.bias`` -> ``<net>.conv1.b``,
    ``prelu1.weight`` -> ``<net>.prelu1.alpha``, ``dense4.weight`` (M, D) ->
    ``<net>.dense4.w`` (D, M) transposed.
    """
    out = {}
    for name, value in state.items():
        layer, kind = name.rsplit(".", 1)
        value = np.asarray(value, dtype=np.float32)
        if layer.startswith("prelu"):
            key = "alpha"
        elif kind == "weight":
            key = "w"
            if layer.startswith("dense"):
                value = np.ascontiguousarray(value.T)
        elif kind == "bias":
            key = "b"
        else:
            raise ValueError(f"unexpected parameter {name!r} in {net}")
        out[f"{net}.{layer}.{key}"] = value
    return out


def _open_member(source, net):
    member = f"facenet_pytorch/data/{net}.pt"
    if os.path.isdir(source):
        for candidate in (os.path.join(source, member), os.path.join(source, f"{net}.pt")):
            if os.path.isfile(candidate):
                with open(candidate, "rb") as fh:
                    return fh.read()
        raise FileNotFoundError(f"{net}.pt not found under {source}")
    with zipfile.ZipFile(source) as wheel:
        return wheel.read(member)


def convert_mtcnn(source, out_path) -> str:
    """Convert facenet-pytorch's three MTCNN nets into one ``.npz``; return its SHA-256.

    Parameters
    ----------
    source : path
        The ``facenet_pytorch-2.6.0-py3-none-any.whl`` file, or a folder holding
        ``pnet.pt``, ``rnet.pt``, ``onet.pt`` (or the unzipped wheel).
    out_path : path
        Where to write the ``.npz`` (uncompressed, keys sorted, so the file and
        its checksum are reproducible).
    """
    arrays = {}
    for net in ("pnet", "rnet", "onet"):
        state = read_legacy_torch_file(io.BytesIO(_open_member(os.fspath(source), net)))
        arrays.update(convert_state_dict(net, state))
    return write_reproducible_npz(arrays, out_path, deflate=False)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or len(argv) > 2:
        print("usage: python -m experiments.convert_mtcnn WHEEL_OR_DIR [OUT.npz]", file=sys.stderr)
        return 2
    out = argv[1] if len(argv) == 2 else WEIGHTS_PATH
    digest = convert_mtcnn(argv[0], out)
    print(f"wrote {out}\nsha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
