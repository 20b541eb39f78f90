"""Photos in, "same person?" and "who is this?" out: detect (MTCNN) -> align -> embed (dlib) -> compare.

Each step is callable on its own::

    from scratchface.recognition.pipeline import embed_faces, verify, Gallery
    vectors = embed_faces("group.jpg")            # (n_faces, 128), largest face first
    same, distance = verify("a.jpg", "b.jpg")     # largest face of each; same = distance < 0.6
    gallery = Gallery()
    gallery.add("ada", "ada.jpg")
    gallery.add("alan", "alan.jpg")
    gallery.identify("photo.jpg")                 # one Match per face: name (or None), distance, box

1. **Detect**: :func:`scratchface.detection.mtcnn.detect_faces` finds boxes and
   five landmarks (eye centres, nose tip, mouth corners).
2. **Align**: :func:`align_dlib` warps each face with the similarity transform
   that takes its landmarks closest (least squares, Umeyama) to
   :data:`DLIB_TEMPLATE`: where dlib's mean face puts those five points in its
   150x150 chip with padding 0.25 (``get_face_chip_details(shape, 150, 0.25)``,
   as ``dlib.face_recognition_model_v1.compute_face_descriptor`` uses). dlib
   itself fits its own five landmarks (eye corners, nose base) or 68; MTCNN's
   points are matched to the mean of the eye contours, point 30 (nose tip) and
   points 48 / 54 (mouth corners) of the same mean face. Faces much larger than
   the chip are first shrunk by block averaging, as dlib does, to avoid aliasing.
3. **Embed**: :func:`embed_aligned` runs :mod:`scratchface.models.dlib_resnet`:
   a 128-d vector per face.
4. **Compare**: the Euclidean distance; below :data:`DEFAULT_THRESHOLD` (0.6,
   dlib's) is "the same person".

Large collections stream: :func:`embed_folder` reads, detects and embeds a
folder in batches and yields one result per file, so memory does not grow
with the number of images.
"""
from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from .._validation import (
    check_array,
    check_choice,
    check_positive_float,
    check_positive_int,
)
from ..data.atomic import savez_atomic
from ..detection.align import umeyama, warp_affine
from ..detection.mtcnn import detect_faces
from ..image import as_rgb, read_image
from ..models.dlib_resnet import embed_crops

__all__ = [
    "CHIP_SIZE",
    "DEFAULT_THRESHOLD",
    "DLIB_PADDING",
    "DLIB_TEMPLATE",
    "IMAGE_EXTENSIONS",
    "FaceEmbeddings",
    "FolderItem",
    "Gallery",
    "Match",
    "NoFaceError",
    "align_dlib",
    "detect_and_embed",
    "dlib_template",
    "embed_aligned",
    "embed_faces",
    "embed_files",
    "embed_folder",
    "list_images",
    "verify",
]

DEFAULT_THRESHOLD = 0.6  #: dlib's "same person" Euclidean distance (99.38% on LFW)
DLIB_PADDING = 0.25      #: margin of dlib's chip, in face widths (``compute_face_descriptor``'s default)
CHIP_SIZE = 150          #: side of the aligned chip, pixels

#: dlib's mean face (``get_face_chip_details``, points 17..67 on a unit square) at the five
#: MTCNN landmarks: left eye (mean of points 36-41), right eye (42-47), nose tip (30),
#: left / right mouth corner (48, 54); "left" = image left.
_MEAN_FACE_POINTS = np.array([[0.225492, 0.215990], [0.754761, 0.215990], [0.490127, 0.515625],
                              [0.254149, 0.780233], [0.726104, 0.780233]])


def dlib_template(size=CHIP_SIZE, padding=DLIB_PADDING):
    """The five landmarks' places (x, y) in dlib's ``size x size`` chip with ``padding``.

    ``p = size (padding + m) / (1 + 2 padding)`` for each mean-face point ``m``
    (dlib's ``get_face_chip_details``).

    Returns
    -------
    template : float64 array, shape (5, 2)
    """
    size = check_positive_int(size, "size")
    padding = check_positive_float(padding, "padding", allow_zero=True)
    return size * (padding + _MEAN_FACE_POINTS) / (1.0 + 2.0 * padding)


#: :func:`dlib_template` at 150 pixels, padding 0.25.
DLIB_TEMPLATE = dlib_template()


class NoFaceError(ValueError):
    """An image in which the detector found no face (where one was needed)."""


def _shrink_for_chip(rgb, matrix, size):
    """Block-average the part of ``rgb`` the chip sees when the chip is >= 2x smaller; adjust ``matrix``.

    Bilinear sampling of a much larger face skips pixels (aliasing). dlib
    avoids it with an image pyramid; here the covering region is reduced by an
    integer factor ``f`` (mean of ``f x f`` blocks) and the transform composed
    with ``input = f * small + offset``.
    """
    scale = np.sqrt(abs(np.linalg.det(matrix[:2, :2])))  # chip pixels per image pixel
    factor = int(np.floor(1.0 / scale)) if scale > 0 else 1
    if factor < 2:
        return rgb, matrix
    inverse = np.linalg.inv(matrix)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    src = corners @ inverse.T
    height, width = rgb.shape[:2]
    x0 = int(np.clip(np.floor(src[:, 0].min()) - factor, 0, width))
    y0 = int(np.clip(np.floor(src[:, 1].min()) - factor, 0, height))
    x1 = int(np.clip(np.ceil(src[:, 0].max()) + factor, 0, width))
    y1 = int(np.clip(np.ceil(src[:, 1].max()) + factor, 0, height))
    nh, nw = (y1 - y0) // factor, (x1 - x0) // factor
    if nh < 2 or nw < 2:
        return rgb, matrix
    region = rgb[y0:y0 + nh * factor, x0:x0 + nw * factor]
    small = region.reshape(nh, factor, nw, factor, -1).mean(axis=(1, 3))
    # small pixel (u, v) covers image pixels x0 + f u .. x0 + f u + f - 1: its centre is x0 + f u + (f - 1) / 2
    to_image = np.array([[factor, 0, x0 + (factor - 1) / 2], [0, factor, y0 + (factor - 1) / 2], [0, 0, 1]])
    return small, matrix @ to_image


def align_dlib(image, landmarks, size=CHIP_SIZE, padding=DLIB_PADDING):
    """Cut every face out as dlib's aligned chip: landmarks (n, 5, 2) -> crops (n, size, size, 3).

    Parameters
    ----------
    image : array or path
        Anything :func:`scratchface.image.as_rgb` accepts.
    landmarks : array, shape (n, 5, 2) or (5, 2)
        MTCNN's five points (x, y) per face: left eye, right eye, nose, left and
        right mouth corner.
    size : int
    padding : float >= 0

    Returns
    -------
    crops : float32 array, shape (n, size, size, 3), RGB on 0..255
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape == (5, 2):
        landmarks = landmarks[None]
    if landmarks.ndim != 3 or landmarks.shape[1:] != (5, 2) or not np.isfinite(landmarks).all():
        raise ValueError(f"landmarks must be finite with shape (n, 5, 2) (five (x, y) points per face), "
                         f"got {landmarks.shape}")
    template = dlib_template(size, padding)
    rgb = as_rgb(image)
    crops = np.zeros((len(landmarks), size, size, 3), np.float32)
    for k, points in enumerate(landmarks):
        matrix = umeyama(points, template)
        source, matrix = _shrink_for_chip(rgb, matrix, size)
        crops[k] = warp_affine(source, matrix, size)
    return crops


def embed_aligned(crops, *, batch_size=32, weights=None):
    """128-d descriptors of aligned chips.

    Parameters
    ----------
    crops : array, shape (n, 150, 150, 3) or (150, 150, 3)
        RGB chips on 0..255 (uint8 or float), aligned as :func:`align_dlib` does.
    batch_size : int
        Chips per forward pass (peak memory: about 5 MB per chip in float32).
    weights : dict, optional
        :func:`scratchface.models.dlib_resnet.load_dlib_weights` (the default).

    Returns
    -------
    embeddings : float32 array, shape (n, 128)
    """
    check_array(crops, "crops", ndim=(3, 4), dtype_kind="buif", finite=True)
    if crops.ndim == 4 and len(crops) == 0:
        return np.zeros((0, 128), np.float32)
    return embed_crops(crops, weights, batch_size=batch_size)


class FaceEmbeddings(NamedTuple):
    """Every face found in one image, largest first."""
    embeddings: np.ndarray  #: (n, 128) float32
    boxes: np.ndarray       #: (n, 4) float32, (x1, y1, x2, y2)
    probs: np.ndarray       #: (n,) float32, MTCNN's face probability
    landmarks: np.ndarray   #: (n, 5, 2) float32


def _detect(image, min_face_size):
    return detect_faces(image, min_face_size=min_face_size)


def detect_and_embed(image, *, min_face_size=20, max_faces=None, batch_size=32) -> FaceEmbeddings:
    """Detect every face with MTCNN, align it, embed it: a :class:`FaceEmbeddings` (largest face first).

    ``max_faces`` keeps only the largest ones. No face gives arrays with ``n = 0``.
    """
    rgb = as_rgb(image)
    det = _detect(rgb, min_face_size)
    if max_faces is not None:
        max_faces = check_positive_int(max_faces, "max_faces")
        det = type(det)(*(a[:max_faces] for a in det))
    crops = align_dlib(rgb, det.landmarks) if len(det.boxes) else np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.float32)
    return FaceEmbeddings(embed_aligned(crops, batch_size=batch_size), det.boxes, det.scores, det.landmarks)


def embed_faces(image, *, min_face_size=20, batch_size=32):
    """The 128-d descriptor of every face in ``image``: float32 (n_faces, 128), largest face first.

    Detects, aligns and embeds a photo (for a network trained here on
    preprocessed faces, see :func:`scratchface.recognition.orl_embedding.embed_with_net`).

    ``(0, 128)`` when no face is found. ``image``: a path, PIL image or array
    (gray, RGB, RGBA; uint8, uint16 or float).
    """
    return detect_and_embed(image, min_face_size=min_face_size, batch_size=batch_size).embeddings


def _largest_face(image, name, min_face_size):
    faces = detect_and_embed(image, min_face_size=min_face_size, max_faces=1)
    if len(faces.embeddings) == 0:
        raise NoFaceError(f"no face found in {name}" + (f" ({image})" if isinstance(image, (str, os.PathLike))
                                                        else "") + f" (min_face_size={min_face_size})")
    return faces.embeddings[0]


def verify(image_a, image_b, threshold=DEFAULT_THRESHOLD, *, min_face_size=20):
    """Are the largest faces of two images the same person?

    Parameters
    ----------
    image_a, image_b : path, PIL image or array
    threshold : float > 0
        Euclidean distance below which the faces are "the same" (dlib's 0.6).

    Returns
    -------
    same : bool
        ``distance < threshold``.
    distance : float
        Euclidean distance between the two 128-d descriptors.

    Raises
    ------
    NoFaceError
        (a ``ValueError``) when either image has no face.
    """
    threshold = check_positive_float(threshold, "threshold")
    a = _largest_face(image_a, "image_a", min_face_size)
    b = _largest_face(image_b, "image_b", min_face_size)
    distance = float(np.linalg.norm(a.astype(np.float64) - b))
    return distance < threshold, distance


class Match(NamedTuple):
    """One face of a probe image, named by the gallery."""
    name: object        #: the nearest enrolled name, or None ("unknown") when farther than the threshold
    distance: float     #: Euclidean distance to that name's nearest enrolled face
    nearest: str        #: the nearest enrolled name, whatever the distance
    box: np.ndarray     #: (4,) the face's box in the probe image (NaN for a bare embedding)


class Gallery:
    """Named faces to recognise people by.

    Parameters
    ----------
    threshold : float > 0
        A probe is named only when its distance to the nearest enrolled face is
        below ``threshold`` (open-set identification); otherwise its name is
        ``None`` ("unknown").
    min_face_size : float
        Passed to MTCNN when enrolling and identifying from photos.

    Notes
    -----
    **Duplicate names** are allowed and mean "more photos of the same person":
    every enrolled face is kept, and a probe's distance to a name is its
    distance to that name's *nearest* face (nearest-neighbour identification;
    more photos per person help). Enrolment uses the largest face of a photo.

    Examples
    --------
    >>> gallery = Gallery()
    >>> gallery.add("ada", "ada.jpg")                 # doctest: +SKIP
    >>> [m.name for m in gallery.identify("two_people.jpg")]   # doctest: +SKIP
    ['ada', None]
    """

    def __init__(self, threshold=DEFAULT_THRESHOLD, *, min_face_size=20):
        self.threshold = check_positive_float(threshold, "threshold")
        self.min_face_size = min_face_size
        self._names: list[str] = []
        self._embeddings = np.zeros((0, 128), np.float32)
        self.skipped: list = []  #: (path, reason) of the files :meth:`from_folder` left out

    def __len__(self):
        return len(self._names)

    def __repr__(self):
        return f"Gallery({len(self)} faces of {len(set(self._names))} people, threshold={self.threshold})"

    @property
    def names(self) -> list:
        """The name of every enrolled face, in enrolment order (names repeat for several photos)."""
        return list(self._names)

    @property
    def embeddings(self) -> np.ndarray:
        """(n, 128) float32, one row per enrolled face (a copy)."""
        return self._embeddings.copy()

    @property
    def people(self) -> list:
        """The distinct names, sorted."""
        return sorted(set(self._names))

    def add_embedding(self, name, embedding):
        """Enrol a descriptor (128,) or several (k, 128) under ``name``."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string, got {name!r}")
        embedding = np.asarray(embedding)
        check_array(embedding, "embedding", ndim=(1, 2), dtype_kind="f", finite=True)
        embedding = embedding.reshape(-1, embedding.shape[-1])
        if embedding.shape[1] != 128:
            raise ValueError(f"embedding must have 128 values (a dlib descriptor), got shape {embedding.shape}")
        self._embeddings = np.concatenate([self._embeddings, embedding.astype(np.float32)])
        self._names.extend([name] * len(embedding))
        return self

    def add(self, name, image):
        """Enrol the largest face of ``image`` (path, PIL image or array) under ``name``.

        Returns the face's descriptor (128,). Raises :class:`NoFaceError` when the
        image has no face.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string, got {name!r}")
        embedding = _largest_face(image, f"the photo of {name!r}", self.min_face_size)
        self.add_embedding(name, embedding)
        return embedding

    @classmethod
    def from_folder(cls, path, threshold=DEFAULT_THRESHOLD, *, min_face_size=20, on_error="raise"):
        """A gallery from a folder: ``DIR/name.jpg`` (the name is the file stem) or ``DIR/name/*.jpg``.

        ``on_error='skip'`` leaves out unreadable files and photos without a face
        (their paths are in ``gallery.skipped``); ``'raise'`` stops at the first.
        """
        check_choice(on_error, "on_error", ("raise", "skip"))
        root = os.fspath(path)
        if not os.path.isdir(root):
            raise NotADirectoryError(f"gallery folder not found: {root}")
        gallery = cls(threshold, min_face_size=min_face_size)
        entries = []
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                entries.extend((entry.name, p) for p in list_images(entry.path))
            elif entry.is_file():
                entries.append((os.path.splitext(entry.name)[0], entry.path))
        if not entries:
            raise ValueError(f"gallery folder {root} holds no images (expected DIR/name.jpg or DIR/name/*.jpg)")
        for name, file in entries:
            try:
                gallery.add(name, file)
            except (ValueError, OSError) as exc:
                if on_error == "raise":
                    raise
                gallery.skipped.append((file, str(exc)))
        return gallery

    def _check_ready(self):
        if len(self) == 0:
            raise ValueError("the gallery is empty: enrol faces with Gallery.add(name, image) "
                             "or Gallery.add_embedding(name, embedding) first")

    def identify_embeddings(self, embeddings, *, threshold=None, boxes=None):
        """Name descriptors (k, 128): a list of :class:`Match` (``box`` from ``boxes`` (k, 4), else NaN)."""
        self._check_ready()
        embeddings = np.asarray(embeddings)
        check_array(embeddings, "embeddings", ndim=(1, 2), dtype_kind="f", finite=True)
        embeddings = embeddings.reshape(-1, embeddings.shape[-1])
        if embeddings.shape[1] != self._embeddings.shape[1]:
            raise ValueError(f"embeddings must have {self._embeddings.shape[1]} columns, got {embeddings.shape}")
        boxes = np.full((len(embeddings), 4), np.nan, np.float32) if boxes is None else np.asarray(boxes)
        if boxes.shape != (len(embeddings), 4):
            raise ValueError(f"boxes must have shape ({len(embeddings)}, 4), got {boxes.shape}")
        return self._match(embeddings, boxes, threshold)

    def _match(self, embeddings, boxes, threshold):
        threshold = self.threshold if threshold is None else check_positive_float(threshold, "threshold")
        probes, enrolled = embeddings.astype(np.float64), self._embeddings.astype(np.float64)
        # |p - e|^2 = |p|^2 + |e|^2 - 2 p.e : a (k, n) matrix, never (k, n, 128)
        squared = (probes ** 2).sum(1)[:, None] + (enrolled ** 2).sum(1)[None, :] - 2.0 * probes @ enrolled.T
        distances = np.sqrt(np.maximum(squared, 0.0))
        nearest = distances.argmin(axis=1)
        matches = []
        for k, j in enumerate(nearest):
            d = float(distances[k, j])
            name = self._names[j]
            matches.append(Match(name if d < threshold else None, d, name, boxes[k]))
        return matches

    def identify(self, image, *, threshold=None):
        """Name every face in ``image``: a list of :class:`Match`, largest face first ([] without faces).

        Raises ``ValueError`` when the gallery is empty.
        """
        self._check_ready()
        faces = detect_and_embed(image, min_face_size=self.min_face_size)
        return self._match(faces.embeddings, faces.boxes, threshold)

    def save(self, path):
        """Write the names and descriptors to an ``.npz`` (no pickle), atomically; returns the path.

        ``.npz`` is appended when missing. A killed save leaves the previous file whole.
        """
        return savez_atomic(path, names=np.array(self._names, dtype=str), embeddings=self._embeddings,
                            threshold=np.array(self.threshold))

    @classmethod
    def load(cls, path):
        """A gallery written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                names, embeddings, threshold = npz["names"], npz["embeddings"], float(npz["threshold"])
        except (KeyError, ValueError, OSError, EOFError) as exc:
            raise ValueError(f"{path} is not a gallery file written by Gallery.save: {exc}") from exc
        if names.ndim != 1 or embeddings.shape != (len(names), 128):
            raise ValueError(f"{path} is not a gallery file written by Gallery.save: names {names.shape}, "
                             f"embeddings {embeddings.shape}")
        gallery = cls(threshold)
        gallery._names = [str(n) for n in names]
        gallery._embeddings = embeddings.astype(np.float32)
        return gallery


# ----------------------------------------------------------------------------- folders
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".pgm", ".ppm", ".pbm", ".tif", ".tiff", ".webp")


def list_images(path, *, extensions=IMAGE_EXTENSIONS, recursive=False):
    """The image files of a folder, sorted: those with an image extension (``extensions=None``: every file)."""
    root = os.fspath(path)
    if not os.path.isdir(root):
        raise NotADirectoryError(f"folder not found: {root}")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in files:
            if name.startswith("."):
                continue
            if extensions is None or name.lower().endswith(tuple(extensions)):
                found.append(os.path.join(folder, name))
    return sorted(found)


class FolderItem(NamedTuple):
    """The faces of one file of a folder."""
    path: str
    embeddings: np.ndarray  #: (n, 128) float32; (0, 128) without a face or on error
    boxes: np.ndarray       #: (n, 4) float32
    error: object           #: None, or why the file was skipped (unreadable, not an image)
    scores: np.ndarray = None  #: (n,) float32, MTCNN's face probabilities (None: not recorded)


def embed_folder(path, batch_size=32, *, min_face_size=20, extensions=IMAGE_EXTENSIONS, recursive=False,
                 max_faces=None, progress=True):
    """Embed every face of every image in a folder, streaming: yields one :class:`FolderItem` per file.

    Images are read, detected and aligned one at a time; their chips wait in a
    buffer of at most ``batch_size`` faces, embedded together in one forward
    pass, then yielded. Memory stays bounded by the batch (plus one image),
    whatever the number of files: 10,000 images are never held at once.
    Unreadable and non-image files are not fatal: their item has ``error``
    set and empty arrays.

    Parameters
    ----------
    path : folder
    batch_size : int
        Faces per forward pass of the embedding network.
    min_face_size : float
    extensions : tuple of str or None
        File endings taken as images (case-insensitive); ``None``: every file
        (e.g. Yale's ``subject01.happy``).
    recursive : bool
        Walk sub-folders too.
    max_faces : int, optional
        Keep only the largest faces of each image.
    progress : bool
        Show a tqdm progress bar (on stderr) over the files.

    Yields
    ------
    FolderItem
        In sorted path order.
    """
    files = list_images(path, extensions=extensions, recursive=recursive)
    yield from embed_files(files, batch_size, min_face_size=min_face_size, max_faces=max_faces, progress=progress)


def embed_files(files, batch_size=32, *, min_face_size=20, max_faces=None, progress=True):
    """:func:`embed_folder` on a list of image files: yields one :class:`FolderItem` per file, in order."""
    batch_size = check_positive_int(batch_size, "batch_size")
    if max_faces is not None:
        max_faces = check_positive_int(max_faces, "max_faces")
    files = [os.fspath(f) for f in files]
    pending = []          # (path, boxes, scores, n_faces, error) waiting for their chips' embeddings
    chips = []            # aligned chips of the pending files, at most batch_size (+ one image's faces)

    def flush():
        crops = np.stack(chips) if chips else np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.float32)
        vectors = embed_aligned(crops, batch_size=batch_size)
        start = 0
        for file, boxes, scores, n, error in pending:
            yield FolderItem(file, vectors[start:start + n], boxes, error, scores)
            start += n
        pending.clear()
        chips.clear()

    bar = _progress(len(files), progress)
    try:
        for file in files:
            try:
                rgb = as_rgb(read_image(file))
            except (ValueError, TypeError, OSError) as exc:
                pending.append((file, np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0, str(exc)))
            else:
                det = detect_faces(rgb, min_face_size=min_face_size)
                boxes, landmarks = det.boxes[:max_faces], det.landmarks[:max_faces]
                if len(boxes):
                    chips.extend(align_dlib(rgb, landmarks))
                pending.append((file, boxes, np.asarray(det.scores[:max_faces], np.float32), len(boxes), None))
            bar.update(1)
            if len(chips) >= batch_size:
                yield from flush()
        if pending:
            yield from flush()
    finally:
        bar.close()


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(total, enabled):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm  # lazy: tqdm.auto probes for Jupyter widgets, only when a bar is shown

    return tqdm(total=total, unit="image", desc="embedding faces")
