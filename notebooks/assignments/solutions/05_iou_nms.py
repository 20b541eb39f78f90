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
# # Assignment 5 — intersection over union and non-maximum suppression
#
# A sliding-window detector (HOG + SVM, or MTCNN's P-Net) fires many times around each face: at
# neighbouring positions and at neighbouring scales of the pyramid. **Non-maximum suppression**
# (NMS) keeps one box per face. It needs one measure of how much two boxes overlap: the
# **intersection over union**.
#
# You write two functions, with the signatures of `scratchface.detection.nms`:
#
# * `iou(boxes_a, boxes_b, *, offset=0)` — every pair's IoU, shape `(n, m)`;
# * `nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0)` — the indices of the kept
#   boxes, by decreasing score.
#
# After each one, `check(...)` compares your function with the reference on random boxes and on
# edge cases (touching boxes, ties in score, an overlap exactly equal to the threshold, zero-area
# boxes, no boxes at all) and says what is wrong and the likely mistake. From a shell, the same
# check is `python -m scratchface.check nms 05_iou_nms.py`.

# %%
import numpy as np

from scratchface.check import check

# %% [markdown]
# ## 1. Intersection over union
#
# A box is a row $(x_1, y_1, x_2, y_2)$ with $x_2 \ge x_1$, $y_2 \ge y_1$. In continuous
# coordinates (`offset=0`) its width is $x_2 - x_1$ and its area $|A| = (x_2 - x_1)(y_2 - y_1)$.
# The intersection of two boxes is again a box, from the larger of the two left edges to the
# smaller of the two right edges — or nothing, when that width is negative:
#
# $$ w_\cap = \max\big(0,\ \min(x_2^A, x_2^B) - \max(x_1^A, x_1^B)\big), \qquad
#    h_\cap = \max\big(0,\ \min(y_2^A, y_2^B) - \max(y_1^A, y_1^B)\big) $$
#
# $$ \mathrm{IoU}(A, B) = \frac{|A \cap B|}{|A \cup B|} = \frac{w_\cap h_\cap}{|A| + |B| - w_\cap h_\cap} $$
#
# (the union counts the intersection once, so it is subtracted from the sum of the areas).
#
# **Inclusive pixels** (`offset=1`): the original MATLAB MTCNN and facenet-pytorch's `nms_numpy`
# think of a box as the pixels $x_1 \dots x_2$ *inclusive*, so its width is $x_2 - x_1 + 1$ — the
# same `+ 1` goes into the intersection's width and height. Two boxes that touch along an edge
# share that row of pixels: IoU 0 with `offset=0`, more than 0 with `offset=1`.
#
# Two boxes of zero area (a point, a line) have a union of 0: define their IoU as 0, never NaN.
#
# Write it with broadcasting, no Python loop: `boxes_a[:, None, 0]` has shape `(n, 1)` and
# `boxes_b[None, :, 0]` shape `(1, m)`, so `np.maximum` of the two is the `(n, m)` table of left
# edges of every intersection.

# %%
def iou(boxes_a, boxes_b, *, offset=0):
    """Pairwise intersection over union.

    Parameters
    ----------
    boxes_a : array, shape (n, 4) ; boxes_b : array, shape (m, 4)
        Rows (x1, y1, x2, y2).
    offset : {0, 1}
        1: inclusive pixels, widths x2 - x1 + 1.

    Returns
    -------
    array, shape (n, m)
        IoU of box i of boxes_a with box j of boxes_b (0 where the union is 0).
    """
    ### BEGIN SOLUTION
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + offset
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + offset
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    area_a = (a[:, 2] - a[:, 0] + offset) * (a[:, 3] - a[:, 1] + offset)
    area_b = (b[:, 2] - b[:, 0] + offset) * (b[:, 3] - b[:, 1] + offset)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    ### END SOLUTION


# %% [markdown]
# Worked by hand: $A = (0, 0, 10, 10)$ and $B = (5, 0, 15, 10)$ overlap on a $5 \times 10$
# strip: $50 / (100 + 100 - 50) = 1/3$. With `offset=1` the widths are 11 and the strip
# $6 \times 11$: $66 / (121 + 121 - 66) = 0.375$.

# %%
check(iou)

# %% [markdown]
# ## 2. Greedy non-maximum suppression
#
# ```
# order = the box indices sorted by decreasing score (ties: the lower index first)
# keep = []
# while order is not empty:
#     i = order[0]                        # the best remaining box
#     keep.append(i)
#     drop every j in order[1:] with overlap(i, j) > iou_threshold
#     remove i from order
# ```
#
# Three details decide whether your answer matches the detectors':
#
# * only a **kept** box suppresses others; a box that was dropped does not drop anything
#   (in a chain A–B–C where A overlaps B and B overlaps C, A and C are both kept);
# * an overlap **equal** to `iou_threshold` does not suppress (`>`, not `>=`);
# * ties in score: a *stable* sort, `np.argsort(-scores, kind="stable")`.
#
# `mode="min"` measures the overlap as $|A \cap B| / \min(|A|, |B|)$ instead of the IoU: MTCNN's
# last step uses it so that a small box inside a big one is suppressed. Zero denominators give
# overlap 0 (such a box never suppresses). The result is an integer array of indices in the order
# they were kept — `np.zeros(0, dtype=np.int64)` when there are no boxes (`np.array([])` would be
# float64 and could not index anything).

# %%
def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    """Greedy non-maximum suppression.

    Parameters
    ----------
    boxes : array, shape (n, 4)
    scores : array, shape (n,)
    iou_threshold : float in [0, 1]
        A box is dropped when its overlap with a kept box is > iou_threshold.
    mode : {'union', 'min'}
    offset : {0, 1}

    Returns
    -------
    keep : int64 array, shape (k,)
        Indices of the kept boxes, by decreasing score.
    """
    ### BEGIN SOLUTION
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64)
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + offset) * (y2 - y1 + offset)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + offset, 0)
        ih = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + offset, 0)
        inter = iw * ih
        if mode == "min":
            denom = np.minimum(area[i], area[rest])
        else:
            denom = area[i] + area[rest] - inter
        overlap = np.divide(inter, denom, out=np.zeros_like(inter), where=denom > 0)
        order = rest[overlap <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
    ### END SOLUTION


# %%
check(nms)

# %% [markdown]
# ## 3. Try it
#
# Once `nms` passes, this cell draws twelve noisy detections around three faces and the boxes NMS
# keeps (it does nothing before that).

# %%
if check(nms, verbose=False):
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    faces = np.array([[20, 20, 60, 60], [90, 30, 120, 60], [40, 80, 70, 110]], dtype=float)
    detections = faces[rng.integers(3, size=12)] + rng.normal(0, 3, size=(12, 4))
    scores = rng.random(12)
    kept = nms(detections, scores, 0.3)
    fig, ax = plt.subplots(figsize=(4, 4))
    for k, (x1, y1, x2, y2) in enumerate(detections):
        color, width = ("tab:red", 2) if k in kept else ("0.6", 1)
        ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=color, lw=width))
    ax.set_xlim(0, 140), ax.set_ylim(130, 0), ax.set_aspect("equal")
    ax.set_title(f"{len(detections)} detections, {len(kept)} kept by NMS (red)")
    plt.show()

# %% [markdown]
# ## 4. Compare with the library, then look at a photo
#
# Your `nms` against `scratchface.detection.nms.nms` on 200 random sets of boxes (ties in the
# scores included): how many give the same kept indices? Then your NMS on a photo: thirty noisy
# "detections" around the astronaut's face (and a few stray ones), the ones your `nms` keeps in red.

# %%
try:
    from scratchface.detection.nms import nms as library_nms

    rng = np.random.default_rng(5)
    agree = 0
    for _ in range(200):
        n = int(rng.integers(1, 30))
        corner = rng.integers(0, 60, size=(n, 2))
        boxes = np.column_stack([corner, corner + rng.integers(1, 25, size=(n, 2))]).astype(float)
        scores = np.round(rng.random(n), 1)
        agree += np.array_equal(nms(boxes, scores, 0.4), library_nms(boxes, scores, 0.4, impl="reference"))
    print(f"your nms keeps the same boxes as the library's on {agree} of 200 random cases")

    import matplotlib.pyplot as plt
    from skimage import data

    photo = data.astronaut()
    face = np.array([175.0, 40.0, 285.0, 175.0])
    stray = rng.uniform(0, 400, size=(4, 2))
    detections = np.concatenate([face + rng.normal(0, 8, size=(30, 4)), np.column_stack([stray, stray + 90])])
    scores = np.concatenate([rng.uniform(0.5, 1.0, 30), rng.uniform(0.3, 0.6, 4)])
    kept = nms(detections, scores, 0.3)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(photo)
    for k, (x1, y1, x2, y2) in enumerate(detections):
        color, width = ("red", 2.5) if k in kept else ("yellow", 0.6)
        ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=color, lw=width))
    ax.set_title(f"{len(detections)} detections, {len(kept)} kept by your NMS (red)")
    ax.axis("off")
    plt.show()
except NotImplementedError:
    print("finish iou and nms first")
