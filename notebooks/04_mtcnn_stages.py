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
# # 04 — MTCNN, stage by stage
#
# Zhang et al.'s Multi-task Cascaded CNN (2016) finds faces with three small networks, each
# looking at what the previous one let through:
#
# 1. an **image pyramid**, so that every face becomes about $12\times12$ pixels at some level;
# 2. **P-Net** (proposal), fully convolutional: a face probability for every $12\times12$ window,
#    every 2 pixels, plus a box correction; NMS;
# 3. **R-Net** (refine) on $24\times24$ crops of the survivors: rejects most, corrects the boxes;
# 4. **O-Net** (output) on $48\times48$ crops: the final boxes and **five landmarks**.
#
# The weights are the real ones (facenet-pytorch 2.6.0, MIT), shipped with the package. Each step
# is a function of `scratchface.detection.pyramid` (`pyramid_scales`, `image_pyramid`) or of
# `scratchface.detection.mtcnn` (`pnet_stage`, `rnet_stage`, `onet_stage`); `detect_faces` chains them.

# %%

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle
from skimage import data

from scratchface.data import find_data_dir
from scratchface.detection.mtcnn import (
    CELL_SIZE,
    detect_faces,
    normalize_pixels,
    onet_stage,
    pnet_stage,
    rnet_stage,
)
from scratchface.detection.pyramid import image_pyramid, pyramid_scales
from scratchface.image import read_image
from scratchface.models.mtcnn_nets import load_mtcnn_weights, pnet_forward


DATA = find_data_dir()   # $SCRATCHFACE_DATA, else ../shared/data beside the repository
if DATA is not None:
    image = read_image(DATA / "dlib_faces" / "2008_002470.jpg")
    print("photo: dlib's 2008_002470.jpg (PASCAL VOC), six labelled faces")
else:
    image = data.astronaut()
    print("face data not found: using scikit-image's astronaut")
weights = load_mtcnn_weights()


def draw(ax, boxes, title, color="red", lw=1.0):
    ax.imshow(image)
    for x1, y1, x2, y2 in np.asarray(boxes).reshape(-1, 4):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=color, lw=lw))
    ax.set_title(title)
    ax.set_axis_off()


# %% [markdown]
# ## 1. The pyramid
#
# A face of `min_face_size` pixels must shrink to P-Net's 12-pixel cell, so the first scale is
# $s_0 = 12 / \text{min\_face\_size}$, and each next one is $0.709\,s_k$ (area halves every two levels)
# while the shorter side still holds 12 pixels. Each level is resized by area averaging.

# %%
height, width = image.shape[:2]
scales = pyramid_scales((height, width), CELL_SIZE, min_face_size=20, scale_step=0.709)
levels = [level.image for level in image_pyramid(image, scales, resample="area")]
print("scales:", np.round(scales, 3))
print("level sizes:", [level.shape[:2] for level in levels])
fig, axes = plt.subplots(1, 5, figsize=(15, 2.6), gridspec_kw={"width_ratios": [lv.shape[1] for lv in levels[:5]]})
for ax, level, scale in zip(axes, levels, scales):
    ax.imshow(level.astype(np.uint8))
    ax.set_title(f"scale {scale:.3f}: faces of {12 / scale:.0f} px")
    ax.set_axis_off()
plt.show()

# %% [markdown]
# ## 2. P-Net: a probability map per level
#
# P-Net has no dense layer (conv 3, pool 2, conv 3, conv 3, then two $1\times1$ heads), so on a
# whole level it outputs a map: position $(r, c)$ is the window whose top-left pixel is
# $(2r, 2c)$ of the level, i.e. about $(2r/s, 2c/s)$ of the photo, of side $12/s$. Pixels are
# normalised as $(x - 127.5)/128$.

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
for ax, k in zip(axes, (1, 2, 3)):
    x = np.ascontiguousarray(normalize_pixels(levels[k]).transpose(2, 0, 1)[None])
    out = pnet_forward(x, weights)
    shown = ax.imshow(out.probs[0, 1], cmap="inferno", vmin=0, vmax=1)
    ax.set_title(f"P-Net p(face), scale {scales[k]:.3f} ({12 / scales[k]:.0f} px faces)")
    ax.set_axis_off()
fig.colorbar(shown, ax=axes[-1], fraction=0.046)
plt.show()

# %% [markdown]
# ## 3. From windows to boxes: threshold, NMS, regression
#
# Windows with $p \ge 0.6$ become boxes; NMS (IoU 0.5 within a level, 0.7 across levels) keeps the
# most probable of overlapping boxes, with
#
# $$\mathrm{IoU}(A, B) = \frac{|A \cap B|}{|A \cup B|} .$$
#
# Then each box is moved by the predicted offsets, in units of its width $w$ and height $h$:
# $x_1' = x_1 + t_{x_1} w$, $y_1' = y_1 + t_{y_1} h$, ..., and squared around its centre.

# %%
stage1 = pnet_stage(image, scales, threshold=0.6, weights=weights)
stage2 = rnet_stage(image, stage1.boxes, threshold=0.7, weights=weights)
stage3 = onet_stage(image, stage2.boxes, threshold=0.7, weights=weights)
print(f"P-Net: {len(stage1.boxes)} candidates | R-Net: {len(stage2.boxes)} | O-Net: {len(stage3.boxes)} faces")

fig, axes = plt.subplots(1, 3, figsize=(18, 5))
draw(axes[0], stage1.boxes, f"after P-Net + NMS: {len(stage1.boxes)} boxes", lw=0.6)
draw(axes[1], stage2.boxes, f"after R-Net: {len(stage2.boxes)} boxes")
draw(axes[2], stage3.boxes, f"after O-Net: {len(stage3.boxes)} faces", color="lime", lw=2)
for face in stage3.landmarks:
    axes[2].plot(face[:, 0], face[:, 1], "o", color="yellow", ms=3)
plt.show()

# %% [markdown]
# ## 4. R-Net and O-Net look at crops
#
# Each candidate box is cut out (clipped to the photo) and resized: $24\times24$ for R-Net,
# $48\times48$ for O-Net. These two end in dense layers, so they see the whole crop at once. O-Net
# also outputs five landmarks (eyes, nose tip, mouth corners) as fractions of its box; its last NMS
# divides the intersection by the *smaller* box, to drop a box lying inside another.

# %%
faces = stage3.boxes.astype(int)
fig, axes = plt.subplots(1, max(len(faces), 1), figsize=(2.2 * max(len(faces), 1), 2.6), squeeze=False)
for ax, box, points, p in zip(axes[0], faces, stage3.landmarks, stage3.scores):
    x1, y1, x2, y2 = np.maximum(box, 0)
    ax.imshow(image[y1:y2, x1:x2])
    ax.plot(points[:, 0] - x1, points[:, 1] - y1, "o", color="yellow", ms=4)
    ax.set_title(f"p = {p:.3f}", fontsize=9)
    ax.set_axis_off()
plt.show()

# %% [markdown]
# ## 5. The whole cascade in one call, and how it is trained
#
# `detect_faces` runs the same stages (it agrees with facenet-pytorch to about $10^{-4}$ pixels).
# Training (the lecture): each network minimises a weighted sum of three losses over samples of
# four types (negatives IoU < 0.3, positives IoU > 0.65, part faces 0.4–0.65, landmark faces):
#
# $$\min \sum_i \sum_{j \in \{\text{det}, \text{box}, \text{landmark}\}} \alpha_j\, \beta_i^j\, L_i^j ,$$
#
# with $\beta_i^j \in \{0, 1\}$ switching off the losses a sample cannot train, $\alpha = (1, 0.5, 0.5)$
# for P-Net and R-Net and $(1, 0.5, 1)$ for O-Net; $L^{\text{det}}$ is the cross-entropy, $L^{\text{box}}$
# and $L^{\text{landmark}}$ squared L2. Online hard sample mining back-propagates only the 70% of
# samples with the highest loss (`scratchface.losses.mtcnn`; samples and a P-Net run:
# `scratchface.detection.mtcnn_training`).

# %%
boxes, scores, landmarks = detect_faces(image, sort_by="probability")
print("detect_faces gives the same boxes as the three stages:",
      np.allclose(np.sort(boxes, axis=0), np.sort(stage3.boxes, axis=0)))
print(np.round(boxes).astype(int))

# %% [markdown]
# ## Exercises
#
# 1. **The pyramid.** With `min_face_size=20` and `scale_factor=0.709`, how many scales does P-Net
#    run on a $480 \times 640$ photo? Work it out from $s_0 = 12 / 20$, $s_{k+1} = 0.709\, s_k$, while
#    $480\, s_k \ge 12$; check with `pyramid_scales`. Why 0.709?
# 2. **Box regression.** P-Net proposes the box $(100, 50, 160, 110)$ with offsets
#    $(0.1, -0.05, 0.0, 0.2)$, in units of the box's width and height. Where does the box move?
# 3. **Squaring.** Before R-Net crops its $24 \times 24$ input, the box is made square around its
#    centre, side = the longer side. Square the box of exercise 2.

# %%
### BEGIN SOLUTION
# 1. The scales go down by 0.709 until 480 * s < 12, i.e. s < 0.025; 0.709 = 1 / sqrt(2): each
#    scale halves the image's area.
scales, s = [], 12 / 20
while 480 * s >= 12:
    scales.append(s)
    s *= 0.709
print(f"1. {len(scales)} scales by hand, {len(pyramid_scales((480, 640), 12, min_face_size=20))} from pyramid_scales; "
      f"0.709 ** 2 = {0.709 ** 2:.3f}")
# 2. Each corner moves by its offset times the box's width (x) or height (y): 60 x 60 here.
box, offsets = np.array([100.0, 50.0, 160.0, 110.0]), np.array([0.1, -0.05, 0.0, 0.2])
side = np.array([box[2] - box[0], box[3] - box[1]] * 2)
moved = box + offsets * side
print("2. regressed box", moved.tolist())
# 3. The regressed box is 54 wide and 75 high: side 75 around its centre (133, 84.5).
centre, longest = (moved[:2] + moved[2:]) / 2, max(moved[2] - moved[0], moved[3] - moved[1])
print("3. square box", np.concatenate([centre - longest / 2, centre + longest / 2]).tolist())
### END SOLUTION
