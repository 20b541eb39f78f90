"""HOG: against scikit-image, the lecture's 8x8 cell by hand, reference == Numba, bad input."""
import math

import numpy as np
import pytest

skimage_feature = pytest.importorskip("skimage.feature")
from skimage import data

from scratchface.detection.hog import (
    cell_histograms,
    hog,
    image_gradients,
    magnitude_orientation,
    normalize_block,
    normalize_blocks,
)

# The lecture's 8x8 cell (../shared/reference/lecture_facts.md), retyped here so the test runs without it.
LECTURE_MAGNITUDE = np.array([
    [2, 3, 4, 4, 3, 4, 2, 2], [5, 11, 17, 13, 7, 9, 3, 4], [11, 21, 23, 27, 22, 17, 4, 6],
    [23, 99, 165, 135, 85, 32, 26, 2], [91, 155, 133, 136, 144, 152, 57, 28],
    [98, 196, 76, 38, 26, 60, 170, 51], [165, 60, 60, 27, 77, 85, 43, 136],
    [71, 13, 34, 23, 108, 27, 48, 110]], float)
LECTURE_DIRECTION = np.array([
    [80, 36, 5, 10, 0, 64, 90, 73], [37, 9, 9, 179, 78, 27, 169, 166],
    [87, 136, 173, 39, 102, 163, 152, 176], [76, 13, 1, 168, 159, 22, 125, 143],
    [120, 70, 14, 150, 145, 144, 145, 143], [58, 86, 119, 98, 100, 101, 133, 113],
    [30, 65, 157, 75, 78, 165, 145, 124], [11, 170, 91, 4, 110, 17, 133, 110]], float)
# Worked by hand (exact fractions): hard bins [0,20), [20,40), ...; bilinear centres 0, 20, ..., 160,
# e.g. the pixel (80 deg, 2) gives 2 to the 80 bin, (36 deg, 3) gives 0.2*3 to 20 and 0.8*3 to 40,
# (179 deg, 13) gives 0.05*13 to 160 and 0.95*13 to 0 (180 wraps to 0).
LECTURE_HARD = [557, 241, 98, 355, 283, 453, 492, 711, 299]
LECTURE_BILINEAR = [428.05, 367.75, 130.95, 234.35, 375.3, 350.0, 519.35, 605.15, 478.1]


def test_lecture_cell_hard_and_bilinear():
    for binning, expected in [("hard", LECTURE_HARD), ("bilinear", LECTURE_BILINEAR)]:
        hist = cell_histograms(LECTURE_MAGNITUDE, LECTURE_DIRECTION, orientations=9,
                               pixels_per_cell=(8, 8), binning=binning)
        assert hist.shape == (1, 1, 9)
        np.testing.assert_allclose(hist[0, 0] * 64, expected, rtol=1e-12)
    # both keep the total magnitude
    assert sum(LECTURE_BILINEAR) == pytest.approx(LECTURE_MAGNITUDE.sum())


def test_single_pixel_votes_by_hand():
    mag = np.zeros((4, 4))
    ang = np.zeros((4, 4))
    mag[1, 2], ang[1, 2] = 10.0, 95.0  # hard: bin [80, 100); bilinear: 0.25 to 80, 0.75 to 100
    hard = cell_histograms(mag, ang, orientations=9, pixels_per_cell=(4, 4)) * 16
    bil = cell_histograms(mag, ang, orientations=9, pixels_per_cell=(4, 4), binning="bilinear") * 16
    np.testing.assert_allclose(hard[0, 0], [0, 0, 0, 0, 10, 0, 0, 0, 0])
    np.testing.assert_allclose(bil[0, 0], [0, 0, 0, 0, 2.5, 7.5, 0, 0, 0])


def test_gradient_convention_on_a_ramp():
    # I[r, c] = 3 c + 2 r^2: g_col = 6 inside, g_row = 2 (r+1)^2 - 2 (r-1)^2 = 8 r, borders zero
    r, c = np.mgrid[0:6, 0:7].astype(float)
    g_row, g_col = image_gradients(3 * c + 2 * r ** 2)
    np.testing.assert_array_equal(g_col[:, 1:-1], 6.0)
    np.testing.assert_array_equal(g_col[:, [0, -1]], 0.0)
    np.testing.assert_array_equal(g_row[1:-1], 8 * r[1:-1])
    np.testing.assert_array_equal(g_row[[0, -1]], 0.0)
    mag, ori = magnitude_orientation(np.array([1.0, -1.0, 0.0]), np.array([1.0, 1.0, -2.0]))
    np.testing.assert_allclose(mag, [np.sqrt(2), np.sqrt(2), 2.0])
    np.testing.assert_allclose(ori, [45.0, 135.0, 0.0])  # unsigned: -45 -> 135, 180 -> 0


def test_vertical_edge_votes_bin_zero():
    image = np.zeros((16, 16))
    image[:, 8:] = 1.0  # a vertical edge: gradient along the columns, orientation 0
    feats = hog(image, pixels_per_cell=(8, 8), cells_per_block=(1, 1), block_norm="L1",
                feature_vector=False)
    np.testing.assert_allclose(feats[:, :, 0, 0, 0], 1.0, rtol=1e-4)  # all mass in bin 0
    np.testing.assert_allclose(feats[..., 1:], 0.0)


def test_block_norms_by_hand():
    block = np.array([3.0, 4.0])
    np.testing.assert_allclose(normalize_block(block, "L1"), [3 / (7 + 1e-5), 4 / (7 + 1e-5)])
    np.testing.assert_allclose(normalize_block(block, "L1-sqrt"), np.sqrt([3 / 7, 4 / 7]), rtol=1e-5)
    np.testing.assert_allclose(normalize_block(block, "L2"), [0.6, 0.8], rtol=1e-9)
    # L2-Hys: [0.6, 0.8] clipped to [0.2, 0.2], renormalised to [1/sqrt2, 1/sqrt2]
    np.testing.assert_allclose(normalize_block(block, "L2-Hys"), [2 ** -0.5] * 2, rtol=1e-9)
    blocks = normalize_blocks(np.ones((4, 5, 3)), (2, 3), "L1")
    assert blocks.shape == (3, 3, 2, 3, 3)
    np.testing.assert_allclose(blocks, 1 / (18 + 1e-5))


def _images():
    astronaut = data.astronaut()
    return {
        "astronaut_rgb": (astronaut[100:300, 150:331], -1),  # odd width 181
        "camera": (data.camera()[:257, 31:300], None),
        "coins": (data.coins()[:151, :203], None),
        "lfw_face": (data.lfw_subset()[3], None),  # 25x25 float face
        "astronaut_float_gray": (astronaut[:130, :97].mean(axis=2) / 255.0, None),
    }


PARAMS = [
    dict(),
    dict(orientations=8, pixels_per_cell=(4, 4), cells_per_block=(2, 2), block_norm="L1"),
    dict(orientations=7, pixels_per_cell=(5, 6), cells_per_block=(2, 3), block_norm="L1-sqrt"),
    dict(orientations=12, pixels_per_cell=(7, 3), cells_per_block=(1, 1), block_norm="L2"),
    dict(orientations=9, pixels_per_cell=(6, 6), cells_per_block=(2, 2), block_norm="L2-Hys",
         transform_sqrt=True),
    dict(orientations=4, pixels_per_cell=(3, 5), cells_per_block=(3, 2), block_norm="L2"),
    dict(orientations=18, pixels_per_cell=(8, 8), cells_per_block=(1, 2), block_norm="L1",
         transform_sqrt=True),
    dict(orientations=6, pixels_per_cell=(9, 9), cells_per_block=(2, 2), block_norm="L2-Hys"),
    dict(orientations=9, pixels_per_cell=(2, 2), cells_per_block=(3, 3), block_norm="L1-sqrt"),
    dict(orientations=3, pixels_per_cell=(5, 5), cells_per_block=(4, 1), block_norm="L2-Hys"),
    dict(orientations=9, pixels_per_cell=(10, 4), cells_per_block=(2, 2), block_norm="L2",
         feature_vector=False),
]


_LIBM_ATAN2 = np.vectorize(math.atan2, otypes=[np.float64])


def _libm_arctan2(y, x, *args, **kwargs):
    """``np.arctan2`` by the C library's ``atan2`` (the one Numba's kernel calls), element by element."""
    y, x = np.asarray(y), np.asarray(x)
    return _LIBM_ATAN2(y, x).astype(np.result_type(y, x))


def skimage_hog(image, libm_atan2=False, **kwargs):
    """scikit-image's HOG; with ``libm_atan2``, its orientations from the C library's ``atan2``.

    NumPy 2's SIMD ``arctan2`` on AVX-512 machines differs from libm's by an ulp or so, which moves a
    gradient within 1e-13 degrees of a bin edge (45 or 135 degrees, frequent on uint8 images) to the other
    bin. The reference calls ``np.arctan2`` as scikit-image does and must match it as it is; the Numba
    kernel calls libm and must match scikit-image's algorithm run with libm (on AVX2 machines the two agree).
    """
    if not libm_atan2:
        return skimage_feature.hog(image, **kwargs)
    original, np.arctan2 = np.arctan2, _libm_arctan2
    try:
        return skimage_feature.hog(image, **kwargs)
    finally:
        np.arctan2 = original


@pytest.mark.parametrize("params", PARAMS, ids=[str(i) for i in range(len(PARAMS))])
def test_matches_skimage(params):
    for name, (image, channel_axis) in _images().items():
        cells = params.get("pixels_per_cell", (8, 8))
        blocks = params.get("cells_per_block", (3, 3))
        if image.shape[0] < cells[0] * blocks[0] or image.shape[1] < cells[1] * blocks[1]:
            continue
        # skimage draws the picture with one Python call per cell and bin: only for few cells
        visualize = (image.shape[0] // cells[0]) * (image.shape[1] // cells[1]) < 1500
        for impl in ("numba", "reference"):
            expected = skimage_hog(image, impl == "numba", visualize=visualize, channel_axis=channel_axis, **params)
            got = hog(image, visualize=visualize, channel_axis=channel_axis, impl=impl, **params)
            if visualize:
                (got, picture), (want, want_picture) = got, expected
                np.testing.assert_allclose(picture, want_picture, rtol=1e-6,
                                           atol=1e-6 * want_picture.max(), err_msg=f"{name} {impl}")
            else:
                want = expected
            assert got.shape == want.shape and got.dtype == want.dtype, (name, impl)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=f"{name} {impl}")


def test_matches_skimage_full_images():
    for image, channel_axis in [(data.astronaut(), -1), (data.camera(), None), (data.coins(), None)]:
        expected = skimage_feature.hog(image, channel_axis=channel_axis)
        np.testing.assert_allclose(hog(image, channel_axis=channel_axis), expected, rtol=0, atol=1e-6)


def test_float32_and_channel_axis_first():
    image = data.astronaut()[:96, :80].astype(np.float32) / 255
    expected = skimage_feature.hog(image, channel_axis=-1, pixels_per_cell=(6, 6), cells_per_block=(2, 2))
    for impl in ("numba", "reference"):
        got = hog(image, channel_axis=-1, pixels_per_cell=(6, 6), cells_per_block=(2, 2), impl=impl)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
        moved = hog(np.moveaxis(image, -1, 0), channel_axis=0, pixels_per_cell=(6, 6),
                    cells_per_block=(2, 2), impl=impl)
        np.testing.assert_array_equal(moved, got)


@pytest.mark.parametrize("binning", ["hard", "bilinear"])
def test_reference_equals_numba_random(rng, binning):
    for trial in range(5):
        shape = (int(rng.integers(12, 60)), int(rng.integers(12, 60)))
        channels = [None, 3, 4, 2, None][trial]
        image = rng.random(shape + ((channels,) if channels else ()))
        if trial == 4:
            image = np.round(image * 4)  # many exact ties and orientations on bin edges
        kwargs = dict(orientations=int(rng.integers(2, 13)),
                      pixels_per_cell=(int(rng.integers(2, 6)), int(rng.integers(2, 6))),
                      cells_per_block=(int(rng.integers(1, 3)), int(rng.integers(1, 3))),
                      block_norm=["L1", "L1-sqrt", "L2", "L2-Hys"][trial % 4],
                      channel_axis=-1 if channels else None, binning=binning)
        ref, ref_pic = hog(image, impl="reference", visualize=True, **kwargs)
        fast, fast_pic = hog(image, impl="numba", visualize=True, **kwargs)
        np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(fast_pic, ref_pic, rtol=1e-12, atol=1e-14)


def test_uint8_gray_and_rgba_inputs():
    rgba = np.dstack([data.astronaut()[:64, :64], np.full((64, 64), 255, np.uint8)])
    assert hog(rgba, channel_axis=-1).shape == hog(rgba[:, :, :3], channel_axis=-1).shape
    np.testing.assert_allclose(hog(data.camera()[:64, :64]),
                               hog(data.camera()[:64, :64].astype(float)), rtol=0, atol=0)


def test_bad_input():
    image = np.zeros((32, 32))
    with pytest.raises(ValueError, match="larger than the image"):
        hog(image, pixels_per_cell=(40, 8))
    with pytest.raises(ValueError, match="too small"):
        hog(image, pixels_per_cell=(8, 8), cells_per_block=(5, 1))
    with pytest.raises(ValueError, match="NaN"):
        hog(np.full((32, 32), np.nan))
    with pytest.raises(ValueError, match="channel_axis"):
        hog(np.zeros((32, 32, 3)))
    with pytest.raises(ValueError, match="3-D"):
        hog(image, channel_axis=-1)
    with pytest.raises(ValueError, match="block_norm"):
        hog(image, block_norm="L3")
    with pytest.raises(ValueError, match="binning"):
        hog(image, binning="soft")
    with pytest.raises(ValueError, match="non-negative"):
        hog(image - 1, transform_sqrt=True)
    with pytest.raises(TypeError, match="orientations"):
        hog(image, orientations=2.5)
    with pytest.raises(ValueError, match="2-D"):
        hog(np.zeros(10))
