"""DDFD heat maps: a window classifier's dense layers turned into convolutions.

Farfade, Saberian and Li's Deep Dense Face Detector (2015) fine-tunes a CNN to
say "face / not face" for one fixed-size window, then runs it on a whole image
*at once*: its fully connected layers become convolutions, and the network's
output is no longer one score but a map of scores, one per window position
(a heat map), computed with all the overlapping windows sharing their
convolutions.

The one idea (:func:`fc_to_conv`): a dense layer that reads a flattened
``(C, h, w)`` feature map, ``y_m = sum_{c,i,j} W[(c, i, j), m] x[c, i, j] + b_m``,
*is* an ``h x w`` convolution with ``M`` filters ``K[m, c, i, j] = W[(c, i, j), m]``
evaluated at one position; slid over a larger feature map it gives that dense
layer's output for every window. The dense layers after it read ``(M,)``
vectors and become 1x1 convolutions.

:class:`WindowClassifier` is a small such network trained with scratchface's
own modules (:mod:`scratchface.nn`) on 24x24 face / non-face samples
(:mod:`scratchface.detection.mtcnn_training`); :func:`heatmap` runs its
converted form on an image. Position ``(r, c)`` of the map is the window whose
top-left pixel is ``(stride r, stride c)``, ``stride`` the product of the pooling
strides (4 here). :func:`heatmap_detections` turns the peaks of heat maps at
several scales into :class:`~scratchface.detection.detections.Detections`
(threshold, boxes in the image's pixels, NMS).

References
----------
S. S. Farfade, M. Saberian, L.-J. Li, "Multi-view Face Detection Using Deep
Convolutional Neural Networks", ICMR 2015.
J. Long, E. Shelhamer, T. Darrell, "Fully Convolutional Networks for Semantic
Segmentation", CVPR 2015 (sec. 3.1, "convolutionalization").
"""
from __future__ import annotations

import numpy as np

from .._validation import as_generator, check_array, check_in_range, check_positive_int
from ..layers.activations import relu_forward
from ..layers.conv import conv2d_forward
from ..layers.pooling import max_pool2d_forward
from ..layers.softmax import softmax_cross_entropy_backward, softmax_cross_entropy_forward, softmax_forward
from ..nn import layers as L
from ..nn.blocks import Sequential
from ..nn.module import Module
from ..nn.optim import Adam
from .detections import Detections, empty_detections
from .nms import nms

__all__ = ["WindowClassifier", "dense_to_1x1_conv", "fc_to_conv", "heatmap", "heatmap_detections", "heatmap_windows"]


def fc_to_conv(w, b, feature_shape):
    """The convolution equal to a dense layer on a flattened ``(C, h, w)`` feature map.

    Parameters
    ----------
    w : array, shape (C*h*w, M)
        Dense weights (scratchface layout ``out = x @ w + b``) reading the feature
        map flattened in NumPy (C, h, w) order.
    b : array, shape (M,)
    feature_shape : (C, h, w)

    Returns
    -------
    kernel : array, shape (M, C, h, w)
        ``kernel[m, c, i, j] = w[(c h + i) w + j, m]``.
    bias : array, shape (M,)
    """
    check_array(w, "w", ndim=2, dtype_kind="f")
    c, h, wd = (check_positive_int(v, "feature_shape") for v in feature_shape)
    if w.shape[0] != c * h * wd:
        raise ValueError(f"w must have C*h*w = {c * h * wd} rows for feature_shape {tuple(feature_shape)}, "
                         f"got {w.shape}")
    return np.ascontiguousarray(w.T.reshape(w.shape[1], c, h, wd)), np.asarray(b).copy()


def dense_to_1x1_conv(w, b):
    """A dense layer on ``(M,)`` vectors as a 1x1 convolution: kernel (M', M, 1, 1)."""
    check_array(w, "w", ndim=2, dtype_kind="f")
    return np.ascontiguousarray(w.T[:, :, None, None]), np.asarray(b).copy()


class WindowClassifier(Module):
    """A small face / non-face classifier of 24x24 RGB windows, built from :mod:`scratchface.nn`.

    conv 3x3 (3 -> 8), ReLU, max-pool 2, conv 2x2 (8 -> 16), ReLU, max-pool 2
    [feature map 16 x 5 x 5], flatten, dense 400 -> ``hidden``, ReLU, dense -> 2.

    The sizes are chosen so that every pixel of the 24x24 window reaches the
    output (24 -> 22 -> 11 -> 10 -> 5, no row left over by a pooling): then the
    heat map has exactly one position per window inside the image,
    ``floor((H - 24) / 4) + 1`` rows.

    Parameters
    ----------
    rng : numpy.random.Generator or int
        Seeds the initialisation.
    hidden : int
    dtype : float dtype
    """

    window = 24
    stride = 4  #: two 2x2 poolings

    def __init__(self, rng, *, hidden=32, dtype=np.float32):
        super().__init__()
        rng = as_generator(rng)
        self.features = Sequential({
            "conv1": L.Conv2d(3, 8, 3, rng=rng, dtype=dtype), "relu1": L.ReLU(), "pool1": L.MaxPool2d(2),
            "conv2": L.Conv2d(8, 16, 2, rng=rng, dtype=dtype), "relu2": L.ReLU(), "pool2": L.MaxPool2d(2)})
        self.feature_shape = self.features.output_shape((3, self.window, self.window))
        size = int(np.prod(self.feature_shape))
        self.classifier = Sequential({
            "fc1": L.Dense(size, check_positive_int(hidden, "hidden"), rng=rng, dtype=dtype),
            "relu3": L.ReLU(), "fc2": L.Dense(hidden, 2, rng=rng, dtype=dtype, init="xavier_normal")})

    def forward(self, x):
        """Windows (N, 3, 24, 24) -> logits (N, 2)."""
        f = self.features.forward(x)
        return self.classifier.forward(f.reshape(len(x), -1))

    def backward(self, dlogits):
        df = self.classifier.backward(dlogits)
        return self.features.backward(df.reshape((len(df),) + tuple(self.feature_shape)))

    def face_probability(self, x):
        probs, _ = softmax_forward(self.forward(x), axis=1)
        return probs[:, 1]

    def fit(self, images, labels, *, rng, epochs=10, batch_size=64, lr=2e-3):
        """Train with softmax cross-entropy and Adam; returns the mean loss of each epoch.

        ``images`` (N, 3, 24, 24) normalised windows, ``labels`` (N,) 1 face / 0 not.
        """
        optimiser = Adam(self.parameters(), lr=lr)
        labels = np.asarray(labels, dtype=np.int64)
        history = []
        for _ in range(check_positive_int(epochs, "epochs")):
            order = rng.permutation(len(labels))
            total = 0.0
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                self.zero_grad()
                loss, cache = softmax_cross_entropy_forward(self.forward(images[idx]), labels=labels[idx])
                self.backward(softmax_cross_entropy_backward(1.0, cache))
                optimiser.step()
                total += float(loss) * len(idx)
            history.append(total / len(labels))
        return history

    def conv_layers(self):
        """The whole network as convolutions: a list of ``(kind, arrays)`` for :func:`heatmap`."""
        f = self.features._modules
        c = self.classifier._modules
        fc1 = fc_to_conv(c["fc1"].weight.data, c["fc1"].bias.data, self.feature_shape)
        fc2 = dense_to_1x1_conv(c["fc2"].weight.data, c["fc2"].bias.data)
        return [("conv", (f["conv1"].weight.data, f["conv1"].bias.data)), ("relu", ()), ("pool", 2),
                ("conv", (f["conv2"].weight.data, f["conv2"].bias.data)), ("relu", ()), ("pool", 2),
                ("conv", fc1), ("relu", ()), ("conv", fc2)]


def heatmap(x, layers):
    """Run a convolutionalised classifier on whole images: face probability per window position.

    Parameters
    ----------
    x : float array, shape (N, 3, H, W), H, W >= the window
        Normalised images.
    layers : list
        From :meth:`WindowClassifier.conv_layers`.

    Returns
    -------
    probs : array, shape (N, H', W')
        ``probs[n, r, c]`` is the classifier's face probability for the window
        ``x[n, :, s r : s r + window, s c : s c + window]`` (``s`` the stride).
    """
    out = x
    for kind, arg in layers:
        if kind == "conv":
            out, _ = conv2d_forward(out, *arg)
        elif kind == "relu":
            out, _ = relu_forward(out)
        elif kind == "pool":
            out, _ = max_pool2d_forward(out, kernel_size=arg, stride=arg)
        else:
            raise ValueError(f"unknown layer kind {kind!r}")
    probs, _ = softmax_forward(out, axis=1)
    return probs[:, 1]


def heatmap_windows(shape, window=WindowClassifier.window, stride=WindowClassifier.stride):
    """Boxes (x1, y1, x2, y2) of a heat map's positions, shape (H', W', 4)."""
    rows, cols = shape
    r, c = np.mgrid[0:rows, 0:cols]
    return np.stack([c * stride, r * stride, c * stride + window, r * stride + window], axis=-1)


def heatmap_detections(heat_maps, *, window=WindowClassifier.window, stride=WindowClassifier.stride,
                       threshold=0.5, nms_threshold=0.3) -> Detections:
    """The peaks of heat maps as detections: every position above ``threshold`` is a box, then NMS.

    Parameters
    ----------
    heat_maps : dict of float to array (H', W')
        Scale ``s`` (level size / image size, as :func:`scratchface.detection.pyramid.pyramid_scales`)
        to the face-probability map of the image resized by ``s`` (:func:`heatmap`).
    window, stride : int
        The classifier's window and the map's step, in level pixels: position ``(r, c)``
        is the box ``(stride c, stride r, stride c + window, stride r + window) / s`` of the image.
    threshold : float in [0, 1]
        Keep positions with probability above it.
    nms_threshold : float in [0, 1]
        IoU above which the less probable of two boxes is dropped.

    Returns
    -------
    Detections
        ``boxes`` float64 (n, 4) in the image's pixels and ``scores`` (n,) probabilities,
        by decreasing score; ``landmarks`` None.
    """
    threshold = check_in_range(threshold, "threshold", 0.0, 1.0)
    nms_threshold = check_in_range(nms_threshold, "nms_threshold", 0.0, 1.0)
    window, stride = check_positive_int(window, "window"), check_positive_int(stride, "stride")
    if not isinstance(heat_maps, dict):
        raise TypeError(f"heat_maps must be a dict of scale -> heat map, got {type(heat_maps).__name__}")
    boxes, scores = [], []
    for scale, heat in heat_maps.items():
        heat = check_array(heat, "heat_maps[...]", ndim=2)
        rows, cols = np.nonzero(heat > threshold)
        x1, y1 = stride * cols / scale, stride * rows / scale
        boxes.append(np.stack([x1, y1, x1 + window / scale, y1 + window / scale], axis=1).reshape(-1, 4))
        scores.append(heat[rows, cols].astype(np.float64))
    if not boxes or sum(len(b) for b in boxes) == 0:
        return empty_detections()
    boxes, scores = np.concatenate(boxes), np.concatenate(scores)
    keep = nms(boxes, scores, nms_threshold)
    return Detections(boxes[keep], scores[keep], None)
