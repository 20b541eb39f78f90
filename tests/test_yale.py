"""Yale loader: the files as shipped (subjectNN.condition GIFs), attributes from the condition."""
import shutil

import numpy as np
import pytest

from scratchface.data.yale import YALE_CONDITIONS, load_yale_faces, yale_attributes, yale_faces_dir


def test_attributes_of_every_condition():
    expected = {
        "centerlight": ("center", None, "neutral"), "leftlight": ("left", None, "neutral"),
        "rightlight": ("right", None, "neutral"), "glasses": (None, True, "neutral"),
        "noglasses": (None, False, "neutral"), "normal": (None, None, "neutral"),
        "happy": (None, None, "happy"), "sad": (None, None, "sad"), "sleepy": (None, None, "sleepy"),
        "surprised": (None, None, "surprised"), "wink": (None, None, "wink"),
    }
    assert set(expected) == set(YALE_CONDITIONS)
    for condition, (lighting, glasses, expression) in expected.items():
        assert yale_attributes(condition) == {"lighting": lighting, "glasses": glasses, "expression": expression}
    with pytest.raises(ValueError, match="condition must be one of"):
        yale_attributes("smiling")


def test_load_all(data_dir):
    yale = load_yale_faces(data_dir)  # the parent folder works as well as yalefaces/ itself
    assert yale.images.shape == (164, 243, 320) and yale.images.dtype == np.uint8
    assert np.array_equal(np.unique(yale.labels), np.arange(1, 16))
    counts = {c: int((yale.conditions == c).sum()) for c in YALE_CONDITIONS}
    assert counts.pop("centerlight") == 14 and set(counts.values()) == {15}  # subject01.centerlight is missing
    assert yale.paths[0].name == "subject01.glasses"
    assert 60 < yale.images.mean() < 200  # grey photos, neither blank nor saturated


def test_selection_and_env(data_dir, monkeypatch):
    yale = load_yale_faces(data_dir / "yalefaces", subjects=[2, 3], conditions=["happy", "sad"])
    assert yale.labels.tolist() == [2, 2, 3, 3] and yale.conditions.tolist() == ["happy", "sad"] * 2
    monkeypatch.setenv("SCRATCHFACE_DATA", str(data_dir))
    assert yale_faces_dir() == data_dir / "yalefaces"


def test_errors(tmp_path, monkeypatch, data_dir):
    monkeypatch.delenv("SCRATCHFACE_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="SCRATCHFACE_DATA is not set"):
        yale_faces_dir()
    with pytest.raises(FileNotFoundError, match="expected files named subjectNN.condition"):
        load_yale_faces(tmp_path)
    shutil.copy(data_dir / "yalefaces" / "subject02.happy", tmp_path / "subject02.happy")
    with pytest.raises(ValueError, match="conditions must be taken from"):
        load_yale_faces(tmp_path, conditions=["smiling"])
    with pytest.raises(FileNotFoundError, match="no Yale image"):
        load_yale_faces(tmp_path, subjects=[9])
    (tmp_path / "subject03.sad").write_bytes(b"GIF89a truncated")
    with pytest.raises(ValueError, match="subject03.sad is not a readable image"):
        load_yale_faces(tmp_path)
