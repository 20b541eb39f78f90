"""A synthetic detection set with a known scale distribution: real faces pasted onto face-free photos.

WIDER FACE reports a detector's precision per face size because detectors
fail on small faces first. With only a handful of labelled photos (dlib's
nine), we make scenes where the size of every face is chosen:

1. a background: one of scikit-image's bundled photos without people
   (:data:`BACKGROUNDS`; ``astronaut`` and ``camera`` show people and are left
   out) or ``dlib_faces/dogs.jpg`` (dogs, no human face), rescaled at random,
   randomly cropped to ``image_size`` and maybe mirrored;
2. ``k`` faces (``faces_per_image``), each given a size band at random (all
   bands equally likely), a height uniform in the band, and a random face:

   * ORL (400 grey 92x112 images): the images are already face crops; the
     whole crop is pasted and is the face box.
   * Yale (164 grey 320x243 photos): the face box is MTCNN's
     (:func:`scratchface.detection.mtcnn.detect_faces`, the largest face; an
     image where MTCNN finds none is never used), computed the first time the
     image is drawn and kept in memory; the box plus a 20% margin of the
     photo around it is pasted.

   Each face is resized (bilinear, PIL; antialiased when shrinking) so that
   its box is that many pixels high, and put where its box lies wholly in the
   image and its pasted patch overlaps no earlier patch (so boxes never
   overlap: IoU 0). Faces go in from largest to smallest; one that finds no
   free place in 50 tries is left out, so a scene may have fewer than ``k``.

Nothing is stored: the scenes are generated on the fly from the seed, the
same seed giving the same scenes.

The face "size" is the box height, as in WIDER FACE's scale groups.

References
----------
S. Yang, P. Luo, C. C. Loy, X. Tang, "WIDER FACE: A Face Detection Benchmark", CVPR 2016, section 3.2
(scale: small 10-50, medium 50-300, large > 300 pixels of face height).
S. Yang, Y. Xiong, C. C. Loy, X. Tang, "Face Detection through Scale-Friendly Deep Convolutional
Networks", 2017 (training data per scale band).
"""
from __future__ import annotations

import numbers
import pathlib
from typing import NamedTuple

import numpy as np

from .._validation import as_generator, check_positive_int
from ..data.dlib_faces import dlib_faces_dir
from ..data.orl import load_orl_faces
from ..data.yale import load_yale_faces
from ..image import as_rgb
from .evaluation import face_heights
from .mtcnn import detect_faces

__all__ = ["BACKGROUNDS", "FaceSource", "band_of", "synthetic_face_scenes"]

#: scikit-image sample photos without people (read from the installed package, no download)
BACKGROUNDS = ("coffee", "chelsea", "rocket", "coins", "brick", "grass", "gravel", "moon", "clock",
               "hubble_deep_field", "immunohistochemistry", "colorwheel", "cell")
YALE_MARGIN = 0.2          # context pasted around a Yale face box, per side, as a fraction of the box
PLACEMENT_TRIES = 50


class FaceSource(NamedTuple):
    """One face that can be pasted."""
    patch: np.ndarray   #: (h, w) or (h, w, 3) uint8, the pixels pasted
    box: np.ndarray     #: (4,) float64 (x1, y1, x2, y2), the face box in ``patch`` pixels


def band_of(heights, size_bands) -> np.ndarray:
    """Index of the band ``[low, high)`` holding each height; -1 for none."""
    heights = np.asarray(heights, dtype=np.float64).reshape(-1)
    band = np.full(heights.shape, -1, dtype=np.int64)
    for k, (low, high) in enumerate(size_bands):
        band[(band < 0) & (heights >= low) & (heights < high)] = k
    return band


# ---------------------------------------------------------------- sources, cached in memory
class _FaceLibrary:
    """ORL crops and Yale photos; Yale face boxes found by MTCNN on first use."""

    def __init__(self, data_dir):
        self.orl = load_orl_faces(data_dir)[0]
        self.yale = load_yale_faces(data_dir).images
        self._yale_sources = {}

    def __len__(self):
        return len(self.orl) + len(self.yale)

    def get(self, index):
        """The ``FaceSource`` of face ``index``, or ``None`` when MTCNN finds no face on it."""
        if index < len(self.orl):
            crop = self.orl[index]
            return FaceSource(crop, np.array([0.0, 0.0, crop.shape[1], crop.shape[0]]))
        index -= len(self.orl)
        if index not in self._yale_sources:
            self._yale_sources[index] = _yale_source(self.yale[index])
        return self._yale_sources[index]


def _yale_source(photo):
    found = detect_faces(photo, sort_by="area")
    if len(found.boxes) == 0:
        return None
    height, width = photo.shape[:2]
    x1, y1, x2, y2 = np.clip(found.boxes[0].astype(np.float64), 0, [width, height, width, height])
    mx, my = YALE_MARGIN * (x2 - x1), YALE_MARGIN * (y2 - y1)
    left, top = int(max(np.floor(x1 - mx), 0)), int(max(np.floor(y1 - my), 0))
    right, bottom = int(min(np.ceil(x2 + mx), width)), int(min(np.ceil(y2 + my), height))
    return FaceSource(photo[top:bottom, left:right], np.array([x1 - left, y1 - top, x2 - left, y2 - top]))


_LIBRARIES: dict = {}
_BACKGROUND_CACHE: dict = {}


def _face_library(data_dir):
    key = str(data_dir)
    if key not in _LIBRARIES:
        _LIBRARIES[key] = _FaceLibrary(data_dir)
    return _LIBRARIES[key]


def _backgrounds(data_dir):
    """The face-free photos as (H, W, 3) uint8: scikit-image's, then ``dogs.jpg`` if it is there."""
    key = str(data_dir)
    if key not in _BACKGROUND_CACHE:
        import skimage.data  # noqa: PLC0415  (scikit-image's bundled photos: only when scenes are made)

        photos = [getattr(skimage.data, name)() for name in BACKGROUNDS]
        try:
            dogs = dlib_faces_dir(data_dir) / "dogs.jpg"
        except FileNotFoundError:
            dogs = None
        if dogs is not None and dogs.is_file():
            photos.append(dogs)
        _BACKGROUND_CACHE[key] = [np.rint(as_rgb(p)).astype(np.uint8) for p in photos]
    return _BACKGROUND_CACHE[key]


# ---------------------------------------------------------------- scene making
def _resize(image, height, width):
    from PIL import Image  # noqa: PLC0415  (Pillow: only when scenes are made)
    return np.array(Image.fromarray(image).resize((int(width), int(height)), Image.BILINEAR))


def _background(photo, image_size, rng):
    height, width = image_size
    fit = max(height / photo.shape[0], width / photo.shape[1])   # the smallest scale that covers the image
    scale = fit * rng.uniform(1.0, 2.0)
    new_h, new_w = max(height, round(photo.shape[0] * scale)), max(width, round(photo.shape[1] * scale))
    photo = _resize(photo, new_h, new_w)
    top, left = rng.integers(0, new_h - height + 1), rng.integers(0, new_w - width + 1)
    scene = photo[top:top + height, left:left + width]
    return np.ascontiguousarray(scene[:, ::-1] if rng.random() < 0.5 else scene)


def _overlaps(rect, taken):
    top, left, bottom, right = rect
    return any(top < b and t < bottom and left < r and l < right for t, l, b, r in taken)


def _place_face(scene, source, face_height, taken, rng):
    """Paste ``source`` with its box ``face_height`` high; return its box in the scene, or None."""
    height, width = scene.shape[:2]
    patch_h, patch_w = source.patch.shape[:2]
    scale = face_height / (source.box[3] - source.box[1])
    new_h, new_w = max(round(patch_h * scale), 1), max(round(patch_w * scale), 1)
    box = source.box * np.array([new_w, new_h] * 2) / np.array([patch_w, patch_h] * 2)
    # integer offsets (left, top) that keep the box inside the image
    lo_x, hi_x = int(np.ceil(-box[0])), int(np.floor(width - box[2]))
    lo_y, hi_y = int(np.ceil(-box[1])), int(np.floor(height - box[3]))
    if lo_x > hi_x or lo_y > hi_y:
        return None
    for _ in range(PLACEMENT_TRIES):
        left, top = int(rng.integers(lo_x, hi_x + 1)), int(rng.integers(lo_y, hi_y + 1))
        rect = (max(top, 0), max(left, 0), min(top + new_h, height), min(left + new_w, width))
        if not _overlaps(rect, taken):
            break
    else:
        return None
    patch = _resize(source.patch, new_h, new_w)
    if patch.ndim == 2:
        patch = np.repeat(patch[:, :, None], 3, axis=2)
    t, l, b, r = rect
    scene[t:b, l:r] = patch[t - top:b - top, l - left:r - left]
    taken.append(rect)
    return box + np.array([left, top, left, top], dtype=np.float64)


def _check_pair(value, name, kind):
    if not (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, kind) and not isinstance(v, bool) for v in value)):
        raise TypeError(f"{name} must be a pair of numbers, got {value!r}")
    return tuple(value)


def _check_arguments(n_images, image_size, size_bands, faces_per_image):
    check_positive_int(n_images, "n_images")
    image_size = _check_pair(image_size, "image_size", numbers.Integral)
    if min(image_size) < 16:
        raise ValueError(f"image_size must be at least 16 x 16 pixels, got {image_size}")
    if not isinstance(size_bands, (tuple, list)) or not size_bands:
        raise TypeError(f"size_bands must be a non-empty sequence of (low, high) pairs, got {size_bands!r}")
    bands = []
    for band in size_bands:
        low, high = _check_pair(band, "each size band", numbers.Real)
        if not (2 <= low and low + 1 < high):
            raise ValueError(f"each size band (low, high) needs 2 <= low and low + 1 < high, got {band!r}")
        if high > min(image_size):
            raise ValueError(f"size band {band!r} reaches {high} pixels but image_size is {image_size}: "
                             "faces must fit in the image")
        bands.append((float(low), float(high)))
    lo, hi = _check_pair(faces_per_image, "faces_per_image", numbers.Integral)
    if not 0 <= lo <= hi:
        raise ValueError(f"faces_per_image must be (low, high) with 0 <= low <= high, got {faces_per_image!r}")
    return int(n_images), tuple(int(v) for v in image_size), tuple(bands), (int(lo), int(hi))


def synthetic_face_scenes(n_images, *, rng, image_size=(256, 256), size_bands=((10, 30), (30, 120), (120, 240)),
                          faces_per_image=(1, 4), data_dir=None):
    """Generate scenes of real faces pasted at chosen sizes onto face-free photos (see the module docstring).

    Parameters
    ----------
    n_images : int > 0
    rng : numpy.random.Generator or int
        The seed: the same seed gives the same scenes.
    image_size : (H, W)
    size_bands : sequence of (low, high)
        Face heights in pixels, ``low <= height < high``; each face's band is drawn
        uniformly, then its height uniformly in ``[low + 0.5, high - 0.5]`` (so that
        rounding the pasted size keeps it in the band). ``high <= min(H, W)``.
    faces_per_image : (low, high)
        Number of faces tried per scene, uniform in ``[low, high]`` (inclusive);
        those that find no free place are left out.
    data_dir : path, optional
        The folder holding ``orl_faces``, ``yalefaces`` and ``dlib_faces``
        (default ``$SCRATCHFACE_DATA``).

    Yields
    ------
    image : uint8 array, shape (H, W, 3)
    boxes : float64 array, shape (k, 4)
        ``(x1, y1, x2, y2)`` of the pasted faces, in placing order (largest first).
    bands : int64 array, shape (k,)
        Index into ``size_bands`` of each face's height.

    Raises
    ------
    TypeError, ValueError
        Bad arguments (checked when called, before the first scene).
    FileNotFoundError
        No ORL / Yale data (raised at the first scene).

    Examples
    --------
    >>> scenes = synthetic_face_scenes(2, rng=0, data_dir="../shared/data")   # doctest: +SKIP
    >>> image, boxes, bands = next(scenes)                                      # doctest: +SKIP
    """
    n_images, image_size, bands, faces_per_image = _check_arguments(n_images, image_size, size_bands,
                                                                    faces_per_image)
    rng = as_generator(rng)
    if data_dir is not None:
        data_dir = pathlib.Path(data_dir)
    return _scenes(n_images, rng, image_size, bands, faces_per_image, data_dir)


def _scenes(n_images, rng, image_size, bands, faces_per_image, data_dir):
    library = _face_library(data_dir)
    photos = _backgrounds(data_dir)
    for _ in range(n_images):
        scene = _background(photos[rng.integers(len(photos))], image_size, rng)
        k = int(rng.integers(faces_per_image[0], faces_per_image[1] + 1))
        chosen = rng.integers(len(bands), size=k)
        heights = np.array([rng.uniform(bands[b][0] + 0.5, bands[b][1] - 0.5) for b in chosen])
        taken, boxes, face_bands = [], [], []
        for i in np.argsort(-heights, kind="stable"):
            for _ in range(100):                    # skip the few Yale photos where MTCNN finds no face
                source = library.get(int(rng.integers(len(library))))
                if source is not None:
                    break
            else:
                raise RuntimeError("no usable face found in 100 draws: are the ORL / Yale files readable?")
            box = _place_face(scene, source, heights[i], taken, rng)
            if box is None:
                continue
            band = int(band_of(face_heights(box), bands)[0])
            if band < 0:                            # cannot happen with the margins above; never mislabel
                continue
            boxes.append(box)
            face_bands.append(band)
        yield (scene, np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
               np.asarray(face_bands, dtype=np.int64))
