"""Loaders for dlib's face boxes (imglab XML) and the ORL faces, checked against the files' own text."""
import re

import numpy as np
import pytest

from scratchface.data.dlib_faces import load_dlib_faces
from scratchface.data.orl import load_orl_faces


def test_dlib_boxes_match_xml_text(data_dir):
    images = load_dlib_faces(data_dir / "dlib_faces", "training")
    text = (data_dir / "dlib_faces" / "training.xml").read_text(encoding="latin-1")
    raw = re.findall(r"<box top='(-?\d+)' left='(-?\d+)' width='(\d+)' height='(\d+)'", text)
    boxes = np.concatenate([im.boxes for im in images])
    assert len(images) == text.count("<image ") and boxes.shape == (18, 4)
    top, left, width, height = np.array(raw, float).T
    np.testing.assert_array_equal(boxes, np.stack([left, top, left + width, top + height], 1))
    assert images[0].path.name == "2007_007763.jpg" and images[0].path.is_file()
    # the first box by hand: top 90 left 194 width 37 height 37
    np.testing.assert_array_equal(images[0].boxes[0], [194, 90, 231, 127])


def test_dlib_all_splits_and_landmarks(data_dir):
    everything = load_dlib_faces(data_dir, "all")  # the parent folder works too
    assert sum(len(im.boxes) for im in everything) == 43
    assert len({im.path.name for im in everything}) == 9
    marked = load_dlib_faces(data_dir / "dlib_faces", "training", landmarks=True)
    first = marked[0]
    assert first.landmarks.shape == (7, 68, 2)
    np.testing.assert_array_equal(first.landmarks[0, 0], [201, 107])  # <part name='00' x='201' y='107'/>
    np.testing.assert_array_equal(first.boxes, load_dlib_faces(data_dir / "dlib_faces", "training")[0].boxes)


def test_dlib_env_variable_and_errors(data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("SCRATCHFACE_DATA", str(data_dir))
    assert len(load_dlib_faces(split="testing")) >= 1
    with pytest.raises(ValueError, match="split"):
        load_dlib_faces(data_dir, "validation")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_dlib_faces(tmp_path / "nowhere")
    monkeypatch.delenv("SCRATCHFACE_DATA")
    with pytest.raises(FileNotFoundError, match="SCRATCHFACE_DATA"):
        load_dlib_faces()


def test_orl_loader(data_dir):
    images, labels = load_orl_faces(data_dir / "orl_faces", subjects=[1, 40])
    assert images.shape == (20, 112, 92) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, [1] * 10 + [40] * 10)
    with pytest.raises(FileNotFoundError, match="s99"):
        load_orl_faces(data_dir / "orl_faces", subjects=[99])
