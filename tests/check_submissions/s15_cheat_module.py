"""Synthetic submission: calls the library through the module (and an import inside the function)."""
import numpy as np

import scratchface.detection.nms


def iou(boxes_a, boxes_b, *, offset=0):
    return scratchface.detection.nms.iou(boxes_a, boxes_b, offset=offset)


def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    from scratchface.detection import nms as lib
    return lib.nms(boxes, scores, iou_threshold, mode, offset=offset)
