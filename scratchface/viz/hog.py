"""Pictures of HOG and of detections: gradient magnitude / orientation, HOG glyphs, boxes.

Every function draws into a matplotlib ``Axes`` (a new figure when ``ax`` is
None) and returns it; matplotlib is imported lazily, inside the functions.

Example (in a notebook)::

    from skimage import data
    from scratchface.viz.hog import show_gradients, show_hog, show_detections
    show_gradients(data.camera())
    show_hog(data.camera())
    boxes, scores = detect_faces_hog(image)
    show_detections(image, boxes, scores, ground_truth=gt_boxes)
"""
from __future__ import annotations

import numpy as np

from ..detection.hog import hog, image_gradients, magnitude_orientation

__all__ = ["save_detections", "show_detections", "show_gradients", "show_hog"]


def _axes(ax, ncols=1, figsize=None):
    import matplotlib.pyplot as plt  # lazy

    if ax is not None:
        return ax
    _, axes = plt.subplots(1, ncols, figsize=figsize or (4 * ncols, 4))
    return axes


def show_gradients(image, ax=None):
    """Three panels: the gray image, gradient magnitude, unsigned orientation (0..180 degrees, cyclic map).

    Returns the array of three ``Axes``.
    """
    from ..image import as_gray

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
    from ..image import as_gray

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


def show_detections(image, boxes, scores=None, ax=None, *, ground_truth=None, color="red",
                    truth_color="lime", title=None):
    """The image with detected boxes (and their scores), and ground-truth boxes if given."""
    from matplotlib.patches import Rectangle  # lazy

    from ..image import as_rgb

    rgb = as_rgb(image) / 255.0
    ax = _axes(ax, figsize=(8, 8 * rgb.shape[0] / rgb.shape[1]))
    ax.imshow(rgb)
    for box in np.asarray(ground_truth if ground_truth is not None else np.zeros((0, 4))).reshape(-1, 4):
        ax.add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, lw=2,
                               ec=truth_color, ls="--"))
    boxes = np.asarray(boxes).reshape(-1, 4)
    for k, box in enumerate(boxes):
        ax.add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, lw=2, ec=color))
        if scores is not None:
            ax.text(box[0], box[1] - 2, f"{scores[k]:.2f}", color="yellow", fontsize=8,
                    bbox=dict(facecolor="black", alpha=0.5, pad=1, lw=0))
    if title:
        ax.set_title(title)
    ax.set_axis_off()
    return ax


def save_detections(path, panels, *, ncols=3, dpi=100):
    """Save a grid of detection pictures: ``panels`` is a list of dicts of :func:`show_detections` arguments."""
    from matplotlib.figure import Figure  # no pyplot: works headless and leaves the backend alone

    nrows = int(np.ceil(len(panels) / ncols))
    fig = Figure(figsize=(6 * ncols, 4.5 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, panel in zip(axes.ravel(), panels):
        show_detections(ax=ax, **panel)
    for ax in axes.ravel()[len(panels):]:
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return path
