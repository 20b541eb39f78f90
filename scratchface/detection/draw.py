"""Drawing detections (boxes, probabilities, five landmarks) with matplotlib, for notebooks and the CLI."""
from __future__ import annotations

import numpy as np

from ..image import as_rgb

__all__ = ["draw_detections"]

#: Colours of the five landmarks: left eye, right eye, nose, left and right mouth corner.
LANDMARK_COLORS = ("tab:blue", "tab:green", "tab:red", "tab:purple", "tab:orange")


def draw_detections(image, boxes, probs=None, landmarks=None, *, ax=None, color="yellow",
                    linewidth=2.0, show_probs=True, title=None):
    """Show an image with detection boxes, their probabilities and landmarks.

    Parameters
    ----------
    image : array or path
        Anything :func:`scratchface.image.as_rgb` accepts.
    boxes : array, shape (n, 4)
        ``(x1, y1, x2, y2)``; a :class:`scratchface.detection.mtcnn.Detections`
        may be passed here instead of the three arrays.
    probs : array, shape (n,), optional
    landmarks : array, shape (n, 5, 2), optional
    ax : matplotlib Axes, optional
        Drawn into (a new figure is made otherwise).
    color : str
        Box colour.
    linewidth : float
    show_probs : bool
        Write each probability above its box.
    title : str, optional

    Returns
    -------
    ax : matplotlib Axes
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if hasattr(boxes, "boxes") and hasattr(boxes, "landmarks"):  # a Detections tuple
        boxes, probs, landmarks = boxes.boxes, boxes.probs, boxes.landmarks
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if probs is not None:
        probs = np.asarray(probs, dtype=np.float64).reshape(-1)
        if len(probs) != len(boxes):
            raise ValueError(f"probs must have one value per box ({len(boxes)}), got {len(probs)}")
    if landmarks is not None:
        landmarks = np.asarray(landmarks, dtype=np.float64)
        if landmarks.shape != (len(boxes), 5, 2):
            raise ValueError(f"landmarks must have shape ({len(boxes)}, 5, 2), got {landmarks.shape}")
    rgb = as_rgb(image)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 8 * rgb.shape[0] / max(rgb.shape[1], 1)))
    ax.imshow(np.clip(rgb, 0, 255).astype(np.uint8))
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, linewidth=linewidth))
        if show_probs and probs is not None:
            ax.text(x1, y1 - 2, f"{probs[k]:.3f}", color="black", fontsize=8,
                    bbox={"facecolor": color, "alpha": 0.7, "pad": 1, "edgecolor": "none"})
        if landmarks is not None:
            for point, point_color in zip(landmarks[k], LANDMARK_COLORS):
                ax.plot(point[0], point[1], "o", markersize=3, color=point_color)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax
