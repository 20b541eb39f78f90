"""Convert dlib's 128-d face descriptor network from face-api's TF.js files to a small ``.npz``.

dlib's ``dlib_face_recognition_resnet_model_v1`` (Davis King, CC0) was converted
to TensorFlow.js by face-api.js (Vincent Mühler, MIT) and ships in the npm
package ``@vladmandic/face-api@1.7.15`` (Vladimir Mandic, MIT) as two files:

``model/face_recognition_model-weights_manifest.json``
    A TF.js *weights manifest*: a list of groups, each with ``paths`` (the
    binary shard files, concatenated in order) and ``weights``: for every
    tensor its ``name``, ``shape``, ``dtype`` and, when it is quantised, a
    ``quantization`` entry ``{"dtype": "uint8", "scale": s, "min": m}``.
``model/face_recognition_model.bin``
    The raw bytes of all tensors back to back, in manifest order: ``prod(shape)``
    bytes for a uint8-quantised tensor, ``4 prod(shape)`` little-endian float32
    bytes for an unquantised one.

A quantised value is dequantised as ``value = q * scale + min`` (``q`` in 0..255).
No TensorFlow is needed: :func:`read_tfjs_weights` parses the JSON and slices
the shard with NumPy. Run once, offline::

    cd /tmp && npm pack @vladmandic/face-api@1.7.15      # -> vladmandic-face-api-1.7.15.tgz
    python -m experiments.convert_dlib /tmp/vladmandic-face-api-1.7.15.tgz

Layout of the ``.npz`` (so that it stays ~6.5 MB, the size of the shard, and
not 4x that): the uint8 tensors are *kept quantised*, as ``<key>.q`` (uint8,
already in scratchface's layout) with the scalars ``<key>.scale`` and
``<key>.min`` (float64, 0-d); the few unquantised tensors as ``<key>`` (float32).
Keys are face-api's names with ``/`` replaced by ``.``: ``conv32_down.conv.filters``,
``conv64_1.conv2.scale.weights``, ``fc``... Convolution filters are transposed
from TF's (KH, KW, C, F) to NCHW's (F, C, KH, KW); ``fc`` stays (256, 128),
scratchface's dense layout ``out = x @ w``. :func:`scratchface.models.dlib_resnet.load_dlib_weights`
dequantises at load time.
"""
from __future__ import annotations

import json
import os
import sys
import tarfile

import numpy as np

from scratchface.data.weights import sha256_of_file, write_reproducible_npz
from scratchface.models.dlib_resnet import WEIGHTS_PATH

__all__ = [
    "MANIFEST_NAME",
    "PACKAGE",
    "SHARD_NAME",
    "convert_dlib",
    "read_tfjs_weights",
    "sha256_of_file",
    "to_npz_arrays",
]

PACKAGE = "@vladmandic/face-api@1.7.15"
MANIFEST_NAME = "face_recognition_model-weights_manifest.json"
SHARD_NAME = "face_recognition_model.bin"

_DTYPES = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4"), "uint8": np.dtype("u1"),
           "uint16": np.dtype("<u2")}


class QuantizedTensor:
    """A uint8 tensor as stored: ``value = q * scale + min``."""

    def __init__(self, q, scale, minimum):
        self.q, self.scale, self.min = q, float(scale), float(minimum)

    def dequantize(self):
        return (self.q.astype(np.float64) * self.scale + self.min).astype(np.float32)


def read_tfjs_weights(manifest, shard_bytes) -> dict:
    """Parse a TF.js weights manifest and its concatenated shard bytes.

    Parameters
    ----------
    manifest : list
        The parsed JSON manifest (a list of groups with ``paths`` and ``weights``).
    shard_bytes : bytes or dict of str to bytes
        The shard files' bytes: one ``bytes`` for a single group with a single
        shard, else a dict from each file name in ``paths`` to its bytes.

    Returns
    -------
    tensors : dict of str to ndarray or QuantizedTensor
        In the manifest's (TF) layout; quantised tensors stay uint8.

    Raises
    ------
    ValueError
        An unknown dtype or quantisation, or shard bytes that do not match the
        manifest's sizes.
    """
    if not isinstance(manifest, list) or not manifest:
        raise ValueError("manifest must be a non-empty list of weight groups")
    tensors = {}
    for group in manifest:
        paths = group.get("paths", [])
        if isinstance(shard_bytes, (bytes, bytearray)):
            if len(manifest) != 1:
                raise ValueError("pass the shards as a dict {file name: bytes} for a multi-group manifest")
            data = bytes(shard_bytes)
        else:
            missing = [p for p in paths if p not in shard_bytes]
            if missing:
                raise ValueError(f"shard file(s) {missing} of the manifest were not given")
            data = b"".join(shard_bytes[p] for p in paths)
        offset = 0
        for entry in group["weights"]:
            name, shape = entry["name"], tuple(int(s) for s in entry["shape"])
            count = int(np.prod(shape, dtype=np.int64))
            quant = entry.get("quantization")
            stored = _DTYPES.get(quant["dtype"] if quant else entry["dtype"])
            if stored is None or (quant and quant["dtype"] != "uint8"):
                raise ValueError(f"{name}: unsupported dtype / quantisation {entry}")
            nbytes = count * stored.itemsize
            if offset + nbytes > len(data):
                raise ValueError(f"shard too short: {name} needs bytes {offset}..{offset + nbytes}, "
                                 f"the shard has {len(data)}")
            raw = np.frombuffer(data, dtype=stored, count=count, offset=offset).reshape(shape)
            offset += nbytes
            tensors[name] = QuantizedTensor(raw.copy(), quant["scale"], quant["min"]) if quant else raw.copy()
        if offset != len(data):
            raise ValueError(f"shard has {len(data) - offset} bytes more than the manifest describes")
    return tensors


def _to_ours(name, array):
    """TF layout -> scratchface layout: conv filters (KH, KW, C, F) -> (F, C, KH, KW)."""
    if name.endswith("/conv/filters"):
        return np.ascontiguousarray(array.transpose(3, 2, 0, 1))
    return np.ascontiguousarray(array)


def to_npz_arrays(tensors) -> dict:
    """The arrays to store: ``<key>.q`` / ``.scale`` / ``.min`` or ``<key>`` (see the module docstring)."""
    arrays = {}
    for name, tensor in tensors.items():
        key = name.replace("/", ".")
        if isinstance(tensor, QuantizedTensor):
            arrays[f"{key}.q"] = _to_ours(name, tensor.q)
            arrays[f"{key}.scale"] = np.array(tensor.scale, dtype=np.float64)
            arrays[f"{key}.min"] = np.array(tensor.min, dtype=np.float64)
        else:
            arrays[key] = _to_ours(name, tensor).astype(np.float32)
    return arrays


def _read_package_files(source):
    """The manifest (parsed) and the shard bytes from an npm ``.tgz``, a folder or the manifest file."""
    source = os.fspath(source)
    if os.path.isfile(source) and source.endswith((".tgz", ".tar.gz")):
        with tarfile.open(source, "r:gz") as tar:
            def member(name):
                handle = tar.extractfile(f"package/model/{name}")
                if handle is None:
                    raise FileNotFoundError(f"package/model/{name} not in {source}")
                return handle.read()
            manifest = json.loads(member(MANIFEST_NAME))
            shards = {p: member(p) for group in manifest for p in group["paths"]}
        return manifest, shards
    folder = os.path.dirname(source) if os.path.isfile(source) else source
    for candidate in (folder, os.path.join(folder, "model"), os.path.join(folder, "package", "model")):
        if os.path.isfile(os.path.join(candidate, MANIFEST_NAME)):
            folder = candidate
            break
    else:
        raise FileNotFoundError(f"{MANIFEST_NAME} not found in {source}")
    with open(os.path.join(folder, MANIFEST_NAME), encoding="utf-8") as fh:
        manifest = json.load(fh)
    shards = {}
    for group in manifest:
        for p in group["paths"]:
            with open(os.path.join(folder, p), "rb") as fh:
                shards[p] = fh.read()
    return manifest, shards


def write_npz(arrays, out_path) -> str:
    """Write ``arrays`` as a reproducible ``.npz`` (sorted keys, fixed dates, deflated); return its SHA-256."""
    return write_reproducible_npz(arrays, out_path, deflate=True)


def convert_dlib(source, out_path) -> str:
    """Convert face-api's ``face_recognition_model`` files into the ``.npz``; return its SHA-256.

    Parameters
    ----------
    source : path
        The npm tarball ``vladmandic-face-api-1.7.15.tgz``, the unpacked
        ``package`` folder, its ``model`` folder, or the manifest file itself.
    out_path : path
        Where to write the ``.npz``; the same input always gives the same bytes.
    """
    manifest, shards = _read_package_files(source)
    return write_npz(to_npz_arrays(read_tfjs_weights(manifest, shards)), out_path)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or len(argv) > 2:
        print("usage: python -m experiments.convert_dlib FACE_API_TGZ_OR_DIR [OUT.npz]",
              file=sys.stderr)
        return 2
    out = argv[1] if len(argv) == 2 else WEIGHTS_PATH
    digest = convert_dlib(argv[0], out)
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.2f} MB)\nsha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
