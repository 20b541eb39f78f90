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
# # 01 — HOG and the sliding-window face detector
#
# Dalal & Triggs (2005) describe a window by **histograms of oriented gradients**: where the image
# changes and in which direction, pooled over small cells so that a few pixels of shift do not
# matter, normalised over blocks of cells so that light does not matter. A linear SVM scores a
# fixed-size window; a sliding window over an image pyramid finds faces of every size; NMS keeps
# one box per face.
#
# Every step below is a function of `scratchface.detection.hog` you can call and look at:
# `image_gradients` → `magnitude_orientation` → `cell_histograms` → `normalize_blocks`, chained
# by `hog` (same output as `skimage.feature.hog`).

# %%

import matplotlib.pyplot as plt
import numpy as np
from skimage import data

from scratchface.data import find_data_dir
from scratchface.detection.evaluation import evaluate_detections
from scratchface.detection.hog import (
    cell_histograms,
    hog,
    image_gradients,
    magnitude_orientation,
    normalize_block,
)
from scratchface.detection.hog_detector import (
    block_grid,
    detect_faces_hog,
    load_model,
    score_map,
)
from scratchface.detection.pyramid import image_pyramid, pyramid_scales
from scratchface.image import as_gray, read_image
from scratchface.viz.detections import draw_detections
from scratchface.viz.hog import show_gradients


DATA = find_data_dir()   # $SCRATCHFACE_DATA, else ../shared/data beside the repository
print("face data:", DATA if DATA else "not found: the detector is shown on scikit-image's astronaut instead")

# %% [markdown]
# ## 1. Gradients
#
# Central differences, no smoothing (Dalal & Triggs found that smoothing hurts):
#
# $$g_x[r, c] = I[r, c+1] - I[r, c-1], \qquad g_y[r, c] = I[r+1, c] - I[r-1, c],$$
#
# $$m = \sqrt{g_x^2 + g_y^2}, \qquad \theta = \operatorname{atan2}(g_y, g_x) \bmod 180^\circ .$$
#
# The orientation is *unsigned*: a dark-to-bright edge and a bright-to-dark edge of the same
# direction vote for the same bin, so a face looks the same on a dark or a bright background.

# %%
step = np.zeros((5, 5))
step[:, 3:] = 1.0                          # a vertical edge: dark left, bright right
g_row, g_col = image_gradients(step)
magnitude, orientation = magnitude_orientation(g_row, g_col)
print("g_x (columns):\n", g_col)
print("orientation where m > 0:", np.unique(orientation[magnitude > 0]), "degrees")

# %%
face = data.astronaut()[30:230, 140:320]   # the astronaut's head
show_gradients(face)
plt.show()

# %% [markdown]
# ## 2. One cell's histogram — the lecture's 8×8 example
#
# Each pixel votes with its magnitude $m$ for its orientation $\theta$. With $n = 9$ bins of width
# $w = 180/9 = 20°$ there are two conventions, and `cell_histograms(binning=...)` has both:
#
# * **hard** (scikit-image): bin $k$ is $[20k, 20k + 20)$ and gets the whole vote;
# * **bilinear** (Dalal & Triggs, the lecture): bins are *centred* at $0, 20, \dots, 160$; with
#   $p = \theta / w$ and $k = \lfloor p \rfloor$, bin $k \bmod 9$ gets $(1 - (p - k))\,m$ and bin
#   $(k+1) \bmod 9$ gets $(p - k)\,m$ (so $170°$ splits between 160 and 0: $180°$ wraps to $0°$).
#
# `cell_histograms` returns the mean vote per pixel (as scikit-image); times 64 it is the sum the
# lecture shows.

# %%
cell_magnitude = np.array([
    [2, 3, 4, 4, 3, 4, 2, 2],
    [5, 11, 17, 13, 7, 9, 3, 4],
    [11, 21, 23, 27, 22, 17, 4, 6],
    [23, 99, 165, 135, 85, 32, 26, 2],
    [91, 155, 133, 136, 144, 152, 57, 28],
    [98, 196, 76, 38, 26, 60, 170, 51],
    [165, 60, 60, 27, 77, 85, 43, 136],
    [71, 13, 34, 23, 108, 27, 48, 110]], dtype=float)
cell_orientation = np.array([
    [80, 36, 5, 10, 0, 64, 90, 73],
    [37, 9, 9, 179, 78, 27, 169, 166],
    [87, 136, 173, 39, 102, 163, 152, 176],
    [76, 13, 1, 168, 159, 22, 125, 143],
    [120, 70, 14, 150, 145, 144, 145, 143],
    [58, 86, 119, 98, 100, 101, 133, 113],
    [30, 65, 157, 75, 78, 165, 145, 124],
    [11, 170, 91, 4, 110, 17, 133, 110]], dtype=float)

histograms = {binning: 64 * cell_histograms(cell_magnitude, cell_orientation, orientations=9,
                                            pixels_per_cell=(8, 8), binning=binning)[0, 0]
              for binning in ("hard", "bilinear")}
centres = np.arange(0, 180, 20)
print("bin     " + "".join(f"{c:>8d}" for c in centres))
for binning, h in histograms.items():
    print(f"{binning:8s}" + "".join(f"{v:8.1f}" for v in h))
print("total magnitude", cell_magnitude.sum(), "= sum of either histogram:",
      {k: round(v.sum(), 6) for k, v in histograms.items()})

# %%
fig, ax = plt.subplots(figsize=(8, 3))
ax.bar(centres - 4, histograms["hard"], width=8, label="hard: bin [20k, 20k+20)")
ax.bar(centres + 4, histograms["bilinear"], width=8, label="bilinear: centred at 20k")
ax.set_xticks(centres)
ax.set_xlabel("orientation bin (degrees)")
ax.set_ylabel("sum of magnitudes")
ax.legend()
ax.set_title("the lecture's 8x8 cell")
plt.show()

# %% [markdown]
# The two differ most where many strong pixels sit between two centres (e.g. 136°–152°, split
# between the 140° and 160° bins). Hard binning is cheaper; bilinear binning makes the descriptor
# change smoothly when the image rotates a little.
#
# ## 3. Block normalisation
#
# Cells are grouped into overlapping blocks ($2\times2$ or $3\times3$ cells, step one cell) and each
# block's concatenated histograms $v$ are normalised; L2-Hys is
#
# $$v \leftarrow \frac{v}{\sqrt{\lVert v\rVert_2^2 + \varepsilon^2}}, \qquad
#   v \leftarrow \min(v, 0.2), \qquad v \leftarrow \frac{v}{\sqrt{\lVert v\rVert_2^2 + \varepsilon^2}} .$$
#
# Multiplying the image by a contrast factor multiplies every gradient, hence every histogram, by
# the same factor — and the normalisation divides it out.

# %%
gray = as_gray(face)
features = hog(gray, pixels_per_cell=(8, 8), cells_per_block=(2, 2))
darker = hog(0.3 * gray, pixels_per_cell=(8, 8), cells_per_block=(2, 2))
print("descriptor length", features.size, "| largest change when the contrast drops to 30%:",
      f"{np.abs(features - darker).max():.2e}")
block = np.stack([histograms["bilinear"], 2 * histograms["bilinear"]])  # a toy 2-cell block
print("L2-Hys of a 2-cell block, largest entry:", normalize_block(block, "L2-Hys").max().round(3),
      "(clipped at 0.2, then renormalised)")

# %% [markdown]
# ## 4. The HOG picture
#
# One glyph per cell: a line per orientation bin through the cell centre, perpendicular to the
# gradient (along the edge), as bright as the bin. The outline of the head is visible in the lines.

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 4.5))
axes[0].imshow(gray, cmap="gray")
axes[0].set_title("image")
for ax, cell in zip(axes[1:], (8, 16)):
    _, glyphs = hog(gray, pixels_per_cell=(cell, cell), cells_per_block=(1, 1), visualize=True)
    ax.imshow(glyphs, cmap="gray", vmax=np.percentile(glyphs, 99.5))   # clip the few brightest lines
    ax.set_title(f"HOG glyphs, {cell}x{cell} cells")
for ax in axes:
    ax.set_axis_off()
plt.show()

# %% [markdown]
# ## 5. Sliding window over a pyramid
#
# The shipped detector (`load_model()`, trained by `python -m experiments.hog_detector`) scores
# a $32\times32$ window: HOG with $4\times4$ cells and $2\times2$ blocks gives $7\times7$ blocks of
# $36$ numbers, and the score is $s = w^\top x + b$. HOG is computed **once per pyramid level**; a
# window is a $7\times7$ slice of the block grid, so all windows one cell apart are scored by one
# correlation (`score_map`):
#
# $$S[r, c] = b + \sum_{u, v} \langle B[r + u, c + v],\, W[u, v] \rangle .$$
#
# A level shrunk by $s$ finds faces of about $32 s$ pixels.

# %%
if DATA is not None:
    from scratchface.data.dlib_faces import load_dlib_faces

    photos = load_dlib_faces(DATA / "dlib_faces", "all")
    photo = next(p for p in photos if p.path.name == "2008_002470.jpg")
    image, truth = read_image(photo.path), photo.boxes
else:
    image, truth = data.astronaut(), None
model = load_model()
gray = as_gray(image)
levels = image_pyramid(gray, pyramid_scales(gray.shape, model.window, scale_step=0.8))
print(f"{len(levels)} levels, scales", [round(level.scale, 2) for level in levels])
show = levels[:4]
fig, axes = plt.subplots(1, len(show), figsize=(4 * len(show), 3.5))
for ax, level in zip(axes, show):
    scores = score_map(block_grid(level.image, model), model.weights, model.bias)
    ax.imshow(scores, cmap="coolwarm", vmin=-2, vmax=2)
    ax.set_title(f"scale {level.scale:.2f}: windows of {model.window / level.scale:.0f} px")
    ax.set_axis_off()
fig.suptitle("SVM score of every window (red: above 0)")
plt.show()

# %% [markdown]
# ## 6. Detect, suppress, evaluate
#
# Windows above the threshold become boxes in the original image; greedy non-maximum suppression
# (IoU > 0.3) keeps the best of overlapping boxes. A detection is *correct* when it overlaps an
# unmatched labelled face with $\mathrm{IoU} \ge 0.5$ (PASCAL VOC):
#
# $$\mathrm{recall} = \frac{TP}{\#\text{faces}}, \qquad \mathrm{precision} = \frac{TP}{\#\text{detections}} .$$

# %%
boxes, scores, _ = detect_faces_hog(image)
draw_detections(image, boxes, scores, ground_truth=truth, color="red",
                title=f"{len(boxes)} detections (red); labelled faces dashed green")
plt.show()

# %%
if DATA is not None:
    detections = [detect_faces_hog(read_image(p.path)) for p in photos]
    result = evaluate_detections(detections, [p.boxes for p in photos])
    print(f"dlib's 9 photos, {result.n_ground_truth} faces: recall {result.recall:.2f}, "
          f"precision {result.precision:.2f}, average precision {result.average_precision:.2f}")
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(result.recall_curve, result.precision_curve)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("precision-recall, threshold swept")
    plt.show()
else:
    print("no labelled photos without the face data: evaluation skipped")

# %% [markdown]
# A linear model on $32\times32$ HOG windows finds most upright frontal faces but also some
# textured background: this is what the CNN cascades of the next lectures improve on.

# %% [markdown]
# ## 7. Max-Margin Object Detection: training on every window
#
# The detector above learned from cropped faces and a few thousand mined negatives: it never saw
# most of the windows it is run on, nor the NMS that follows. King's **MMOD** (2015; dlib's
# `train_simple_object_detector`) trains the same linear filter on *all* windows of a few labelled
# photos, with the loss a detector is judged by. A labelling $y$ of a photo $x$ is a set of
# non-overlapping windows; its score is the sum of its windows' scores
# $F(x, y) = \sum_{r \in y} \langle w, \phi(r)\rangle$. The structural SVM:
#
# $$\min_w \; \tfrac12\lVert w\rVert^2 + \frac{C}{n}\sum_{i=1}^{n}
#   \Big(\max_{y}\big[\Delta(y, y_i) + F(x_i, y)\big] - F(x_i, y_i)\Big)$$
#
# * $\Delta(y, y_i)$ = (faces of $y_i$ that no window of $y$ hits) + (windows of $y$ that hit
#   nothing or a face already hit): misses and false alarms after NMS, one each.
# * The inner max ("loss-augmented detection") is a detection run with every window's score
#   raised by the loss it would add: greedy, by score, with NMS (`loss_augmented_detection`).
# * The bracket is a hinge: zero when the true faces outscore every other labelling by its loss.
#   Its subgradient is $\Psi(x_i, y^*) - \Psi(x_i, y_i)$, the features of the found windows minus
#   those of the true ones; a cutting-plane solver (`cutting_plane`) collects one plane per step.
#
# * The features are dlib's **FHOG** (Felzenszwalb et al. 2010), not the block HOG above: per
#   8x8 cell, 18 signed + 9 unsigned orientation bins (votes spread bilinearly over the 4 nearest
#   cells), each normalised by the four 2x2 blocks around the cell and clipped at 0.2, plus 4
#   gradient energies: 31 numbers (`scratchface.detection.fhog_features.fhog_reference`). The
#   filter is $10\times10$ cells $\times$ 31 for an $80\times80$ window, applied as one correlation
#   over each pyramid level's cell grid.
#
# `python -m experiments.mmod_detector` trains it on dlib's `training.xml` (4 photos, 18 faces,
# mirrored) in under a minute and compares it with dlib's own trainer in the same run (both
# find the 25 faces of `testing.xml` at precision 1.0, docs/results.md "MMOD"); the shipped filter is
# below, as HOG glyphs of its positive unsigned-orientation weights.

# %%
from scratchface.detection.hog import hog_glyph_image
from scratchface.detection.mmod import detect_faces_mmod, load_mmod_model

mmod = load_mmod_model()
n_orient = mmod.orientations
# FHOG's numbers per cell: 2 o signed bins, then o unsigned ones (0..180 degrees), then 4 energies
unsigned = mmod.filter[:, :, 2 * n_orient:3 * n_orient]
positive = np.clip(unsigned, 0, None)   # (10, 10, orientations): what the filter wants to see
glyph = hog_glyph_image(positive, (16, 16), (positive.shape[0] * 16, positive.shape[1] * 16))
fig, axes = plt.subplots(1, 2, figsize=(6, 3))
axes[0].imshow(glyph, cmap="gray")
axes[0].set_title("positive weights")
axes[1].imshow(hog_glyph_image(np.clip(-unsigned, 0, None), (16, 16), glyph.shape), cmap="gray")
axes[1].set_title("negative weights")
for ax in axes:
    ax.axis("off")
fig.suptitle(f"MMOD filter, {mmod.window[0]}x{mmod.window[1]} window")
plt.show()

# %% [markdown]
# The three detectors side by side on the test photos (`testing.xml`, faces neither MMOD nor the
# window SVMs trained on): one stage (window SVM), two stages (+ context re-scoring), MMOD.

# %%
if DATA is not None:
    test_photos = load_dlib_faces(DATA / "dlib_faces", "testing")
    detectors = {"one stage": lambda im: detect_faces_hog(im, second_stage=False),
                 "two stages": detect_faces_hog,
                 "MMOD": detect_faces_mmod}
    fig, ax = plt.subplots(figsize=(4, 4))
    for name, detect in detectors.items():
        found = [detect(read_image(p.path)) for p in test_photos]
        result = evaluate_detections(found, [p.boxes for p in test_photos])
        print(f"{name:>10}: {result.n_true_positives}/{result.n_ground_truth} found, "
              f"precision {result.precision:.2f}, AP {result.average_precision:.2f}")
        ax.plot(result.recall_curve, result.precision_curve, label=name)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.legend()
    ax.set_title("testing.xml, 25 faces")
    plt.show()
    test_image = read_image(test_photos[0].path)
    boxes, scores, _ = detect_faces_mmod(test_image)
    draw_detections(test_image, boxes, scores, ground_truth=test_photos[0].boxes, color="red",
                    title=f"MMOD: {len(boxes)} detections (red); labelled faces dashed green")
    plt.show()
else:
    print("no labelled photos without the face data: comparison skipped")

# %% [markdown]
# ## Exercises
#
# 1. **Descriptor length.** Dalal & Triggs' pedestrian window is $64 \times 128$ pixels, with
#    $8 \times 8$ cells, blocks of $2 \times 2$ cells moved one cell at a time, and 9 bins. How many
#    numbers are in its descriptor? Work it out, then check with `hog`.
# 2. **Unsigned gradients.** Predict what happens to the descriptor when the image is inverted
#    ($I \to 1 - I$: dark-on-light faces become light-on-dark), then check.
# 3. **Sliding windows.** How many $32 \times 32$ windows, moved 4 pixels at a time, fit in a
#    $100 \times 80$ (rows $\times$ columns) image at one scale?
#
# Try them before reading the worked answers below (they sit between `### BEGIN SOLUTION` markers:
# `scratchface.check.assignments.strip_solutions` gives the version without them).

# %%
### BEGIN SOLUTION
# 1. (128 / 8 - 1) x (64 / 8 - 1) = 15 x 7 = 105 block positions, each 2 x 2 cells x 9 bins = 36 numbers.
blocks = (128 // 8 - 1) * (64 // 8 - 1)
print("1.", blocks, "blocks x 36 =", blocks * 36, "numbers; hog says",
      hog(np.zeros((128, 64)), orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2)).size)
# 2. Inverting negates both gradients: the magnitude is unchanged and the orientation moves by 180
#    degrees, which is the same unsigned orientation. The descriptor does not change at all.
rng_exercise = np.random.default_rng(0)
patch = rng_exercise.random((64, 64))
print("2. same descriptor for I and 1 - I:", np.allclose(hog(patch), hog(1 - patch)))
# 3. Top-left corners at 0, 4, ..., up to 100 - 32 = 68 in rows (18 positions) and 80 - 32 = 48 in
#    columns (13 positions).
print("3.", ((100 - 32) // 4 + 1) * ((80 - 32) // 4 + 1), "windows")
### END SOLUTION
