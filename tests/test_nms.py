"""IoU and greedy NMS: hand-worked values, naive loops, the Numba kernel, hypothesis properties."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchface.detection.nms import iou, nms


def naive_overlap(a, b, mode="union", offset=0):
    """Overlap of two boxes by plain Python arithmetic."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + offset)
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + offset)
    inter = iw * ih
    area_a = (a[2] - a[0] + offset) * (a[3] - a[1] + offset)
    area_b = (b[2] - b[0] + offset) * (b[3] - b[1] + offset)
    denom = min(area_a, area_b) if mode == "min" else area_a + area_b - inter
    return inter / denom if denom > 0 else 0.0


def naive_nms(boxes, scores, threshold, mode="union", offset=0):
    """Greedy NMS written as the textbook loop (independent of the library)."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        if all(naive_overlap(boxes[k], boxes[i], mode, offset) <= threshold for k in keep):
            keep.append(i)
    return keep


def random_boxes(rng, n, size=100.0, degenerate=0.1, integer=False):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(0, size / 4, (n, 2))
    wh[rng.random(n) < degenerate] = 0.0  # zero-area boxes
    boxes = np.concatenate([xy, xy + wh], axis=1)
    return np.round(boxes) if integer else boxes


def test_iou_hand_values():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 5, 5]])
    # overlaps 50 / (100 + 100 - 50); identical; disjoint; contained 25 / 100
    np.testing.assert_allclose(iou(a, b), [[50 / 150, 1.0, 0.0, 0.25]], rtol=1e-15)
    # inclusive pixels: widths 11, intersection 6 x 11
    np.testing.assert_allclose(iou(a, b[:1], offset=1), [[66 / (121 + 121 - 66)]], rtol=1e-15)
    assert iou(np.zeros((1, 4)), np.zeros((1, 4)))[0, 0] == 0.0


def test_iou_matches_naive(rng):
    a, b = random_boxes(rng, 13), random_boxes(rng, 7)
    expected = [[naive_overlap(x, y) for y in b] for x in a]
    np.testing.assert_allclose(iou(a, b), expected, rtol=1e-12, atol=1e-15)
    assert iou(np.zeros((0, 4)), b).shape == (0, 7)


def test_nms_hand_example():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    # box 3 (0.95) suppresses its duplicate box 0 (IoU 1) and box 1 (IoU 81/119 = 0.68)
    for impl in ("reference", "numba"):
        np.testing.assert_array_equal(nms(boxes, scores, 0.5, impl=impl), [3, 2])
        np.testing.assert_array_equal(nms(boxes, scores, 0.7, impl=impl), [3, 1, 2])
        assert nms(boxes, scores, 0.5, impl=impl).dtype == np.int64


def test_nms_min_mode():
    # a small box inside a big one: IoU 0.04, but intersection / smaller area = 1
    boxes = np.array([[0, 0, 50, 50], [10, 10, 20, 20]], float)
    scores = np.array([0.9, 0.8])
    for impl in ("reference", "numba"):
        np.testing.assert_array_equal(nms(boxes, scores, 0.5, impl=impl), [0, 1])
        np.testing.assert_array_equal(nms(boxes, scores, 0.5, "min", impl=impl), [0])


@pytest.mark.parametrize("mode", ["union", "min"])
@pytest.mark.parametrize("offset", [0, 1])
def test_nms_matches_naive_and_numba(rng, mode, offset):
    for trial in range(6):
        n = int(rng.integers(1, 120))
        boxes = random_boxes(rng, n, integer=trial % 2 == 0)
        scores = np.round(rng.random(n), 1)  # many ties
        threshold = [0.0, 0.3, 0.5, 0.7, 1.0, 0.25][trial]
        expected = naive_nms(boxes.tolist(), scores.tolist(), threshold, mode, offset)
        ref = nms(boxes, scores, threshold, mode, offset=offset, impl="reference")
        fast = nms(boxes, scores, threshold, mode, offset=offset, impl="numba")
        np.testing.assert_array_equal(ref, expected)
        np.testing.assert_array_equal(fast, expected)


def test_nms_matches_facenet_pytorch_nms_numpy_convention():
    # facenet-pytorch's nms_numpy with 'Min': w = x2 - x1 + 1, o = inter / min(area)
    boxes = np.array([[0, 0, 9, 9], [5, 0, 14, 9]], float)  # 10x10 pixels each, 5x10 shared
    scores = np.array([0.9, 0.8])
    assert iou(boxes[:1], boxes[1:], offset=1)[0, 0] == pytest.approx(50 / 150)
    np.testing.assert_array_equal(nms(boxes, scores, 0.49, "min", offset=1), [0])  # 50/100 > 0.49
    np.testing.assert_array_equal(nms(boxes, scores, 0.49, "min", offset=0), [0, 1])  # 36/81 < 0.49


def test_nms_empty_and_single():
    for impl in ("reference", "numba"):
        keep = nms(np.zeros((0, 4)), np.zeros(0), impl=impl)
        assert keep.shape == (0,) and keep.dtype == np.int64
        np.testing.assert_array_equal(nms([[0, 0, 1, 1]], [0.3], impl=impl), [0])


def test_nms_errors():
    boxes = np.array([[0, 0, 10, 10], [5, 5, 15, 15]], float)
    with pytest.raises(ValueError, match="x2 < x1"):
        nms(np.array([[10, 0, 0, 10]], float), [1.0])
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        nms(np.zeros((2, 3)), [1.0, 2.0])
    with pytest.raises(ValueError, match="one score per box"):
        nms(boxes, [1.0])
    with pytest.raises(ValueError, match="iou_threshold"):
        nms(boxes, [1.0, 2.0], 1.5)
    with pytest.raises(ValueError, match="mode"):
        nms(boxes, [1.0, 2.0], mode="max")
    with pytest.raises(ValueError, match="offset"):
        nms(boxes, [1.0, 2.0], offset=2)
    with pytest.raises(ValueError, match="NaN"):
        nms(np.array([[0, 0, np.nan, 1.0]]), [1.0])
    with pytest.raises(ValueError, match="impl must be one of"):
        nms(boxes, [1.0, 2.0], impl="fast")
    with pytest.raises(TypeError, match="impl='cuda' needs CuPy arrays"):
        nms(boxes, np.array([1.0, 2.0]), impl="cuda")
    with pytest.raises(ValueError, match="x2 < x1"):
        iou(np.array([[0, 0, 10, 10]]), np.array([[3, 3, 2, 4]]))


box_strategy = st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(0, 15), st.integers(0, 15)).map(
    lambda t: (t[0], t[1], t[0] + t[2], t[1] + t[3]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(box_strategy, st.integers(0, 5)), min_size=1, max_size=40),
       st.sampled_from([0.0, 0.3, 0.5, 0.8]), st.sampled_from(["union", "min"]))
def test_nms_properties(items, threshold, mode):
    boxes = np.array([b for b, _ in items], float)
    scores = np.array([s for _, s in items], float)
    keep = nms(boxes, scores, threshold, mode)
    np.testing.assert_array_equal(keep, nms(boxes, scores, threshold, mode, impl="reference"))
    kept = set(keep.tolist())
    # kept boxes overlap each other at most the threshold
    for i in keep:
        for j in keep:
            if i != j:
                assert naive_overlap(boxes[i], boxes[j], mode) <= threshold
    # every removed box overlaps a kept box of higher (or equal, earlier) score more than the threshold
    for r in set(range(len(boxes))) - kept:
        assert any(naive_overlap(boxes[k], boxes[r], mode) > threshold and
                   (scores[k], -k) > (scores[r], -r) for k in keep)
    # kept indices come by decreasing score
    assert np.all(np.diff(scores[keep]) <= 0)
