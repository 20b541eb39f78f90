"""Every kind of image users have comes in the same way (see shared/reference/what_users_ask.md)."""
import numpy as np
import pytest
from PIL import Image

from scratchface.image import as_array, as_gray, as_rgb, read_image


def test_gray_rgb_rgba_uint8_float_agree(rng):
    rgb8 = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    ref = rgb8.astype(np.float32)
    np.testing.assert_allclose(as_rgb(rgb8), ref)
    np.testing.assert_allclose(as_rgb(rgb8 / 255.0), ref, atol=1e-4)
    np.testing.assert_allclose(as_rgb(rgb8.astype(np.uint16) * 257), ref, atol=1e-3)
    rgba = np.concatenate([rgb8, np.full((5, 7, 1), 255, np.uint8)], axis=2)
    np.testing.assert_allclose(as_rgb(rgba), ref)
    np.testing.assert_allclose(as_rgb(rgb8[:, :, ::-1].copy(), channel_order="bgr"), ref)
    gray = rgb8[:, :, 0]
    np.testing.assert_allclose(as_rgb(gray), np.repeat(gray[:, :, None], 3, 2).astype(np.float32))
    np.testing.assert_allclose(as_rgb(gray[:, :, None]), as_rgb(gray))


def test_gray_matches_skimage(rng):
    from skimage.color import rgb2gray
    rgb = rng.random((6, 4, 3))
    np.testing.assert_allclose(as_gray(rgb), rgb2gray(rgb), atol=1e-12)
    np.testing.assert_allclose(as_gray((rgb * 255).astype(np.uint8)),
                               rgb2gray((rgb * 255).astype(np.uint8)), atol=1e-12)


def test_transparent_pixels_composite_on_white():
    rgba = np.zeros((1, 1, 4), np.uint8)
    np.testing.assert_allclose(as_rgb(rgba), np.full((1, 1, 3), 255.0))


def test_files(tmp_path, rng):
    arr = rng.integers(0, 256, (8, 9, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), arr)
    np.testing.assert_allclose(as_rgb(str(tmp_path / "a.png")), arr.astype(np.float32))
    np.testing.assert_allclose(as_rgb(Image.fromarray(arr)), arr.astype(np.float32))
    (tmp_path / "b.png").write_bytes((tmp_path / "a.png").read_bytes()[:40])
    with pytest.raises(ValueError, match="not a readable image"):
        read_image(tmp_path / "b.png")
    (tmp_path / "c.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a readable image"):
        as_rgb(tmp_path / "c.txt")
    with pytest.raises(FileNotFoundError, match="not found"):
        read_image(tmp_path / "missing.jpg")


def test_bad_images():
    with pytest.raises(ValueError, match="NaN"):
        as_rgb(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        as_rgb(np.zeros((3, 3, 2)))
    with pytest.raises(ValueError, match="empty"):
        as_gray(np.zeros((0, 3)))
    with pytest.raises(TypeError, match="file path, a PIL image or an array"):
        as_array(42)
    with pytest.raises(ValueError, match="channel_order"):
        as_rgb(np.zeros((3, 3)), channel_order="rgba")
