# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 — CNN face detection and DDFD heat maps
#
# Replace HOG + linear SVM by a small CNN trained to answer "face or not?" for one fixed-size
# window. Sliding it over an image window by window recomputes the same convolutions many times.
# Farfade, Saberian and Li's **Deep Dense Face Detector** (DDFD, 2015) runs the network on the whole
# image at once: its fully connected layers are rewritten as convolutions, so the output is no
# longer one probability but a **heat map** — one probability per window position.
#
# The library: `scratchface.nn.examples.train_lfw_subset_cnn` (the CNN), `scratchface.detection.ddfd`
# (`fc_to_conv`, `heatmap`).

# %%

import matplotlib.pyplot as plt
import numpy as np
from skimage import data

from scratchface.data import find_data_dir
from scratchface.detection.ddfd import fc_to_conv, heatmap, heatmap_detections
from scratchface.detection.nms import nms
from scratchface.detection.pyramid import resize
from scratchface.image import as_gray, read_image
from scratchface.layers.softmax import softmax_forward
from scratchface.nn.examples import load_lfw_subset, train_lfw_subset_cnn
from scratchface.nn.summary import print_summary
from scratchface.viz.detections import draw_detections


DATA = find_data_dir()   # $SCRATCHFACE_DATA, else ../shared/data beside the repository
print("face data:", DATA if DATA else "not found: the heat map is shown on scikit-image's astronaut instead")

# %% [markdown]
# ## 1. A window classifier
#
# scikit-image ships `lfw_subset`: 100 grey $25\times25$ faces from Labeled Faces in the Wild and
# 100 non-face patches. A two-convolution CNN built from `scratchface.nn` modules learns to tell
# them apart with the softmax cross-entropy
#
# $$L = -\frac{1}{N}\sum_n \log \frac{e^{z_{n, y_n}}}{\sum_k e^{z_{n,k}}} ,$$
#
# trained with Adam (70 + 70 images for training, 30 + 30 held out).

# %%
model, history, accuracy = train_lfw_subset_cnn(seed=0, epochs=5, verbose=False)
print_summary(model, (1, 25, 25))
print(f"held-out accuracy {accuracy:.2f}; loss per epoch", np.round(history["loss"], 3))

# %%
x_train, y_train, x_test, y_test = load_lfw_subset(seed=0)
probs = softmax_forward(model.forward(x_test), axis=1)[0][:, 1]
fig, axes = plt.subplots(2, 8, figsize=(12, 3.3))
for ax, k in zip(axes.ravel(), np.r_[0:8, len(y_test) - 8:len(y_test)]):
    ax.imshow(x_test[k, 0], cmap="gray")
    ax.set_title(f"p(face) {probs[k]:.2f}", fontsize=8, color="green" if (probs[k] > 0.5) == y_test[k] else "red")
    ax.set_axis_off()
fig.suptitle("held-out faces (top) and non-faces (bottom)")
plt.show()

# %% [markdown]
# ## 2. Dense layers are convolutions
#
# The last layer reads the flattened $16 \times 6 \times 6$ feature map $x$:
#
# $$z_m = b_m + \sum_{c, i, j} W[(c, i, j), m]\; x[c, i, j] .$$
#
# That is exactly a convolution with $M$ filters of size $6 \times 6$, evaluated at one position,
# with kernel $K[m, c, i, j] = W[(c, i, j), m]$. Slid over a larger feature map, it gives $z$ for every
# window at once (`fc_to_conv`; Long et al.'s "convolutionalization"). One window, both ways:

# %%
fc = model["fc"]
kernel, bias = fc_to_conv(fc.weight.data, fc.bias.data, (16, 6, 6))
print("dense weights", fc.weight.data.shape, "-> convolution kernel", kernel.shape)

features = list(model)[:6]                   # conv - relu - pool - conv - relu - pool


def feature_map(x):
    for layer in features:
        x = layer.forward(x)
    return x


window = x_test[:1]
as_dense = softmax_forward(model.forward(window), axis=1)[0][:, 1]
as_conv = heatmap(feature_map(window), [("conv", (kernel, bias))])
print("p(face) by the classifier:", as_dense.round(6), "| by the convolutional form:", as_conv.ravel().round(6))

# %% [markdown]
# ## 3. The heat map of a whole photo
#
# Run the convolutional form on a whole grey photo. The two $2\times2$ poolings make the map's
# step 4 pixels: position $(r, c)$ is the window whose top-left pixel is $(4r, 4c)$, about
# $24 \times 24$ pixels. Faces of other sizes need an image pyramid, as for HOG: here three scales
# chosen so that the photo's faces become about 25 pixels. (Inside the photo each window sees its
# real neighbours instead of the zero padding it was trained with, a small difference.)

# %%
if DATA is not None:
    from scratchface.data.dlib_faces import load_dlib_faces

    photo = next(p for p in load_dlib_faces(DATA / "dlib_faces", "all") if p.path.name == "2008_002470.jpg")
    rgb, truth, scales = read_image(photo.path), photo.boxes, (0.5, 0.6, 0.7)
else:
    rgb, truth, scales = data.astronaut(), None, (0.14, 0.17, 0.2)
gray = as_gray(rgb)
pixels = data.lfw_subset()
mean, std = pixels.mean(), pixels.std()          # the standardisation the classifier was trained with

heat_maps = {}
for scale in scales:
    small = resize(gray, (round(gray.shape[0] * scale), round(gray.shape[1] * scale)))
    x = ((small - mean) / std).astype(np.float32)[None, None]
    heat_maps[scale] = heatmap(feature_map(x), [("conv", (kernel, bias))])[0]

fig, axes = plt.subplots(1, len(scales) + 1, figsize=(4.5 * (len(scales) + 1), 3.5))
axes[0].imshow(gray, cmap="gray")
axes[0].set_title("photo")
for ax, (scale, heat) in zip(axes[1:], heat_maps.items()):
    shown = ax.imshow(heat, cmap="inferno", vmin=0, vmax=1)
    ax.set_title(f"p(face), image x {scale}: faces of ~{25 / scale:.0f} px")
for ax in axes:
    ax.set_axis_off()
fig.colorbar(shown, ax=axes[-1], fraction=0.046)
plt.show()

# %% [markdown]
# ## 4. From heat map to boxes
#
# Every position above a threshold is a box of $25/s$ pixels in the photo; non-maximum suppression
# keeps the most probable of overlapping boxes (`heatmap_detections`). A classifier that only saw 70 faces and 70 patches
# fires on much more than faces — this is why DDFD fine-tunes AlexNet on 200,000 faces, and why
# MTCNN (next notebook) adds two more networks to reject what the first one lets through.

# %%
found = heatmap_detections(heat_maps, window=25, stride=4, threshold=0.99, nms_threshold=0.2)
n_windows = sum(int((heat > 0.99).sum()) for heat in heat_maps.values())
print(f"{n_windows} windows above 0.99, {len(found.boxes)} after NMS")
draw_detections(rgb, found, ground_truth=truth, color="red",
                title="CNN windows after NMS (red); labelled faces dashed green")
plt.show()

# %% [markdown]
# ## Exercises
#
# 1. **Receptive field.** A network stacks conv $5 \times 5$ (stride 1), max pool $2 \times 2$
#    (stride 2), conv $3 \times 3$, conv $3 \times 3$. How many input pixels does one output unit see
#    (per side)? Use $r_{out} = r_{in} + (k - 1)\, j_{in}$, $j_{out} = j_{in}\, s$.
# 2. **Heat-map size.** The same network made fully convolutional (no padding) runs on a
#    $100 \times 120$ image: what is the size of the output map, and how far apart (in input pixels)
#    are two neighbouring outputs?
# 3. **The NMS threshold.** Two detections of two different people overlap with IoU 0.35. For which
#    `iou_threshold` does NMS keep both?

# %%
### BEGIN SOLUTION
# 1. Receptive field and jump (distance in input pixels between neighbouring units), layer by layer.
layers = [("conv 5x5", 5, 1), ("max pool 2x2", 2, 2), ("conv 3x3", 3, 1), ("conv 3x3", 3, 1)]
field, jump = 1, 1
for name, kernel, stride in layers:
    field, jump = field + (kernel - 1) * jump, jump * stride
    print(f"1. after {name:12s}: receptive field {field:2d}, jump {jump}")
# 2. Sizes: valid conv n -> n - k + 1, pool n -> (n - 2) // 2 + 1.
size = np.array([100, 120])
for name, kernel, stride in layers:
    size = (size - kernel) // stride + 1
print("2. output map", size.tolist(), f"(one output every {jump} input pixels)")
# 3. A box is dropped when its IoU with a kept box is > iou_threshold: both stay for thresholds >= 0.35.
two = np.array([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 3.5]])   # IoU 35 / 100 = 0.35
for threshold in (0.3, 0.35, 0.5):
    print(f"3. iou_threshold {threshold}: kept {nms(two, np.array([0.9, 0.8]), threshold).tolist()}")
### END SOLUTION
