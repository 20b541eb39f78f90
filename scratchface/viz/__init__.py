"""Pictures for lectures and notebooks (matplotlib is imported only when a picture is drawn).
"""
from __future__ import annotations

from .._lazy import lazy_exports

#: public name -> the module of this package that defines it
_EXPORTS = {
    "LANDMARK_COLORS": "detections", "draw_detections": "detections", "save_detections": "detections",
    "plot_part_responses": "faceness",
    "show_gradients": "hog", "show_hog": "hog",
}

__all__ = sorted([*_EXPORTS])
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
