"""What every face detector returns: :class:`Detections` ``(boxes, scores, landmarks)``.

MTCNN (:func:`scratchface.detection.mtcnn.detect_faces`), the HOG detector
(:func:`scratchface.detection.hog_detector.detect_faces_hog`, one or two stages),
the scale-friendly detector, DDFD's heat-map peaks and Faceness re-ranking all
return one ``Detections`` per image, boxes by decreasing score (MTCNN: largest
box first by default). A detector without landmarks returns ``landmarks=None``.

A ``Detections`` is a named tuple: ``det.boxes``, ``det.scores``,
``det.landmarks``, or ``boxes, scores, landmarks = det``; the evaluation
functions of :mod:`scratchface.detection.evaluation` take it as it is.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

__all__ = ["Detections", "empty_detections"]


class Detections(NamedTuple):
    """Faces found in one image.

    boxes : (n, 4) float array
        ``(x1, y1, x2, y2)`` in the image's pixels.
    scores : (n,) float array
        The detector's confidence: a probability (MTCNN's O-Net, the
        scale-friendly ROI classifier, DDFD), an SVM margin (HOG) or a faceness
        score (Faceness); higher is more face-like.
    landmarks : (n, 5, 2) float array or None
        ``(x, y)`` of left eye, right eye, nose, left and right mouth corner
        (left / right as seen in the image); ``None`` for a detector that finds
        no landmarks.
    """
    boxes: np.ndarray
    scores: np.ndarray
    landmarks: Optional[np.ndarray] = None

    @property
    def probs(self) -> np.ndarray:
        """The old name of :attr:`scores` (MTCNN's ``Detections.probs`` before the detectors shared one type).

        Read-only; kept so that code written for ``detect_faces(...).probs`` still works.
        """
        return self.scores


def empty_detections(dtype=np.float64, *, landmarks=False) -> Detections:
    """No face: ``boxes`` (0, 4), ``scores`` (0,), ``landmarks`` (0, 5, 2) when ``landmarks`` else None."""
    return Detections(np.zeros((0, 4), dtype), np.zeros((0,), dtype),
                      np.zeros((0, 5, 2), dtype) if landmarks else None)
