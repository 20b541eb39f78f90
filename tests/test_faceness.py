"""Faceness: part boxes and target maps from landmarks, integral images, the faceness score, the part
network and its loss, re-ranking, pictures.

Expected values come from hand calculation, brute-force loops, torch autograd, finite differences and
dlib's hand-labelled boxes and 68-point landmarks (never from the code under test).
"""
import numpy as np
import pytest

from scratchface.detection.faceness import (
    PART_NAMES,
    box_sums,
    box_sums_reference,
    context_windows,
    face_box_from_landmarks,
    faceness_of_boxes,
    faceness_scores,
    part_boxes,
    part_target_maps,
    rerank,
)
from scratchface.detection.align import landmarks_68_to_5
from scratchface.detection.nms import iou
from scratchface.detection.pyramid import summed_area_table
from scratchface.losses.sigmoid_cross_entropy import (
    gradcheck_cases,
    sigmoid_cross_entropy_backward,
    sigmoid_cross_entropy_forward,
)
from scratchface.models.faceness_nets import load_part_network, normalize_gray, part_network

# one frontal face worked by hand: eye distance d = 20, eyes-to-mouth h = 22, so u = max(d, h) = 22
FIVE = np.array([[40.0, 50.0], [60.0, 50.0], [50.0, 62.0], [42.0, 72.0], [58.0, 72.0]])


# ----------------------------------------------------------------------------- part boxes

def test_part_boxes_from_five_points_worked_by_hand():
    expected = np.array([
        [50 - 24.2, 50 - 35.2, 50 + 24.2, 50 - 13.2],   # hair: eye centre +- 1.1u, -1.6u .. -0.6u
        [40 - 6.6, 50 - 4.4, 60 + 6.6, 50 + 4.4],       # eyes: -0.3u .. +0.3u, +-0.2u
        [50 - 5.5, 56.0, 50 + 5.5, 62 + 3.3],           # nose: +-0.25u, half-way eyes-nose .. nose + 0.15u
        [42 - 3.3, 72 - 4.4, 58 + 3.3, 72 + 4.4],       # mouth: corners +-0.15u, +-0.2u
        [50 - 16.5, 72 + 4.4, 50 + 16.5, 72 + 19.8]])   # beard: +-0.75u, mouth + 0.2u .. + 0.9u
    np.testing.assert_allclose(part_boxes(FIVE), expected, atol=1e-12)


def test_face_box_from_five_points_worked_by_hand():
    # side 2.5 u = 55, centred on the eye centre x = 50, eyes 0.29 * 55 = 15.95 below the top
    np.testing.assert_allclose(face_box_from_landmarks(FIVE), [22.5, 34.05, 77.5, 89.05], atol=1e-12)


def test_part_boxes_are_ordered_top_to_bottom():
    centres_y = part_boxes(FIVE)[:, [1, 3]].mean(axis=1)
    assert list(np.argsort(centres_y)) == [0, 1, 2, 3, 4]  # hair, eyes, nose, mouth, beard


def test_landmarks_68_to_5_averages_the_eye_contours():
    pts = np.zeros((68, 2))
    pts[36:42] = [[0, 0], [2, 0], [4, 0], [6, 0], [2, 2], [4, 2]]   # mean (3, 2/3)
    pts[42:48] = 10.0
    pts[30], pts[48], pts[54] = (5, 7), (1, 9), (9, 9)
    five = landmarks_68_to_5(pts)
    np.testing.assert_allclose(five, [[3, 2 / 3], [10, 10], [5, 7], [1, 9], [9, 9]])
    assert landmarks_68_to_5(np.stack([pts, pts])).shape == (2, 5, 2)


@pytest.fixture(scope="module")
def dlib_faces(data_dir):
    from scratchface.data.dlib_faces import load_dlib_faces
    return load_dlib_faces(data_dir / "dlib_faces", landmarks=True)


def test_five_point_rules_agree_with_68_point_rules_on_dlib_faces(dlib_faces):
    """The 5-point part boxes (what MTCNN's landmarks give) against the denser 68-point ones."""
    overlaps = []
    for photo in dlib_faces:
        for pts in photo.landmarks:
            from68 = part_boxes(pts)
            from5 = part_boxes(landmarks_68_to_5(pts))
            overlaps.append([iou(from5[p:p + 1], from68[p:p + 1])[0, 0] for p in range(len(PART_NAMES))])
    overlaps = np.array(overlaps)
    assert overlaps.shape == (43, 5)
    median = np.median(overlaps, axis=0)
    assert (median > 0.4).all(), dict(zip(PART_NAMES, median.round(2)))


def test_face_box_from_landmarks_matches_dlibs_hand_labelled_boxes(dlib_faces):
    overlaps = [iou(face_box_from_landmarks(pts)[None], box[None])[0, 0]
                for photo in dlib_faces for pts, box in zip(photo.landmarks, photo.boxes)]
    assert np.median(overlaps) > 0.75 and np.min(overlaps) > 0.4


@pytest.mark.parametrize("bad, match", [(np.zeros((4, 2)), "5 points"), (np.zeros(10), "2-D"),
                                        (np.full((5, 2), np.nan), "NaN")])
def test_part_boxes_rejects_bad_landmarks(bad, match):
    with pytest.raises(ValueError, match=match):
        part_boxes(bad)


def test_landmarks_68_to_5_rejects_other_shapes():
    with pytest.raises(ValueError, match=r"\(\.\.\., 68, 2\)"):
        landmarks_68_to_5(np.zeros((5, 2)))


# ----------------------------------------------------------------------------- target maps

def test_target_map_worked_by_hand():
    # window 8 x 8 px, 4 x 4 cells of 2 px; box x 1..5, y 2..3
    # columns: [0,2] overlaps 1 px -> 0.5, [2,4] 2 px -> 1, [4,6] 1 px -> 0.5; row [2,4] overlaps 1 px -> 0.5
    maps = part_target_maps(np.array([[1.0, 2.0, 5.0, 3.0]]), (0, 0, 8, 8), (4, 4))
    expected = np.zeros((1, 4, 4))
    expected[0, 1] = [0.25, 0.5, 0.25, 0.0]
    np.testing.assert_allclose(maps, expected, atol=1e-12)


def test_target_maps_equal_supersampled_coverage(rng):
    """Coverage fractions against counting the sub-pixel samples inside each box."""
    boxes = np.sort(rng.uniform(-5, 45, (5, 2, 2)), axis=1).reshape(5, 4)  # x1 y1 x2 y2
    window, shape, k = (2.0, -3.0, 42.0, 37.0), (8, 10), 40       # cells 4 x 5 px, 40 x 40 samples per cell
    maps = part_target_maps(boxes, window, shape)
    ys = window[1] + (np.arange(shape[0] * k) + 0.5) * (window[3] - window[1]) / (shape[0] * k)
    xs = window[0] + (np.arange(shape[1] * k) + 0.5) * (window[2] - window[0]) / (shape[1] * k)
    for p, (x1, y1, x2, y2) in enumerate(boxes):
        inside = ((ys >= y1) & (ys < y2))[:, None] & ((xs >= x1) & (xs < x2))[None, :]
        sampled = inside.reshape(shape[0], k, shape[1], k).mean(axis=(1, 3))
        np.testing.assert_allclose(maps[p], sampled, atol=2.0 / k)
    assert maps.min() >= 0 and maps.max() <= 1


def test_target_map_of_box_covering_window_is_all_ones_and_outside_all_zeros():
    maps = part_target_maps(np.array([[-1.0, -1, 20, 20], [30, 30, 40, 40]]), (0, 0, 16, 16), (4, 4))
    np.testing.assert_array_equal(maps[0], np.ones((4, 4)))
    np.testing.assert_array_equal(maps[1], np.zeros((4, 4)))


@pytest.mark.parametrize("args, match", [
    ((np.zeros((2, 3)), (0, 0, 4, 4), (2, 2)), r"\(P, 4\)"),
    ((np.zeros((2, 4)), (0, 0, 0, 4), (2, 2)), "x2 > x1"),
    ((np.zeros((2, 4)), (0, 0, 4, 4), (0, 2)), "positive"),
])
def test_target_maps_reject_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        part_target_maps(*args)


# ----------------------------------------------------------------------------- integral images

def test_summed_area_table_equals_cumulative_sums(rng):
    maps = rng.uniform(0, 1, (3, 7, 9))
    sat = summed_area_table(maps, axes=(-2, -1))
    assert sat.shape == (3, 8, 10)
    for r in range(8):
        for c in range(10):
            np.testing.assert_allclose(sat[:, r, c], maps[:, :r, :c].sum(axis=(1, 2)), atol=1e-12)


def test_box_sum_worked_by_hand():
    maps = np.arange(12.0).reshape(1, 3, 4)       # rows 0..3, 4..7, 8..11
    sums = box_sums(summed_area_table(maps, axes=(-2, -1)), np.array([[1, 0, 3, 2], [0, 0, 4, 3], [2, 1, 2, 3]]))
    np.testing.assert_allclose(sums[:, 0], [1 + 2 + 5 + 6, 66, 0])


def test_box_sums_equal_brute_force(rng):
    maps = rng.uniform(0, 1, (5, 13, 11))
    sat = summed_area_table(maps, axes=(-2, -1))
    c = np.sort(rng.integers(0, 12, (200, 5, 2)), axis=-1)
    r = np.sort(rng.integers(0, 14, (200, 5, 2)), axis=-1)
    boxes = np.stack([c[..., 0], r[..., 0], c[..., 1], r[..., 1]], axis=-1)
    np.testing.assert_allclose(box_sums(sat, boxes), box_sums_reference(maps, boxes), atol=1e-10)
    np.testing.assert_allclose(box_sums(sat, boxes[:, 0]), box_sums_reference(maps, boxes[:, 0]), atol=1e-10)


def test_box_sums_reject_bad_boxes():
    sat = summed_area_table(np.ones((2, 3, 3)), axes=(-2, -1))
    with pytest.raises(TypeError, match="integer"):
        box_sums(sat, np.zeros((1, 4)))
    with pytest.raises(ValueError, match="c1 <= c2"):
        box_sums(sat, np.array([[0, 0, 4, 1]]))
    with pytest.raises(ValueError, match=r"\(n, 2, 4\)"):
        box_sums(sat, np.zeros((1, 3, 4), int))


# ----------------------------------------------------------------------------- faceness score

def test_faceness_worked_by_hand():
    # one part; the response fills the top row of a 4 x 4 map; the part's sub-box is the window's top quarter
    maps = np.zeros((1, 4, 4))
    maps[0, 0] = 1.0
    top = np.array([[0.0, 0.0, 1.0, 0.25]])
    total, per_part = faceness_scores(maps, np.array([[0.0, 0, 4, 4]]), top, eps=0.5)
    np.testing.assert_allclose(per_part, [[4 / (0 + 0.5 * 12)]])   # inside 4; rest 0 + eps * 12 cells
    np.testing.assert_allclose(total, [4 / 6])
    total, _ = faceness_scores(maps + 0.1, np.array([[0.0, 0, 4, 4]]), top, eps=0.0)
    np.testing.assert_allclose(total, [4.4 / 1.2])                  # inside 4 x 1.1; rest 12 x 0.1
    bottom = np.array([[0.0, 0.75, 1.0, 1.0]])                       # expected at the bottom: no response there
    total, _ = faceness_scores(maps, np.array([[0.0, 0, 4, 4]]), bottom, eps=0.5)
    np.testing.assert_allclose(total, [0.0])


def test_faceness_window_outside_the_map_counts_zero_response():
    maps = np.ones((1, 4, 4))
    # window (-2, -2, 2, 2): sub-box its bottom-right quarter, cells (0..2, 0..2) inside the map = 4
    total, _ = faceness_scores(maps, np.array([[-2.0, -2, 2, 2]]), np.array([[0.5, 0.5, 1, 1]]), eps=0.5)
    np.testing.assert_allclose(total, [4 / (0 + 0.5 * 12)])          # rest: 12 cells, all outside the map


def _faceness_brute_force(maps, windows, part_windows, eps):
    """Loops over windows, parts and cells with boolean masks (no integral image)."""
    n_parts, rows, cols = maps.shape
    rr, cc = np.mgrid[0:rows, 0:cols]
    out = np.zeros((len(windows), n_parts))
    for i, (x1, y1, x2, y2) in enumerate(windows):
        wx1, wy1, wx2, wy2 = np.rint([x1, y1, x2, y2])
        in_window = (cc >= wx1) & (cc < wx2) & (rr >= wy1) & (rr < wy2)
        for p, (fx1, fy1, fx2, fy2) in enumerate(part_windows):
            bx1, bx2 = np.rint([x1 + fx1 * (x2 - x1), x1 + fx2 * (x2 - x1)])
            by1, by2 = np.rint([y1 + fy1 * (y2 - y1), y1 + fy2 * (y2 - y1)])
            in_part = (cc >= bx1) & (cc < bx2) & (rr >= by1) & (rr < by2)
            rest_cells = max((wx2 - wx1) * (wy2 - wy1) - (bx2 - bx1) * (by2 - by1), 1)
            inside = maps[p][in_part].sum()
            rest = maps[p][in_window & ~in_part].sum()
            out[i, p] = inside / (rest + eps * rest_cells + 1e-12)
    return out


def test_faceness_equals_brute_force(rng):
    maps = rng.uniform(0, 1, (5, 15, 19))
    corner = rng.uniform(-4, 16, (60, 2))
    side = rng.uniform(1, 12, (60, 1))
    windows = np.hstack([corner, corner + side])
    part_windows = np.sort(rng.uniform(0, 1, (5, 2, 2)), axis=1).reshape(5, 4)
    total, per_part = faceness_scores(maps, windows, part_windows, eps=0.05)
    expected = _faceness_brute_force(maps, windows, part_windows, 0.05)
    np.testing.assert_allclose(per_part, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(total, expected.sum(axis=1), rtol=1e-9)


def test_faceness_empty_windows_have_stable_shapes():
    total, per_part = faceness_scores(np.ones((5, 4, 4)), np.zeros((0, 4)), np.full((5, 4), 0.5))
    assert total.shape == (0,) and per_part.shape == (0, 5)


@pytest.mark.parametrize("kwargs, match", [
    ({"windows": np.zeros((1, 3))}, r"\(n, 4\)"),
    ({"windows": np.array([[3.0, 0, 1, 2]])}, "x2 >= x1"),
    ({"part_windows": np.full((4, 4), 0.5)}, r"\(5, 4\)"),
    ({"part_windows": np.full((5, 4), 1.5)}, r"\[0, 1\]"),
    ({"eps": -1.0}, "eps"),
])
def test_faceness_rejects_bad_arguments(kwargs, match):
    args = {"maps": np.ones((5, 4, 4)), "windows": np.array([[0.0, 0, 2, 2]]), "part_windows": np.full((5, 4), 0.5)}
    eps = kwargs.pop("eps", 0.02)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        faceness_scores(args["maps"], args["windows"], args["part_windows"], eps=eps)


def test_context_windows_double_about_the_centre():
    np.testing.assert_allclose(context_windows(np.array([[10.0, 20, 30, 60]])), [[0, 0, 40, 80]])


# ----------------------------------------------------------------------------- the loss

def test_sigmoid_cross_entropy_against_torch(torch, rng):
    logits = rng.standard_normal((2, 5, 3, 4)) * 3
    targets = rng.uniform(0, 1, (2, 5, 3, 4))
    for w in (1.0, 2.5):
        loss, cache = sigmoid_cross_entropy_forward(logits, targets=targets, pos_weight=w)
        z = torch.tensor(logits, requires_grad=True)
        ref = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(w))(z, torch.tensor(targets))
        ref.backward()
        np.testing.assert_allclose(float(loss), ref.item(), rtol=1e-12)
        np.testing.assert_allclose(sigmoid_cross_entropy_backward(1.0, cache), z.grad.numpy(), rtol=1e-10,
                                   atol=1e-14)


def test_sigmoid_cross_entropy_is_stable_for_huge_logits():
    loss, cache = sigmoid_cross_entropy_forward(np.array([800.0, -800.0]), targets=np.array([0.0, 1.0]))
    np.testing.assert_allclose(float(loss), 800.0)            # each term log(1 + e^800) = 800
    np.testing.assert_allclose(sigmoid_cross_entropy_backward(1.0, cache), [0.5, -0.5])


def test_sigmoid_cross_entropy_gradchecks(rng):
    for case in gradcheck_cases(rng):
        result = case.run()
        assert result.passed, (case.name, result.errors)


@pytest.mark.parametrize("kwargs, match", [
    ({"targets": np.zeros(3)}, "shape"),
    ({"targets": np.full((2, 3), 1.5)}, r"\[0, 1\]"),
    ({"targets": np.zeros((2, 3)), "pos_weight": 0.0}, "pos_weight"),
])
def test_sigmoid_cross_entropy_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sigmoid_cross_entropy_forward(np.zeros((2, 3)), **kwargs)


# ----------------------------------------------------------------------------- the network

def test_part_network_is_fully_convolutional_with_stride_4():
    net = part_network(0)
    for shape in ((64, 64), (50, 70), (17, 9)):
        out = net.forward(normalize_gray(np.zeros(shape))[None, None])
        assert out.shape == (1, 5, shape[0] // 4, shape[1] // 4)


@pytest.fixture(scope="module")
def shipped():
    return load_part_network()


def test_shipped_network_loads_with_part_windows_in_order(shipped):
    assert shipped.part_windows.shape == (5, 4)
    assert shipped.part_windows.min() >= 0 and shipped.part_windows.max() <= 1
    centres_y = shipped.part_windows[:, [1, 3]].mean(axis=1)
    assert list(np.argsort(centres_y)) == [0, 1, 2, 3, 4]
    assert shipped.face_size == 32


def test_load_part_network_checks_the_checksum(tmp_path):
    from scratchface.models.faceness_nets import (
        DEFAULT_WEIGHTS_PATH,
        DEFAULT_WEIGHTS_SHA256,
    )
    copy = tmp_path / "copy.npz"
    copy.write_bytes(DEFAULT_WEIGHTS_PATH.read_bytes())
    assert load_part_network(copy, sha256=DEFAULT_WEIGHTS_SHA256).part_windows.shape == (5, 4)
    with pytest.raises(ValueError, match="corrupt or modified"):
        load_part_network(copy, sha256="0" * 64)


def test_load_part_network_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="--train"):
        load_part_network(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot be read"):
        load_part_network(bad)


# ----------------------------------------------------------------------------- the shipped network on dlib's photos

# The shipped weights (seed 0) measure 0.33 (hair 0.47, eyes 0.47, nose 0.13, mouth 0.33, beard 0.27) and
# 10 of 15 (0.67); untrained networks (seeds 0, 1) measure 0.01 / 0.05 and 0.07 / 0.27.
MEAN_PEAK_HIT_RATE = 0.2
FACE_BEATS_SHIFTED_RATE = 0.45

@pytest.fixture(scope="module")
def dlib_subset(dlib_faces):
    """Three of dlib's photos (15 faces; never used for training)."""
    from scratchface.image import read_image
    return [(read_image(photo.path), photo) for photo in dlib_faces[:3]]


def test_part_maps_peak_inside_each_parts_68_point_box(shipped, dlib_subset):
    """Where each part map is highest in a face's context window, against dlib's 68-point part boxes."""
    from scratchface.detection.faceness import part_response_pyramid
    hits, total = np.zeros(5), 0
    for image, photo in dlib_subset:
        side = np.median(photo.boxes[:, 2] - photo.boxes[:, 0])
        level = part_response_pyramid(image, shipped, [shipped.face_size / side])[0]
        rows, cols = level.maps.shape[1:]
        to_cells = np.array([level.scale_x, level.scale_y] * 2) / 4
        for box, pts in zip(photo.boxes, photo.landmarks):
            cx1, cy1, cx2, cy2 = context_windows(box[None])[0] * to_cells
            r1, r2 = int(max(cy1, 0)), int(min(np.ceil(cy2), rows))
            c1, c2 = int(max(cx1, 0)), int(min(np.ceil(cx2), cols))
            truth = part_boxes(pts) * to_cells
            for p in range(5):
                window = level.maps[p, r1:r2, c1:c2]
                r, c = np.unravel_index(np.argmax(window), window.shape)
                y, x = r1 + r + 0.5, c1 + c + 0.5           # the peak cell's centre, in cells
                bx1, by1, bx2, by2 = truth[p]
                hits[p] += (bx1 - 1 <= x <= bx2 + 1) and (by1 - 1 <= y <= by2 + 1)  # one cell of slack
            total += 1
    rates = hits / total
    assert total == 15
    assert rates.mean() > MEAN_PEAK_HIT_RATE, dict(zip(PART_NAMES, rates.round(2)))


def test_faceness_prefers_true_faces_to_shifted_windows(shipped, dlib_subset):
    """dlib's hand-labelled boxes score higher than the same boxes moved by half their side."""
    wins = []
    for image, photo in dlib_subset:
        boxes = photo.boxes
        side = (boxes[:, 2] - boxes[:, 0])[:, None]
        moved = [boxes + side * np.array(d) for d in ([0, 0.5, 0, 0.5], [0, -0.5, 0, -0.5], [0.5, 0, 0.5, 0])]
        scores = faceness_of_boxes(image, np.vstack([boxes] + moved), model=shipped).scores.reshape(4, -1)
        wins.extend(scores[0] > scores[1:].max(axis=0))
    assert np.mean(wins) > FACE_BEATS_SHIFTED_RATE, np.mean(wins)


def test_rerank_puts_the_face_first_and_handles_empty_input(shipped, dlib_subset):
    image, photo = dlib_subset[1]
    face = photo.boxes[:1]
    side = face[0, 2] - face[0, 0]
    others = face + side * np.array([[2.0, 0, 2, 0], [0, 2, 0, 2], [-1.5, 1.5, -1.5, 1.5]])
    boxes, scores, landmarks = rerank(image, np.vstack([others, face]), np.array([3.0, 2, 1, 0]), model=shipped)
    np.testing.assert_allclose(boxes[0], face[0])
    assert landmarks is None
    assert np.all(np.diff(scores) <= 0)
    empty_boxes, empty_scores, _ = rerank(image, np.zeros((0, 4)), np.zeros(0), model=shipped)
    assert empty_boxes.shape == (0, 4) and empty_scores.shape == (0,)


def test_rerank_rejects_bad_arguments(shipped):
    image = np.zeros((40, 40))
    with pytest.raises(ValueError, match="mode"):
        rerank(image, np.zeros((1, 4)), np.zeros(1), model=shipped, mode="sum")
    with pytest.raises(ValueError, match="one score per box"):
        rerank(image, np.zeros((2, 4)), np.zeros(1), model=shipped)


def test_plot_part_responses_saves_a_picture(shipped, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from skimage.data import astronaut

    from scratchface.viz.faceness import plot_part_responses
    path = tmp_path / "parts.png"
    fig = plot_part_responses(astronaut()[::2, ::2], model=shipped, face_size=50, path=path)
    assert len(fig.axes) == 6 and [ax.get_title().split()[0] for ax in fig.axes[1:]] == list(PART_NAMES)
    assert path.stat().st_size > 10_000
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_training_crop_is_the_window_edge_padded_outside_the_image():
    from experiments.faceness import crop_window
    image = np.arange(36.0).reshape(6, 6)
    crop, window = crop_window(image, (-2.0, -1.0, 4.0, 5.0), 6)       # same size: no resampling
    assert window == (-2, -1, 4, 5)
    expected = np.pad(image, 2, mode="edge")[1:7, 0:6]            # rows -1..4, columns -2..3 of the padded image
    np.testing.assert_allclose(crop, expected, atol=1e-12)
