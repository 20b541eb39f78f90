"""The contact sheet of face clusters: layout worked by hand, thumbnails, atomic writing."""
import os

import numpy as np
import pytest
from PIL import Image

from scratchface.viz.contact_sheet import contact_sheet, face_thumbnail, save_contact_sheet


def test_layout_by_hand():
    red, blue = np.zeros((2, 2, 3), np.float32), np.zeros((2, 2, 3), np.float32)
    red[..., 0], blue[..., 2] = 1, 1
    canvas = contact_sheet([[red, blue, red], [blue]], size=2, gap=1, max_per_row=2)
    # 2 rows x 2 columns of 2-pixel thumbnails, 1 white pixel around each: 2 * 3 + 1 = 7 both ways
    assert canvas.shape == (7, 7, 3)
    expected = np.ones((7, 7, 3), np.float32)
    expected[1:3, 1:3], expected[1:3, 4:6], expected[4:6, 1:3] = red, blue, blue
    np.testing.assert_array_equal(canvas, expected)
    with pytest.raises(ValueError, match="rows"):
        contact_sheet([])
    with pytest.raises(ValueError, match=r"rows\[0\]\[0\]"):
        contact_sheet([[np.zeros((3, 3, 3))]], size=2)


def test_face_thumbnail_crops_the_box():
    image = np.zeros((40, 60), np.uint8)  # gray, uint8: a white square at rows 10-19, columns 20-29
    image[10:20, 20:30] = 255
    thumb = face_thumbnail(image, (20, 10, 30, 20), size=8)
    assert thumb.shape == (8, 8, 3) and thumb.dtype == np.float32
    np.testing.assert_allclose(thumb, 1.0, atol=1e-6)
    # a box past the border is clipped to the image; float images on 0..255 say so
    edge = face_thumbnail(image.astype(np.float32), (50, 30, 90, 70), size=4, value_range="0..255")
    np.testing.assert_allclose(edge, 0.0)
    with pytest.raises(ValueError, match="box"):
        face_thumbnail(image, (0, 0, 5))
    with pytest.raises(ValueError, match="size"):
        face_thumbnail(image, (0, 0, 5, 5), size=0)


def test_save_is_atomic_and_readable(tmp_path):
    thumb = np.full((64, 64, 3), 0.5, np.float32)
    path = tmp_path / "sheet.png"
    path.write_bytes(b"an older sheet")
    save_contact_sheet(path, [[thumb, thumb], [thumb]], ["person 1 (2)", "seen once (1)"], title="3 faces")
    assert os.listdir(tmp_path) == ["sheet.png"]
    picture = np.asarray(Image.open(path))
    assert picture.shape[0] >= 2 * 68 and picture.shape[2] in (3, 4)
    with pytest.raises(ValueError, match="labels"):
        save_contact_sheet(path, [[thumb]], ["a", "b"])
    with pytest.raises(FileNotFoundError):
        save_contact_sheet(tmp_path / "missing" / "sheet.png", [[thumb]], ["a"])
    assert os.listdir(tmp_path) == ["sheet.png"]
