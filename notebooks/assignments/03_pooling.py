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
# # Assignment 3 — max pooling and L2 pooling
#
# Pooling summarises each `KH x KW` window of a feature map by one number, so the next layer sees
# a smaller map that moves less when the face moves a little. FaceNet's NN1 uses **max** pooling
# (3x3, stride 2); its inception network NN2 also uses **L2** pooling, the square root of the sum
# of squares of the window.
#
# **Windows.** Input `x` of shape `(N, C, H, W)`, padded with $p$ on each side; window $(p, q)$ is
# $W_{pq} = [s_h p, s_h p + K_H) \times [s_w q, s_w q + K_W)$ of the padded input $\tilde x$, and
# the output has shape `(N, C, OH, OW)` with $OH = \lfloor (H + 2p_h - K_H)/s_h \rfloor + 1$.
# `stride=None` means `stride = kernel_size` (windows side by side, PyTorch's default).
#
# **Max pooling.** $\mathrm{out}_{pq} = \max_{(h,w)\in W_{pq}} \tilde x_{hw}$, the padding being
# $-\infty$ so that it is never the maximum. The gradient of a max goes to the pixel that was
# chosen:
#
# $$\frac{\partial L}{\partial x_{hw}} = \sum_{(p,q):\ (h,w) = \arg\max W_{pq}} \mathrm{dout}_{pq}.$$
#
# When several pixels of a window tie for the maximum, the forward picked **one** of them; the
# gradient must go to that one only — the *first* maximum in row-major order (`np.argmax`'s
# choice, PyTorch's too). Overlapping windows add their gradients up.
#
# **L2 pooling.** $o_{pq} = \sqrt{\sum_{(h,w)\in W_{pq}} \tilde x_{hw}^2}$ with zero padding, and
# by the chain rule ($\mathrm d\sqrt s = \mathrm ds / 2\sqrt s$, $\partial s/\partial x = 2x$)
#
# $$\frac{\partial L}{\partial x_{hw}} = \sum_{(p,q):\ (h,w) \in W_{pq}}
#   \mathrm{dout}_{pq}\,\frac{x_{hw}}{o_{pq}},$$
#
# taken as 0 on an all-zero window (the square root has no derivative at 0; 0 is a subgradient).
#
# **Signatures** (as in `scratchface.layers.pooling`):
#
# ```python
# max_pool2d_forward(x, *, kernel_size, stride=None, padding=0) -> (out, cache)
# max_pool2d_backward(dout, cache) -> dx
# l2_pool2d_forward(x, *, kernel_size, stride=None, padding=0) -> (out, cache)
# l2_pool2d_backward(dout, cache) -> dx
# ```
#
# `kernel_size`, `stride`, `padding`: an int or a pair `(rows, cols)`. Loops over the output
# pixels are fine (the checker's inputs are small); keep the input's dtype and leave `x` unchanged.

# %%
import numpy as np

from scratchface.check import check


def pair(value):
    """An int or a (rows, cols) pair as a (rows, cols) tuple."""
    return (value, value) if isinstance(value, int) else tuple(value)


def pool_geometry(x, kernel_size, stride, padding):
    """``(kh, kw), (sh, sw), (ph, pw), (oh, ow)`` of a pooling layer (stride None = kernel)."""
    kh, kw = pair(kernel_size)
    sh, sw = pair(kernel_size if stride is None else stride)
    ph, pw = pair(padding)
    oh = (x.shape[2] + 2 * ph - kh) // sh + 1
    ow = (x.shape[3] + 2 * pw - kw) // sw + 1
    return (kh, kw), (sh, sw), (ph, pw), (oh, ow)


# %% [markdown]
# ## 1. Max pooling forward
#
# Pad with `-np.inf` (`np.pad(..., constant_values=-np.inf)`), then take each window's max. Keep
# in the cache what the backward needs — for instance the position of each window's maximum
# (`np.argmax` over the flattened window gives the *first* one).

# %%
def max_pool2d_forward(x, *, kernel_size, stride=None, padding=0):
    """Max pooling: returns ``(out, cache)``, out of shape (N, C, OH, OW)."""
    # TODO: your code here
    raise NotImplementedError


# %%
check(max_pool2d_forward)

# %% [markdown]
# ## 2. Max pooling backward
#
# Send `dout[n, c, p, q]` to the one pixel of window `(p, q)` the forward chose, adding (`+=`)
# where windows overlap, in a padded `dxpad`; then cut the padding off.

# %%
def max_pool2d_backward(dout, cache):
    """Gradient of max pooling: ``dx`` of the shape of x."""
    # TODO: your code here
    raise NotImplementedError


# %%
check(max_pool2d_backward)

# %% [markdown]
# ## 3. L2 pooling forward
#
# Pad with zeros (they add nothing to a sum of squares) and take `sqrt(sum(window ** 2))`.

# %%
def l2_pool2d_forward(x, *, kernel_size, stride=None, padding=0):
    """L2 pooling: returns ``(out, cache)``, out of shape (N, C, OH, OW)."""
    # TODO: your code here
    raise NotImplementedError


# %%
check(l2_pool2d_forward)

# %% [markdown]
# ## 4. L2 pooling backward
#
# Every pixel of window `(p, q)` receives `dout[p, q] * x / out[p, q]`; where `out` is 0 the
# window is all zeros and the gradient is 0 (avoid the 0 / 0 with `np.where`).

# %%
def l2_pool2d_backward(dout, cache):
    """Gradient of L2 pooling: ``dx`` of the shape of x."""
    # TODO: your code here
    raise NotImplementedError


# %%
check(l2_pool2d_backward)

# %% [markdown]
# ## 5. Ties, seen once
#
# A 2x2 window of four equal values: the forward gives that value, and the backward must give the
# whole gradient to one pixel (the first), not 1 to each — otherwise the gradient would be four
# times too large, which finite differences would never agree with.

# %%
tie = np.ones((1, 1, 2, 2))
try:
    out, cache = max_pool2d_forward(tie, kernel_size=2)
    print("out:", out.ravel(), " dx:\n", max_pool2d_backward(np.ones_like(out), cache)[0, 0])
except NotImplementedError:
    print("finish the max pooling exercises first")

# %% [markdown]
# ## 6. Your own gradient check
#
# Check your L2 pooling backward yourself, with `numerical_gradient` (finite differences of
# $L = \sum \mathrm{out} \cdot \mathrm{dout}$) and `rel_error` (largest $|a - b| / (|a| + |b|)$).
# Below about $10^{-8}$: right. For **max** pooling, finite differences are only valid away from
# ties: if two inputs of a window are within $h$ of each other, nudging one changes which one wins,
# and the numbers disagree even for a right backward — that is why the input below is random.

# %%
try:
    from scratchface.gradcheck import numerical_gradient, rel_error

    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 7, 6))
    for name, forward, backward in (("max", max_pool2d_forward, max_pool2d_backward),
                                    ("L2", l2_pool2d_forward, l2_pool2d_backward)):
        out, cache = forward(x, kernel_size=3, stride=2, padding=1)
        dout = rng.standard_normal(out.shape)

        def loss(forward=forward, dout=dout):
            return float(np.sum(forward(x, kernel_size=3, stride=2, padding=1)[0] * dout))

        print(f"{name} pooling dx: relative error {rel_error(backward(dout, cache), numerical_gradient(loss, x)):.1e}")
except NotImplementedError:
    print("finish the pooling exercises first")

# %% [markdown]
# ## 7. Your pooling on a photo
#
# Max pooling keeps the brightest pixel of each window, L2 pooling a root-mean-square-like energy:
# on a photo, max pooling thickens bright details, L2 pooling blurs less than an average.

# %%
try:
    import matplotlib.pyplot as plt
    from skimage import color, data

    photo = color.rgb2gray(data.astronaut())[None, None]                  # (1, 1, 512, 512)
    pooled = {"input": photo[0, 0],
              "your max pooling, 8x8": max_pool2d_forward(photo, kernel_size=8)[0][0, 0],
              "your L2 pooling, 8x8": l2_pool2d_forward(photo, kernel_size=8)[0][0, 0]}
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, (title, image) in zip(axes, pooled.items()):
        ax.imshow(image, cmap="gray")
        ax.set_title(f"{title} {image.shape}")
        ax.axis("off")
    plt.show()
except NotImplementedError:
    print("finish the forward passes first")
