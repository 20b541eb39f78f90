"""A gallery built once: enrol a folder of known people into a file, update it by content hash.

``face_recognition``'s command line re-reads the folder of known people on every call; deepface's
``find`` caches the gallery's descriptors. Here a folder of people (``DIR/name.jpg``, or
``DIR/name/*.jpg`` for several photos of a person) is enrolled once into a ``.npz``::

    result = enroll_folder("people/")                       # detect, align, embed every photo
    save_enrolment("gallery.npz", result)                    # atomically
    result = enroll_folder("people/", previous=load_enrolment("gallery.npz"))
    # only new or changed files (SHA-256 of their bytes) are embedded again; removed ones drop out

Each photo gives one record: its path (relative to the folder), SHA-256, person, the number of faces
MTCNN found (-1: unreadable) and the descriptor of its largest face (NaN without one). A photo
without a face is left out; with several faces the largest is enrolled and the photo reported.
The file is also a :class:`~scratchface.recognition.pipeline.Gallery` file (``names``,
``embeddings``, ``threshold``): ``Gallery.load`` reads it.
"""
from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from .._validation import check_positive_float
from ..data.atomic import savez_atomic
from ..data.weights import sha256_of_file
from . import pipeline

__all__ = ["Enrolment", "people_photos", "enroll_folder", "save_enrolment", "load_enrolment", "load_gallery"]

UNREADABLE = -1  #: ``faces`` of a record whose file could not be read as an image


class Enrolment(NamedTuple):
    """One record per photo of the people folder, plus what :func:`enroll_folder` did."""
    paths: list            #: photo paths relative to the folder
    hashes: list           #: hex SHA-256 of each photo's bytes
    names: list            #: the person of each photo
    faces: np.ndarray      #: (n,) faces found per photo; -1 unreadable
    embeddings: np.ndarray  #: (n, 128) float32, the largest face's descriptor; NaN rows without one
    errors: list           #: why a photo could not be read ('' otherwise)
    min_face_size: float
    embedded: int = 0      #: photos embedded in this run (new or changed)
    reused: int = 0        #: photos whose records came from ``previous`` (same path and bytes)
    removed: int = 0       #: photos of ``previous`` no longer in the folder

    def gallery(self, threshold=pipeline.DEFAULT_THRESHOLD) -> pipeline.Gallery:
        """The enrolled faces (photos with at least one face) as a :class:`Gallery`."""
        gallery = pipeline.Gallery(threshold, min_face_size=self.min_face_size)
        for name, n, vector in zip(self.names, self.faces, self.embeddings):
            if n > 0:
                gallery.add_embedding(name, vector)
        return gallery


def people_photos(folder) -> list:
    """``[(person, path)]``: ``DIR/name.jpg`` (the stem is the name) and ``DIR/name/*.jpg``, sorted."""
    root = os.fspath(folder)
    if not os.path.isdir(root):
        raise NotADirectoryError(f"people folder not found: {root}")
    entries = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            entries.extend((entry.name, p) for p in pipeline.list_images(entry.path))
        elif entry.is_file():
            entries.append((os.path.splitext(entry.name)[0], entry.path))
    if not entries:
        raise ValueError(f"people folder {root} holds no images (expected DIR/name.jpg or DIR/name/*.jpg)")
    return entries


def enroll_folder(folder, *, previous=None, min_face_size=20, batch_size=32, progress=False) -> Enrolment:
    """Enrol every photo of a people folder; with ``previous``, embed only new or changed photos.

    Parameters
    ----------
    folder : path
        ``DIR/name.jpg`` or ``DIR/name/*.jpg``.
    previous : Enrolment, optional
        An earlier enrolment of the same folder (:func:`load_enrolment`): a photo whose path and
        SHA-256 are unchanged keeps its record (with the same ``min_face_size``).
    min_face_size : float
    batch_size : int
        Faces per forward pass.
    progress : bool
        A progress bar over the photos embedded.
    """
    min_face_size = check_positive_float(min_face_size, "min_face_size")
    root = os.fspath(folder)
    entries = people_photos(root)
    relative = [os.path.relpath(path, root) for _, path in entries]
    hashes = [sha256_of_file(path) for _, path in entries]
    known = {}
    if previous is not None and previous.min_face_size == min_face_size:
        known = {(p, h): k for k, (p, h) in enumerate(zip(previous.paths, previous.hashes))}
    n = len(entries)
    faces = np.zeros(n, np.int64)
    embeddings = np.full((n, 128), np.nan, np.float32)
    errors = [""] * n
    todo = []
    for k, key in enumerate(zip(relative, hashes)):
        if key in known:
            j = known[key]
            faces[k], embeddings[k], errors[k] = previous.faces[j], previous.embeddings[j], previous.errors[j]
        else:
            todo.append(k)
    files = [entries[k][1] for k in todo]
    items = pipeline.embed_files(files, batch_size, min_face_size=min_face_size, progress=progress and bool(files))
    for k, item in zip(todo, items):
        if item.error is not None:
            faces[k], errors[k] = UNREADABLE, str(item.error)
        else:
            faces[k] = len(item.embeddings)
            if len(item.embeddings):
                embeddings[k] = item.embeddings[0]  # MTCNN sorts faces largest first
    reused = n - len(todo)
    removed = 0 if previous is None else len(set(previous.paths) - set(relative))
    return Enrolment(relative, hashes, [name for name, _ in entries], faces, embeddings, errors, min_face_size,
                     embedded=len(todo), reused=reused, removed=removed)


def save_enrolment(path, enrolment: Enrolment, threshold=pipeline.DEFAULT_THRESHOLD) -> str:
    """Write the records and the gallery they make to an ``.npz`` (atomically; no pickle)."""
    gallery = enrolment.gallery(threshold)
    return savez_atomic(path, names=np.array(gallery.names, dtype=str), embeddings=gallery.embeddings,
                        threshold=np.array(float(threshold)),
                        photo_paths=np.array(enrolment.paths, dtype=str),
                        photo_hashes=np.array(enrolment.hashes, dtype=str),
                        photo_names=np.array(enrolment.names, dtype=str),
                        photo_faces=np.asarray(enrolment.faces, np.int64),
                        photo_embeddings=np.asarray(enrolment.embeddings, np.float32),
                        photo_errors=np.array(enrolment.errors, dtype=str),
                        min_face_size=np.array(float(enrolment.min_face_size)))


def load_enrolment(path) -> Enrolment:
    """The records of a file written by :func:`save_enrolment` (``ValueError`` for anything else)."""
    keys = ("photo_paths", "photo_hashes", "photo_names", "photo_faces", "photo_embeddings", "photo_errors",
            "min_face_size")
    try:
        with np.load(path, allow_pickle=False) as npz:
            paths, hashes, names, faces, embeddings, errors, size = (npz[k] for k in keys)
    except (KeyError, ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path} is not a gallery written by `scratchface enroll`: {exc}") from None
    n = len(paths)
    if not (len(hashes) == len(names) == len(faces) == len(errors) == n and embeddings.shape == (n, 128)):
        raise ValueError(f"{path} is not a gallery written by `scratchface enroll`: inconsistent records")
    return Enrolment([str(p) for p in paths], [str(h) for h in hashes], [str(s) for s in names],
                     faces.astype(np.int64), embeddings.astype(np.float32), [str(e) for e in errors], float(size))


def load_gallery(source, threshold=None, *, min_face_size=20, batch_size=32, progress=False):
    """``(gallery, enrolment or None)`` from a gallery file (``.npz``) or a people folder (enrolled now).

    ``threshold=None``: the file's own threshold (a folder: dlib's 0.6).
    """
    source = os.fspath(source)
    if os.path.isdir(source):
        enrolment = enroll_folder(source, min_face_size=min_face_size, batch_size=batch_size, progress=progress)
        return enrolment.gallery(pipeline.DEFAULT_THRESHOLD if threshold is None else threshold), enrolment
    if not os.path.isfile(source):
        raise FileNotFoundError(f"gallery not found: {source} (a file from `scratchface enroll` or a folder)")
    try:
        gallery = pipeline.Gallery.load(source)
    except ValueError:
        raise ValueError(f"{source} is neither a gallery file (from `scratchface enroll` or Gallery.save) "
                         "nor a folder of people") from None
    if threshold is not None:
        gallery.threshold = check_positive_float(threshold, "threshold")
    gallery.min_face_size = min_face_size
    return gallery, None
