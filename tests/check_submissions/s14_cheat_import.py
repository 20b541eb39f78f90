"""Synthetic submission: both functions call scratchface's own iou / nms."""
import numpy as np

from scratchface.detection.nms import iou as library_iou
from scratchface.detection.nms import nms as library_nms


def iou(boxes_a, boxes_b, *, offset=0):
    return library_iou(boxes_a, boxes_b, offset=offset)


def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    return library_nms(boxes, scores, iou_threshold, mode, offset=offset)
