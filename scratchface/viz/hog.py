"""Pictures of HOG: gradient magnitude / orientation, HOG glyphs (detections: :mod:`scratchface.viz.detections`).

Every function draws into a matplotlib ``Axes`` (a new figure when ``ax`` is
None) and returns it; matplotlib is imported lazily, inside the functions.

Example (in a notebook)::

    from skimage import data
    from scratchface.viz.hog import show_gradients, show_hog
    show_gradients(data.camera())
    show_hog(data.camera())
"""
from __future__ import annotations

import numpy as np

from ..detection.hog import hog, image_gradients, magnitude_orientation
from ..image import as_gray

__all__ = ["show_gradients", "show_hog"]


def _axes(ax, ncols=1, figsize=None):
    import matplotlib.pyplot as plt  # noqa: PLC0415  (matplotlib: optional, only for pictures)

    if ax is not None:
        return ax
    _, axes = plt.subplots(1, ncols, figsize=figsize or (4 * ncols, 4))
    return axes


def show_gradients(image, ax=None):
    """Three panels: the gray image, gradient magnitude, unsigned orientation (0..180 degrees, cyclic map).

    Returns the array of three ``Axes``.
    """
    gray = as_gray(image)
    magnitude, orientation = magnitude_orientation(*image_gradients(gray))
    axes = _axes(ax, 3, (12, 4))
    axes[0].imshow(gray, cmap="gray")
    axes[0].set_title("image")
    axes[1].imshow(magnitude, cmap="magma")
    axes[1].set_title("gradient magnitude")
    shown = axes[2].imshow(np.where(magnitude > 0, orientation, np.nan), cmap="twilight", vmin=0, vmax=180)
    axes[2].set_title("orientation (degrees)")
    axes[2].figure.colorbar(shown, ax=axes[2], fraction=0.046)
    for a in axes:
        a.set_axis_off()
    return axes


def show_hog(image, ax=None, *, orientations=9, pixels_per_cell=(8, 8), alpha=0.8):
    """The HOG glyphs (one line per cell and bin, brightness = bin value) over the gray image."""
    gray = as_gray(image)
    _, glyphs = hog(gray, orientations=orientations, pixels_per_cell=pixels_per_cell, cells_per_block=(1, 1),
                    visualize=True)
    ax = _axes(ax)
    ax.imshow(gray, cmap="gray")
    # glyph strength as opacity (a colormap over every non-zero pixel paints the whole image)
    overlay = np.zeros(glyphs.shape + (4,))
    overlay[..., 0], overlay[..., 1] = 1.0, 0.85
    scale = float(np.percentile(glyphs[glyphs > 0], 99)) if (glyphs > 0).any() else 1.0
    overlay[..., 3] = alpha * np.clip(glyphs / max(scale, 1e-12), 0.0, 1.0)
    ax.imshow(overlay)
    ax.set_title(f"HOG, {pixels_per_cell[0]}x{pixels_per_cell[1]} cells, {orientations} bins")
    ax.set_axis_off()
    return ax
