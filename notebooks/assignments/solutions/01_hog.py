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
# # Assignment 1 — HOG: gradients, orientation histograms, block normalisation
#
# The Histogram of Oriented Gradients (Dalal & Triggs 2005) describes a window of an image by
# *where* it changes and *in which direction*, pooled over small cells and normalised over blocks
# of cells. You write its four steps; `check(...)` after each compares your function with the
# reference math and names the likely mistake. At the end your functions are chained and compared
# with `skimage.feature.hog`.
#
# We follow scikit-image's conventions (so that the last cell can compare with it), and add the
# lecture's bilinear binning.
#
# **1. Gradients** of a gray image $I$ of shape `(H, W)`, central differences without the 1/2,
# zero on the border:
#
# $$g_{row}[r, c] = I[r+1, c] - I[r-1, c], \qquad g_{col}[r, c] = I[r, c+1] - I[r, c-1].$$
#
# **2. Magnitude and unsigned orientation** in degrees:
#
# $$m = \sqrt{g_{row}^2 + g_{col}^2}, \qquad
#   \theta = \tfrac{180}{\pi}\,\operatorname{atan2}(g_{row}, g_{col}) \bmod 180 \;\in [0, 180).$$
#
# A gradient and its opposite (a dark-to-light edge and a light-to-dark one) get the same
# orientation.
#
# **3. Cell histograms.** The image is cut into cells of `pixels_per_cell = (rows, cols)` pixels
# (the partial cells at the bottom and right are ignored); each pixel votes its magnitude into an
# orientation histogram of `orientations` bins of width $w = 180/n$:
#
# * `binning='hard'` (scikit-image): the whole vote goes to bin $k = \lfloor \theta / w \rfloor$,
#   which holds $[k w, (k+1) w)$.
# * `binning='bilinear'` (Dalal & Triggs, the lecture): the bins are *centred* at
#   $k w$ (0, 20, ..., 160 for 9 bins); with $p = \theta / w$ and $k = \lfloor p \rfloor$, bin
#   $k \bmod n$ gets $(1 - (p - k))\, m$ and bin $(k + 1) \bmod n$ gets $(p - k)\, m$ — 180
#   wraps to 0, so a pixel at 170 degrees splits its vote between 160 and 0.
#
# The function returns the histogram of every cell divided by the cell's number of pixels (the
# *mean* vote, scikit-image's convention), shape `(H // rows, W // cols, orientations)`.
#
# **4. Block normalisation** of a block $v$ of cell histograms (any shape, e.g. `(3, 3, 9)`),
# with $\epsilon = 10^{-5}$:
#
# $$\text{L1: } \frac{v}{\lVert v\rVert_1 + \epsilon}, \quad
#   \text{L1-sqrt: } \sqrt{\frac{v}{\lVert v\rVert_1 + \epsilon}}, \quad
#   \text{L2: } \frac{v}{\sqrt{\lVert v\rVert_2^2 + \epsilon^2}},$$
#
# and **L2-Hys**: L2, then clip every value at 0.2, then L2 again (Lowe's trick from SIFT: no single
# strong edge dominates the block).
#
# **Signatures** (as in `scratchface.detection.hog`):
#
# ```python
# image_gradients(channel) -> (g_row, g_col)
# magnitude_orientation(g_row, g_col) -> (magnitude, orientation)
# cell_histograms(magnitude, orientation, *, orientations=9, pixels_per_cell=(8, 8), binning="hard")
# normalize_block(block, method="L2-Hys", eps=1e-5)
# ```

# %%
import numpy as np

from scratchface.check import check

# %% [markdown]
# ## 1. Gradients
#
# Keep a float image's dtype (float32 in, float32 out): `np.zeros_like(channel)`. But an image
# read from a file is often `uint8`, and a difference of `uint8` values wraps around
# (`np.uint8(5) - np.uint8(10)` is 251): convert an integer image to `float64` first.

# %%
def image_gradients(channel):
    """Central-difference gradients ``(g_row, g_col)`` of an (H, W) image, zero on the border."""
    ### BEGIN SOLUTION
    if not np.issubdtype(channel.dtype, np.floating):
        channel = channel.astype(np.float64)     # uint8: 5 - 10 would be 251
    g_row = np.zeros_like(channel)
    g_col = np.zeros_like(channel)
    g_row[1:-1, :] = channel[2:, :] - channel[:-2, :]
    g_col[:, 1:-1] = channel[:, 2:] - channel[:, :-2]
    return g_row, g_col
    ### END SOLUTION


# %%
check(image_gradients)

# %% [markdown]
# ## 2. Magnitude and orientation
#
# `np.arctan2(y, x)` knows the quadrant and gives 0 for a zero gradient (unlike
# `np.arctan(g_row / g_col)`); `% 180` folds it into `[0, 180)` — almost: a tiny negative angle
# ($g_{row} = -5.6 \cdot 10^{-17}$, $g_{col} = 1$ gives $-3 \cdot 10^{-15}$ degrees) plus 180 rounds
# to exactly `180.0`, and the bin index $\lfloor 180 / w \rfloor = n$ is then out of range. Fold
# what is left at 180 to 0.

# %%
def magnitude_orientation(g_row, g_col):
    """Gradient magnitude and unsigned orientation in degrees, in [0, 180)."""
    ### BEGIN SOLUTION
    magnitude = np.hypot(g_row, g_col)
    orientation = np.rad2deg(np.arctan2(g_row, g_col)) % 180
    orientation = np.where(orientation >= 180.0, 0.0, orientation)   # -3e-15 % 180 rounds to 180.0
    return magnitude, orientation
    ### END SOLUTION


# %%
check(magnitude_orientation)

# %% [markdown]
# ## 3. Cell histograms
#
# A loop over the cells is fine. `np.add.at(hist, bins, weights)` adds every weight to its bin even
# when a bin appears several times (`hist[bins] += weights` would not).
#
# Worked example: one pixel with magnitude 10 at 95 degrees, 9 bins of 20 degrees. Hard: all 10
# go to bin 4 (`[80, 100)`). Bilinear: $p = 95/20 = 4.75$, so bin 4 (centre 80) gets
# $0.25 \cdot 10 = 2.5$ and bin 5 (centre 100) gets $7.5$.

# %%
def cell_histograms(magnitude, orientation, *, orientations=9, pixels_per_cell=(8, 8), binning="hard"):
    """Mean orientation histogram of each cell: shape (H // rows, W // cols, orientations)."""
    ### BEGIN SOLUTION
    rows, cols = pixels_per_cell
    n_rows, n_cols = magnitude.shape[0] // rows, magnitude.shape[1] // cols
    width = 180.0 / orientations
    hist = np.zeros((n_rows, n_cols, orientations))
    for r in range(n_rows):
        for c in range(n_cols):
            m = magnitude[r * rows:(r + 1) * rows, c * cols:(c + 1) * cols].ravel()
            theta = orientation[r * rows:(r + 1) * rows, c * cols:(c + 1) * cols].ravel()
            if binning == "hard":
                np.add.at(hist[r, c], np.floor(theta / width).astype(int), m)
            else:
                position = theta / width
                lower = np.floor(position)
                upper_weight = position - lower
                lower = lower.astype(int) % orientations
                np.add.at(hist[r, c], lower, (1 - upper_weight) * m)
                np.add.at(hist[r, c], (lower + 1) % orientations, upper_weight * m)
    return hist / (rows * cols)
    ### END SOLUTION


# %%
check(cell_histograms)

# %% [markdown]
# ## 4. Block normalisation

# %%
def normalize_block(block, method="L2-Hys", eps=1e-5):
    """Normalise one block of cell histograms: 'L1', 'L1-sqrt', 'L2' or 'L2-Hys'."""
    ### BEGIN SOLUTION
    if method == "L1":
        return block / (np.sum(np.abs(block)) + eps)
    if method == "L1-sqrt":
        return np.sqrt(block / (np.sum(np.abs(block)) + eps))
    out = block / np.sqrt(np.sum(block ** 2) + eps ** 2)
    if method == "L2-Hys":
        out = np.minimum(out, 0.2)
        out = out / np.sqrt(np.sum(out ** 2) + eps ** 2)
    return out
    ### END SOLUTION


# %%
check(normalize_block)

# %% [markdown]
# ## 5. The whole descriptor, against the library (and so scikit-image)
#
# Blocks of 3x3 cells slide over the cell grid one cell at a time; each is normalised and all are
# concatenated. With hard binning this is `scratchface.detection.hog.hog`, which gives the values
# of `skimage.feature.hog` (tested in the library's test suite). The picture: a bright disc on a
# ramp.

# %%
def my_hog(image, cells=(8, 8), block=(3, 3)):
    """Your four steps chained: the flattened descriptor, blocks of ``block`` cells."""
    g_row, g_col = image_gradients(image)
    magnitude, orientation = magnitude_orientation(g_row, g_col)
    hist = cell_histograms(magnitude, orientation, orientations=9, pixels_per_cell=cells)
    n_r, n_c = hist.shape[0] - block[0] + 1, hist.shape[1] - block[1] + 1
    return np.concatenate([normalize_block(hist[r:r + block[0], c:c + block[1]]).ravel()
                           for r in range(n_r) for c in range(n_c)])


from scratchface.detection.hog import hog as library_hog

rows, cols = np.mgrid[0:64, 0:48].astype(float)
image = 0.3 * cols / 48 + ((rows - 30) ** 2 + (cols - 22) ** 2 < 15 ** 2)
try:
    mine = my_hog(image)
    reference = library_hog(image, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(3, 3),
                            block_norm="L2-Hys", impl="reference")
    print(f"{mine.size} features; largest difference from the library: {np.abs(mine - reference).max():.2e}")
except NotImplementedError:
    print("finish the four exercises first")

# %% [markdown]
# ## 6. Your descriptor, drawn
#
# The usual picture of a HOG descriptor: in every cell, one line per orientation bin, as long as that
# bin's share of the cell's votes. A gradient points *across* an edge, so each line is drawn
# perpendicular to its bin's gradient direction: the lines follow the edges of the face. (Bins of
# `binning='hard'` hold $[k w, (k + 1) w)$; the line is drawn at the bin's middle.)

# %%
try:
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from skimage import color, data

    face = color.rgb2gray(data.astronaut())[30:190, 160:300]          # float64 in [0, 1]
    g_row, g_col = image_gradients(face)
    magnitude, orientation = magnitude_orientation(g_row, g_col)
    hist = cell_histograms(magnitude, orientation, orientations=9, pixels_per_cell=(8, 8))
    middles = np.deg2rad((np.arange(9) + 0.5) * 20.0)
    edge = np.stack([-np.sin(middles), np.cos(middles)], axis=1)      # (d col, d row) along the edge
    segments, strengths = [], []
    for r in range(hist.shape[0]):
        for c in range(hist.shape[1]):
            centre = np.array([c * 8 + 4, r * 8 + 4])
            share = hist[r, c] / (hist[r, c].sum() + 1e-12)
            for k in range(9):
                half = 4 * share[k] * edge[k]
                segments.append([centre - half, centre + half])
                strengths.append(hist[r, c, k])
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 4.5))
    left.imshow(face, cmap="gray")
    left.set_title("input")
    brightness = np.clip(3 * np.array(strengths) / max(hist.max(), 1e-12), 0.15, 1)
    right.add_collection(LineCollection(segments, colors=np.outer(brightness, [1, 1, 1]), linewidths=1.2))
    right.set_facecolor("black")
    right.set_xlim(0, face.shape[1]), right.set_ylim(face.shape[0], 0), right.set_aspect("equal")
    right.set_title("your cell histograms (8x8 cells, 9 bins)")
    plt.show()
except NotImplementedError:
    print("finish the four exercises first")

# %% [markdown]
# ## 7. Where your descriptor goes next: Max-Margin Object Detection (reading, no code)
#
# A face detector scores every window $r$ of a pyramid with a linear filter,
# $s(r) = \langle w, \phi(r) \rangle$, $\phi(r)$ the HOG of the window, then keeps the best of
# overlapping windows (NMS). King's MMOD (2015; dlib's `train_simple_object_detector`,
# `scratchface.detection.mmod.train_mmod`) learns $w$ from a few labelled photos by asking the
# *true* faces $y_i$ of each photo $x_i$ to beat every other NMS-consistent set of windows $y$ by the
# number of mistakes $y$ makes:
#
# $$\min_w \; \tfrac12\lVert w\rVert^2 + \frac{C}{n}\sum_{i=1}^{n}
#   \Big(\max_{y}\big[\Delta(y, y_i) + \textstyle\sum_{r \in y} s(r)\big] - \sum_{r \in y_i} s(r)\Big),$$
#
# $\Delta$ = missed faces + false alarms. Every window of every training photo takes part: all of
# them are negatives unless they hit a face. The max is found greedily (windows by score, with NMS);
# its subgradient is "features of the windows found minus features of the true faces", and a
# cutting-plane solver turns those into $w$. With dlib's FHOG cells (31 numbers per cell: a
# richer cousin of your descriptor) and trained on 4 photos (18 faces) in under a minute, it finds
# all 25 faces of dlib's 5 test photos it never saw, with no false alarm, as dlib's own trainer
# does: `python -m experiments.mmod_detector`.
