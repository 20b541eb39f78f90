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
# # Assignment 4 — PReLU and maxout
#
# Two activations of the face networks in the course: MTCNN puts a **PReLU** after every
# convolution, and FaceNet's NN1 uses **maxout** in its fully connected layers.
#
# Both work on activations in the layout `(N, C)` (after a dense layer) or `(N, C, H, W)` (after
# a convolution): axis 1 is the channel axis.
#
# **PReLU** (He et al. 2015) is a ReLU whose negative side has a *learned* slope, one per channel:
#
# $$\mathrm{out}_{n,c,h,w} = \begin{cases} x_{n,c,h,w} & x > 0 \\ \alpha_c\, x_{n,c,h,w} & x \le 0
#   \end{cases}$$
#
# Backward: the slope of the branch taken, and for $\alpha_c$ the sum over every input of that
# channel where it acted:
#
# $$\frac{\partial L}{\partial x} = \mathrm{dout}\cdot\begin{cases} 1 & x > 0 \\ \alpha_c & x \le 0
#   \end{cases}, \qquad
#   \frac{\partial L}{\partial \alpha_c} = \sum_{n,h,w} \mathrm{dout}_{n,c,h,w}\, x_{n,c,h,w}\,
#   [x_{n,c,h,w} \le 0].$$
#
# `alpha` has shape `(C,)`; to broadcast it against `(N, C, H, W)` reshape it to `(1, C, 1, 1)`
# (`alpha.reshape((1, -1) + (1,) * (x.ndim - 2))` works for both layouts). Beware the shortcut
# `np.maximum(x, alpha * x)`: it is PReLU exactly when $\alpha \le 1$ (negative slopes included:
# for $x > 0$, $\alpha x \le x$; for $x < 0$, $\alpha x \ge x$), and wrong on **both** sides when
# $\alpha > 1$ — and nothing keeps a learned slope below 1.
#
# **At $x = 0$** the two branches meet and the derivative is not defined. The convention here (and
# in PyTorch's `PReLU`): slope 1 only for $x > 0$, so at $x = 0$ `dx = alpha * dout` and the
# input adds $\mathrm{dout} \cdot 0 = 0$ to `dalpha`. The check tests inputs that are exactly 0.
#
# **Maxout** (Goodfellow et al. 2013) with $p$ pieces takes the maximum over groups of $p$
# *consecutive* channels: with $D = M p$ input channels,
#
# $$\mathrm{out}[:, j] = \max_{0 \le k < p} x[:, j p + k], \qquad j = 0, \dots, M - 1,$$
#
# i.e. `x.reshape(N, M, p, ...).max(axis=2)`. Its gradient goes to the piece that won; on a tie,
# to the first maximum (lowest $k$), the one `np.argmax` picks:
#
# $$\frac{\partial L}{\partial x[:, j p + k]} = \mathrm{dout}[:, j]\,[k = \arg\max_{k'} x[:, j p + k']].$$
#
# **Signatures** (as in `scratchface.layers.activations`):
#
# ```python
# prelu_forward(x, alpha) -> (out, cache)
# prelu_backward(dout, cache) -> (dx, dalpha)
# maxout_forward(x, *, pieces) -> (out, cache)
# maxout_backward(dout, cache) -> dx
# ```
#
# Keep the input's dtype (float32 in, float32 out) and leave the inputs unchanged.

# %%
import numpy as np

from scratchface.check import check


def per_channel(v, ndim):
    """A (C,) vector reshaped to (1, C, 1, ..., 1) so that it broadcasts along axis 1."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


# %% [markdown]
# ## 1. PReLU forward

# %%
def prelu_forward(x, alpha):
    """PReLU with one slope per channel: returns ``(out, cache)``, out of the shape of x."""
    ### BEGIN SOLUTION
    out = np.where(x > 0, x, per_channel(alpha, x.ndim) * x)
    return out, (x, alpha)
    ### END SOLUTION


# %%
check(prelu_forward)

# %% [markdown]
# ## 2. PReLU backward
#
# `dalpha[c]` sums over the batch and the pixels — every axis except axis 1.

# %%
def prelu_backward(dout, cache):
    """Gradients of PReLU: ``(dx, dalpha)``, dx of the shape of x, dalpha of shape (C,)."""
    ### BEGIN SOLUTION
    x, alpha = cache
    negative = x <= 0
    dx = np.where(negative, per_channel(alpha, x.ndim) * dout, dout)
    other_axes = (0,) + tuple(range(2, x.ndim))
    dalpha = (dout * x * negative).sum(axis=other_axes)
    return dx, dalpha
    ### END SOLUTION


# %%
check(prelu_backward)

# %% [markdown]
# ## 3. Maxout forward
#
# Group axis 1 into `(M, pieces)` with a reshape that keeps the other axes:
# `x.reshape((N, M, pieces) + x.shape[2:])`. Remember which piece won (`argmax`) for the backward.

# %%
def maxout_forward(x, *, pieces):
    """Maxout over groups of ``pieces`` consecutive channels: returns ``(out, cache)``."""
    ### BEGIN SOLUTION
    n, d = x.shape[:2]
    grouped = x.reshape((n, d // pieces, pieces) + x.shape[2:])
    argmax = grouped.argmax(axis=2)                      # the first maximum on ties
    out = np.take_along_axis(grouped, np.expand_dims(argmax, 2), axis=2).squeeze(2)
    return out, (argmax, x.shape, pieces)
    ### END SOLUTION


# %%
check(maxout_forward)

# %% [markdown]
# ## 4. Maxout backward
#
# A one-hot mask over the pieces (`argmax == k`) times `dout`, reshaped back to the shape of `x`.

# %%
def maxout_backward(dout, cache):
    """Gradient of maxout: ``dx`` of the shape of x."""
    ### BEGIN SOLUTION
    argmax, x_shape, pieces = cache
    k = np.arange(pieces).reshape((1, 1, pieces) + (1,) * (len(x_shape) - 2))
    chosen = np.expand_dims(argmax, 2) == k               # (N, M, pieces, ...) one-hot
    dx = chosen * np.expand_dims(dout, 2)
    return dx.reshape(x_shape).astype(dout.dtype)
    ### END SOLUTION


# %%
check(maxout_backward)

# %% [markdown]
# ## 5. Why not `np.maximum(x, alpha * x)`?
#
# For every slope $\alpha \le 1$ — negative ones too — the shortcut is exact: on the positive side
# $\alpha x \le x$, on the negative side $\alpha x \ge x$. For a slope above 1 both comparisons
# flip and it picks the wrong branch on **both** sides ($\alpha x$ for $x > 0$, $x$ for $x < 0$):

# %%
x = np.array([[-2.0, -1.0, 0.0, 1.0]]).reshape(1, 1, 4)
for slope in (0.25, -0.5, 1.5):
    alpha = np.array([slope])
    print(f"alpha = {slope:5}: np.maximum(x, alpha * x) =", np.maximum(x, alpha * x).ravel())
    try:
        print("               prelu_forward            =", prelu_forward(x, alpha)[0].ravel())
    except NotImplementedError:
        print("               finish prelu_forward first")

# %% [markdown]
# ## 6. Your own gradient check, and the kink at 0
#
# Check your PReLU backward with finite differences (`numerical_gradient`) and `rel_error`. With
# inputs away from 0 a right backward gives about $10^{-10}$. Then put an input **exactly** at 0:
# the central difference averages the two slopes, $(1 + \alpha)/2$, while your backward (rightly, by
# the convention) says $\alpha$ — a large relative error on a correct layer. Finite differences are
# not to be trusted at a kink.

# %%
try:
    from scratchface.gradcheck import numerical_gradient, rel_error

    rng = np.random.default_rng(3)
    alpha = np.array([0.1, -0.3, 1.5])
    away = rng.standard_normal((2, 3, 4, 4))
    away = np.where(np.abs(away) < 0.05, 0.5, away)                   # no input within h of the kink
    at_zero = away.copy()
    at_zero[0, 1, 2, 2] = 0.0
    for label, x in (("inputs away from 0", away), ("one input exactly at 0", at_zero)):
        out, cache = prelu_forward(x, alpha)
        dout = rng.standard_normal(out.shape)
        dx, dalpha = prelu_backward(dout, cache)

        def loss(x=x, dout=dout):
            return float(np.sum(prelu_forward(x, alpha)[0] * dout))

        print(f"{label:24s}: dx relative error {rel_error(dx, numerical_gradient(loss, x)):.1e}, "
              f"dalpha {rel_error(dalpha, numerical_gradient(loss, alpha)):.1e}")
except NotImplementedError:
    print("finish prelu_forward and prelu_backward first")

# %% [markdown]
# ## 7. Your PReLU, drawn
#
# Your `prelu_forward` for three slopes, one per channel, and `np.maximum(x, alpha * x)` dashed:
# they coincide for $\alpha = 0.25$ and $\alpha = -0.5$ and part for $\alpha = 1.5$.

# %%
try:
    import matplotlib.pyplot as plt

    xs = np.linspace(-2, 2, 201)
    slopes = np.array([0.25, -0.5, 1.5])
    curves, _ = prelu_forward(np.tile(xs, (3, 1))[None], slopes)      # (1, 3, 201): one channel per slope
    fig, ax = plt.subplots(figsize=(5, 4))
    for k, slope in enumerate(slopes):
        line, = ax.plot(xs, curves[0, k], label=f"your PReLU, alpha = {slope}")
        ax.plot(xs, np.maximum(xs, slope * xs), "--", color=line.get_color(), alpha=0.6)
    ax.axhline(0, color="0.8"), ax.axvline(0, color="0.8")
    ax.legend(fontsize=8)
    ax.set_xlabel("x")
    plt.show()
except NotImplementedError:
    print("finish prelu_forward first")
