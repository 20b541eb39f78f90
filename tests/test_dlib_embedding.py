"""dlib's 128-d descriptor: the TF.js converter, the shipped weights, the ResNet against torch and dlib."""
import hashlib
import io
import json
import os
import pathlib
import shutil
import tarfile

import numpy as np
import pytest

from scratchface.models.dlib_resnet import (
    WEIGHT_SHAPES,
    WEIGHTS_PATH,
    WEIGHTS_SHA256,
    dlib_resnet_forward,
    embed_crops,
    load_dlib_weights,
    preprocess,
)
import experiments.convert_dlib as conv

# dlib 20.0.1's own descriptors (dlib.face_recognition_model_v1 with
# dlib_face_recognition_resnet_model_v1.dat from face_recognition_models 0.3.0,
# compute_face_descriptor(chip)) of two 150x150 uint8 chips made below:
# skimage.data.astronaut()[40:190, 150:300] and default_rng(0).integers(0, 256, (150, 150, 3)).
DLIB_ASTRONAUT = np.array([
    -0.04501, 0.05310, -0.01332, 0.06943, -0.13986, 0.02157, -0.02379, -0.10977, 0.05702, -0.04658, 0.16903,
    -0.09860, -0.28191, -0.09999, 0.04087, 0.12593, -0.10840, -0.08275, -0.13458, -0.06600, 0.01567,
    0.06826, 0.00693, 0.03771, -0.10112, -0.38061, -0.07683, -0.12321, 0.08979, -0.06199, -0.10376, 0.06061,
    -0.16398, -0.05588, 0.04460, 0.03334, -0.03956, -0.08470, 0.17574, -0.06396, -0.20968, 0.01985, 0.05609,
    0.24810, 0.23135, -0.02776, -0.00214, -0.01550, 0.13895, -0.17718, 0.00574, 0.14525, 0.20830, 0.07371,
    0.05022, -0.12071, 0.00680, 0.14163, -0.24208, 0.02397, 0.00456, -0.10328, 0.00337, -0.06270, 0.16703,
    0.01013, -0.11010, -0.16981, 0.12609, -0.21396, -0.01449, 0.08528, -0.15155, -0.20491, -0.38041,
    0.04735, 0.40805, 0.17171, -0.23676, -0.01183, -0.02996, -0.07955, 0.04470, 0.07850, -0.04285, -0.06078,
    -0.14777, 0.04484, 0.20140, -0.07769, -0.02670, 0.22214, 0.01818, -0.00786, 0.00078, 0.10123, -0.13145,
    -0.04857, -0.06320, -0.01179, 0.06271, -0.13417, 0.02461, 0.15941, -0.18037, 0.21694, -0.02830, 0.00600,
    -0.00850, -0.05344, -0.07545, 0.00663, 0.17136, -0.25941, 0.14247, 0.15846, 0.04473, 0.12772, -0.03227,
    0.03258, -0.06942, -0.03531, -0.22247, -0.13961, 0.06302, -0.04801, 0.03238, 0.04596
])
DLIB_NOISE = np.array([
    -0.09219, 0.08417, 0.04316, -0.01174, -0.15688, -0.06621, -0.03829, -0.11147, 0.10524, -0.04207,
    0.14060, -0.06614, -0.20106, -0.06408, -0.05440, 0.10347, -0.08640, -0.07510, -0.03760, -0.13409,
    0.01831, 0.04643, -0.02484, 0.00609, -0.03712, -0.24988, -0.06217, -0.07794, 0.08965, -0.09715,
    -0.00647, 0.03365, -0.25115, -0.04225, -0.03332, 0.05870, -0.02797, -0.07373, 0.17336, -0.00626,
    -0.10319, 0.06060, 0.05657, 0.20555, 0.19812, -0.00970, -0.00625, -0.08353, 0.14305, -0.21690, 0.01413,
    0.16848, 0.09920, 0.06691, 0.03247, -0.09981, 0.00519, 0.10188, -0.18237, 0.09345, 0.09194, -0.03865,
    -0.08284, -0.11561, 0.21494, 0.09044, -0.06845, -0.11147, 0.17218, -0.20701, -0.06123, 0.08022,
    -0.07938, -0.11653, -0.27078, 0.11257, 0.38754, 0.20801, -0.13327, 0.02381, -0.09739, -0.01217, 0.02496,
    0.02937, -0.06326, -0.04900, -0.05355, 0.05550, 0.20086, -0.00284, 0.00822, 0.22740, 0.03704, 0.06110,
    -0.06416, -0.00052, -0.06299, -0.06643, -0.04067, -0.02421, 0.05239, -0.14765, 0.06319, 0.16264,
    -0.19877, 0.14692, -0.04168, -0.00228, 0.01067, 0.04019, 0.00895, 0.02863, 0.13308, -0.22280, 0.25812,
    0.12098, 0.00472, 0.09527, -0.00894, 0.12711, -0.04754, -0.05788, -0.10515, -0.11459, -0.02195,
    -0.02944, 0.02620, 0.08593
])

#: Byte size of face-api's face_recognition_model.bin (npm listing of @vladmandic/face-api@1.7.15).
SHARD_BYTES = 6444032
#: The tensors face-api left unquantised (float32): the conv64 blocks' filters.
FLOAT_TENSORS = {"conv64_down.conv1.conv.filters", "conv64_down.conv2.conv.filters", "conv64_1.conv1.conv.filters",
                 "conv64_1.conv2.conv.filters", "conv64_2.conv1.conv.filters", "conv64_2.conv2.conv.filters",
                 "conv64_3.conv1.conv.filters", "conv64_3.conv2.conv.filters"}


def astronaut_chip():
    from skimage.data import astronaut
    return np.ascontiguousarray(astronaut()[40:190, 150:300])


def noise_chip():
    return np.random.default_rng(0).integers(0, 256, (150, 150, 3), dtype=np.uint8)


def cosine(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


# ----------------------------------------------------------------------------- converter
def _manifest(entries, path="shard.bin"):
    return [{"paths": [path], "weights": entries}]


def test_tfjs_reader_dequantises_and_slices_by_hand():
    q = np.array([[0, 1], [254, 255]], dtype=np.uint8)
    f = np.array([1.5, -2.25, 3.0], dtype="<f4")
    manifest = _manifest([
        {"name": "a/conv/filters", "shape": [2, 2], "dtype": "float32",
         "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}},
        {"name": "b", "shape": [3], "dtype": "float32"},
    ])
    tensors = conv.read_tfjs_weights(manifest, q.tobytes() + f.tobytes())
    assert tensors["a/conv/filters"].q.tolist() == [[0, 1], [254, 255]]
    # value = q * scale + min, worked by hand
    assert tensors["a/conv/filters"].dequantize().tolist() == [[-1.0, -0.5], [126.0, 126.5]]
    assert tensors["b"].tolist() == [1.5, -2.25, 3.0]
    # several shards of one group are concatenated in the order of "paths"
    manifest2 = [{"paths": ["s1", "s2"], "weights": manifest[0]["weights"]}]
    raw = q.tobytes() + f.tobytes()
    tensors2 = conv.read_tfjs_weights(manifest2, {"s1": raw[:3], "s2": raw[3:]})
    assert tensors2["b"].tolist() == [1.5, -2.25, 3.0]


def test_tfjs_reader_refuses_inconsistent_files():
    entries = [{"name": "b", "shape": [3], "dtype": "float32"}]
    with pytest.raises(ValueError, match="shard too short"):
        conv.read_tfjs_weights(_manifest(entries), b"\0" * 11)
    with pytest.raises(ValueError, match="4 bytes more"):
        conv.read_tfjs_weights(_manifest(entries), b"\0" * 16)
    with pytest.raises(ValueError, match="unsupported dtype"):
        conv.read_tfjs_weights(_manifest([{"name": "c", "shape": [1], "dtype": "complex64"}]), b"\0" * 8)
    with pytest.raises(ValueError, match="were not given"):
        conv.read_tfjs_weights(_manifest(entries), {"other.bin": b"\0" * 12})
    with pytest.raises(ValueError, match="non-empty list"):
        conv.read_tfjs_weights({}, b"")


def test_converter_transposes_filters_to_nchw_and_writes_reproducibly(tmp_path):
    rng = np.random.default_rng(1)
    q = rng.integers(0, 256, (3, 2, 4, 5), dtype=np.uint8)          # TF layout (KH, KW, C, F)
    fc = rng.standard_normal((4, 2)).astype("<f4")
    manifest = _manifest([
        {"name": "x/conv/filters", "shape": [3, 2, 4, 5], "dtype": "float32",
         "quantization": {"dtype": "uint8", "scale": 0.25, "min": 2.0}},
        {"name": "fc", "shape": [4, 2], "dtype": "float32"}])
    arrays = conv.to_npz_arrays(conv.read_tfjs_weights(manifest, q.tobytes() + fc.tobytes()))
    assert sorted(arrays) == ["fc", "x.conv.filters.min", "x.conv.filters.q", "x.conv.filters.scale"]
    assert arrays["x.conv.filters.q"].shape == (5, 4, 3, 2)            # (F, C, KH, KW)
    for kh, kw, c, f in [(0, 0, 0, 0), (2, 1, 3, 4), (1, 0, 2, 3)]:
        assert arrays["x.conv.filters.q"][f, c, kh, kw] == q[kh, kw, c, f]
    assert float(arrays["x.conv.filters.scale"]) == 0.25 and float(arrays["x.conv.filters.min"]) == 2.0
    np.testing.assert_array_equal(arrays["fc"], fc)
    digests = {conv.write_npz(arrays, tmp_path / f"w{k}.npz") for k in range(2)}
    assert len(digests) == 1                                           # same bytes every time
    with np.load(tmp_path / "w0.npz", allow_pickle=False) as npz:
        assert npz["x.conv.filters.q"].dtype == np.uint8


def test_converter_reads_an_npm_tarball_layout(tmp_path):
    q = np.arange(6, dtype=np.uint8)
    manifest = _manifest([{"name": "fc", "shape": [2, 3], "dtype": "float32",
                           "quantization": {"dtype": "uint8", "scale": 2.0, "min": 1.0}}], conv.SHARD_NAME)
    tgz = tmp_path / "face-api.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for name, data in ((conv.MANIFEST_NAME, json.dumps(manifest).encode()), (conv.SHARD_NAME, q.tobytes())):
            info = tarfile.TarInfo(f"package/model/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = tmp_path / "out.npz"
    digest = conv.convert_dlib(tgz, out)
    assert digest == hashlib.sha256(out.read_bytes()).hexdigest()
    with np.load(out, allow_pickle=False) as npz:
        assert npz["fc.q"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert conv.main([]) == 2


@pytest.mark.skipif(not os.environ.get("SCRATCHFACE_FACE_API_TGZ"),
                    reason="set SCRATCHFACE_FACE_API_TGZ to `npm pack @vladmandic/face-api@1.7.15`'s tarball")
def test_converter_reproduces_the_shipped_file(tmp_path):
    assert conv.convert_dlib(os.environ["SCRATCHFACE_FACE_API_TGZ"], tmp_path / "w.npz") == WEIGHTS_SHA256


# ----------------------------------------------------------------------------- shipped weights
def test_shipped_weights_checksum_size_and_shapes():
    raw = pathlib.Path(WEIGHTS_PATH).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == WEIGHTS_SHA256
    assert len(raw) < 7_000_000                                        # kept quantised: small
    weights = load_dlib_weights()
    assert set(weights) == set(WEIGHT_SHAPES) and len(weights) == 29 * 4 + 1   # 29 conv + affine, fc
    for key, shape in WEIGHT_SHAPES.items():
        assert weights[key].shape == shape and weights[key].dtype == np.float32
        assert not weights[key].flags.writeable
    # the architecture accounts for every byte of face-api's shard: 1 byte per quantised value, 4 per float
    n_bytes = sum(int(np.prod(s)) * (4 if k in FLOAT_TENSORS else 1) for k, s in WEIGHT_SHAPES.items())
    assert n_bytes == SHARD_BYTES
    with np.load(WEIGHTS_PATH, allow_pickle=False) as npz:
        assert {k for k in npz.files if not k.endswith((".q", ".scale", ".min"))} == FLOAT_TENSORS
        q, scale, low = npz["fc.q"], float(npz["fc.scale"]), float(npz["fc.min"])
    np.testing.assert_allclose(weights["fc"], q * scale + low, rtol=1e-6)


def test_corrupt_truncated_or_foreign_weight_files_are_refused(tmp_path):
    bad = tmp_path / "flipped.npz"
    raw = bytearray(pathlib.Path(WEIGHTS_PATH).read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt or modified: SHA-256"):
        load_dlib_weights(bad, sha256=WEIGHTS_SHA256)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(pathlib.Path(WEIGHTS_PATH).read_bytes()[:100_000])
    with pytest.raises(ValueError, match="cannot be read as a NumPy .npz"):
        load_dlib_weights(truncated)
    text = tmp_path / "text.npz"
    text.write_text("not weights")
    with pytest.raises(ValueError, match="cannot be read as a NumPy .npz"):
        load_dlib_weights(text)
    pickled = tmp_path / "pickled.npz"
    with np.load(WEIGHTS_PATH) as npz:
        arrays = {k: npz[k] for k in npz.files}
    np.savez(pickled, **{**arrays, "fc": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match="cannot be read as a NumPy .npz"):
        load_dlib_weights(pickled)
    missing = tmp_path / "missing.npz"
    np.savez(missing, **{k: v for k, v in arrays.items() if not k.startswith("fc")})
    with pytest.raises(ValueError, match="lacks the array 'fc'"):
        load_dlib_weights(missing)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_dlib_weights(tmp_path / "nothing.npz")
    copy = tmp_path / "copy.npz"                                       # a user's copy: no checksum by default
    shutil.copy(WEIGHTS_PATH, copy)
    assert load_dlib_weights(copy)["fc"].shape == (256, 128)


# ----------------------------------------------------------------------------- the network
def _torch_dlib_resnet(torch, x, weights):
    """face-api.js's FaceRecognitionNet.forwardInput transliterated to torch (NCHW), dlib's input scale."""
    F = torch.nn.functional
    w = {k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in weights.items()}

    def conv_layer(x, p, stride, relu, same=True):
        out = F.conv2d(x, w[f"{p}.conv.filters"], w[f"{p}.conv.bias"], stride=stride, padding=1 if same else 0)
        out = out * w[f"{p}.scale.weights"][:, None, None] + w[f"{p}.scale.biases"][:, None, None]
        return F.relu(out) if relu else out

    def residual(x, p):
        out = conv_layer(conv_layer(x, f"{p}.conv1", 1, True), f"{p}.conv2", 1, False)
        return F.relu(out + x)

    def residual_down(x, p):
        out = conv_layer(x, f"{p}.conv1", 2, True, same=False)
        out = conv_layer(out, f"{p}.conv2", 1, False)
        pooled = F.avg_pool2d(x, 2, 2)
        if pooled.shape[2] != out.shape[2]:            # face-api: concat a zero row, then a zero column
            out = torch.cat([out, torch.zeros_like(out[:, :, :1])], 2)
            out = torch.cat([out, torch.zeros_like(out[:, :, :, :1])], 3)
        if pooled.shape[1] != out.shape[1]:
            pooled = torch.cat([pooled, torch.zeros_like(pooled)], 1)
        return F.relu(pooled + out)

    out = conv_layer(x, "conv32_down", 2, True, same=False)
    out = F.max_pool2d(out, 3, 2)
    for p in ("conv32_1", "conv32_2", "conv32_3"):
        out = residual(out, p)
    out = residual_down(out, "conv64_down")
    for p in ("conv64_1", "conv64_2", "conv64_3"):
        out = residual(out, p)
    out = residual_down(out, "conv128_down")
    for p in ("conv128_1", "conv128_2"):
        out = residual(out, p)
    out = residual_down(out, "conv256_down")
    for p in ("conv256_1", "conv256_2"):
        out = residual(out, p)
    out = residual_down(out, "conv256_down_out")
    return out.mean(dim=(2, 3)) @ w["fc"]


def test_network_equals_face_api_structure_in_torch(torch):
    x = preprocess(astronaut_chip()).astype(np.float64)
    ours = dlib_resnet_forward(x)
    theirs = _torch_dlib_resnet(torch, torch.from_numpy(x), load_dlib_weights()).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-10)


def test_descriptors_match_dlib_recorded_values():
    ours = embed_crops(np.stack([astronaut_chip(), noise_chip()]))
    assert ours.shape == (2, 128) and ours.dtype == np.float32
    # 8-bit quantised weights: within a few hundredths of dlib's float weights
    for mine, dlib_value in zip(ours, (DLIB_ASTRONAUT, DLIB_NOISE)):
        assert cosine(mine, dlib_value) >= 0.999
        assert np.linalg.norm(mine - dlib_value) < 0.06
    # batch of one (and a single (150, 150, 3) crop) gives the same as the batch
    np.testing.assert_allclose(embed_crops(astronaut_chip())[0], ours[0], rtol=1e-4, atol=1e-5)


def test_preprocess_is_dlibs_mean_and_256():
    chip = np.zeros((150, 150, 3), np.uint8)
    chip[0, 0] = (255, 0, 128)
    x = preprocess(chip)
    assert x.shape == (1, 3, 150, 150) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 0, 0], [(255 - 122.782) / 256, -117.001 / 256, (128 - 104.298) / 256],
                               rtol=1e-6)
    np.testing.assert_allclose(x[0, :, 1, 1], [-122.782 / 256, -117.001 / 256, -104.298 / 256], rtol=1e-6)


def test_block_output_sizes_by_hand():
    _, feats = dlib_resnet_forward(preprocess(noise_chip()), return_features=True)
    # 150 -conv7/2-> 72 -pool3/2-> 35 -> 17 -> 8 -> 3 padded to 4 -> 1 padded to 2
    expected = {"conv32_down": 35, "conv32_3": 35, "conv64_down": 17, "conv64_3": 17, "conv128_down": 8,
                "conv256_down": 4, "conv256_2": 4, "conv256_down_out": 2}
    channels = {"conv32_down": 32, "conv32_3": 32, "conv64_down": 64, "conv64_3": 64, "conv128_down": 128,
                "conv256_down": 256, "conv256_2": 256, "conv256_down_out": 256}
    for name, size in expected.items():
        assert feats[name].shape == (1, channels[name], size, size), name
    assert all((f >= 0).all() for f in feats.values())                # every block ends in a ReLU


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"crops must be RGB 150x150 faces"):
        preprocess(np.zeros((2, 112, 92, 3), np.uint8))
    with pytest.raises(ValueError, match="crops must be a 3 or 4-D array"):
        preprocess(np.zeros((150, 150), np.uint8))
    with pytest.raises(TypeError, match="crops must be an array"):
        preprocess([[0]])
    with pytest.raises(ValueError, match="NaN or infinity"):
        preprocess(np.full((150, 150, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3, 150, 150\)"):
        dlib_resnet_forward(np.zeros((1, 3, 112, 112), np.float32))
    with pytest.raises(ValueError, match="batch_size must be"):
        embed_crops(noise_chip(), batch_size=0)


# ----------------------------------------------------------------------------- dlib itself, when installed
@pytest.fixture(scope="module")
def dlib_facerec():
    dlib = pytest.importorskip("dlib", reason="dlib-bin not installed: live comparison with dlib skipped")
    import importlib.util
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None:
        pytest.skip("face-recognition-models not installed: dlib's .dat model file is missing")
    models = pathlib.Path(spec.submodule_search_locations[0]) / "models"
    return dlib, dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat")), models


def test_descriptors_match_dlib_live(dlib_facerec):
    _, facerec, _ = dlib_facerec
    rng = np.random.default_rng(7)
    chips = [astronaut_chip(), astronaut_chip()[:, ::-1], noise_chip(),
             np.clip(astronaut_chip() * 0.6 + rng.normal(0, 8, (150, 150, 3)), 0, 255).astype(np.uint8)]
    ours = embed_crops(np.stack(chips))
    for mine, chip in zip(ours, chips):
        theirs = np.array(facerec.compute_face_descriptor(np.ascontiguousarray(chip)))
        assert cosine(mine, theirs) >= 0.999


def test_pipeline_alignment_is_close_to_dlibs_own(dlib_facerec):
    from skimage.data import astronaut

    from scratchface.recognition.pipeline import detect_and_embed
    dlib, facerec, models = dlib_facerec
    image = astronaut()
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    box = detector(image, 1)[0]
    theirs = np.array(facerec.compute_face_descriptor(image, predictor(image, box)))
    ours = detect_and_embed(image).embeddings[0]
    # MTCNN's five points and dlib's five differ; the descriptors stay far inside the 0.6 threshold
    assert np.linalg.norm(ours - theirs) < 0.25
