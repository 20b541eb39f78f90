"""The HOG detector's second stage: context crops, features, scores, the saved model."""
import numpy as np
import pytest

from scratchface.detection.hog import hog
from scratchface.detection.hog_detector import detect_faces_hog, load_model
from scratchface.detection.hog_rescoring import (RescoringModel, context_features, context_patch,
                                                 load_rescoring, rescore, save_rescoring)


def test_context_patch_by_hand():
    gray = np.arange(100, dtype=np.float64).reshape(10, 10)
    # a 4x4 box at (3, 3)-(7, 7): k = 1 and size 4 is the box itself
    np.testing.assert_allclose(context_patch(gray, (3, 3, 7, 7), 1.0, 4), gray[3:7, 3:7], atol=1e-12)
    # k = 2 around a box at the corner: the 8x8 square from (-2, -2) is edge-padded
    patch = context_patch(gray, (0, 0, 4, 4), 2.0, 8)
    expected = np.pad(gray, 2, mode="edge")[0:8, 0:8]
    np.testing.assert_allclose(patch, expected, atol=1e-12)
    # a non-square box uses its longer side
    assert context_patch(gray, (2, 4, 4, 8), 1.0, 4).shape == (4, 4)
    np.testing.assert_allclose(context_patch(gray, (2, 4, 4, 8), 1.0, 4), gray[4:8, 1:5], atol=1e-12)


def test_context_features_are_the_hogs_of_the_patches(rng):
    gray = rng.random((60, 70))
    boxes = np.array([[10, 12, 30, 32], [40, 5, 60, 25.0]])
    contexts = ((1.0, 16, 4), (1.5, 24, 8))
    features = context_features(gray, boxes, contexts)
    expected = np.concatenate([hog(context_patch(gray, boxes[1], 1.0, 16), pixels_per_cell=(4, 4),
                                   cells_per_block=(2, 2)),
                               hog(context_patch(gray, boxes[1], 1.5, 24), pixels_per_cell=(8, 8),
                                   cells_per_block=(2, 2))])
    assert features.shape == (2, 9 * 4 * (3 * 3 + 2 * 2))
    np.testing.assert_allclose(features[1], expected, atol=1e-12)
    mirrored = context_features(gray, boxes[:1], contexts, flip=True)
    np.testing.assert_allclose(mirrored[0, :324], hog(context_patch(gray, boxes[0], 1.0, 16)[:, ::-1].copy(),
                                                      pixels_per_cell=(4, 4), cells_per_block=(2, 2)), atol=1e-12)
    assert context_features(gray, np.zeros((0, 4)), contexts).shape == (0, features.shape[1])


def test_rescore_is_the_svm_plus_the_mixed_first_stage(rng, tmp_path):
    gray = rng.random((50, 50))
    contexts = ((1.0, 16, 4),)
    boxes = np.array([[5, 5, 25, 25], [20, 10, 44, 34.0]])
    w = rng.standard_normal(324)
    model = RescoringModel(weights=w, bias=0.3, contexts=contexts, stage1_weight=0.5)
    s1 = np.array([1.0, -2.0])
    expected = context_features(gray, boxes, contexts) @ w + 0.3 + 0.5 * s1
    np.testing.assert_allclose(rescore(gray, boxes, s1, model), expected, atol=1e-12)
    assert rescore(gray, np.zeros((0, 4)), np.zeros(0), model).shape == (0,)
    save_rescoring(tmp_path / "r.npz", model._replace(threshold=-0.25), note=1)
    again = load_rescoring(tmp_path / "r.npz")
    assert again.contexts == contexts and again.threshold == -0.25 and again.stage1_weight == 0.5
    np.testing.assert_allclose(again.weights, w, rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="rescoring"):
        load_rescoring(tmp_path / "missing.npz")


def test_second_stage_only_removes_and_rescores_first_stage_windows():
    from skimage import data
    image = data.astronaut()
    stage1 = load_model()
    shipped = load_rescoring()
    candidates, s1, _ = detect_faces_hog(image, model=stage1, threshold=shipped.candidate_threshold,
                                         second_stage=False)
    boxes, scores, _ = detect_faces_hog(image, model=stage1, threshold=-100.0)
    # every final box is a first-stage candidate, scored by the second stage
    for box, score in zip(boxes, scores):
        i = int(np.argmin(np.abs(candidates - box).sum(axis=1)))
        np.testing.assert_allclose(candidates[i], box)
        np.testing.assert_allclose(rescore(_gray(image), box[None], s1[i:i + 1], shipped),
                                   [score], atol=1e-9)
    # the astronaut's face is found by the two stages
    face = np.array([175.0, 60.0, 275.0, 170.0])
    top = detect_faces_hog(image).boxes
    from scratchface.detection.nms import iou
    assert iou(top[:1], face[None])[0, 0] > 0.4
    with pytest.raises(TypeError, match="second_stage"):
        detect_faces_hog(image, second_stage="yes")


def _gray(image):
    from scratchface.image import as_gray
    return as_gray(image)


def test_nested_threshold_is_checked_and_only_drops_boxes():
    from skimage import data
    image = data.astronaut()
    with pytest.raises(ValueError, match="nested_threshold"):
        detect_faces_hog(image, nested_threshold=2.0)
    loose = detect_faces_hog(image, threshold=-1.0, nested_threshold=1.0).boxes   # nothing is 100 % inside
    strict = detect_faces_hog(image, threshold=-1.0, nested_threshold=0.3).boxes
    assert len(strict) <= len(loose)
    assert all(any(np.allclose(b, l) for l in loose) for b in strict)


def test_level_grids_exclude_windows_on_every_face():
    from experiments.hog_detector import level_grids
    model = load_model()
    gray = np.zeros((96, 160))
    faces = np.array([[8, 8, 40, 40], [100, 40, 132, 72.0]])
    (grid, allowed), *_ = level_grids([gray], model, face_box=faces)
    # level 0 is the image itself: window (r, c) covers x from 4c to 4c+32, y from 4r to 4r+32
    assert not allowed[2, 2] and not allowed[10, 25]      # exactly on the two faces
    assert allowed[0, 15] and allowed[12, 5]              # far from both
