"""The face commands of the CLI: detect, verify, identify, cluster, demo; exit codes and messages."""
import argparse
import json
import os

import numpy as np
import pytest
from PIL import Image

from scratchface.image import as_rgb
from scratchface import cli
from scratchface.recognition import pipeline
from scratchface.recognition.pipeline import FaceEmbeddings, FolderItem


def run(argv):
    """Parse ``argv`` with a parser holding only these sub-commands and run the handler."""
    parser = argparse.ArgumentParser(prog="scratchface")
    cli.add_face_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from skimage.data import astronaut
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(np.ascontiguousarray(astronaut()[:256, 96:352])).save(folder / "collins.png")
    Image.fromarray(np.full((64, 64), 120, np.uint8)).save(folder / "blank.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF truncated")
    return folder


# ----------------------------------------------------------------------------- detect, demo (real MTCNN)
def test_detect_prints_boxes_json_and_draws(photos, tmp_path, capsys):
    out = tmp_path / "annotated.png"
    assert run(["detect", str(photos / "collins.png"), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("face 1: box (") and ", probability 0.99" in captured.out
    assert f"annotated image saved to {out}" in captured.err
    with Image.open(out) as img:
        assert img.format == "PNG" and min(img.size) > 100
    assert run(["detect", str(photos / "collins.png"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["image"] == str(photos / "collins.png") and len(result["faces"]) == 1
    face = result["faces"][0]
    assert len(face["box"]) == 4 and len(face["landmarks"]) == 5 and face["probability"] > 0.99
    left_eye, right_eye = face["landmarks"][:2]
    assert face["box"][0] < left_eye[0] < right_eye[0] < face["box"][2]


def test_detect_exit_codes_for_no_face_and_bad_files(photos, tmp_path, capsys):
    assert run(["detect", str(photos / "blank.png")]) == 1
    assert "no face found in" in capsys.readouterr().err
    assert run(["detect", str(photos / "blank.png"), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["faces"] == []
    cases = [(photos / "missing.png", "image file not found"), (photos / "notes.txt", "not a readable image"),
             (photos / "cut.jpg", "not a readable image"), (photos, "is a folder, not an image file")]
    for path, message in cases:
        assert run(["detect", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("scratchface detect: error: ") and message in err and "Traceback" not in err
    assert run(["detect", str(photos / "collins.png"), "--out", str(tmp_path / "no" / "dir" / "x.png")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_demo_saves_the_astronaut_and_says_where(tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert run(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"saved {out}" in printed and printed.count("face ") == 1    # one face in the astronaut
    with Image.open(out) as img:
        assert img.format == "PNG"


def test_help_and_bad_usage_exit_codes(capsys):
    for command in ("detect", "verify", "identify", "cluster", "demo"):
        with pytest.raises(SystemExit) as exc:
            run([command, "--help"])
        assert exc.value.code == 0
        assert "exit codes: 0 success, 1" in capsys.readouterr().out
    for argv in (["verify", "a.png"], ["identify", "img.png"], ["detect", "x.png", "--min-face-size", "5"],
                 ["verify", "a", "b", "--threshold", "-1"], ["cluster", "d", "--batch-size", "0"]):
        with pytest.raises(SystemExit) as exc:
            run(argv)
        assert exc.value.code == 2
    assert "must be at least 12 pixels" in capsys.readouterr().err


# ----------------------------------------------------------------------------- verify, identify, cluster
# These check the commands' logic with known embeddings in place of the network (the real
# detector + embedding are tested end to end in test_pipeline.py).
E_COLLINS = np.eye(128, dtype=np.float32)[0]
E_HOPPER = np.eye(128, dtype=np.float32)[1]


def _fake_detect_and_embed(image, *, min_face_size=20, max_faces=None, batch_size=32):
    """Known faces told apart by the photo's top-left pixel (set in the fixture below)."""
    code = round(float(as_rgb(image)[0, 0, 0]))
    vectors = {10: [E_COLLINS], 20: [E_HOPPER], 30: [E_COLLINS * 0.8, E_HOPPER], 40: []}[code]
    vectors = vectors[:max_faces] if max_faces else vectors
    n = len(vectors)
    boxes = np.array([[10.0 + 50 * k, 5, 40 + 50 * k, 45] for k in range(n)], np.float32).reshape(n, 4)
    return FaceEmbeddings(np.array(vectors, np.float32).reshape(n, 128), boxes, np.ones(n, np.float32),
                          np.zeros((n, 5, 2), np.float32))


def _fake_embed_files(files, batch_size=32, *, min_face_size=20, max_faces=None, progress=True):
    for file in files:
        try:
            rgb = as_rgb(file)
        except (ValueError, OSError) as exc:
            yield FolderItem(str(file), np.zeros((0, 128), np.float32), np.zeros((0, 4), np.float32), str(exc))
            continue
        faces = _fake_detect_and_embed(rgb, max_faces=max_faces)
        yield FolderItem(str(file), faces.embeddings, faces.boxes, None)


@pytest.fixture
def known(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "detect_and_embed", _fake_detect_and_embed)
    monkeypatch.setattr(pipeline, "embed_files", _fake_embed_files)
    files = {}
    for name, code in (("collins", 10), ("hopper", 20), ("both", 30), ("nobody", 40)):
        files[name] = tmp_path / f"{name}.png"
        Image.fromarray(np.full((20, 20), code, np.uint8)).save(files[name])
    (tmp_path / "gallery" / "hopper").mkdir(parents=True)
    Image.fromarray(np.full((20, 20), 10, np.uint8)).save(tmp_path / "gallery" / "collins.png")
    Image.fromarray(np.full((20, 20), 20, np.uint8)).save(tmp_path / "gallery" / "hopper" / "1.png")
    Image.fromarray(np.full((20, 20), 40, np.uint8)).save(tmp_path / "gallery" / "empty.png")
    files["gallery"] = tmp_path / "gallery"
    return {k: str(v) for k, v in files.items()}


def test_verify_same_different_and_no_face(known, capsys):
    assert run(["verify", known["collins"], known["collins"]]) == 0
    assert capsys.readouterr().out == "same person (distance 0.000 < threshold 0.6)\n"
    assert run(["verify", known["collins"], known["hopper"], "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {"same": False, "distance": round(np.sqrt(2), 4),
                                                   "threshold": 0.6}
    assert run(["verify", known["collins"], known["hopper"], "--threshold", "1.5"]) == 0
    assert "same person (distance 1.414 < threshold 1.5)" in capsys.readouterr().out
    assert run(["verify", known["nobody"], known["collins"]]) == 1
    assert f"no face found in {known['nobody']}" in capsys.readouterr().err
    assert run(["verify", known["gallery"], known["collins"]]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert run(["verify", known["collins"], known["collins"] + ".missing"]) == 2
    assert "not found" in capsys.readouterr().err


def test_identify_names_faces_one_line_each(known, capsys):
    both = known["both"]
    assert run(["identify", "--gallery", known["gallery"], both]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"{both}: face 1 at (10, 5, 40, 45): collins, distance 0.200",
                                         f"{both}: face 2 at (60, 5, 90, 45): hopper, distance 0.000"]
    assert run(["identify", "--gallery", known["gallery"], both, "--threshold", "0.1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [f["name"] for f in result["faces"]] == [None, "hopper"]
    assert result["faces"][0]["nearest"] == "collins" and result["gallery"]["people"] == ["collins", "hopper"]
    assert run(["identify", "--gallery", known["gallery"], known["nobody"]]) == 1
    assert "no face found" in capsys.readouterr().err
    assert run(["identify", "--gallery", known["nobody"], known["both"]]) == 2
    assert "is neither a gallery file" in capsys.readouterr().err
    assert run(["identify", "--gallery", known["nobody"] + ".missing", known["both"]]) == 2
    assert "gallery not found" in capsys.readouterr().err


def test_enroll_once_then_identify_folders_as_csv(known, tmp_path, capsys):
    out = tmp_path / "g.npz"
    assert run(["enroll", known["gallery"], "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"2 of 3 photos enrolled, 2 people, into {out} (3 embedded, 0 unchanged, 0 removed)\n"
    assert "warning: empty.png: no face" in captured.err
    unknown = tmp_path / "unknown"
    (unknown / "sub").mkdir(parents=True)
    for name, code in (("a.png", 10), ("sub/b.png", 30), ("c.png", 40)):
        Image.fromarray(np.full((20, 20), code, np.uint8)).save(unknown / name)
    (unknown / "cut.jpg").write_bytes(b"\xff\xd8 broken")
    assert run(["identify", "--gallery", str(out), str(unknown), "--csv", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["image,face,name,nearest,distance,x1,y1,x2,y2",
                                         f"{unknown / 'a.png'},1,collins,collins,0.0,10.0,5.0,40.0,45.0"]
    assert "cut.jpg left out" in captured.err and f"no face found in {unknown / 'c.png'}" in captured.err
    assert run(["identify", "--gallery", str(out), str(unknown), "--recursive", "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [(os.path.basename(f["image"]), f["name"]) for f in result["faces"]] == [
        ("a.png", "collins"), ("b.png", "collins"), ("b.png", "hopper")]
    assert result["images"] == 4 and result["unreadable"] == [str(unknown / "cut.jpg")]
    assert run(["identify", "--gallery", str(out), str(unknown / "missing.png")]) == 2
    assert "not found" in capsys.readouterr().err


def test_re_enrolling_embeds_only_new_or_changed_photos(known, tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "g.npz")
    assert run(["enroll", known["gallery"], "--out", out, "--quiet"]) == 0
    capsys.readouterr()
    embedded = []

    def counting(files, *a, **k):
        embedded.extend(os.path.basename(f) for f in files)
        yield from _fake_embed_files(files, *a, **k)

    monkeypatch.setattr(pipeline, "embed_files", counting)
    gallery = os.path.join(known["gallery"])
    Image.fromarray(np.full((20, 20), 20, np.uint8)).save(os.path.join(gallery, "hopper", "2.png"))  # new
    Image.fromarray(np.full((20, 20), 20, np.uint8)).save(os.path.join(gallery, "collins.png"))      # changed
    os.remove(os.path.join(gallery, "empty.png"))                                                    # removed
    assert run(["enroll", gallery, "--out", out, "--quiet", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert sorted(embedded) == ["2.png", "collins.png"]
    assert (result["embedded"], result["reused"], result["removed"], result["enrolled"]) == (2, 1, 1, 3)
    g = pipeline.Gallery.load(out)  # the enroll file is a Gallery file too
    assert g.names == ["collins", "hopper", "hopper"]
    np.testing.assert_array_equal(g.embeddings, np.stack([E_HOPPER] * 3))


def test_enroll_bad_inputs(known, tmp_path, capsys):
    assert run(["enroll", known["collins"], "--out", str(tmp_path / "g.npz")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert run(["enroll", known["gallery"], "--out", str(tmp_path / "bad.npz"), "--quiet"]) == 2
    assert "--rebuild" in capsys.readouterr().err
    assert (tmp_path / "bad.npz").read_bytes() == b"not a zip"  # left as it was
    assert run(["enroll", known["gallery"], "--out", str(tmp_path / "bad.npz"), "--quiet", "--rebuild"]) == 0


def test_identify_with_a_gallery_without_faces(known, tmp_path, capsys):
    empty = tmp_path / "faceless"
    empty.mkdir()
    assert run(["identify", "--gallery", str(empty), known["both"]]) == 2
    assert "holds no images" in capsys.readouterr().err
    Image.fromarray(np.full((20, 20), 40, np.uint8)).save(empty / "x.png")
    assert run(["identify", "--gallery", str(empty), known["both"]]) == 2
    assert "is empty: none of its images has a usable face" in capsys.readouterr().err


def _fake_folder(monkeypatch, folder, people, batch_size=None):
    """Let ``pipeline.embed_folder`` yield ``people`` ({file: [(vector, score), ...]}) for ``folder``; write the files.

    The photos are real 60 x 60 PNGs (a colour per file) so that the contact sheet and --out-dir have
    something to read and copy; each face's box is (10, 10, 50, 50).
    """
    folder.mkdir(exist_ok=True)
    for k, name in enumerate(people):
        Image.fromarray(np.full((60, 60, 3), 20 * k, np.uint8)).save(folder / name, format="PNG")

    def fake_embed_folder(path, batch_size=32, **kwargs):
        assert path == str(folder)
        if expected_batch is not None:
            assert batch_size == expected_batch
        for name, faces in people.items():
            n = len(faces)
            yield FolderItem(os.path.join(path, name), np.array([v for v, _ in faces], np.float32).reshape(n, 128),
                             np.tile(np.float32([10, 10, 50, 50]), (n, 1)), None,
                             np.array([p for _, p in faces], np.float32))
    expected_batch = batch_size
    monkeypatch.setattr(pipeline, "embed_folder", fake_embed_folder)


def _on_axis(*positions):
    """Embeddings at the given positions along the first axis (distances worked by hand)."""
    return [np.float32(x) * E_COLLINS for x in positions]


def test_cluster_groups_faces_biggest_first(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "album"
    rng = np.random.default_rng(3)
    people = {"a1.jpg": [(E_COLLINS, 1.0)], "a2.jpg": [(E_COLLINS + 0.02 * rng.standard_normal(128), 1.0)],
              "b.jpg": [(E_HOPPER, 1.0), (E_COLLINS * 0.9, 1.0)], "none.jpg": []}
    _fake_folder(monkeypatch, folder, people, batch_size=8)
    with open(folder / "bad.jpg", "wb") as f:
        f.write(b"not an image")

    def with_bad(path, batch_size=32, **kwargs):
        yield from fake(path, batch_size, **kwargs)
        yield FolderItem(os.path.join(path, "bad.jpg"), np.zeros((0, 128), np.float32),
                         np.zeros((0, 4), np.float32), "bad.jpg is not a readable image")

    fake = pipeline.embed_folder
    monkeypatch.setattr(pipeline, "embed_folder", with_bad)
    assert run(["cluster", str(folder), "--batch-size", "8", "--quiet"]) == 0
    captured = capsys.readouterr()
    # distances: a1-a2 0.02 * sqrt(128) ~ 0.23, a1-b2 0.1, Hopper sqrt(2) from everyone: average linkage at 0.45
    assert captured.out.splitlines() == [
        "4 faces in 2 clusters (1 seen more than once, 1 seen once; average linkage, threshold 0.45)",
        "cluster 1 (3 faces): a1.jpg, a2.jpg, b.jpg [face 2]",
        "cluster 2 (1 face, seen once): b.jpg",
        "no face: none.jpg"]
    assert "bad.jpg left out" in captured.err
    assert run(["cluster", str(folder), "--batch-size", "8", "--json", "--threshold", "0.01"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert sorted(len(c) for c in result["clusters"]) == [1, 1, 1, 1]
    assert result["no_face"] == ["none.jpg"] and result["skipped"][0]["file"] == "bad.jpg"
    assert result["clusters"][0][0] == {"file": "a1.jpg", "face": 1, "score": 1.0, "box": [10.0, 10.0, 50.0, 50.0]}
    assert (result["method"], result["threshold"], result["min_score"]) == ("average", 0.01, 0.9)
    people.clear()
    assert run(["cluster", str(folder), "--batch-size", "8"]) == 1
    assert "no face found" in capsys.readouterr().err
    assert run(["cluster", str(tmp_path / "missing")]) == 2
    assert "folder not found" in capsys.readouterr().err


def test_cluster_average_linkage_does_not_chain_but_single_does(tmp_path, monkeypatch, capsys):
    # on a line: A = {0, 0.05}, a bridge at 0.46, B = {0.9, 0.95}. Single linkage at 0.45 chains all five
    # (0.05-0.46 is 0.41, 0.46-0.9 is 0.44). Average linkage: A and B merge (0.05 each), the bridge joins A
    # (mean 0.435 <= 0.45; to B it is 0.465), then A+bridge to B has mean 4.53 / 6 = 0.755 > 0.45: two people.
    e = _on_axis(0, 0.05, 0.46, 0.9, 0.95)
    _fake_folder(monkeypatch, tmp_path / "line", {f"{k}.png": [(v, 1.0)] for k, v in enumerate(e)})
    assert run(["cluster", str(tmp_path / "line"), "--json"]) == 0
    files = [[m["file"] for m in c] for c in json.loads(capsys.readouterr().out)["clusters"]]
    assert files == [["0.png", "1.png", "2.png"], ["3.png", "4.png"]]
    assert run(["cluster", str(tmp_path / "line"), "--json", "--method", "single"]) == 0
    assert len(json.loads(capsys.readouterr().out)["clusters"]) == 1
    assert run(["cluster", str(tmp_path / "line"), "--method", "chinese_whispers"]) == 0
    assert "chinese whispers, threshold 0.45" in capsys.readouterr().out


def test_cluster_low_scores_do_not_glue_people(tmp_path, monkeypatch, capsys):
    # P at 0 and Q at 0.6 are different people; a false detection at 0.29 (score 0.5) is within 0.45 of both
    people = {"p.png": [(_on_axis(0)[0], 0.99)], "junk.png": [(_on_axis(0.29)[0], 0.5)],
              "q.png": [(_on_axis(0.6)[0], 0.95)]}
    _fake_folder(monkeypatch, tmp_path / "album", people)
    assert run(["cluster", str(tmp_path / "album"), "--method", "single", "--min-score", "0"]) == 0
    assert capsys.readouterr().out.startswith("3 faces in 1 cluster (1 seen more than once, 0 seen once;")
    assert run(["cluster", str(tmp_path / "album"), "--method", "single"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "3 faces in 2 clusters (0 seen more than once, 2 seen once; single linkage, threshold 0.45)",
        "cluster 1 (1 face, seen once): p.png", "cluster 2 (1 face, seen once): q.png",
        "unclustered (detection score < 0.9): junk.png (0.50)"]
    assert run(["cluster", str(tmp_path / "album"), "--min-score", "0.999"]) == 1
    assert "every face scored below --min-score 0.999" in capsys.readouterr().err
    for bad in ("1.5", "-0.1", "x"):
        with pytest.raises(SystemExit) as exc:
            run(["cluster", str(tmp_path / "album"), "--min-score", bad])
        assert exc.value.code == 2


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_cluster_out_dir_copies_or_links_without_touching_the_originals(tmp_path, monkeypatch, capsys):
    album = tmp_path / "album"
    people = {"a1.png": [(_on_axis(0)[0], 1.0)], "a2.png": [(_on_axis(0.1)[0], 1.0)],
              "group.png": [(_on_axis(0.05)[0], 1.0), (E_HOPPER, 1.0)], "blur.png": [(E_HOPPER, 0.8)],
              "empty.png": []}
    _fake_folder(monkeypatch, album, people)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in album.iterdir()}
    out = tmp_path / "sorted"
    assert run(["cluster", str(album), "--out-dir", str(out)]) == 0
    assert _tree(out) == ["person_001", "person_001/a1.png", "person_001/a2.png", "person_001/group.png",
                          "person_002", "person_002/group.png", "unclustered", "unclustered/blur.png",
                          "unclustered/empty.png"]
    assert (out / "person_002" / "group.png").read_bytes() == before["group.png"][0]
    assert not (out / "person_001" / "a1.png").is_symlink()
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in album.iterdir()} == before
    capsys.readouterr()
    assert run(["cluster", str(album), "--out-dir", str(out)]) == 2  # not empty: refused, nothing written
    assert "is not empty (add --force" in capsys.readouterr().err
    assert run(["cluster", str(album), "--out-dir", str(out), "--force", "--link"]) == 0
    assert (out / "person_001" / "a1.png").is_symlink()
    assert os.readlink(out / "person_001" / "a1.png") == str((album / "a1.png").resolve())
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in album.iterdir()} == before
    assert not any(p.name.endswith(".tmp") for p in out.rglob("*"))
    capsys.readouterr()
    assert run(["cluster", str(album), "--out-dir", str(album), "--force"]) == 2
    assert "must lie outside the photos' folder" in capsys.readouterr().err
    assert run(["cluster", str(album), "--link"]) == 2
    assert "go with --out-dir" in capsys.readouterr().err


def test_cluster_contact_sheet(tmp_path, monkeypatch, capsys):
    album = tmp_path / "album"
    people = {"a1.png": [(_on_axis(0)[0], 1.0)], "a2.png": [(_on_axis(0.1)[0], 1.0)],
              "b.png": [(E_HOPPER, 1.0)], "c.png": [(np.eye(128, dtype=np.float32)[2], 1.0)],
              "blur.png": [(E_HOPPER, 0.5)]}
    _fake_folder(monkeypatch, album, people)
    sheet = tmp_path / "sheets" / "sheet.png"
    assert run(["cluster", str(album), "--contact-sheet", str(sheet)]) == 2  # its folder does not exist
    assert "does not exist" in capsys.readouterr().err
    sheet.parent.mkdir()
    assert run(["cluster", str(album), "--contact-sheet", str(sheet)]) == 0
    assert "contact sheet saved to" in capsys.readouterr().err
    picture = np.asarray(Image.open(sheet))
    assert picture.ndim == 3 and picture.shape[0] > 3 * 64  # rows: person 1 (2), seen once (2), score < 0.9 (1)
    assert os.listdir(sheet.parent) == ["sheet.png"]  # written through a temporary file, none left


def test_cluster_bad_folders(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(["cluster", str(empty), "--quiet"]) == 2
    assert "holds no images (sub-folders are read with --recursive)" in capsys.readouterr().err
    (empty / "notes.txt").write_text("not a photo")
    assert run(["cluster", str(empty), "--quiet"]) == 2
    assert run(["cluster", str(empty / "notes.txt")]) == 2
    assert "is a file, not a folder of photos" in capsys.readouterr().err


def test_cluster_one_photo(tmp_path, monkeypatch, capsys):
    _fake_folder(monkeypatch, tmp_path / "one", {"me.png": [(E_COLLINS, 0.99)]})
    assert run(["cluster", str(tmp_path / "one")]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "1 face in 1 cluster (0 seen more than once, 1 seen once; average linkage, threshold 0.45)",
        "cluster 1 (1 face, seen once): me.png"]


def test_verify_one_photo_against_files_and_folders(known, tmp_path, capsys):
    folder = tmp_path / "more"
    folder.mkdir()
    for name, code in (("a.png", 10), ("b.png", 20), ("c.png", 40)):
        Image.fromarray(np.full((20, 20), code, np.uint8)).save(folder / name)
    assert run(["verify", known["collins"], str(folder)]) == 1  # not all the same person
    assert capsys.readouterr().out.splitlines() == [f"{folder / 'a.png'}: same person (distance 0.000)",
                                                    f"{folder / 'b.png'}: different people (distance 1.414)",
                                                    f"{folder / 'c.png'}: no face found"]
    assert run(["verify", known["collins"], str(folder / "a.png"), known["both"], "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["same"] for r in result["results"]] == [True, True] and result["reference"] == known["collins"]
    assert run(["verify", known["nobody"], str(folder)]) == 2
    assert "no face found in the reference photo" in capsys.readouterr().err
