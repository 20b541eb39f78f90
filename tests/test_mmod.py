"""Max-Margin Object Detection: the scan against naive loops, the subgradient against finite differences,
the solver against brute force, the training's errors, the shipped model's figures on testing.xml."""
import numpy as np
import pytest

from scratchface.detection.mmod import (
    MMOD_MODEL_PATH,
    MmodModel,
    detect_faces_mmod,
    load_mmod_model,
    save_mmod_model,
    train_mmod,
    training_samples,
    window_shape,
)
from scratchface.detection.mmod_scan import (
    box_overlaps,
    correlate_cells,
    correlate_cells_reference,
    greedy_select,
    greedy_select_reference,
    tight_overlap_thresholds,
)
from scratchface.detection.mmod_training import (
    LossSettings,
    cutting_plane,
    loss_augmented_detection,
    mmod_objective,
    solve_simplex_qp,
)


# ----------------------------------------------------------------------------- scanning
@pytest.mark.parametrize("grid_shape, filt_shape", [((7, 11, 5), (3, 4, 5)), ((9, 9, 36), (9, 9, 36)),
                                                    ((13, 6, 3), (1, 1, 3)), ((5, 17, 2), (5, 2, 2))])
def test_correlation_reference_equals_naive_windows(rng, grid_shape, filt_shape):
    grid, filt = rng.normal(size=grid_shape), rng.normal(size=filt_shape)
    n, m = filt_shape[:2]
    naive = np.array([[np.sum(grid[r:r + n, c:c + m] * filt) for c in range(grid_shape[1] - m + 1)]
                      for r in range(grid_shape[0] - n + 1)])
    np.testing.assert_allclose(correlate_cells_reference(grid, filt), naive, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("grid_shape, filt_shape", [((7, 11, 5), (3, 4, 5)), ((9, 9, 36), (9, 9, 36)),
                                                    ((13, 6, 3), (1, 1, 3)), ((31, 23, 36), (9, 7, 36)),
                                                    ((4, 4, 2), (5, 2, 2))])
def test_correlation_numba_equals_reference(rng, grid_shape, filt_shape):
    grid, filt = rng.normal(size=grid_shape), rng.normal(size=filt_shape)
    expected = correlate_cells_reference(grid, filt)
    got = correlate_cells(grid, filt, impl="numba")
    assert got.shape == expected.shape
    # float32 products and sums: error about eps32 * sqrt(terms) * |term|
    scale = np.sqrt(np.prod(filt_shape)) * np.abs(grid).max() * np.abs(filt).max()
    np.testing.assert_allclose(got, expected, rtol=0, atol=3e-6 * scale)


@pytest.mark.parametrize("thresholds", [(0.0, 0.0), (0.3, 0.6), (0.5, 1.0)])
def test_greedy_select_numba_equals_reference(rng, thresholds):
    xy = rng.uniform(0, 100, size=(300, 2))
    wh = rng.uniform(5, 30, size=(300, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    order = np.argsort(-rng.normal(size=300), kind="stable")
    eligible = rng.random(300) > 0.3
    expected = greedy_select_reference(boxes, order, eligible, *thresholds)
    np.testing.assert_array_equal(greedy_select(boxes, order, eligible, *thresholds, impl="numba"), expected)
    # and the rule itself: no two kept boxes overlap, every eligible dropped box overlaps a kept one before it
    iou, cover = box_overlaps(boxes[expected], boxes[expected])
    np.fill_diagonal(iou, 0)
    np.fill_diagonal(cover, 0)
    assert not (iou > thresholds[0]).any() and not (cover > thresholds[1]).any()


def test_overlap_by_hand():
    iou, cover = box_overlaps([[0, 0, 10, 10]], [[5, 0, 15, 10], [2, 2, 4, 4], [20, 20, 30, 30]])
    np.testing.assert_allclose(iou, [[50 / 150, 4 / 100, 0]])
    np.testing.assert_allclose(cover, [[0.5, 1.0, 0]])
    assert tight_overlap_thresholds([np.array([[0, 0, 10, 10], [5, 0, 15, 10]]), np.zeros((0, 4))]) == \
        pytest.approx((1 / 3, 0.5))


def test_window_shape_from_aspect_ratio():
    assert window_shape([np.array([[0, 0, 40, 40]])]) == (80, 80)
    assert window_shape([np.array([[0, 0, 50, 100]])], window_area=6400, cell=8) == (112, 56)


# ----------------------------------------------------------------------------- a tiny problem
def _scene(rng, n_photos=2, size=(64, 96)):
    """Photos of noise with bright squares ("faces") of 16-20 pixels: a detector with a 16 x 16 window."""
    photos, boxes = [], []
    for _ in range(n_photos):
        photo = rng.uniform(0, 0.3, size=size)
        b = []
        for x in (8, 56):
            side = int(rng.integers(16, 21))
            y = int(rng.integers(4, size[0] - side - 4))
            photo[y:y + side, x:x + side] += 0.6
            photo[y + side // 4:y + side // 2, x + side // 4:x + 3 * side // 4] -= 0.4
            b.append((x, y, x + side, y + side))
        photos.append(photo)
        boxes.append(np.array(b, dtype=float))
    return photos, boxes


def _tiny_model():
    return MmodModel(np.zeros((3, 3, 16)), 0.0, (16, 16), 4, 4, 0, 5 / 6, 0.0, 0.0, 0.0)


def test_subgradient_matches_finite_differences(rng):
    """In float64 (the reference scan): the fast one is float32, checked against it below."""
    photos, boxes = _scene(rng)
    model = _tiny_model()
    samples = training_samples(photos, boxes, model)
    dim = 3 * 3 * 16 + 1
    for trial in range(3):
        w = rng.normal(scale=0.3, size=dim)
        value, grad = mmod_objective(w, samples, model, C=3.0, impl="reference")
        direction = rng.normal(size=dim)
        h = 1e-6
        plus, _ = mmod_objective(w + h * direction, samples, model, C=3.0, impl="reference")
        minus, _ = mmod_objective(w - h * direction, samples, model, C=3.0, impl="reference")
        # J is piecewise quadratic: where the maximising labelling does not change within h, the
        # central difference equals the directional derivative up to rounding
        assert (plus - minus) / (2 * h) == pytest.approx(grad @ direction, rel=1e-5, abs=1e-6)
        assert value > 0
        fast, fast_grad = mmod_objective(w, samples, model, C=3.0)     # float32 correlation
        assert fast == pytest.approx(value, rel=1e-5)
        np.testing.assert_allclose(fast_grad, grad, rtol=1e-5, atol=1e-5 * np.abs(grad).max())


def test_loss_is_counted_by_hand(rng):
    """At w = 0 every window scores 0: the loss of the found labelling, recounted from its boxes."""
    photos, boxes = _scene(rng, n_photos=1)
    model = _tiny_model()
    sample = training_samples(photos, boxes, model)[0]
    found = loss_augmented_detection(sample, model, LossSettings(2.0, 1.0))
    iou, _ = box_overlaps(found.boxes, sample.truth)
    hits = iou >= 0.5
    faces_found = hits.any(axis=0).sum()
    expected = 2.0 * (len(sample.truth) - faces_found) + 1.0 * (len(found.boxes) - faces_found)
    assert found.loss == expected
    assert len(found.boxes) > 2  # all windows score 0 > -1: the false alarms pay off


def test_simplex_qp_against_brute_force(rng):
    a = rng.normal(size=(3, 2))
    c = rng.normal(size=3)
    C = 1.5
    lam = solve_simplex_qp(a @ a.T, c, C, max_iter=20000)
    grid = np.linspace(0, 1, 401)
    best = -np.inf
    for l0 in grid:
        l1 = grid[grid <= 1 - l0 + 1e-12]
        cand = np.stack([np.full_like(l1, l0), l1, 1 - l0 - l1], axis=1)
        w = -C * cand @ a
        dual = C * cand @ c - 0.5 * np.sum(w * w, axis=1)
        best = max(best, dual.max())
    w = -C * a.T @ lam
    assert C * c @ lam - 0.5 * w @ w >= best - 1e-9


def test_cutting_plane_against_brute_force(rng):
    """min 1/2 |w|^2 + C max(0, max_k a_k w + b_k) in 2-D: the solver vs a dense grid."""
    a = rng.normal(size=(5, 2)) * 2
    b = rng.normal(size=5) + 1.0
    C = 2.0

    def risk(w):
        values = a @ w + b
        k = int(np.argmax(values))
        return (float(values[k]), a[k]) if values[k] > 0 else (0.0, np.zeros(2))

    result = cutting_plane(risk, 2, C=C, epsilon=1e-10, max_iter=200)
    assert result.converged
    def objective(points):
        return 0.5 * np.sum(points ** 2, axis=1) + C * np.maximum(0, (points @ a.T + b).max(axis=1))

    best = np.zeros(2)
    for half, n in ((4.0, 801), (0.02, 801), (2e-4, 801)):  # a dense grid, then finer grids around its best
        xs = np.linspace(-half, half, n)
        points = best + np.stack(np.meshgrid(xs, xs, indexing="ij"), axis=-1).reshape(-1, 2)
        values = objective(points)
        best = points[np.argmin(values)]
    assert result.objective == pytest.approx(values.min(), abs=1e-6)
    assert result.lower_bound <= values.min() + 1e-9
    np.testing.assert_allclose(result.w, best, atol=1e-4)


def test_training_learns_the_tiny_scene_and_is_reproducible(rng):
    photos, boxes = _scene(rng, n_photos=3)
    kwargs = {"window_area": 256, "cell": 4, "orientations": 4, "upsample_limit": 0, "C": 10.0}
    model, result = train_mmod(photos, boxes, epsilon=0.05, **kwargs)
    assert result.converged and result.lower_bound <= result.objective
    first, _ = train_mmod(photos, boxes, max_iter=3, **kwargs)
    again, _ = train_mmod(photos, boxes, max_iter=3, **kwargs)
    np.testing.assert_array_equal(first.filter, again.filter)   # nothing random: same data, same model
    test_photos, test_boxes = _scene(np.random.default_rng(7), n_photos=2)
    for photo, truth in zip(test_photos, test_boxes):
        found = detect_faces_mmod(photo, model=model)
        iou, _ = box_overlaps(found.boxes, truth)
        assert (iou.max(axis=0) >= 0.5).all()
        assert found.landmarks is None and found.boxes.shape[1] == 4


# ----------------------------------------------------------------------------- bad input
def test_training_errors(rng):
    photos, boxes = _scene(rng, n_photos=1)
    kwargs = {"window_area": 256, "cell": 4, "orientations": 4, "upsample_limit": 0, "max_iter": 1}
    with pytest.raises(ValueError, match="no labelled boxes"):
        train_mmod(photos, [np.zeros((0, 4))], **kwargs)
    with pytest.raises(ValueError, match="outside the photo"):
        train_mmod(photos, [np.array([[-5.0, 0, 15, 20]])], **kwargs)
    with pytest.raises(ValueError, match="x2 <= x1"):
        train_mmod(photos, [np.array([[20.0, 0, 15, 20]])], **kwargs)
    with pytest.raises(ValueError, match="smaller than the window"):
        train_mmod(photos, [np.array([[10.0, 10, 30, 30], [60, 10, 66, 16]])], **kwargs)
    with pytest.raises(ValueError, match="one entry per photo"):
        train_mmod(photos, boxes + boxes, **kwargs)
    with pytest.raises(TypeError, match="list of photos"):
        train_mmod(photos[0], boxes, **kwargs)
    with pytest.raises(ValueError, match="C must be"):
        train_mmod(photos, boxes, C=0.0)


def test_detection_errors():
    with pytest.raises(TypeError, match="MmodModel"):
        detect_faces_mmod(np.zeros((100, 100)), model="model")
    with pytest.raises(ValueError, match="threshold"):
        detect_faces_mmod(np.zeros((100, 100)), model=_tiny_model(), threshold=np.nan)


def test_small_image_gives_empty_detections():
    found = detect_faces_mmod(np.zeros((10, 12, 3), np.uint8), model=_tiny_model())
    assert found.boxes.shape == (0, 4) and found.scores.shape == (0,)


def test_save_load_round_trip_and_checksum(tmp_path, rng):
    model = _tiny_model()._replace(filter=rng.normal(size=(3, 3, 16)).astype(np.float32).astype(float),
                                   bias=0.25)
    path = tmp_path / "m.npz"
    digest = save_mmod_model(path, model, note="test")
    assert save_mmod_model(tmp_path / "again.npz", model, note="test") == digest  # same model, same bytes
    loaded = load_mmod_model(path, sha256=digest)
    np.testing.assert_array_equal(loaded.filter, model.filter)
    assert loaded._replace(filter=None) == model._replace(filter=None)
    with pytest.raises(ValueError, match="corrupt or modified"):
        load_mmod_model(path, sha256="0" * 64)


# ----------------------------------------------------------------------------- the shipped model
@pytest.mark.skipif(not __import__("os").path.isfile(MMOD_MODEL_PATH), reason="no shipped MMOD model")
def test_shipped_model_on_testing_xml(data_dir):
    """docs/results.md, Detection / MMOD: recall, precision and AP on dlib's testing.xml (25 unseen faces)."""
    from scratchface.data.dlib_faces import load_dlib_faces
    from scratchface.detection.evaluation import evaluate_detections
    photos = load_dlib_faces(data_dir / "dlib_faces", "testing")
    model = load_mmod_model()
    found = [detect_faces_mmod(p.path, model=model) for p in photos]
    result = evaluate_detections(found, [p.boxes for p in photos], iou_threshold=0.5)
    assert (result.n_true_positives, result.n_ground_truth, result.n_false_positives) == SHIPPED_COUNTS
    assert round(result.average_precision, 3) == SHIPPED_AP
    assert model.descriptor == "fhog"
    with np.load(MMOD_MODEL_PATH) as f:   # what it was trained on travels with it
        assert "training.xml" in str(f["meta_trained_on"]) and "testing.xml only evaluated" in str(f["meta_trained_on"])


SHIPPED_COUNTS = (25, 25, 0)   # (found, faces, false positives): python -m experiments.mmod_detector --write
SHIPPED_AP = 1.0


@pytest.mark.parametrize("shape, out", [((50, 61, 3), (42, 51)), ((50, 61, 3), (100, 122)), ((33, 20), (28, 17))])
def test_pyramid_resize_kernel_equals_resize(rng, shape, out):
    from scratchface.detection.mmod_scan import _resize_level
    from scratchface.detection.pyramid import resize
    image = rng.random(shape)
    np.testing.assert_array_equal(_resize_level(image, out, False, "numba"), resize(image, out, anti_aliasing=False))


@pytest.mark.parametrize("descriptor, shape", [("fhog", (4, 4, 3 * 4 + 4)), ("hog", (3, 3, 4 * 4))])
def test_both_descriptors_train_and_round_trip(rng, tmp_path, descriptor, shape):
    """16 x 16 window of 4-pixel cells: FHOG, 4 x 4 cells of 3 o + 4; block HOG, 3 x 3 blocks of 4 o."""
    photos, boxes = _scene(rng, n_photos=1)
    model, _ = train_mmod(photos, boxes, window_area=256, cell=4, orientations=4, upsample_limit=0, max_iter=3,
                          descriptor=descriptor)
    assert model.descriptor == descriptor and model.filter.shape == shape
    digest = save_mmod_model(tmp_path / "m.npz", model)
    assert load_mmod_model(tmp_path / "m.npz", sha256=digest).descriptor == descriptor
    with pytest.raises(ValueError, match="descriptor"):
        train_mmod(photos, boxes, descriptor="sift")
