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
# # Assignment 7 — the ArcFace loss
#
# A classifier's logit for class $j$ is $W_j^\top x = \lVert W_j \rVert \lVert x \rVert \cos\theta_j$.
# ArcFace (Deng et al., CVPR 2019) normalises both, $\lVert W_j \rVert = \lVert x \rVert = 1$, so that
# only the **angle** $\theta_j$ between the feature and the class's weight decides, multiplies by
# a fixed **scale** $s$, and makes the target class harder to win by adding an **angular margin**
# $m$ to its angle:
#
# $$ L = -\frac{1}{N} \sum_{i=1}^N \log
#        \frac{e^{s \cos(\theta_{y_i} + m)}}{e^{s \cos(\theta_{y_i} + m)} + \sum_{j \ne y_i} e^{s \cos\theta_j}} . $$
#
# Features of one identity then gather in a cone narrower than the decision boundary by $m$.
#
# You write three functions:
#
# 1. `arcface_target(cos_theta, *, margin=0.5) -> (target, dtarget)` — the target logit before the
#    scale, and its derivative with respect to $\cos\theta$ (the library keeps this step inside
#    `arcface_loss_forward`, as a local function: here it is yours, and the loss below calls it);
# 2. `arcface_loss_forward(features, weights, *, labels, scale=64.0, margin=0.5) -> (loss, cache)`
#    and 3. `arcface_loss_backward(dloss, cache) -> (dfeatures, dweights)`, with the signatures of
#    `scratchface.losses.margin.arcface_loss_forward` / `arcface_loss_backward`.
#
# Shapes: `features` $(N, D)$, `weights` $(D, C)$ — one **column** per class, as in a dense layer
# `features @ weights` — and `labels` $(N,)$ integers in $[0, C)$. You may use the library's
# layers for the two parts that are not ArcFace's own: `l2_normalize_forward/backward` and
# `softmax_cross_entropy_forward/backward` (mean over the batch, max-shifted log-sum-exp).

# %%
import numpy as np

from scratchface.check import check
from scratchface.layers.normalization import l2_normalize_backward, l2_normalize_forward
from scratchface.layers.softmax import softmax_cross_entropy_backward, softmax_cross_entropy_forward

COS_CLIP = 1e-7  # cosines are clipped to [-1 + COS_CLIP, 1 - COS_CLIP] before arccos

# %% [markdown]
# ## 1. The target function
#
# With $\theta = \arccos(\cos\theta)$ the target is $t = \cos(\theta + m)$. Three details:
#
# * **Clip before `arccos`.** A cosine computed as $\hat x^\top \hat W$ can come out as
#   $1 + 10^{-16}$, and `np.arccos` of it is NaN. Clip to $[-1 + 10^{-7}, 1 - 10^{-7}]$ (the
#   derivative below divides by $\sin\theta$, so stay off $\pm 1$ exactly; take the derivative
#   as 0 where the clip is active).
# * **The fallback.** For $\theta + m > \pi$, $\cos(\theta + m)$ turns back *up*: a worse angle would
#   give a larger logit. There the authors' code uses the straight line
#   $t = \cos\theta - m \sin m$ instead (insightface, `easy_margin=False`).
# * **The derivative** (the backward pass needs it):
#
# $$ \frac{dt}{d\cos\theta} = -\sin(\theta + m)\, \frac{d\theta}{d\cos\theta}
#    = \frac{\sin(\theta + m)}{\sin\theta} \quad (\theta + m \le \pi), \qquad
#    \frac{dt}{d\cos\theta} = 1 \quad \text{(fallback)}. $$

# %%
def arcface_target(cos_theta, *, margin=0.5):
    """ArcFace's target logit (before the scale) and its derivative.

    Parameters
    ----------
    cos_theta : array, the target cosines, any shape
    margin : float in (0, pi/2], the angular margin m (radians)

    Returns
    -------
    target : array, cos(theta + m), or cos(theta) - m sin(m) where theta + m > pi
    dtarget : array, d target / d cos_theta (0 where the clip is active)
    """
    ### BEGIN SOLUTION
    inside = (cos_theta >= -1 + COS_CLIP) & (cos_theta <= 1 - COS_CLIP)
    theta = np.arccos(np.clip(cos_theta, -1 + COS_CLIP, 1 - COS_CLIP))
    use_margin = theta + margin <= np.pi
    target = np.where(use_margin, np.cos(theta + margin), cos_theta - margin * np.sin(margin))
    slope = np.where(inside, np.sin(theta + margin) / np.sin(theta), 0.0)
    dtarget = np.where(use_margin, slope, 1.0)
    return target, dtarget
    ### END SOLUTION


# %%
check(arcface_target)

# %% [markdown]
# ## 2. Forward
#
# 1. $\hat x_i = x_i / \lVert x_i \rVert$ (rows), $\hat W_j = W_j / \lVert W_j \rVert$ (columns: `axis=0`);
# 2. all cosines at once: $\cos\theta_{ij} = (\hat x \hat W)_{ij}$, shape $(N, C)$;
# 3. replace **only** the target entries $(i, y_i)$ by `arcface_target` — every other class keeps its
#    plain cosine;
# 4. logits $= s \times$ that table, then the softmax cross-entropy over the classes.
#
# Keep in the cache what backward needs (the unit vectors, the layers' caches, `dtarget`, $s$, the labels).

# %%
def arcface_loss_forward(features, weights, *, labels, scale=64.0, margin=0.5):
    """ArcFace loss.

    Parameters
    ----------
    features : (N, D) ; weights : (D, C) ; labels : (N,) int
    scale : float > 0 ; margin : float in (0, pi/2]

    Returns
    -------
    loss : float (or 0-d array) ; cache
    """
    ### BEGIN SOLUTION
    x_hat, x_cache = l2_normalize_forward(features, axis=1)
    w_hat, w_cache = l2_normalize_forward(weights, axis=0)
    cos = x_hat @ w_hat
    rows = np.arange(len(labels))
    target, dtarget = arcface_target(cos[rows, labels], margin=margin)
    logits = scale * cos
    logits[rows, labels] = scale * target
    loss, ce_cache = softmax_cross_entropy_forward(logits, labels=labels)
    cache = (x_hat, x_cache, w_hat, w_cache, dtarget, scale, labels, ce_cache)
    return loss, cache
    ### END SOLUTION


# %%
check(arcface_loss_forward)

# %% [markdown]
# ## 3. Backward
#
# Back through the steps in reverse order, by the chain rule:
#
# * the softmax cross-entropy gives $\partial L / \partial z_{ij} = (p_{ij} - [j = y_i]) / N$ (times `dloss`);
# * $z = s\, g$: $\partial L / \partial g_{ij} = s\, \partial L / \partial z_{ij}$;
# * on the target entries only, $g_{i y_i} = t(\cos\theta_{i y_i})$: multiply by `dtarget`;
# * $\cos = \hat x \hat W$: $\partial L/\partial \hat x = (\partial L/\partial \cos)\, \hat W^\top$ and
#   $\partial L/\partial \hat W = \hat x^\top (\partial L/\partial \cos)$;
# * back through the two L2 normalisations.

# %%
def arcface_loss_backward(dloss, cache):
    """Gradients of the ArcFace loss: (dfeatures (N, D), dweights (D, C))."""
    ### BEGIN SOLUTION
    x_hat, x_cache, w_hat, w_cache, dtarget, scale, labels, ce_cache = cache
    rows = np.arange(len(labels))
    dcos = scale * softmax_cross_entropy_backward(dloss, ce_cache)
    dcos[rows, labels] *= dtarget
    dfeatures = l2_normalize_backward(dcos @ w_hat.T, x_cache)
    dweights = l2_normalize_backward(x_hat.T @ dcos, w_cache)
    return dfeatures, dweights
    ### END SOLUTION


# %%
check(arcface_loss_backward)

# %% [markdown]
# ## 4. Try it: what the margin does to the loss
#
# One 2-D feature at angle $\theta$ from its own class (along $x$) and $\pi/2 - \theta$ from the only
# other class (along $y$); the boundary is at $\theta = \pi/4 \approx 0.785$. With an almost zero
# margin the loss becomes small as soon as the feature crosses to its own side; with $m = 0.5$ it
# stays large until the feature is well inside its own cone.

# %%
if check(arcface_loss_forward, verbose=False):
    weights = np.array([[1.0, 0.0], [0.0, 1.0]])    # class 0 along x, class 1 along y
    print(" theta   loss (m = 0.01)   loss (m = 0.5)")
    for theta in (0.1, 0.3, 0.5, 0.7, 0.9, 1.1):
        feature = np.array([[np.cos(theta), np.sin(theta)]])
        plain, _ = arcface_loss_forward(feature, weights, labels=np.array([0]), scale=8.0, margin=0.01)
        arc, _ = arcface_loss_forward(feature, weights, labels=np.array([0]), scale=8.0, margin=0.5)
        print(f"{theta:6.1f}   {float(plain):15.4f}   {float(arc):14.4f}")

# %% [markdown]
# ## 5. Your own gradient check
#
# Finite differences of your loss against your backward (`numerical_gradient`, `rel_error` = the
# largest $|a - b| / (|a| + |b|)$): about $10^{-8}$ or less when right. Take a small scale ($s = 4$)
# for this: with $s = 64$ the softmax saturates and the differences of a few $10^{-4}$ drown in
# rounding.

# %%
try:
    from scratchface.gradcheck import numerical_gradient, rel_error

    rng = np.random.default_rng(8)
    features, weights = rng.standard_normal((5, 4)), rng.standard_normal((4, 3))
    labels = np.array([0, 2, 1, 1, 0])
    loss, cache = arcface_loss_forward(features, weights, labels=labels, scale=4.0, margin=0.5)
    dfeatures, dweights = arcface_loss_backward(1.0, cache)

    def loss_value():
        return float(arcface_loss_forward(features, weights, labels=labels, scale=4.0, margin=0.5)[0])

    print(f"dfeatures: relative error {rel_error(dfeatures, numerical_gradient(loss_value, features)):.1e}")
    print(f"dweights:  relative error {rel_error(dweights, numerical_gradient(loss_value, weights)):.1e}")
except NotImplementedError:
    print("finish the three functions first")

# %% [markdown]
# ## 6. Your decision margins
#
# Two classes, a feature at angle $\theta_1$ from class 1's weight and $\theta_2$ from class 2's.
# Class 1 wins when its target logit, from **your** `arcface_target`, beats class 2's plain
# $\cos\theta_2$; and the other way round. Between the two regions is the margin, where neither class
# wins — a band of constant width $m$ in angle.

# %%
try:
    import matplotlib.pyplot as plt

    grid = np.linspace(0, np.pi, 300)
    t1, t2 = np.meshgrid(grid, grid, indexing="xy")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, margin in zip(axes, (0.1, 0.5)):
        one_wins = arcface_target(np.cos(t1), margin=margin)[0] > np.cos(t2)
        two_wins = arcface_target(np.cos(t2), margin=margin)[0] > np.cos(t1)
        ax.imshow(one_wins.astype(float) - two_wins, origin="lower", extent=[0, 180, 0, 180],
                  cmap="coolwarm_r", vmin=-1.5, vmax=1.5)
        ax.set_title(f"m = {margin}: blue class 1 wins, red class 2, grey neither")
        ax.set_xlabel("θ1 (degrees)")
        ax.set_ylabel("θ2 (degrees)")
    plt.show()
except NotImplementedError:
    print("finish arcface_target first")
