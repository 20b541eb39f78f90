"""FHOG (Felzenszwalb's 31-number cell descriptor): by hand on ramps, the Numba kernel equal to the reference."""
import numpy as np
import pytest

from scratchface.detection.fhog_features import TEXTURE_WEIGHT, fhog, fhog_depth, fhog_reference


@pytest.mark.parametrize("orientation", range(18))
def test_ramp_by_hand(orientation):
    """A linear ramp along direction theta_o: every interior cell is bin o, each vote truncated at 0.2.

    Interior cell: histogram ``cell^2 |g|`` in bin o alone (bilinear weights sum to 1 per pixel);
    the four blocks around it have energy ``4 e``, so ``h N = 1/2 > 0.2`` is clipped to 0.2:
    signed bin o = unsigned bin o mod 9 = 0.5 * 4 * 0.2 = 0.4, each texture feature 0.2357 * 0.2.
    """
    theta = orientation * np.pi / 9
    y, x = np.mgrid[0:64, 0:72].astype(float)
    image = 0.2 + 0.004 * (np.cos(theta) * x + np.sin(theta) * y)
    features = fhog_reference(image)
    assert features.shape == (8, 9, 31)
    expected = np.zeros(31)
    expected[orientation] = 0.4
    expected[18 + orientation % 9] = 0.4
    expected[27:] = TEXTURE_WEIGHT * 0.2
    inner = features[2:-2, 2:-2].reshape(-1, 31)
    np.testing.assert_allclose(inner, np.broadcast_to(expected, inner.shape), atol=1e-12)


def test_flat_image_is_zero():
    assert np.array_equal(fhog_reference(np.full((40, 40), 0.5)), np.zeros((5, 5, 31)))


@pytest.mark.parametrize("shape, cell, orientations", [((37, 45), 8, 9), ((64, 80, 3), 8, 9), ((17, 9, 3), 4, 9),
                                                      ((50, 31), 6, 6), ((23, 70, 3), 8, 4),
                                                      ((45, 38, 3), 7, 9), ((20, 27), 5, 9)])
def test_numba_equals_reference(rng, shape, cell, orientations):
    image = rng.random(shape)
    expected = fhog_reference(image, cell, orientations)
    got = fhog(image, cell, orientations)
    assert got.shape == expected.shape == (shape[0] // cell, shape[1] // cell, fhog_depth(orientations))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_colour_takes_the_channel_of_largest_gradient(rng):
    gray = rng.random((40, 48))
    rgb = np.stack([gray, 0.5 * gray, np.full_like(gray, 0.3)], axis=2)   # red has the largest gradient
    np.testing.assert_allclose(fhog_reference(rgb), fhog_reference(gray), atol=1e-12)
    np.testing.assert_allclose(fhog(rgb), fhog_reference(gray), atol=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match="image"):
        fhog(np.zeros((10, 10, 2)))
    with pytest.raises(ValueError, match="cell"):
        fhog(np.zeros((10, 10)), cell=0)


def test_float32_image_same_as_its_float64_copy(rng):
    image = rng.random((40, 56, 3)).astype(np.float32)
    np.testing.assert_allclose(fhog(image), fhog_reference(image.astype(np.float64)), rtol=1e-12, atol=1e-12)
    planes_view = fhog(image, dtype=np.float32)          # the MMOD pyramid's layout: a feature-first buffer
    assert np.moveaxis(planes_view, -1, 0).flags.c_contiguous
    np.testing.assert_allclose(planes_view, fhog_reference(image.astype(np.float64)), rtol=1e-6, atol=1e-7)
