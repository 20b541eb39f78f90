"""A contact sheet of face clusters: one row of face thumbnails per cluster, written as a PNG.

What ``scratchface cluster DIR --contact-sheet sheet.png`` draws, so that a user
sees at a glance whether each row is one person. The thumbnails are laid out
on a plain NumPy canvas (:func:`contact_sheet`, testable pixel by pixel);
:func:`save_contact_sheet` adds each row's label with matplotlib and writes the
file atomically (a temporary file in the same folder, then ``os.replace``), so
an interrupted run never leaves half a PNG under the final name.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

from ..image import as_rgb

__all__ = ["face_thumbnail", "contact_sheet", "save_contact_sheet"]


def face_thumbnail(image, box, size=64, *, value_range="auto"):
    """The face inside ``box`` of ``image``, cropped and resized to ``size x size`` RGB in [0, 1].

    Parameters
    ----------
    image : array, (H, W), (H, W, 3) or (H, W, 4), uint8 or float
    box : sequence of 4 floats
        ``(x1, y1, x2, y2)`` in pixels; clipped to the image.
    size : int
        Side of the thumbnail, pixels.
    value_range : {'auto', '0..1', '0..255'}
        Of a float image (see :func:`scratchface.image.as_rgb`).

    Returns
    -------
    thumb : float32 array, shape (size, size, 3)
    """
    from skimage.transform import resize  # heavy: scikit-image's resize only when a sheet is drawn

    rgb = as_rgb(image, value_range=value_range) / 255.0
    box = np.asarray(box, dtype=np.float64)
    if box.shape != (4,) or not np.all(np.isfinite(box)):
        raise ValueError(f"box must be four finite numbers (x1, y1, x2, y2), got {box.tolist()}")
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    height, width = rgb.shape[:2]
    x1, y1 = int(np.clip(np.floor(box[0]), 0, width - 1)), int(np.clip(np.floor(box[1]), 0, height - 1))
    x2, y2 = int(np.clip(np.ceil(box[2]), x1 + 1, width)), int(np.clip(np.ceil(box[3]), y1 + 1, height))
    crop = rgb[y1:y2, x1:x2]
    return resize(crop, (size, size, 3), order=1, anti_aliasing=True, mode="edge").astype(np.float32)


def contact_sheet(rows, *, size=64, max_per_row=12, gap=4):
    """Lay out rows of thumbnails on one canvas.

    Parameters
    ----------
    rows : list of lists of float arrays, each (size, size, 3) in [0, 1]
        One list per cluster. Rows longer than ``max_per_row`` show their first
        ``max_per_row`` thumbnails (the caller says how many were left out).
    size, max_per_row, gap : int
        Thumbnail side, thumbnails per row at most, white pixels between them.

    Returns
    -------
    canvas : float32 array, shape (R * (size + gap) + gap, C * (size + gap) + gap, 3)
        White background; thumbnail ``j`` of row ``r`` has its top-left corner at
        ``(gap + r * (size + gap), gap + j * (size + gap))``. ``C`` is the longest
        row shown.
    """
    if not rows:
        raise ValueError("rows must hold at least one row of thumbnails")
    columns = max(1, min(max_per_row, max(len(r) for r in rows)))
    step = size + gap
    canvas = np.ones((len(rows) * step + gap, columns * step + gap, 3), dtype=np.float32)
    for r, row in enumerate(rows):
        for j, thumb in enumerate(row[:max_per_row]):
            thumb = np.asarray(thumb, dtype=np.float32)
            if thumb.shape != (size, size, 3):
                raise ValueError(f"rows[{r}][{j}] must have shape ({size}, {size}, 3), got {thumb.shape}")
            top, left = gap + r * step, gap + j * step
            canvas[top:top + size, left:left + size] = thumb
    return canvas


def save_contact_sheet(path, rows, labels, *, size=64, max_per_row=12, title=None):
    """Draw :func:`contact_sheet` with one label per row and write it to ``path`` (PNG), atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The PNG to write; its folder must exist.
    rows : list of lists of thumbnails
    labels : list of str
        One per row, printed left of it (e.g. ``"person 1 (12)"``).
    """
    from matplotlib.figure import Figure  # heavy, optional: only when a sheet is drawn (no pyplot, no display)

    if len(labels) != len(rows):
        raise ValueError(f"labels must have one entry per row: {len(labels)} labels for {len(rows)} rows")
    canvas = contact_sheet(rows, size=size, max_per_row=max_per_row)
    height, width = canvas.shape[:2]
    dpi, margin = 100, 140  # room left of the canvas for the labels, pixels
    top = 30 if title else 0  # room above the canvas for the title, pixels
    fig = Figure(figsize=((width + margin) / dpi, (height + top) / dpi), dpi=dpi)
    ax = fig.add_axes((margin / (width + margin), 0, width / (width + margin), height / (height + top)))
    ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()
    step = size + 4
    for r, label in enumerate(labels):
        ax.text(-8, 4 + r * step + size / 2, label, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 8 / (height + top), va="top")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    handle, tmp = tempfile.mkstemp(prefix=".contact_sheet_", suffix=".png", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            fig.savefig(stream, format="png", dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
