"""Alignment: Umeyama against scikit-image, the ArcFace template, warping against skimage.transform.warp."""
import numpy as np
import pytest

from scratchface.detection.align import (
    ARCFACE_TEMPLATE,
    align_face,
    align_faces,
    crop_square,
    estimate_alignment,
    face_template,
    umeyama,
    warp_affine,
    warp_affine_reference,
)

transform = pytest.importorskip("skimage.transform")


def _skimage_similarity(src, dst):
    if hasattr(transform.SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        return transform.SimilarityTransform.from_estimate(src, dst).params
    tf = transform.SimilarityTransform()
    assert tf.estimate(src, dst)
    return tf.params


@pytest.mark.parametrize("n", [2, 3, 5, 9])
def test_umeyama_equals_skimage_similarity_transform(rng, n):
    for _ in range(5):
        src = rng.uniform(0, 300, (n, 2))
        dst = rng.uniform(0, 112, (n, 2))
        np.testing.assert_allclose(umeyama(src, dst), _skimage_similarity(src, dst), atol=1e-8, rtol=0)


def test_umeyama_recovers_a_known_transform_and_never_reflects(rng):
    angle, scale, shift = 0.4, 1.7, np.array([12.0, -5.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = rng.uniform(-50, 50, (5, 2))
    dst = scale * src @ rotation.T + shift
    m = umeyama(src, dst)
    np.testing.assert_allclose(m[:2, :2], scale * rotation, atol=1e-12)
    np.testing.assert_allclose(m[:2, 2], shift, atol=1e-10)
    mirrored = src * [-1, 1]
    assert np.linalg.det(umeyama(src, mirrored)[:2, :2]) > 0  # best proper rotation, not a reflection
    np.testing.assert_allclose(umeyama(src, mirrored), _skimage_similarity(src, mirrored), atol=1e-8)
    rigid = umeyama(src, dst, estimate_scale=False)
    np.testing.assert_allclose(np.linalg.det(rigid[:2, :2]), 1.0, atol=1e-12)


def test_umeyama_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        umeyama(np.zeros((5, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="at least 2 points"):
        umeyama(np.zeros((1, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="all identical"):
        umeyama(np.ones((5, 2)), np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"src must have shape \(n, 2\)"):
        umeyama(np.zeros((5, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        umeyama(np.full((5, 2), np.nan), np.zeros((5, 2)))


def test_template_scaling_and_margin():
    np.testing.assert_array_equal(face_template(), ARCFACE_TEMPLATE)
    np.testing.assert_allclose(face_template(224), 2 * ARCFACE_TEMPLATE)
    # margin 0.25 of 100 px: the 112-px face box shrinks to 50 px and starts at 25 px
    np.testing.assert_allclose(face_template(100, 0.25), 25 + 50 * ARCFACE_TEMPLATE / 112)
    with pytest.raises(ValueError, match=r"margin must be in \[0.0, 0.5\)"):
        face_template(112, 0.5)
    with pytest.raises(ValueError, match="size must be a positive integer"):
        face_template(0)


@pytest.mark.parametrize("shape,matrix,size", [
    ((60, 70, 3), [[0.5, 0.3, -10], [-0.3, 0.5, 40], [0, 0, 1]], (31, 45)),
    ((40, 33), [[1.3, -0.2, 5.5], [0.25, 1.1, -3.2]], 50),
    ((25, 25, 3), [[1, 0, 0.5], [0, 1, -0.25], [0, 0, 1]], (25, 25)),
])
def test_warp_equals_skimage_warp_and_the_loops(rng, shape, matrix, size):
    image = rng.uniform(0, 255, shape)
    matrix = np.asarray(matrix, dtype=np.float64)
    full = np.vstack([matrix, [0, 0, 1]]) if matrix.shape == (2, 3) else matrix
    out_shape = (size, size) if np.isscalar(size) else size
    ours = warp_affine(image, matrix, size)
    expected = transform.warp(image, transform.AffineTransform(matrix=full).inverse, output_shape=out_shape,
                              order=1, mode="constant", cval=0.0, preserve_range=True)
    assert ours.shape == expected.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, atol=1e-3, rtol=1e-5)  # float32 output
    small = (min(out_shape[0], 12), min(out_shape[1], 12))
    np.testing.assert_allclose(warp_affine(image, matrix, small),
                               np.squeeze(warp_affine_reference(image, matrix, small)), atol=1e-3, rtol=1e-5)


def test_identity_warp_and_bad_matrices(rng):
    image = rng.uniform(0, 255, (20, 30, 3))
    np.testing.assert_allclose(warp_affine(image, np.eye(3), (20, 30)), image, rtol=1e-6)
    with pytest.raises(ValueError, match="singular"):
        warp_affine(image, np.zeros((3, 3)) + np.diag([0, 0, 1]), 10)
    with pytest.raises(ValueError, match="2x3 or 3x3"):
        warp_affine(image, np.eye(4), 10)


def test_aligned_landmarks_land_on_the_template(rng):
    """Warp an image with 5 marked dots: after alignment the dots sit at the template (least squares)."""
    template = face_template(112)
    angle, scale = -0.3, 1.8
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = scale * template @ rotation.T + [60.0, 20.0]  # an exact similarity of the template
    image = np.zeros((300, 300))
    for x, y in np.round(landmarks).astype(int):
        image[y - 1:y + 2, x - 1:x + 2] = 255.0
    matrix = estimate_alignment(landmarks)
    np.testing.assert_allclose((matrix[:2, :2] @ landmarks.T).T + matrix[:2, 2], template, atol=1e-9)
    aligned = align_face(image, landmarks)
    assert aligned.shape == (112, 112, 3)
    for x, y in template:  # each dot (3x3 px, shrunk 1.8 times) is bright where the template says
        assert aligned[round(y), round(x), 0] > 60
    crops = align_faces(image, np.stack([landmarks, landmarks]), size=56, margin=0.1)
    assert crops.shape == (2, 56, 56, 3)
    np.testing.assert_array_equal(crops[0], crops[1])
    with pytest.raises(ValueError, match=r"landmarks must have shape \(n, 5, 2\)"):
        align_faces(image, landmarks)
    with pytest.raises(ValueError, match="five"):
        estimate_alignment(landmarks[:4])


def test_crop_square_like_facenet_pytorch_extract_face():
    image = np.tile(np.arange(200, dtype=np.float64)[None, :, None], (100, 1, 3))  # value = column
    face = crop_square(image, [50, 20, 90, 60], size=40, margin=0)
    assert face.shape == (40, 40, 3)
    np.testing.assert_allclose(face[0, :, 0], np.arange(50, 90))  # 40 px box -> 40 px: columns 50..89
    # margin 20 of 40 output px: box grows by 20 * 40 / 20 = 40 px in total, 20 on each side
    wide = crop_square(image, [50, 20, 90, 60], size=40, margin=20)
    np.testing.assert_allclose(wide[0, :, 0], np.arange(30, 110, 2) + 0.5)
    with pytest.raises(ValueError, match="outside"):
        crop_square(image, [300, 20, 340, 60], size=40)
    with pytest.raises(ValueError, match=r"margin must be in \[0, size\)"):
        crop_square(image, [50, 20, 90, 60], size=40, margin=40)
