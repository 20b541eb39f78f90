"""The synthetic scale set: boxes sit on the pasted faces, bands are right, scenes are reproducible."""
import numpy as np
import pytest

from scratchface.detection import synthetic
from scratchface.detection.nms import iou
from scratchface.detection.synthetic import BACKGROUNDS, band_of, synthetic_face_scenes

MAGENTA = np.array([255, 0, 255], np.uint8)
GREEN = np.array([0, 200, 0], np.uint8)
BANDS = ((10, 30), (30, 120), (120, 240))


def crop_source():
    """Like ORL: the whole 40 x 50 patch is the face."""
    return synthetic.FaceSource(np.tile(MAGENTA, (50, 40, 1)), np.array([0.0, 0.0, 40.0, 50.0]))


def context_source():
    """Like Yale: a 60 x 80 face box at (20, 15) inside a green 100 x 110 patch."""
    patch = np.tile(GREEN, (110, 100, 1))
    patch[15:95, 20:80] = MAGENTA
    return synthetic.FaceSource(patch, np.array([20.0, 15.0, 80.0, 95.0]))


@pytest.fixture
def fake_sources(monkeypatch):
    """Constant-colour faces on black photos: where the faces went can be read off the image."""
    class Library:
        def __init__(self, sources):
            self.sources = sources

        def __len__(self):
            return len(self.sources)

        def get(self, index):
            return self.sources[index]

    def use(*sources):
        monkeypatch.setattr(synthetic, "_face_library", lambda data_dir: Library(sources))
    monkeypatch.setattr(synthetic, "_backgrounds",
                        lambda data_dir: [np.zeros((300, 400, 3), np.uint8), np.zeros((200, 200, 3), np.uint8)])
    return use


def magenta(image):
    return np.all(image == MAGENTA, axis=2)


def test_boxes_are_exactly_the_pasted_crops(fake_sources):
    fake_sources(crop_source())
    n_faces = 0
    for image, boxes, bands in synthetic_face_scenes(8, rng=1, size_bands=BANDS, faces_per_image=(2, 5)):
        mask = magenta(image)
        assert image.shape == (256, 256, 3) and image.dtype == np.uint8
        # every box is pure magenta inside, integer-aligned, and together they are all the magenta there is
        area = 0.0
        for x1, y1, x2, y2 in boxes:
            assert (x1, y1, x2, y2) == tuple(np.round([x1, y1, x2, y2]))
            assert mask[int(y1):int(y2), int(x1):int(x2)].all()
            area += (x2 - x1) * (y2 - y1)
        assert mask.sum() == area
        n_faces += len(boxes)
    assert n_faces >= 16


def test_boxes_follow_the_face_inside_a_context_patch(fake_sources):
    fake_sources(context_source())
    for image, boxes, _ in synthetic_face_scenes(6, rng=2, size_bands=BANDS, faces_per_image=(1, 3)):
        mask = magenta(image)
        for x1, y1, x2, y2 in boxes:
            # the face's pure-magenta pixels fill the box up to the resampled edge
            edge = max((y2 - y1) / 80.0, 1.0) + 0.5
            inner = mask[int(np.ceil(y1 + edge)):int(y2 - edge), int(np.ceil(x1 + edge)):int(x2 - edge)]
            assert inner.size and inner.all()
            ys, xs = np.nonzero(mask[max(int(y1) - 3, 0):int(y2) + 3, max(int(x1) - 3, 0):int(x2) + 3])
            top, left = max(int(y1) - 3, 0) + ys.min(), max(int(x1) - 3, 0) + xs.min()
            bottom, right = max(int(y1) - 3, 0) + ys.max() + 1, max(int(x1) - 3, 0) + xs.max() + 1
            # bilinear resampling blends the face's edge over one source pixel: `scale` output pixels
            scale = (y2 - y1) / 80.0
            np.testing.assert_allclose([left, top, right, bottom], [x1, y1, x2, y2], atol=max(scale, 1.0) + 0.5)
            assert x1 - 0.5 <= left and right <= x2 + 0.5 and y1 - 0.5 <= top and bottom <= y2 + 0.5


def test_bands_heights_and_placement(fake_sources):
    fake_sources(crop_source(), context_source())
    seen = []
    for image, boxes, bands in synthetic_face_scenes(30, rng=3, size_bands=BANDS, faces_per_image=(1, 4),
                                                     image_size=(250, 260)):
        assert image.shape == (250, 260, 3)
        assert boxes.shape == (len(bands), 4) and bands.dtype == np.int64
        heights = boxes[:, 3] - boxes[:, 1]
        for h, b in zip(heights, bands):
            assert BANDS[b][0] <= h < BANDS[b][1]
        # inside the image, never overlapping
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 260).all() and (boxes[:, 3] <= 250).all()
        overlaps = iou(boxes, boxes)
        np.testing.assert_array_equal(overlaps - np.diag(np.diag(overlaps)), 0.0)
        seen.extend(bands.tolist())
    counts = np.bincount(seen, minlength=3)
    assert (counts >= 5).all(), counts          # every band is drawn


def test_reproducible_with_a_seed(fake_sources):
    fake_sources(crop_source(), context_source())
    first = list(synthetic_face_scenes(3, rng=7, size_bands=BANDS))
    again = list(synthetic_face_scenes(3, rng=np.random.default_rng(7), size_bands=BANDS))
    other = list(synthetic_face_scenes(3, rng=8, size_bands=BANDS))
    for (a, b, c), (d, e, f) in zip(first, again):
        np.testing.assert_array_equal(a, d)
        np.testing.assert_array_equal(b, e)
        np.testing.assert_array_equal(c, f)
    assert any(len(b) != len(e) or not np.array_equal(b, e) for (_, b, _), (_, e, _) in zip(first, other))


def test_band_of():
    np.testing.assert_array_equal(band_of([9.9, 10, 29.99, 30, 239, 240], BANDS), [-1, 0, 0, 1, 2, -1])


def test_argument_errors():
    with pytest.raises(ValueError, match="n_images must be a positive integer"):
        synthetic_face_scenes(0, rng=0)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator or an int seed"):
        synthetic_face_scenes(1, rng=None)
    with pytest.raises(TypeError, match="image_size must be a pair of numbers"):
        synthetic_face_scenes(1, rng=0, image_size=256)
    with pytest.raises(ValueError, match="image_size must be at least 16 x 16"):
        synthetic_face_scenes(1, rng=0, image_size=(8, 8))
    with pytest.raises(ValueError, match=r"size band \(120, 300\) reaches 300 pixels"):
        synthetic_face_scenes(1, rng=0, size_bands=((10, 30), (120, 300)))
    with pytest.raises(ValueError, match=r"each size band \(low, high\) needs 2 <= low and low \+ 1 < high"):
        synthetic_face_scenes(1, rng=0, size_bands=((30, 10),))
    with pytest.raises(TypeError, match="size_bands must be a non-empty sequence"):
        synthetic_face_scenes(1, rng=0, size_bands=())
    with pytest.raises(ValueError, match="faces_per_image must be"):
        synthetic_face_scenes(1, rng=0, faces_per_image=(3, 1))


def test_missing_data_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="ORL faces not found"):
        next(synthetic_face_scenes(1, rng=0, data_dir=tmp_path))


def test_real_faces_on_real_backgrounds(data_dir):
    photos = synthetic._backgrounds(data_dir)
    assert len(photos) == len(BACKGROUNDS) + 1                      # + dogs.jpg
    assert all(p.ndim == 3 and p.shape[2] == 3 and p.dtype == np.uint8 for p in photos)
    scenes = list(synthetic_face_scenes(3, rng=0, data_dir=data_dir, faces_per_image=(2, 3)))
    assert sum(len(b) for _, b, _ in scenes) >= 4
    for image, boxes, bands in scenes:
        assert image.shape == (256, 256, 3)
        for (x1, y1, x2, y2), band in zip(boxes, bands):
            face = image[int(np.ceil(y1)):int(y2), int(np.ceil(x1)):int(x2)].astype(int)
            # ORL and Yale are grey: inside every box the three channels are equal
            assert (face[..., 0] == face[..., 1]).all() and (face[..., 1] == face[..., 2]).all()
            assert face.std() > 10                                       # a face, not a flat patch
            assert BANDS[band][0] <= y2 - y1 < BANDS[band][1]


def test_scenes_are_writable_arrays(data_dir):
    # PIL-backed arrays are read-only; a scene must be a fresh array the caller (and the paster) can write
    from scratchface.detection.synthetic import synthetic_face_scenes
    for image, _, _ in synthetic_face_scenes(3, rng=0, data_dir=data_dir):
        assert image.flags.writeable
        image[0, 0] = 0
