"""Images as people have them: phone photos with an EXIF orientation, decompression bombs, broken files.

- The 8 EXIF orientations: a real photo of ../shared is stored in each of the 8 ways a camera can
  (rotated / mirrored pixels + the Orientation tag that undoes it, written by PIL as cameras do);
  loading it must give the upright photo (pixels within JPEG noise) and MTCNN the upright photo's faces.
- A header declaring 50,000 x 50,000 pixels is refused from the header, memory bounded.
- Every command that reads a file (detect, verify, identify, enroll) answers random bytes, a photo
  truncated at every tenth of its length, zero-size dimensions and bombs with exit code 2 and one
  line on stderr, never a traceback.
"""
import io
import resource
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from scratchface import cli
from scratchface.image import MAX_PIXELS, as_rgb, read_image

#: the transposition that stores an upright photo under each EXIF orientation (its inverse is what
#: the Orientation tag tells a viewer to apply): EXIF 2.32, tag 0x0112
STORE = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
         4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
         7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}


def _png(width, height, idat=b""):
    """A PNG whose IHDR declares ``width`` x ``height`` (8-bit RGB) with valid CRCs."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(idat)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def upright(data_dir):
    """bald_guys.jpg (3 faces... or as many as MTCNN finds upright), halved for speed."""
    with Image.open(data_dir / "dlib_faces" / "bald_guys.jpg") as img:
        img = img.convert("RGB")
        return img.resize((img.width // 2, img.height // 2), Image.Resampling.BOX)


@pytest.fixture(scope="module")
def phone_photos(upright, tmp_path_factory):
    folder = tmp_path_factory.mktemp("exif")
    paths = {}
    for orientation, transpose in STORE.items():
        stored = upright if transpose is None else upright.transpose(transpose)
        exif = Image.Exif()
        exif[0x0112] = orientation
        paths[orientation] = folder / f"orientation{orientation}.jpg"
        stored.save(paths[orientation], quality=95, exif=exif.tobytes())
    return paths


@pytest.mark.parametrize("orientation", range(1, 9))
def test_each_exif_orientation_loads_upright_with_the_upright_faces(orientation, upright, phone_photos):
    from scratchface.detection.mtcnn import detect_faces

    expected = np.asarray(upright, dtype=np.float64)
    with Image.open(phone_photos[orientation]) as raw:  # the stored pixels really are turned
        assert raw.getexif()[0x0112] == orientation
        assert raw.size == (upright.size if orientation < 5 else upright.size[::-1])
    got = read_image(phone_photos[orientation])
    assert got.shape == expected.shape
    assert np.abs(got - expected).mean() < 3.0  # JPEG noise only (0 ... 255)
    truth = detect_faces(as_rgb(upright))
    found = detect_faces(as_rgb(got))
    assert len(truth.boxes) >= 2 and len(found.boxes) == len(truth.boxes)
    # each upright face found at the same place (pixels, upright coordinates); the order of faces of
    # nearly equal size may differ, so each is matched with the nearest box
    gaps = np.abs(found.boxes[:, None, :] - truth.boxes[None, :, :]).max(axis=2)
    assert sorted(gaps.argmin(axis=0)) == list(range(len(truth.boxes)))
    # within JPEG noise: each photo is compressed in its stored (turned) orientation
    width = truth.boxes[:, 2] - truth.boxes[:, 0]
    assert (gaps.min(axis=0) < 0.1 * width).all(), gaps.min(axis=0) / width


def test_bytes_file_objects_and_pil_images_are_turned_upright_too(phone_photos):
    by_path = read_image(phone_photos[6])
    data = phone_photos[6].read_bytes()
    np.testing.assert_array_equal(read_image(data), by_path)
    np.testing.assert_array_equal(read_image(io.BytesIO(data)), by_path)
    with Image.open(phone_photos[6]) as img:
        np.testing.assert_array_equal(as_rgb(img), as_rgb(by_path))
    np.testing.assert_array_equal(as_rgb(data), as_rgb(by_path))


def test_decompression_bomb_is_refused_from_its_header_with_bounded_memory(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png(50_000, 50_000, b"\x00" * 1000))
    assert 50_000 * 50_000 > MAX_PIXELS
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    for source in (bomb, bomb.read_bytes()):
        with pytest.raises(ValueError, match="decompression bomb"):
            read_image(source)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # < 200 MB, not 7.5 GB


def test_a_header_just_under_the_limit_is_not_called_a_bomb(tmp_path):
    with pytest.raises(ValueError, match="not a readable image"):  # no pixel data: truncated, not a bomb
        read_image(_png(10_000, 10_000))


@pytest.mark.parametrize("width,height", [(0, 10), (10, 0), (0, 0)])
def test_zero_size_dimensions_are_a_clear_error(width, height):
    with pytest.raises(ValueError, match="image"):
        read_image(_png(width, height))


# ----------------------------------------------------------------------------- the fuzz test on the commands
def _bad_files(folder, photo_bytes):
    rng = np.random.default_rng(0)
    files = {"empty": b"", "bomb": _png(50_000, 50_000, b"\x00" * 100)}
    for n in (1, 17, 1000, 50_000):
        files[f"random{n}"] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    files["random_with_jpeg_magic"] = b"\xff\xd8\xff\xe0" + rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()
    files["random_with_png_magic"] = b"\x89PNG\r\n\x1a\n" + rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()
    for k in range(10):  # truncated at 0 %, 10 %, ..., 90 % of its length
        files[f"truncated{k}0"] = photo_bytes[: len(photo_bytes) * k // 10]
    for w, h in ((0, 10), (10, 0)):
        files[f"zero_{w}x{h}"] = _png(w, h)
    paths = []
    for name, data in files.items():
        path = folder / f"{name}.jpg"
        path.write_bytes(data)
        paths.append(path)
    return paths


@pytest.mark.slow
def test_every_command_answers_broken_files_with_exit_2_and_one_line(tmp_path, phone_photos, capsys):
    good = str(tmp_path / "small.png")  # a readable photo, small so that the loop stays fast
    Image.fromarray(np.full((48, 48, 3), 128, np.uint8)).save(good)
    bad = _bad_files(tmp_path, phone_photos[1].read_bytes())
    from scratchface.recognition.pipeline import Gallery

    gallery = Gallery().add_embedding("someone", np.eye(128, dtype=np.float32)[0]).save(tmp_path / "g.npz")
    for path in bad:
        commands = [["detect", str(path)], ["detect", "--json", str(path)], ["verify", str(path), good],
                    ["verify", good, str(path)], ["identify", "--gallery", gallery, str(path)],
                    ["identify", "--gallery", str(path), good], ["enroll", str(path), "--out", str(tmp_path / "n.npz")]]
        for argv in commands:
            code = cli.main(argv)
            out, err = capsys.readouterr()
            assert code == 2, (argv, out, err)
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"scratchface {argv[0]}: error: "), (argv, err)
            assert "Traceback" not in err + out
