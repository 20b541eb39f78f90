"""MTCNN: weights (converter, checksum), nets, area resizing, detection against facenet-pytorch."""
import collections
import hashlib
import io
import json
import pathlib
import pickle
import shutil

import numpy as np
import pytest

import experiments.convert_mtcnn as conv
from scratchface.detection.mtcnn import (
    CELL_SIZE,
    detect_faces,
    detect_faces_batch,
    onet_stage,
    pnet_stage,
    rnet_stage,
)
from scratchface.detection.nms import iou
from scratchface.detection.pyramid import (
    area_resize,
    area_resize_reference,
    area_resize_regions_nchw,
    image_pyramid,
    pyramid_scales,
    summed_area_table,
)
from scratchface.models import mtcnn_nets
from scratchface.models.mtcnn_nets import (
    WEIGHT_SHAPES,
    WEIGHTS_PATH,
    WEIGHTS_SHA256,
    load_mtcnn_weights,
    onet_forward,
    pnet_forward,
    rnet_forward,
)

DLIB_PHOTOS = ["2007_007763.jpg", "2008_001009.jpg", "2008_001322.jpg", "2008_002079.jpg", "2008_002470.jpg",
               "2008_002506.jpg", "2008_004176.jpg", "2008_007676.jpg", "2009_004587.jpg"]
OTHER_PHOTOS = ["astronaut.png", "grace_hopper.png", "bald_guys.jpg", "Tom_Cruise_avp_2014_4.jpg"]


# ----------------------------------------------------------------------------- weights

def test_shipped_weights_load_with_their_checksum():
    with open(WEIGHTS_PATH, "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == WEIGHTS_SHA256
    w = load_mtcnn_weights()
    assert set(w) == set(WEIGHT_SHAPES)
    assert all(w[k].shape == s and w[k].dtype == np.float32 for k, s in WEIGHT_SHAPES.items())
    assert sum(a.size for a in w.values()) == 495850  # 6632 + 100178 + 389040 trained numbers (P/R/O-Net)
    with pytest.raises(ValueError, match="read-only"):
        w["pnet.conv1.w"][0, 0, 0, 0] = 1.0


def test_corrupt_weights_file_is_refused(tmp_path):
    bad = tmp_path / "mtcnn_weights.npz"
    raw = bytearray(pathlib.Path(WEIGHTS_PATH).read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt or modified"):
        load_mtcnn_weights(bad, sha256=WEIGHTS_SHA256)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(bytes(raw[:1000]))
    with pytest.raises(ValueError, match="cannot be read"):
        load_mtcnn_weights(truncated)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_mtcnn_weights(tmp_path / "missing.npz")


def test_weights_file_with_pickled_or_missing_arrays_is_refused(tmp_path):
    weights = dict(load_mtcnn_weights())
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **{**weights, "pnet.conv1.w": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match="cannot be read"):  # allow_pickle=False refuses object arrays
        load_mtcnn_weights(pickled)
    missing = tmp_path / "missing_key.npz"
    np.savez(missing, **{k: v for k, v in weights.items() if k != "onet.dense6_3.b"})
    with pytest.raises(ValueError, match="lacks the array 'onet.dense6_3.b'"):
        load_mtcnn_weights(missing)
    wrong = tmp_path / "wrong_shape.npz"
    np.savez(wrong, **{**weights, "rnet.dense4.w": weights["rnet.dense4.w"].T})
    with pytest.raises(ValueError, match="rnet.dense4.w must be float32"):
        load_mtcnn_weights(wrong)


def _write_legacy(torch, state, path):
    torch.save(state, path, _use_new_zipfile_serialization=False)


def test_legacy_reader_honours_strides_offsets_and_shared_storages(torch, tmp_path):
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    state = collections.OrderedDict([
        ("plain", torch.arange(12, dtype=torch.float32).reshape(3, 4) / 7),
        ("transposed", base.t()),                 # non-contiguous view: strides (1, 10)
        ("offset", base[2:4, 3:7]),               # storage offset 23, shared storage
        ("double", torch.linspace(-1, 1, 5, dtype=torch.float64)),
        ("long", torch.tensor([3, -2, 7])),
        ("scalar", torch.tensor(2.5)),
    ])
    path = tmp_path / "legacy.pt"
    _write_legacy(torch, state, path)
    got = conv.read_legacy_torch_file(path)
    assert list(got) == list(state)
    for key, tensor in state.items():
        np.testing.assert_array_equal(got[key], tensor.numpy(), err_msg=key)
        assert got[key].dtype == tensor.numpy().dtype


def test_converter_reproduces_the_shipped_file_from_torch_pickles(torch, tmp_path):
    """Write the shipped arrays back as facenet-pytorch's legacy .pt files, convert: same bytes, same SHA-256."""
    weights = load_mtcnn_weights()
    for net in ("pnet", "rnet", "onet"):
        state = collections.OrderedDict()
        for key in WEIGHT_SHAPES:
            if not key.startswith(net + "."):
                continue
            _, layer, kind = key.split(".")
            value = torch.from_numpy(np.array(weights[key]))
            if kind == "w" and layer.startswith("dense"):
                value = value.t()  # torch.nn.Linear stores (out, in); keep the transposed view
            state[f"{layer}.{'weight' if kind in ('w', 'alpha') else 'bias'}"] = value
        _write_legacy(torch, state, tmp_path / f"{net}.pt")
    out = tmp_path / "converted.npz"
    assert conv.convert_mtcnn(tmp_path, out) == WEIGHTS_SHA256
    assert out.read_bytes() == pathlib.Path(WEIGHTS_PATH).read_bytes()


def test_converter_refuses_zip_files_and_foreign_globals(torch, tmp_path):
    path = tmp_path / "new_format.pt"
    torch.save({"a": torch.zeros(2)}, path)  # zip format (torch >= 1.6)
    with pytest.raises(ValueError, match="zip-format"):
        conv.read_legacy_torch_file(path)
    buf = io.BytesIO()
    for obj in (conv.LEGACY_MAGIC_NUMBER, 1001, {"little_endian": True}):
        pickle.dump(obj, buf, protocol=2)
    buf.write(b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.")  # os.system('true')
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load os.system"):
        conv.read_legacy_torch_file(buf)
    with pytest.raises(ValueError, match="wrong magic number"):
        conv.read_legacy_torch_file(io.BytesIO(pickle.dumps(123, protocol=2)))


# ----------------------------------------------------------------------------- area resize, pyramid

@pytest.mark.parametrize("src,dst", [((17, 23), (7, 9)), ((20, 20), (10, 10)), ((9, 13), (24, 24)),
                                     ((31, 12), (13, 12))])
def test_area_resize_is_torch_area_interpolation_bit_for_bit(torch, rng, src, dst):
    image = rng.integers(0, 256, size=src + (3,)).astype(np.float32)
    ours = area_resize(image, dst)
    np.testing.assert_allclose(ours, area_resize_reference(image, dst), rtol=1e-6)
    t = torch.from_numpy(image).permute(2, 0, 1)[None]  # channels-last strides, as facenet-pytorch has them
    theirs = torch.nn.functional.interpolate(t, size=dst, mode="area")[0].permute(1, 2, 0).numpy()
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs)


def test_area_resize_reference_by_hand():
    image = np.arange(12, dtype=np.float64).reshape(3, 4)[:, :, None]
    # rows: 3 -> 2 windows [0, 2) and [1, 3); columns: 4 -> 2 windows [0, 2), [2, 4)
    expected = np.array([[(0 + 1 + 4 + 5) / 4, (2 + 3 + 6 + 7) / 4], [(4 + 5 + 8 + 9) / 4, (6 + 7 + 10 + 11) / 4]])
    np.testing.assert_allclose(area_resize_reference(image, (2, 2))[:, :, 0], expected)
    np.testing.assert_allclose(area_resize(image[:, :, 0], (2, 2)), expected)


@pytest.mark.parametrize("shape, dtype", [((53, 71, 3), np.uint8), ((40, 9, 3), np.float32), ((1, 1, 1), np.float64),
                                          ((1, 30, 2), np.float64), ((30, 1, 3), np.uint8), ((0, 5, 3), np.uint8)])
def test_summed_area_table_numba_equals_numpy_bit_for_bit(rng, shape, dtype):
    image = (rng.integers(0, 256, size=shape) if dtype == np.uint8 else rng.uniform(-3, 300, size=shape)).astype(dtype)
    got = summed_area_table(image)
    want = summed_area_table(image, impl="reference")
    assert got.dtype == np.float64 and got.shape == (shape[0] + 1, shape[1] + 1, shape[2])
    np.testing.assert_array_equal(got, want)
    if image.size:       # and by hand: a corner is the sum of everything above-left of it
        assert got[-1, -1, 0] == pytest.approx(float(image[:, :, 0].astype(np.float64).sum()), rel=1e-12)


@pytest.mark.parametrize("values", ["integers", "floats"])
def test_area_resize_regions_nchw_numba_equals_reference_bit_for_bit(rng, values):
    shape = (53, 71, 3)
    image = (rng.integers(0, 256, size=shape).astype(np.float32) if values == "integers"
             else rng.uniform(0, 255, size=shape).astype(np.float32))
    sat = summed_area_table(image)
    top, left = rng.integers(0, 40, size=9), rng.integers(0, 60, size=9)
    height = rng.integers(1, 53 - top + 1)
    width = rng.integers(1, 71 - left + 1)
    for out_h, out_w, shift, scale in ((24, 24, 127.5, 0.0078125), (48, 48, 127.5, 0.0078125), (5, 13, 0.0, 1.0)):
        want = area_resize_regions_nchw(sat, top, left, height, width, out_h, out_w, shift=shift, scale=scale,
                                        impl="reference")
        got = area_resize_regions_nchw(sat, top, left, height, width, out_h, out_w, shift=shift, scale=scale)
        assert got.dtype == np.float32 and got.shape == (9, 3, out_h, out_w)
        np.testing.assert_array_equal(got, want)
    # the reference is the documented composition: area resize, (x - shift) * scale, channels first
    whole = area_resize_regions_nchw(sat, [0], [0], [53], [71], 20, 30, shift=127.5, scale=0.0078125)
    np.testing.assert_array_equal(whole[0], ((area_resize(image, (20, 30)) - np.float32(127.5))
                                             * np.float32(0.0078125)).transpose(2, 0, 1))
    assert area_resize_regions_nchw(sat, [], [], [], [], 4, 4).shape == (0, 3, 4, 4)
    with pytest.raises(ValueError, match="impl must be one of"):
        area_resize_regions_nchw(sat, [0], [0], [5], [5], 4, 4, impl="cuda")


def test_pyramid_scales_by_hand():
    # 100 x 140, faces >= 20 px: first scale 12/20 = 0.6, shorter side 60 px; x 0.709 while >= 12 px:
    # 60, 42.54, 30.16, 21.38, 15.16 (10.75 stops)
    scales = pyramid_scales((100, 140), CELL_SIZE, min_face_size=20, scale_step=0.709)
    np.testing.assert_allclose(scales, [0.6 * 0.709 ** k for k in range(5)])
    assert pyramid_scales((11, 500), 12, min_face_size=20) == []  # 11 x 0.6 < 12
    assert len(pyramid_scales((12, 12), 12, min_face_size=12)) == 1


# ----------------------------------------------------------------------------- the nets against torch

def _torch_nets(torch, w):
    F = torch.nn.functional
    T = {k: torch.from_numpy(np.array(v)) for k, v in w.items()}

    def block(x, net, conv, prelu):
        return F.prelu(F.conv2d(x, T[f"{net}.{conv}.w"], T[f"{net}.{conv}.b"]), T[f"{net}.{prelu}.alpha"])

    def dense(x, net, layer):
        return F.linear(x, T[f"{net}.{layer}.w"].t(), T[f"{net}.{layer}.b"])

    def pnet(x):
        x = block(x, "pnet", "conv1", "prelu1")
        x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        x = block(block(x, "pnet", "conv2", "prelu2"), "pnet", "conv3", "prelu3")
        return (F.softmax(F.conv2d(x, T["pnet.conv4_1.w"], T["pnet.conv4_1.b"]), dim=1),
                F.conv2d(x, T["pnet.conv4_2.w"], T["pnet.conv4_2.b"]))

    def rnet(x):
        x = F.max_pool2d(block(x, "rnet", "conv1", "prelu1"), 3, 2, ceil_mode=True)
        x = F.max_pool2d(block(x, "rnet", "conv2", "prelu2"), 3, 2, ceil_mode=True)
        x = block(x, "rnet", "conv3", "prelu3").permute(0, 3, 2, 1).reshape(len(x), -1)
        x = F.prelu(dense(x, "rnet", "dense4"), T["rnet.prelu4.alpha"])
        return F.softmax(dense(x, "rnet", "dense5_1"), dim=1), dense(x, "rnet", "dense5_2")

    def onet(x):
        x = F.max_pool2d(block(x, "onet", "conv1", "prelu1"), 3, 2, ceil_mode=True)
        x = F.max_pool2d(block(x, "onet", "conv2", "prelu2"), 3, 2, ceil_mode=True)
        x = F.max_pool2d(block(x, "onet", "conv3", "prelu3"), 2, 2, ceil_mode=True)
        x = block(x, "onet", "conv4", "prelu4").permute(0, 3, 2, 1).reshape(len(x), -1)
        x = F.prelu(dense(x, "onet", "dense5"), T["onet.prelu5.alpha"])
        return (F.softmax(dense(x, "onet", "dense6_1"), dim=1), dense(x, "onet", "dense6_2"),
                dense(x, "onet", "dense6_3"))

    return pnet, rnet, onet


def test_nets_agree_with_torch_functional_nets(torch, rng):
    w = load_mtcnn_weights()
    tpnet, trnet, tonet = _torch_nets(torch, w)
    for ours, theirs, shape in ((pnet_forward, tpnet, (2, 3, 31, 40)), (rnet_forward, trnet, (5, 3, 24, 24)),
                                (onet_forward, tonet, (4, 3, 48, 48))):
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        with torch.no_grad():
            expected = theirs(torch.from_numpy(x))
        got = ours(x)
        for g, e in zip(got, expected):
            assert g.dtype == np.float32 and g.shape == tuple(e.shape)
            np.testing.assert_allclose(g, e.numpy(), rtol=1e-4, atol=2e-5)
    assert pnet_forward(np.zeros((1, 3, 12, 12), np.float32)).probs.shape == (1, 2, 1, 1)


def test_nets_refuse_wrong_inputs():
    with pytest.raises(ValueError, match="24x24"):
        rnet_forward(np.zeros((1, 3, 48, 48), np.float32))
    with pytest.raises(ValueError, match="at least 12x12"):
        pnet_forward(np.zeros((1, 3, 11, 30), np.float32))
    with pytest.raises(ValueError, match="3 \\(RGB\\) channels"):
        onet_forward(np.zeros((1, 48, 48, 3), np.float32))


# ----------------------------------------------------------------------------- detection on real photos

def _load_photo(name, data_dir):
    from PIL import Image
    if name == "astronaut.png":
        from skimage.data import astronaut
        return astronaut()
    if name == "grace_hopper.png":
        import matplotlib.cbook
        with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as img:
            return np.asarray(img.convert("RGB"))
    with Image.open(data_dir / "dlib_faces" / name) as img:
        return np.asarray(img.convert("RGB"))


@pytest.fixture(scope="module")
def reference(reference_dir):
    path = reference_dir / "mtcnn_facenet_pytorch.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return json.loads(path.read_text())


_detections = {}


def _detect(name, data_dir):
    if name not in _detections:
        _detections[name] = detect_faces(_load_photo(name, data_dir))
    return _detections[name]


@pytest.mark.readme_figure("MTCNN agrees with facenet-pytorch: 0.01 px, probabilities 1e-4")
@pytest.mark.parametrize("name", DLIB_PHOTOS + OTHER_PHOTOS)
def test_detections_equal_facenet_pytorch(name, data_dir, reference):
    """Same faces, boxes and landmarks within 0.01 px, probabilities within 1e-4 (measured: 4e-4 px, 2e-7)."""
    expected = reference[name]
    got = _detect(name, data_dir)
    assert len(got.boxes) == len(expected["boxes"]) > 0
    np.testing.assert_allclose(got.boxes, np.array(expected["boxes"]), atol=0.01, rtol=0)
    np.testing.assert_allclose(got.scores, np.array(expected["probs"]), atol=1e-4, rtol=0)
    assert got.probs is got.scores  # the old name, kept as a read-only alias
    np.testing.assert_allclose(got.landmarks, np.array(expected["landmarks"]), atol=0.01, rtol=0)


@pytest.mark.readme_figure("MTCNN finds 42 of dlib's 43 faces")
def test_recall_on_dlib_faces_is_42_of_43(data_dir):
    from scratchface.data.dlib_faces import load_dlib_faces
    from scratchface.detection.evaluation import evaluate_detections

    photos = load_dlib_faces(data_dir / "dlib_faces", "all")
    detections = [_detect(p.path.name, data_dir) for p in photos]
    result = evaluate_detections(detections, [p.boxes for p in photos], iou_threshold=0.5)
    assert result.n_ground_truth == 43
    assert result.n_true_positives == 42  # as facenet-pytorch (its boxes are ours to 0.01 px)
    assert result.n_false_positives == sum(len(d.boxes) for d in detections) - 42


def test_stages_one_by_one_give_detect_faces(data_dir):
    image = _load_photo("astronaut.png", data_dir)
    scales = pyramid_scales(image.shape, CELL_SIZE, min_face_size=20)
    stage1 = pnet_stage(image, scales, 0.6)
    stage2 = rnet_stage(image, stage1.boxes, 0.7)
    stage3 = onet_stage(image, stage2.boxes, 0.7)
    assert len(stage1.boxes) > len(stage2.boxes) >= len(stage3.boxes) == 1
    np.testing.assert_allclose(stage1.boxes[:, 2] - stage1.boxes[:, 0], stage1.boxes[:, 3] - stage1.boxes[:, 1],
                               atol=1e-3)  # squared
    direct = _detect("astronaut.png", data_dir)
    for a, b in zip(stage3, direct):
        np.testing.assert_array_equal(a, b)
    levels = image_pyramid(image, scales[:2], resample="area")
    assert [lv.image.shape for lv in levels] == [(int(512 * s + 1), int(512 * s + 1), 3) for s in scales[:2]]


# ----------------------------------------------------------------------------- bad input, API

def test_any_image_kind_works(data_dir):
    rgb = _load_photo("astronaut.png", data_dir)[:260, 100:360]  # the face, cropped: a quicker test
    box = _detect("astronaut.png", data_dir).boxes[0] - np.array([100, 0, 100, 0], np.float32)
    gray = (rgb @ np.array([0.2125, 0.7154, 0.0721])).astype(np.uint8)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    for image in (rgb, rgb / 255.0, rgb.astype(np.float32), rgba, gray):
        faces = detect_faces(image)
        assert len(faces.boxes) >= 1
        assert iou(box[None], faces.boxes).max() > 0.8


def test_no_face_and_tiny_images_give_empty_arrays():
    for image in (np.zeros((11, 11, 3), np.uint8), np.full((80, 100, 3), 128, np.uint8), np.zeros((5, 200))):
        faces = detect_faces(image)
        assert faces.boxes.shape == (0, 4) and faces.scores.shape == (0,) and faces.landmarks.shape == (0, 5, 2)
        assert faces.boxes.dtype == faces.scores.dtype == faces.landmarks.dtype == np.float32


def test_bad_arguments_raise_naming_them():
    image = np.zeros((40, 40, 3), np.uint8)
    nan = np.zeros((40, 40, 3)); nan[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="image contains NaN"):
        detect_faces(nan)
    with pytest.raises(ValueError, match="min_face_size must be at least 12"):
        detect_faces(image, min_face_size=10)
    with pytest.raises(ValueError, match=r"thresholds\[1\] must be in \(0.0, 1.0\)"):
        detect_faces(image, thresholds=(0.6, 1.2, 0.7))
    with pytest.raises(ValueError, match=r"thresholds\[0\]"):
        detect_faces(image, thresholds=(0.0, 0.7, 0.7))
    with pytest.raises(TypeError, match="thresholds must be three"):
        detect_faces(image, thresholds=(0.6, 0.7))
    for bad in (1.0, 0.0, 1.5, -0.2):
        with pytest.raises(ValueError, match="scale_step must be in"):
            detect_faces(image, scale_step=bad)
    with pytest.raises(ValueError, match="sort_by must be one of"):
        detect_faces(image, sort_by="size")
    with pytest.raises(ValueError, match="image must be gray"):
        detect_faces(np.zeros((40, 40, 2)))


def test_batch_and_orders(data_dir):
    photo = _load_photo("2008_002470.jpg", data_dir)
    single = _detect("2008_002470.jpg", data_dir)
    crop = photo[150:240, 260:340]
    batch = detect_faces_batch([crop, np.zeros((30, 30, 3), np.uint8), np.stack([crop, crop])[1]])
    assert len(batch) == 3 and len(batch[1].boxes) == 0
    assert len(batch[0].boxes) == 1
    np.testing.assert_array_equal(batch[0].boxes, batch[2].boxes)
    np.testing.assert_allclose(batch[0].boxes[0] + np.array([260, 150, 260, 150]), single.boxes[0], atol=2.0)
    areas = (single.boxes[:, 2] - single.boxes[:, 0]) * (single.boxes[:, 3] - single.boxes[:, 1])
    assert np.all(np.diff(areas) <= 0)  # largest first, as facenet-pytorch
    by_prob = detect_faces(photo, sort_by="probability")
    assert np.all(np.diff(by_prob.scores) <= 0)
    assert sorted(map(tuple, by_prob.boxes.tolist())) == sorted(map(tuple, single.boxes.tolist()))
    assert len(detect_faces_batch(np.stack([crop, crop]))) == 2
    with pytest.raises(TypeError, match="images must be a list"):
        detect_faces_batch(photo[:, :, 0])


def test_timings_and_drawing(data_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scratchface.viz.detections import draw_detections

    image = _load_photo("2008_001009.jpg", data_dir)
    timings = {}
    faces = detect_faces(image, timings=timings)
    assert set(timings) == {"pyramid", "pnet", "rnet", "onet", "nms"}
    assert all(v >= 0 for v in timings.values())
    ax = draw_detections(image, faces)
    assert len(ax.patches) == len(faces.boxes) == 2
    assert len(ax.lines) == 10  # five landmarks per face
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="landmarks must have shape"):
        draw_detections(image, faces.boxes, faces.scores, faces.landmarks[:1])


def test_weights_argument_is_used(data_dir):
    """Other weights go through: zero face logits (p = 0.5 everywhere) and a 0.6 threshold find nothing."""
    weights = dict(load_mtcnn_weights())
    weights["pnet.conv4_1.w"] = np.zeros_like(weights["pnet.conv4_1.w"])
    weights["pnet.conv4_1.b"] = np.zeros_like(weights["pnet.conv4_1.b"])
    assert len(detect_faces(_load_photo("astronaut.png", data_dir), weights=weights).boxes) == 0
    assert mtcnn_nets.load_mtcnn_weights() is mtcnn_nets.load_mtcnn_weights()  # loaded once


def test_weights_file_copy_without_checksum_loads(tmp_path):
    copy = tmp_path / "copy.npz"
    shutil.copy(WEIGHTS_PATH, copy)
    w = load_mtcnn_weights(copy)  # a user's own file: no checksum by default
    np.testing.assert_array_equal(w["onet.dense6_3.w"], load_mtcnn_weights()["onet.dense6_3.w"])
