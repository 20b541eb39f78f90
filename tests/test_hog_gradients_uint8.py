"""``image_gradients`` on integer images: no uint8 wrap-around (issue 18)."""
import numpy as np

from scratchface.detection.hog import image_gradients


def test_uint8_differences_do_not_wrap_around():
    image = np.array([[10, 10, 10], [5, 200, 10], [0, 0, 255]], dtype=np.uint8)
    g_row, g_col = image_gradients(image)
    assert g_row.dtype == g_col.dtype == np.float64
    assert g_row[1].tolist() == [0 - 10, 0 - 10, 255 - 10]     # 0 - 10 is -10, not 246
    assert g_col[:, 1].tolist() == [10 - 10, 10 - 5, 255 - 0]  # worked by hand
    assert np.all(g_row[[0, -1]] == 0) and np.all(g_col[:, [0, -1]] == 0)


def test_integer_images_match_their_float_version():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (9, 11))
    for dtype in (np.uint8, np.int16, np.int64):
        for got, want in zip(image_gradients(image.astype(dtype)), image_gradients(image.astype(np.float64))):
            np.testing.assert_array_equal(got, want)
    float32 = image.astype(np.float32)
    assert image_gradients(float32)[0].dtype == np.float32  # float images keep their dtype


def test_orientation_is_below_180_even_for_a_tiny_negative_angle():
    from scratchface.detection.hog import magnitude_orientation

    # atan2(-5.6e-17, 1) is -5.6e-17 degrees... after % 180 it rounds to exactly 180.0 in float64
    assert np.rad2deg(np.arctan2(-5.6e-17, 1.0)) % 180 == 180.0
    _, orientation = magnitude_orientation(np.array([[-5.6e-17, 0.0]]), np.array([[1.0, -1.0]]))
    assert orientation.tolist() == [[0.0, 0.0]]
