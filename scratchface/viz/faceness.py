"""Pictures of Faceness: the five partness maps (hair, eyes, nose, mouth, beard) over a photo.

The maps are :func:`scratchface.detection.faceness.part_response_pyramid`'s; matplotlib
is imported inside the function.
"""
from __future__ import annotations

from .._validation import check_positive_float
from ..detection.faceness import part_response_pyramid
from ..data.atomic import savefig_atomic
from ..image import as_rgb
from ..models.faceness_nets import PART_NAMES, STRIDE, load_part_network

__all__ = ["plot_part_responses"]


def plot_part_responses(image, *, model=None, face_size=None, path=None, figsize=(13, 6.5)):
    """Draw the five partness maps of a photo over it (one panel per part, plus the photo).

    Parameters
    ----------
    image : path or array
    model : PartNetwork, optional
    face_size : float, optional
        Typical face side in the photo (pixels): the photo is scaled so that it
        becomes the network's training face size (default: no scaling).
    path : str, optional
        Save the figure there (PNG).

    Returns
    -------
    fig : matplotlib Figure
    """
    import matplotlib  # noqa: PLC0415  (matplotlib: optional, only for pictures)

    if path is not None and matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    model = load_part_network() if model is None else model
    rgb = as_rgb(image) / 255.0
    scale = 1.0 if face_size is None else model.face_size / check_positive_float(face_size, "face_size")
    level = part_response_pyramid(rgb, model, [scale])[0]
    fig, axes = plt.subplots(2, 3, figsize=figsize)
    axes = axes.ravel()
    axes[0].imshow(rgb)
    axes[0].set_title("photo")
    height, width = rgb.shape[:2]
    rows, cols = level.maps.shape[1:]
    extent = (0, cols * STRIDE / level.scale_x, rows * STRIDE / level.scale_y, 0)
    for ax, name, part_map in zip(axes[1:], PART_NAMES, level.maps):
        ax.imshow(rgb.mean(axis=2), cmap="gray", alpha=0.6)
        ax.imshow(part_map, cmap="jet", alpha=0.55, extent=extent, vmin=0, vmax=1)
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        ax.set_title(f"{name} (max {part_map.max():.2f})")
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    if path is not None:
        savefig_atomic(fig, path, dpi=90)
    return fig
