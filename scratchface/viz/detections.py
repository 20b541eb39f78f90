"""Pictures of detections: boxes, their scores, five landmarks and ground-truth boxes, with matplotlib.

For notebooks, experiments and the CLI. :func:`draw_detections` draws into a
matplotlib ``Axes`` (a new figure when ``ax`` is None) and returns it;
:func:`save_detections` saves a grid of them. matplotlib is imported inside the
functions: the rest of the package does not need it.
"""
from __future__ import annotations

import pathlib

import numpy as np

from ..data.atomic import savefig_atomic
from ..image import as_rgb

__all__ = ["LANDMARK_COLORS", "draw_detections", "save_detections"]

#: Colours of the five landmarks: left eye, right eye, nose, left and right mouth corner.
LANDMARK_COLORS = ("tab:blue", "tab:green", "tab:red", "tab:purple", "tab:orange")


def draw_detections(image, boxes, scores=None, landmarks=None, *, ax=None, ground_truth=None, color="yellow",
                    truth_color="lime", linewidth=2.0, show_scores=True, title=None):
    """Show an image with detection boxes, their scores and landmarks, and ground-truth boxes.

    Parameters
    ----------
    image : array or path
        Anything :func:`scratchface.image.as_rgb` accepts.
    boxes : array, shape (n, 4), or Detections
        ``(x1, y1, x2, y2)``; a :class:`scratchface.detection.detections.Detections`
        may be passed here instead of the three arrays.
    scores : array, shape (n,), optional
    landmarks : array, shape (n, 5, 2), optional
    ax : matplotlib Axes, optional
        Drawn into (a new figure is made otherwise).
    ground_truth : array, shape (m, 4), optional
        Drawn dashed in ``truth_color``.
    color : str
        Box colour.
    linewidth : float
    show_scores : bool
        Write each score above its box.
    title : str, optional

    Returns
    -------
    ax : matplotlib Axes
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415  (matplotlib: optional, only for pictures)
    from matplotlib.patches import Rectangle  # noqa: PLC0415

    if hasattr(boxes, "boxes") and hasattr(boxes, "landmarks"):  # a Detections tuple
        boxes, scores, landmarks = boxes.boxes, boxes.scores, boxes.landmarks
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(scores) != len(boxes):
            raise ValueError(f"scores must have one value per box ({len(boxes)}), got {len(scores)}")
    if landmarks is not None:
        landmarks = np.asarray(landmarks, dtype=np.float64)
        if landmarks.shape != (len(boxes), 5, 2):
            raise ValueError(f"landmarks must have shape ({len(boxes)}, 5, 2), got {landmarks.shape}")
    rgb = as_rgb(image)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 8 * rgb.shape[0] / max(rgb.shape[1], 1)))
    ax.imshow(np.clip(rgb, 0, 255).astype(np.uint8))
    truth = np.zeros((0, 4)) if ground_truth is None else np.asarray(ground_truth, dtype=np.float64)
    for x1, y1, x2, y2 in truth.reshape(-1, 4):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=truth_color, linewidth=linewidth,
                               linestyle="--"))
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, linewidth=linewidth))
        if show_scores and scores is not None:
            ax.text(x1, y1 - 2, f"{scores[k]:.3f}", color="black", fontsize=8,
                    bbox={"facecolor": color, "alpha": 0.7, "pad": 1, "edgecolor": "none"})
        if landmarks is not None:
            for point, point_color in zip(landmarks[k], LANDMARK_COLORS):
                ax.plot(point[0], point[1], "o", markersize=3, color=point_color)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def save_detections(path, panels, *, ncols=3, dpi=100):
    """Save a grid of detection pictures: ``panels`` is a list of dicts of :func:`draw_detections` arguments."""
    from matplotlib.figure import Figure  # noqa: PLC0415  (no pyplot: works headless, leaves the backend alone)

    nrows = int(np.ceil(len(panels) / ncols))
    fig = Figure(figsize=(6 * ncols, 4.5 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, panel in zip(axes.ravel(), panels):
        draw_detections(ax=ax, **panel)
    for ax in axes.ravel()[len(panels):]:
        ax.set_axis_off()
    fig.tight_layout()
    return pathlib.Path(savefig_atomic(fig, path, dpi=dpi))  # a killed save leaves the previous picture whole
