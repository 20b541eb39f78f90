"""Embedding many images on a Dask cluster: the streaming :func:`~scratchface.recognition.pipeline.embed_folder`, in parallel.

Needs the optional extra: ``pip install scratchface[dask]`` (``dask[bag]`` and
``distributed``). Dask is imported only when one of these functions is called.

Two ways in, both lazy until computed:

* :func:`embedding_bag`: a ``dask.bag`` over files. The files are split into
  partitions of ``batch_size``; each partition is read, detected (MTCNN),
  aligned and embedded (dlib's ResNet) in one task, exactly the steps of
  :func:`~scratchface.recognition.pipeline.embed_folder`, and becomes a list of
  :class:`~scratchface.recognition.pipeline.FolderItem`. A worker holds one
  partition's chips at a time, so memory is bounded by ``batch_size`` whatever
  the number of files.
* :func:`embed_chips_dask`: a ``dask.array`` of aligned 150 x 150 chips
  (e.g. stacked from a Zarr or HDF5 store), chunked along the first axis,
  mapped block by block through
  :func:`~scratchface.recognition.pipeline.embed_aligned` to an ``(N, 128)``
  array.

:func:`embed_folder_dask` computes the bag and returns the items in path order::

    from dask.distributed import Client, LocalCluster
    from scratchface.recognition.dask_pipeline import embed_folder_dask

    with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
        items = embed_folder_dask("photos/", batch_size=32, client=client)
    vectors = {item.path: item.embeddings for item in items}

The embeddings are those of :func:`embed_folder` on the same files (the same
functions run on the same arrays; only the grouping of chips into forward
passes differs, which moves float32 results by about 1e-6).
"""
from __future__ import annotations

import importlib
import os

import numpy as np

from .._validation import check_positive_int
from ..detection.mtcnn import detect_faces
from ..image import as_rgb, read_image
from .pipeline import (
    CHIP_SIZE,
    IMAGE_EXTENSIONS,
    FolderItem,
    align_dlib,
    embed_aligned,
    list_images,
)

__all__ = ["embed_chips_dask", "embed_file_list", "embed_folder_dask", "embedding_bag"]

_EXTRA_HINT = "pip install scratchface[dask]"


def _import_dask(module):
    """``dask.bag`` or ``dask.array``, or an ImportError that names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"this function needs Dask ({module}), which is an optional extra of scratchface: "
                          f"{_EXTRA_HINT}") from exc


def _file_list(path_or_paths, extensions, recursive):
    """A folder's images (sorted, as :func:`list_images`), or the given file paths in their order."""
    if isinstance(path_or_paths, (str, os.PathLike)):
        path = os.fspath(path_or_paths)
        if os.path.isdir(path):
            return list_images(path, extensions=extensions, recursive=recursive)
        if os.path.isfile(path):
            return [path]
        raise FileNotFoundError(f"no such folder or file: {path}")
    try:
        files = [os.fspath(p) for p in path_or_paths]
    except TypeError as exc:
        raise TypeError("path_or_paths must be a folder, a file, or an iterable of file paths, "
                        f"got {type(path_or_paths).__name__}") from exc
    return files


def embed_file_list(files, *, batch_size=32, min_face_size=20, max_faces=None):
    """Read, detect, align and embed a list of files in one go: one :class:`FolderItem` per file.

    The work of one Dask task (one partition of :func:`embedding_bag`); also
    usable without Dask. Unreadable and non-image files get an item with
    ``error`` set and empty arrays, as in :func:`embed_folder`.

    Parameters
    ----------
    files : list of paths
    batch_size : int
        Faces per forward pass of the embedding network.
    min_face_size : float
    max_faces : int, optional
        Keep only the largest faces of each image.

    Returns
    -------
    list of FolderItem
        In the order of ``files``.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    found, chips = [], []   # (path, boxes, n_faces, error) per file; the aligned chips of all files
    for file in files:
        try:
            rgb = as_rgb(read_image(file))
        except (ValueError, TypeError, OSError) as exc:
            found.append((os.fspath(file), np.zeros((0, 4), np.float32), 0, str(exc)))
            continue
        det = detect_faces(rgb, min_face_size=min_face_size)
        boxes, landmarks = det.boxes[:max_faces], det.landmarks[:max_faces]
        if len(boxes):
            chips.extend(align_dlib(rgb, landmarks))
        found.append((os.fspath(file), boxes, len(boxes), None))
    crops = np.stack(chips) if chips else np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.float32)
    vectors = embed_aligned(crops, batch_size=batch_size)
    offsets = np.cumsum([0] + [n for _, _, n, _ in found])
    return [FolderItem(file, vectors[offsets[k]:offsets[k + 1]], boxes, error)
            for k, (file, boxes, _, error) in enumerate(found)]


def embedding_bag(path_or_paths, *, batch_size=32, min_face_size=20, extensions=IMAGE_EXTENSIONS,
                  recursive=False, max_faces=None):
    """A lazy ``dask.bag`` of :class:`FolderItem`, one per file, ``batch_size`` files per partition.

    Parameters
    ----------
    path_or_paths : folder, file, or iterable of file paths
        A folder is listed as :func:`list_images` does (sorted; ``extensions``,
        ``recursive``); paths are taken as given, in their order.
    batch_size : int
        Files per partition (one task), and faces per forward pass.
    min_face_size, max_faces
        As in :func:`embed_folder`.

    Returns
    -------
    dask.bag.Bag
        Compute it (``bag.compute()``, ``client.compute(bag)``) or chain more
        steps (``bag.filter(lambda item: item.error is None)``).
    """
    bag_module = _import_dask("dask.bag")
    batch_size = check_positive_int(batch_size, "batch_size")
    if max_faces is not None:
        max_faces = check_positive_int(max_faces, "max_faces")
    files = _file_list(path_or_paths, extensions, recursive)
    if not files:
        return bag_module.from_sequence([], npartitions=1)
    bag = bag_module.from_sequence(files, partition_size=batch_size)
    return bag.map_partitions(lambda part: embed_file_list(list(part), batch_size=batch_size,
                                                       min_face_size=min_face_size, max_faces=max_faces))


def embed_folder_dask(path_or_paths, *, batch_size=32, client=None, min_face_size=20,
                      extensions=IMAGE_EXTENSIONS, recursive=False, max_faces=None):
    """:func:`embed_folder` on a Dask cluster: the list of :class:`FolderItem`, in path order.

    Parameters
    ----------
    path_or_paths : folder, file, or iterable of file paths
    batch_size : int
        Files per task, and faces per forward pass.
    client : dask.distributed.Client, optional
        Where to run; default: Dask's local threaded scheduler in this process.
    min_face_size, extensions, recursive, max_faces
        As in :func:`embedding_bag`.

    Returns
    -------
    list of FolderItem
        Everything at once (unlike the streaming :func:`embed_folder`): for
        collections larger than memory, keep :func:`embedding_bag` lazy and
        write its partitions out instead.
    """
    bag = embedding_bag(path_or_paths, batch_size=batch_size, min_face_size=min_face_size,
                        extensions=extensions, recursive=recursive, max_faces=max_faces)
    if client is None:
        return list(bag.compute(scheduler="threads"))
    return list(client.compute(bag).result())


def embed_chips_dask(chips, *, batch_size=32):
    """Embed a ``dask.array`` (or NumPy array) of aligned chips, block by block: a lazy ``(N, 128)`` dask array.

    Parameters
    ----------
    chips : array, shape (N, 150, 150, 3)
        RGB chips as :func:`align_dlib` makes them (0..255). A NumPy array is
        split into chunks of ``batch_size`` chips.
    batch_size : int
        Chunk size for a NumPy input, and faces per forward pass.

    Returns
    -------
    dask.array.Array, float32, shape (N, 128)
        Chunked along the first axis like ``chips``.
    """
    da = _import_dask("dask.array")
    batch_size = check_positive_int(batch_size, "batch_size")
    if not isinstance(chips, da.Array):
        chips = da.from_array(np.asarray(chips), chunks=(batch_size, -1, -1, -1))
    if chips.ndim != 4 or tuple(chips.shape[1:]) != (CHIP_SIZE, CHIP_SIZE, 3):
        raise ValueError(f"chips must have shape (N, {CHIP_SIZE}, {CHIP_SIZE}, 3), got {chips.shape}")
    chips = chips.rechunk({1: -1, 2: -1, 3: -1})
    return chips.map_blocks(lambda block: embed_aligned(block, batch_size=batch_size).astype(np.float32),
                            dtype=np.float32, chunks=(chips.chunks[0], (128,)), drop_axis=(2, 3))
