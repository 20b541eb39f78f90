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
# # Assignment 2 — the convolution layer, forward and backward
#
# Every CNN face detector and embedding network of the course (DDFD, MTCNN, FaceNet) is mostly
# convolutions. You write the layer's forward pass and its backward pass (the three gradients),
# then check them against the reference math with `check(...)`.
#
# **Layout.** Images are batches in NCHW order: `x` has shape `(N, C, H, W)`; a bank of `F`
# filters `w` has shape `(F, C, KH, KW)`; the bias `b` has shape `(F,)` (or is `None`).
#
# **Forward.** With $\tilde x$ the input padded with `padding` zeros on each side and the stride
# $s$, the output is (cross-correlation — *no* kernel flip, as in every deep-learning library)
#
# $$\mathrm{out}[n, f, p, q] = b_f + \sum_{c=0}^{C-1}\sum_{i=0}^{K_H-1}\sum_{j=0}^{K_W-1}
#   w[f, c, i, j]\; \tilde x[n, c, s_h p + i, s_w q + j]$$
#
# of shape `(N, F, OH, OW)` with
# $OH = \lfloor (H + 2 p_h - K_H) / s_h \rfloor + 1$ and likewise $OW$.
#
# **Backward.** Given $\mathrm{dout} = \partial L / \partial \mathrm{out}$ (same shape as `out`),
#
# $$\frac{\partial L}{\partial w[f,c,i,j]} = \sum_{n,p,q} \mathrm{dout}[n,f,p,q]\;
#   \tilde x[n,c,s_h p+i,s_w q+j], \qquad
#   \frac{\partial L}{\partial b_f} = \sum_{n,p,q} \mathrm{dout}[n,f,p,q],$$
#
# $$\frac{\partial L}{\partial \tilde x[n,c,s_h p+i,s_w q+j]} \mathrel{+}=
#   \sum_f \mathrm{dout}[n,f,p,q]\; w[f,c,i,j],$$
#
# i.e. every output pixel sends its gradient back, weighted by the kernel, onto the window it was
# computed from; where windows overlap the contributions **add up**. `dx` is the interior of the
# padded gradient (the padding is cut off).
#
# **Signatures** (the same as `scratchface.layers.conv`, so you can compare with the library):
#
# ```python
# conv2d_forward(x, w, b=None, *, stride=1, padding=0) -> (out, cache)
# conv2d_backward(dout, cache) -> (dx, dw, db)        # db is None when b was None
# ```
#
# `stride` and `padding` are an int or a pair `(rows, cols)` (use `pair` below). The cache is
# yours: store whatever your backward needs. Keep the input's dtype (float32 in, float32 out) and
# never modify the arrays you are given.

# %%
import numpy as np

from scratchface.check import check


def pair(value):
    """An int or a (rows, cols) pair as a (rows, cols) tuple."""
    return (value, value) if isinstance(value, int) else tuple(value)


# %% [markdown]
# ## 1. Forward
#
# Loop over the `KH x KW` kernel offsets (or over the output pixels — both are fine here; the
# checker uses small inputs). For one offset `(i, j)`, the input pixels that meet `w[:, :, i, j]`
# are the strided slice `xpad[:, :, i : i + sh*(OH-1) + 1 : sh, j : j + sw*(OW-1) + 1 : sw]`,
# and `np.einsum("nchw,fc->nfhw", ...)` sums them over the channels.

# %%
def conv2d_forward(x, w, b=None, *, stride=1, padding=0):
    """Convolution (cross-correlation) forward: returns ``(out, cache)``, out of shape (N, F, OH, OW)."""
    ### BEGIN SOLUTION
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (wd + 2 * pw - kw) // sw + 1
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((n, f, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            patch = xpad[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
            out += np.einsum("nchw,fc->nfhw", patch, w[:, :, i, j])
    if b is not None:
        out += b.reshape(1, f, 1, 1)
    cache = (x, w, b is not None, (sh, sw), (ph, pw))
    return out, cache
    ### END SOLUTION


# %%
check(conv2d_forward)

# %% [markdown]
# ## 2. Backward
#
# Walk over the same kernel offsets as the forward: for offset `(i, j)`, `dw[:, :, i, j]` pairs
# `dout` with the same slice of `xpad`, and the slice of a zero `dxpad` receives (`+=`) `dout`
# contracted with `w[:, :, i, j]` over the filters. Finally cut the padding off `dxpad`
# (careful: `a[p:-p]` is empty when `p = 0`).

# %%
def conv2d_backward(dout, cache):
    """Convolution backward: returns ``(dx, dw, db)`` (``db`` is None without a bias)."""
    ### BEGIN SOLUTION
    x, w, has_bias, (sh, sw), (ph, pw) = cache
    _, _, h, wd = x.shape
    _, _, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(w)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + sh * (oh - 1) + 1, sh)
            cols = slice(j, j + sw * (ow - 1) + 1, sw)
            dw[:, :, i, j] = np.einsum("nfhw,nchw->fc", dout, xpad[:, :, rows, cols])
            dxpad[:, :, rows, cols] += np.einsum("nfhw,fc->nchw", dout, w[:, :, i, j])
    dx = dxpad[:, :, ph:ph + h, pw:pw + wd]
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return dx, dw, db
    ### END SOLUTION


# %%
check(conv2d_backward)

# %% [markdown]
# ## 3. Compare with the library
#
# Your layer should give the values of `scratchface.layers.conv` (whose fast path is im2col in
# Numba plus one BLAS product). This cell runs once both exercises are done.

# %%
from scratchface.layers.conv import conv2d_forward as library_conv2d_forward

rng = np.random.default_rng(0)
x = rng.standard_normal((2, 3, 9, 8))
w = rng.standard_normal((4, 3, 3, 3))
b = rng.standard_normal(4)
try:
    mine, _ = conv2d_forward(x, w, b, stride=2, padding=1)
    library, _ = library_conv2d_forward(x, w, b, stride=2, padding=1, impl="reference")
    print("largest difference from the library:", np.abs(mine - library).max())
except NotImplementedError:
    print("finish conv2d_forward first")

# %% [markdown]
# ## 4. Your own gradient check
#
# `check(conv2d_backward)` compared your gradients with finite differences. Do it once yourself and
# read the numbers, as for any layer nobody has written a checker for: nudge one input element by
# $\pm h$, see how the scalar $L = \sum \mathrm{out} \cdot \mathrm{dout}$ moves, and compare with your
# backward. `rel_error(a, b)` is the largest $|a - b| / (|a| + |b|)$. In float64 a right gradient
# gives about $10^{-8}$ or less; $10^{-4}$ and above means a mistake (or a kink, for max or ReLU).

# %%
try:
    from scratchface.gradcheck import numerical_gradient, rel_error

    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    out, cache = conv2d_forward(x, w, b, stride=2, padding=1)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv2d_backward(dout, cache)

    def loss():
        return float(np.sum(conv2d_forward(x, w, b, stride=2, padding=1)[0] * dout))

    for name, mine, value in (("dx", dx, x), ("dw", dw, w), ("db", db, b)):
        print(f"{name}: relative error {rel_error(mine, numerical_gradient(loss, value)):.1e}")
except NotImplementedError:
    print("finish conv2d_forward and conv2d_backward first")

# %% [markdown]
# ## 5. Your layer on a photo
#
# Two hand-made 3x3 filters — a vertical-edge (Sobel) and a horizontal-edge one — run by your
# `conv2d_forward` on a gray photo: bright where the filter's pattern is, dark where its opposite is.

# %%
try:
    import matplotlib.pyplot as plt
    from skimage import color, data

    photo = color.rgb2gray(data.astronaut())[::2, ::2][None, None]     # (1, 1, 256, 256)
    sobel = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    filters = np.stack([sobel, sobel.T])[:, None]                         # (2, 1, 3, 3)
    maps, _ = conv2d_forward(photo, filters, stride=1, padding=1)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, image, title in zip(axes, (photo[0, 0], maps[0, 0], maps[0, 1]),
                                ("input", "vertical edges", "horizontal edges")):
        ax.imshow(image, cmap="gray")
        ax.set_title(title)
        ax.axis("off")
    plt.show()
except NotImplementedError:
    print("finish conv2d_forward first")
