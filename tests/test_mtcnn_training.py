"""MTCNN training pieces: IoU sample rules, targets, multi-task loss (gradchecked), OHEM, a short P-Net run."""
import numpy as np
import pytest

from scratchface.detection import mtcnn_training as T
from scratchface.detection.align import landmarks_68_to_5
from scratchface.detection.mtcnn import _regress
from scratchface.detection.pyramid import area_resize_reference
from scratchface.detection.nms import iou
from scratchface.gradcheck import PASS_THRESHOLD, check_layer
from scratchface.losses import mtcnn as M


def test_sample_types_follow_the_lecture_iou_rules():
    ious = np.array([0.0, 0.29, 0.3, 0.35, 0.399, 0.4, 0.5, 0.65, 0.651, 0.9, 1.0])
    expected = [M.NEGATIVE, M.NEGATIVE, T.IGNORED, T.IGNORED, T.IGNORED, M.PART, M.PART, M.PART,
                M.POSITIVE, M.POSITIVE, M.POSITIVE]
    np.testing.assert_array_equal(T.sample_types(ious), expected)


def test_task_indicators_are_the_papers_betas():
    labels = np.array([M.POSITIVE, M.NEGATIVE, M.PART, M.LANDMARK])
    det, box, mark = M.task_indicators(labels)
    np.testing.assert_array_equal(det, [True, True, False, False])   # classification: pos + neg
    np.testing.assert_array_equal(box, [True, False, True, False])   # box regression: pos + part
    np.testing.assert_array_equal(mark, [False, False, False, True])  # landmarks: landmark faces
    assert M.TASK_WEIGHTS == {"pnet": (1.0, 0.5, 0.5), "rnet": (1.0, 0.5, 0.5), "onet": (1.0, 0.5, 1.0)}


def test_box_targets_invert_the_detectors_regression(rng):
    crops = np.array([[10, 20, 34, 44], [0, 0, 12, 12], [5, 7, 105, 107]], dtype=np.float64)
    faces = crops + rng.uniform(-5, 5, crops.shape)
    targets = T.box_targets(crops, faces)
    # P-Net's regression x1 + dx1 * (x2 - x1) brings each crop back onto its face
    np.testing.assert_allclose(_regress(crops.astype(np.float32), targets, plus_one=False), faces, atol=1e-4)
    marks = rng.uniform(10, 30, (3, 5, 2))
    t = T.landmark_targets(crops, marks)
    np.testing.assert_allclose(t[:, :5] * (crops[:, 2:3] - crops[:, 0:1]) + crops[:, 0:1], marks[:, :, 0], atol=1e-4)
    np.testing.assert_allclose(t[:, 5:] * (crops[:, 3:4] - crops[:, 1:2]) + crops[:, 1:2], marks[:, :, 1], atol=1e-4)


def test_generated_samples_obey_their_labels(rng):
    image = rng.integers(0, 256, (120, 160, 3)).astype(np.uint8)
    faces = np.array([[30, 20, 70, 62], [100, 50, 140, 90]], dtype=np.float64)
    marks = np.stack([f[:2] + (f[2:] - f[:2]) * np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8],
                                                          [0.65, 0.8]]) for f in faces])
    s = T.generate_samples(image, faces, rng=rng, size=12, negatives=60, around_faces=30, landmarks=marks)
    assert s.images.shape == (len(s), 3, 12, 12) and s.images.dtype == np.float32
    assert {M.POSITIVE, M.NEGATIVE, M.PART, M.LANDMARK} <= set(s.labels.tolist())
    assert np.abs(s.images).max() <= 1.0
    for label in (M.POSITIVE, M.PART):  # crops overlap their face: sides move by less than a crop width
        t = s.box_targets[s.labels == label]
        assert len(t) > 0 and np.all(np.abs(t) < 1.0) and np.any(t != 0)
    neg = s.labels == M.NEGATIVE
    np.testing.assert_array_equal(s.box_targets[neg], 0)
    lm = s.labels == M.LANDMARK
    assert np.all((s.landmark_targets[lm] > 0) & (s.landmark_targets[lm] < 1))
    np.testing.assert_array_equal(s.landmark_targets[~lm], 0)


def test_generated_sample_pixels_and_ious_are_right(rng):
    """Draw the crops from a seeded rng twice: once through generate_samples, once by hand."""
    image = rng.integers(0, 256, (90, 110)).astype(np.uint8)
    faces = np.array([[20, 15, 60, 55]], dtype=np.float64)
    s = T.generate_samples(image, faces, rng=np.random.default_rng(7), size=12, negatives=40, around_faces=40)
    r = np.random.default_rng(7)
    crops = np.concatenate([T._random_square_crops(r, 40, 110, 90, faces, "negative"),
                            T._random_square_crops(r, 40, 110, 90, faces, "around")])
    crops = crops[(crops[:, 0] >= 0) & (crops[:, 1] >= 0) & (crops[:, 2] <= 110) & (crops[:, 3] <= 90)]
    types = T.sample_types(iou(crops.astype(float), faces)[:, 0])
    crops, types = crops[types != T.IGNORED], types[types != T.IGNORED]
    np.testing.assert_array_equal(s.labels, types)
    for k in range(0, len(crops), 7):  # pixels: the crop, area-averaged to 12x12, normalised
        x1, y1, x2, y2 = crops[k]
        patch = image[y1:y2, x1:x2].astype(np.float64)
        if (x2 - x1) % 12 == 0:  # integer factor: area averaging = block means
            f = (x2 - x1) // 12
            expected = patch.reshape(12, f, 12, f).mean(axis=(1, 3))
            np.testing.assert_allclose(s.images[k, 0], (expected - 127.5) / 128, atol=1e-5)
        else:
            expected = area_resize_reference(patch, (12, 12))  # the loops (tested against torch)
            np.testing.assert_allclose(s.images[k, 0], (expected - 127.5) / 128, atol=1e-5)


def test_ohem_keeps_the_hardest_seventy_percent():
    losses = np.array([0.1, 5.0, 0.3, 2.0, 0.2, 4.0, 0.05, 3.0, 1.0, 0.4])
    keep = M.ohem_select(losses, 0.7)
    np.testing.assert_array_equal(keep, [1, 2, 3, 5, 7, 8, 9])  # 7 of 10, by loss: 5, 4, 3, 2, 1, 0.4, 0.3
    assert len(M.ohem_select(losses[:3], 0.7)) == 2
    assert len(M.ohem_select(losses[:1], 0.7)) == 1
    assert len(M.ohem_select(np.zeros(0), 0.7)) == 0


def _loss_inputs(rng, n=8):
    labels = np.array(([M.POSITIVE, M.NEGATIVE, M.PART, M.LANDMARK] * n)[:n])
    inputs = {"cls_logits": rng.standard_normal((n, 2)) * 2, "box_pred": rng.standard_normal((n, 4)),
              "landmark_pred": rng.uniform(0, 1, (n, 10))}
    targets = {"labels": labels, "box_targets": rng.standard_normal((n, 4)) * 0.2,
               "landmark_targets": rng.uniform(0, 1, (n, 10))}
    return inputs, targets


def test_multitask_loss_by_hand(rng):
    inputs, kw = _loss_inputs(rng, 8)
    loss, _ = M.mtcnn_loss_forward(**inputs, **kw, task_weights=(1.0, 0.5, 1.0), ohem_ratio=1.0)
    z, y = inputs["cls_logits"], kw["labels"]
    ce = [np.log(np.exp(z[i]).sum()) - z[i, y[i]] for i in range(8) if y[i] in (0, 1)]
    box = [np.sum((inputs["box_pred"][i] - kw["box_targets"][i]) ** 2) for i in range(8) if y[i] in (1, -1)]
    lm = [np.sum((inputs["landmark_pred"][i] - kw["landmark_targets"][i]) ** 2) for i in range(8) if y[i] == -2]
    assert loss == pytest.approx(np.mean(ce) + 0.5 * np.mean(box) + 1.0 * np.mean(lm), rel=1e-12)
    # with OHEM 0.7 of the 4 classification samples: the 2 hardest count
    loss_ohem, cache = M.mtcnn_loss_forward(**inputs, **kw, task_weights=(1.0, 0.5, 1.0), ohem_ratio=0.7)
    assert len(cache.cls_index) == 2
    assert loss_ohem == pytest.approx(np.mean(sorted(ce)[-2:]) + 0.5 * np.mean(box) + np.mean(lm), rel=1e-12)


@pytest.mark.parametrize("net,ratio", [("pnet", 1.0), ("pnet", 0.7), ("onet", 0.3)])
def test_multitask_loss_gradcheck(rng, ratio, net):
    inputs, kw = _loss_inputs(rng, 11)
    result = check_layer(M.mtcnn_loss_forward, M.mtcnn_loss_backward, inputs,
                         dict(kw, task_weights=M.TASK_WEIGHTS[net], ohem_ratio=ratio))
    assert result.passed, result.errors


def test_gradcheck_cases_for_the_cli(rng):
    cases = M.gradcheck_cases(rng)
    assert len(cases) == 2
    for case in cases:
        assert case.run().max_error < PASS_THRESHOLD


def test_multitask_loss_gradients_only_where_the_betas_say(rng):
    inputs, kw = _loss_inputs(rng, 8)
    _, cache = M.mtcnn_loss_forward(**inputs, **kw, ohem_ratio=1.0)
    dcls, dbox, dlm = M.mtcnn_loss_backward(1.0, cache)
    det, box, mark = M.task_indicators(kw["labels"])
    assert np.all(dcls[~det] == 0) and np.all(dcls[det] != 0)
    assert np.all(dbox[~box] == 0) and np.all(dbox[box] != 0)
    assert np.all(dlm[~mark] == 0) and np.all(dlm[mark] != 0)
    keep = kw["labels"] != M.LANDMARK  # a net without the landmark head: no landmark samples
    _, cache = M.mtcnn_loss_forward(inputs["cls_logits"][keep], inputs["box_pred"][keep], None,
                                    labels=kw["labels"][keep], box_targets=kw["box_targets"][keep],
                                    landmark_targets=None)
    assert M.mtcnn_loss_backward(1.0, cache)[2] is None


def test_multitask_loss_bad_input(rng):
    inputs, kw = _loss_inputs(rng, 4)
    with pytest.raises(ValueError, match="labels must be 4 values"):
        M.mtcnn_loss_forward(**inputs, **dict(kw, labels=np.array([1, 0, 2, -1])))
    with pytest.raises(ValueError, match="ohem_ratio must be in"):
        M.mtcnn_loss_forward(**inputs, **kw, ohem_ratio=0.0)
    with pytest.raises(ValueError, match="need landmark_pred"):
        M.mtcnn_loss_forward(inputs["cls_logits"], inputs["box_pred"], None, **kw)
    with pytest.raises(ValueError, match="box_targets must have shape"):
        M.mtcnn_loss_forward(**inputs, **dict(kw, box_targets=np.zeros((4, 3))))
    with pytest.raises(ValueError, match="task_weights must be three"):
        M.mtcnn_loss_forward(**inputs, **kw, task_weights=(1.0, 0.5))


def test_five_points_from_the_68():
    p = np.zeros((1, 68, 2))
    p[0, 36:42] = [10, 20]
    p[0, 42:48] = [30, 20]
    p[0, 30] = [20, 30]
    p[0, 48] = [12, 40]
    p[0, 54] = [28, 40]
    np.testing.assert_array_equal(landmarks_68_to_5(p)[0], [[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]])


@pytest.mark.slow
def test_short_pnet_training_run_learns_faces(data_dir):
    """P-Net from scratch on dlib training photos + 35 ORL people; held out: dlib test photos + 5 other people."""
    rng = np.random.default_rng(2016)
    train = T.face_samples_from_data(data_dir, rng=rng, split="training", negatives=400, around_faces=40,
                                     orl_subjects=range(1, 36), orl_around=3)
    test = T.face_samples_from_data(data_dir, rng=rng, split="testing", negatives=60, around_faces=10,
                                    orl_subjects=range(36, 41), orl_around=3, landmarks=False)
    assert set(np.unique(train.labels)) == {M.POSITIVE, M.NEGATIVE, M.PART, M.LANDMARK}
    net, history = T.train_pnet(train, rng=rng, epochs=8, batch_size=128, lr=3e-3)
    assert history[-1] < 0.6 * history[0]  # the loss falls
    prob = net.predict_face_probability(test.images)
    accuracy = T.face_accuracy(prob, test.labels)
    faces, non_faces = test.labels == M.POSITIVE, test.labels == M.NEGATIVE
    print(f"P-Net from scratch: loss {history[0]:.3f} -> {history[-1]:.3f}; held-out accuracy {accuracy:.3f} "
          f"({faces.sum()} faces: {np.mean(prob[faces] >= 0.5):.3f}, {non_faces.sum()} non-faces: "
          f"{np.mean(prob[non_faces] < 0.5):.3f})")
    assert accuracy >= 0.85
    # the trained trunk and heads run in the detector's P-Net as they are
    from scratchface.models.mtcnn_nets import pnet_forward
    out = pnet_forward(test.images[:16], net.weights())
    np.testing.assert_allclose(out.probs[:, 1, 0, 0], prob[:16], rtol=1e-5, atol=1e-6)
