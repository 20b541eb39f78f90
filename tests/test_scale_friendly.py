"""Scale-friendly detector: network shapes and backward, branch assignment, targets by hand, training, inference."""
import os

import numpy as np
import pytest
from gradcheck_helpers import assert_gradients

import experiments.scale_friendly as exp_sf
from scratchface.detection import anchors as A
from scratchface.detection import scale_friendly as sf
from scratchface.detection.nms import iou
from scratchface.losses import smooth_l1 as sl1
from scratchface.models.scale_friendly import (
    DEFAULT_BRANCHES,
    BranchSpec,
    ScaleFriendlyNet,
)

#: Branches for 64 x 64 toy scenes (same strides, smaller faces), to keep the tests fast.
TOY_BRANCHES = (BranchSpec("small", 4, (9.0, 13.0), (0.0, 16.0)),
                BranchSpec("medium", 16, (19.0, 27.0), (16.0, 32.0)),
                BranchSpec("large", 32, (38.0, 52.0), (32.0, np.inf)))
TOY_CHANNELS = (4, 8, 8, 8, 8, 8, 8)


def toy_model(seed=0, dtype=np.float32, **kw):
    return ScaleFriendlyNet(branches=TOY_BRANCHES, channels=TOY_CHANNELS, head_channels=8, hidden=16, rng=seed,
                            dtype=dtype, **kw)


def toy_scenes(n, rng, size=64):
    """Bright discs with two dark eyes and a mouth on blocky noise; faces 8-60 px (all three toy bands)."""
    bands = ((8, 16), (16, 32), (32, 60))
    for _ in range(n):
        image = rng.integers(0, 256, (size // 4, size // 4, 3)).repeat(4, 0).repeat(4, 1).astype(np.float64) * 0.5
        boxes = []
        for _ in range(rng.integers(1, 3)):
            low, high = bands[rng.integers(3)]
            s = round(float(np.exp(rng.uniform(np.log(low), np.log(high)))))
            x0, y0 = rng.integers(0, size - s + 1, 2)
            yy, xx = (np.mgrid[0:s, 0:s] + 0.5) / s
            face = 230.0 - 200 * ((xx - .3) ** 2 + (yy - .38) ** 2 < .012) - 200 * ((xx - .7) ** 2 + (yy - .38) ** 2
                                                                                   < .012)
            face = face - 180 * ((np.abs(xx - .5) < .2) & (np.abs(yy - .72) < .06))
            disc = (xx - .5) ** 2 + (yy - .5) ** 2 < .25
            image[y0:y0 + s, x0:x0 + s][disc] = face[disc][:, None]
            boxes.append([x0, y0, x0 + s, y0 + s])
        yield image.astype(np.uint8), np.array(boxes, np.float64)


# ----------------------------------------------------------------------------- the network

def test_feature_and_head_shapes():
    net = ScaleFriendlyNet(rng=0)
    x = np.zeros((2, 3, 64, 96), np.float32)
    feats = net.forward(x)
    assert [f.shape for f in feats] == [(2, 16, 16, 24), (2, 32, 4, 6), (2, 48, 2, 3)]
    for branch, f in zip(net.branch_modules, feats):
        logits, offsets = branch.propose(f)
        m = f.shape[2] * f.shape[3] * 3
        assert logits.shape == (2, m, 2) and offsets.shape == (2, m, 4)
        rois = np.array([[0, 3, 4, 40, 50], [1, 0, 0, 96, 64], [1, 10, 10, 12, 12.5]])
        scores, refine = branch.classify(f, rois)
        assert scores.shape == (3, 2) and refine.shape == (3, 4)
    assert net.num_params < 500_000  # shipped weights stay < 2 MB


def test_input_must_be_padded_to_32():
    with pytest.raises(ValueError, match="multiples of 32"):
        ScaleFriendlyNet(rng=0).forward(np.zeros((1, 3, 60, 64), np.float32))
    with pytest.raises(ValueError, match="three BranchSpec with strides"):
        ScaleFriendlyNet(branches=DEFAULT_BRANCHES[:2])
    with pytest.raises(ValueError, match="roi_pool must be one of"):
        ScaleFriendlyNet(roi_pool="average")


def test_proposal_layout_matches_anchors():
    """Channel 2a + c of the score conv at cell (i, j) is row (i W + j) A + a of the proposal logits."""
    net = ScaleFriendlyNet(rng=1)
    feats = net.forward(np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32))
    branch = net.medium
    logits, offsets = branch.propose(feats[1])
    hidden = branch.rpn_conv.forward(feats[1])
    raw = branch.rpn_score.forward(hidden)
    raw_off = branch.rpn_offset.forward(hidden)
    w, a = feats[1].shape[3], branch.num_anchors
    for i, j, k in ((0, 0, 0), (1, 2, 2), (3, 1, 1)):
        row = (i * w + j) * a + k
        np.testing.assert_array_equal(logits[0, row], raw[0, 2 * k:2 * k + 2, i, j])
        np.testing.assert_array_equal(offsets[0, row], raw_off[0, 4 * k:4 * k + 4, i, j])


@pytest.mark.parametrize("roi_pool", ["align", "max"])
def test_backward_matches_finite_differences(roi_pool):
    """The whole graph (backbone taps + both heads of every branch) against central differences, float64."""
    net = toy_model(seed=3, dtype=np.float64, roi_pool=roi_pool).train()
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 3, 32, 64))
    rois = np.array([[0, 2.3, 3.1, 30.2, 27.9], [0, 20.5, 1.2, 61.7, 30.6]])
    weights = None

    def outputs(x):
        feats = net.forward(x)
        outs = []
        for branch, f in zip(net.branch_modules, feats):
            outs += list(branch.propose(f)) + list(branch.classify(f, rois))
        return feats, outs

    _, outs = outputs(x)
    weights = [rng.standard_normal(o.shape) for o in outs]

    def loss(x):
        return sum(float(np.sum(o * w)) for o, w in zip(outputs(x)[1], weights))

    loss(x)
    dfeats = []
    for k, branch in enumerate(net.branch_modules):
        d = branch.classify_backward(weights[4 * k + 2], weights[4 * k + 3])
        dfeats.append(d + branch.propose_backward(weights[4 * k], weights[4 * k + 1]))
    dx = net.backward(dfeats)
    h = 1e-6
    for idx in [(0, 0, 5, 7), (0, 1, 20, 40), (0, 2, 31, 63), (0, 0, 13, 30)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        numeric = (loss(xp) - loss(xm)) / (2 * h)
        assert abs(dx[idx] - numeric) <= 1e-5 * max(1.0, abs(numeric)), (idx, dx[idx], numeric)


# ----------------------------------------------------------------------------- sizes, anchors, boxes

def test_assign_branches_by_size():
    sides = np.array([5, 10, 29.9, 30, 119, 120, 240, 400])
    boxes = np.stack([np.zeros(8), np.zeros(8), sides, sides], axis=1)
    np.testing.assert_array_equal(A.assign_branches(boxes), [0, 0, 0, 1, 1, 2, 2, 2])
    # the size is the box height (WIDER FACE): 200 wide x 20 high -> small, 5 wide x 130 high -> large
    np.testing.assert_array_equal(A.assign_branches([[0, 0, 200, 20], [0, 0, 5, 130]]), [0, 2])
    assert A.assign_branches(np.zeros((0, 4))).shape == (0,)


def test_make_anchors_by_hand():
    anchors = A.make_anchors((1, 2), 4, (2.0, 4.0))
    np.testing.assert_array_equal(anchors, [[1, 1, 3, 3], [0, 0, 4, 4], [5, 1, 7, 3], [4, 0, 8, 4]])
    assert A.make_anchors((3, 5), 16, (38.0, 60.0, 95.0)).shape == (45, 4)


def test_encode_decode_by_hand():
    t = A.encode_boxes([[0, 0, 10, 10]], [[2, 4, 12, 24]])  # centres (5, 5) -> (7, 14), height x 2
    np.testing.assert_allclose(t, [[0.2, 0.9, 0.0, np.log(2.0)]], atol=1e-15)
    rng = np.random.default_rng(0)
    corner = rng.uniform(0, 100, (20, 2))
    ref = np.concatenate([corner, corner + rng.uniform(1, 50, (20, 2))], axis=1)
    box = np.concatenate([ref[:, :2] + rng.normal(0, 5, (20, 2)), ref[:, :2] + rng.uniform(60, 90, (20, 2))], axis=1)
    np.testing.assert_allclose(A.decode_boxes(ref, A.encode_boxes(ref, box)), box, rtol=1e-12, atol=1e-10)
    with pytest.raises(ValueError, match="positive widths"):
        A.encode_boxes([[0, 0, 0, 10]], [[0, 0, 5, 5]])
    huge = A.decode_boxes([[0, 0, 10, 10]], [[0, 0, 1e6, 1e6]])
    assert np.isfinite(huge).all()


def test_label_by_iou_by_hand():
    faces = np.array([[0, 0, 10, 10], [50, 50, 90, 90]], float)   # sizes 10 (small) and 40 (medium)
    branch_of = A.assign_branches(faces)
    np.testing.assert_array_equal(branch_of, [0, 1])
    candidates = np.array([
        [0, 0, 10, 12],     # IoU 100/120 = 0.83 with the small face -> face
        [5, 0, 15, 10],     # IoU 50/150 = 0.33 -> between the thresholds -> ignored
        [20, 20, 30, 30],   # no overlap -> background
        [50, 50, 90, 90],   # the medium face itself: not the small branch's -> ignored
        [52, 52, 62, 62],   # IoU 100/1600 = 0.06 with the medium face -> background
    ], float)
    labels, matched = A.label_by_iou(candidates, faces, branch_of, 0, best_match=False)
    np.testing.assert_array_equal(labels, [1, -1, 0, -1, 0])
    np.testing.assert_array_equal(matched, [0, -1, -1, -1, -1])
    # the medium branch: candidate 3 is its face, candidate 0 overlaps another branch's face -> ignored
    labels, matched = A.label_by_iou(candidates, faces, branch_of, 1, best_match=False)
    np.testing.assert_array_equal(labels, [-1, -1, 0, 1, 0])
    np.testing.assert_array_equal(matched, [-1, -1, -1, 1, -1])
    # Faster R-CNN rule (i): a face's best candidate is a face however low the IoU
    far = np.array([[0, 0, 10, 10], [3, 3, 17, 17]], float)
    # IoUs with the face (5, 5, 16, 16): 25/196 = 0.128 and 121/196 = 0.617, both < 0.7
    labels, matched = A.label_by_iou(far, [[5, 5, 16, 16]], [0], 0, positive_iou=0.7)
    np.testing.assert_allclose(iou(far, [[5, 5, 16, 16]])[:, 0], [25 / 196, 121 / 196])
    np.testing.assert_array_equal(labels, [0, 1])
    np.testing.assert_array_equal(matched, [-1, 0])
    labels, _ = A.label_by_iou(far, np.zeros((0, 4)), [], 0)
    np.testing.assert_array_equal(labels, [0, 0])
    with pytest.raises(ValueError, match="one entry per face"):
        A.label_by_iou(far, faces, [0], 0)
    with pytest.raises(ValueError, match="negative_iou <= positive_iou"):
        A.label_by_iou(far, faces, branch_of, 0, positive_iou=0.3, negative_iou=0.5)


def test_sample_labels_counts():
    rng = np.random.default_rng(0)
    labels = np.array([1] * 10 + [0] * 100 + [-1] * 5)
    out = A.sample_labels(labels, rng=rng, num=16, positive_fraction=0.25)
    assert (out == 1).sum() == 4 and (out == 0).sum() == 12 and (out >= 0).sum() == 16
    assert set(np.nonzero(out == 1)[0]) <= set(range(10))
    few = A.sample_labels(np.array([1, 0, 0, -1]), rng=rng, num=16, positive_fraction=0.5)
    np.testing.assert_array_equal(few, [1, 0, 0, -1])


# ----------------------------------------------------------------------------- smooth L1

def test_smooth_l1_by_hand_and_gradient():
    pred = np.array([[0.5, -2.0, 0.0, 3.0], [0.1, 0.2, -0.3, 1.5]])
    loss, _ = sl1.smooth_l1_forward(pred, targets=np.zeros((2, 4)))
    # 0.125 + 1.5 + 0 + 2.5 ; 0.005 + 0.02 + 0.045 + 1.0 -> (4.125 + 1.07) / 2
    assert loss == pytest.approx((4.125 + 1.07) / 2, rel=1e-14)
    for case in sl1.gradcheck_cases(np.random.default_rng(0)):
        assert_gradients(case.forward, case.backward, case.inputs, case.kwargs)
    zero, cache = sl1.smooth_l1_forward(np.zeros((0, 4)), targets=np.zeros((0, 4)))
    assert zero == 0 and sl1.smooth_l1_backward(1.0, cache).shape == (0, 4)
    with pytest.raises(ValueError, match="shape of pred"):
        sl1.smooth_l1_forward(pred, targets=np.zeros((2, 3)))


def test_smooth_l1_matches_torch(torch):
    rng = np.random.default_rng(1)
    pred, target = rng.standard_normal((7, 4)) * 2, rng.standard_normal((7, 4))
    loss, cache = sl1.smooth_l1_forward(pred, targets=target, beta=0.5)
    p = torch.tensor(pred, requires_grad=True)
    ref = torch.nn.functional.smooth_l1_loss(p, torch.tensor(target), reduction="sum", beta=0.5) / 7
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(sl1.smooth_l1_backward(1.0, cache), p.grad.numpy(), rtol=1e-12)


# ----------------------------------------------------------------------------- the input

def test_network_input_is_luminance_padded_to_32():
    rgb = np.zeros((70, 45, 3), np.uint8)
    rgb[0, 0] = 255                      # white
    rgb[1, 1] = (255, 0, 0)              # red: luminance 0.2125 * 255
    x, height, width = sf.prepare_image(rgb)
    assert (height, width) == (70, 45) and x.shape == (1, 3, 96, 64) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 0, 0], (255 - 127.5) / 128, rtol=1e-6)
    np.testing.assert_allclose(x[0, :, 1, 1], (0.2125 * 255 - 127.5) / 128, rtol=1e-6)
    np.testing.assert_allclose(x[0, :, 2, 2], -127.5 / 128, rtol=1e-6)
    assert np.all(x[0, :, 70:, :] == 0) and np.all(x[0, :, :, 45:] == 0)   # padding is mid grey
    # a colour image and its grey version are the same input
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    gray = colour @ np.array([0.2125, 0.7154, 0.0721])
    np.testing.assert_allclose(sf.prepare_image(colour)[0], sf.prepare_image(gray / 255)[0], atol=1e-6)


# ----------------------------------------------------------------------------- training and inference

@pytest.fixture(scope="module")
def toy_training():
    rng = np.random.default_rng(0)
    model = toy_model(seed=0)
    model, history = exp_sf.train_scale_friendly(steps=300, batch_size=1, lr=3e-3, rng=rng, model=model,
                                             scenes=toy_scenes(300, np.random.default_rng(1)), progress=False)
    return model, history


def test_training_reduces_the_loss(toy_training):
    _, history = toy_training
    assert len(history) == 300
    first = np.mean([h["total"] for h in history[:50]])
    last = np.mean([h["total"] for h in history[-50:]])
    assert last < 0.75 * first, (first, last)   # measured 0.47 (seeds 1, 2: 0.58, 0.54)
    for name in ("small", "medium", "large"):
        assert np.mean([h[f"{name}_proposal"] for h in history[-50:]]) < np.mean(
            [h[f"{name}_proposal"] for h in history[:50]])


def test_trained_toy_detector_finds_toy_faces(toy_training):
    model, _ = toy_training
    scenes = list(toy_scenes(20, np.random.default_rng(99)))
    found = [sf.detect_faces_scale_friendly(im, model=model, threshold=0.05) for im, _ in scenes]
    from scratchface.detection.evaluation import evaluate_detections
    ev = evaluate_detections(found, [b for _, b in scenes])
    assert ev.average_precision > 0.2, ev.average_precision   # measured 0.58 (seeds 1, 2: 0.27, 0.43)


def test_paste_distractors_leaves_faces_alone():
    rng = np.random.default_rng(3)
    scenes = list(toy_scenes(4, rng, size=128))
    images = np.stack([im for im, _ in scenes])
    boxes = [b for _, b in scenes]
    out = exp_sf.paste_distractors(images.copy(), boxes, rng=np.random.default_rng(0), max_patches=3)
    assert out.shape == images.shape and not np.array_equal(out, images)
    for i, faces in enumerate(boxes):
        for x1, y1, x2, y2 in faces.astype(int):
            np.testing.assert_array_equal(out[i, y1:y2, x1:x2], images[i, y1:y2, x1:x2])
    same = exp_sf.paste_distractors(images.copy(), boxes, rng=np.random.default_rng(0), max_patches=0)
    np.testing.assert_array_equal(same, images)


def test_training_step_checks_its_input():
    from scratchface.nn import Adam
    model = toy_model()
    with pytest.raises(ValueError, match="one box array per image"):
        exp_sf.training_step(model, np.zeros((2, 64, 64, 3)), [np.zeros((0, 4))], rng=np.random.default_rng(0),
                         optimiser=Adam(model.parameters(), lr=1e-3))


def test_inference_on_any_image_kind():
    model = toy_model(seed=5)
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (70, 45, 3)).astype(np.uint8)
    inputs = [rgb, rgb[:, :, 0], rgb[:, :, :1], np.dstack([rgb, np.full((70, 45), 255, np.uint8)]),
              rgb.astype(np.float32) / 255, rgb.astype(np.float64)]
    for image in inputs:
        boxes, scores, landmarks = sf.detect_faces_scale_friendly(image, model=model, threshold=0.0,
                                                                  band_tolerance=None, min_face_size=1.0)
        assert landmarks is None
        assert boxes.shape == (len(scores), 4) and boxes.dtype == np.float64 and scores.dtype == np.float64
        assert len(scores) > 0   # an untrained net at threshold 0 keeps its proposals
        assert np.all(np.diff(scores) <= 0) and np.all((scores >= 0) & (scores <= 1))
        assert boxes[:, [0, 2]].min() >= 0 and boxes[:, [0, 2]].max() <= 45
        assert boxes[:, [1, 3]].min() >= 0 and boxes[:, [1, 3]].max() <= 70
    for tiny in (np.zeros((4, 4), np.uint8), np.zeros((5, 3, 3), np.float32)):
        boxes, scores, _ = sf.detect_faces_scale_friendly(tiny, model=model)
        assert boxes.shape == (0, 4) and scores.shape == (0,)


def test_inference_argument_errors():
    model = toy_model()
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="threshold"):
        sf.detect_faces_scale_friendly(image, model=model, threshold=1.5)
    with pytest.raises(ValueError, match="band_tolerance must be >= 1"):
        sf.detect_faces_scale_friendly(image, model=model, band_tolerance=0.5)
    with pytest.raises(TypeError, match="must be a ScaleFriendlyNet"):
        sf.detect_faces_scale_friendly(image, model={"weights": 1})
    with pytest.raises(ValueError, match="NaN"):
        sf.detect_faces_scale_friendly(np.full((64, 64), np.nan), model=model)


def test_weights_round_trip(tmp_path):
    model = toy_model(seed=4)
    path = tmp_path / "a.npz"
    digest = sf.save_scale_friendly_model(model, path)
    assert sf.save_scale_friendly_model(model, tmp_path / "b.npz") == digest  # reproducible bytes
    default = ScaleFriendlyNet(rng=4)
    sf.save_scale_friendly_model(default, path)
    loaded = sf.load_scale_friendly_model(path)
    for key, value in default.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value)
    with pytest.raises(ValueError, match="corrupt or modified"):
        sf.load_scale_friendly_model(path, sha256="0" * 64)
    sf.save_scale_friendly_model(model, tmp_path / "toy.npz")
    with pytest.raises(ValueError, match="default ScaleFriendlyNet"):
        sf.load_scale_friendly_model(tmp_path / "toy.npz")
    with pytest.raises(FileNotFoundError):
        sf.load_scale_friendly_model(tmp_path / "missing.npz")


@pytest.mark.skipif(not os.path.isfile(sf.WEIGHTS_PATH), reason="no shipped scale-friendly weights")
def test_shipped_detector_on_synthetic_scenes(data_dir):
    from scratchface.detection.evaluation import evaluate_detections
    from scratchface.detection.synthetic import synthetic_face_scenes

    scenes = list(synthetic_face_scenes(6, rng=np.random.default_rng(2024), data_dir=data_dir))
    found = [sf.detect_faces_scale_friendly(s[0], threshold=0.05) for s in scenes]
    ev = evaluate_detections(found, [s[1] for s in scenes])
    assert ev.average_precision > 0.8, ev.average_precision   # measured 0.98 (seeds 7, 8: 0.92, 1.0)
    # a default load checks the shipped file's SHA-256 and returns the cached model
    assert sf.load_scale_friendly_model() is sf.load_scale_friendly_model()
