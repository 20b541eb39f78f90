"""Synthetic submission: does not parse."""
import numpy as np


def iou(boxes_a, boxes_b, *, offset=0):
    return boxes_a[:, None, 0] -


def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    return []
