"""Reading images and bringing them to one form: the only door images come in by.

Every detector and embedding accepts what users actually have: a file path, a
PIL image or an array; gray ``(H, W)``, ``(H, W, 1)``, RGB ``(H, W, 3)`` or
RGBA ``(H, W, 4)``; ``uint8``, ``uint16``, ``bool`` or float. Arrays from OpenCV
are BGR: say ``channel_order='bgr'``.

Conventions after conversion
----------------------------
- ``as_rgb``  -> float ``(H, W, 3)`` on the 0..255 scale (MTCNN, embeddings).
- ``as_gray`` -> float ``(H, W)`` on the 0..1 scale (HOG), luminance
  ``0.2125 R + 0.7154 G + 0.0721 B`` as in ``skimage.color.rgb2gray``.

Integer images are scaled by their dtype's range (uint8 by 255, uint16 by
65535); float images are taken to be on 0..1 when their maximum is at most 1
(``value_range='auto'``), else on 0..255; pass ``value_range`` to say so.

Photos as phones store them
---------------------------
A phone saves a portrait shot as landscape pixels plus an EXIF ``Orientation``
tag (1-8: the rotation and mirroring that make it upright). Every load (a path,
``bytes``, a file object, a PIL image) applies it, as every photo viewer does
(``PIL.ImageOps.exif_transpose``), so boxes are in the upright photo's
coordinates. A file whose header declares more than :data:`MAX_PIXELS` pixels
(a "decompression bomb": a few kilobytes that would unpack to gigabytes) is
refused from its header, before any pixel is decoded.
"""
from __future__ import annotations

import io
import os
import struct
import warnings

import numpy as np

from ._validation import check_choice
from .backend import to_host

__all__ = ["MAX_PIXELS", "read_image", "as_array", "as_rgb", "as_gray"]

#: The largest image accepted, in pixels (width x height): PIL's own refusal limit (twice
#: ``PIL.Image.MAX_IMAGE_PIXELS``), 179 megapixels, above any phone or camera photo (as float32 RGB:
#: 2.1 GB). Larger headers are refused before decoding.
MAX_PIXELS = 178_956_970


def _pil_to_array(img, name) -> np.ndarray:
    """A PIL image, upright (EXIF orientation applied), as a ``uint8`` / ``uint16`` array."""
    from PIL import ImageOps  # lazy: PIL only when images come in as files or PIL objects

    width, height = img.size
    if width * height > MAX_PIXELS:
        raise ValueError(f"{name} declares {width} x {height} pixels, more than scratchface.image.MAX_PIXELS "
                         f"({MAX_PIXELS:,}): refused as a possible decompression bomb")
    if width == 0 or height == 0:
        raise ValueError(f"{name} is empty: {width} x {height} pixels")
    img.load()
    img = ImageOps.exif_transpose(img) or img  # phones store portraits sideways + an Orientation tag
    if img.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
        img = img.convert("RGBA" if "A" in img.mode or "transparency" in img.info else "RGB")
    elif img.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.asarray(img).astype(np.uint16 if img.mode.startswith("I;16") else np.int64)
    return np.asarray(img).copy()


def read_image(source) -> np.ndarray:
    """Read an image (a path, ``bytes`` or a binary file object) into an upright array.

    ``uint8`` or ``uint16``; gray, RGB or RGBA; the EXIF orientation applied.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The data is not an image, is truncated or corrupt, has a zero-size dimension,
        or declares more than :data:`MAX_PIXELS` pixels.
    """
    from PIL import Image, UnidentifiedImageError  # lazy: PIL only when files are read

    if isinstance(source, (bytes, bytearray, memoryview)):
        name, source = f"image data ({len(source)} bytes)", io.BytesIO(bytes(source))
    elif hasattr(source, "read"):
        name = f"image file object {getattr(source, 'name', type(source).__name__)}"
    else:
        source = name = os.fspath(source)
        if not os.path.isfile(source):
            raise FileNotFoundError(f"image file not found: {source}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # above MAX_PIXELS: refused
            with Image.open(source) as img:
                return _pil_to_array(img, name)
    except Image.DecompressionBombError as exc:
        raise ValueError(f"{name} is too large: refused as a possible decompression bomb ({exc})") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError) as exc:
        raise ValueError(f"{name} is not a readable image (truncated, corrupt or not an image file): {exc}") from exc
    except (ValueError, TypeError, IndexError, KeyError, struct.error) as exc:
        if str(exc).startswith(name):
            raise
        raise ValueError(f"{name} is not a readable image (corrupt: {type(exc).__name__}: {exc})") from exc


def as_array(image, name: str = "image") -> np.ndarray:
    """A path, PIL image or array as an ndarray, with its rank and values checked."""
    if isinstance(image, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(image, "read"):
        image = read_image(image)
    elif type(image).__module__.startswith("PIL."):
        image = _pil_to_array(image, name)
    if not isinstance(image, np.ndarray):
        if hasattr(image, "__array__") or hasattr(image, "__cuda_array_interface__"):
            image = to_host(image)
        else:
            raise TypeError(f"{name} must be a file path, a PIL image or an array, got {type(image).__name__}")
    if image.dtype.kind not in "buif":
        raise TypeError(f"{name} must have a numeric dtype (uint8, uint16, float...), got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"{name} must be gray (H, W), RGB (H, W, 3) or RGBA (H, W, 4), "
                         f"got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {image.shape}")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return image


def _unit_scale(image, value_range):
    """Float image on 0..1."""
    if image.dtype == np.bool_:
        return image.astype(np.float64)
    if image.dtype.kind in "ui":
        if image.dtype.kind == "i" and image.min() < 0:
            raise ValueError("image has negative integer values; pass a float image instead")
        top = 255.0 if image.dtype.itemsize == 1 else (65535.0 if image.max() > 255 or image.dtype == np.uint16 else 255.0)
        return image / top
    if value_range == "auto":
        value_range = "0..1" if image.max(initial=0.0) <= 1.0 else "0..255"
    if value_range == "0..1":
        return image.astype(np.float64, copy=False)
    return image / 255.0


def _to_rgb_unit(image, channel_order, value_range):
    image = _unit_scale(image, value_range)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 4:
        alpha = image[:, :, 3:4]
        image = image[:, :, :3] * alpha + (1.0 - alpha)  # composite on white
    if channel_order == "bgr":
        image = image[:, :, ::-1]
    return image[:, :, :3]


def as_rgb(image, *, channel_order: str = "rgb", value_range: str = "auto",
           dtype=np.float32, name: str = "image") -> np.ndarray:
    """Any image as a contiguous float ``(H, W, 3)`` RGB array on the 0..255 scale."""
    check_choice(channel_order, "channel_order", ("rgb", "bgr"))
    check_choice(value_range, "value_range", ("auto", "0..1", "0..255"))
    image = as_array(image, name)
    return np.ascontiguousarray(_to_rgb_unit(image, channel_order, value_range) * 255.0, dtype=dtype)


def as_gray(image, *, channel_order: str = "rgb", value_range: str = "auto",
            dtype=np.float64, name: str = "image") -> np.ndarray:
    """Any image as a contiguous float ``(H, W)`` gray array on the 0..1 scale."""
    check_choice(channel_order, "channel_order", ("rgb", "bgr"))
    check_choice(value_range, "value_range", ("auto", "0..1", "0..255"))
    image = as_array(image, name)
    if image.ndim == 2:
        return np.ascontiguousarray(_unit_scale(image, value_range), dtype=dtype)
    rgb = _to_rgb_unit(image, channel_order, value_range)
    gray = rgb @ np.array([0.2125, 0.7154, 0.0721])
    return np.ascontiguousarray(gray, dtype=dtype)
