"""Checkers for assignment 1: HOG gradients, orientation histograms and block normalisation.

The student's functions have the library's signatures (:mod:`scratchface.detection.hog`)::

    image_gradients(channel) -> (g_row, g_col)          # central differences, 0 on the border
    magnitude_orientation(g_row, g_col) -> (magnitude, orientation)   # degrees in [0, 180)
    cell_histograms(magnitude, orientation, *, orientations=9, pixels_per_cell=(8, 8),
                    binning='hard') -> (n_cells_row, n_cells_col, orientations), mean vote per pixel
    normalize_block(block, method='L2-Hys', eps=1e-5) -> block of the same shape

scikit-image's conventions (no division by 2 in the gradient, unsigned orientation, cell means,
``eps`` squared inside the L2 root), and Dalal & Triggs' bilinear orientation binning with bins
centred at ``k * 180 / n`` (180 wraps to 0). The expected values are the library's readable
functions; the diagnoses compare a wrong answer with the results of the usual mistakes.
"""
from __future__ import annotations

import numpy as np

from ._core import CheckResult, register
from ._layer_checks import (
    Outputs,
    check_dtype,
    describe,
    run_student,
    stops_at_stubs,
    unpack,
    variant_hint,
)
from ._library import (
    cell_histograms,
    image_gradients,
    magnitude_orientation,
    normalize_block,
)

__all__ = [
    "cell_histograms_checker",
    "image_gradients_checker",
    "magnitude_orientation_checker",
    "normalize_block_checker",
]

BLOCK_METHODS = ("L1", "L1-sqrt", "L2", "L2-Hys")


# ---------------------------------------------------------------- step 1: gradients
def _gradient_variants(image):
    g_row, g_col = image_gradients(image)
    np_row, np_col = np.gradient(image) if min(image.shape) > 1 else (g_row, g_col)
    fwd_row, fwd_col = np.zeros_like(image), np.zeros_like(image)
    fwd_row[:-1], fwd_col[:, :-1] = image[1:] - image[:-1], image[:, 1:] - image[:, :-1]
    roll_row = np.roll(image, -1, axis=0) - np.roll(image, 1, axis=0)
    roll_col = np.roll(image, -1, axis=1) - np.roll(image, 1, axis=1)
    return {
        "g_row": [("g_row and g_col are swapped: g_row is the difference along the rows (axis 0, "
                   "downwards), I[r+1, c] - I[r-1, c]", g_col),
                  ("np.gradient divides by 2 and uses one-sided differences on the border; HOG (as "
                   "scikit-image) takes I[r+1] - I[r-1] without the 1/2 and 0 on the border", np_row),
                  ("a forward difference I[r+1] - I[r]: use the central difference I[r+1] - I[r-1]", fwd_row),
                  ("np.roll wraps around: the first and last rows must be 0, not the difference with "
                   "the other side of the image", roll_row)],
        "g_col": [("g_row and g_col are swapped: g_col is the difference along the columns (axis 1), "
                   "I[r, c+1] - I[r, c-1]", g_row),
                  ("np.gradient divides by 2 and uses one-sided differences on the border; HOG (as "
                   "scikit-image) takes I[c+1] - I[c-1] without the 1/2 and 0 on the border", np_col),
                  ("a forward difference I[c+1] - I[c]: use the central difference I[c+1] - I[c-1]", fwd_col),
                  ("np.roll wraps around: the first and last columns must be 0", roll_col)],
    }


_GRADIENT_FACTORS = {0.5: "divided by 2: the HOG gradient is I[+1] - I[-1] without the 1/2 (the factor "
                          "cancels in the block normalisation anyway)",
                     -1.0: "the sign is flipped: the difference is next minus previous, I[+1] - I[-1]"}


@register("image_gradients")
@stops_at_stubs
def image_gradients_checker(student_fn, namespace, result) -> CheckResult:
    """Check ``image_gradients(channel) -> (g_row, g_col)``."""
    outputs = Outputs(result)
    rng = np.random.default_rng(20268)
    r, c = np.mgrid[0:6, 0:7].astype(float)
    images = [("a ramp 3c + 2r^2", 3 * c + 2 * r ** 2),
              ("random", rng.random((9, 12))),
              ("random, odd size", rng.random((7, 5))),
              ("two rows", rng.random((2, 6))),
              ("random float32", rng.random((8, 8)).astype(np.float32)),
              ("uint8 pixels (a difference of uint8 values wraps around: 5 - 10 = 251)",
               rng.integers(0, 256, (6, 7)).astype(np.uint8))]
    for label, image in images:
        case = f"{label}: " + describe(channel=image)
        result.n_cases += 1
        got = unpack(result, run_student(result, student_fn, image, case=case), ("g_row", "g_col"),
                     fn_name="image_gradients", case=case)
        if got is None:
            continue
        expected = image_gradients(image)  # float64 for an integer image
        tol = {"rtol": 1e-5, "atol": 1e-6} if image.dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-12}
        variants = _gradient_variants(image.astype(np.float64))
        if image.dtype.kind in "iu":
            wrapped = image_gradients(image.astype(np.float64))
            wrapped = [g.astype(image.dtype) for g in wrapped]  # what uint8 arithmetic leaves
            for key, g in zip(("g_row", "g_col"), wrapped):
                variants[key].insert(0, ("the differences were computed in the image's integer dtype and "
                                         "wrapped around (5 - 10 = 251 in uint8): convert the image to float "
                                         "first (channel.astype(np.float64))", g))
        for key, actual, exp in zip(("g_row", "g_col"), got, expected):
            hint = variant_hint(lambda key=key, variants=variants: variants[key], _GRADIENT_FACTORS,
                                rtol=1e-5, atol=1e-6)
            if outputs.compare(key, actual, exp, case=case, hint=hint, **tol):
                check_dtype(result, actual, exp.dtype, what=key, case=case)
    return result


# ---------------------------------------------------------------- step 2: magnitude and orientation
def _orientation_variants(g_row, g_col):
    signed = np.rad2deg(np.arctan2(g_row, g_col))
    return [("the orientation is in radians: HOG uses degrees (np.rad2deg)", np.deg2rad(signed % 180)),
            ("signed orientation in (-180, 180]: HOG uses *unsigned* gradients, take it modulo 180",
             signed),
            ("orientation in [0, 360): HOG uses *unsigned* gradients in [0, 180), take it modulo 180",
             signed % 360),
            ("np.arctan2 takes (y, x) = (g_row, g_col), in that order", np.rad2deg(np.arctan2(g_col, g_row)) % 180),
            ("an orientation of exactly 180 must wrap to 0: use % 180 (the range is [0, 180))",
             np.where(signed < 0, signed + 180, signed)),
            ("% 180 of a tiny negative angle (-3e-15 degrees) rounds to exactly 180.0, outside [0, 180): "
             "fold it to 0 (np.where(orientation >= 180, 0.0, orientation)), or a bin index runs out of range",
             signed % 180)]


def _magnitude_variants(g_row, g_col):
    return [("forgot the square root: magnitude = sqrt(g_row**2 + g_col**2)", g_row ** 2 + g_col ** 2),
            ("|g_row| + |g_col| is the L1 norm: the magnitude is the L2 norm, np.hypot(g_row, g_col)",
             np.abs(g_row) + np.abs(g_col))]


def _nan_orientation_hint(actual, expected):
    a = np.asarray(actual, dtype=np.float64)
    if a.shape == expected.shape and np.isnan(a).any():
        return ("NaN where both gradients are 0 (0 / 0 in arctan(g_row / g_col)): use "
                "np.arctan2(g_row, g_col), which gives 0 there and knows the quadrant")
    return ""


@register("magnitude_orientation")
@stops_at_stubs
def magnitude_orientation_checker(student_fn, namespace, result) -> CheckResult:
    """Check ``magnitude_orientation(g_row, g_col) -> (magnitude, orientation)``, degrees in [0, 180)."""
    outputs = Outputs(result)
    rng = np.random.default_rng(20269)
    axes = np.array([[0.0, 1.0, -1.0, 0.0, 0.0, 2.0],    # g_row: zero, +-, on the axes, 45 degrees
                     [0.0, 0.0, 0.0, 1.0, -1.0, 2.0]])    # g_col
    cases = [("random", rng.standard_normal((6, 7)), rng.standard_normal((6, 7))),
             ("on the axes: zero, vertical, horizontal (-1 is 180 degrees = 0), 45 degrees",
              axes[:1].copy(), axes[1:].copy()),
             ("random with zeros", rng.standard_normal((4, 5)) * (rng.random((4, 5)) < 0.7),
              rng.standard_normal((4, 5)) * (rng.random((4, 5)) < 0.7)),
             ("g_row = -5.6e-17, g_col = 1 (a horizontal edge off by rounding: % 180 gives exactly 180.0)",
              np.array([[-5.6e-17, 0.5]]), np.array([[1.0, 0.5]]))]
    for label, g_row, g_col in cases:
        case = f"{label}: " + describe(g_row=g_row, g_col=g_col)
        result.n_cases += 1
        got = unpack(result, run_student(result, student_fn, g_row, g_col, case=case),
                     ("magnitude", "orientation"), fn_name="magnitude_orientation", case=case)
        if got is None:
            continue
        magnitude, orientation = magnitude_orientation(g_row, g_col)
        orientation = np.where(orientation >= 180.0, 0.0, orientation)  # the library's % 180 can give 180.0
        outputs.compare("magnitude", got[0], magnitude, case=case, rtol=1e-9, atol=1e-12,
                        hint=variant_hint(lambda g_row=g_row, g_col=g_col: _magnitude_variants(g_row, g_col)))

        def hint(actual, expected, g_row=g_row, g_col=g_col):
            return (_nan_orientation_hint(actual, expected)
                    or variant_hint(lambda: _orientation_variants(g_row, g_col), rtol=1e-7, atol=1e-7)(
                        actual, expected))
        outputs.compare("orientation", got[1], orientation, case=case, rtol=1e-9, atol=1e-9, hint=hint)
    return result


# ---------------------------------------------------------------- step 3: cell histograms
def _histograms_by_votes(magnitude, orientation, orientations, cells, votes):
    """Cell means from ``votes(orientation) -> [(bin index, weight), ...]`` (a bin outside 0..n-1 is dropped)."""
    c_row, c_col = cells
    n_rows, n_cols = magnitude.shape[0] // c_row, magnitude.shape[1] // c_col
    m = magnitude[:n_rows * c_row, :n_cols * c_col]
    o = orientation[:n_rows * c_row, :n_cols * c_col]
    hist = np.zeros((n_rows, n_cols, orientations))
    cell_r = (np.arange(n_rows * c_row) // c_row)[:, None] + 0 * o.astype(int)
    cell_c = (np.arange(n_cols * c_col) // c_col)[None, :] + 0 * o.astype(int)
    for bins, weight in votes(o):
        bins = np.asarray(bins, dtype=np.int64)
        inside = (bins >= 0) & (bins < orientations)
        np.add.at(hist, (cell_r[inside], cell_c[inside], bins[inside]), (weight * m)[inside])
    return hist / (c_row * c_col)


def _histogram_variants(magnitude, orientation, orientations, cells, binning):
    n, width = orientations, 180.0 / orientations

    def hist(votes, mag=magnitude):
        return _histograms_by_votes(mag, orientation, n, cells, votes)

    def bilinear(o, shift=0.0, wrap="wrap", swap=False):
        position = o / width - shift
        lower = np.floor(position)
        upper_w = position - lower
        lower = lower.astype(np.int64)
        upper = lower + 1
        if wrap == "wrap":
            lower, upper = lower % n, upper % n
        elif wrap == "clip":
            lower, upper = np.clip(lower, 0, n - 1), np.clip(upper, 0, n - 1)
        if swap:
            upper_w = 1 - upper_w
        return [(lower, 1 - upper_w), (upper, upper_w)]

    found = []
    if binning == "hard":
        found += [("bins off by half a bin: hard bin k holds [k*w, (k+1)*w) (w = 180 / orientations): "
                   "int(theta // w), not round(theta / w)", hist(lambda o: [(np.round(o / width) % n, 1.0)])),
                  ("bins over 360 degrees: the orientation is unsigned, in [0, 180), bin width 180 / orientations",
                   hist(lambda o: [(np.floor(o / (360.0 / n)), 1.0)])),
                  ("counted pixels: each pixel votes with its gradient magnitude, not 1",
                   hist(lambda o: [(np.floor(o / width), 1.0)], mag=np.ones_like(magnitude))),
                  ("the bilinear histogram: binning='hard' puts the whole vote in one bin",
                   hist(lambda o: bilinear(o)))]
    else:
        found += [("180 must wrap to 0: a pixel between the last centre (180 - w) and 180 splits its vote "
                   "between the last bin and bin 0", hist(lambda o: bilinear(o, wrap="drop"))),
                  ("180 must wrap to 0, not be clipped to the last bin: a pixel between the last centre "
                   "(180 - w) and 180 gives part of its vote to bin 0", hist(lambda o: bilinear(o, wrap="clip"))),
                  ("the weights are swapped: the *nearer* centre gets the larger share, bin k gets "
                   "(1 - (p - k)) * m with p = theta / w", hist(lambda o: bilinear(o, swap=True))),
                  ("bins off by half a bin: the bilinear centres are at k * 180 / orientations "
                   "(0, 20, ..., 160 for 9 bins), not at the middle of the hard bins",
                   hist(lambda o: bilinear(o, shift=0.5))),
                  ("the hard histogram: binning='bilinear' splits each vote between the two nearest centres",
                   hist(lambda o: [(np.floor(o / width), 1.0)]))]
    if cells[0] != cells[1]:
        found.append(("pixels_per_cell is (rows, cols): the cells are transposed",
                      _histograms_by_votes(magnitude, orientation, n, cells[::-1],
                                           (lambda o: bilinear(o)) if binning == "bilinear"
                                           else (lambda o: [(np.floor(o / width), 1.0)]))))
    return found


def _histogram_shape_hint(shape, magnitude, orientations, cells):
    h, w = magnitude.shape
    if tuple(shape) == (-(-h // cells[0]), -(-w // cells[1]), orientations):
        return "the partial cells at the bottom / right must be ignored: H // rows cells, not a rounded-up count"
    if tuple(shape) == (w // cells[1], h // cells[0], orientations) or \
            tuple(shape) == (h // cells[1], w // cells[0], orientations):
        return "pixels_per_cell is (rows, cols): the cells are transposed"
    if tuple(shape) == (h // cells[0], w // cells[1]):
        return "forgot the orientation axis: shape (n_cells_row, n_cells_col, orientations)"
    return "the shape is (H // rows, W // cols, orientations)"


@register("cell_histograms")
@stops_at_stubs
def cell_histograms_checker(student_fn, namespace, result) -> CheckResult:
    """Check ``cell_histograms(magnitude, orientation, *, orientations, pixels_per_cell, binning)``."""
    outputs = Outputs(result)
    rng = np.random.default_rng(20270)
    edges = (np.arange(36).reshape(6, 6) * 5.0) % 180         # on the hard edges and bilinear centres
    cases = [("random", rng.random((16, 16)), rng.uniform(0, 180, (16, 16)), 9, (8, 8)),
             ("non-square cells", rng.random((12, 20)), rng.uniform(0, 180, (12, 20)), 9, (4, 5)),
             ("partial cells to ignore", rng.random((17, 13)), rng.uniform(0, 180, (17, 13)), 9, (4, 4)),
             ("6 bins", rng.random((9, 9)), rng.uniform(0, 180, (9, 9)), 6, (3, 3)),
             ("orientations on bin edges and centres", rng.random((6, 6)), edges, 9, (3, 2)),
             ("near 180", rng.random((8, 8)), rng.uniform(170, 180, (8, 8)), 9, (4, 4))]
    for binning in ("hard", "bilinear"):
        for label, magnitude, orientation, orientations, cells in cases:
            case = (f"{label}: " + describe(magnitude=magnitude, orientation=orientation,
                                            orientations=orientations, pixels_per_cell=cells, binning=binning))
            result.n_cases += 1
            hist = run_student(result, student_fn, magnitude, orientation, orientations=orientations,
                               pixels_per_cell=cells, binning=binning, case=case)
            if hist is None:
                continue
            expected = cell_histograms(magnitude, orientation, orientations=orientations,
                                       pixels_per_cell=cells, binning=binning)

            def hint(actual, expected, magnitude=magnitude, orientation=orientation,
                     orientations=orientations, cells=cells, binning=binning):
                if np.shape(actual) != expected.shape:
                    return _histogram_shape_hint(np.shape(actual), magnitude, orientations, cells)
                area = cells[0] * cells[1]
                return variant_hint(
                    lambda: _histogram_variants(magnitude, orientation, orientations, cells, binning),
                    {area: f"sums, not means: divide each cell's histogram by its {area} pixels "
                           "(scikit-image's convention)"})(actual, expected)
            outputs.compare(f"histogram ({binning})", hist, expected, case=case, rtol=1e-7, atol=1e-9,
                            hint=hint)
    return result


# ---------------------------------------------------------------- step 4: block normalisation
def _block_variants(block, method, eps):
    l2 = block / np.sqrt(np.sum(block ** 2) + eps ** 2)
    found = []
    if method == "L2-Hys":
        clipped = np.minimum(l2, 0.2)
        found += [("L2-Hys without the clip: after L2, clip every value at 0.2, then normalise again",
                   l2),
                  ("L2-Hys without the second normalisation: after clipping at 0.2, normalise (L2) again",
                   clipped),
                  ("L2-Hys clipped before the first normalisation: normalise, clip at 0.2, normalise",
                   np.minimum(block, 0.2) / np.sqrt(np.sum(np.minimum(block, 0.2) ** 2) + eps ** 2))]
    if method in ("L2", "L2-Hys"):
        renorm = (lambda v: np.minimum(v, 0.2) / np.sqrt(np.sum(np.minimum(v, 0.2) ** 2) + eps ** 2)) \
            if method == "L2-Hys" else (lambda v: v)
        found += [("eps must be squared inside the root: v / sqrt(||v||^2 + eps^2)",
                   renorm(block / np.sqrt(np.sum(block ** 2) + eps))),
                  ("eps belongs inside the root, squared: v / sqrt(||v||^2 + eps^2), not v / (||v|| + eps)",
                   renorm(block / (np.sqrt(np.sum(block ** 2)) + eps))),
                  ("normalised each cell's histogram on its own: the norm is over the whole block",
                   renorm(block / np.sqrt(np.sum(block ** 2, axis=-1, keepdims=True) + eps ** 2)))]
    if method == "L1-sqrt":
        found.append(("L1-sqrt is the square root of the L1-normalised block", block / (np.sum(np.abs(block)) + eps)))
    if method == "L1":
        found.append(("L1 divides by the sum of absolute values (+ eps), not by the L2 norm",
                      block / np.sqrt(np.sum(block ** 2) + eps ** 2)))
    return found


@register("normalize_block")
@stops_at_stubs
def normalize_block_checker(student_fn, namespace, result) -> CheckResult:
    """Check ``normalize_block(block, method='L2-Hys', eps=1e-5)`` for the four norms."""
    outputs = Outputs(result)
    rng = np.random.default_rng(20271)
    peaked = rng.random((3, 3, 9)) * 0.05
    peaked[1, 1, 4] = 3.0                                  # one dominant bin: clipping at 0.2 matters
    blocks = [("random", rng.random((3, 3, 9))),
              ("one dominant bin", peaked),
              ("small values (eps matters)", rng.random((2, 2, 9)) * 1e-3),
              ("all zeros (an empty block: no NaN)", np.zeros((2, 3, 9)))]
    for method in BLOCK_METHODS:
        for label, block in blocks:
            case = f"{label}: " + describe(block=block, method=method)
            result.n_cases += 1
            out = run_student(result, student_fn, block, method=method, case=case)
            if out is None:
                continue
            expected = normalize_block(block, method)

            def hint(actual, expected, block=block, method=method):
                a = np.asarray(actual, dtype=np.float64)
                if a.shape == expected.shape and np.isnan(a).any():
                    return "NaN on an all-zero block: eps in the denominator keeps it finite (0 / eps = 0)"
                return variant_hint(lambda: _block_variants(block, method, 1e-5))(actual, expected)
            outputs.compare(f"{method} block", out, expected, case=case, rtol=1e-7, atol=1e-10, hint=hint)
    return result
