"""Pictures for lectures and notebooks (matplotlib is imported only when a picture is drawn).

Public names are importable from here, lazily (``contact_sheet`` eagerly: the function shares its module's name).
"""
from __future__ import annotations

from .._lazy import lazy_exports
from .contact_sheet import contact_sheet  # noqa: F401  (in __all__ below)

#: public name -> the module of this package that defines it
_EXPORTS = {
    "face_thumbnail": "contact_sheet", "save_contact_sheet": "contact_sheet",
    "LANDMARK_COLORS": "detections", "draw_detections": "detections", "save_detections": "detections",
    "plot_part_responses": "faceness",
    "show_gradients": "hog", "show_hog": "hog",
}

__all__ = sorted([*_EXPORTS, "contact_sheet"])
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
