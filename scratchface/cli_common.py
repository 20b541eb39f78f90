"""What every face command of the ``scratchface`` command line shares: exit codes, bad input, argument types."""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from .image import as_rgb, read_image

__all__ = ["OK", "FAILURE", "BAD_INPUT", "BadInput", "read_photo", "positive_float", "positive_int", "probability",
           "min_face_size_arg", "run_command", "rounded"]

OK, FAILURE, BAD_INPUT = 0, 1, 2


class BadInput(Exception):
    """An input the command cannot use (exit code 2)."""


def _error(command, message):
    print(f"scratchface {command}: error: {message}", file=sys.stderr)


def read_photo(path):
    """An image file as an RGB float array, or :class:`BadInput` with a clear message."""
    try:
        return as_rgb(read_image(path))
    except FileNotFoundError:
        if os.path.isdir(path):
            raise BadInput(f"{path} is a folder, not an image file") from None
        raise BadInput(f"image file not found: {path}") from None
    except (ValueError, TypeError, OSError) as exc:
        raise BadInput(str(exc)) from None


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def probability(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a probability between 0 and 1, got {text!r}")
    return value


def min_face_size_arg(text):
    value = positive_float(text)
    if value < 12:
        raise argparse.ArgumentTypeError(f"must be at least 12 pixels (MTCNN's smallest window), got {text!r}")
    return value


def run_command(command, body, args):
    """Call ``body(args)``; turn :class:`BadInput` into exit code 2 and a message."""
    try:
        return body(args)
    except BadInput as exc:
        _error(command, exc)
        return BAD_INPUT


def rounded(values, digits=2):
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()
