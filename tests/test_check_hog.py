"""Assignment 1 checker (HOG steps): passes the solution, flags planted student bugs.

Each mutant is a full replacement of one student function with a realistic mistake, run in the
solution's namespace; the checker must flag every one (the issue asks for at least 90%).
"""
import pathlib

import numpy as np
import pytest

from check_mutation_helpers import assert_planted_bug_flagged, assert_templates_pass
from scratchface.check import check
from scratchface.check.assignments import solution_namespace, with_replaced
from scratchface.check.hog import _histograms_by_votes

SOLUTION = pathlib.Path(__file__).resolve().parents[1] / "notebooks/assignments/solutions/01_hog.py"

GRADIENTS = '''
def image_gradients(channel):
    if not np.issubdtype(channel.dtype, np.floating):
        channel = channel.astype(np.float64)
    g_row = np.zeros_like(channel)
    g_col = np.zeros_like(channel)
    g_row[1:-1, :] = channel[2:, :] - channel[:-2, :]
    g_col[:, 1:-1] = channel[:, 2:] - channel[:, :-2]
    return g_row, g_col
'''
ORIENTATION = '''
def magnitude_orientation(g_row, g_col):
    magnitude = np.hypot(g_row, g_col)
    orientation = np.rad2deg(np.arctan2(g_row, g_col)) % 180
    orientation = np.where(orientation >= 180.0, 0.0, orientation)
    return magnitude, orientation
'''
HISTOGRAMS = '''
def cell_histograms(magnitude, orientation, *, orientations=9, pixels_per_cell=(8, 8), binning="hard"):
    rows, cols = pixels_per_cell
    n_rows, n_cols = magnitude.shape[0] // rows, magnitude.shape[1] // cols
    width = 180.0 / orientations
    hist = np.zeros((n_rows, n_cols, orientations))
    for r in range(n_rows):
        for c in range(n_cols):
            m = magnitude[r * rows:(r + 1) * rows, c * cols:(c + 1) * cols].ravel()
            theta = orientation[r * rows:(r + 1) * rows, c * cols:(c + 1) * cols].ravel()
            if binning == "hard":
                np.add.at(hist[r, c], np.floor(theta / width).astype(int), m)
            else:
                position = theta / width
                lower = np.floor(position)
                upper_weight = position - lower
                lower = lower.astype(int) % orientations
                np.add.at(hist[r, c], lower, (1 - upper_weight) * m)
                np.add.at(hist[r, c], (lower + 1) % orientations, upper_weight * m)
    return hist / (rows * cols)
'''
NORMALIZE = '''
def normalize_block(block, method="L2-Hys", eps=1e-5):
    if method == "L1":
        return block / (np.sum(np.abs(block)) + eps)
    if method == "L1-sqrt":
        return np.sqrt(block / (np.sum(np.abs(block)) + eps))
    out = block / np.sqrt(np.sum(block ** 2) + eps ** 2)
    if method == "L2-Hys":
        out = np.minimum(out, 0.2)
        out = out / np.sqrt(np.sum(out ** 2) + eps ** 2)
    return out
'''


FLOAT_FIRST = "    if not np.issubdtype(channel.dtype, np.floating):\n        channel = channel.astype(np.float64)\n"
FOLD_180 = "    orientation = np.where(orientation >= 180.0, 0.0, orientation)\n"


def edit(template, *pairs):
    for old, new in pairs:
        assert old in template, old
        template = template.replace(old, new)
    return template


# name -> (function checked, replacement source, words expected in the diagnosis or None)
MUTANTS = {
    "gradients: uint8 differences wrap around": ("image_gradients", edit(
        GRADIENTS, (FLOAT_FIRST, "")), "wrapped around"),
    "orientation: % 180 left at exactly 180.0": ("magnitude_orientation", edit(
        ORIENTATION, (FOLD_180, "")), "exactly 180.0"),
    "gradients swapped": ("image_gradients", edit(GRADIENTS, ("return g_row, g_col", "return g_col, g_row")),
                          "swapped"),
    "np.gradient": ("image_gradients", "def image_gradients(channel):\n    return tuple(np.gradient(channel))\n",
                    "np.gradient"),
    "gradient halved": ("image_gradients", edit(GRADIENTS, ("return g_row, g_col", "return g_row / 2, g_col / 2")),
                        "divided by 2"),
    "forward difference": ("image_gradients", edit(GRADIENTS, ("g_row[1:-1, :] = channel[2:, :] - channel[:-2, :]",
                                                               "g_row[:-1, :] = channel[1:, :] - channel[:-1, :]")),
                           "forward difference"),
    "np.roll wraps around": ("image_gradients", edit(GRADIENTS, (
        "g_col[:, 1:-1] = channel[:, 2:] - channel[:, :-2]",
        "g_col = np.roll(channel, -1, axis=1) - np.roll(channel, 1, axis=1)")), "wraps around"),
    "gradient sign flipped": ("image_gradients", edit(GRADIENTS, ("channel[2:, :] - channel[:-2, :]",
                                                                  "channel[:-2, :] - channel[2:, :]"),
                                                      ("channel[:, 2:] - channel[:, :-2]",
                                                       "channel[:, :-2] - channel[:, 2:]")), "sign"),
    "gradient float64": ("image_gradients", edit(GRADIENTS, ("np.zeros_like(channel)", "np.zeros(channel.shape)")),
                         "dtype"),
    "orientation in radians": ("magnitude_orientation", edit(ORIENTATION, ("np.rad2deg(np.arctan2(g_row, g_col)) % 180",
                                                                           "np.arctan2(g_row, g_col) % np.pi")),
                               "radians"),
    "signed orientation": ("magnitude_orientation", edit(ORIENTATION, (" % 180", ""), (FOLD_180, "")), "signed"),
    "arctan of the ratio": ("magnitude_orientation", edit(ORIENTATION, ("np.arctan2(g_row, g_col)",
                                                                        "np.arctan(g_row / g_col)")), "arctan2"),
    "arctan2 arguments swapped": ("magnitude_orientation", edit(ORIENTATION, ("arctan2(g_row, g_col)",
                                                                              "arctan2(g_col, g_row)")), "(y, x)"),
    "magnitude without root": ("magnitude_orientation", edit(ORIENTATION, ("np.hypot(g_row, g_col)",
                                                                           "g_row ** 2 + g_col ** 2")), "square root"),
    "180 not wrapped": ("magnitude_orientation", edit(ORIENTATION, (FOLD_180, ""), (
        "orientation = np.rad2deg(np.arctan2(g_row, g_col)) % 180",
        "orientation = np.rad2deg(np.arctan2(g_row, g_col))\n"
        "    orientation = np.where(orientation < 0, orientation + 180, orientation)")), "180 must wrap"),
    "hard bins rounded": ("cell_histograms", edit(HISTOGRAMS, ("np.floor(theta / width).astype(int)",
                                                              "np.round(theta / width).astype(int) % orientations")),
                          "half a bin"),
    "hard bins over 360": ("cell_histograms", edit(HISTOGRAMS, ("np.floor(theta / width).astype(int)",
                                                               "np.floor(theta / (2 * width)).astype(int)")),
                           "360"),
    "votes of 1": ("cell_histograms", edit(HISTOGRAMS, ("astype(int), m)", "astype(int), 1.0)")), "magnitude"),
    "sums, not means": ("cell_histograms", edit(HISTOGRAMS, ("return hist / (rows * cols)", "return hist")),
                        "sums, not means"),
    "bilinear without wrap": ("cell_histograms", edit(HISTOGRAMS, (
        "np.add.at(hist[r, c], (lower + 1) % orientations, upper_weight * m)",
        "np.add.at(hist[r, c], np.minimum(lower + 1, orientations - 1), upper_weight * m)")), "wrap to 0"),
    "bilinear weights swapped": ("cell_histograms", edit(HISTOGRAMS, ("(1 - upper_weight) * m)", "upper_weight * m)"),
                                                         ("upper_weight * m)\n    return",
                                                          "(1 - upper_weight) * m)\n    return")), "swapped"),
    "bilinear centres at the middle of the bins": ("cell_histograms", edit(HISTOGRAMS, (
        "position = theta / width", "position = theta / width - 0.5")), "half a bin"),
    "cells transposed": ("cell_histograms", edit(HISTOGRAMS, ("rows, cols = pixels_per_cell",
                                                             "cols, rows = pixels_per_cell")), "transposed"),
    "partial cells counted": ("cell_histograms", edit(HISTOGRAMS, (
        "n_rows, n_cols = magnitude.shape[0] // rows, magnitude.shape[1] // cols",
        "n_rows, n_cols = -(-magnitude.shape[0] // rows), -(-magnitude.shape[1] // cols)")), "partial cells"),
    "L2-Hys without the clip": ("normalize_block", edit(NORMALIZE, ("out = np.minimum(out, 0.2)\n", "")), "clip"),
    "L2-Hys without renormalising": ("normalize_block", edit(NORMALIZE, (
        "        out = out / np.sqrt(np.sum(out ** 2) + eps ** 2)\n", "")), "second normalisation"),
    "eps not squared": ("normalize_block", edit(NORMALIZE, ("np.sqrt(np.sum(block ** 2) + eps ** 2)",
                                                           "np.sqrt(np.sum(block ** 2) + eps)")), "squared"),
    "eps outside the root": ("normalize_block", edit(NORMALIZE, ("np.sqrt(np.sum(block ** 2) + eps ** 2)",
                                                                "(np.sqrt(np.sum(block ** 2)) + eps)")), "inside the root"),
    "each cell normalised alone": ("normalize_block", edit(NORMALIZE, (
        "np.sqrt(np.sum(block ** 2) + eps ** 2)", "np.sqrt(np.sum(block ** 2, axis=-1, keepdims=True) + eps ** 2)")),
        "whole block"),
    "L1-sqrt without the root": ("normalize_block", edit(NORMALIZE, (
        "return np.sqrt(block / (np.sum(np.abs(block)) + eps))", "return block / (np.sum(np.abs(block)) + eps)")),
        "square root"),
    "L1 without eps": ("normalize_block", edit(NORMALIZE, ("return block / (np.sum(np.abs(block)) + eps)",
                                                          "return block / np.sum(np.abs(block))")), "eps"),
}


@pytest.fixture(scope="module")
def solution():
    return solution_namespace(SOLUTION)


def test_solution_passes(solution):
    for name in ("image_gradients", "magnitude_orientation", "cell_histograms", "normalize_block"):
        result = check(solution[name], namespace=solution, verbose=False)
        assert result.passed, str(result)


def test_templates_reproduce_the_solution(solution):
    assert_templates_pass(solution, (("image_gradients", GRADIENTS), ("magnitude_orientation", ORIENTATION),
                         ("cell_histograms", HISTOGRAMS), ("normalize_block", NORMALIZE)))


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_planted_bug_is_flagged(solution, mutant):
    assert_planted_bug_flagged(solution, MUTANTS[mutant])


def test_at_least_ten_mutants_per_assignment():
    assert len(MUTANTS) >= 10


def test_variant_histogram_by_hand():
    """The histogram builder the diagnoses use, on the worked example: 10 at 95 degrees."""
    magnitude, orientation = np.zeros((2, 2)), np.zeros((2, 2))
    magnitude[0, 1], orientation[0, 1] = 10.0, 95.0
    hard = _histograms_by_votes(magnitude, orientation, 9, (2, 2), lambda o: [(np.floor(o / 20), 1.0)])
    np.testing.assert_allclose(hard[0, 0] * 4, [0, 0, 0, 0, 10, 0, 0, 0, 0])


def test_float32_image_keeps_its_dtype_in_the_check(solution):
    """A student returning float64 for a float32 image is told so (not only a value mismatch)."""
    namespace = with_replaced(solution, MUTANTS["gradient float64"][1])
    text = str(check(namespace["image_gradients"], namespace=namespace, verbose=False))
    assert "has dtype float64 for float32 input" in text


@pytest.mark.parametrize("name", ["01_hog.py", "02_conv.py", "03_pooling.py", "04_prelu_maxout.py"])
def test_student_version_is_generated_from_the_solution(name):
    """The student notebooks are never edited by hand: regenerate them with
    ``python -m scratchface.check.assignments notebooks/assignments/solutions notebooks/assignments``."""
    from scratchface.check.assignments import strip_solutions
    solution = SOLUTION.parent / name
    student = SOLUTION.parent.parent / name
    assert student.read_text() == strip_solutions(solution.read_text(), source=str(solution))
    assert "### BEGIN SOLUTION" not in student.read_text() and "raise NotImplementedError" in student.read_text()
