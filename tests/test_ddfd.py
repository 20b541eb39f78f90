"""DDFD: dense layers as convolutions; the heat map at each position is the classifier on that window."""
import numpy as np
import pytest

from scratchface.detection.ddfd import (
    WindowClassifier,
    dense_to_1x1_conv,
    fc_to_conv,
    heatmap,
    heatmap_windows,
)
from scratchface.layers.conv import conv2d_forward
from scratchface.layers.dense import dense_forward


def test_fc_to_conv_is_the_dense_layer_at_one_position(rng):
    c, h, w, m = 5, 3, 4, 7
    weights, bias = rng.standard_normal((c * h * w, m)), rng.standard_normal(m)
    x = rng.standard_normal((2, c, h, w))
    dense, _ = dense_forward(x.reshape(2, -1), weights, bias)
    kernel, kbias = fc_to_conv(weights, bias, (c, h, w))
    assert kernel.shape == (m, c, h, w)
    conv, _ = conv2d_forward(x, kernel, kbias)
    np.testing.assert_allclose(conv[:, :, 0, 0], dense, rtol=1e-12)
    # and by hand for one weight: kernel[m, c, i, j] = w[(c h + i) w + j, m]
    assert kernel[6, 2, 1, 3] == weights[(2 * h + 1) * w + 3, 6]
    one, one_b = dense_to_1x1_conv(weights[:m, :3], bias[:3])
    v = rng.standard_normal((2, m, 1, 1))
    np.testing.assert_allclose(conv2d_forward(v, one, one_b)[0][:, :, 0, 0],
                               dense_forward(v[:, :, 0, 0], weights[:m, :3], bias[:3])[0], rtol=1e-12)
    with pytest.raises(ValueError, match="C\\*h\\*w = 60 rows"):
        fc_to_conv(weights[:-1], bias, (c, h, w))


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 2e-5)])
def test_heatmap_equals_the_classifier_on_every_window(rng, dtype, tol):
    net = WindowClassifier(rng, hidden=16, dtype=dtype)
    image = rng.uniform(-1, 1, (2, 3, 24 + 4 * 4 + 3, 24 + 4 * 6 + 1)).astype(dtype)  # odd sizes on purpose
    heat = heatmap(image, net.conv_layers())
    assert heat.shape == (2, 5, 7)
    boxes = heatmap_windows(heat.shape[1:])
    windows = np.stack([image[n, :, y1:y2, x1:x2] for n in range(2) for x1, y1, x2, y2 in boxes.reshape(-1, 4)])
    expected = net.face_probability(windows).reshape(heat.shape)
    np.testing.assert_allclose(heat, expected, rtol=tol, atol=tol)


def test_trained_window_classifier_heatmap(data_dir):
    """Train briefly on 24x24 face / background windows; its heat map on a photo still matches window by window."""
    from scratchface.data.dlib_faces import load_dlib_faces
    from scratchface.detection.mtcnn import normalize_pixels
    from scratchface.detection.mtcnn_training import (
        NEGATIVE,
        POSITIVE,
        concat_samples,
        generate_samples,
    )
    from scratchface.image import read_image

    rng = np.random.default_rng(5)
    photos = load_dlib_faces(data_dir / "dlib_faces", "training")
    samples = concat_samples(generate_samples(read_image(p.path), p.boxes, rng=rng, size=24, negatives=150,
                                              around_faces=25) for p in photos)
    use = (samples.labels == POSITIVE) | (samples.labels == NEGATIVE)
    net = WindowClassifier(rng)
    history = net.fit(samples.images[use], samples.labels[use], rng=rng, epochs=4)
    assert history[-1] < 0.7 * history[0]
    rgb = read_image(photos[0].path)[80:180, 150:300].astype(np.float32)  # a strip with faces
    x = np.ascontiguousarray(normalize_pixels(rgb).transpose(2, 0, 1)[None])
    heat = heatmap(x, net.conv_layers())
    boxes = heatmap_windows(heat.shape[1:]).reshape(-1, 4)
    windows = np.stack([x[0, :, y1:y2, x1:x2] for x1, y1, x2, y2 in boxes])
    np.testing.assert_allclose(heat[0].ravel(), net.face_probability(windows), rtol=2e-5, atol=2e-5)
    assert heat.max() > 0.5 > heat.min()  # faces and background both present in the strip
