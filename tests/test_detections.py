"""One detector protocol: the Detections type, DDFD's heat-map peaks, the pseudo-modules as nn.Modules.

Expected boxes are worked by hand; the P-Net built from the one architecture description is compared
with the inference P-Net on the shipped weights (two different code paths: nn modules vs functions).
"""
import numpy as np
import pytest

from scratchface.detection.ddfd import WindowClassifier, heatmap_detections
from scratchface.detection.detections import Detections, empty_detections
from scratchface.detection.evaluation import evaluate_detections
from scratchface.detection.mtcnn_training import TrainablePNet
from scratchface.models.mtcnn_nets import WEIGHT_SHAPES, load_mtcnn_weights, pnet_forward
from scratchface.nn.module import Module


def test_detections_fields_and_the_old_probs_name():
    det = Detections(np.zeros((2, 4)), np.array([0.9, 0.4]))
    assert det.landmarks is None
    boxes, scores, landmarks = det
    assert det.probs is det.scores is scores and landmarks is None
    with pytest.raises(AttributeError):
        det.probs = np.zeros(2)          # read-only: the old name is an alias, not a field
    empty = empty_detections(np.float32, landmarks=True)
    assert empty.boxes.shape == (0, 4) and empty.scores.shape == (0,) and empty.landmarks.shape == (0, 5, 2)
    assert empty.boxes.dtype == np.float32 and empty_detections().landmarks is None


def test_evaluation_takes_detections_and_pairs_alike():
    gt = [np.array([[0, 0, 10, 10]], float)]
    as_pair = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), np.array([0.9, 0.8]))]
    as_det = [Detections(*as_pair[0], None)]
    a, b = evaluate_detections(as_pair, gt), evaluate_detections(as_det, gt)
    assert (a.n_true_positives, a.n_false_positives) == (b.n_true_positives, b.n_false_positives) == (1, 1)
    with pytest.raises(TypeError, match="Detections or a pair"):
        evaluate_detections([np.zeros((1, 4))], gt)


def test_heatmap_peaks_by_hand():
    heat = np.zeros((3, 4))
    heat[1, 2] = 0.9          # at scale 0.5: level box (8, 4)-(32, 28) -> image (16, 8)-(64, 56)
    heat[1, 3] = 0.8          # level (12, 4)-(36, 28) -> image (24, 8)-(72, 56): IoU 40*48/(2*48*48-40*48) = 0.714
    heat[0, 0] = 0.3          # below the threshold
    found = heatmap_detections({0.5: heat}, window=24, stride=4, threshold=0.5, nms_threshold=0.3)
    np.testing.assert_allclose(found.boxes, [[16, 8, 64, 56]])
    np.testing.assert_allclose(found.scores, [0.9])
    assert found.landmarks is None
    both = heatmap_detections({0.5: heat}, threshold=0.5, nms_threshold=0.8)
    np.testing.assert_allclose(both.boxes, [[16, 8, 64, 56], [24, 8, 72, 56]])
    none = heatmap_detections({1.0: heat}, threshold=0.95)
    assert none.boxes.shape == (0, 4) and none.scores.shape == (0,)
    with pytest.raises(ValueError, match="threshold"):
        heatmap_detections({1.0: heat}, threshold=1.5)
    with pytest.raises(TypeError, match="heat_maps"):
        heatmap_detections([heat])


def test_window_classifier_and_trainable_pnet_are_modules():
    net = WindowClassifier(0)
    assert isinstance(net, Module)
    assert sum(p.size for p in net.parameters()) == (8 * 3 * 9 + 8) + (16 * 8 * 4 + 16) + (400 * 32 + 32) + (32 * 2 + 2)
    for p in net.parameters():
        p.grad[...] = 1.0
    net.zero_grad()
    assert all(np.all(p.grad == 0) for p in net.parameters())
    pnet = TrainablePNet(0)
    assert isinstance(pnet, Module) and set(pnet.heads) == {"conv4_1", "conv4_2", "conv4_3"}
    shapes = {k: v for k, v in WEIGHT_SHAPES.items() if k.startswith("pnet.")}
    expected = sum(int(np.prod(s)) for s in shapes.values()) + 32 * 10 + 10   # + the landmark head
    assert sum(p.size for p in pnet.parameters()) == expected
    assert {k: v.shape for k, v in pnet.weights().items()} == shapes
    assert "conv4_3" not in TrainablePNet(0, landmarks=False).heads


def test_trainable_pnet_with_the_shipped_weights_is_the_inference_pnet(rng):
    weights = load_mtcnn_weights()
    pnet = TrainablePNet(0, landmarks=False)
    for name, module in list(pnet.trunk._modules.items()) + list(pnet.heads.items()):
        if name.startswith("conv"):
            module.weight.data[...] = weights[f"pnet.{name}.w"]
            module.bias.data[...] = weights[f"pnet.{name}.b"]
        elif name.startswith("prelu"):
            module.alpha.data[...] = weights[f"pnet.{name}.alpha"]
    x = rng.uniform(-1, 1, (5, 3, 12, 12)).astype(np.float32)
    out = pnet_forward(x, weights)
    logits, box, marks = pnet.forward(x)
    assert marks is None
    np.testing.assert_allclose(box, out.offsets[:, :, 0, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pnet.predict_face_probability(x), out.probs[:, 1, 0, 0], rtol=1e-5, atol=1e-6)


def test_pyramid_scales_names_a_bad_image_shape():
    from scratchface.detection.pyramid import pyramid_scales

    with pytest.raises(TypeError, match=r"image_shape must be a tuple \(H, W, ...\)"):
        pyramid_scales(480, 12)
    with pytest.raises(ValueError, match="window"):
        pyramid_scales((480, 640), 0)
