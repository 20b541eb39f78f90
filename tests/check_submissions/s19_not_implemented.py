"""Synthetic submission: the student version, untouched."""
import numpy as np


def iou(boxes_a, boxes_b, *, offset=0):
    # TODO: your code here
    raise NotImplementedError


def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    # TODO: your code here
    raise NotImplementedError
